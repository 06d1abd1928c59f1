//! Moving a warm isolated dir between machines: `buildd cache export` writes it as a
//! zstd-compressed tar with a manifest, `buildd cache import` installs it for the matching
//! workspace, wherever that workspace lives.
//!
//! The CLI runs both while it holds the workspace's lease (no daemon job runs in the dir).
//!
//! What makes an import fresh, measured rather than assumed: cargo's metadata hashes and
//! fingerprints of path packages use paths relative to the workspace root, and the target
//! dir's own path appears in none of them, so a dir built at `/ci/app` is valid at
//! `~/src/app` as long as the toolchain, the build-affecting environment, the linker
//! setting and `fast_link` agree (the build key, minus the paths). What differs between
//! machines is mtimes: a fresh clone's sources are newer than the CI's artifacts, and cargo
//! compares the two. So the manifest records a SHA-256 of every workspace file, and the import:
//!
//! 1. gives every file of the dir one mtime, the time of the import, so that sources checked
//!    out before it look older than the artifacts;
//! 2. deletes the fingerprints of the packages whose files differ (by content) from the
//!    exporter's, found with the same prediction as the daemon's (readers by dep-info, build
//!    scripts, reverse dependencies), or of every member when a manifest, `Cargo.lock` or
//!    cargo configuration differs. Cargo rebuilds exactly those, and what depends on them.
//!
//! A file the exporter changed after its last build (newer than the oldest fingerprint of the
//! dir) has no trustworthy hash and counts as changed.
//!
//! Path dependencies outside the workspace are not hashed: they always rebuild after an
//! import, with what depends on them.
//!
//! Not covered: a `[patch]` that points at a path outside the workspace (its package is not
//! among the members' path dependencies, so it is neither hashed nor rebuilt); and, as cargo
//! itself does not cover it, a crate that bakes an absolute path into its code
//! (`env!("CARGO_MANIFEST_DIR")`, `file!()` in a panic message) keeps the exporter's path
//! until it is rebuilt.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

pub use crate::cache::archive_error::{ArchiveError, Refusal};
use crate::cache::layout::{
    ARCHIVE_MANIFEST as MANIFEST, ARCHIVE_PREFIX as PREFIX, KEY_FILE, STATE_DIR,
};
use crate::cache::unpack::{import_limit, unpack};
use crate::home::replace_file;
use crate::project::depinfo;
use crate::project::predict::Graph;
use crate::wire::protocol::BuildKeyInfo;

const FORMAT: u32 = 1;

