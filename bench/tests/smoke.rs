//! The harness, run as a user runs it, for one round on a tiny generated workspace: so that
//! it cannot rot. It checks that every figure was measured and is sane, not how fast
//! anything is (timing targets live in the benchmark's own report).

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

fn bench_bin() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_buildd-bench"))
}

/// The buildd binary the harness finds by default, next to its own. `cargo test --workspace`
/// builds it (the root package's end-to-end tests need it); `cargo test -p buildd-bench`
/// alone does not, and then the test builds it.
fn buildd_bin() -> PathBuf {
    let path = bench_bin().with_file_name("buildd");
    if !path.is_file() {
        eprintln!("{} is missing: cargo build -p buildd", path.display());
        let mut cargo = Command::new(env!("CARGO"));
        cargo
            .args(["build", "-p", "buildd"])
            .current_dir(env!("CARGO_MANIFEST_DIR"));
        if path.parent().is_some_and(|d| d.ends_with("release")) {
            cargo.arg("--release");
        }
        assert!(
            cargo.status().unwrap().success(),
            "cargo build -p buildd failed"
        );
    }
    path
}

/// Whether this buildd has an `lsp` command: then the LSP figure is required.
fn has_lsp(buildd: &Path) -> bool {
    let help = Command::new(buildd).arg("--help").output().unwrap();
    String::from_utf8_lossy(&help.stdout)
        .lines()
        .any(|l| l.trim_start().starts_with("lsp "))
}

fn secs(value: &Value, what: &str) -> f64 {
    value
        .as_f64()
        .unwrap_or_else(|| panic!("{what} is not a number: {value}"))
}

#[test]
fn one_round_on_a_tiny_generated_workspace() {
    let buildd = buildd_bin();
    let lsp = has_lsp(&buildd);
    let out = tempfile::tempdir().unwrap();
    let json_path = out.path().join("bench.json");
    let mut command = Command::new(bench_bin());
    command
        .args(["--generate", "3", "--runs", "1", "--idle", "2s"])
        .args(["--idle-workspaces", "2", "--timeout", "5m"])
        .arg("--buildd")
        .arg(&buildd)
        .arg("--json")
        .arg(&json_path);
    if lsp {
        command.arg("--require-lsp");
    }
    let output = command.output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    eprintln!("{stdout}\n{}", String::from_utf8_lossy(&output.stderr));
    assert!(output.status.success(), "buildd-bench failed");

    // The last line is the summary line, with numbers where they were measured.
    let last = stdout.lines().last().unwrap();
    let fields: Vec<(&str, &str)> = last
        .split(' ')
        .map(|f| {
            f.split_once('=')
                .unwrap_or_else(|| panic!("not key=value: {last}"))
        })
        .collect();
    assert_eq!(fields[0].0, "warm-build-speedup", "{last}");
    assert_eq!(fields[1].0, "diag-latency-ratio", "{last}");
    assert!(fields[0].1.parse::<f64>().unwrap() > 0.0, "{last}");
    if lsp {
        assert!(fields[1].1.parse::<f64>().unwrap() > 0.0, "{last}");
    } else {
        assert_eq!(fields[1].1, "unavailable", "{last}");
        assert!(
            stdout.contains("LSP figure missing: buildd lsp is not available"),
            "{stdout}"
        );
    }

    let report: Value = serde_json::from_str(&std::fs::read_to_string(&json_path).unwrap())
        .expect("--json writes JSON");
    let results = &report["results"];
    let rounds = results["rounds"].as_array().unwrap();
    assert_eq!(rounds.len(), 1);
    let round = &rounds[0];
    assert_eq!(
        round["diagnostic"], true,
        "the first round is a diagnostic round"
    );
    for (what, value) in [
        ("plain check", &round["plain"]["check"]["secs"]),
        ("plain build", &round["plain"]["build"]["secs"]),
        ("plain test build", &round["plain"]["test"]["secs"]),
        ("plain CPU", &round["plain"]["build"]["cpu_secs"]),
        (
            "socket diagnostic",
            &round["buildd"]["socket_diagnostic_secs"],
        ),
        ("pipeline idle", &round["buildd"]["pipeline_idle_secs"]),
        ("warm build", &round["buildd"]["warm_build"]["secs"]),
        ("warm test build", &round["buildd"]["warm_test"]["secs"]),
        ("daemon CPU", &round["buildd"]["daemon_cpu_secs"]),
        (
            "cold plain build",
            &results["cold"]["plain"]["build"]["secs"],
        ),
        (
            "cold pipeline",
            &results["cold"]["buildd"]["pipeline_idle_secs"],
        ),
    ] {
        assert!(secs(value, what) > 0.0, "{what}: {value}");
    }
    // The edit really rebuilt something on both sides.
    assert!(round["plain"]["build"]["compiled"].as_u64().unwrap() > 0);
    assert!(round["buildd"]["job_units_compiled"].as_u64().unwrap() > 0);
    let diagnostic = secs(
        &round["buildd"]["socket_diagnostic_secs"],
        "socket diagnostic",
    );
    assert!(diagnostic <= secs(&round["buildd"]["pipeline_idle_secs"], "pipeline idle"));
    if lsp {
        assert!(secs(&round["buildd"]["lsp_diagnostic_secs"], "LSP diagnostic") > 0.0);
        assert_eq!(results["lsp_unavailable"], Value::Null);
    } else {
        assert_eq!(round["buildd"]["lsp_diagnostic_secs"], Value::Null);
    }
    assert!(round["buildd"]["daemon_peak_rss_bytes"].as_u64().unwrap() > 1024 * 1024);
    let idle = &results["idle"];
    assert_eq!(idle["workspaces"], 2);
    assert!(idle["rss_bytes"].as_u64().unwrap() > 1024 * 1024);
    assert!(secs(&idle["window_secs"], "idle window") >= 2.0);
    assert!(report["rows"].as_array().unwrap().len() > 5);
    assert!(report["ratios"].as_array().unwrap().len() > 3);
}

