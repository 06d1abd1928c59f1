//! The dispatcher's answers to client requests: registration, status, reports, leases of
//! the warm dir to users' own cargo commands.

// One module split by concern: the parts share the dispatcher's imports and items.
use super::*;

/// An `acquire` request, as [`Dispatcher::acquire`] takes it.
struct Acquire {
    conn: ConnId,
    id: u64,
    args: Vec<String>,
    holder: Option<String>,
    cwd: Option<PathBuf>,
}

impl Dispatcher {
    pub(super) fn request(
        &mut self,
        conn: ConnId,
        id: u64,
        request: Request,
        reply: Reply,
    ) -> bool {
        let answer = match request {
            Request::Hello { .. } | Request::Register { .. } | Request::Subscribe { .. } => {
                // The connection answers these itself.
                error(id, ErrorCode::BadRequest, "unexpected message")
            }
            Request::Status { root } => match self.status(root.as_deref()) {
                Ok(status) => ServerMessage::Status { id, status },
                Err(e) => e.reply(id),
            },
            Request::Acquire {
                root,
                args,
                holder,
                cwd,
            } => match self.workspace_of(&root) {
                Ok(root) => {
                    let acquire = Acquire {
                        conn,
                        id,
                        args,
                        holder,
                        cwd,
                    };
                    self.acquire(&root, acquire, reply);
                    return false;
                }
                Err(e) => e.reply(id),
            },
            Request::JobsForget { root } => match self.forget_learned(root.as_deref()) {
                Ok(()) => ServerMessage::Ok { id },
                Err(e) => e.reply(id),
            },
            Request::Saved { paths } => {
                tracing::debug!(?paths, "saved");
                self.saved(paths);
                ServerMessage::Ok { id }
            }
            Request::Release { root } => {
                if let Ok(root) = self.workspace_of(&root) {
                    self.workspaces
                        .get_mut(&root)
                        .expect("found")
                        .leases
                        .remove(&conn);
                }
                ServerMessage::Ok { id }
            }
            Request::Rebuild { root } => match self.workspace_of(&root) {
                Ok(root) => {
                    self.rebuild(&root);
                    ServerMessage::Ok { id }
                }
                Err(e) => e.reply(id),
            },
            Request::Cancel { root } => match self.workspace_of(&root) {
                Ok(root) => {
                    self.cancel(&root);
                    ServerMessage::Ok { id }
                }
                Err(e) => e.reply(id),
            },
            Request::Diagnostics { root } => match self.workspace_of(&root) {
                Ok(root) => ServerMessage::Diagnostics {
                    id,
                    files: self.workspaces[&root].diagnostics.files(),
                    root,
                },
                Err(e) => e.reply(id),
            },
            Request::Unregister { root } => match self.workspace_of(&root) {
                Ok(root) => {
                    if let Some(job) = self.workspaces.remove(&root).and_then(|ws| ws.job) {
                        job.cancel.cancel();
                    }
                    tracing::info!(root = %root.display(), "unregistered");
                    ServerMessage::Ok { id }
                }
                Err(e) => e.reply(id),
            },
            Request::Supervise { bin, .. } if bin.trim().is_empty() => error(
                id,
                ErrorCode::BadRequest,
                "supervise: `bin` is empty; give the name of the binary the watch runs",
            ),
            Request::Supervise { root, bin } => match self.workspace_of(&root) {
                Ok(root) => {
                    let bin = lock_check::holder(Some(bin));
                    tracing::info!(root = %root.display(), %bin, "a watch keeps a program running");
                    let ws = self.workspaces.get_mut(&root).expect("found");
                    ws.programs.insert(conn, bin);
                    ServerMessage::Ok { id }
                }
                Err(e) => e.reply(id),
            },
            Request::Report { root, report } => match self.workspace_of(&root) {
                Ok(root) => match self.report(&root, report) {
                    Ok(()) => ServerMessage::Ok { id },
                    Err(refused) => error(id, ErrorCode::BadRequest, &refused.to_string()),
                },
                Err(e) => e.reply(id),
            },
            Request::CacheList | Request::CacheGc | Request::CacheClear { .. } => {
                self.cache_request(id, request, reply);
                return false;
            }
            Request::Shutdown => {
                tracing::info!("shutdown requested by a client");
                let _ = reply.try_send(ServerMessage::Ok { id });
                return true;
            }
        };
        let _ = reply.try_send(answer);
        false
    }