/// What an archive says about itself.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Manifest {
    pub format: u32,
    pub buildd_version: String,
    pub key: BuildKeyInfo,
    /// SHA-256 of `Cargo.lock`, when the workspace has one.
    pub cargo_lock_sha256: Option<String>,
    /// Where the workspace was, for the record.
    pub exported_from: PathBuf,
    /// Seconds since the epoch.
    pub exported_at: u64,
    /// Workspace files (relative paths) and their SHA-256; `null` for a file changed after
    /// the last build.
    pub files: BTreeMap<String, Option<String>>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ExportReport {
    pub archive: PathBuf,
    pub bytes: u64,
    pub files: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ImportReport {
    pub manifest: Manifest,
    /// Workspace files whose content differs from the exporter's (relative paths).
    pub changed_files: Vec<String>,
    /// Packages whose fingerprints were deleted: cargo rebuilds them and their dependents.
    pub invalidated: Vec<String>,
    /// Whether `Cargo.lock` differs: dependencies that changed version will build.
    pub lock_changed: bool,
    pub files: u64,
}

/// Writes `target_dir` (built for `key` from the workspace at `root`) to `output`.
pub fn export(
    root: &Path,
    target_dir: &Path,
    key: &BuildKeyInfo,
    output: &Path,
) -> Result<ExportReport, ArchiveError> {
    // The lease keeps the daemon's jobs out; the locks keep out a plain cargo in a shell
    // after `buildd env`, which would otherwise change the dir under the export.
    let Some(_locks) = crate::cache::dirs::lock_all(target_dir) else {
        return Err(ArchiveError::CargoBuilding {
            dir: target_dir.to_path_buf(),
            step: "export",
        });
    };
    let built_at = oldest_fingerprint(target_dir);
    let files = hash_workspace(root, built_at).map_err(|source| ArchiveError::ReadWorkspace {
        root: root.to_path_buf(),
        source,
    })?;
    let manifest = Manifest {
        format: FORMAT,
        buildd_version: crate::wire::protocol::binary_version(),
        key: key.clone(),
        cargo_lock_sha256: sha256_file(&root.join("Cargo.lock")).ok(),
        exported_from: root.to_path_buf(),
        exported_at: now_secs(),
        files,
    };
    let write = |output: &Path| -> io::Result<u64> {
        let file = fs::File::create(output)?;
        let mut encoder = zstd::Encoder::new(file, 3)?;
        // Use the cores there are: compression is the slow part of an export.
        let _ =
            encoder.multithread(std::thread::available_parallelism().map_or(1, |n| n.get() as u32));
        let mut tar = tar::Builder::new(encoder);
        tar.mode(tar::HeaderMode::Complete);
        tar.follow_symlinks(false);
        let json = serde_json::to_vec_pretty(&manifest).map_err(io::Error::other)?;
        let mut header = tar::Header::new_gnu();
        header.set_size(json.len() as u64);
        header.set_mode(0o644);
        header.set_mtime(manifest.exported_at);
        header.set_cksum();
        tar.append_data(&mut header, MANIFEST, json.as_slice())?;
        let mut count = 0;
        append_dir(&mut tar, target_dir, target_dir, &mut count)?;
        tar.into_inner()?.finish()?;
        Ok(count)
    };
    let tmp = output.with_extension("partial");
    let failed = |source| ArchiveError::Write {
        path: output.to_path_buf(),
        source,
    };
    let count = write(&tmp).map_err(|e| {
        let _ = fs::remove_file(&tmp);
        failed(e)
    })?;
    fs::rename(&tmp, output).map_err(failed)?;
    Ok(ExportReport {
        archive: output.to_path_buf(),
        bytes: fs::metadata(output).map_or(0, |m| m.len()),
        files: count,
    })
}

fn append_dir<W: io::Write>(
    tar: &mut tar::Builder<W>,
    base: &Path,
    dir: &Path,
    count: &mut u64,
) -> io::Result<()> {
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let path = entry.path();
        let rel = path.strip_prefix(base).unwrap_or(&path);
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if dir == base && (name == STATE_DIR || name == KEY_FILE) {
            continue;
        }
        // rustc's temporary dirs (`deps/rustcXXXXXX`) and cargo's locks are not artifacts.
        if name.starts_with("rustc") && entry.file_type()?.is_dir() || name == ".cargo-lock" {
            continue;
        }
        let in_archive = Path::new(PREFIX).join(rel);
        let kind = entry.file_type()?;
        if kind.is_dir() {
            tar.append_dir(&in_archive, &path)?;
            append_dir(tar, base, &path, count)?;
        } else if kind.is_file() {
            // Cargo makes no links in a target dir; an import refuses them, so none goes out.
            tar.append_path_with_name(&path, &in_archive)?;
            *count += 1;
        }
    }
    Ok(())
}

/// Reads the manifest, the first entry of an archive.
pub fn read_manifest(archive: &Path) -> Result<Manifest, ArchiveError> {
    let path = || archive.to_path_buf();
    let file = fs::File::open(archive).map_err(|source| ArchiveError::Open {
        archive: path(),
        source,
    })?;
    let decoder = zstd::Decoder::new(file).map_err(|source| ArchiveError::Decompress {
        archive: path(),
        source,
    })?;
    let mut tar = tar::Archive::new(decoder);
    let mut entries = tar.entries().map_err(|source| ArchiveError::NotTar {
        archive: path(),
        source,
    })?;
    let not_ours = || ArchiveError::NoManifest { archive: path() };
    let mut first = entries
        .next()
        .ok_or_else(not_ours)?
        .map_err(|e| ArchiveError::damaged(archive, e))?;
    if first.path().ok().as_deref() != Some(Path::new(MANIFEST)) {
        return Err(not_ours());
    }
    // The manifest is read before anything else, so its cap is checked here.
    let too_big = || ArchiveError::ManifestTooBig {
        archive: path(),
        limit: MAX_MANIFEST_BYTES,
    };
    if first.size() > MAX_MANIFEST_BYTES {
        return Err(too_big());
    }
    let mut text = String::new();
    (&mut first)
        .take(MAX_MANIFEST_BYTES + 1)
        .read_to_string(&mut text)
        .map_err(|e| match e.kind() {
            io::ErrorKind::InvalidData => not_ours(),
            _ => ArchiveError::damaged(archive, e),
        })?;
    if text.len() as u64 > MAX_MANIFEST_BYTES {
        return Err(too_big());
    }
    // `tar` ends an entry cut short by the end of the file without an error.
    if (text.len() as u64) < first.size() {
        return Err(ArchiveError::cut_short(archive, Path::new(MANIFEST)));
    }
    let manifest: Manifest =
        serde_json::from_str(&text).map_err(|source| ArchiveError::BadManifest {
            archive: path(),
            source,
        })?;
    if manifest.format != FORMAT {
        return Err(ArchiveError::Format {
            archive: path(),
            format: manifest.format,
            supported: FORMAT,
        });
    }
    Ok(manifest)
}

