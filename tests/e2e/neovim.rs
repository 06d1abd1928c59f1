//! Neovim as a real client: headless `nvim` (0.7.2 from Debian 12) starts `buildd lsp` as its
//! language server for a fixture file and sees buildd's diagnostic in `vim.diagnostic.get()`.
//! The test installs Neovim itself when it is missing (`apt-get`, as root), so that it runs on
//! a fresh CI machine.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::support::{DEADLINE, World, apt_install, buildd_bin, edit, on_path};

/// The `nvim` binary, installed with apt-get when it is not on the PATH. The install goes
/// through the harness's one apt helper, which serialises every test's installs and waits for
/// dpkg's lock: on a fresh machine other tests install their programs at the same time.
fn nvim() -> PathBuf {
    apt_install("nvim", &["neovim"]);
    on_path("nvim").expect("apt-get installed neovim, but there is no nvim on the PATH")
}

#[test]
fn neovim_shows_the_diagnostic_of_buildd_lsp() {
    let nvim = nvim();
    let version = Command::new(&nvim).arg("--version").output().unwrap();
    eprintln!(
        "{}",
        String::from_utf8_lossy(&version.stdout)
            .lines()
            .next()
            .unwrap_or("")
    );

    let world = World::new();
    let ws = world.workspace("lsp-unicode", "ws");
    let file = ws.join("src/lib.rs");
    edit(
        &file,
        "let face = \"😀é\";",
        "let face = \"😀é\"; let _n: u32 = \"ü\";",
    );
    let report = run_nvim(&world, &ws, &file, "neovim.lua");
    // Neovim turns the UTF-16 range back into bytes: the literal `"ü"` after the emoji (four
    // bytes) and the accent (two) starts at byte 39 of line 5 and ends at byte 43.
    // The rest of the LSP diagnostic is kept in `user_data.lsp`, its explanation link too.
    assert!(
        report.starts_with(
            "OK 4 39 4 43 https://doc.rust-lang.org/error_codes/E0308.html mismatched types"
        ),
        "{report}"
    );
}

/// `vim.lsp.buf.code_action()` as a user runs it, with the choice made in `vim.ui.select`
/// (Neovim 0.7 has no `apply` option): the fix after the emoji lands at the right bytes, the
/// saved file builds without the warning.
#[test]
fn neovim_applies_a_quick_fix_of_buildd_lsp() {
    let world = World::new();
    let ws = world.workspace("lsp-fix", "ws");
    let file = ws.join("src/lib.rs");
    let report = run_nvim(&world, &ws, &file, "neovim_fix.lua");
    assert_eq!(
        report, "OK if this is intentional, prefix it with an underscore: `_unused`",
        "{report}"
    );
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(
        text.contains("    let face = \"😀é\"; let _unused = 5;\n"),
        "{text}"
    );
}

/// Runs a script of `tests/e2e` in headless Neovim on `file` of `ws`, with this world's
/// buildd, and returns what it wrote to its report file; panics with Neovim's logs when it
/// fails.
fn run_nvim(world: &World, ws: &Path, file: &Path, script: &str) -> String {
    let nvim = nvim();
    let out = world.dir.path().join("nvim.out");
    let xdg = world.dir.path().join("xdg");
    let script = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/e2e")
        .join(script);

    let mut child = Command::new(&nvim)
        .args(["--headless", "-n", "-i", "NONE", "-u", "NONE", "-c"])
        .arg(format!("luafile {}", script.display()))
        .current_dir(ws)
        .env("BUILDD_NVIM_FILE", file)
        .env("BUILDD_NVIM_ROOT", ws)
        .env("BUILDD_NVIM_BIN", buildd_bin())
        .env("BUILDD_NVIM_OUT", &out)
        .env(
            "BUILDD_NVIM_HARNESS",
            Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/e2e/neovim_harness.lua"),
        )
        // buildd lsp inherits these from Neovim: this world's daemon, not the user's.
        .env("BUILDD_HOME", world.home())
        .env("BUILDD_IDLE_TIMEOUT", "10m")
        .env_remove("BUILDD_NO_START")
        .env_remove("CARGO_TARGET_DIR")
        // Neovim's own state (logs, shada) stays in the test's dir.
        .env("XDG_CONFIG_HOME", xdg.join("config"))
        .env("XDG_DATA_HOME", xdg.join("data"))
        .env("XDG_STATE_HOME", xdg.join("state"))
        .env("XDG_CACHE_HOME", xdg.join("cache"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();

    // The script waits up to DEADLINE itself; the margin covers Neovim's start and exit.
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    let stderr = child.stderr.take().unwrap();
    std::thread::spawn(move || {
        let mut text = String::new();
        let _ = std::io::Read::read_to_string(&mut { stderr }, &mut text);
        let _ = tx.send((child.wait(), text));
    });
    let (status, stderr) = match rx.recv_timeout(DEADLINE + Duration::from_secs(60)) {
        Ok((status, stderr)) => (status.unwrap(), stderr),
        Err(_) => {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid as i32),
                nix::sys::signal::Signal::SIGKILL,
            );
            panic!(
                "nvim did not exit; it reported: {:?}",
                std::fs::read_to_string(&out)
            );
        }
    };
    let report = std::fs::read_to_string(&out).unwrap_or_default();
    assert!(
        status.success(),
        "nvim exited with {status}: {report}\nstderr:\n{stderr}\nneovim's LSP log:\n{}",
        std::fs::read_to_string(xdg.join("cache/nvim/lsp.log")).unwrap_or_default()
    );
    report
}
