//! Build keys: what makes two builds' artifacts incompatible, and the isolated target dir
//! that each key gets.
//!
//! A key covers the toolchain (`rustc -vV` and `cargo -V`, run in the workspace so rustup's
//! `rust-toolchain` files apply), the target triple, the profile, the features and every
//! environment variable that changes what cargo or rustc produce (`RUSTFLAGS`, linkers,
//! wrappers, `CARGO_PROFILE_*`...). Its dir lives under the user's cache dir, one dir per
//! workspace and per key, never under the workspace.
//!
//! **Invariant:** the daemon's jobs and the user's `buildd cargo` run cargo with exactly the
//! environment [`cargo_env`] makes for a key, so cargo's fingerprints match.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::wire::protocol::{BuildKeyInfo, CargoEnv};

/// Variables that change what cargo builds. Prefix entries end in `_`.
const KEY_ENV: &[&str] = &[
    "RUSTFLAGS",
    "CARGO_ENCODED_RUSTFLAGS",
    "RUSTDOCFLAGS",
    "CARGO_ENCODED_RUSTDOCFLAGS",
    "RUSTC",
    "RUSTC_WRAPPER",
    "RUSTC_WORKSPACE_WRAPPER",
    "RUSTUP_TOOLCHAIN",
    "RUSTC_BOOTSTRAP",
    "CARGO_INCREMENTAL",
    "CARGO_BUILD_",
    "CARGO_PROFILE_",
    "CARGO_TARGET_",
    "CARGO_UNSTABLE_",
    "CC",
    "CXX",
    "CFLAGS",
    "CXXFLAGS",
    "AR",
];

/// Variables buildd itself decides for its isolated dir; never taken from the user.
const OVERRIDDEN_ENV: &[&str] = &[
    "CARGO_TARGET_DIR",
    "CARGO_BUILD_TARGET_DIR",
    "CARGO_BUILD_BUILD_DIR",
];

/// The part of an environment that decides the key, plus `PATH`, which decides which cargo
/// and rustc run: two environments that agree on it need no new load.
pub(crate) fn build_env(env: &BTreeMap<String, String>) -> BTreeMap<&str, &str> {
    env.iter()
        .filter(|(k, _)| is_key_var(k) || *k == "PATH")
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect()
}

fn is_key_var(name: &str) -> bool {
    !OVERRIDDEN_ENV.contains(&name)
        && KEY_ENV.iter().any(|k| {
            if k.ends_with('_') {
                name.starts_with(k)
            } else {
                name == *k
            }
        })
}

/// A resolved build key and the dir it owns.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct BuildKey {
    pub(crate) info: BuildKeyInfo,
    pub(crate) target_dir: PathBuf,
}

/// The toolchain as the workspace sees it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Toolchain {
    /// `rustc -vV`, whole.
    pub(crate) rustc_verbose: String,
    /// `cargo -V`.
    pub(crate) cargo_version: String,
}

impl Toolchain {
    fn field(&self, name: &str) -> Option<&str> {
        self.rustc_verbose
            .lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(": "))
            .map(str::trim)
    }

    pub(crate) fn release_line(&self) -> &str {
        self.rustc_verbose.lines().next().unwrap_or("").trim()
    }

    pub(crate) fn host(&self) -> &str {
        self.field("host").unwrap_or("unknown")
    }
}

