//! The compiler commands cargo prints with `-vv` (`Running `ENV=... PROGRAM ARGS...``),
//! parsed: what a diagnostics stage records for early diagnostics (`early.rs`).

use std::path::{Path, PathBuf};

use crate::build::diagnostics;

/// One compiler command cargo ran for a crate of the workspace.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Invocation {
    /// What cargo set for this unit (`CARGO_PKG_*`, `OUT_DIR`, `LD_LIBRARY_PATH`...).
    pub(crate) env: Vec<(String, String)>,
    /// The program (rustc, or clippy-driver with rustc as its first argument) and its
    /// arguments, as cargo ran them.
    pub(crate) command: Vec<String>,
    /// `--crate-name`, as rustc names the crate (with `_`).
    pub(crate) crate_name: String,
    /// `CARGO_PKG_NAME`.
    pub(crate) package: String,
    /// The crate root, absolute.
    pub(crate) src_path: PathBuf,
    /// The dep-info rustc wrote for this command: `<out-dir>/<crate>-<hash>.d`.
    pub(crate) dep_info: PathBuf,
}

impl Invocation {
    /// Which recorded command a newer one replaces: the same crate root of the same crate.
    pub(crate) fn same_unit(&self, other: &Invocation) -> bool {
        self.crate_name == other.crate_name && self.src_path == other.src_path
    }

    /// The program and arguments for a run in `scratch`: outputs and the incremental cache
    /// there. Under clippy (`clippy-driver rustc ARGS`), rustc itself with `--cfg clippy`,
    /// as clippy-driver compiles the crate: its diagnostics are clippy's without the lints,
    /// which are slower to get and come with the job. Without `diagnostic-rendered-ansi` in
    /// `--json`: cargo asks rustc for colours and strips them from what it prints as JSON,
    /// so the job's rendered text is plain, and the early run's must be the same text.
    pub(crate) fn scratch_command(&self, scratch: &Path) -> (String, Vec<String>) {
        let under_clippy = self.command.len() > 1
            && Path::new(&self.command[0])
                .file_stem()
                .is_some_and(|name| name == "clippy-driver");
        let skip = if under_clippy { 1 } else { 0 };
        let program = self.command[skip].clone();
        let mut args = Vec::with_capacity(self.command.len() + 2);
        let mut words = self.command[skip + 1..].iter();
        while let Some(word) = words.next() {
            if word == "--out-dir" {
                words.next();
                args.push(word.clone());
                args.push(scratch.display().to_string());
            } else if word == "-C"
                && let Some(value) = words.as_slice().first()
                && value.starts_with("incremental=")
            {
                words.next();
                args.push("-C".to_owned());
                args.push(format!(
                    "incremental={}",
                    scratch.join("incremental").display()
                ));
            } else if word.starts_with("-Cincremental=") {
                args.push(format!(
                    "-Cincremental={}",
                    scratch.join("incremental").display()
                ));
            } else if let Some(kinds) = word.strip_prefix("--json=") {
                let plain: Vec<&str> = kinds
                    .split(',')
                    .filter(|k| *k != "diagnostic-rendered-ansi")
                    .collect();
                if !plain.is_empty() {
                    args.push(format!("--json={}", plain.join(",")));
                }
            } else {
                args.push(word.clone());
            }
        }
        if under_clippy {
            args.extend(["--cfg".to_owned(), "clippy".to_owned()]);
        }
        (program, args)
    }
}

