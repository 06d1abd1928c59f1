//! Running one timed command: its wall time, the CPU time of its whole process tree, its
//! output, and a deadline.
//!
//! The CPU time is the growth of this process's `RUSAGE_CHILDREN` across the command, which
//! is exact only if no other child of the harness is reaped meanwhile: the harness runs its
//! timed commands one at a time and reaps its long-lived children (the daemon, `buildd lsp`)
//! only at the end.

use std::io::Read;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use buildd_daemon::process_group;

use crate::proc_stats;

#[derive(Debug, Clone)]
pub(crate) struct Finished {
    pub(crate) wall: Duration,
    pub(crate) cpu: Duration,
    pub(crate) stdout: String,
    pub(crate) stderr: String,
}

impl Finished {
    /// How many units cargo compiled: with `--message-format=json`, its `compiler-artifact`
    /// messages that are not fresh; otherwise its `Compiling` lines. Zero when everything
    /// was fresh.
    pub(crate) fn compiled(&self) -> u32 {
        count_not_fresh(&self.stdout).unwrap_or_else(|| count_compiling(&self.stderr))
    }
}

/// The `compiler-artifact` messages of cargo's JSON output on `stdout` with `"fresh": false`,
/// or `None` when there is no artifact message at all (the command did not ask for JSON).
/// Lines that are not JSON (a program's or a test binary's own output) are skipped.
fn count_not_fresh(stdout: &str) -> Option<u32> {
    let mut artifacts = 0;
    let mut not_fresh = 0;
    for line in stdout.lines().filter(|l| l.starts_with('{')) {
        let Ok(message) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        if message["reason"] == "compiler-artifact" {
            artifacts += 1;
            if message["fresh"] == false {
                not_fresh += 1;
            }
        }
    }
    (artifacts > 0).then_some(not_fresh)
}

fn count_compiling(stderr: &str) -> u32 {
    stderr
        .lines()
        .filter(|l| l.trim_start().starts_with("Compiling "))
        .count() as u32
}

/// Runs `command` to completion and fails unless it succeeds; `what` names it in errors. On
/// the deadline the command's whole process group is killed.
pub(crate) fn run(mut command: Command, what: &str, timeout: Duration) -> anyhow::Result<Finished> {
    command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // Its own group, so the deadline can stop cargo together with its rustc.
        .process_group(0);
    let cpu_before = proc_stats::children_cpu();
    let started = Instant::now();
    let mut child = command
        .spawn()
        .with_context(|| format!("failed to start {what}"))?;
    let pgid = child.id();
    let stdout = child.stdout.take().expect("piped");
    let stderr = child.stderr.take().expect("piped");
    // Drain both pipes so that a chatty command never blocks on a full one.
    let out_reader = std::thread::spawn(move || drain(stdout));
    let err_reader = std::thread::spawn(move || drain(stderr));
    let (done, watchdog_rx) = mpsc::channel::<()>();
    let watchdog = std::thread::spawn(move || {
        let expired = matches!(
            watchdog_rx.recv_timeout(timeout),
            Err(mpsc::RecvTimeoutError::Timeout)
        );
        if expired {
            process_group::kill(pgid);
        }
        expired
    });
    let status = child
        .wait()
        .with_context(|| format!("failed to wait for {what}"))?;
    let wall = started.elapsed();
    let cpu = proc_stats::children_cpu().saturating_sub(cpu_before);
    let _ = done.send(());
    let expired = watchdog.join().unwrap_or(false);
    let stdout = out_reader.join().unwrap_or_default();
    let stderr = err_reader.join().unwrap_or_default();
    if expired {
        bail!("{what} did not finish within {timeout:?} and was killed");
    }
    if !status.success() {
        let lines: Vec<&str> = stderr.lines().collect();
        let tail = lines[lines.len().saturating_sub(30)..].join("\n");
        bail!("{what} failed ({status}):\n{tail}");
    }
    Ok(Finished {
        wall,
        cpu,
        stdout,
        stderr,
    })
}

fn drain(mut pipe: impl Read) -> String {
    let mut bytes = Vec::new();
    let _ = pipe.read_to_end(&mut bytes);
    String::from_utf8_lossy(&bytes).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_what_cargo_compiled() {
        let stderr = "   Compiling lib001 v0.1.0 (/w/crates/lib001)\n   \
                      Compiling app v0.1.0 (/w/app)\n    Finished `dev` profile\n";
        assert_eq!(count_compiling(stderr), 2);
        assert_eq!(count_compiling("    Finished `dev` profile\n"), 0);
    }

    #[test]
    fn counts_the_artifacts_that_were_not_fresh_in_json_output() {
        let stdout = concat!(
            r#"{"reason":"compiler-artifact","target":{"name":"lib001"},"fresh":false}"#,
            "\n",
            r#"{"reason":"compiler-artifact","target":{"name":"itoa"},"fresh":true}"#,
            "\n",
            r#"{"reason":"compiler-message","message":{"rendered":"warning"}}"#,
            "\n{not json, a program's own line\ntotal 55: 2 digits\n",
            r#"{"reason":"build-finished","success":true}"#,
            "\n"
        );
        assert_eq!(count_not_fresh(stdout), Some(1));
        let fresh = r#"{"reason":"compiler-artifact","fresh":true}"#;
        assert_eq!(count_not_fresh(fresh), Some(0));
        assert_eq!(count_not_fresh("total 55\n"), None);
        let finished = Finished {
            wall: Duration::ZERO,
            cpu: Duration::ZERO,
            stdout: fresh.to_owned(),
            stderr: "   Compiling lib001 v0.1.0 (/w)\n".to_owned(),
        };
        assert_eq!(
            finished.compiled(),
            0,
            "the JSON is what counts when there is some"
        );
    }

    #[test]
    fn reports_failures_with_their_output() {
        let mut cmd = Command::new("sh");
        cmd.args(["-c", "echo oops >&2; exit 3"]);
        let error = run(cmd, "a failing command", Duration::from_secs(10)).unwrap_err();
        let text = format!("{error:#}");
        assert!(
            text.contains("a failing command failed") && text.contains("oops"),
            "{text}"
        );
    }

    #[test]
    fn kills_a_command_at_its_deadline() {
        let mut cmd = Command::new("sh");
        cmd.args(["-c", "sleep 30"]);
        let started = Instant::now();
        let error = run(cmd, "a slow command", Duration::from_millis(200)).unwrap_err();
        assert!(format!("{error}").contains("did not finish"));
        assert!(started.elapsed() < Duration::from_secs(10));
    }
}
