//! What clients send that they should not, and load: the daemon answers with an error or
//! closes the connection, and goes on serving everyone else.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::procs;
use crate::support::{World, artifacts, wait_until};

struct Raw {
    stream: UnixStream,
    reader: BufReader<UnixStream>,
}

impl Raw {
    fn connect(world: &World) -> Raw {
        let stream = UnixStream::connect(world.home().join("run/daemon.sock")).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(60)))
            .unwrap();
        let reader = BufReader::new(stream.try_clone().unwrap());
        Raw { stream, reader }
    }

    fn hello(world: &World, protocol: u32) -> Raw {
        let mut raw = Raw::connect(world);
        raw.send(
            &json!({"id": 0, "type": "hello", "protocol": protocol,
            "version": env!("CARGO_PKG_VERSION"), "client": "test"})
            .to_string(),
        );
        assert_eq!(raw.read()["type"], "hello");
        raw
    }

    fn send(&mut self, line: &str) {
        self.stream.write_all(line.as_bytes()).unwrap();
        self.stream.write_all(b"\n").unwrap();
    }

    /// Sends a line the daemon may stop reading before its end (one over the frame limit):
    /// it answers and closes at the limit, so the rest of the write may meet a closed
    /// socket (EPIPE), which is what the test asks for, not a failure.
    fn send_past_the_limit(&mut self, line: &str) {
        let _ = self
            .stream
            .write_all(line.as_bytes())
            .and_then(|()| self.stream.write_all(b"\n"));
    }

    fn read(&mut self) -> Value {
        let mut line = String::new();
        self.reader.read_line(&mut line).unwrap();
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line:?}"))
    }

    /// Whether the daemon closed the connection: an end of file, or a reset when it closed
    /// with some of our line still unread. A read that times out is not a close.
    fn closed(&mut self) -> bool {
        let mut rest = Vec::new();
        match self.reader.read_to_end(&mut rest) {
            Ok(_) => true,
            Err(e) => e.kind() == std::io::ErrorKind::ConnectionReset,
        }
    }
}

