//! `--restart`: the bot loop. After each edit, how long until the new program runs: with
//! plain `cargo build` (and the binary started by hand after it), and with
//! `buildd watch --run`, which restarts the program as soon as the daemon's job links it.
//!
//! The program must announce its start with a line the harness knows (`--announce`; the
//! generated `app` prints `total ...` first). The watch runs for the whole run in the buildd
//! copy, started by the harness with `--no-start --plain`, and each of its output lines is
//! stamped on arrival by a reader thread; every start of the program prints the announce line
//! once, so the first one after an edit is the new program's. The rounds alternate which side
//! goes first as the default mode does, and each waits for the daemon's pipeline to be idle
//! before the next edit, so the two sides never build at the same time.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use buildd_daemon::protocol::JobResult;
use serde::Serialize;

use crate::daemon::Daemon;
use crate::measure::{self, Setup, buildd_first, progress};
use crate::plain::{Cost, PlainSide};
use crate::report::{self, Ratio};
use crate::stats::{self, Summary};
use crate::{env, machine};

/// What the bot loop runs and how it says it started.
pub(crate) struct Program {
    /// The binary `buildd watch --run --bin` runs and plain cargo builds.
    pub(crate) bin: String,
    /// Part of the line it prints when it starts.
    pub(crate) announce: String,
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct RestartRound {
    pub(crate) round: u32,
    /// `plain` or `buildd`.
    pub(crate) first: &'static str,
    /// Plain `cargo build` after the edit.
    pub(crate) plain_build: Cost,
    /// Edit to the announce line of the binary started by hand after that build.
    pub(crate) plain_running_secs: f64,
    /// Save to the new program's announce line in `buildd watch --run`'s output.
    pub(crate) restarted_secs: f64,
    /// Save to the daemon's `executable` event for the binary, as the harness received it.
    pub(crate) executable_secs: Option<f64>,
    /// Save to the start of the job's build stage (what ran before it: the clippy stage).
    pub(crate) build_stage_secs: Option<f64>,
    /// Save to the job's `job_finished`.
    pub(crate) job_finished_secs: f64,
    pub(crate) job: u64,
    /// Whether the announce line came before the job's `job_finished`.
    pub(crate) before_job_end: bool,
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct RestartResults {
    pub(crate) machine: machine::Machine,
    pub(crate) workspace: String,
    pub(crate) edit: PathBuf,
    pub(crate) bin: String,
    pub(crate) buildd_binary: PathBuf,
    pub(crate) buildd_version: String,
    /// The buildd side ran with `fast_link = true` (`--fast-link`).
    #[serde(default)]
    pub(crate) fast_link: bool,
    pub(crate) rounds: Vec<RestartRound>,
}

/// `buildd watch --run` in the background, its stdout lines stamped as they arrive.
struct Watch {
    child: Child,
    lines: mpsc::Receiver<(Instant, String)>,
    stderr_path: PathBuf,
}

impl Watch {
    fn start(
        buildd: &Path,
        env: &std::collections::BTreeMap<String, String>,
        root: &Path,
        bin: &str,
        stderr_path: &Path,
    ) -> anyhow::Result<Watch> {
        let stderr = std::fs::File::create(stderr_path)
            .with_context(|| format!("failed to create {}", stderr_path.display()))?;
        let mut child = env::command(buildd, env)
            .args(["--no-start", "watch", "--run", "--plain", "--bin", bin])
            .current_dir(root)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .with_context(|| format!("failed to run {} watch --run", buildd.display()))?;
        let stdout = child.stdout.take().expect("piped");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send((Instant::now(), line)).is_err() {
                    break;
                }
            }
        });
        Ok(Watch {
            child,
            lines,
            stderr_path: stderr_path.to_path_buf(),
        })
    }

    /// Waits for the next line containing `text` and returns when it arrived; the lines
    /// before it are dropped.
    fn wait_for(&self, text: &str, timeout: Duration) -> anyhow::Result<Instant> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok((at, line)) if line.contains(text) => return Ok(at),
                Ok(_) => {}
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    bail!("buildd watch --run printed no line with `{text}` within {timeout:?}")
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => bail!(
                    "buildd watch --run ended: {}",
                    crate::daemon::read_tail(&self.stderr_path)
                ),
            }
        }
    }

    /// The lines that arrived so far, without waiting.
    fn drain(&self) -> Vec<String> {
        self.lines.try_iter().map(|(_, line)| line).collect()
    }
}

impl Drop for Watch {
    /// SIGINT, as Ctrl-C: the watch stops the program with it.
    fn drop(&mut self) {
        let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGINT);
        let _ = self.child.wait();
    }
}

