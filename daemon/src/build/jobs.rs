//! Job definitions: the cargo commands that compile, which the daemon keeps warm. A
//! definition comes from buildd's defaults, from the settings (`[jobs.NAME]`), or from a
//! `buildd cargo` command the user ran, reduced to its *shape*: the compile-only subcommand
//! it needs (`run` -> `build`, `test` -> `test --no-run`) with its selection and
//! configuration arguments, and without what only changes output or the program's run.
//!
//! Pure: cargo's arguments in, definitions and errors out.

use std::path::PathBuf;

use crate::wire::protocol::{JobOrigin, Stage};

/// One cargo command of a job, with where it comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct JobDef {
    pub(crate) name: Stage,
    /// cargo's arguments, the subcommand first (`clippy --workspace --all-targets`).
    pub(crate) args: Vec<String>,
    /// The dir cargo runs in, relative to the workspace root (empty: the root).
    pub(crate) dir: PathBuf,
    pub(crate) origin: JobOrigin,
    /// Its compiler messages are the workspace's diagnostics.
    pub(crate) diagnostics: bool,
}

impl JobDef {
    pub(crate) fn new(name: &str, args: &[&str], origin: JobOrigin, diagnostics: bool) -> JobDef {
        JobDef {
            name: Stage::new(name),
            args: args.iter().map(|a| (*a).to_owned()).collect(),
            dir: PathBuf::new(),
            origin,
            diagnostics,
        }
    }

    /// The compile-only subcommand (`clippy`, `build`, `test`...).
    pub(crate) fn subcommand(&self) -> &str {
        self.args.first().map_or("", String::as_str)
    }
}

/// The default jobs. The first gives the editor its diagnostics: clippy, as bacon-ls does
/// and as rust-analyzer's most common setting asks, or `cargo check` where clippy is not
/// installed. `--all-targets` covers what `cargo clippy` checks and the tests' code too;
/// `--workspace` leaves the units a `cargo build` at the root of a virtual workspace looks
/// for (a `--package` selection would unify features differently).
pub(crate) fn defaults(clippy: bool) -> Vec<JobDef> {
    let diagnostics = if clippy {
        JobDef::new(
            "clippy",
            &["clippy", "--workspace", "--all-targets"],
            JobOrigin::Default,
            true,
        )
    } else {
        JobDef::new(
            "check",
            &["check", "--workspace", "--all-targets"],
            JobOrigin::Default,
            true,
        )
    };
    vec![
        diagnostics,
        JobDef::new(
            "build",
            &["build", "--workspace"],
            JobOrigin::Default,
            false,
        ),
        JobDef::new(
            "test",
            &["test", "--no-run", "--workspace"],
            JobOrigin::Default,
            false,
        ),
    ]
}

/// The jobs of the old `stages` setting (`check`, `build`, `test`), which replace the
/// defaults.
pub(crate) fn of_stage(name: &str) -> Option<JobDef> {
    let args: &[&str] = match name {
        "check" => &["check", "--workspace"],
        "build" => &["build", "--workspace"],
        "test" => &["test", "--no-run", "--workspace"],
        _ => return None,
    };
    Some(JobDef::new(name, args, JobOrigin::Config, name == "check"))
}

/// The subcommands a job may run, for error messages.
const COMPILE_ONLY: &str = "check, clippy, build, test --no-run, bench --no-run, doc, rustc";

/// Why a `[jobs.NAME] command` is refused. Each text names the job and says what to write.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum JobError {
    #[error(
        "job `{name}`: `command` is empty; give cargo's arguments, such as [\"clippy\", \"--workspace\"]"
    )]
    Empty { name: String },
    #[error(
        "job `{name}`: `{arg}` picks a toolchain; jobs run with the workspace's own toolchain (rust-toolchain.toml), so remove it"
    )]
    Toolchain { name: String, arg: String },
    #[error(
        "job `{name}`: the command must start with cargo's subcommand, not `{arg}` (one of {COMPILE_ONLY})"
    )]
    NoSubcommand { name: String, arg: String },
    #[error(
        "job `{name}`: `{arg}` is not allowed: the daemon builds in its own isolated target dir"
    )]
    TargetDir { name: String, arg: String },
    #[error(
        "job `{name}`: `cargo {subcommand}` without `--no-run` runs the tests; a job only compiles: write [\"{subcommand}\", \"--no-run\", ...]"
    )]
    Runs { name: String, subcommand: String },
    #[error(
        "job `{name}`: `cargo run` runs a program; a job only compiles: write [\"build\", ...] with the same options"
    )]
    RunsProgram { name: String },
    #[error(
        "job `{name}`: `cargo {subcommand}` does more than compile, or is not a command buildd knows; a job runs one of: {COMPILE_ONLY}"
    )]
    NotCompileOnly { name: String, subcommand: String },
}

