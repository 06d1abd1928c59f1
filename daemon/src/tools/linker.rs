//! The linker: buildd's wrapper, the choice a setting makes, and the measurement behind
//! `linker = "auto"`.
//!
//! Cargo fingerprints the configured linker of every unit, so buildd never puts a path that
//! differs between homes or machines there. Instead cargo runs `buildd-cc`, found on a `PATH`
//! that buildd prepends with its tools dir: the same name everywhere, so that seeded and
//! imported dirs stay fresh. The wrapper calls `cc` (or the configured driver) with the flag
//! that picks the linker (`-fuse-ld=mold`...), which it reads from `BUILDD_LINKER`, and
//! appends each link's wall-clock time to `BUILDD_LINK_LOG`, which is how `buildd status`
//! knows the link share of a job. While `auto` has not measured yet, it also captures the
//! link's inputs (hard links into `BUILDD_LINK_CAPTURE`), so that [`measure`] can run the
//! very same links again with each candidate.
//!
//! The measurement is real: each captured link of the workspace's binaries runs with every
//! linker available here, three times each in interleaved rounds, and the fastest minimum
//! wins. It is remembered in the tools dir, per workspace and toolchain.

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use thiserror::Error;

/// The name cargo runs as the linker, from `PATH`.
pub(crate) const WRAPPER_NAME: &str = "buildd-cc";
/// Linkers `auto` may pick, with the flag that selects each through `cc`.
const CANDIDATES: &[(&str, Option<&str>, Option<&str>)] = &[
    // (name, flag, program that must exist on PATH)
    ("default", None, None),
    ("lld", Some("-fuse-ld=lld"), None),
    ("mold", Some("-fuse-ld=mold"), Some("ld.mold")),
    ("bfd", Some("-fuse-ld=bfd"), Some("ld.bfd")),
];
/// Timed runs of each link per candidate; the minimum counts.
const ROUNDS: usize = 5;
/// Links measured at most: the largest of the captured ones.
const MAX_LINKS: usize = 3;
/// A candidate must beat the default by this share to be picked: a smaller difference is
/// noise on a busy machine, and the default needs no wrapper flag.
const MARGIN: f64 = 0.05;