#[test]
fn bad_lines_get_errors_or_a_closed_connection_and_the_daemon_serves_on() {
    let world = World::new();
    let ws = world.workspace("basic", "ws");
    let daemon = world
        .cmd(&ws, &["status", "--json"])
        .env("BUILDD_MAX_FRAME", "4096")
        .output()
        .unwrap();
    let pid = serde_json::from_slice::<Value>(&daemon.stdout).unwrap()["daemon"]["pid"].clone();

    // No hello first.
    let mut raw = Raw::connect(&world);
    raw.send(r#"{"id":1,"type":"status"}"#);
    assert_eq!(raw.read()["code"], "version_mismatch");
    assert!(raw.closed());

    // Another protocol: answered, but only shutdown would be accepted.
    let mut raw = Raw::hello(&world, 999);
    raw.send(r#"{"id":2,"type":"status"}"#);
    let reply = raw.read();
    assert_eq!(
        (reply["id"].clone(), reply["code"].clone()),
        (json!(2), json!("version_mismatch"))
    );

    // Broken lines on a good connection: each gets a bad_request, the connection lives.
    let mut raw = Raw::hello(&world, 1);
    for (line, id) in [
        ("not json", Value::Null),
        (r#"{"id":3,"type":"no_such_request"}"#, json!(3)),
        (r#"{"id":4,"type":"register","path":42}"#, json!(4)),
        (
            r#"{"id":5,"type":"register","path":"/","settings":{"stages":["link"]}}"#,
            json!(5),
        ),
    ] {
        raw.send(line);
        let reply = raw.read();
        assert_eq!(reply["type"], "error", "{line}: {reply}");
        assert_eq!(reply["id"], id, "{line}: {reply}");
    }
    raw.send(r#"{"id":6,"type":"status","root":"/no/such/workspace"}"#);
    assert_eq!(raw.read()["code"], "not_registered");
    raw.send(r#"{"id":7,"type":"status"}"#);
    assert_eq!(raw.read()["type"], "status");

    // A line over the maximum frame closes the connection with a word of why.
    let mut raw = Raw::hello(&world, 1);
    raw.send_past_the_limit(&format!(
        r#"{{"id":8,"type":"saved","paths":["{}"]}}"#,
        "x".repeat(10_000)
    ));
    let reply = raw.read();
    assert!(
        reply["message"]
            .as_str()
            .unwrap()
            .contains("longer than 4096"),
        "{reply}"
    );
    assert!(raw.closed());

    // Clients that vanish: mid-line, and right after a request that takes a while.
    let mut raw = Raw::hello(&world, 1);
    raw.stream.write_all(br#"{"id":9,"type":"sta"#).unwrap();
    drop(raw);
    let mut raw = Raw::hello(&world, 1);
    raw.send(&json!({"id": 10, "type": "register", "path": ws}).to_string());
    drop(raw);

    let status = world.status(&ws);
    assert_eq!(status["daemon"]["pid"], pid, "the daemon was replaced");
    world.ok(&ws, &["wait"]);
}

/// A library with `n` unused variables: `n` warnings in every job.
fn noisy_workspace(dir: &Path, n: usize) {
    std::fs::create_dir_all(dir.join("src")).unwrap();
    std::fs::write(
        dir.join("Cargo.toml"),
        "[package]\nname = \"noisy\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n[workspace]\n",
    )
    .unwrap();
    let body: String = (0..n)
        .map(|i| format!("pub fn f{i}() {{ let unused_{i} = {i}; }}\n"))
        .collect();
    std::fs::write(dir.join("src/lib.rs"), body).unwrap();
}

#[test]
fn a_client_that_never_reads_loses_its_subscription_and_stalls_nothing() {
    let world = World::new();
    let ws = world.dir.path().join("noisy");
    noisy_workspace(&ws, 400);
    let ws = ws.canonicalize().unwrap();
    world.ok(&ws, &["wait"]);

    // Subscribed to everything, with a small receive buffer, never reading.
    let mut sleeper = Raw::hello(&world, 1);
    nix::sys::socket::setsockopt(&sleeper.stream, nix::sys::socket::sockopt::RcvBuf, &4096)
        .unwrap();
    sleeper.send(r#"{"id":1,"type":"subscribe"}"#);
    let reader = world.spawn(&ws, &["events", "--json"]);

    // Every rebuild replays 400 warnings: thousands of events the sleeper never takes.
    let mut raw = Raw::hello(&world, 1);
    for round in 0..12 {
        let before = world.last_job_id(&ws);
        raw.send(&json!({"id": 100 + round, "type": "rebuild", "root": ws}).to_string());
        let started = Instant::now();
        world.wait_settled(&ws, before);
        // The daemon answered status all along; a job never waits on the sleeper.
        assert!(started.elapsed() < Duration::from_secs(120));
    }
    let log = world.log_tail();
    let dropped = std::fs::read_dir(world.home().join("state/logs"))
        .unwrap()
        .flatten()
        .any(|e| {
            std::fs::read_to_string(e.path())
                .unwrap_or_default()
                .contains("dropping a subscriber")
        });
    assert!(dropped, "the sleeper was never dropped; log:\n{log}");
    // The client that reads saw every job to its end.
    let last = world.last_job_id(&ws);
    reader.wait_line("the last job's end", |l| {
        l.contains("\"kind\":\"job_finished\"") && l.contains(&format!("\"job\":{last},"))
    });
    drop(sleeper);
}

#[test]
fn twenty_clients_on_three_workspaces_lose_no_final_state() {
    let secs: u64 = std::env::var("BUILDD_SOAK_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(120);
    let world = World::new();
    let spaces: Vec<_> = (0..3)
        .map(|i| world.workspace("basic", &format!("ws{i}")))
        .collect();
    for ws in &spaces {
        world.ok(ws, &["wait"]);
    }
    let daemon = world.status(&spaces[0])["daemon"]["pid"].as_u64().unwrap();
    let deadline = Instant::now() + Duration::from_secs(secs);
    let peak_rss = std::sync::atomic::AtomicU64::new(0);

    std::thread::scope(|scope| {
        // One editor for all three workspaces.
        scope.spawn(|| {
            let mut n = 0u64;
            while Instant::now() < deadline {
                let ws = &spaces[(n % 3) as usize];
                let file = ws.join("util/src/lib.rs");
                std::fs::write(&file, format!("pub fn bang() -> &'static str {{\n    \"!\"\n}}\n\npub const EDIT: u64 = {n};\n")).unwrap();
                n += 1;
                std::thread::sleep(Duration::from_millis(250));
            }
        });
        // Twenty clients of four kinds.
        for client in 0..20 {
            let world = &world;
            let ws = &spaces[client % 3];
            let peak_rss = &peak_rss;
            scope.spawn(move || {
                let mut events = (client % 4 == 1).then(|| world.spawn(ws, &["events", "--json"]));
                while Instant::now() < deadline {
                    match client % 4 {
                        0 => {
                            world.status(ws);
                        }
                        1 => {
                            // Reconnect now and then: a subscriber that comes and goes.
                            if events.as_ref().is_some_and(|e| e.lines().len() > 200) {
                                events = Some(world.spawn(ws, &["events", "--json"]));
                            }
                        }
                        2 => {
                            let out = world.run(ws, &["cargo", "build", "--message-format=json"]);
                            assert!(out.status.success() || out.status.code() == Some(101));
                        }
                        _ => {
                            // A raw client that vanishes mid-conversation.
                            let mut raw = Raw::hello(world, 1);
                            raw.send(
                                &json!({"id": 1, "type": "subscribe", "root": ws}).to_string(),
                            );
                            drop(raw);
                        }
                    }
                    if let Some(rss) = procs::rss_kib(daemon) {
                        peak_rss.fetch_max(rss, std::sync::atomic::Ordering::Relaxed);
                    }
                    std::thread::sleep(Duration::from_millis(300));
                }
            });
        }
    });

    // After the storm of clients, each workspace settles on its last edit, warm.
    for ws in &spaces {
        let content = std::fs::read_to_string(ws.join("util/src/lib.rs")).unwrap();
        wait_until("the final job", || {
            let status = world.workspace_status(ws).unwrap();
            status["state"] == "idle" && status["current_job"].is_null()
        });
        let stdout = world.ok(ws, &["cargo", "build", "--message-format=json"]);
        let artifacts = artifacts(&stdout);
        assert!(
            artifacts.iter().all(|a| a["fresh"] == true),
            "{} is not warm",
            ws.display()
        );
        assert_eq!(
            std::fs::read_to_string(ws.join("util/src/lib.rs")).unwrap(),
            content
        );
    }
    let peak = peak_rss.load(std::sync::atomic::Ordering::Relaxed);
    assert!(
        peak > 0 && peak < 100 * 1024,
        "the daemon's peak RSS was {peak} KiB"
    );
}

#[test]
fn the_daemon_listens_on_no_network_socket_and_keeps_its_dirs_private() {
    let world = World::new();
    let ws = world.workspace("basic", "ws");
    world.ok(&ws, &["wait"]);
    let pid = world.status(&ws)["daemon"]["pid"].as_u64().unwrap();

    let inodes: Vec<String> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .flatten()
        .filter_map(|fd| std::fs::read_link(fd.path()).ok())
        .filter_map(|target| {
            let target = target.to_string_lossy().into_owned();
            Some(
                target
                    .strip_prefix("socket:[")?
                    .trim_end_matches(']')
                    .to_owned(),
            )
        })
        .collect();
    assert!(!inodes.is_empty(), "the daemon has no socket at all");
    for table in ["tcp", "tcp6", "udp", "udp6"] {
        let text = std::fs::read_to_string(format!("/proc/{pid}/net/{table}")).unwrap_or_default();
        for line in text.lines().skip(1) {
            // The inode is the tenth column.
            let inode = line.split_whitespace().nth(9).unwrap_or("");
            assert!(
                !inodes.iter().any(|i| i == inode),
                "the daemon has a {table} socket: {line}"
            );
        }
    }
    for dir in ["run", "cache", "state", "state/logs", "cache/targets"] {
        let mode = std::fs::metadata(world.home().join(dir))
            .unwrap()
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o700, "{dir}");
    }
}
