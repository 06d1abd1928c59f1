//! `buildd watch`'s full-screen view in a real terminal: tmux runs a shell in a pane of its
//! own server (a private socket, killed at the end), the test types the command and keys,
//! and reads the screen with `capture-pane` until what it waits for shows.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::procs;
use crate::support::free_port;
use crate::support::{DEADLINE, World, apt_install, edit, output_within, wait_until};
use crate::watch::ask;

/// The shell's prompt in the pane: the screen shows it again once the view is gone.
const PROMPT: &str = "view-test$ ";

/// One tmux server with one pane running `sh`, private to a test.
struct Tmux {
    socket: PathBuf,
}

impl Tmux {
    /// Starts the server with the world's environment (its `BUILDD_HOME`), in `cwd`.
    fn start(world: &World, cwd: &Path, width: u16, height: u16) -> Tmux {
        apt_install("tmux", &["tmux"]);
        let tmux = Tmux {
            socket: world.dir.path().join("tmux.sock"),
        };
        let mut command = tmux.command();
        // The server, and so the pane's shell, gets the environment `buildd` gets in the
        // other tests.
        for (name, value) in world.cmd(cwd, &[]).get_envs() {
            match value {
                Some(value) => command.env(name, value),
                None => command.env_remove(name),
            };
        }
        command
            .env("PS1", PROMPT)
            .env("TERM", "xterm-256color")
            .env_remove("NO_COLOR")
            .args(["-f", "/dev/null", "new-session", "-d", "-x"])
            .arg(width.to_string())
            .arg("-y")
            .arg(height.to_string())
            .arg("-c")
            .arg(cwd)
            .args(["sh", "-i"]);
        let output = output_within(&mut command, Duration::from_secs(30));
        assert!(output.status.success(), "tmux did not start");
        tmux.wait_screen("the shell's prompt", |s| s.contains(PROMPT.trim_end()));
        tmux
    }

    fn command(&self) -> Command {
        let mut command = Command::new("tmux");
        command.arg("-S").arg(&self.socket);
        command
    }