    /// Queues a user's `acquire` of the warm dir of `root` (a registered workspace) and
    /// learns the command's shape when it says where it runs; the grant answers it.
    fn acquire(&mut self, root: &Path, acquire: Acquire, reply: Reply) {
        let Acquire {
            conn,
            id,
            args,
            holder,
            cwd,
        } = acquire;
        let shape = cwd.and_then(|cwd| self.learn(root, &args, &cwd));
        let debounce = self.config.debounce;
        let ws = self.workspaces.get_mut(root).expect("the caller found it");
        let defs = ws.job_defs(&ws.resolved(debounce));
        ws.waiting_acquire.push(PendingAcquire {
            conn,
            id,
            reply,
            since: Instant::now(),
            needed: plan::needed_stages(&args, &defs, shape.as_deref()),
            holder: lock_check::holder(holder),
        });
        self.update_gate(root);
    }

    /// An editor saved `paths`: each registered workspace that holds some hears of its own.
    fn saved(&mut self, paths: Vec<PathBuf>) {
        let mut by_root: BTreeMap<PathBuf, Vec<PathBuf>> = BTreeMap::new();
        for path in paths {
            if let Ok(root) = self.workspace_of(&path) {
                by_root.entry(root).or_default().push(path);
            }
        }
        for (root, paths) in by_root {
            self.files_changed(&root, paths, true);
        }
    }

    /// `buildd rebuild`: a full job, after the running one is cancelled.
    fn rebuild(&mut self, root: &Path) {
        let ws = self.workspaces.get_mut(root).expect("the caller found it");
        ws.schedule.rebuild();
        if let Some(job) = &ws.job {
            job.cancel.cancel();
        }
    }

    /// `buildd cancel`: drops what is queued and cancels the running job, whose changes are
    /// not given back.
    fn cancel(&mut self, root: &Path) {
        let ws = self.workspaces.get_mut(root).expect("the caller found it");
        ws.schedule.cancel();
        if let Some(job) = &mut ws.job {
            job.forget = true;
            job.cancel.cancel();
        }
    }

    /// The registered workspace that contains `path`: the deepest one.
    pub(super) fn workspace_of(&self, path: &Path) -> Result<PathBuf, DispatchError> {
        roots::root_of(self.workspaces.keys(), path)
            .cloned()
            .ok_or_else(|| DispatchError::NotRegistered(path.to_path_buf()))
    }

    pub(super) fn status(&self, root: Option<&Path>) -> Result<StatusReport, DispatchError> {
        let workspaces = match root {
            Some(path) => vec![self.workspaces[&self.workspace_of(path)?].status()],
            None => self.workspaces.values().map(Workspace::status).collect(),
        };
        let paths = &self.config.paths;
        Ok(StatusReport {
            daemon: DaemonInfo {
                pid: std::process::id(),
                version: binary_version(),
                protocol: PROTOCOL_VERSION,
                uptime_secs: self.started.elapsed().as_secs(),
                socket: paths.socket(),
                log_path: crate::home::logging::current_log(&paths.log_dir()),
                cache_dir: paths.cache_dir.clone(),
                idle_timeout_secs: self.config.idle_timeout.as_secs(),
                clients: self.clients,
            },
            workspaces,
            cache: self.tools.totals.clone(),
            sccache: self.tools.sccache().map(|s| {
                s.status(
                    self.tools.sccache_stats.clone(),
                    self.tools.sccache_note.clone(),
                )
            }),
        })
    }