/// Why an archive of `theirs` cannot serve a workspace whose key is `ours`, if it cannot.
pub fn mismatch(archive: &Path, theirs: &BuildKeyInfo, ours: &BuildKeyInfo) -> Option<String> {
    let name = archive.display();
    if theirs.rustc != ours.rustc || theirs.host != ours.host {
        return Some(format!(
            "refusing {name}: it was built by {} ({}) and this workspace builds with {} ({}); \
             none of its artifacts could be used. Pin the toolchain in rust-toolchain.toml so \
             both sides use the same one, or export again with {}",
            theirs.rustc, theirs.host, ours.rustc, ours.host, ours.rustc
        ));
    }
    if theirs.target != ours.target || theirs.profile != ours.profile {
        return Some(format!(
            "refusing {name}: it was built for {} ({}) and this workspace builds for {} ({})",
            theirs.target, theirs.profile, ours.target, ours.profile
        ));
    }
    if theirs.env != ours.env {
        let names: BTreeSet<&String> = theirs
            .env
            .iter()
            .filter(|(k, v)| ours.env.get(*k) != Some(*v))
            .map(|(k, _)| k)
            .chain(ours.env.keys().filter(|k| !theirs.env.contains_key(*k)))
            .collect();
        let names: Vec<&str> = names.into_iter().map(String::as_str).collect();
        return Some(format!(
            "refusing {name}: it was built with other build settings in the environment ({}); \
             theirs: {:?}, here: {:?}. Export and import with the same variables",
            names.join(", "),
            theirs.env,
            ours.env
        ));
    }
    if theirs.linker != ours.linker {
        return Some(format!(
            "refusing {name}: it was built with linker = \"{}\" and this workspace uses \"{}\"",
            theirs.linker, ours.linker
        ));
    }
    if theirs.fast_link != ours.fast_link {
        let side = |on: bool| if on { "true" } else { "false" };
        return Some(format!(
            "refusing {name}: it was built with fast_link = {} and this workspace uses {}; set \
             fast_link alike on both sides",
            side(theirs.fast_link),
            side(ours.fast_link)
        ));
    }
    if theirs.hash != ours.hash {
        return Some(format!(
            "refusing {name}: its build key {} differs from this workspace's {} (another cargo?)",
            theirs.hash, ours.hash
        ));
    }
    None
}