/// Checks a `[jobs.NAME] command`: one cargo command that only compiles.
pub(crate) fn validate_command(name: &str, command: &[String]) -> Result<(), JobError> {
    let name = name.to_owned();
    let Some(first) = command.first() else {
        return Err(JobError::Empty { name });
    };
    let arg = first.clone();
    if first.starts_with('+') {
        return Err(JobError::Toolchain { name, arg });
    }
    if first.starts_with('-') {
        return Err(JobError::NoSubcommand { name, arg });
    }
    let before_dashes = || command.iter().take_while(|a| *a != "--");
    if let Some(bad) =
        before_dashes().find(|a| a.as_str() == "--target-dir" || a.starts_with("--target-dir="))
    {
        return Err(JobError::TargetDir {
            name,
            arg: bad.clone(),
        });
    }
    let no_run = before_dashes().any(|a| a == "--no-run");
    match first.as_str() {
        "check" | "c" | "clippy" | "build" | "b" | "doc" | "d" | "rustc" => Ok(()),
        "test" | "t" | "bench" if no_run => Ok(()),
        "test" | "t" | "bench" => Err(JobError::Runs {
            name,
            subcommand: arg,
        }),
        "run" | "r" => Err(JobError::RunsProgram { name }),
        _ => Err(JobError::NotCompileOnly {
            name,
            subcommand: arg,
        }),
    }
}

/// Options (of cargo itself and of its build commands) that select or configure what is
/// compiled and take a value. A shape keeps them.
const KEPT_WITH_VALUE: &[&str] = &[
    "--package",
    "--exclude",
    "--bin",
    "--example",
    "--test",
    "--bench",
    "--features",
    "--profile",
    "--target",
    "--config",
    "-Z",
    "--manifest-path",
];

/// Flags that select or configure what is compiled. A shape keeps them.
const KEPT_FLAGS: &[&str] = &[
    "--workspace",
    "--lib",
    "--bins",
    "--examples",
    "--tests",
    "--benches",
    "--all-targets",
    "--all-features",
    "--no-default-features",
    "--release",
    "--frozen",
    "--locked",
    "--offline",
    "--ignore-rust-version",
    "--keep-going",
];

/// Options that change only cargo's output or its parallelism, and take a value: a shape
/// drops them (the daemon sets its own).
const DROPPED_WITH_VALUE: &[&str] = &["--color", "--message-format", "--jobs", "-j"];

/// Flags that change only output: a shape drops them.
const DROPPED_FLAGS: &[&str] = &["--verbose", "-v", "-vv", "--quiet", "-q", "--timings"];

/// The short spellings and aliases of kept options.
fn canonical(option: &str) -> &str {
    match option {
        "-p" => "--package",
        "-F" => "--features",
        "-r" => "--release",
        "--all" => "--workspace",
        "-C" => "-C",
        other => other,
    }
}

/// The subcommand of `cargo ARGS` (the first argument that is not an option, an option's
/// value or a `+toolchain`), and the arguments after it.
pub(crate) fn split_subcommand(args: &[String]) -> Option<(&str, std::slice::Iter<'_, String>)> {
    let mut iter = args.iter();
    loop {
        let arg = iter.next()?;
        if arg.starts_with('+') || arg.starts_with('-') {
            // Options that take a value in the next argument.
            if matches!(arg.as_str(), "-C" | "--config" | "-Z" | "--color") {
                iter.next();
            }
            continue;
        }
        return Some((arg.as_str(), iter));
    }
}