impl BuildKey {
    /// `linker` is the workspace's linker setting; `default` leaves existing keys as they
    /// were, and so does `fast_link` off.
    pub(crate) fn new(
        targets_dir: &Path,
        workspace_root: &Path,
        toolchain: &Toolchain,
        env: &BTreeMap<String, String>,
        linker: &str,
        fast_link: bool,
    ) -> BuildKey {
        let key_env: BTreeMap<String, String> = env
            .iter()
            .filter(|(k, _)| is_key_var(k))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let host = toolchain.host().to_owned();
        let target = env
            .get("CARGO_BUILD_TARGET")
            .cloned()
            .unwrap_or_else(|| host.clone());
        // The foundation warms the dev profile with default features, which is what plain
        // `cargo build` and `cargo test --no-run` use.
        let profile = "dev".to_owned();
        let features = "default".to_owned();

        let mut hasher = Sha256::new();
        for part in [
            toolchain.rustc_verbose.as_str(),
            toolchain.cargo_version.as_str(),
            &target,
            &profile,
            &features,
        ] {
            hasher.update(part.as_bytes());
            hasher.update([0]);
        }
        for (k, v) in &key_env {
            hasher.update(k.as_bytes());
            hasher.update([b'=']);
            hasher.update(v.as_bytes());
            hasher.update([0]);
        }
        // The linker is part of the key: cargo's fingerprints do not see buildd's choice (it
        // goes through the environment of one wrapper), so binaries linked by different
        // linkers would otherwise share a dir.
        if linker != "default" {
            hasher.update(b"linker=");
            hasher.update(linker.as_bytes());
            hasher.update([0]);
        }
        // So is `fast_link`: its settings reach cargo through buildd's part of the
        // environment, which the hash above (the client's part) does not see.
        if fast_link {
            hasher.update(b"fast_link");
            hasher.update([0]);
        }
        let hash = hex(&hasher.finalize()[..8]);
        let target_dir = workspace_dir(targets_dir, workspace_root).join(&hash);
        BuildKey {
            info: BuildKeyInfo {
                hash,
                rustc: toolchain.release_line().to_owned(),
                host,
                target,
                profile,
                features,
                env: key_env,
                linker: linker.to_owned(),
                fast_link,
            },
            target_dir,
        }
    }
}

/// `<targets>/<dir name>-<hash of the root path>`: readable, and unique per workspace.
pub(crate) fn workspace_dir(targets_dir: &Path, workspace_root: &Path) -> PathBuf {
    let name = workspace_root
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "root".to_owned());
    let name: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .take(40)
        .collect();
    let digest = Sha256::digest(workspace_root.as_os_str().as_encoded_bytes());
    targets_dir.join(format!("{name}-{}", hex(&digest[..6])))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// What buildd's tools (the linker wrapper, sccache) add to cargo's environment for a
/// workspace; decided by the dispatcher from the settings, see `tools.rs`.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct ToolEnv {
    pub(crate) set: BTreeMap<String, String>,
    /// Give cargo the target dir as `--config` arguments instead of `CARGO_TARGET_DIR`: cargo
    /// passes its whole environment to rustc, sccache hashes every `CARGO_*` variable into
    /// its cache keys, and a path that differs between two homes or machines would make every
    /// lookup a miss.
    pub(crate) dir_in_args: bool,
}

/// The environment changes that point cargo at a key's isolated dir and at buildd's tools:
/// variables to set, variables to remove from the client's environment, and arguments to put
/// before cargo's subcommand.
pub(crate) fn cargo_env(target_dir: &Path, tools: &ToolEnv) -> CargoEnv {
    let dir = target_dir.to_string_lossy().into_owned();
    let mut env = CargoEnv::default();
    if tools.dir_in_args {
        let quoted = toml::Value::String(dir).to_string();
        env.args = vec![
            "--config".to_owned(),
            format!("build.target-dir={quoted}"),
            "--config".to_owned(),
            format!("build.build-dir={quoted}"),
        ];
        env.remove = OVERRIDDEN_ENV.iter().map(|v| (*v).to_owned()).collect();
    } else {
        env.set = BTreeMap::from([
            ("CARGO_TARGET_DIR".to_owned(), dir.clone()),
            // Cargo's `build.build-dir` would otherwise let a user's config share
            // intermediate artifacts (and their lock) with the user's own builds.
            ("CARGO_BUILD_BUILD_DIR".to_owned(), dir),
        ]);
        env.remove = vec!["CARGO_BUILD_TARGET_DIR".to_owned()];
    }
    env.set
        .extend(tools.set.iter().map(|(k, v)| (k.clone(), v.clone())));
    env
}

