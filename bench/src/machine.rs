//! What the numbers were measured on: the machine, its load, the toolchain, the date.
//!
//! Benchmarks on a shared machine mean little without the load beside them, so the harness
//! records `/proc/loadavg` before and after the run, as `uptime` shows it.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::env;

#[derive(Debug, Clone, Serialize)]
pub(crate) struct Machine {
    /// `YYYY-MM-DD HH:MM UTC`.
    pub(crate) date: String,
    pub(crate) cpu_model: String,
    pub(crate) cpus: usize,
    pub(crate) memory_mb: u64,
    pub(crate) kernel: String,
    pub(crate) rustc: String,
    pub(crate) cargo: String,
    /// The 1, 5 and 15 minute load averages before the first measurement.
    pub(crate) load_before: [f64; 3],
    /// The same after the last one.
    pub(crate) load_after: [f64; 3],
}

impl Machine {
    pub(crate) fn describe(child_env: &BTreeMap<String, String>) -> Machine {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
        Machine {
            date: utc_now(),
            cpu_model: cpuinfo
                .lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map_or_else(|| "unknown".to_owned(), |(_, m)| m.trim().to_owned()),
            cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
            memory_mb: meminfo
                .lines()
                .find(|l| l.starts_with("MemTotal:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
                .map_or(0, |kb| kb / 1024),
            kernel: std::fs::read_to_string("/proc/sys/kernel/osrelease")
                .map_or_else(|_| "unknown".to_owned(), |k| k.trim().to_owned()),
            rustc: version_of("rustc", child_env),
            cargo: version_of("cargo", child_env),
            load_before: load_average(),
            load_after: [0.0; 3],
        }
    }
}

fn version_of(program: &str, child_env: &BTreeMap<String, String>) -> String {
    env::command(program, child_env)
        .arg("-V")
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map_or_else(
            || format!("{program}: unknown"),
            |o| String::from_utf8_lossy(&o.stdout).trim().to_owned(),
        )
}

pub(crate) fn load_average() -> [f64; 3] {
    let text = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let mut fields = text.split_whitespace().map(|f| f.parse().unwrap_or(0.0));
    [(); 3].map(|()| fields.next().unwrap_or(0.0))
}

/// The current UTC time as `YYYY-MM-DD HH:MM`.
fn utc_now() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    format_utc(secs)
}

fn format_utc(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let (hour, minute) = ((secs % 86_400) / 3600, (secs % 3600) / 60);
    // Howard Hinnant's days-to-civil algorithm.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02} {hour:02}:{minute:02} UTC")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_civil() {
        assert_eq!(format_utc(0), "1970-01-01 00:00 UTC");
        // 2024-02-29 12:34 UTC, a leap day.
        assert_eq!(format_utc(1_709_210_040), "2024-02-29 12:34 UTC");
    }
}