    pub(super) fn register(
        &mut self,
        id: u64,
        root: PathBuf,
        env: BTreeMap<String, String>,
        settings: WorkspaceSettings,
        reply: Reply,
    ) {
        if let Err(e) = settings::validate(&settings) {
            let _ = reply.try_send(error(id, ErrorCode::BadRequest, &format!("settings: {e}")));
            return;
        }
        if !self.workspaces.contains_key(&root) {
            tracing::info!(root = %root.display(), "registered");
            let mut ws = Workspace::new(root.clone(), env.clone());
            ws.watcher = self.start_watcher(&root);
            ws.schedule.reload();
            self.workspaces.insert(root.clone(), ws);
        }
        // A workspace whose directory went away and came back (or was registered again where
        // it is now) gets its watcher back and is loaded again.
        if self.workspaces[&root].watcher.is_none() && root.is_dir() {
            let watcher = self.start_watcher(&root);
            let ws = self.workspaces.get_mut(&root).expect("inserted above");
            ws.watcher = watcher;
            ws.schedule.reload();
            ws.error = None;
        }
        let ws = self.workspaces.get_mut(&root).expect("inserted above");
        if !env.is_empty() && key::build_env(&env) != key::build_env(&ws.env) {
            // Another toolchain or other flags: a new key, so load again.
            ws.schedule.reload_now();
        }
        if !env.is_empty() {
            ws.env = env;
        }
        if settings != WorkspaceSettings::default() {
            ws.settings = settings;
        }
        if ws.key.is_some() && !ws.schedule.owes_reload() && ws.loading.is_none() {
            let _ = reply.try_send(ServerMessage::Registered {
                id,
                workspace: Box::new(ws.status()),
            });
        } else {
            ws.waiting_register.push((id, reply));
        }
    }

    /// Takes a watch loop's report: test results (located failures become diagnostics of the
    /// job that was tested) and what happened to the program it runs. A report that names
    /// another job or places outside the workspace is refused whole.
    pub(super) fn report(
        &mut self,
        root: &Path,
        report: Report,
    ) -> Result<(), reports::ReportError> {
        let Some(ws) = self.workspaces.get_mut(root) else {
            return Ok(());
        };
        reports::check(ws, root, &report)?;
        let mut events = Vec::new();
        match report {
            Report::Tests(tests) => {
                for failing in &tests.failing {
                    let Some(diagnostic) = diagnostics::test_failure(root, failing) else {
                        continue;
                    };
                    if ws.diagnostics.add(tests.job, &diagnostic) {
                        events.push(EventKind::Diagnostic {
                            job: tests.job,
                            diagnostic: Box::new(diagnostic),
                        });
                    }
                }
                ws.last_tests = Some(tests.clone());
                events.push(EventKind::Tests { report: tests });
            }
            Report::Process(process) => events.push(EventKind::Process { report: process }),
        }
        for event in events {
            self.broadcast(root, event);
        }
        Ok(())
    }
}

/// Grants waiting user commands the isolated dir when no job of the daemon's runs on it.
pub(super) fn grant_acquires(ws: &mut Workspace) {
    if ws.job.is_some() || ws.loading.is_some() {
        return;
    }
    let Some(key) = &ws.key else {
        let message = ws
            .error
            .clone()
            .unwrap_or_else(|| "the workspace has no build key yet".to_owned());
        for waiting in ws.waiting_acquire.drain(..) {
            let _ = waiting
                .reply
                .try_send(error(waiting.id, ErrorCode::Internal, &message));
        }
        return;
    };
    if ws.waiting_acquire.is_empty() {
        return;
    }
    let env = key::cargo_env(&key.target_dir, &ws.tools.env);
    cache_ops::touch_used_off_loop(&key.target_dir);
    for waiting in ws.waiting_acquire.drain(..) {
        ws.leases.insert(waiting.conn, waiting.holder);
        // What the lock check found may change while the lease runs.
        ws.locks_free = false;
        let _ = waiting.reply.try_send(ServerMessage::Acquired {
            id: waiting.id,
            env_set: env.set.clone(),
            env_remove: env.remove.clone(),
            args: env.args.clone(),
            target_dir: Some(key.target_dir.clone()),
            waited_ms: waiting.since.elapsed().as_millis() as u64,
        });
    }
}