/// Puts `prefix` (from [`cargo_env`]) before a user's cargo arguments, after a leading
/// `+toolchain`, which rustup's cargo proxy needs first.
pub fn cargo_args<T: From<String> + AsRef<std::ffi::OsStr>>(
    prefix: &[String],
    args: Vec<T>,
) -> Vec<T> {
    let mut args = args.into_iter().peekable();
    let mut out = Vec::new();
    if let Some(first) = args.peek()
        && first.as_ref().to_string_lossy().starts_with('+')
    {
        out.extend(args.next());
    }
    out.extend(prefix.iter().cloned().map(T::from));
    out.extend(args);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toolchain() -> Toolchain {
        Toolchain {
            rustc_verbose: "rustc 1.95.0 (59807616e 2026-04-14)\nbinary: rustc\nhost: x86_64-unknown-linux-gnu\nrelease: 1.95.0\n".into(),
            cargo_version: "cargo 1.95.0".into(),
        }
    }

    /// The key of `/w/app` under `/c` with the default linker and `fast_link` off.
    fn key_of(tc: &Toolchain, env: &[(&str, &str)]) -> BuildKey {
        key_with(tc, env, "default", false)
    }

    fn key_with(tc: &Toolchain, env: &[(&str, &str)], linker: &str, fast_link: bool) -> BuildKey {
        let env: BTreeMap<String, String> = env
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        BuildKey::new(
            Path::new("/c"),
            Path::new("/w/app"),
            tc,
            &env,
            linker,
            fast_link,
        )
    }

    #[test]
    fn unrelated_env_does_not_change_the_key() {
        let tc = toolchain();
        let a = key_of(&tc, &[]);
        let b = key_of(&tc, &[("TERM", "xterm"), ("CARGO_TARGET_DIR", "/t")]);
        assert_eq!(a, b);
        assert_eq!(a.info.host, "x86_64-unknown-linux-gnu");
        assert!(a.target_dir.to_str().unwrap().starts_with("/c/app-"));
    }

    #[test]
    fn rustflags_toolchain_linker_and_fast_link_change_the_key() {
        let tc = toolchain();
        let base = key_of(&tc, &[]);
        let flags = key_of(&tc, &[("RUSTFLAGS", "-Copt-level=1")]);
        let mut other = tc.clone();
        other.rustc_verbose = other.rustc_verbose.replace("1.95.0", "1.96.0");
        let newer = key_of(&other, &[]);
        let mold = key_with(&tc, &[], "mold", false);
        let fast = key_with(&tc, &[], "default", true);
        for changed in [&flags, &newer, &mold, &fast] {
            assert_ne!(base.info.hash, changed.info.hash, "{changed:?}");
            assert_ne!(base.target_dir, changed.target_dir);
        }
        assert_ne!(mold.info.hash, fast.info.hash);
        assert_eq!(mold.info.linker, "mold");
        assert!(fast.info.fast_link && !base.info.fast_link);
        // Its settings come from buildd, not the client: the key's env stays the client's.
        assert!(fast.info.env.is_empty());
        assert_eq!(flags.info.env.get("RUSTFLAGS").unwrap(), "-Copt-level=1");
    }

    #[test]
    fn the_dir_goes_in_arguments_when_tools_ask_and_after_a_toolchain() {
        let tools = ToolEnv {
            set: BTreeMap::from([("RUSTC_WRAPPER".into(), "/s/sccache".into())]),
            dir_in_args: true,
        };
        let env = cargo_env(Path::new("/c/my dir"), &tools);
        assert!(!env.set.contains_key("CARGO_TARGET_DIR"));
        assert!(env.remove.contains(&"CARGO_TARGET_DIR".to_owned()));
        assert_eq!(env.args[1], "build.target-dir=\"/c/my dir\"");
        assert_eq!(env.set["RUSTC_WRAPPER"], "/s/sccache");
        let args: Vec<String> = cargo_args(&env.args, vec!["+nightly".into(), "build".into()]);
        assert_eq!(args[0], "+nightly");
        assert_eq!(args[1], "--config");
        assert_eq!(args.last().unwrap(), "build");

        let plain = cargo_env(Path::new("/c/d"), &ToolEnv::default());
        assert_eq!(plain.set["CARGO_TARGET_DIR"], "/c/d");
        assert!(plain.args.is_empty());
    }

    #[test]
    fn key_variables_are_named_or_prefixed_and_never_the_dirs_buildd_decides() {
        for var in [
            "RUSTFLAGS",
            "CC",
            "CARGO_PROFILE_DEV_OPT_LEVEL",
            "CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_LINKER",
            "CARGO_BUILD_TARGET",
        ] {
            assert!(is_key_var(var), "{var}");
        }
        for var in [
            "TERM",
            "CARGO_TARGET_DIR",
            "CARGO_BUILD_TARGET_DIR",
            "CARGO_BUILD_BUILD_DIR",
            // A prefix entry is a prefix, not a name: `CARGO_PROFILE` alone is nothing.
            "CARGO_PROFILE",
            "CCACHE_DIR",
            "RUSTFLAGS_EXTRA",
        ] {
            assert!(!is_key_var(var), "{var}");
        }
        let env = BTreeMap::from([
            ("PATH".to_owned(), "/usr/bin".to_owned()),
            ("HOME".to_owned(), "/h".to_owned()),
            ("RUSTFLAGS".to_owned(), "-Dwarnings".to_owned()),
            ("CARGO_TARGET_DIR".to_owned(), "/t".to_owned()),
        ]);
        assert_eq!(
            build_env(&env),
            BTreeMap::from([("PATH", "/usr/bin"), ("RUSTFLAGS", "-Dwarnings")])
        );
    }

    #[test]
    fn the_toolchain_reads_its_release_line_and_host_from_rustc() {
        let tc = toolchain();
        assert_eq!(tc.release_line(), "rustc 1.95.0 (59807616e 2026-04-14)");
        assert_eq!(tc.host(), "x86_64-unknown-linux-gnu");
        // `host-ish: x` is not `host: x`; without the line the host is unknown.
        let odd = Toolchain {
            rustc_verbose: "rustc 1.95.0\nhost-ish: nope\n".into(),
            cargo_version: String::new(),
        };
        assert_eq!(odd.host(), "unknown");
        let empty = Toolchain {
            rustc_verbose: String::new(),
            cargo_version: String::new(),
        };
        assert_eq!(empty.release_line(), "");
    }

    #[test]
    fn without_tools_in_args_the_dir_is_set_in_the_environment() {
        let tools = ToolEnv {
            set: BTreeMap::from([("BUILDD_LINKER".into(), "mold".into())]),
            dir_in_args: false,
        };
        let env = cargo_env(Path::new("/c/d"), &tools);
        assert_eq!(env.set["CARGO_TARGET_DIR"], "/c/d");
        assert_eq!(env.set["CARGO_BUILD_BUILD_DIR"], "/c/d");
        assert_eq!(env.set["BUILDD_LINKER"], "mold");
        assert_eq!(env.remove, ["CARGO_BUILD_TARGET_DIR"]);
        assert!(env.args.is_empty());
        // A user's arguments stay as given when there is nothing to put before them.
        let args: Vec<String> = cargo_args(&env.args, vec!["build".into(), "-p".into()]);
        assert_eq!(args, ["build", "-p"]);
    }

    #[test]
    fn workspaces_with_the_same_name_get_different_dirs() {
        let a = workspace_dir(Path::new("/c"), Path::new("/a/app"));
        let b = workspace_dir(Path::new("/c"), Path::new("/b/app"));
        assert_ne!(a, b);
    }
}