/// The shape of a user's cargo command (`args` as typed after `cargo`): the compile-only
/// command a job runs to warm it, or `None` when it compiles nothing, or its shape is not
/// certain (a `+toolchain`, which is another build key; an option buildd does not know; a
/// target dir of its own).
pub(crate) fn shape(args: &[String]) -> Option<Vec<String>> {
    let mut iter = args.iter().map(String::as_str).peekable();
    let mut global = Vec::new();
    // cargo's own options, before the subcommand.
    let subcommand = loop {
        let arg = iter.next()?;
        if arg.starts_with('+') {
            return None;
        }
        if !arg.starts_with('-') {
            break arg;
        }
        let (option, inline) = split_option(arg);
        match canonical(option) {
            "--config" | "-Z" => {
                global.push(canonical(option).to_owned());
                global.push(
                    inline
                        .map(str::to_owned)
                        .or_else(|| iter.next().map(str::to_owned))?,
                );
            }
            "--color" => {
                if inline.is_none() {
                    iter.next();
                }
            }
            "-C" => return None,
            o if DROPPED_FLAGS.contains(&o) || KEPT_FLAGS.contains(&o) => {
                if KEPT_FLAGS.contains(&o) {
                    global.push(o.to_owned());
                }
            }
            _ => return None,
        }
    };
    // What the job runs, and whether the command's unknown options and positionals belong
    // to a test runner (test names, runner options), which a shape drops.
    let (mut shape, runner, keep_after_dashes): (Vec<String>, bool, bool) = match subcommand {
        "build" | "b" | "run" | "r" => (vec!["build".into()], false, false),
        "check" | "c" => (vec!["check".into()], false, false),
        "clippy" => (vec!["clippy".into()], false, true),
        "rustc" => (vec!["rustc".into()], false, true),
        "doc" | "d" => (vec!["doc".into()], false, false),
        "test" | "t" => (vec!["test".into(), "--no-run".into()], true, false),
        "bench" => (vec!["bench".into(), "--no-run".into()], true, false),
        "nextest" => match iter.next()? {
            "run" | "r" => (vec!["test".into(), "--no-run".into()], true, false),
            _ => return None,
        },
        _ => return None,
    };
    shape.extend(global);
    let is_run = matches!(subcommand, "run" | "r");
    while let Some(arg) = iter.next() {
        if arg == "--" {
            if keep_after_dashes {
                shape.push("--".into());
                shape.extend(iter.map(str::to_owned));
            }
            break;
        }
        if !arg.starts_with('-') {
            if runner {
                // A test name filter.
                continue;
            }
            if is_run {
                // The program's first argument: the rest is the program's.
                break;
            }
            return None;
        }
        let (option, inline) = split_option(arg);
        let option = match (subcommand, option) {
            // nextest names cargo's `--profile` so, its own profile is `--profile`.
            ("nextest", "--cargo-profile") => "--profile",
            ("nextest", "--profile" | "-P") => {
                if inline.is_none() {
                    iter.next();
                }
                continue;
            }
            _ => canonical(option),
        };
        if option == "--no-run" {
            continue;
        }
        if option == "--target-dir" {
            return None;
        }
        if KEPT_WITH_VALUE.contains(&option) {
            let value = match inline {
                Some(v) => v,
                None => iter.next()?,
            };
            shape.push(option.to_owned());
            shape.push(value.to_owned());
        } else if KEPT_FLAGS.contains(&option) {
            shape.push(option.to_owned());
        } else if DROPPED_WITH_VALUE.contains(&option) {
            if inline.is_none() {
                iter.next();
            }
        } else if DROPPED_FLAGS.contains(&option) || runner {
            // Output flags; for a test runner, its own options (`--no-fail-fast`, filters).
            // One that takes a value leaves the value as a positional, dropped above.
        } else {
            return None;
        }
    }
    Some(shape)
}

/// `--name=value` as the option and its value.
fn split_option(arg: &str) -> (&str, Option<&str>) {
    match arg.split_once('=') {
        Some((option, value)) if option.starts_with("--") => (option, Some(value)),
        _ => (arg, None),
    }
}

/// Adds selection arguments to a shape, before a `--` (after which they would be clippy's or
/// rustc's).
pub(crate) fn add_selection(shape: &mut Vec<String>, selection: &[&str]) {
    let at = shape.iter().position(|a| a == "--").unwrap_or(shape.len());
    shape.splice(at..at, selection.iter().map(|s| (*s).to_owned()));
}

/// Whether a shape selects packages itself (`--package`, `--workspace`, `--manifest-path`);
/// without a selection, cargo picks the package from the dir it runs in.
pub(crate) fn selects(shape: &[String]) -> bool {
    shape.iter().take_while(|a| *a != "--").any(|a| {
        matches!(
            a.as_str(),
            "--package" | "--workspace" | "--exclude" | "--manifest-path"
        )
    })
}