#[test]
fn one_day_round_on_a_tiny_generated_workspace() {
    // The default jobs the script does not need would wait 5 minutes for quiet after the
    // round.
    let (stdout, report) = run_bench(&[
        "--generate",
        "3",
        "--day",
        "--runs",
        "1",
        "--unused-quiet",
        "2s",
    ]);
    let last = stdout.lines().last().unwrap();
    assert!(last.starts_with("day-max-units="), "{last}");
    assert!(
        last.contains(" day-cpu-ratio=") && last.contains(" day-diag-ratio="),
        "{last}"
    );

    let results = &report["results"];
    assert_eq!(
        results["commands"],
        serde_json::json!([
            "cargo clippy",
            "cargo run -p app",
            "cargo test -p lib001",
            "cargo build --release"
        ])
    );
    let round = &results["rounds"].as_array().unwrap()[0];
    let plain = round["plain"].as_array().unwrap();
    let warm = round["buildd"]["commands"].as_array().unwrap();
    assert_eq!((plain.len(), warm.len()), (4, 4));
    for (i, (p, w)) in plain.iter().zip(warm).enumerate() {
        assert!(secs(&p["secs"], "plain command") > 0.0, "command {i}: {p}");
        assert!(secs(&w["secs"], "buildd command") > 0.0, "command {i}: {w}");
        // The edit is to the base library, which every command compiles: plain cargo's
        // units are counted from its JSON, so a count of zero would mean the count is broken.
        assert!(p["compiled"].as_u64().unwrap() > 0, "command {i}: {p}");
        assert!(w["compiled"].is_u64(), "command {i}: {w}");
    }
    assert!(secs(&round["buildd"]["daemon_cpu_secs"], "daemon CPU") > 0.0);
    assert!(round["buildd"]["job_units_compiled"].as_u64().unwrap() > 0);
    let stages = round["buildd"]["job_stages"].as_array().unwrap();
    assert!(
        stages.iter().any(|s| s == "build --release --workspace"),
        "the release build was learned: {stages:?}"
    );
}

#[test]
fn one_restart_round_on_a_tiny_generated_workspace() {
    let (stdout, report) = run_bench(&[
        "--generate",
        "3",
        "--restart",
        "--runs",
        "1",
        "--edit",
        "app/src/main.rs",
    ]);
    let last = stdout.lines().last().unwrap();
    assert!(last.starts_with("restart-ratio="), "{last}");
    let round = &report["results"]["rounds"].as_array().unwrap()[0];
    let build = secs(&round["plain_build"]["secs"], "plain cargo build");
    assert!(build > 0.0, "{round}");
    // The edit is to the binary: plain cargo compiled it.
    assert_eq!(round["plain_build"]["compiled"], 1, "{round}");
    assert!(
        secs(&round["plain_running_secs"], "plain running") >= build,
        "{round}"
    );
    // Every figure was measured; which came first is timing, for the e2e tests to prove
    // with a held job (tests/e2e/watch_restart.rs), not for a smoke test.
    for field in [
        "restarted_secs",
        "executable_secs",
        "build_stage_secs",
        "job_finished_secs",
    ] {
        assert!(secs(&round[field], field) > 0.0, "{round}");
    }
    assert!(round["before_job_end"].is_boolean(), "{round}");
}

/// Runs the harness with `args`, the debug `buildd`, a five-minute timeout and `--json`; it
/// must succeed. Returns its stdout and the JSON report.
fn run_bench(args: &[&str]) -> (String, Value) {
    let buildd = buildd_bin();
    let out = tempfile::tempdir().unwrap();
    let json_path = out.path().join("report.json");
    let output = Command::new(bench_bin())
        .args(args)
        .args(["--timeout", "5m", "--buildd"])
        .arg(&buildd)
        .arg("--json")
        .arg(&json_path)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    eprintln!("{stdout}\n{}", String::from_utf8_lossy(&output.stderr));
    assert!(output.status.success(), "buildd-bench {args:?} failed");
    let report = serde_json::from_str(&std::fs::read_to_string(&json_path).unwrap())
        .expect("--json writes JSON");
    (stdout, report)
}
