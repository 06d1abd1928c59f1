//! The day mode's report: per command, plain cargo's time and units against the warm
//! `buildd cargo`'s, side by side; the daemon's CPU against plain cargo's over the same
//! commands; the first diagnostic against plain cargo's diagnostics command; and the summary
//! line.
//!
//! As in the default mode, every figure is a median over the rounds with min and max, a
//! ratio is a ratio of medians, and a target is a goal to report against: a missed one is
//! printed as missed and the run still succeeds.

use std::fmt::Write as _;

use serde::Serialize;

use crate::day::run::{DayResults, DayRound, plain_cpu};
use crate::report::{self, Ratio, met, number};
use crate::stats::{self, Summary, ratio};

const MB: f64 = 1024.0 * 1024.0;

#[derive(Debug, Clone, Serialize)]
pub(crate) struct DayRow {
    pub(crate) name: String,
    pub(crate) unit: &'static str,
    pub(crate) summary: Option<Summary>,
}

/// One command of the script, both sides.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct CommandRow {
    pub(crate) command: String,
    pub(crate) plain_secs: Option<Summary>,
    pub(crate) buildd_secs: Option<Summary>,
    pub(crate) plain_units: Option<Summary>,
    pub(crate) buildd_units: Option<Summary>,
    /// Plain's median time over buildd's.
    pub(crate) speedup: Option<f64>,
    /// Whether the warm command compiled nothing in every round (the target).
    pub(crate) zero_units: Option<bool>,
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct DayReport {
    pub(crate) results: DayResults,
    pub(crate) commands: Vec<CommandRow>,
    pub(crate) rows: Vec<DayRow>,
    pub(crate) ratios: Vec<Ratio>,
    pub(crate) summary_line: String,
}

fn over(
    rounds: &[DayRound],
    diagnostic_only: bool,
    value: impl Fn(&DayRound) -> Option<f64>,
) -> Option<Summary> {
    stats::over(rounds, |r| r.diagnostic || !diagnostic_only, value)
}