/// Installs `archive` as the isolated dir `target_dir` of the workspace at `root`, whose key
/// is `key` and whose cargo runs with `env`. Replaces what the dir held. `budget` is the
/// cache's configured disk budget and where it is set, if it is.
pub fn import(
    archive: &Path,
    root: &Path,
    target_dir: &Path,
    key: &BuildKeyInfo,
    env: &BTreeMap<String, String>,
    budget: Option<(u64, String)>,
) -> Result<ImportReport, ArchiveError> {
    let manifest = read_manifest(archive)?;
    if let Some(why) = mismatch(archive, &manifest.key, key) {
        return Err(ArchiveError::KeyMismatch(why));
    }
    let staging = target_dir.with_extension("importing");
    let _staging_lock = make_staging(&staging)?;
    let result = unpack_and_fix(archive, root, &staging, &manifest, env, budget);
    let (changed_files, invalidated, files) = match result {
        Ok(done) => done,
        Err(e) => {
            let _ = fs::remove_dir_all(&staging);
            return Err(e);
        }
    };
    let key_json = serde_json::to_string_pretty(key).unwrap_or_default();
    let _ = replace_file::replace(
        &staging.join(KEY_FILE),
        key_json.as_bytes(),
        replace_file::PRIVATE,
        false,
    );
    crate::cache::dirs::write_record(&staging, root);
    // Swap: the old dir goes aside first, so that the dir is always whole; not while a cargo
    // builds in it.
    let _locks = if target_dir.exists() {
        match crate::cache::dirs::lock_all(target_dir) {
            Some(locks) => locks,
            None => {
                let _ = fs::remove_dir_all(&staging);
                return Err(ArchiveError::CargoBuilding {
                    dir: target_dir.to_path_buf(),
                    step: "import",
                });
            }
        }
    } else {
        Vec::new()
    };
    let old = target_dir.with_extension("replaced");
    let _ = fs::remove_dir_all(&old);
    if target_dir.exists() {
        fs::rename(target_dir, &old).map_err(|source| ArchiveError::MoveAside {
            dir: target_dir.to_path_buf(),
            source,
        })?;
    }
    fs::rename(&staging, target_dir).map_err(|source| ArchiveError::Install {
        dir: target_dir.to_path_buf(),
        source,
    })?;
    let _ = fs::remove_dir_all(&old);
    let lock_changed = sha256_file(&root.join("Cargo.lock")).ok() != manifest.cargo_lock_sha256;
    Ok(ImportReport {
        manifest,
        changed_files,
        invalidated,
        lock_changed,
        files,
    })
}

/// Makes the import's staging dir afresh and holds its lock, so that a daemon starting
/// meanwhile does not take it for a killed import's leftover.
fn make_staging(staging: &Path) -> Result<nix::fcntl::Flock<fs::File>, ArchiveError> {
    let busy = || ArchiveError::ImportRunning {
        staging: staging.to_path_buf(),
    };
    if staging.exists() {
        // A killed import's: nobody holds its lock.
        if crate::cache::dirs::lock_staging(staging).is_none() {
            return Err(busy());
        }
        let _ = fs::remove_dir_all(staging);
    }
    let io_err = |source| ArchiveError::MakeStaging {
        staging: staging.to_path_buf(),
        source,
    };
    if let Some(parent) = staging.parent() {
        fs::create_dir_all(parent).map_err(io_err)?;
    }
    fs::create_dir(staging).map_err(io_err)?;
    crate::cache::dirs::lock_staging(staging).ok_or_else(busy)
}

type Fixed = (Vec<String>, Vec<String>, u64);

fn unpack_and_fix(
    archive: &Path,
    root: &Path,
    staging: &Path,
    manifest: &Manifest,
    env: &BTreeMap<String, String>,
    budget: Option<(u64, String)>,
) -> Result<Fixed, ArchiveError> {
    let io_err = |source| ArchiveError::Unpack {
        archive: archive.to_path_buf(),
        source,
    };
    if let Some(parent) = staging.parent() {
        fs::create_dir_all(parent).map_err(io_err)?;
    }
    // `staging` is `<targets>/<workspace>/<key>.importing`.
    let targets = staging.ancestors().nth(2).unwrap_or(staging);
    let limit = import_limit(targets, budget);
    let files = unpack(archive, staging, &limit)?;

    // Which files differ from the exporter's.
    let current = hash_workspace(root, None).map_err(|source| ArchiveError::ReadWorkspace {
        root: root.to_path_buf(),
        source,
    })?;
    let mut changed: BTreeSet<String> = BTreeSet::new();
    for (rel, hash) in &manifest.files {
        if hash.is_none() || current.get(rel) != Some(hash) {
            changed.insert(rel.clone());
        }
    }
    changed.extend(
        current
            .keys()
            .filter(|rel| !manifest.files.contains_key(*rel))
            .cloned(),
    );

    // Every file gets the time of the import; then the changed packages lose their
    // fingerprints.
    let now = nix::sys::time::TimeSpec::from(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default(),
    );
    for entry in walkdir::WalkDir::new(staging)
        .contents_first(true)
        .into_iter()
        .flatten()
    {
        let _ = nix::sys::stat::utimensat(
            nix::fcntl::AT_FDCWD,
            entry.path(),
            &now,
            &now,
            nix::sys::stat::UtimensatFlags::NoFollowSymlink,
        );
    }
    let invalidated = affected_packages(root, staging, &changed, env)?;
    for profile in fs::read_dir(staging).map_err(io_err)?.flatten() {
        let fingerprints = profile.path().join(".fingerprint");
        for unit in fs::read_dir(&fingerprints).into_iter().flatten().flatten() {
            let name = unit.file_name().to_string_lossy().into_owned();
            if let Some((package, hash)) = name.rsplit_once('-')
                && invalidated.contains(package)
                && hash.chars().all(|c| c.is_ascii_hexdigit())
            {
                let _ = fs::remove_dir_all(unit.path());
            }
        }
    }
    Ok((
        changed.into_iter().collect(),
        invalidated.into_iter().collect(),
        files,
    ))
}