const WRAPPER: &str = r#"#!/bin/sh
# buildd's linker wrapper, written by the buildd daemon (see daemon/src/tools/linker.rs).
# Cargo runs it as `buildd-cc` from PATH; it runs the configured driver with the chosen
# linker and logs how long each link took.
driver="${BUILDD_LINKER_DRIVER:-cc}"
if [ -n "$BUILDD_LINK_CAPTURE" ] && [ -d "$BUILDD_LINK_CAPTURE" ]; then
    dir=$(mktemp -d "$BUILDD_LINK_CAPTURE/link.XXXXXX") && {
        i=0
        for arg in "$@"; do
            printf '%s\0' "$arg" >> "$dir/args"
            case "$arg" in
                "$BUILDD_LINK_TARGET"/*)
                    if [ -f "$arg" ]; then ln "$arg" "$dir/$i" 2>/dev/null || cp "$arg" "$dir/$i"; fi ;;
            esac
            i=$((i + 1))
        done
    }
fi
case "${BUILDD_LINKER:-default}" in
    mold) set -- "$@" -fuse-ld=mold ;;
    lld) set -- "$@" -fuse-ld=lld ;;
    bfd) set -- "$@" -fuse-ld=bfd ;;
esac
start=$(date +%s%N)
"$driver" "$@"
status=$?
end=$(date +%s%N)
if [ -n "$BUILDD_LINK_LOG" ]; then
    echo "$(( (end - start) / 1000000 )) $status" >> "$BUILDD_LINK_LOG"
fi
exit $status
"#;

/// A `linker` setting that names no linker buildd knows.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("unknown linker `{name}`: use auto, default, mold, lld, bfd or a path to a linker driver")]
pub(crate) struct UnknownLinker {
    pub(crate) name: String,
}

/// Why `auto` has no measurement yet (the dispatcher logs it and tries after a later job).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub(crate) enum MeasureError {
    #[error("no link of a binary was captured")]
    NothingCaptured,
    /// The default linker could not relink the captures; `why` is its error, if it ran.
    #[error("the default linker failed: {why:?}")]
    DefaultFailed { why: Option<String> },
}

/// Why one captured link did not run with a candidate.
#[derive(Debug, Error)]
enum LinkError {
    #[error("cannot run cc: {source}")]
    Spawn { source: io::Error },
    /// The first lines of what `cc` printed.
    #[error("{stderr}")]
    Failed { stderr: String },
}

/// A linker setting, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Setting {
    Auto,
    Default,
    /// `mold`, `lld` or `bfd`, through `cc -fuse-ld=`.
    Named(&'static str),
    /// A linker driver, as cargo's `target.<triple>.linker` would take it.
    Driver(PathBuf),
}

impl Setting {
    pub(crate) fn parse(text: &str) -> Result<Setting, UnknownLinker> {
        match text {
            "auto" => Ok(Setting::Auto),
            "default" => Ok(Setting::Default),
            "mold" => Ok(Setting::Named("mold")),
            "lld" => Ok(Setting::Named("lld")),
            "bfd" => Ok(Setting::Named("bfd")),
            path if path.contains('/') => Ok(Setting::Driver(PathBuf::from(path))),
            other => Err(UnknownLinker {
                name: other.to_owned(),
            }),
        }
    }
}

/// What `auto` measured on a workspace.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Measurement {
    pub(crate) chosen: String,
    /// Candidate to milliseconds: the sum over the measured links of the fastest run.
    pub(crate) millis: BTreeMap<String, u64>,
    pub(crate) links: usize,
    /// Seconds since the epoch.
    pub(crate) at: u64,
    /// Candidates not measured (could not link here, or are the default itself), and why.
    pub(crate) not_measured: BTreeMap<String, String>,
}

/// Writes the wrapper into `<tools>/bin` (when it changed) and returns that dir.
pub(crate) fn install_wrapper(tools: &Path) -> io::Result<PathBuf> {
    use crate::home::replace_file;
    let bin = tools.join("bin");
    fs::create_dir_all(&bin)?;
    let path = bin.join(WRAPPER_NAME);
    if fs::read_to_string(&path).ok().as_deref() != Some(WRAPPER) {
        replace_file::replace(&path, WRAPPER.as_bytes(), replace_file::PROGRAM, false)?;
    }
    Ok(bin)
}

/// Where the measurement of a workspace (named by its dir under `targets/`) and toolchain is
/// remembered.
pub(crate) fn memory_path(tools: &Path, workspace_dir_name: &str, rustc: &str) -> PathBuf {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(rustc.as_bytes());
    let short: String = digest[..4].iter().map(|b| format!("{b:02x}")).collect();
    tools
        .join("linkers")
        .join(format!("{workspace_dir_name}-{short}.json"))
}

pub(crate) fn remembered(path: &Path) -> Option<Measurement> {
    serde_json::from_str(&fs::read_to_string(path).ok()?).ok()
}

pub(crate) fn remember(path: &Path, measurement: &Measurement) -> io::Result<()> {
    fs::create_dir_all(path.parent().unwrap_or(Path::new(".")))?;
    let text = serde_json::to_string_pretty(measurement).map_err(io::Error::other)?;
    fs::write(path, text)
}

/// Whether `program` is on `path_var` (a `PATH` value).
pub(crate) fn on_path(program: &str, path_var: &str) -> bool {
    std::env::split_paths(path_var).any(|dir| dir.join(program).is_file())
}

/// Sums and clears the link log: the milliseconds the linker ran since the last call.
pub(crate) fn take_link_log(log: &Path) -> Option<u64> {
    let text = fs::read_to_string(log).ok()?;
    let _ = fs::remove_file(log);
    let total: u64 = text
        .lines()
        .filter_map(|l| l.split_whitespace().next()?.parse::<u64>().ok())
        .sum();
    (!text.trim().is_empty()).then_some(total)
}

/// One captured link: its arguments, with the inputs buildd kept.
struct Capture {
    args: Vec<String>,
    input_bytes: u64,
}

fn read_captures(dir: &Path) -> Vec<Capture> {
    let mut captures = Vec::new();
    for entry in fs::read_dir(dir).into_iter().flatten().flatten() {
        let link = entry.path();
        let Ok(raw) = fs::read(link.join("args")) else {
            continue;
        };
        let mut args: Vec<String> = raw
            .split(|b| *b == 0)
            .filter(|a| !a.is_empty())
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect();
        let mut input_bytes = 0;
        let mut output = None;
        for (i, arg) in args.iter_mut().enumerate() {
            let kept = link.join(i.to_string());
            if let Ok(meta) = fs::metadata(&kept) {
                input_bytes += meta.len();
                *arg = kept.to_string_lossy().into_owned();
            }
        }
        if let Some(o) = args.iter().position(|a| a == "-o") {
            output = args.get(o + 1).cloned();
            if let Some(slot) = args.get_mut(o + 1) {
                *slot = link.join("out").to_string_lossy().into_owned();
            }
        }
        // Build scripts are linked too; their links are tiny and unrepresentative.
        if output.is_some_and(|o| !o.contains("/build/")) {
            captures.push(Capture { args, input_bytes });
        }
    }
    captures.sort_by_key(|c| std::cmp::Reverse(c.input_bytes));
    captures.truncate(MAX_LINKS);
    captures
}

/// Runs the captured links under `capture_dir` with every available candidate and picks the
/// fastest. `path_var` is the workspace's `PATH`, where `cc` and the linkers are found.
pub(crate) fn measure(capture_dir: &Path, path_var: &str) -> Result<Measurement, MeasureError> {
    let captures = read_captures(capture_dir);
    if captures.is_empty() {
        return Err(MeasureError::NothingCaptured);
    }
    let available: Vec<_> = CANDIDATES
        .iter()
        .filter(|(_, _, program)| program.is_none_or(|p| on_path(p, path_var)))
        .collect();
    let mut best: BTreeMap<String, Vec<Duration>> = BTreeMap::new();
    let mut failed: BTreeMap<String, String> = BTreeMap::new();
    // Since Rust 1.90, rustc links x86_64 Linux binaries with its own rust-lld
    // (`-fuse-ld=lld` and `-B` its gcc-ld dir): `lld` would time the default twice.
    if captures
        .iter()
        .any(|c| c.args.iter().any(|a| a == "-fuse-ld=lld"))
    {
        failed.insert(
            "lld".to_owned(),
            "the default here: rustc already links with rust-lld".to_owned(),
        );
    }
    // One untimed round first warms the page cache for every candidate alike; then rounds
    // interleave the candidates, so that a change in the machine's load hits all of them.
    for round in 0..=ROUNDS {
        for (name, flag, _) in &available {
            if failed.contains_key(*name) {
                continue;
            }
            let mut total = Duration::ZERO;
            for capture in &captures {
                match run_link(&capture.args, *flag, path_var) {
                    Ok(took) => total += took,
                    Err(e) => {
                        failed.insert((*name).to_owned(), e.to_string());
                        break;
                    }
                }
            }
            if round > 0 && !failed.contains_key(*name) {
                best.entry((*name).to_owned()).or_default().push(total);
            }
        }
    }
    let millis: BTreeMap<String, u64> = best
        .iter()
        .filter_map(|(name, runs)| Some((name.clone(), runs.iter().min()?.as_millis() as u64)))
        .collect();
    let default = *millis
        .get("default")
        .ok_or_else(|| MeasureError::DefaultFailed {
            why: failed.get("default").cloned(),
        })?;
    let (fastest, fastest_ms) = millis
        .iter()
        .min_by_key(|(_, ms)| **ms)
        .map(|(n, ms)| (n.clone(), *ms))
        .unwrap_or(("default".into(), default));
    let chosen = if (fastest_ms as f64) < default as f64 * (1.0 - MARGIN) {
        fastest
    } else {
        "default".to_owned()
    };
    Ok(Measurement {
        chosen,
        millis,
        links: captures.len(),
        at: SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
        not_measured: failed,
    })
}

fn run_link(args: &[String], flag: Option<&str>, path_var: &str) -> Result<Duration, LinkError> {
    let mut command = Command::new("cc");
    command
        .args(args)
        .args(flag)
        .env("PATH", path_var)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let started = Instant::now();
    let output = command
        .output()
        .map_err(|source| LinkError::Spawn { source })?;
    let took = started.elapsed();
    if output.status.success() {
        Ok(took)
    } else {
        let stderr = String::from_utf8_lossy(&output.stderr);
        Err(LinkError::Failed {
            stderr: stderr.lines().take(3).collect::<Vec<_>>().join(" "),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_parse_and_unknown_names_say_what_is_allowed() {
        assert_eq!(Setting::parse("auto").unwrap(), Setting::Auto);
        assert_eq!(Setting::parse("mold").unwrap(), Setting::Named("mold"));
        assert_eq!(
            Setting::parse("/usr/bin/clang").unwrap(),
            Setting::Driver("/usr/bin/clang".into())
        );
        let err = Setting::parse("gold").unwrap_err().to_string();
        assert!(err.contains("gold") && err.contains("mold"), "{err}");
    }

    #[test]
    fn the_link_log_is_summed_and_cleared() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("link.log");
        assert_eq!(take_link_log(&log), None);
        fs::write(&log, "120 0\n30 0\n").unwrap();
        assert_eq!(take_link_log(&log), Some(150));
        assert!(!log.exists());
    }

    /// The wrapper and the measurement on a real link: a C program built with the real `cc`
    /// through the wrapper in capture mode, then linked again by each candidate here.
    #[test]
    fn the_wrapper_captures_a_real_link_that_measure_runs_again() {
        let dir = tempfile::tempdir().unwrap();
        let bin = install_wrapper(dir.path()).unwrap();
        let target = dir.path().join("target");
        let capture = dir.path().join("capture");
        fs::create_dir_all(target.join("debug/deps")).unwrap();
        fs::create_dir_all(&capture).unwrap();
        let source = target.join("debug/deps/main.c");
        fs::write(&source, "int main(void) { return 0; }\n").unwrap();
        let object = target.join("debug/deps/main.o");
        let status = Command::new("cc")
            .args(["-c", "-o"])
            .arg(&object)
            .arg(&source)
            .status()
            .unwrap();
        assert!(status.success());
        let path_var = format!(
            "{}:{}",
            bin.display(),
            std::env::var("PATH").unwrap_or_default()
        );
        let log = dir.path().join("link.log");
        let output = target.join("debug/deps/app-1");
        let status = Command::new(WRAPPER_NAME)
            .arg(&object)
            .arg("-o")
            .arg(&output)
            .env("PATH", &path_var)
            .env("BUILDD_LINK_CAPTURE", &capture)
            .env("BUILDD_LINK_TARGET", &target)
            .env("BUILDD_LINK_LOG", &log)
            .status()
            .unwrap();
        assert!(status.success());
        assert!(output.is_file());
        assert!(take_link_log(&log).is_some());
        // rustc deletes its object files after linking: the capture must not need them.
        fs::remove_file(&object).unwrap();
        let measurement = measure(&capture, &path_var).unwrap();
        assert_eq!(measurement.links, 1);
        assert!(
            measurement.millis.contains_key("default"),
            "{measurement:?}"
        );
        assert!(
            measurement.millis.contains_key(&measurement.chosen),
            "{measurement:?}"
        );
    }
}