    fn run(&self, args: &[&str]) -> String {
        let output = self
            .command()
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("tmux {args:?}: {e}"));
        assert!(
            output.status.success(),
            "tmux {args:?} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    /// The pane's screen as text.
    fn screen(&self) -> String {
        self.run(&["capture-pane", "-p", "-t", "0"])
    }

    /// The pane's scrollback and screen as text: what a panic's backtrace scrolled away too.
    fn history(&self) -> String {
        self.run(&["capture-pane", "-p", "-S", "-", "-t", "0"])
    }

    /// Types `keys` (tmux key names: `Enter`, `C-c`, or text).
    fn keys(&self, keys: &[&str]) {
        let mut args = vec!["send-keys", "-t", "0"];
        args.extend(keys);
        self.run(&args);
    }

    /// Whether the pane shows the alternate screen (a full-screen program's).
    fn alternate_on(&self) -> bool {
        self.run(&["display-message", "-p", "-t", "0", "#{alternate_on}"])
            .trim()
            == "1"
    }

    /// Waits until the screen satisfies `done`, and returns it.
    fn wait_screen(&self, what: &str, done: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + DEADLINE;
        let mut screen = String::new();
        while Instant::now() < deadline {
            screen = self.screen();
            if done(&screen) {
                return screen;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("timed out waiting for {what}; the pane shows:\n{screen}");
    }

    fn wait(&self, what: &str, done: impl Fn() -> bool) {
        let deadline = Instant::now() + DEADLINE;
        while Instant::now() < deadline {
            if done() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!(
            "timed out waiting for {what}; the pane shows:\n{}",
            self.screen()
        );
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        // Only this test's server, by its socket.
        let _ = self.command().arg("kill-server").output();
    }
}

/// A package without dependencies, with a function to break and an unused import: a warning
/// that rustc reports before type checking, so that it stays beside a type error.
fn tiny_workspace(world: &World) -> PathBuf {
    let ws = world.dir.path().join("tiny");
    std::fs::create_dir_all(ws.join("src")).unwrap();
    std::fs::write(
        ws.join("Cargo.toml"),
        "[package]\nname = \"tiny\"\nversion = \"0.1.0\"\nedition = \"2021\"\n",
    )
    .unwrap();
    std::fs::write(
        ws.join("src/lib.rs"),
        "use std::fmt::Write;\n\npub fn greeting() -> &'static str {\n    \"hi\"\n}\n",
    )
    .unwrap();
    std::fs::canonicalize(ws).unwrap()
}

/// The view's command line, typed into the pane's shell.
fn watch_command() -> String {
    format!("{} watch", crate::support::buildd_bin().display())
}

/// The shell answers a command it reads: the terminal is back in its normal mode (in raw
/// mode, without echo and with Enter a carriage return, it would not).
fn assert_shell_answers(tmux: &Tmux) {
    tmux.keys(&["echo restored-$((40 + 2))", "Enter"]);
    tmux.wait_screen("the shell to answer", |s| s.contains("restored-42"));
}

#[test]
fn watch_view_shows_an_error_at_its_line_and_keys_work_and_q_restores_the_terminal() {
    let world = World::new();
    let ws = tiny_workspace(&world);
    let tmux = Tmux::start(&world, &ws, 80, 24);
    tmux.keys(&[&watch_command(), "Enter"]);
    tmux.wait("the view's alternate screen", || tmux.alternate_on());
    // The first job's warning.
    tmux.wait_screen("the unused import's warning", |s| {
        s.contains("src/lib.rs:1:5 warning")
    });
    let before = world.last_job_id(&ws);

    edit(&ws.join("src/lib.rs"), "\"hi\"", "42");
    let screen = tmux.wait_screen("the type error at lib.rs:4 beside the warning", |s| {
        s.contains("src/lib.rs:4:5 error") && s.contains("src/lib.rs:1:5 warning")
    });
    let error = screen.find("src/lib.rs:4:5 error").unwrap();
    let warning = screen.find("src/lib.rs:1:5 warning").unwrap();
    assert!(
        error < warning,
        "errors first, though the warning's line is above:\n{screen}"
    );
    assert!(screen.contains("4 │     42"), "the code's line:\n{screen}");
    assert!(screen.contains("? help"), "the footer:\n{screen}");
    assert!(world.last_job_id(&ws) > before);

    // The warnings key hides the warning, and shows it again.
    tmux.keys(&["w"]);
    tmux.wait_screen("the warning hidden", |s| {
        !s.contains("src/lib.rs:1:5") && s.contains("(hidden)")
    });
    tmux.keys(&["w"]);
    tmux.wait_screen("the warning back", |s| s.contains("src/lib.rs:1:5"));

    // Tab shows the next job, `build`, whose messages are not diagnostics; Shift-Tab goes
    // back to clippy.
    tmux.keys(&["Tab"]);
    tmux.wait_screen("the build job", |s| {
        s.contains("cargo build --workspace") && !s.contains("src/lib.rs:4:5")
    });
    tmux.keys(&["BTab"]);
    tmux.wait_screen("the clippy job", |s| s.contains("src/lib.rs:4:5 error"));

    // Enter shows rustc's full message; Esc goes back.
    tmux.keys(&["Enter"]);
    tmux.wait_screen("the full message", |s| {
        s.contains("full message") && s.contains("error[E0308]: mismatched types")
    });
    tmux.keys(&["Escape"]);
    tmux.wait_screen("the list again", |s| s.contains("src/lib.rs:4:5 error"));

    // A tiny terminal still shows the error and the keys.
    tmux.run(&["resize-window", "-t", "0", "-x", "40", "-y", "10"]);
    tmux.wait_screen("the error at 40x10", |s| {
        s.contains("src/lib.rs:4:5") && s.contains("? help") && s.lines().count() <= 10
    });
    tmux.run(&["resize-window", "-t", "0", "-x", "80", "-y", "24"]);

    // Fixed, the error goes.
    edit(&ws.join("src/lib.rs"), "42", "\"hi\"");
    tmux.wait_screen("the error gone", |s| {
        !s.contains("src/lib.rs:4:5") && s.contains("src/lib.rs:1:5 warning")
    });

    // `r` runs the jobs again.
    let settled = world.last_job_id(&ws);
    tmux.keys(&["r"]);
    tmux.wait_screen("the rebuild noted", |s| s.contains("rebuild asked for"));
    tmux.wait("a job after the rebuild", || {
        world.last_job_id(&ws) > settled
    });

    // `t` runs the tests once (the package has none).
    tmux.keys(&["t"]);
    tmux.wait_screen("the test summary", |s| {
        s.contains("tests: 0 passed, 0 failed")
    });

    // `q` quits: the shell is back, in its normal mode, and the daemon runs on.
    tmux.keys(&["q"]);
    tmux.wait("the alternate screen to go", || !tmux.alternate_on());
    assert_shell_answers(&tmux);
    assert!(
        world.run(&ws, &["--no-start", "status"]).status.success(),
        "the daemon stopped with the view"
    );
}

#[test]
fn watch_view_restores_the_terminal_on_sigterm() {
    let world = World::new();
    let ws = tiny_workspace(&world);
    let tmux = Tmux::start(&world, &ws, 80, 24);
    tmux.keys(&[&watch_command(), "Enter"]);
    tmux.wait("the view's alternate screen", || tmux.alternate_on());
    tmux.wait_screen("the view", |s| s.contains("? help"));
    let shell: u32 = tmux
        .run(&["display-message", "-p", "-t", "0", "#{pane_pid}"])
        .trim()
        .parse()
        .unwrap();
    let watch = children(shell)
        .into_iter()
        .next()
        .expect("the watch runs under the pane's shell");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(watch as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    tmux.wait("the alternate screen to go", || !tmux.alternate_on());
    assert_shell_answers(&tmux);
}

#[test]
fn watch_view_restores_the_terminal_on_a_panic() {
    let world = World::new();
    let ws = tiny_workspace(&world);
    let tmux = Tmux::start(&world, &ws, 80, 24);
    // The view panics after its first frame (a switch only the tests use).
    tmux.keys(&[
        &format!("BUILDD_TEST_VIEW_PANIC=1 {}", watch_command()),
        "Enter",
    ]);
    // The backtrace after the message can scroll it off the screen before a look: wait on
    // the scrollback too.
    tmux.wait("the panic's message in the shell's output", || {
        tmux.history().contains("the view panicked on purpose")
    });
    let screen = tmux.screen();
    assert!(
        !tmux.alternate_on(),
        "still on the alternate screen:\n{screen}"
    );
    assert_shell_answers(&tmux);
}

#[test]
fn watch_view_with_test_places_the_failing_test_at_its_line() {
    let world = World::new();
    let ws = world.workspace("mixed", "mixed");
    let tmux = Tmux::start(&world, &ws, 100, 30);
    tmux.keys(&[&format!("{} --test", watch_command()), "Enter"]);
    tmux.wait_screen("the tests' counts", |s| {
        s.contains("tests: 1 passed, 1 failed")
    });
    // The failure is under the `test` job (the third), at its line.
    tmux.keys(&["3"]);
    let screen = tmux.wait_screen("the failing test at lib.rs:14", |s| {
        // The list's item, not the status line's `FAILED ... at src/lib.rs:14`. A job after
        // the tests (the lock file cargo writes is a change) clears it until the tests that
        // follow that job report it again.
        s.contains("cargo test --no-run --workspace") && s.contains("src/lib.rs:14:9 error: test")
    });
    assert!(screen.contains("tests::fails` failed"), "{screen}");
    // Ctrl-C is a key in raw mode: it quits as `q` does.
    tmux.keys(&["C-c"]);
    tmux.wait("the alternate screen to go", || !tmux.alternate_on());
    assert_shell_answers(&tmux);
}

#[test]
fn watch_view_run_keeps_the_program_off_the_screen_and_stops_it_on_quit() {
    let world = World::new();
    let ws = world.example("echo-bot", "bot");
    let port = free_port();
    let tmux = Tmux::start(&world, &ws, 100, 30);
    tmux.keys(&[
        &format!("{} --run --grace 2s -- --port {port}", watch_command()),
        "Enter",
    ]);
    wait_until("the bot to answer", || {
        ask(port, "version").as_deref() == Some("1")
    });
    // The program's output is in the log, not over the view.
    tmux.keys(&["l"]);
    let log = tmux.wait_screen("the bot's start and output in the log", |s| {
        s.contains("[echo-bot] started (pid") && s.contains("[echo-bot] echo-bot 1 listening")
    });
    assert_eq!(
        log.matches("[echo-bot] started (pid").count(),
        1,
        "its own report, echoed by the daemon, is not said twice:\n{log}"
    );
    tmux.keys(&["q"]);
    tmux.wait("the alternate screen to go", || !tmux.alternate_on());
    wait_until("the bot to stop with the view", || {
        ask(port, "version").is_none()
    });
    assert_shell_answers(&tmux);
}

#[test]
fn watch_view_c_cancels_the_running_job() {
    let world = World::new();
    let ws = world.workspace("slow", "ws");
    world.ok(&ws, &["wait"]);
    let tmux = Tmux::start(&world, &ws, 80, 24);
    tmux.keys(&[&watch_command(), "Enter"]);
    tmux.wait_screen("the view", |s| s.contains("? help"));
    // The next job blocks in its test stage until the flag goes.
    let flag = world.dir.path().join("hold");
    procs::block_slow_build(&ws, &flag);
    wait_until("the build script to block", || {
        !procs::build_scripts(&world.home()).is_empty()
    });
    tmux.wait_screen("the running job", |s| s.contains("running"));
    tmux.keys(&["c"]);
    tmux.wait_screen("the job cancelled", |s| {
        s.contains("cancelled in") && s.contains("cancel asked for")
    });
    std::fs::remove_file(&flag).unwrap();
    let status = world.workspace_status(&ws).unwrap();
    assert_eq!(status["last_job"]["result"], "cancelled", "{status:#}");
    tmux.keys(&["q"]);
    tmux.wait("the alternate screen to go", || !tmux.alternate_on());
}

/// The pids of a process's children.
fn children(pid: u32) -> Vec<u32> {
    std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .collect()
}
