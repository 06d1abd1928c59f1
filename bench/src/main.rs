//! `buildd-bench`: proves how much time buildd saves on a workspace, by measuring plain cargo
//! and buildd side by side in one run on copies of it.
//!
//! This file resolves the command line (the buildd binary, the workspace or a generated one,
//! the file to edit) and hands a [`measure::Setup`] to [`measure::run`]; `report` prints the
//! results. See `docs/benchmarks.md` for the method.

mod buildd_side;
mod cli;
mod command;
mod copy;
mod daemon;
mod day;
mod edit;
mod env;
mod generate;
mod idle;
mod lsp_client;
mod machine;
mod measure;
mod plain;
mod proc_stats;
mod report;
mod restart;
mod stats;

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use clap::Parser;

use crate::cli::Args;

fn main() -> std::process::ExitCode {
    match run(Args::parse()) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("buildd-bench: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run(args: Args) -> anyhow::Result<()> {
    if let (Some(crates), Some(dir)) = (args.generate, &args.generate_into) {
        let generated = generate::write(dir, crates, args.deps)?;
        println!(
            "wrote a workspace of {crates} crates into {}; its default file to edit is {}",
            dir.display(),
            generated.default_edit.display()
        );
        return Ok(());
    }
    // A bad script or program is refused before anything is copied or built.
    let script = args.day.then(|| day_script(&args)).transpose()?;
    let program = args.restart.then(|| restart_program(&args)).transpose()?;
    let buildd = find_buildd(args.buildd.as_deref())?;
    let temp = tempfile::Builder::new()
        .prefix("buildd-bench-")
        .tempdir()
        .context("failed to create a temporary dir")?;
    let dir = std::fs::canonicalize(temp.path())
        .with_context(|| format!("failed to resolve {}", temp.path().display()))?;

    let (source, label, edit) = match (args.generate, &args.workspace) {
        (Some(crates), _) => {
            let root = dir.join("generated").join(format!("generated-{crates}"));
            let generated = generate::write(&root, crates, args.deps)?;
            let edit = args.edit.clone().unwrap_or(generated.default_edit);
            check_edit(&root, &edit)?;
            let label = match args.deps {
                generate::Deps::Few => format!("generated, {crates} crates"),
                generate::Deps::Large => {
                    format!("generated, {crates} crates, the binary with the large dependency tree")
                }
            };
            (root, label, edit)
        }
        (None, Some(path)) => {
            let root = workspace_root(path)?;
            let edit = relative_edit(&root, args.edit.as_deref().context("--edit is required")?)?;
            (root.clone(), root.display().to_string(), edit)
        }
        (None, None) => bail!("pass --workspace PATH --edit FILE, or --generate N"),
    };
    let setup = measure::Setup {
        buildd,
        source,
        label,
        edit,
        runs: args.runs,
        idle: args.idle,
        idle_workspaces: args.idle_workspaces,
        require_lsp: args.require_lsp,
        timeout: args.timeout,
        dir: dir.clone(),
        settings: buildd_daemon::protocol::WorkspaceSettings {
            unused_quiet_secs: args.unused_quiet.map(|d| d.as_secs()),
            fast_link: args.fast_link.then_some(true),
            ..Default::default()
        },
    };
    if let Some(script) = script {
        let results = day::run::run(&setup, &script);
        keep(args.keep, temp);
        let report = day::report::build(results?);
        write_json(args.json.as_deref(), &report)?;
        println!("{}", day::report::render(&report));
        return Ok(());
    }
    if let Some(program) = program {
        let results = restart::run(&setup, &program);
        keep(args.keep, temp);
        let report = restart::build(results?);
        write_json(args.json.as_deref(), &report)?;
        println!("{}", restart::render(&report));
        return Ok(());
    }
    let results = measure::run(&setup);
    keep(args.keep, temp);
    let report = report::build(results?);
    write_json(args.json.as_deref(), &report)?;
    println!("{}", report::render(&report));
    Ok(())
}

/// The day mode's script: `--day-script`, or the generated workspace's.
fn day_script(args: &Args) -> anyhow::Result<Vec<day::script::DayCommand>> {
    match (&args.day_script, args.generate) {
        (Some(text), _) => day::script::parse(text),
        (None, Some(_)) => day::script::parse(day::script::GENERATED),
        (None, None) => bail!(
            "--day on --workspace needs --day-script with the commands to run, such as \
             `clippy; run -p BIN; test -p LIB; build --release`"
        ),
    }
}

/// The restart mode's program: `--bin` and `--announce`, or the generated workspace's.
fn restart_program(args: &Args) -> anyhow::Result<restart::Program> {
    let generated = args.generate.is_some();
    let bin = match (&args.bin, generated) {
        (Some(bin), _) => bin.clone(),
        (None, true) => "app".to_owned(),
        (None, false) => bail!("--restart on --workspace needs --bin, the binary to run"),
    };
    let announce = match (&args.announce, generated) {
        (Some(text), _) if !text.is_empty() => text.clone(),
        (Some(_), _) => bail!("--announce must not be empty"),
        (None, true) => "total ".to_owned(),
        (None, false) => bail!(
            "--restart on --workspace needs --announce, text of the line the program prints \
             when it starts"
        ),
    };
    Ok(restart::Program { bin, announce })
}

/// With `--keep`, keeps the temporary dir and says where.
fn keep(keep: bool, temp: tempfile::TempDir) {
    if keep {
        let kept = temp.keep();
        measure::progress(&format!("kept {}", kept.display()));
    }
}

fn write_json(path: Option<&Path>, report: &impl serde::Serialize) -> anyhow::Result<()> {
    if let Some(path) = path {
        let json = serde_json::to_string_pretty(report).context("failed to encode the report")?;
        std::fs::write(path, json + "\n")
            .with_context(|| format!("failed to write {}", path.display()))?;
    }
    Ok(())
}

/// The buildd binary: `--buildd`, or the one next to this binary (`target/release/buildd`
/// when this is `target/release/buildd-bench`).
fn find_buildd(given: Option<&Path>) -> anyhow::Result<PathBuf> {
    if let Some(path) = given {
        return std::fs::canonicalize(path)
            .with_context(|| format!("cannot use --buildd {}", path.display()));
    }
    let exe = std::env::current_exe().context("cannot find this binary's own path")?;
    let candidate = exe.with_file_name("buildd");
    if candidate.is_file() {
        return Ok(candidate);
    }
    bail!(
        "no buildd binary at {}: build it first (cargo build --release -p buildd, or \
         cargo build -p buildd for a debug harness), or pass --buildd PATH",
        candidate.display()
    )
}

/// The root of the workspace containing `path`, as cargo finds it; reading only.
fn workspace_root(path: &Path) -> anyhow::Result<PathBuf> {
    let dir = std::fs::canonicalize(path)
        .with_context(|| format!("cannot use --workspace {}", path.display()))?;
    let output = std::process::Command::new("cargo")
        .args(["locate-project", "--workspace", "--message-format", "plain"])
        .current_dir(&dir)
        .output()
        .context("failed to run cargo locate-project: is cargo on PATH?")?;
    if !output.status.success() {
        bail!(
            "{} is not in a cargo workspace: {}",
            dir.display(),
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    let manifest = PathBuf::from(String::from_utf8_lossy(&output.stdout).trim());
    Ok(manifest
        .parent()
        .context("cargo locate-project printed a manifest without a parent")?
        .to_path_buf())
}

/// `--edit` as a path relative to the workspace root: it may be given relative to the root,
/// relative to the current directory, or absolute, but must be a file inside the workspace.
fn relative_edit(root: &Path, edit: &Path) -> anyhow::Result<PathBuf> {
    let candidate = if edit.is_relative() && root.join(edit).is_file() {
        root.join(edit)
    } else {
        edit.to_path_buf()
    };
    let absolute = std::fs::canonicalize(&candidate)
        .with_context(|| format!("cannot use --edit {}", edit.display()))?;
    let relative = absolute.strip_prefix(root).with_context(|| {
        format!(
            "--edit {} is not inside the workspace {}",
            edit.display(),
            root.display()
        )
    })?;
    check_edit(root, relative)?;
    Ok(relative.to_path_buf())
}

fn check_edit(root: &Path, relative: &Path) -> anyhow::Result<()> {
    let path = root.join(relative);
    if path.extension().is_none_or(|e| e != "rs") || !path.is_file() {
        bail!(
            "--edit {} must be a Rust source file of the workspace {}",
            relative.display(),
            root.display()
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn day_mode_takes_the_generated_script_or_the_given_one_and_needs_one_for_a_workspace() {
        let parse = |argv: &[&str]| Args::try_parse_from(argv).unwrap();
        let generated = day_script(&parse(&["b", "--generate", "3", "--day"])).unwrap();
        assert_eq!(generated.len(), 4);
        let given = day_script(&parse(&[
            "b",
            "--generate",
            "3",
            "--day",
            "--day-script",
            "check; build",
        ]))
        .unwrap();
        assert_eq!(given.len(), 2);
        let error = day_script(&parse(&[
            "b",
            "--workspace",
            "/w",
            "--edit",
            "x.rs",
            "--day",
        ]))
        .unwrap_err()
        .to_string();
        assert!(error.contains("needs --day-script"), "{error}");
    }
}