/// Whether two job commands are the same command written differently: the same subcommand
/// and the same options, in any order and spelling (`-p x`, `--package=x`), with the same
/// arguments after `--`. `--config` values keep their order (a later one wins). A command
/// with an option buildd does not know is compared as written, since its positionals
/// cannot be told from option values.
pub(crate) fn same_command(a: &[String], b: &[String]) -> bool {
    match (normalized(a), normalized(b)) {
        (Some(a), Some(b)) => a == b,
        _ => a == b,
    }
}

/// A command as its subcommand, its options sorted (`--config` ones in order, apart), and
/// what follows `--`; `None` when it has an option buildd does not know.
type Normalized<'a> = (
    &'a str,
    Vec<(&'a str, Option<&'a str>)>,
    Vec<&'a str>,
    &'a [String],
);

fn normalized(args: &[String]) -> Option<Normalized<'_>> {
    let (subcommand, rest) = args.split_first()?;
    let subcommand = match subcommand.as_str() {
        "b" => "build",
        "c" => "check",
        "d" => "doc",
        "t" => "test",
        other => other,
    };
    let dashes = rest.iter().position(|a| a == "--").unwrap_or(rest.len());
    let (options, after) = rest.split_at(dashes);
    let mut items = Vec::new();
    let mut configs = Vec::new();
    let mut iter = options.iter().map(String::as_str);
    while let Some(arg) = iter.next() {
        let (option, inline) = split_option(arg);
        let option = canonical(option);
        if KEPT_WITH_VALUE.contains(&option) {
            let value = match inline {
                Some(v) => v,
                None => iter.next()?,
            };
            if option == "--config" {
                configs.push(value);
            } else {
                items.push((option, Some(value)));
            }
        } else if (KEPT_FLAGS.contains(&option) || option == "--no-run") && inline.is_none() {
            items.push((option, None));
        } else {
            return None;
        }
    }
    items.sort_unstable();
    items.dedup();
    Some((subcommand, items, configs, after))
}

/// The `--target` triples a command builds for (a path to a target spec file is not a
/// triple and is left to cargo).
pub(crate) fn targets(args: &[String]) -> Vec<String> {
    let mut targets = Vec::new();
    let mut iter = args.iter().take_while(|a| *a != "--");
    while let Some(arg) = iter.next() {
        let value = match split_option(arg) {
            ("--target", Some(v)) => Some(v.to_owned()),
            ("--target", None) => iter.next().cloned(),
            _ => None,
        };
        targets.extend(value.filter(|v| !v.ends_with(".json")));
    }
    targets
}

