//! The isolated dirs as an asset: seeded from each other, kept within a budget, moved
//! between homes and paths. Real cargo, real daemon, the `cache` fixture (two members, two
//! small registry dependencies).

use std::path::{Path, PathBuf};

use serde_json::Value;

use std::process::Command;

use crate::support::{World, apt_install, artifacts, edit, snapshot};

fn target_dir(status: &Value) -> PathBuf {
    PathBuf::from(status["target_dir"].as_str().unwrap())
}

/// The entry of `dir` in a `cache list --json`.
fn listed<'a>(list: &'a Value, dir: &Path) -> &'a Value {
    list["dirs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["path"].as_str() == dir.to_str())
        .unwrap_or_else(|| panic!("{} not listed: {list:#}", dir.display()))
}

fn rebuilt(status: &Value) -> Vec<String> {
    status["last_job"]["rebuilt"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect()
}

/// Names of the targets cargo compiled (not fresh) in `--message-format=json` output.
fn compiled(stdout: &str) -> Vec<String> {
    let mut names: Vec<String> = artifacts(stdout)
        .iter()
        .filter(|a| a["fresh"] != true)
        .map(|a| a["target"]["name"].as_str().unwrap().to_owned())
        .collect();
    names.sort();
    names
}

/// A `CARGO_INCREMENTAL=0` shell (as in many CI setups) is another key: cargo compiles path
/// packages without incremental data but registry packages never use it, so only the
/// workspace's own units differ. The seeded dir must rebuild exactly those, and nothing that
/// happens in it, not even a rebuild of a hard-linked library, may change the original.
/// Returns the seed's report.
fn seed_and_check_the_original(world: &World) -> Value {
    let ws = world.workspace("cache", "ws");
    // The original key's dir must stay as it was: it is not warmed as another key after
    // the switch (`other_keys`), which would rebuild the edited member there.
    std::fs::write(ws.join("buildd.toml"), "other_keys = 0\n").unwrap();
    world.ok(&ws, &["wait"]);
    let first = world.workspace_status(&ws).unwrap();
    let original = target_dir(&first);
    let before = snapshot(&original);
    assert!(before.len() > 20, "a warm dir has files: {}", before.len());

    let no_incr = [("CARGO_INCREMENTAL", "0")];
    world.ok_with(&ws, &no_incr, &["wait"]);
    let status = world.workspace_status(&ws).unwrap();
    let seeded = target_dir(&status);
    assert_ne!(seeded, original, "CARGO_INCREMENTAL=0 is a key of its own");
    let seed = status["seed"].clone();
    assert_eq!(seed["from"], first["key"]["hash"], "{status:#}");
    assert!(
        seed["reflinked"].as_u64().unwrap() + seed["hard_linked"].as_u64().unwrap() > 0,
        "libraries are cloned or shared, not copied: {seed:#}"
    );
    // What the change affects: the two members, in every target that builds them. The
    // registry dependencies stay fresh.
    assert_eq!(rebuilt(&status), vec!["cli", "numfmt"], "{status:#}");
    let units = seed["units_rebuilt"].as_u64().unwrap();
    assert_eq!(
        units,
        status["last_job"]["units_compiled"].as_u64().unwrap()
    );
    assert!(seed["units_fresh"].as_u64().unwrap() >= 2, "{seed:#}");
    eprintln!("seeding: {seed:#}");

    // Make cargo rewrite a library that seeding cloned or hard-linked: forget its
    // fingerprint, so cargo builds it again under the same file name. And edit a member.
    let deps = seeded.join("debug/deps");
    let itoa_rlib = std::fs::read_dir(&deps)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| {
            let name = p.file_name().unwrap().to_string_lossy();
            name.starts_with("libitoa-") && name.ends_with(".rlib")
        })
        .expect("the seeded dir has itoa's rlib");
    for unit in std::fs::read_dir(seeded.join("debug/.fingerprint"))
        .unwrap()
        .flatten()
    {
        if unit.file_name().to_string_lossy().starts_with("itoa-") {
            std::fs::remove_dir_all(unit.path()).unwrap();
        }
    }
    // The daemon's job after the edit does the rebuild (a user's command racing it would
    // wait for it and find everything fresh): wait for that job and read what it rebuilt.
    let before_edit = world.last_job_id(&ws);
    edit(
        &ws.join("numfmt/src/lib.rs"),
        "pub fn label",
        "pub fn double(n: u64) -> u64 {\n    n * 2\n}\n\npub fn label",
    );
    let status = world.wait_settled(&ws, before_edit);
    let names = rebuilt(&status);
    assert!(
        names.contains(&"itoa".to_owned()) && names.contains(&"numfmt".to_owned()),
        "{status:#}"
    );
    let stdout = world.ok_with(&ws, &no_incr, &["cargo", "build", "--message-format=json"]);
    assert_eq!(
        compiled(&stdout),
        Vec::<String>::new(),
        "the job left it warm"
    );
    assert!(itoa_rlib.is_file());

    let after = snapshot(&original);
    assert_eq!(
        before.keys().collect::<Vec<_>>(),
        after.keys().collect::<Vec<_>>(),
        "the original dir gained or lost files"
    );
    for (path, (bytes, mtime)) in &before {
        let (now_bytes, now_mtime) = &after[path];
        assert!(bytes == now_bytes, "{} changed content", path.display());
        assert_eq!(mtime, now_mtime, "{} changed mtime", path.display());
    }
    seed
}

