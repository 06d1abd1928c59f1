//! The `fast_link` setting: debug-info settings that make each link of a binary read and
//! write less, decided here as what they add to cargo's environment.
//!
//! On Linux, rustc puts a dev build's DWARF into every object file, and the linker copies
//! all of it (hundreds of megabytes for a binary on a large dependency tree) into the binary
//! at every link, however small the edit. `split-debuginfo = "unpacked"` leaves the DWARF in
//! `.dwo` files beside the objects, where debuggers and the standard library's backtraces
//! find it, and the linker only sees small skeleton units. What it saves was measured, not
//! guessed (docs/benchmarks.md, "fast_link"), and a panic backtrace and gdb still show file
//! and line with it (tests/e2e/fast_link.rs proves both on every run).
//!
//! It only goes through cargo's environment, never the user's files: the settings are
//! `CARGO_PROFILE_*` variables, which cargo's configuration puts above the manifest's
//! profiles. A variable the client's environment sets already is left as the user set it.
//! The key holds `fast_link` itself ([`super::key::BuildKey::new`]), so a dir built with it
//! is never shared with one built without.

use std::collections::BTreeMap;

use crate::wire::protocol::FastLinkStatus;

/// What `fast_link` sets, as cargo's environment variables.
///
/// Only the winner of the measurement. `debug = "line-tables-only"` for the dependencies on
/// top of it saved nothing measurable (and has no environment form: `package."*"` needs
/// `--config`, which plain cargo after `buildd env` would not get), and `line-tables-only`
/// for everything linked no faster while it takes the variables of the user's own code from
/// the debugger.
pub(crate) const SETS: &[(&str, &str)] = &[("CARGO_PROFILE_DEV_SPLIT_DEBUGINFO", "unpacked")];

/// What it saved where it was measured, and where the figure comes from (status shows it).
pub(crate) const SAVING: &str = "measured on buildd's own binary (173 libraries, rust-lld, 2 \
     cores at load 12-14): its rebuild after an edit of main.rs took 4.7 s instead of 7.4 s, \
     its link 2.3 s instead of 4.7 s (medians of 5; docs/benchmarks.md, \"fast_link\")";

/// What `fast_link` adds to cargo's environment for a client whose environment is `env`,
/// and what status shows of it.
pub(crate) fn decide(
    enabled: bool,
    env: &BTreeMap<String, String>,
) -> (BTreeMap<String, String>, FastLinkStatus) {
    let mut set = BTreeMap::new();
    let mut theirs = Vec::new();
    if enabled {
        for (name, value) in SETS {
            match env.get(*name) {
                Some(user) => theirs.push(format!("{name}={user}")),
                None => {
                    set.insert((*name).to_owned(), (*value).to_owned());
                }
            }
        }
    }
    let status = FastLinkStatus {
        enabled,
        sets: set.iter().map(|(k, v)| format!("{k}={v}")).collect(),
        saving: SAVING.to_owned(),
        note: (!theirs.is_empty()).then(|| {
            format!(
                "your environment sets {}; buildd leaves it alone",
                theirs.join(", ")
            )
        }),
    };
    (set, status)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn off_it_adds_nothing_and_on_it_adds_its_settings() {
        let (set, status) = decide(false, &BTreeMap::new());
        assert!(set.is_empty() && status.sets.is_empty() && !status.enabled);
        assert!(status.note.is_none());

        let (set, status) = decide(true, &BTreeMap::new());
        assert_eq!(set["CARGO_PROFILE_DEV_SPLIT_DEBUGINFO"], "unpacked");
        assert_eq!(set.len(), SETS.len());
        assert!(status.enabled);
        assert!(
            status
                .sets
                .contains(&"CARGO_PROFILE_DEV_SPLIT_DEBUGINFO=unpacked".to_owned())
        );
        assert!(status.saving.contains("docs/benchmarks.md"), "{status:?}");
    }

    #[test]
    fn a_setting_of_the_user_is_left_alone_and_named() {
        let env = BTreeMap::from([(
            "CARGO_PROFILE_DEV_SPLIT_DEBUGINFO".to_owned(),
            "packed".to_owned(),
        )]);
        let (set, status) = decide(true, &env);
        assert!(!set.contains_key("CARGO_PROFILE_DEV_SPLIT_DEBUGINFO"));
        assert_eq!(
            status.note.as_deref(),
            Some(
                "your environment sets CARGO_PROFILE_DEV_SPLIT_DEBUGINFO=packed; buildd leaves \
                 it alone"
            )
        );
    }
}