pub(crate) fn run(setup: &Setup, program: &Program) -> anyhow::Result<RestartResults> {
    let prepared = measure::prepare(setup, 1)?;
    let mut machine = machine::Machine::describe(&prepared.child_env);
    let plain = PlainSide::new(&prepared.plain_root, &prepared.child_env, setup.timeout);
    progress("cold: plain cargo build");
    plain.cargo(&["build"])?;
    progress("cold: the daemon's first job");
    let mut daemon = Daemon::start(
        &setup.buildd,
        &prepared.child_env,
        &prepared.logs.join("daemon.stderr"),
    )?;
    let root = daemon.register(&prepared.buildd_root, &setup.settings)?;
    let settled = daemon.wait_settled(&root, 0, None, setup.timeout)?;
    ensure!(
        settled.summary.result == JobResult::Success,
        "the daemon's cold job on {} failed: {}",
        root.display(),
        settled.summary.failure.clone().unwrap_or_default()
    );
    let watch = Watch::start(
        &setup.buildd,
        &prepared.child_env,
        &root,
        &program.bin,
        &prepared.logs.join("watch.stderr"),
    )?;
    // The workspace is warm: the watch starts the program at once.
    watch.wait_for(&program.announce, setup.timeout)?;

    let mut rounds = Vec::new();
    for round in 1..=setup.runs {
        let edit = prepared.target.edit(round, false);
        let buildd_goes_first = buildd_first(round);
        progress(&format!(
            "round {round}/{}: {}",
            setup.runs,
            if buildd_goes_first {
                "buildd watch --run, then plain"
            } else {
                "plain, then buildd watch --run"
            }
        ));
        let plain_side = || plain_round(&plain, &prepared.target, &edit, program, setup);
        let mut buildd_side = || {
            buildd_round(
                &mut daemon,
                &watch,
                &root,
                &prepared.target,
                &edit,
                program,
                setup,
            )
        };
        let (plain_result, buildd_result) = if buildd_goes_first {
            let b = buildd_side()?;
            (plain_side()?, b)
        } else {
            let p = plain_side()?;
            (p, buildd_side()?)
        };
        rounds.push(RestartRound {
            round,
            first: if buildd_goes_first { "buildd" } else { "plain" },
            plain_build: plain_result.0,
            plain_running_secs: plain_result.1,
            ..buildd_result
        });
    }
    machine.load_after = machine::load_average();
    drop(watch);
    let results = RestartResults {
        machine,
        workspace: setup.label.clone(),
        edit: setup.edit.clone(),
        bin: program.bin.clone(),
        buildd_binary: setup.buildd.clone(),
        buildd_version: daemon.version.clone(),
        fast_link: setup.settings.fast_link == Some(true),
        rounds,
    };
    daemon.stop()?;
    Ok(results)
}

/// Plain side: the edit, `cargo build`, then the binary started by hand until it announces
/// itself (and stopped).
fn plain_round(
    plain: &PlainSide,
    target: &crate::edit::EditTarget,
    edit: &crate::edit::Edit,
    program: &Program,
    setup: &Setup,
) -> anyhow::Result<(Cost, f64)> {
    let edited = Instant::now();
    target.apply(&plain.root, edit)?;
    let build = plain.cargo(&["build"])?;
    let binary = plain.root.join("target/debug").join(&program.bin);
    let mut child = std::process::Command::new(&binary)
        .current_dir(&plain.root)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .with_context(|| format!("failed to start {}", binary.display()))?;
    let stdout = child.stdout.take().expect("piped");
    let (tx, rx) = mpsc::channel();
    let announce = program.announce.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if line.contains(&announce) {
                let _ = tx.send(Instant::now());
            }
        }
    });
    let running = rx.recv_timeout(setup.timeout);
    let _ = child.kill();
    let _ = child.wait();
    let running = running.map_err(|_| {
        anyhow::anyhow!(
            "{} printed no line with `{}`",
            binary.display(),
            program.announce
        )
    })?;
    Ok((Cost::from(&build), (running - edited).as_secs_f64()))
}

