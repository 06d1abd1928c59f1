//! The isolated dirs: the names inside them (`layout`), listing, sizes, the budget and gc
//! (`dirs`), seeding a new key dir from a similar one, archives for export and import, and
//! where buildd keeps its copies of cargo's cache of the compiler's answers.

pub mod archive;
pub(crate) mod archive_error;
pub(crate) mod dirs;
pub(crate) mod layout;
pub(crate) mod seed;
pub(crate) mod unpack;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::build::rustc_info::RustcInfo;

/// cargo's cache of the compiler's answers in the key dir `dir` (which is cargo's build dir),
/// with buildd's copies in the dir's state.
pub(crate) fn rustc_info(dir: &Path) -> RustcInfo {
    RustcInfo::new(
        dir,
        dir.join(layout::STATE_DIR).join(layout::RUSTC_INFO_DIR),
    )
}

/// [`rustc_info`] for a user's `buildd cargo`, from the environment and arguments the daemon
/// gave it (`CARGO_BUILD_BUILD_DIR`, or `--config build.build-dir=...` with buildd's
/// sccache); `None` when they name no build dir.
pub fn rustc_info_of(env_set: &BTreeMap<String, String>, args: &[String]) -> Option<RustcInfo> {
    let dir = match env_set.get("CARGO_BUILD_BUILD_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => args.iter().find_map(|arg| {
            let value = arg.strip_prefix("build.build-dir=")?;
            let table: toml::Table = toml::from_str(&format!("dir = {value}")).ok()?;
            Some(PathBuf::from(table.get("dir")?.as_str()?))
        })?,
    };
    Some(rustc_info(&dir))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_build_dir_comes_from_the_environment_or_the_config_argument() {
        let set = BTreeMap::from([("CARGO_BUILD_BUILD_DIR".to_owned(), "/k/d".to_owned())]);
        assert_eq!(
            rustc_info_of(&set, &[]),
            Some(rustc_info(Path::new("/k/d")))
        );
        let args = [
            "--config".to_owned(),
            "build.target-dir=\"/k/d e\"".to_owned(),
            "--config".to_owned(),
            "build.build-dir=\"/k/d e\"".to_owned(),
        ];
        assert_eq!(
            rustc_info_of(&BTreeMap::new(), &args),
            Some(rustc_info(Path::new("/k/d e")))
        );
        assert_eq!(rustc_info_of(&BTreeMap::new(), &[]), None);
    }
}