/// On a file system that cannot clone (ext4, tmpfs, overlayfs: this machine's), seeding
/// copies and hard-links libraries.
#[test]
fn cache_seeding_rebuilds_only_the_units_a_key_change_affects_and_never_touches_the_original() {
    let world = World::new();
    let seed = seed_and_check_the_original(&world);
    if seed["method"] == "copy" {
        assert!(seed["hard_linked"].as_u64().unwrap() >= 4, "{seed:#}");
    }
}

/// On btrfs (a loop-mounted image), seeding clones every file copy-on-write.
#[test]
fn cache_seeding_on_btrfs_clones_copy_on_write() {
    apt_install("mkfs.btrfs", &["btrfs-progs"]);
    let world = World::new();
    let image = world.dir.path().join("btrfs.img");
    std::fs::File::create(&image)
        .unwrap()
        .set_len(512 << 20)
        .unwrap();
    let status = Command::new("mkfs.btrfs")
        .arg("-q")
        .arg(&image)
        .status()
        .unwrap();
    assert!(status.success(), "mkfs.btrfs failed");
    let _mounted = Mounted::new(&world, &["-o", "loop"], &image);
    let seed = seed_and_check_the_original(&world);
    assert_eq!(seed["method"], "reflink", "{seed:#}");
    assert_eq!(seed["reflinked"], seed["files"], "{seed:#}");
    assert_eq!(seed["hard_linked"], 0, "{seed:#}");
}

/// A file system mounted on the world's cache dir (as root, which CI is), unmounted after
/// the world's daemon stopped.
struct Mounted {
    at: PathBuf,
    home: PathBuf,
}

impl Mounted {
    fn new(world: &World, options: &[&str], source: &Path) -> Mounted {
        let at = world.home().join("cache");
        std::fs::create_dir_all(&at).unwrap();
        let status = Command::new("mount")
            .args(options)
            .arg(source)
            .arg(&at)
            .status()
            .expect("cannot run mount");
        assert!(
            status.success(),
            "mounting {} on {} failed: this test needs root, as CI has",
            source.display(),
            at.display()
        );
        Mounted {
            at,
            home: world.home(),
        }
    }
}

impl Drop for Mounted {
    fn drop(&mut self) {
        let _ = Command::new(crate::support::buildd_bin())
            .args(["--no-start", "stop"])
            .env("BUILDD_HOME", &self.home)
            .current_dir("/")
            .status();
        let _ = Command::new("umount").arg(&self.at).status();
    }
}