/// buildd side: the edit saved as an editor saves it, the new program's announce line in the
/// watch's output, then the job's end and the idle pipeline.
fn buildd_round(
    daemon: &mut Daemon,
    watch: &Watch,
    root: &Path,
    target: &crate::edit::EditTarget,
    edit: &crate::edit::Edit,
    program: &Program,
    setup: &Setup,
) -> anyhow::Result<RestartRound> {
    let after = daemon.last_job(root);
    let stale = watch.drain();
    ensure!(
        !stale.iter().any(|l| l.contains(&program.announce)),
        "the program started between rounds: {stale:?}"
    );
    let path = root.join(&target.relative);
    let edited = Instant::now();
    target.apply(root, edit)?;
    daemon.saved(&path)?;
    let restarted = watch.wait_for(&program.announce, setup.timeout)?;
    let settled = daemon.wait_settled(root, after, None, setup.timeout)?;
    ensure!(
        settled.summary.result == JobResult::Success,
        "the daemon's job #{} after the edit failed: {}",
        settled.summary.id,
        settled.summary.failure.clone().unwrap_or_default()
    );
    let since = |at: Instant| (at - edited).as_secs_f64();
    let binary_name = std::ffi::OsStr::new(&program.bin);
    let executable = settled
        .executables
        .iter()
        .find(|(path, fresh, _)| {
            !fresh
                && path.file_name() == Some(binary_name)
                && path.parent().is_some_and(|p| p.ends_with("debug"))
        })
        .map(|(_, _, at)| since(*at));
    let build_stage = settled
        .stages_started
        .iter()
        .find(|(name, _)| name == "build")
        .map(|(_, at)| since(*at));
    Ok(RestartRound {
        round: 0,
        first: "",
        plain_build: Cost {
            secs: 0.0,
            cpu_secs: 0.0,
            compiled: 0,
        },
        plain_running_secs: 0.0,
        restarted_secs: since(restarted),
        executable_secs: executable,
        build_stage_secs: build_stage,
        job_finished_secs: since(settled.finished_at),
        job: settled.summary.id,
        before_job_end: restarted < settled.finished_at,
    })
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct RestartReport {
    pub(crate) results: RestartResults,
    pub(crate) rows: Vec<report::Row>,
    pub(crate) ratios: Vec<Ratio>,
    pub(crate) summary_line: String,
}

/// The save -> restarted figure against plain `cargo build`: the target is <= 0.5.
pub(crate) const TARGET: f64 = 0.5;

pub(crate) fn build(results: RestartResults) -> RestartReport {
    let r = &results.rounds;
    let of = |f: fn(&RestartRound) -> Option<f64>| stats::over(r, |_| true, f);
    let plain_build = of(|x| Some(x.plain_build.secs));
    let plain_running = of(|x| Some(x.plain_running_secs));
    let restarted = of(|x| Some(x.restarted_secs));
    let row = |name, summary: Option<Summary>| report::Row {
        name,
        unit: "s",
        summary,
    };
    let rows = vec![
        row("plain cargo build", plain_build),
        row(
            "plain: edit -> program running (build, then start)",
            plain_running,
        ),
        row("buildd watch --run: save -> new program running", restarted),
        row(
            "buildd: save -> the binary's executable event",
            of(|x| x.executable_secs),
        ),
        row(
            "buildd: save -> the job's build stage started",
            of(|x| x.build_stage_secs),
        ),
        row(
            "buildd: save -> job finished",
            of(|x| Some(x.job_finished_secs)),
        ),
    ];
    let value = stats::ratio(restarted, plain_build);
    let ratios = vec![
        Ratio {
            name: "save -> restarted / plain cargo build",
            value,
            target: "<= 0.5",
            met: value.map(|v| v <= TARGET),
        },
        Ratio {
            name: "save -> restarted / plain edit -> running",
            value: stats::ratio(restarted, plain_running),
            target: "none",
            met: None,
        },
    ];
    let summary_line = format!("restart-ratio={}", report::number(value));
    RestartReport {
        results,
        rows,
        ratios,
        summary_line,
    }
}

pub(crate) fn render(report: &RestartReport) -> String {
    use std::fmt::Write as _;
    let r = &report.results;
    let mut out = String::new();
    report::write_machine(&mut out, "buildd-bench --restart", &r.machine);
    let _ = writeln!(
        out,
        "workspace: {}; edit: {}; program: {}; {} rounds; buildd {} ({}){}",
        r.workspace,
        r.edit.display(),
        r.bin,
        r.rounds.len(),
        r.buildd_version,
        r.buildd_binary.display(),
        if r.fast_link {
            "; buildd side with fast_link = true"
        } else {
            ""
        }
    );
    let _ = writeln!(out);
    report::write_rows(
        &mut out,
        report
            .rows
            .iter()
            .map(|row| (row.name, row.unit, row.summary)),
    );
    let early = r.rounds.iter().filter(|x| x.before_job_end).count();
    let _ = writeln!(
        out,
        "rounds in which the new program ran before its job finished: {early} of {}",
        r.rounds.len()
    );
    let _ = writeln!(out);
    report::write_ratios(&mut out, &report.ratios);
    let _ = writeln!(out);
    let _ = write!(out, "{}", report.summary_line);
    out
}