pub(crate) fn build(results: DayResults) -> DayReport {
    let r = &results.rounds;
    let commands: Vec<CommandRow> = results
        .commands
        .iter()
        .enumerate()
        .map(|(i, command)| {
            let plain_secs = over(r, false, |x| Some(x.plain[i].secs));
            let buildd_secs = over(r, false, |x| Some(x.buildd.commands[i].secs));
            let buildd_units = over(r, false, |x| Some(f64::from(x.buildd.commands[i].compiled)));
            CommandRow {
                command: command.clone(),
                plain_secs,
                buildd_secs,
                plain_units: over(r, false, |x| Some(f64::from(x.plain[i].compiled))),
                buildd_units,
                speedup: ratio(plain_secs, buildd_secs),
                zero_units: buildd_units.map(|u| u.max == 0.0),
            }
        })
        .collect();

    let plain_all = over(r, false, |x| Some(plain_cpu(&x.plain)));
    let daemon = over(r, false, |x| Some(x.buildd.charged_cpu()));
    let with_commands = over(r, false, |x| {
        Some(x.buildd.charged_cpu() + x.buildd.commands_cpu())
    });
    // Over the whole run: every round's CPU on both sides, and the daemon's tail (what it
    // still held back after the last round, run once the workspace was quiet).
    let plain_total: f64 = r.iter().map(|x| plain_cpu(&x.plain)).sum();
    let daemon_total: f64 =
        r.iter().map(|x| x.buildd.charged_cpu()).sum::<f64>() + results.tail.daemon_cpu_secs;
    let total_ratio = (!r.is_empty() && plain_total > 0.0).then(|| daemon_total / plain_total);
    let lsp = over(r, true, |x| x.buildd.lsp_diagnostic_secs);
    let socket = over(r, true, |x| x.buildd.socket_diagnostic_secs);
    let diag_command = results.diagnostics_command;
    let plain_diag = diag_command.and_then(|i| over(r, true, |x| Some(x.plain[i].secs)));
    let diag_name = diag_command.map_or_else(
        || "no diagnostics command".to_owned(),
        |i| results.commands[i].clone(),
    );
    let row = |name: String, unit, summary| DayRow {
        name,
        unit,
        summary,
    };
    let rows = vec![
        row("plain CPU, all commands".into(), "s", plain_all),
        row(
            "daemon CPU for the round, between-rounds CPU included".into(),
            "s",
            daemon,
        ),
        row(
            "  in the round's window (edit -> last command)".into(),
            "s",
            over(r, false, |x| Some(x.buildd.daemon_cpu_secs)),
        ),
        row(
            "  before it, since the previous window (held-back jobs)".into(),
            "s",
            over(r, false, |x| Some(x.buildd.daemon_between_cpu_secs)),
        ),
        row(
            "  of which the daemon process itself".into(),
            "s",
            over(r, false, |x| Some(x.buildd.daemon_own_cpu_secs)),
        ),
        row(
            "CPU of the buildd cargo commands".into(),
            "s",
            over(r, false, |x| Some(x.buildd.commands_cpu())),
        ),
        row(
            format!("plain {diag_name} (diagnostic rounds)"),
            "s",
            plain_diag,
        ),
        row("buildd: edit -> warning over LSP".into(), "s", lsp),
        row(
            "buildd: edit -> warning event on the socket (secondary)".into(),
            "s",
            socket,
        ),
        row(
            "buildd: edit -> pipeline idle".into(),
            "s",
            over(r, false, |x| Some(x.buildd.pipeline_idle_secs)),
        ),
        row(
            "units the daemon's job compiled".into(),
            "",
            over(r, false, |x| Some(x.buildd.job_units_compiled as f64)),
        ),
        row(
            "daemon peak RSS in the round".into(),
            "MB",
            over(r, false, |x| {
                Some(x.buildd.daemon_peak_rss_bytes as f64 / MB)
            }),
        ),
    ];

    let max_units = commands
        .iter()
        .filter_map(|c| c.buildd_units.map(|u| u.max))
        .fold(None, |acc: Option<f64>, u| {
            Some(acc.map_or(u, |a| a.max(u)))
        });
    let cpu_ratio = ratio(daemon, plain_all);
    let diag_ratio = ratio(lsp, plain_diag);
    let ratios = vec![
        Ratio {
            name: "most units a warm buildd cargo command compiled",
            value: max_units,
            target: "0",
            met: max_units.map(|u| u == 0.0),
        },
        Ratio {
            name: "daemon CPU / plain CPU (all commands)",
            value: cpu_ratio,
            target: "<= 1.3",
            met: cpu_ratio.map(|v| v <= 1.3),
        },
        Ratio {
            name: "daemon CPU / plain CPU, totals over the run with the tail",
            value: total_ratio,
            target: "<= 1.3",
            met: total_ratio.map(|v| v <= 1.3),
        },
        Ratio {
            name: "(daemon + buildd cargo commands) CPU / plain CPU",
            value: ratio(with_commands, plain_all),
            target: "none",
            met: None,
        },
        Ratio {
            name: "first diagnostic (LSP) / plain diagnostics command",
            value: diag_ratio,
            target: "<= 0.7",
            met: diag_ratio.map(|v| v <= 0.7),
        },
    ];
    let summary_line = format!(
        "day-max-units={} day-cpu-ratio={} day-cpu-total-ratio={} day-diag-ratio={}",
        max_units.map_or_else(|| "unavailable".to_owned(), |u| format!("{u:.0}")),
        number(cpu_ratio),
        number(total_ratio),
        number(diag_ratio)
    );
    DayReport {
        results,
        commands,
        rows,
        ratios,
        summary_line,
    }
}

/// `median [min-max]`, or `missing`.
fn range(summary: Option<Summary>, decimals: usize) -> String {
    summary.map_or_else(
        || "missing".to_owned(),
        |s| {
            format!(
                "{:.d$} [{:.d$}-{:.d$}]",
                s.median,
                s.min,
                s.max,
                d = decimals
            )
        },
    )
}