/// Three keys of one workspace; the budget then fits two of them. Collection evicts the least
/// recently used; with a budget of one byte, everything but the dir in use goes, and that
/// one keeps working.
#[test]
fn cache_gc_evicts_least_recently_used_dirs_and_never_one_in_use() {
    let world = World::new();
    let ws = world.workspace("basic", "ws");
    let keys = [
        vec![],
        vec![("RUSTFLAGS", "--cfg buildd_gc_test")],
        vec![("CARGO_INCREMENTAL", "0")],
    ];
    let mut dirs = Vec::new();
    for env in &keys {
        world.ok_with(&ws, env, &["wait"]);
        dirs.push(target_dir(&world.workspace_status(&ws).unwrap()));
    }
    let (oldest, middle, current) = (&dirs[0], &dirs[1], &dirs[2]);
    let list: Value = serde_json::from_str(&world.ok(&ws, &["cache", "list", "--json"])).unwrap();
    assert_eq!(list["dirs"].as_array().unwrap().len(), 3, "{list:#}");
    let in_use: Vec<_> = list["dirs"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["in_use"] == true)
        .map(|d| d["path"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(in_use, vec![current.to_str().unwrap()]);

    // The sizes that set the budget are taken after a restart has settled the current dir
    // (a new daemon's first job may still write into it), so that the restart with the
    // budget below finds the dirs as they were measured.
    world.ok(&ws, &["stop"]);
    world.ok_with(&ws, &[("CARGO_INCREMENTAL", "0")], &["wait"]);
    let list: Value = serde_json::from_str(&world.ok(&ws, &["cache", "list", "--json"])).unwrap();
    let size = |dir: &Path| -> u64 { listed(&list, dir)["bytes"].as_u64().unwrap() };

    // A budget that fits the two most recently used dirs, and not the oldest.
    let budget = size(middle) + size(current) + size(oldest) / 2;
    world.ok(&ws, &["stop"]);
    let budget_env = [
        ("CARGO_INCREMENTAL", "0"),
        ("BUILDD_CACHE_BUDGET", &*budget.to_string()),
    ];
    world.ok_with(&ws, &budget_env, &["wait"]);
    world.ok_with(&ws, &budget_env, &["cache", "gc"]);
    assert!(!oldest.exists(), "the least recently used dir was evicted");
    assert!(middle.exists() && current.exists());
    let status = world.status(&ws);
    assert_eq!(status["cache"]["dirs"], 2, "{:#}", status["cache"]);
    assert_eq!(status["cache"]["budget_bytes"], budget);

    // A budget nothing fits: the dir in use stays, and says so.
    world.ok(&ws, &["stop"]);
    let tiny = [("CARGO_INCREMENTAL", "0"), ("BUILDD_CACHE_BUDGET", "1")];
    world.ok_with(&ws, &tiny, &["wait"]);
    let report: Value =
        serde_json::from_str(&world.ok_with(&ws, &tiny, &["cache", "gc", "--json"])).unwrap();
    assert!(!middle.exists(), "{report:#}");
    assert!(current.exists(), "the dir in use was evicted: {report:#}");
    let kept: Vec<_> = report["dirs"].as_array().unwrap().iter().collect();
    assert_eq!(kept.len(), 1);
    assert_eq!(kept[0]["in_use"], true);
    let stdout = world.ok_with(&ws, &tiny, &["cargo", "build", "--message-format=json"]);
    assert!(compiled(&stdout).is_empty(), "{stdout}");

    // `cache clear` never removes the dir in use either.
    let report: Value =
        serde_json::from_str(&world.ok_with(&ws, &tiny, &["cache", "clear", ".", "--json"]))
            .unwrap();
    assert_eq!(report["removed"], serde_json::json!([]), "{report:#}");
    assert_eq!(report["skipped"].as_array().unwrap().len(), 1);
    assert!(current.exists());
}

/// CI builds and exports; a developer imports into another home, at another path, into a
/// fresh copy (newer mtimes, as after a clone) with one file changed. Cargo then compiles the
/// changed package only: the import deleted exactly its fingerprints and gave everything else
/// a time after the sources'.
#[test]
fn cache_export_then_import_into_another_home_and_path_compiles_only_what_changed() {
    let ci = World::new();
    let ci_ws = ci.workspace("cache", "app");
    ci.ok(&ci_ws, &["wait"]);
    let archive = ci.dir.path().join("app.tar.zst");
    let stdout = ci.ok(
        &ci_ws,
        &["cache", "export", "-o", archive.to_str().unwrap()],
    );
    assert!(stdout.contains("exported"), "{stdout}");
    assert!(archive.metadata().unwrap().len() > 1000);

    let dev = World::new();
    std::fs::create_dir_all(dev.dir.path().join("src")).unwrap();
    let ws = dev.workspace("cache", "src/checkout");
    // The daemon here only checks: whatever `buildd cargo build` finds fresh, the import made
    // fresh.
    std::fs::write(ws.join("buildd.toml"), "stages = [\"check\"]\n").unwrap();
    edit(&ws.join("cli/src/main.rs"), "42", "43");
    let stdout = dev.ok(&ws, &["cache", "import", archive.to_str().unwrap()]);
    assert!(stdout.contains("compiles: cli"), "{stdout}");

    let stdout = dev.ok(&ws, &["cargo", "build", "--message-format=json"]);
    assert!(!artifacts(&stdout).is_empty());
    assert_eq!(compiled(&stdout), vec!["cli"], "{stdout}");
    let stdout = dev.ok(&ws, &["cargo", "test", "--no-run", "--message-format=json"]);
    assert_eq!(compiled(&stdout), vec!["cli"], "{stdout}");
    let run = dev.ok(&ws, &["cargo", "run", "-q", "-p", "cli"]);
    assert_eq!(run.trim(), "43 items (debug)");

    // Other build settings: refused, with what differs.
    let other = World::new();
    let ws = other.workspace("cache", "app");
    let output = other
        .cmd(&ws, &["cache", "import", archive.to_str().unwrap()])
        .env("RUSTFLAGS", "-Cdebuginfo=0")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("refusing")
            && stderr.contains("RUSTFLAGS")
            && stderr.contains("app.tar.zst"),
        "{stderr}"
    );
}

/// An archive being written, compressed as it goes (a crafted one may be large).
type Tar = tar::Builder<zstd::Encoder<'static, std::fs::File>>;

/// Rewrites a real export with its manifest first and `add`'s entries after it.
fn crafted(real: &Path, out: &Path, add: impl FnOnce(&mut Tar)) {
    use std::io::Read;
    let file = std::fs::File::open(real).unwrap();
    let mut archive = tar::Archive::new(zstd::Decoder::new(file).unwrap());
    let mut first = archive.entries().unwrap().next().unwrap().unwrap();
    let mut manifest = Vec::new();
    first.read_to_end(&mut manifest).unwrap();
    let encoder = zstd::Encoder::new(std::fs::File::create(out).unwrap(), 3).unwrap();
    let mut tar = tar::Builder::new(encoder);
    let mut header = tar::Header::new_gnu();
    header.set_size(manifest.len() as u64);
    header.set_mode(0o644);
    header.set_cksum();
    tar.append_data(&mut header, "buildd-manifest.json", manifest.as_slice())
        .unwrap();
    add(&mut tar);
    tar.into_inner().unwrap().finish().unwrap();
}

fn entry(tar: &mut Tar, kind: tar::EntryType, name: &str, link: Option<&str>) {
    let mut header = tar::Header::new_gnu();
    header.set_entry_type(kind);
    header.set_mode(0o644);
    match link {
        Some(target) => {
            header.set_size(0);
            tar.append_link(&mut header, name, target).unwrap();
        }
        None => {
            header.set_size(11);
            header.set_cksum();
            tar.append_data(&mut header, name, &b"overwritten"[..])
                .unwrap();
        }
    }
}

/// The `cache` fixture built and exported: the workspace, its archive, its warm dir.
fn exported(world: &World) -> (PathBuf, PathBuf, PathBuf) {
    let ws = world.workspace("cache", "app");
    world.ok(&ws, &["wait"]);
    let real = world.dir.path().join("app.tar.zst");
    world.ok(&ws, &["cache", "export", "-o", real.to_str().unwrap()]);
    let warm = target_dir(&world.workspace_status(&ws).unwrap());
    (ws, real, warm)
}

/// Imports `archive`, which must fail (exit 1) and leave the warm dir as it was; returns
/// the error output.
fn refused_import(world: &World, ws: &Path, archive: &Path, warm: &Path) -> String {
    refused(
        world.cmd(ws, &["cache", "import", archive.to_str().unwrap()]),
        warm,
    )
}

/// Runs an import that must fail (exit 1) and leave the warm dir as it was; returns the
/// error output.
fn refused(mut import: Command, warm: &Path) -> String {
    let output = import.output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(warm.join("debug").is_dir(), "the warm dir was lost");
    assert!(!warm.with_extension("importing").exists());
    stderr
}

/// The archives of the attack: a symlink entry to an outside dir (absolute, then relative)
/// followed by a file through it, and a hard link to an outside file. Each import fails with
/// the entry named; the outside files keep their contents and mtimes, and the warm dir stays.
#[test]
fn cache_import_of_a_crafted_archive_writes_nothing_outside_its_dir() {
    let world = World::new();
    let (ws, real, warm) = exported(&world);
    let outside = world.dir.path().join("outside");
    std::fs::create_dir(&outside).unwrap();
    let secret = outside.join("x");
    std::fs::write(&secret, "the user's file").unwrap();
    let mtime = || secret.metadata().unwrap().modified().unwrap();
    let before = mtime();
    let absolute = outside.to_str().unwrap().to_owned();
    // From `<targets>/<ws>/<key>.importing/debug/`, five levels up is `world.dir`.
    let relative = "../../../../../outside".to_owned();
    let secret_path = secret.to_str().unwrap().to_owned();
    let through = |link: String| {
        vec![
            (tar::EntryType::Symlink, "target/debug/evil", Some(link)),
            (tar::EntryType::Regular, "target/debug/evil/x", None),
        ]
    };
    let cases = [
        ("symbolic link", through(absolute)),
        ("symbolic link", through(relative)),
        (
            "hard link",
            vec![(
                tar::EntryType::Link,
                "target/debug/stolen",
                Some(secret_path),
            )],
        ),
    ];
    for (i, (what, entries)) in cases.into_iter().enumerate() {
        let evil = world.dir.path().join(format!("evil-{i}.tar.zst"));
        crafted(&real, &evil, |tar| {
            for (kind, name, link) in &entries {
                entry(tar, *kind, name, link.as_deref());
            }
        });
        let stderr = refused_import(&world, &ws, &evil, &warm);
        assert!(
            stderr.contains(what) && stderr.contains("refusing"),
            "{stderr}"
        );
        assert_eq!(std::fs::read_to_string(&secret).unwrap(), "the user's file");
        assert_eq!(mtime(), before);
        assert_eq!(std::fs::read_dir(&outside).unwrap().count(), 1);
    }
}

/// A disk that fills up fails the job with what to do, in status and in the events an editor
/// follows; the daemon keeps serving.
#[test]
fn cache_a_full_disk_is_reported_and_the_daemon_keeps_serving() {
    let world = World::new();
    let ws = world.workspace("basic", "ws");
    let _mounted = Mounted::new(
        &world,
        &["-t", "tmpfs", "-o", "size=3m,mode=0700"],
        Path::new("tmpfs"),
    );

    let events = world
        .cmd(&ws, &["watch"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let status = world.wait_for(&ws, "a failed job and the disk-full report", |ws_status| {
        ws_status["state"] == "failed" && world.status(&ws)["cache"]["disk_full"].is_string()
    });
    assert!(
        status["last_job"]["errors"].as_u64().unwrap() > 0
            || status["last_job"]["failure"].is_string()
    );
    let report = world.status(&ws);
    let message = report["cache"]["disk_full"].as_str().unwrap();
    assert!(
        message.contains("full") && message.contains("buildd cache"),
        "{message}"
    );

    // The daemon still answers, and follows further edits.
    let before = world.last_job_id(&ws);
    edit(&ws.join("util/src/lib.rs"), "\"!\"", "\"?\"");
    world.wait_settled(&ws, before);
    assert!(crate::support::alive(
        report["daemon"]["pid"].as_u64().unwrap()
    ));

    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(events.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    );
    let output = events.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains("disk full:"),
        "the watch saw no disk event:\n{stdout}"
    );
}

/// An archive cut short (a download that stopped): in the manifest, mid-header and mid-file.
/// Each import fails with the cause, an unexpected end of the file, and the warm dir stays.
#[test]
fn cache_import_of_a_cut_short_archive_says_it_ended_early() {
    use std::io::Read;
    let world = World::new();
    let (ws, real, warm) = exported(&world);
    let mut tar = Vec::new();
    zstd::Decoder::new(std::fs::File::open(&real).unwrap())
        .unwrap()
        .read_to_end(&mut tar)
        .unwrap();
    // 600: inside the manifest; then past it, and about half of the archive.
    for cut in [600, tar.len() / 2 + 100, tar.len() / 2 + 300] {
        let short = world.dir.path().join("short.tar.zst");
        std::fs::write(&short, zstd::encode_all(&tar[..cut], 3).unwrap()).unwrap();
        let stderr = refused_import(&world, &ws, &short, &warm);
        assert!(
            stderr.contains("cut short") && stderr.contains("unexpected EOF"),
            "{cut}: {stderr}"
        );
    }
}

/// Key A, then key B (seeded from A), then A again: status shows B's seed only while B is
/// the key; back on A, whose dir was not seeded, there is no seed line.
#[test]
fn cache_the_seed_shown_belongs_to_the_current_key() {
    let world = World::new();
    let ws = world.workspace("basic", "ws");
    world.ok(&ws, &["wait"]);
    let first = world.workspace_status(&ws).unwrap();
    assert!(first["seed"].is_null(), "{first:#}");
    let no_incr = [("CARGO_INCREMENTAL", "0")];
    world.ok_with(&ws, &no_incr, &["wait"]);
    let second = world.workspace_status(&ws).unwrap();
    assert_eq!(second["seed"]["from"], first["key"]["hash"], "{second:#}");
    let text = world.ok_with(&ws, &no_incr, &["status"]);
    assert!(text.contains("seeded from key"), "{text}");

    world.ok(&ws, &["wait"]);
    let back = world.workspace_status(&ws).unwrap();
    assert_eq!(back["key"]["hash"], first["key"]["hash"]);
    assert!(
        back["seed"].is_null(),
        "the other key's seed is shown: {back:#}"
    );
    let text = world.ok(&ws, &["status"]);
    assert!(!text.contains("seeded from key"), "{text}");
}

/// The isolated dir deleted while a job runs in it (a user's `rm -rf ~/.cache/buildd`):
/// cargo makes it again, and the daemon writes its key file back, so `cache list` knows the
/// dir's key and workspace, and a new key can seed from it.
#[test]
fn cache_a_dir_deleted_mid_job_gets_its_key_file_back() {
    let world = World::new();
    let ws = world.workspace("slow", "ws");
    world.ok(&ws, &["wait"]);
    let dir = target_dir(&world.workspace_status(&ws).unwrap());
    let key_file = dir.join("buildd-key.json");
    assert!(key_file.is_file());
    let home = world.home();

    // Hold the next job in slowdev's build script, delete the dir under it, let it go.
    let flag = world.dir.path().join("hold");
    std::fs::write(&flag, "").unwrap();
    let before = world.last_job_id(&ws);
    std::fs::write(ws.join("slowdev/delay.txt"), flag.to_str().unwrap()).unwrap();
    crate::support::wait_until("the blocking build script to run", || {
        !crate::procs::build_scripts(&home).is_empty()
    });
    std::fs::remove_dir_all(&dir).unwrap();
    std::fs::remove_file(&flag).unwrap();
    world.wait_settled(&ws, before);
    // The job may have failed on its vanished dir; the next one builds it whole again.
    let before = world.last_job_id(&ws);
    std::fs::write(ws.join("slowdev/delay.txt"), "").unwrap();
    let status = world.wait_settled(&ws, before);
    assert_eq!(status["state"], "idle", "{status:#}");
    assert!(dir.join("debug").is_dir());
    crate::support::wait_until("the key file to be written again", || key_file.is_file());

    let list: Value = serde_json::from_str(&world.ok(&ws, &["cache", "list", "--json"])).unwrap();
    let listed = listed(&list, &dir).clone();
    assert_eq!(listed["key"]["hash"], status["key"]["hash"], "{listed:#}");
    assert_eq!(listed["workspace"], ws.to_str().unwrap(), "{listed:#}");
    // And it seeds a new key.
    world.ok_with(&ws, &[("CARGO_INCREMENTAL", "0")], &["wait"]);
    let seeded = world.workspace_status(&ws).unwrap();
    assert_eq!(seeded["seed"]["from"], status["key"]["hash"], "{seeded:#}");
}

/// A killed import or seed leaves its staging dir: `cache list` counts it (and says what it
/// is), and the next daemon start removes it, leaving the key dirs alone.
#[test]
fn cache_staging_dirs_of_killed_imports_and_seeds_are_counted_then_removed_at_start() {
    let world = World::new();
    let ws = world.workspace("basic", "ws");
    world.ok(&ws, &["wait"]);
    let dir = target_dir(&world.workspace_status(&ws).unwrap());
    let leftovers = [
        dir.with_extension("importing"),
        dir.with_file_name("0123456789abcdef.seeding"),
    ];
    for left in &leftovers {
        std::fs::create_dir_all(left.join("debug/deps")).unwrap();
        std::fs::write(left.join("debug/deps/libhalf.rlib"), vec![7u8; 100_000]).unwrap();
    }
    let list: Value = serde_json::from_str(&world.ok(&ws, &["cache", "list", "--json"])).unwrap();
    assert_eq!(list["staging_dirs"], 2, "{list:#}");
    assert!(list["staging_bytes"].as_u64().unwrap() >= 200_000);
    assert_eq!(list["dirs"].as_array().unwrap().len(), 1, "{list:#}");
    let text = world.ok(&ws, &["cache", "list"]);
    assert!(
        text.contains("staging:") && text.contains("2 dir(s)"),
        "{text}"
    );

    world.ok(&ws, &["stop"]);
    world.ok(&ws, &["wait"]);
    crate::support::wait_until("the leftovers to be removed", || {
        leftovers.iter().all(|l| !l.exists())
    });
    assert!(dir.join("debug").is_dir(), "the key dir was removed");
    let list: Value = serde_json::from_str(&world.ok(&ws, &["cache", "list", "--json"])).unwrap();
    assert_eq!(list["staging_dirs"], 0, "{list:#}");
    let text = world.ok(&ws, &["cache", "list"]);
    assert!(!text.contains("staging:"), "{text}");
    let left: Vec<_> = std::fs::read_dir(dir.parent().unwrap())
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert_eq!(left.len(), 1, "{left:?}");
}

/// An archive of a million empty files (no bytes, a million inodes): each entry counts as a
/// block against the cache's budget, here set in `config.toml` (and not in the environment),
/// so the import is refused early, naming that budget; and an archive too large for the
/// free space names the free space.
#[test]
fn cache_import_of_a_million_empty_files_is_refused_by_the_budget_in_config_toml() {
    let world = World::new();
    let (ws, real, warm) = exported(&world);
    let many = world.dir.path().join("many.tar.zst");
    crafted(&real, &many, |tar| {
        for i in 0..1_000_000u32 {
            let mut header = tar::Header::new_gnu();
            header.set_size(0);
            header.set_mode(0o644);
            header.set_entry_type(tar::EntryType::Regular);
            header.set_cksum();
            tar.append_data(
                &mut header,
                format!("target/debug/e/{}/{i}", i % 1000),
                std::io::empty(),
            )
            .unwrap();
        }
    });
    std::fs::write(
        world.home().join("config.toml"),
        "[cache]\nbudget = \"64MiB\"\n",
    )
    .unwrap();
    let import = |archive: &Path| {
        let mut cmd = world.cmd(&ws, &["cache", "import", archive.to_str().unwrap()]);
        cmd.env_remove("BUILDD_CACHE_BUDGET");
        refused(cmd, &warm)
    };
    let stderr = import(&many);
    assert!(
        stderr.contains("67108864 bytes")
            && stderr.contains("[cache] budget in")
            && stderr.contains("config.toml"),
        "{stderr}"
    );

    // A budget above the free space: the free space is the limit, and says so.
    std::fs::write(
        world.home().join("config.toml"),
        "[cache]\nbudget = \"1000TiB\"\n",
    )
    .unwrap();
    let big = world.dir.path().join("big.tar.zst");
    let free = nix::sys::statvfs::statvfs(&warm).unwrap();
    let free = free.blocks_available() as u64 * free.fragment_size() as u64;
    crafted(&real, &big, |tar| {
        let mut header = tar::Header::new_gnu();
        header.set_size(free);
        header.set_mode(0o644);
        header.set_entry_type(tar::EntryType::Regular);
        header.set_cksum();
        // Only the header: the import refuses on the size it claims.
        tar.append_data(&mut header, "target/debug/huge", std::io::empty())
            .unwrap();
    });
    let stderr = import(&big);
    assert!(stderr.contains("free space"), "{stderr}");
}

/// A sparse file in a warm dir (1 GiB long, a few bytes of data) stays sparse in a dir seeded
/// from it, whatever the method: a plain copy would write the gigabyte of zeros out.
#[test]
fn cache_seeding_keeps_a_sparse_file_sparse() {
    use std::os::unix::fs::{FileExt, MetadataExt};
    let world = World::new();
    let ws = world.workspace("basic", "ws");
    world.ok(&ws, &["wait"]);
    let original = target_dir(&world.workspace_status(&ws).unwrap());
    let sparse = original.join("debug/sparse.bin");
    let file = std::fs::File::create(&sparse).unwrap();
    file.set_len(1 << 30).unwrap();
    file.write_all_at(b"data", 256 << 20).unwrap();
    drop(file);

    world.ok_with(&ws, &[("CARGO_INCREMENTAL", "0")], &["wait"]);
    let status = world.workspace_status(&ws).unwrap();
    let seeded = target_dir(&status);
    assert_ne!(seeded, original);
    assert!(status["seed"].is_object(), "{status:#}");
    let copy = seeded.join("debug/sparse.bin").metadata().unwrap();
    assert_eq!(copy.len(), 1 << 30);
    assert!(
        copy.blocks() * 512 < 1 << 20,
        "the holes were written out: {} blocks ({:#})",
        copy.blocks(),
        status["seed"]
    );
}

/// Status gives one size for the isolated dir: the workspace's `target dir (...)` and the
/// cache's totals count it the same way as `cache list` (allocated blocks, cargo's uplifted
/// hard links once). The binary and libraries that cargo links into `debug/` besides `deps/`
/// were counted twice before.
#[test]
fn cache_status_and_cache_list_give_one_size_for_a_dir() {
    let world = World::new();
    let ws = world.workspace("basic", "ws");
    world.ok(&ws, &["wait"]);
    let measured =
        |s: &Value| s["workspaces"][0]["target_dir_size"].is_u64() && s["cache"]["bytes"].is_u64();
    crate::support::wait_until("the isolated dir to be measured after the job", || {
        measured(&world.status(&ws))
    });
    let status = world.status(&ws);
    let dir = target_dir(&status["workspaces"][0]);
    let list: Value = serde_json::from_str(&world.ok(&ws, &["cache", "list", "--json"])).unwrap();
    let listed = listed(&list, &dir)["bytes"].as_u64().unwrap();
    let measured = status["workspaces"][0]["target_dir_size"].as_u64().unwrap();
    assert_eq!(
        measured,
        listed,
        "status and `cache list` measure {} alike",
        dir.display()
    );
    assert_eq!(
        status["cache"]["bytes"].as_u64().unwrap(),
        list["totals"]["bytes"].as_u64().unwrap(),
        "{status:#}\n{list:#}"
    );
    // The text shows the two the same way.
    let text = world.ok(&ws, &["status"]);
    let total = text
        .lines()
        .find_map(|l| {
            l.trim()
                .strip_prefix("isolated dirs: ")?
                .split(" in 1 dir(s)")
                .next()
        })
        .unwrap_or_else(|| panic!("no totals line: {text}"));
    let own = format!("target dir: {} ({total})", dir.display());
    assert!(text.contains(&own), "{own:?} in {text}");
}