/// The families of subcommands whose units overlap: a user's command lets a running job of
/// its family finish (its units are what the command needs), and the daemon cancels the
/// others for it.
pub(crate) fn family(subcommand: &str) -> Option<&'static [&'static str]> {
    Some(match subcommand {
        "build" | "b" | "run" | "r" | "rustc" => &["build", "rustc"],
        "test" | "t" | "bench" | "nextest" => &["build", "test", "bench"],
        "check" | "c" | "clippy" | "fix" | "doc" | "d" => &["check", "clippy", "doc"],
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Vec<String> {
        s.split_whitespace().map(str::to_owned).collect()
    }

    fn shape_of(s: &str) -> Option<String> {
        shape(&args(s)).map(|s| s.join(" "))
    }

    #[test]
    fn shapes_keep_selection_and_configuration_and_drop_the_rest() {
        assert_eq!(
            shape_of("build --release").as_deref(),
            Some("build --release")
        );
        assert_eq!(
            shape_of("run -p bot --release -- --port 80").as_deref(),
            Some("build --package bot --release")
        );
        assert_eq!(
            shape_of("r --bin x arg1 arg2").as_deref(),
            Some("build --bin x")
        );
        assert_eq!(
            shape_of("test -p core --features=extra --no-fail-fast adds -- --nocapture").as_deref(),
            Some("test --no-run --package core --features extra")
        );
        assert_eq!(
            shape_of("nextest run --cargo-profile ci -P fast -E test(x)").as_deref(),
            Some("test --no-run --profile ci")
        );
        assert_eq!(
            shape_of("bench --bench speed").as_deref(),
            Some("bench --no-run --bench speed")
        );
        assert_eq!(
            shape_of("-q clippy --all -- -W clippy::pedantic").as_deref(),
            Some("clippy --workspace -- -W clippy::pedantic")
        );
        assert_eq!(
            shape_of("--config x=1 check -j 2 --message-format=short").as_deref(),
            Some("check --config x=1")
        );
        assert_eq!(shape_of("test --no-run").as_deref(), Some("test --no-run"));
    }

    #[test]
    fn the_same_command_in_another_order_or_spelling_is_the_same() {
        let same = |a: &str, b: &str| same_command(&args(a), &args(b));
        assert!(same(
            "clippy --all-targets --workspace",
            "clippy --workspace --all-targets"
        ));
        assert!(same("build --release --workspace", "b --workspace -r"));
        assert!(same(
            "test --no-run -p core --features=extra",
            "test --features extra --package core --no-run"
        ));
        assert!(same("clippy -- -W a", "clippy -- -W a"));
        assert!(!same("clippy -- -W a -W b", "clippy -- -W b -W a"));
        assert!(!same(
            "clippy --workspace",
            "clippy --workspace --all-targets"
        ));
        assert!(!same("build --package a", "build --package b"));
        assert!(!same("build --workspace", "check --workspace"));
        assert!(!same(
            "check --config a=1 --config a=2",
            "check --config a=2 --config a=1"
        ));
        // Unknown options: only the same text is the same command.
        assert!(same(
            "rustc --lib --crate-type x",
            "rustc --lib --crate-type x"
        ));
        assert!(!same(
            "rustc --crate-type x --lib",
            "rustc --lib --crate-type x"
        ));
    }

    #[test]
    fn a_selection_goes_before_the_lints() {
        let mut shape = args("clippy -- -W clippy::pedantic");
        add_selection(&mut shape, &["--package", "app"]);
        assert_eq!(
            shape.join(" "),
            "clippy --package app -- -W clippy::pedantic"
        );
    }

    #[test]
    fn targets_are_read_from_both_spellings() {
        assert_eq!(
            targets(&args(
                "build --target wasm32-unknown-unknown --target=x86_64-unknown-linux-gnu"
            )),
            ["wasm32-unknown-unknown", "x86_64-unknown-linux-gnu"]
        );
        assert!(targets(&args("build --target my.json -- --target no")).is_empty());
    }

    #[test]
    fn uncertain_or_non_compiling_commands_have_no_shape() {
        for s in [
            "+nightly build",
            "build --target-dir /tmp/x",
            "build --frobnicate",
            "build stray",
            "publish",
            "fmt",
            "nextest list",
            "-C /elsewhere build",
            "",
        ] {
            assert_eq!(shape_of(s), None, "{s}");
        }
    }

    #[test]
    fn job_commands_must_only_compile_and_errors_say_what_to_write() {
        let check = |s: &str| validate_command("mine", &args(s)).map_err(|e| e.to_string());
        assert!(check("clippy --workspace -- -W clippy::pedantic").is_ok());
        assert!(check("test --no-run -p core").is_ok());
        assert!(check("build --target wasm32-unknown-unknown").is_ok());
        let err = check("publish").unwrap_err();
        assert!(
            err.contains("job `mine`") && err.contains("cargo publish"),
            "{err}"
        );
        let err = check("test -p core").unwrap_err();
        assert!(err.contains("--no-run"), "{err}");
        let err = check("run --release").unwrap_err();
        assert!(err.contains("[\"build\", ...]"), "{err}");
        assert!(check("").unwrap_err().contains("empty"));
        assert!(
            check("build --target-dir x")
                .unwrap_err()
                .contains("isolated")
        );
        assert!(check("+nightly build").unwrap_err().contains("toolchain"));
        assert!(check("install").is_err() && check("fix").is_err() && check("clean").is_err());
    }

    #[test]
    fn the_defaults_put_the_diagnostics_job_first_and_fall_back_to_check() {
        let names = |clippy| {
            defaults(clippy)
                .iter()
                .map(|j| j.args.join(" "))
                .collect::<Vec<_>>()
        };
        assert_eq!(
            names(true),
            [
                "clippy --workspace --all-targets",
                "build --workspace",
                "test --no-run --workspace"
            ]
        );
        assert_eq!(names(false)[0], "check --workspace --all-targets");
        assert!(defaults(true)[0].diagnostics && !defaults(true)[1].diagnostics);
    }
}
