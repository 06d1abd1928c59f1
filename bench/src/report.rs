//! Turning a run's results into the table of medians, the ratios against the targets, the
//! JSON document and the summary line.
//!
//! Ratios are ratios of medians over the same rounds: build and CPU figures over all rounds,
//! diagnostic figures over the diagnostic rounds (whose bare `cargo check` followed the same
//! edit). The targets are goals to report against, not assertions: a missed one is printed
//! as missed, and the run still succeeds.

use std::fmt::Write as _;

use serde::Serialize;

use crate::machine::Machine;
use crate::measure::{Results, Round};
use crate::stats::{self, Summary, ratio};

const MB: f64 = 1024.0 * 1024.0;

#[derive(Debug, Clone, Serialize)]
pub(crate) struct Row {
    pub(crate) name: &'static str,
    pub(crate) unit: &'static str,
    /// `None` when not measured (no LSP, or no diagnostic round).
    pub(crate) summary: Option<Summary>,
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct Ratio {
    pub(crate) name: &'static str,
    pub(crate) value: Option<f64>,
    /// The goal, as text.
    pub(crate) target: &'static str,
    /// Whether the goal was met; `None` when there is no goal or no value.
    pub(crate) met: Option<bool>,
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct Report {
    pub(crate) results: Results,
    pub(crate) rows: Vec<Row>,
    pub(crate) ratios: Vec<Ratio>,
    pub(crate) summary_line: String,
}

fn over(
    rounds: &[Round],
    diagnostic_only: bool,
    value: impl Fn(&Round) -> Option<f64>,
) -> Option<Summary> {
    stats::over(rounds, |r| r.diagnostic || !diagnostic_only, value)
}

pub(crate) fn build(results: Results) -> Report {
    let r = &results.rounds;
    let all = |f: fn(&Round) -> f64| over(r, false, move |round| Some(f(round)));
    let diag = |f: fn(&Round) -> Option<f64>| over(r, true, f);

    let plain_check = all(|x| x.plain.check.secs);
    let plain_check_diag = diag(|x| Some(x.plain.check.secs));
    let plain_build = all(|x| x.plain.build.secs);
    let plain_test = all(|x| x.plain.test.secs);
    let plain_cpu = all(|x| x.plain.build_and_test_cpu());
    let plain_same_work_cpu = all(|x| x.plain.same_work_cpu());
    let lsp = diag(|x| x.buildd.lsp_diagnostic_secs);
    let socket = diag(|x| x.buildd.socket_diagnostic_secs);
    let warm_build = all(|x| x.buildd.warm_build.secs);
    let warm_test = all(|x| x.buildd.warm_test.secs);
    let daemon_cpu = all(|x| x.buildd.daemon_cpu_secs);
    let plain_build_and_test = all(|x| x.plain.build.secs + x.plain.test.secs);
    let pipeline = all(|x| x.buildd.pipeline_idle_secs);

    let rows = vec![
        Row {
            name: "plain cargo check",
            unit: "s",
            summary: plain_check,
        },
        Row {
            name: "plain cargo build",
            unit: "s",
            summary: plain_build,
        },
        Row {
            name: "plain cargo test --no-run",
            unit: "s",
            summary: plain_test,
        },
        Row {
            name: "plain CPU, build + test --no-run",
            unit: "s",
            summary: plain_cpu,
        },
        Row {
            name: "plain CPU, check",
            unit: "s",
            summary: all(|x| x.plain.check.cpu_secs),
        },
        Row {
            name: "plain: the daemon's diagnostics job (clippy --all-targets)",
            unit: "s",
            summary: all(|x| x.plain.diagnostics.secs),
        },
        Row {
            name: "plain CPU, the same work (diagnostics job + build + test)",
            unit: "s",
            summary: plain_same_work_cpu,
        },
        Row {
            name: "buildd: edit -> warning over LSP",
            unit: "s",
            summary: lsp,
        },
        Row {
            name: "buildd: edit -> warning event on the socket (secondary)",
            unit: "s",
            summary: socket,
        },
        Row {
            name: "plain cargo build + test --no-run, one after the other",
            unit: "s",
            summary: plain_build_and_test,
        },
        Row {
            name: "buildd: edit -> pipeline idle",
            unit: "s",
            summary: pipeline,
        },
        Row {
            name: "buildd cargo build (warm)",
            unit: "s",
            summary: warm_build,
        },
        Row {
            name: "buildd cargo test --no-run (warm)",
            unit: "s",
            summary: warm_test,
        },
        Row {
            name: "units compiled by the warm commands",
            unit: "",
            summary: all(|x| f64::from(x.buildd.warm_build.compiled + x.buildd.warm_test.compiled)),
        },
        Row {
            name: "daemon CPU for the round",
            unit: "s",
            summary: daemon_cpu,
        },
        Row {
            name: "  of which the daemon process itself",
            unit: "s",
            summary: all(|x| x.buildd.daemon_own_cpu_secs),
        },
        Row {
            name: "daemon peak RSS in the round",
            unit: "MB",
            summary: all(|x| x.buildd.daemon_peak_rss_bytes as f64 / MB),
        },
    ];

    let at_least = |value: Option<f64>, goal: f64| value.map(|v| v >= goal);
    let at_most = |value: Option<f64>, goal: f64| value.map(|v| v <= goal);
    let speedup = ratio(plain_build, warm_build);
    let test_speedup = ratio(plain_test, warm_test);
    let diag_ratio = ratio(lsp, plain_check_diag);
    let cpu_ratio = ratio(daemon_cpu, plain_same_work_cpu);
    let pipeline_ratio = ratio(pipeline, plain_build_and_test);
    let idle = &results.idle;
    let idle_rss_mb = idle.rss_bytes as f64 / MB;
    let ratios = vec![
        Ratio {
            name: "plain build / warm build",
            value: speedup,
            target: ">= 15",
            met: at_least(speedup, 15.0),
        },
        Ratio {
            name: "plain test build / warm test build",
            value: test_speedup,
            target: ">= 10",
            met: at_least(test_speedup, 10.0),
        },
        Ratio {
            name: "first diagnostic (LSP) / bare check",
            value: diag_ratio,
            target: "<= 0.3",
            met: at_most(diag_ratio, 0.3),
        },
        Ratio {
            name: "first diagnostic event (socket, secondary) / bare check",
            value: ratio(socket, plain_check_diag),
            target: "none",
            met: None,
        },
        Ratio {
            name: "pipeline idle / plain build + test --no-run",
            value: pipeline_ratio,
            target: "<= 0.8",
            met: at_most(pipeline_ratio, 0.8),
        },
        Ratio {
            name: "daemon CPU / plain CPU, the same work",
            value: cpu_ratio,
            target: "<= 1.3",
            met: at_most(cpu_ratio, 1.3),
        },
        Ratio {
            name: "daemon CPU / plain CPU, build + test only (secondary)",
            value: ratio(daemon_cpu, plain_cpu),
            target: "none",
            met: None,
        },
        Ratio {
            name: "idle daemon CPU over the window (s)",
            value: Some(idle.cpu_secs),
            target: "0 ticks",
            met: Some(idle.cpu_ticks == 0),
        },
        Ratio {
            name: "idle daemon RSS (MB)",
            value: Some(idle_rss_mb),
            target: "< 40 with 3 workspaces",
            met: (idle.workspaces >= 3).then_some(idle_rss_mb < 40.0),
        },
    ];
    let summary_line = format!(
        "warm-build-speedup={} diag-latency-ratio={}",
        number(speedup),
        number(diag_ratio)
    );
    Report {
        results,
        rows,
        ratios,
        summary_line,
    }
}

pub(crate) fn number(value: Option<f64>) -> String {
    value.map_or_else(|| "unavailable".to_owned(), |v| format!("{v:.2}"))
}

/// The report as text for a terminal; its last line is the summary line.
pub(crate) fn render(report: &Report) -> String {
    let r = &report.results;
    let mut out = String::new();
    write_machine(&mut out, "buildd-bench", &r.machine);
    let diag_rounds = r.rounds.iter().filter(|x| x.diagnostic).count();
    let _ = writeln!(
        out,
        "workspace: {}; edit: {}; {} rounds ({diag_rounds} diagnostic); buildd {} ({}){}",
        r.workspace,
        r.edit.display(),
        r.rounds.len(),
        r.buildd_version,
        r.buildd_binary.display(),
        if r.fast_link {
            "; buildd side with fast_link = true"
        } else {
            ""
        }
    );
    let c = &r.cold;
    let _ = writeln!(
        out,
        "cold: plain check {:.2}s, build {:.2}s, test --no-run {:.2}s (CPU {:.2}s); \
         daemon registration -> idle {:.2}s (CPU {:.2}s), then buildd cargo build {:.2}s \
         ({} compiled), test --no-run {:.2}s ({} compiled)",
        c.plain.check.secs,
        c.plain.build.secs,
        c.plain.test.secs,
        c.plain.build_and_test_cpu(),
        c.buildd.pipeline_idle_secs,
        c.buildd.daemon_cpu_secs,
        c.buildd.warm_build.secs,
        c.buildd.warm_build.compiled,
        c.buildd.warm_test.secs,
        c.buildd.warm_test.compiled,
    );
    if let Some(reason) = &r.lsp_unavailable {
        let _ = writeln!(out, "LSP figure missing: {reason}");
    }
    let _ = writeln!(out);
    write_rows(
        &mut out,
        report
            .rows
            .iter()
            .map(|row| (row.name, row.unit, row.summary)),
    );
    if !r.peak_rss_per_round {
        let _ = writeln!(
            out,
            "(peak RSS could not be reset per round: lifetime peaks)"
        );
    }
    let _ = writeln!(out);
    write_ratios(&mut out, &report.ratios);
    let i = &r.idle;
    let _ = writeln!(
        out,
        "idle: {:.1}s with {} workspaces (window opened {:.1}s after the last job's idle \
         state): daemon CPU {:.3}s ({} ticks), RSS {:.1} MB, {} events",
        i.window_secs,
        i.workspaces,
        i.settle_secs,
        i.cpu_secs,
        i.cpu_ticks,
        i.rss_bytes as f64 / MB,
        i.events
    );
    let _ = writeln!(out);
    let _ = write!(out, "{}", report.summary_line);
    out
}

/// The first lines of a report: its title with the date, the machine and its load.
pub(crate) fn write_machine(out: &mut String, title: &str, m: &Machine) {
    let load = |l: [f64; 3]| format!("{:.2} {:.2} {:.2}", l[0], l[1], l[2]);
    let _ = writeln!(out, "{title}, {}", m.date);
    let _ = writeln!(
        out,
        "machine: {} x {}, {} MB, Linux {}; {}; {}",
        m.cpus, m.cpu_model, m.memory_mb, m.kernel, m.rustc, m.cargo
    );
    let _ = writeln!(
        out,
        "load average: before {}, after {}",
        load(m.load_before),
        load(m.load_after)
    );
}

/// The table of per-round figures: name, unit and summary of each row.
pub(crate) fn write_rows<'a>(
    out: &mut String,
    rows: impl Iterator<Item = (&'a str, &'a str, Option<Summary>)>,
) {
    let _ = writeln!(
        out,
        "{:<60} {:>9} {:>9} {:>9} {:>3}",
        "per round", "median", "min", "max", "n"
    );
    for (name, unit, summary) in rows {
        let name = if unit.is_empty() {
            name.to_owned()
        } else {
            format!("{name} ({unit})")
        };
        match summary {
            Some(s) => {
                let _ = writeln!(
                    out,
                    "{name:<60} {:>9.3} {:>9.3} {:>9.3} {:>3}",
                    s.median, s.min, s.max, s.n
                );
            }
            None => {
                let _ = writeln!(out, "{name:<60} {:>9}", "missing");
            }
        }
    }
}

/// The table of ratios against their targets.
pub(crate) fn write_ratios(out: &mut String, ratios: &[Ratio]) {
    let _ = writeln!(
        out,
        "{:<60} {:>11} {:>24}  met",
        "ratio (of medians)", "value", "target"
    );
    for ratio in ratios {
        let _ = writeln!(
            out,
            "{:<60} {:>11} {:>24}  {}",
            ratio.name,
            number(ratio.value),
            ratio.target,
            met(ratio.met)
        );
    }
}

/// `yes`, `NO`, or `-` for no target or no value.
pub(crate) fn met(met: Option<bool>) -> &'static str {
    match met {
        Some(true) => "yes",
        Some(false) => "NO",
        None => "-",
    }
}
