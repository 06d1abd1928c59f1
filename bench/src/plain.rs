//! The baseline: the user's own cargo in the copy's own `target/`, with no buildd anywhere.
//!
//! After an edit the user runs `cargo check` (what a bare editor check would run), then
//! `cargo build` and `cargo test --no-run`. Check artifacts are not build artifacts, so the
//! check first neither helps nor hinders the build after it; the test build after the build
//! reuses the dependencies' libraries, exactly as a user's `cargo test` after `cargo build`.
//!
//! Last, apart from the user's commands, the daemon's default diagnostics job as plain cargo
//! (`cargo clippy --workspace --all-targets`, or `check` without clippy): with the build and
//! test build, the same work the daemon does after the edit, for the CPU comparison. It runs
//! in a target dir of its own (`target/buildd-bench-diagnostics`): clippy's wrapper changes
//! the key of cargo's cache of `rustc -vV` (`.rustc_info.json`), so in the same dir it would
//! make the next round's `cargo check` ask rustc again, a cost the user's commands without it
//! do not pay (measured: 0.09 s to 0.12-0.15 s on the generated 100-crate workspace).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::ensure;
use serde::Serialize;

use crate::command::{self, Finished};
use crate::edit::{Edit, EditTarget};
use crate::env;

/// One command's cost.
#[derive(Debug, Clone, Copy, Serialize)]
pub(crate) struct Cost {
    pub(crate) secs: f64,
    pub(crate) cpu_secs: f64,
    /// Units cargo compiled.
    pub(crate) compiled: u32,
}

impl From<&Finished> for Cost {
    fn from(f: &Finished) -> Cost {
        Cost {
            secs: f.wall.as_secs_f64(),
            cpu_secs: f.cpu.as_secs_f64(),
            compiled: f.compiled(),
        }
    }
}

#[derive(Debug, Clone, Copy, Serialize)]
pub(crate) struct PlainRound {
    pub(crate) check: Cost,
    pub(crate) build: Cost,
    pub(crate) test: Cost,
    /// The daemon's default diagnostics job run with plain cargo, after the rest.
    pub(crate) diagnostics: Cost,
}

impl PlainRound {
    /// The user's build and test build.
    pub(crate) fn build_and_test_cpu(&self) -> f64 {
        self.build.cpu_secs + self.test.cpu_secs
    }

    /// The same work as the daemon's default jobs: the diagnostics job, the build and the
    /// test build.
    pub(crate) fn same_work_cpu(&self) -> f64 {
        self.diagnostics.cpu_secs + self.build_and_test_cpu()
    }
}

pub(crate) struct PlainSide {
    pub(crate) root: PathBuf,
    env: BTreeMap<String, String>,
    timeout: Duration,
}

/// The daemon's default diagnostics job: clippy where the toolchain has it, else check.
pub(crate) fn diagnostics_job(env: &BTreeMap<String, String>, root: &Path) -> Vec<&'static str> {
    let mut clippy = env::command("cargo", env);
    clippy
        .args(["clippy", "--version"])
        .current_dir(root)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    let subcommand = match clippy.status().is_ok_and(|s| s.success()) {
        true => "clippy",
        false => "check",
    };
    vec![subcommand, "--workspace", "--all-targets"]
}

impl PlainSide {
    pub(crate) fn new(root: &Path, env: &BTreeMap<String, String>, timeout: Duration) -> PlainSide {
        PlainSide {
            root: root.to_path_buf(),
            env: env.clone(),
            timeout,
        }
    }

    pub(crate) fn cargo(&self, args: &[&str]) -> anyhow::Result<Finished> {
        let mut cmd = env::command("cargo", &self.env);
        cmd.args(args).current_dir(&self.root);
        let what = format!("cargo {} in {}", args.join(" "), self.root.display());
        command::run(cmd, &what, self.timeout)
    }

    /// The daemon's default diagnostics job, in its own target dir (see the module's
    /// comment).
    fn diagnostics_job(&self) -> anyhow::Result<Finished> {
        let args = diagnostics_job(&self.env, &self.root);
        let mut cmd = env::command("cargo", &self.env);
        cmd.args(&args)
            .env(
                "CARGO_TARGET_DIR",
                self.root.join("target/buildd-bench-diagnostics"),
            )
            .current_dir(&self.root);
        let what = format!("cargo {} in {}", args.join(" "), self.root.display());
        command::run(cmd, &what, self.timeout)
    }

    /// The three commands on the unedited copy, from nothing.
    pub(crate) fn cold(&self) -> anyhow::Result<PlainRound> {
        self.commands(None)
    }

    /// Applies `edit` and times the three commands after it.
    pub(crate) fn round(&self, target: &EditTarget, edit: &Edit) -> anyhow::Result<PlainRound> {
        target.apply(&self.root, edit)?;
        self.commands(edit.warning_marker.as_deref())
    }

    fn commands(&self, marker: Option<&str>) -> anyhow::Result<PlainRound> {
        let check = self.cargo(&["check"])?;
        if let Some(marker) = marker {
            // The edit must really produce the warning the buildd side waits for; a crate
            // that allows unused variables would make the diagnostic rounds meaningless.
            ensure!(
                check.stderr.contains(marker),
                "cargo check printed no warning about `{marker}` after the edit: does the \
                 edited crate allow unused variables? Choose another --edit file.\n{}",
                check.stderr
            );
        }
        let build = self.cargo(&["build"])?;
        let test = self.cargo(&["test", "--no-run"])?;
        let diagnostics = self.diagnostics_job()?;
        Ok(PlainRound {
            check: Cost::from(&check),
            build: Cost::from(&build),
            test: Cost::from(&test),
            diagnostics: Cost::from(&diagnostics),
        })
    }
}
