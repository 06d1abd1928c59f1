//! The one environment every process the harness starts runs with.
//!
//! Both sides must build with the same environment, and buildd's must not change between
//! the daemon, `buildd lsp` and `buildd cargo`: a different build-relevant variable gives the
//! workspace another build key, which would make the "warm" build a cold one. So the harness
//! computes the environment once, from its own minus what `cargo run`/`cargo test` add for
//! the harness itself (which no user's shell has) and minus anything that redirects cargo's
//! output away from the copy's own `target/`, and starts every child with exactly that.

use std::collections::BTreeMap;
use std::path::Path;

/// Variables cargo sets for the program it runs; they describe the harness, not the user.
const CARGO_RUN_PREFIXES: [&str; 5] = [
    "CARGO_PKG_",
    "CARGO_MANIFEST_",
    "CARGO_BIN_",
    "CARGO_CRATE_",
    "__CARGO",
];
const REMOVED: [&str; 10] = [
    "CARGO",
    "CARGO_PRIMARY_PACKAGE",
    "CARGO_TARGET_TMPDIR",
    "CARGO_RUSTC_CURRENT_DIR",
    // Plain cargo must build in the copy's own target dir, and buildd sets its own.
    "CARGO_TARGET_DIR",
    "CARGO_BUILD_TARGET_DIR",
    "CARGO_BUILD_BUILD_DIR",
    // A harness's daemon must never be told not to start, nor play another version.
    "BUILDD_NO_START",
    "BUILDD_TEST_FAKE_VERSION",
    "BUILDD_HOME",
];

/// The environment for children, with `BUILDD_HOME` set to `home`.
pub(crate) fn child_env(home: &Path) -> BTreeMap<String, String> {
    let mut env = filter(
        std::env::vars_os()
            .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?))),
    );
    env.insert(
        "BUILDD_HOME".to_owned(),
        home.to_string_lossy().into_owned(),
    );
    env
}

fn filter(vars: impl Iterator<Item = (String, String)>) -> BTreeMap<String, String> {
    vars.filter(|(k, _)| {
        !REMOVED.contains(&k.as_str()) && !CARGO_RUN_PREFIXES.iter().any(|p| k.starts_with(p))
    })
    .collect()
}

/// A command with exactly `env`.
pub(crate) fn command(
    program: impl AsRef<std::ffi::OsStr>,
    env: &BTreeMap<String, String>,
) -> std::process::Command {
    let mut command = std::process::Command::new(program);
    command.env_clear().envs(env);
    command
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drops_what_cargo_run_adds_and_keeps_the_users_settings() {
        let vars = [
            ("PATH", "/bin"),
            ("CARGO", "/x/cargo"),
            ("CARGO_PKG_NAME", "buildd-bench"),
            ("CARGO_MANIFEST_DIR", "/src/bench"),
            ("CARGO_TARGET_DIR", "/shared"),
            ("CARGO_HOME", "/home/me/.cargo"),
            ("RUSTFLAGS", "-Cdebuginfo=1"),
            ("BUILDD_NO_START", "1"),
        ]
        .map(|(k, v)| (k.to_owned(), v.to_owned()));
        let env = filter(vars.into_iter());
        let names: Vec<&str> = env.keys().map(String::as_str).collect();
        assert_eq!(names, ["CARGO_HOME", "PATH", "RUSTFLAGS"]);
    }
}