/// The report as text for a terminal; its last line is the summary line.
pub(crate) fn render(report: &DayReport) -> String {
    let r = &report.results;
    let mut out = String::new();
    report::write_machine(&mut out, "buildd-bench --day", &r.machine);
    let diag_rounds = r.rounds.iter().filter(|x| x.diagnostic).count();
    let _ = writeln!(
        out,
        "workspace: {}; edit: {}; {} rounds ({diag_rounds} diagnostic); buildd {} ({})",
        r.workspace,
        r.edit.display(),
        r.rounds.len(),
        r.buildd_version,
        r.buildd_binary.display()
    );
    let _ = writeln!(out, "script: {}", r.commands.join("; "));
    let cold = |costs: &[crate::plain::Cost]| {
        r.commands
            .iter()
            .zip(costs)
            .map(|(c, cost)| format!("{c} {:.2}s ({} units)", cost.secs, cost.compiled))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let _ = writeln!(out, "cold, plain: {}", cold(&r.cold.plain));
    let _ = writeln!(
        out,
        "cold, buildd: registration -> idle {:.2}s, then (learning) {}",
        r.cold.pipeline_idle_secs,
        cold(&r.cold.buildd)
    );
    if let Some(reason) = &r.lsp_unavailable {
        let _ = writeln!(out, "LSP figure missing: {reason}");
    }
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "{:<28} {:>22} {:>22} {:>8} {:>14} {:>14}  0 units",
        "command, median [min-max]",
        "plain (s)",
        "buildd (s)",
        "ratio",
        "plain units",
        "buildd units"
    );
    for c in &report.commands {
        let _ = writeln!(
            out,
            "{:<28} {:>22} {:>22} {:>8} {:>14} {:>14}  {}",
            c.command,
            range(c.plain_secs, 3),
            range(c.buildd_secs, 3),
            number(c.speedup),
            range(c.plain_units, 0),
            range(c.buildd_units, 0),
            met(c.zero_units),
        );
    }
    let _ = writeln!(out);
    report::write_rows(
        &mut out,
        report
            .rows
            .iter()
            .map(|row| (row.name.as_str(), row.unit, row.summary)),
    );
    let _ = writeln!(out);
    report::write_ratios(&mut out, &report.ratios);
    let _ = writeln!(out);
    for round in &r.rounds {
        let _ = writeln!(
            out,
            "round {} ({}, {} first): job #{} [{}] compiled {} units; {} jobs before it since \
             the previous window ({:.1}s CPU)",
            round.round,
            if round.diagnostic {
                "diagnostic"
            } else {
                "code"
            },
            round.first,
            round.buildd.job,
            round.buildd.job_stages.join(", "),
            round.buildd.job_units_compiled,
            round.buildd.jobs_between,
            round.buildd.daemon_between_cpu_secs
        );
    }
    let tail = &r.tail;
    let _ = writeln!(
        out,
        "after the last round: held back [{}]; {:.1}s later {:.1}s daemon CPU, jobs: {}",
        tail.waited_for.join(", "),
        tail.secs,
        tail.daemon_cpu_secs,
        if tail.jobs.is_empty() {
            "none".to_owned()
        } else {
            tail.jobs.join("; ")
        }
    );
    let _ = writeln!(out);
    let _ = write!(out, "{}", report.summary_line);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::day::run::{DayBuilddRound, DayCold, DayTail};
    use crate::machine::Machine;
    use crate::plain::Cost;

    fn cost(secs: f64, cpu_secs: f64, compiled: u32) -> Cost {
        Cost {
            secs,
            cpu_secs,
            compiled,
        }
    }

    fn round(n: u32, plain: [f64; 2], warm_units: [u32; 2], daemon_cpu: f64) -> DayRound {
        DayRound {
            round: n,
            diagnostic: n % 2 == 1,
            first: "plain",
            plain: vec![cost(plain[0], plain[0], 3), cost(plain[1], plain[1], 4)],
            buildd: DayBuilddRound {
                lsp_diagnostic_secs: (n % 2 == 1).then_some(0.5),
                socket_diagnostic_secs: (n % 2 == 1).then_some(0.4),
                pipeline_idle_secs: 9.0,
                job: u64::from(n) + 1,
                job_stages: vec!["clippy".into(), "build".into()],
                job_units_compiled: 7,
                commands: vec![
                    cost(0.1, 0.05, warm_units[0]),
                    cost(0.2, 0.05, warm_units[1]),
                ],
                daemon_cpu_secs: daemon_cpu,
                daemon_between_cpu_secs: 0.0,
                jobs_between: 0,
                daemon_own_cpu_secs: 0.1,
                daemon_peak_rss_bytes: 15 * 1024 * 1024,
            },
        }
    }

    fn results(rounds: Vec<DayRound>) -> DayResults {
        DayResults {
            machine: Machine {
                date: "2026-12-04 19:00 UTC".into(),
                cpu_model: "cpu".into(),
                cpus: 2,
                memory_mb: 1024,
                kernel: "6".into(),
                rustc: "rustc".into(),
                cargo: "cargo".into(),
                load_before: [1.0; 3],
                load_after: [2.0; 3],
            },
            workspace: "generated, 3 crates".into(),
            edit: "crates/lib001/src/lib.rs".into(),
            buildd_binary: "/b/buildd".into(),
            buildd_version: "0.1.0".into(),
            lsp_unavailable: None,
            commands: vec!["cargo clippy".into(), "cargo build --release".into()],
            diagnostics_command: Some(0),
            cold: DayCold {
                plain: vec![cost(5.0, 5.0, 10), cost(9.0, 9.0, 12)],
                pipeline_idle_secs: 20.0,
                buildd: vec![cost(0.3, 0.1, 0), cost(9.5, 9.0, 12)],
            },
            rounds,
            tail: DayTail::default(),
        }
    }

    #[test]
    fn commands_are_side_by_side_and_ratios_are_of_medians() {
        let report = build(results(vec![
            round(1, [2.0, 8.0], [0, 0], 12.0),
            round(2, [1.0, 6.0], [0, 0], 8.0),
            round(3, [3.0, 10.0], [0, 0], 10.0),
        ]));
        let clippy = &report.commands[0];
        assert_eq!(clippy.command, "cargo clippy");
        assert_eq!(clippy.plain_secs.unwrap().median, 2.0);
        assert_eq!(clippy.speedup, Some(20.0));
        assert_eq!(clippy.zero_units, Some(true));
        // Plain CPU per round: 10, 7, 13; the daemon's: 12, 8, 10.
        let cpu = report
            .ratios
            .iter()
            .find(|r| r.name.starts_with("daemon CPU"))
            .unwrap();
        assert_eq!(cpu.value, Some(1.0));
        assert_eq!(cpu.met, Some(true));
        // The diagnostic rounds are 1 and 3: plain clippy 2.0 and 3.0, the LSP 0.5.
        let diag = report
            .ratios
            .iter()
            .find(|r| r.name.starts_with("first"))
            .unwrap();
        assert_eq!(diag.value, Some(0.2));
        assert_eq!(
            report.summary_line,
            "day-max-units=0 day-cpu-ratio=1.00 day-cpu-total-ratio=1.00 day-diag-ratio=0.20"
        );
        let text = render(&report);
        assert!(text.ends_with(&report.summary_line), "{text}");
        assert!(
            text.contains("script: cargo clippy; cargo build --release"),
            "{text}"
        );
        assert!(
            text.contains("round 2 (code, plain first): job #3 [clippy, build] compiled 7 units"),
            "{text}"
        );
    }

    #[test]
    fn a_warm_command_that_compiled_is_a_miss_named_by_its_command() {
        let report = build(results(vec![
            round(1, [2.0, 8.0], [0, 0], 30.0),
            round(2, [2.0, 8.0], [0, 5], 30.0),
        ]));
        assert_eq!(report.commands[0].zero_units, Some(true));
        let release = &report.commands[1];
        assert_eq!(release.zero_units, Some(false));
        assert_eq!(release.buildd_units.unwrap().max, 5.0);
        let met: Vec<Option<bool>> = report.ratios.iter().map(|r| r.met).collect();
        assert_eq!(
            met,
            [Some(false), Some(false), Some(false), None, Some(true)],
            "units and CPU missed, the diagnostic met: {:?}",
            report.ratios
        );
        assert!(
            report
                .summary_line
                .starts_with("day-max-units=5 day-cpu-ratio=3.00")
        );
        let text = render(&report);
        let line = text
            .lines()
            .find(|l| l.starts_with("cargo build --release"))
            .unwrap();
        assert!(line.ends_with("NO"), "{line}");
    }

    #[test]
    fn held_back_jobs_that_ran_between_rounds_and_after_the_last_count_as_the_daemons() {
        let mut rounds = vec![
            round(1, [2.0, 8.0], [0, 0], 10.0),
            round(2, [2.0, 8.0], [0, 0], 10.0),
        ];
        // A held-back job ran while plain cargo took its turn before round 2...
        rounds[1].buildd.daemon_between_cpu_secs = 4.0;
        rounds[1].buildd.jobs_between = 1;
        let mut results = results(rounds);
        // ...and once more after the last round.
        results.tail = DayTail {
            waited_for: vec!["test".into()],
            secs: 40.0,
            daemon_cpu_secs: 6.0,
            jobs: vec!["#9 [test] 3 units".into()],
        };
        let report = build(results);
        let value = |prefix: &str| {
            report
                .ratios
                .iter()
                .find(|r| r.name.starts_with(prefix))
                .unwrap()
                .value
        };
        // Medians of 10 and 14 over plain's 10 and 10; totals (10 + 14 + 6) over 20.
        assert_eq!(value("daemon CPU / plain CPU (all"), Some(1.2));
        assert_eq!(value("daemon CPU / plain CPU, totals"), Some(1.5));
        let text = render(&report);
        assert!(
            text.contains("1 jobs before it since the previous window (4.0s CPU)"),
            "{text}"
        );
        assert!(
            text.contains("after the last round: held back [test]; 40.0s later 6.0s daemon CPU, jobs: #9 [test] 3 units"),
            "{text}"
        );
    }
}