/// The most a manifest may hold: a workspace of a few hundred thousand files.
const MAX_MANIFEST_BYTES: u64 = 64 * 1024 * 1024;
/// The workspace packages to rebuild for `changed` files (relative to `root`).
fn affected_packages(
    root: &Path,
    staging: &Path,
    changed: &BTreeSet<String>,
    env: &BTreeMap<String, String>,
) -> Result<BTreeSet<String>, ArchiveError> {
    let mut command = cargo_metadata::MetadataCommand::new();
    command.current_dir(root).no_deps();
    for (k, v) in env {
        command.env(k, v);
    }
    let metadata = command.exec().map_err(|source| ArchiveError::Metadata {
        root: root.to_path_buf(),
        source,
    })?;
    let graph = Graph::new(&metadata);
    // Path dependencies outside the workspace were not hashed (they are not the workspace's
    // files): their artifacts cannot be trusted after the move, so they always rebuild (and
    // what uses them, as cargo sees their newer outputs).
    let mut affected: BTreeSet<String> = metadata
        .packages
        .iter()
        .flat_map(|p| &p.dependencies)
        .filter(|d| {
            d.path
                .as_ref()
                .is_some_and(|p| !p.as_std_path().starts_with(root))
        })
        .map(|d| d.name.clone())
        .collect();
    if changed.is_empty() {
        return Ok(affected);
    }
    let manifest_like = changed.iter().any(|rel| {
        let name = Path::new(rel)
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("");
        name == "Cargo.toml"
            || name == "Cargo.lock"
            || name.starts_with("rust-toolchain")
            || rel.starts_with(".cargo/")
    });
    if manifest_like {
        affected.extend(graph.members());
        return Ok(affected);
    }
    let info = depinfo::scan(staging, root, &graph.crate_names(), &graph.package_dirs());
    let files: BTreeSet<PathBuf> = changed.iter().map(|rel| root.join(rel)).collect();
    affected.extend(graph.predict(&files, &info).affected);
    // A package whose sources moved under it with no dep-info to say who reads them.
    for file in &files {
        if let Some(owner) = graph.package_of(file)
            && file.extension().is_some_and(|e| e == "rs")
        {
            affected.insert(owner.to_owned());
        }
    }
    Ok(affected)
}

/// SHA-256 of every workspace file that git would see (`.gitignore` respected, `.git/` and
/// `target/` skipped), by relative path. Files modified after `built_at` get `None`.
fn hash_workspace(
    root: &Path,
    built_at: Option<SystemTime>,
) -> io::Result<BTreeMap<String, Option<String>>> {
    let mut files = BTreeMap::new();
    let walk = ignore::WalkBuilder::new(root)
        .hidden(false)
        .require_git(false)
        .filter_entry(|e| {
            let name = e.file_name();
            name != ".git" && !(e.depth() == 1 && name == "target")
        })
        .build();
    for entry in walk {
        let entry = entry.map_err(io::Error::other)?;
        if !entry.file_type().is_some_and(|t| t.is_file()) {
            continue;
        }
        let path = entry.path();
        let Ok(rel) = path.strip_prefix(root) else {
            continue;
        };
        let modified = entry.metadata().ok().and_then(|m| m.modified().ok());
        let trusted = match (built_at, modified) {
            (Some(built), Some(modified)) => modified <= built,
            _ => true,
        };
        let hash = if trusted {
            Some(sha256_file(path)?)
        } else {
            None
        };
        files.insert(rel.to_string_lossy().into_owned(), hash);
    }
    Ok(files)
}