/// The compiler command of one line of `cargo -vv`'s stderr: `Running `ENV=... PROGRAM
/// ARGS...``, for a crate of the workspace (cargo sets `CARGO_PRIMARY_PACKAGE` for the
/// packages it was asked to build) that is not a test harness, with outputs in a known dir.
/// `None` for any other line (a build script's run, a dependency, cargo's other output).
pub(crate) fn parse(line: &str, root: &Path) -> Option<Invocation> {
    let quoted = line.trim().strip_prefix("Running `")?.strip_suffix('`')?;
    let words = shlex::split(quoted)?;
    let program_at = words.iter().position(|w| !is_assignment(w))?;
    let env: Vec<(String, String)> = words[..program_at]
        .iter()
        .filter_map(|w| w.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    let command = words[program_at..].to_vec();
    let var = |name: &str| env.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
    var("CARGO_PRIMARY_PACKAGE")?;
    let package = var("CARGO_PKG_NAME")?.to_owned();
    if command.iter().any(|w| w == "--test") {
        return None;
    }
    let after = |flag: &str| {
        command
            .iter()
            .position(|w| w == flag)
            .and_then(|i| command.get(i + 1))
    };
    let crate_name = after("--crate-name")?.clone();
    let out_dir = PathBuf::from(after("--out-dir")?);
    let extra = command
        .windows(2)
        .find_map(|w| (w[0] == "-C").then(|| w[1].strip_prefix("extra-filename="))?)
        .unwrap_or("");
    let src = command
        .iter()
        .find(|w| w.ends_with(".rs") && !w.starts_with('-'))?;
    Some(Invocation {
        dep_info: out_dir.join(format!("{crate_name}{extra}.d")),
        src_path: diagnostics::resolve(root, src),
        env,
        command,
        crate_name,
        package,
    })
}

/// `NAME=value` before the program; a program path never has `=` before its first `/`.
fn is_assignment(word: &str) -> bool {
    word.split_once('=').is_some_and(|(name, _)| {
        !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const LINE: &str = "     Running `CARGO=/c/cargo CARGO_CRATE_NAME=lib019 CARGO_MANIFEST_DIR=/w/crates/lib019 CARGO_PKG_DESCRIPTION='' CARGO_PKG_NAME=lib019 CARGO_PRIMARY_PACKAGE=1 OUT_DIR='/w/t/debug/build/lib019-1/out' /tc/bin/clippy-driver /tc/bin/rustc --crate-name lib019 --edition=2021 crates/lib019/src/lib.rs --error-format=json --json=diagnostic-rendered-ansi,artifacts,future-incompat --crate-type lib --emit=dep-info,metadata -C metadata=aa -C extra-filename=-0123abcd --out-dir /w/t/debug/deps -C incremental=/w/t/debug/incremental -L dependency=/w/t/debug/deps --extern itoa=/w/t/debug/deps/libitoa-9.rmeta`";

    #[test]
    fn a_running_line_becomes_its_command_env_and_dep_info() {
        let inv = parse(LINE, Path::new("/w")).unwrap();
        assert_eq!(inv.crate_name, "lib019");
        assert_eq!(inv.package, "lib019");
        assert_eq!(inv.src_path, Path::new("/w/crates/lib019/src/lib.rs"));
        assert_eq!(inv.dep_info, Path::new("/w/t/debug/deps/lib019-0123abcd.d"));
        assert_eq!(inv.command[..2], ["/tc/bin/clippy-driver", "/tc/bin/rustc"]);
        assert!(inv.env.contains(&(
            "OUT_DIR".to_owned(),
            "/w/t/debug/build/lib019-1/out".to_owned()
        )));
        assert!(
            inv.env
                .contains(&("CARGO_PKG_DESCRIPTION".to_owned(), String::new()))
        );
    }

    #[test]
    fn scratch_args_move_the_outputs_and_nothing_else() {
        let inv = parse(LINE, Path::new("/w")).unwrap();
        let (program, args) = inv.scratch_command(Path::new("/s"));
        assert_eq!(program, "/tc/bin/rustc", "rustc without clippy-driver");
        let at = args.iter().position(|a| a == "--out-dir").unwrap();
        assert_eq!(args[at + 1], "/s");
        assert!(args.contains(&"incremental=/s/incremental".to_owned()));
        assert!(!args.iter().any(|a| a.contains("/w/t/debug/incremental")));
        assert!(args.contains(&"--extern".to_owned()));
        assert!(args.contains(&"dependency=/w/t/debug/deps".to_owned()));
        assert!(args.contains(&"--json=artifacts,future-incompat".to_owned()));
        assert_eq!(args[args.len() - 2..], ["--cfg", "clippy"]);
        assert_eq!(args.len(), inv.command.len() - 2 + 2);

        // A check without clippy runs as recorded.
        let plain = parse(&LINE.replace("/tc/bin/clippy-driver ", ""), Path::new("/w")).unwrap();
        let (program, args) = plain.scratch_command(Path::new("/s"));
        assert_eq!(program, "/tc/bin/rustc");
        assert!(!args.contains(&"clippy".to_owned()));
        assert_eq!(args.len(), plain.command.len() - 1);
    }

    #[test]
    fn other_lines_are_no_invocation() {
        let root = Path::new("/w");
        assert!(parse("   Compiling lib019 v0.1.0 (/w/crates/lib019)", root).is_none());
        // A dependency: cargo sets no CARGO_PRIMARY_PACKAGE.
        assert!(parse(&LINE.replace("CARGO_PRIMARY_PACKAGE=1 ", ""), root).is_none());
        // A test harness.
        assert!(parse(&LINE.replace("--crate-type lib", "--test"), root).is_none());
        // A build script's run has no --crate-name.
        assert!(
            parse(
                "     Running `CARGO_PKG_NAME=x CARGO_PRIMARY_PACKAGE=1 /w/t/debug/build/x-1/build-script-build`",
                root
            )
            .is_none()
        );
        assert!(parse("     Running `unterminated 'quote`", root).is_none());
    }
}