/// The oldest dep-info of the dir's fingerprints: every source older than it was read by the
/// build that the dir holds.
fn oldest_fingerprint(target_dir: &Path) -> Option<SystemTime> {
    let mut oldest: Option<SystemTime> = None;
    for profile in fs::read_dir(target_dir).into_iter().flatten().flatten() {
        for unit in fs::read_dir(profile.path().join(".fingerprint"))
            .into_iter()
            .flatten()
            .flatten()
        {
            for file in fs::read_dir(unit.path()).into_iter().flatten().flatten() {
                if file.file_name().to_string_lossy().starts_with("dep-")
                    && let Ok(modified) = file.metadata().and_then(|m| m.modified())
                {
                    oldest = Some(oldest.map_or(modified, |o| o.min(modified)));
                }
            }
        }
    }
    // With no fingerprint at all, nothing was built: trust nothing.
    Some(oldest.unwrap_or(UNIX_EPOCH))
}

fn sha256_file(path: &Path) -> io::Result<String> {
    let mut file = fs::File::open(path)?;
    let mut hasher = Sha256::new();
    io::copy(&mut file, &mut hasher)?;
    Ok(hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect())
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::unpack::{BLOCK, Limit};

    fn key(rustc: &str, env: &[(&str, &str)]) -> BuildKeyInfo {
        BuildKeyInfo {
            hash: format!("{rustc}{env:?}"),
            rustc: rustc.into(),
            host: "x86_64-unknown-linux-gnu".into(),
            target: "x86_64-unknown-linux-gnu".into(),
            profile: "dev".into(),
            features: "default".into(),
            env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            linker: "default".into(),
            fast_link: false,
        }
    }

    #[test]
    fn a_mismatched_toolchain_or_environment_is_refused_with_what_differs() {
        let archive = Path::new("/tmp/app.tar.zst");
        let ours = key("rustc 1.95.0", &[]);
        let why = mismatch(archive, &key("rustc 1.94.1", &[]), &ours).unwrap();
        assert!(
            why.contains("rustc 1.94.1")
                && why.contains("rustc 1.95.0")
                && why.contains("app.tar.zst"),
            "{why}"
        );
        let why = mismatch(
            archive,
            &key("rustc 1.95.0", &[("RUSTFLAGS", "-Dwarnings")]),
            &ours,
        )
        .unwrap();
        assert!(why.contains("RUSTFLAGS"), "{why}");
        let fast = BuildKeyInfo {
            fast_link: true,
            ..ours.clone()
        };
        let why = mismatch(archive, &fast, &ours).unwrap();
        assert!(
            why.contains("built with fast_link = true and this workspace uses false"),
            "{why}"
        );
        assert!(mismatch(archive, &ours, &ours).is_none());
    }

    #[test]
    fn a_file_that_is_not_an_archive_says_how_to_make_one() {
        let dir = tempfile::tempdir().unwrap();
        let bogus = dir.path().join("x.tar.zst");
        fs::write(&bogus, "hello").unwrap();
        let err = read_manifest(&bogus).unwrap_err().to_string();
        assert!(err.contains("x.tar.zst"), "{err}");
    }

    #[test]
    fn workspace_hashes_skip_git_and_target_and_distrust_late_edits() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        fs::create_dir_all(root.join(".git")).unwrap();
        fs::create_dir_all(root.join("target/debug")).unwrap();
        fs::create_dir_all(root.join(".cargo")).unwrap();
        fs::write(root.join(".git/HEAD"), "x").unwrap();
        fs::write(root.join("target/debug/app"), "x").unwrap();
        fs::write(root.join(".cargo/config.toml"), "x").unwrap();
        fs::write(root.join("Cargo.toml"), "[workspace]").unwrap();
        let all = hash_workspace(root, None).unwrap();
        let names: Vec<&str> = all.keys().map(String::as_str).collect();
        assert_eq!(names, vec![".cargo/config.toml", "Cargo.toml"]);
        let before = hash_workspace(root, Some(UNIX_EPOCH)).unwrap();
        assert!(before.values().all(Option::is_none));
    }
    /// A zstd tar with a manifest entry first, then `entries` as the test builds them.
    fn crafted(dir: &Path, build: impl FnOnce(&mut tar::Builder<Vec<u8>>)) -> PathBuf {
        let mut tar = tar::Builder::new(Vec::new());
        let mut header = tar::Header::new_gnu();
        header.set_size(2);
        header.set_mode(0o644);
        header.set_cksum();
        tar.append_data(&mut header, MANIFEST, &b"{}"[..]).unwrap();
        build(&mut tar);
        let bytes = tar.into_inner().unwrap();
        let path = dir.join("crafted.tar.zst");
        fs::write(&path, zstd::encode_all(bytes.as_slice(), 3).unwrap()).unwrap();
        path
    }

    fn file(tar: &mut tar::Builder<Vec<u8>>, name: &str, data: &[u8]) {
        let mut header = tar::Header::new_gnu();
        header.set_size(data.len() as u64);
        header.set_mode(0o644);
        header.set_entry_type(tar::EntryType::Regular);
        header.set_cksum();
        tar.append_data(&mut header, name, data).unwrap();
    }

    fn link(tar: &mut tar::Builder<Vec<u8>>, kind: tar::EntryType, name: &str, target: &str) {
        let mut header = tar::Header::new_gnu();
        header.set_size(0);
        header.set_mode(0o777);
        header.set_entry_type(kind);
        header.set_cksum();
        tar.append_link(&mut header, name, target).unwrap();
    }

    fn special(tar: &mut tar::Builder<Vec<u8>>, kind: tar::EntryType, name: &str) {
        let mut header = tar::Header::new_gnu();
        header.set_size(0);
        header.set_mode(0o644);
        header.set_entry_type(kind);
        header.set_cksum();
        tar.append_data(&mut header, name, io::empty()).unwrap();
    }

    #[test]
    fn a_symlink_entry_is_refused_and_nothing_is_written_through_it() {
        let dir = tempfile::tempdir().unwrap();
        let outside = dir.path().join("outside");
        fs::create_dir(&outside).unwrap();
        fs::write(outside.join("x"), "the user's file").unwrap();
        for target in [outside.to_str().unwrap().to_owned(), "../../outside".into()] {
            let archive = crafted(dir.path(), |tar| {
                link(tar, tar::EntryType::Symlink, "target/debug/evil", &target);
                file(tar, "target/debug/evil/x", b"overwritten");
            });
            let staging = dir.path().join("targets/ws/key.importing");
            fs::create_dir_all(staging.parent().unwrap()).unwrap();
            let err = unpack(&archive, &staging, &Limit::bytes(u64::MAX))
                .unwrap_err()
                .to_string();
            assert!(
                err.contains("symbolic link") && err.contains("target/debug/evil"),
                "{err}"
            );
            assert_eq!(
                fs::read_to_string(outside.join("x")).unwrap(),
                "the user's file"
            );
            fs::remove_dir_all(&staging).unwrap();
        }
    }

    #[test]
    fn a_hard_link_to_anything_but_an_earlier_entry_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let outside = dir.path().join("secret");
        fs::write(&outside, "the user's secret").unwrap();
        let staging = dir.path().join("key.importing");
        for target in [outside.to_str().unwrap(), "target/debug/later", "../secret"] {
            let archive = crafted(dir.path(), |tar| {
                link(tar, tar::EntryType::Link, "target/debug/stolen", target);
                file(tar, "target/debug/later", b"x");
            });
            let err = unpack(&archive, &staging, &Limit::bytes(u64::MAX))
                .unwrap_err()
                .to_string();
            assert!(err.contains("hard link"), "{target}: {err}");
            assert!(!staging.join("debug/stolen").exists());
            fs::remove_dir_all(&staging).unwrap();
        }
        let before = fs::metadata(&outside).unwrap().modified().unwrap();
        assert_eq!(fs::metadata(&outside).unwrap().modified().unwrap(), before);
        // A link to an earlier file of the archive is what cargo's uplifted binaries are.
        let archive = crafted(dir.path(), |tar| {
            file(tar, "target/debug/deps/app-0123", b"binary");
            link(
                tar,
                tar::EntryType::Link,
                "target/debug/app",
                "target/debug/deps/app-0123",
            );
        });
        assert_eq!(
            unpack(&archive, &staging, &Limit::bytes(u64::MAX)).unwrap(),
            2
        );
        assert_eq!(fs::read(staging.join("debug/app")).unwrap(), b"binary");
    }

    #[test]
    fn devices_and_fifos_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let staging = dir.path().join("key.importing");
        for (kind, what) in [
            (tar::EntryType::Char, "a device"),
            (tar::EntryType::Block, "a device"),
            (tar::EntryType::Fifo, "a FIFO"),
        ] {
            let archive = crafted(dir.path(), |tar| special(tar, kind, "target/debug/odd"));
            let err = unpack(&archive, &staging, &Limit::bytes(u64::MAX))
                .unwrap_err()
                .to_string();
            assert!(
                err.contains(what) && err.contains("target/debug/odd"),
                "{err}"
            );
            fs::remove_dir_all(&staging).unwrap();
        }
    }

    #[test]
    fn an_archive_over_the_limit_is_refused_saying_which_limit() {
        let dir = tempfile::tempdir().unwrap();
        let staging = dir.path().join("key.importing");
        let archive = crafted(dir.path(), |tar| {
            file(tar, "target/debug/a", &[1; 600]);
            file(tar, "target/debug/b", &[2; 600]);
        });
        // Each file counts as a whole block.
        let err = unpack(&archive, &staging, &Limit::bytes(8000))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("8000 bytes") && err.contains("the test's limit"),
            "{err}"
        );
        fs::remove_dir_all(&staging).unwrap();
        assert_eq!(unpack(&archive, &staging, &Limit::bytes(8192)).unwrap(), 2);
    }

    #[test]
    fn a_cut_short_archive_says_so_with_its_cause() {
        let dir = tempfile::tempdir().unwrap();
        let staging = dir.path().join("key.importing");
        let mut tar = tar::Builder::new(Vec::new());
        file(&mut tar, "target/debug/a", &[1; 600]);
        file(&mut tar, "target/debug/b", &[2; 5000]);
        let bytes = tar.into_inner().unwrap();
        // Through the second file's data: `tar` would end that entry early without a word.
        for cut in [1024 + 512 + 100, 1024 + 200] {
            let path = dir.path().join("cut.tar.zst");
            fs::write(&path, zstd::encode_all(&bytes[..cut], 3).unwrap()).unwrap();
            let err = unpack(&path, &staging, &Limit::bytes(u64::MAX))
                .unwrap_err()
                .to_string();
            assert!(
                err.contains("cut short") && err.contains("unexpected EOF"),
                "{cut}: {err}"
            );
            fs::remove_dir_all(&staging).unwrap();
        }
    }

    #[test]
    fn empty_entries_cost_a_block_each_and_their_number_is_capped() {
        let dir = tempfile::tempdir().unwrap();
        let staging = dir.path().join("key.importing");
        let archive = crafted(dir.path(), |tar| {
            for i in 0..100 {
                file(tar, &format!("target/debug/e/{i}"), b"");
            }
        });
        let err = unpack(&archive, &staging, &Limit::bytes(50 * BLOCK))
            .unwrap_err()
            .to_string();
        assert!(err.contains("unpacks to more than"), "{err}");
        fs::remove_dir_all(&staging).unwrap();
        let few = Limit {
            entries: 60,
            ..Limit::bytes(u64::MAX)
        };
        let err = unpack(&archive, &staging, &few).unwrap_err().to_string();
        assert!(err.contains("more than 60 entries"), "{err}");
        fs::remove_dir_all(&staging).unwrap();
        assert_eq!(
            unpack(&archive, &staging, &Limit::bytes(100 * BLOCK)).unwrap(),
            100
        );
    }

    #[test]
    fn an_entry_given_twice_or_a_dir_over_a_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let staging = dir.path().join("key.importing");
        let archive = crafted(dir.path(), |tar| {
            file(tar, "target/debug/a", b"1");
            file(tar, "target/debug/a", b"2");
        });
        let err = unpack(&archive, &staging, &Limit::bytes(u64::MAX))
            .unwrap_err()
            .to_string();
        assert!(err.contains("twice"), "{err}");
    }
}
