//! `[sccache.dist]` in `config.toml`: sccache-dist's scheduler, the token buildd's sccache
//! server shows it, and how toolchains are packaged, resolved once into a [`DistConfig`].
//!
//! This module reads and checks the settings (and the token file); it does not write
//! sccache's configuration or talk to the scheduler: `tools/sccache.rs` and
//! `tools/sccache_dist.rs` do. The token is a secret: it is never in `Debug` output, status or
//! the log.

use std::path::{Path, PathBuf};

use serde::Deserialize;
use thiserror::Error;

use crate::home::paths::check_private_file;
use crate::home::regular_file;
use crate::home::values::{ValueError, parse_size};

/// `[sccache.dist]`, as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct DistSection {
    /// The scheduler, such as `http://sccache-scheduler.internal:10600`.
    scheduler_url: Option<String>,
    /// The client token the scheduler's `[client_auth]` expects (`type = "token"`).
    token: Option<String>,
    /// A file holding the token instead: readable by the user alone.
    token_file: Option<PathBuf>,
    /// sccache's `[[dist.toolchains]]`: which compilers are not sent, or are sent as a
    /// prepared archive.
    #[serde(default)]
    toolchains: Vec<ToolchainSection>,
    /// The local cache of packaged toolchains: a size such as `5GiB` or a number of bytes.
    toolchain_cache_size: Option<SizeValue>,
    /// sccache's `rewrite_includes_only` (C and C++ with clang).
    rewrite_includes_only: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum SizeValue {
    Bytes(u64),
    Text(String),
}

/// One `[[sccache.dist.toolchains]]` entry, sccache's own shape.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ToolchainSection {
    #[serde(rename = "type")]
    kind: String,
    compiler_executable: Option<PathBuf>,
    archive: Option<PathBuf>,
    archive_compiler_executable: Option<String>,
}

/// sccache-dist as buildd's server is to use it.
#[derive(Clone, PartialEq, Eq)]
pub struct DistConfig {
    /// The scheduler's URL, without a trailing `/`.
    pub scheduler_url: String,
    /// The client token (a secret).
    pub token: String,
    /// Where the token came from, for messages: `sccache.dist.token` or the file's path.
    pub token_source: String,
    pub toolchains: Vec<DistToolchain>,
    pub toolchain_cache_size: Option<u64>,
    pub rewrite_includes_only: bool,
}

impl std::fmt::Debug for DistConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DistConfig")
            .field("scheduler_url", &self.scheduler_url)
            .field("token", &"<secret>")
            .field("token_source", &self.token_source)
            .field("toolchains", &self.toolchains)
            .field("toolchain_cache_size", &self.toolchain_cache_size)
            .field("rewrite_includes_only", &self.rewrite_includes_only)
            .finish()
    }
}

/// How sccache treats one compiler (sccache's `DistToolchainConfig`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DistToolchain {
    /// Always compiled locally.
    NoDist { compiler_executable: PathBuf },
    /// Sent as a prepared archive instead of being packaged by sccache.
    PathOverride {
        compiler_executable: PathBuf,
        archive: PathBuf,
        archive_compiler_executable: String,
    },
}

/// What is wrong with `[sccache.dist]`; every message names the key and what to do.
#[derive(Debug, Error)]
pub enum DistConfigError {
    #[error(
        "sccache.dist.scheduler_url is missing: set it to the scheduler's URL, such as \"http://sccache-scheduler.internal:10600\""
    )]
    NoScheduler,
    #[error(
        "sccache.dist.scheduler_url: `{url}` {why}: write it like \"http://sccache-scheduler.internal:10600\""
    )]
    BadUrl { url: String, why: &'static str },
    #[error(
        "sccache.dist: no token: set sccache.dist.token, or sccache.dist.token_file to a file holding the scheduler's client token"
    )]
    NoToken,
    #[error("sccache.dist: token and token_file are both set: keep one")]
    TwoTokens,
    #[error("sccache.dist.token_file: {0}")]
    TokenFile(String),
    #[error("sccache.dist.token_file: {path} is empty: write the scheduler's client token in it")]
    EmptyTokenFile { path: PathBuf },
    #[error(
        "sccache.dist.token_file: {path} can be read by {who} (mode {mode:o}): the token is a secret; chmod 600 {path}"
    )]
    TokenReadable {
        path: PathBuf,
        who: &'static str,
        mode: u32,
    },
    #[error("sccache.dist.token_file: {path} is not absolute: write the full path")]
    RelativeTokenFile { path: PathBuf },
    #[error(
        "sccache.dist.token: the token is empty or holds spaces or control characters: write the scheduler's client token"
    )]
    BadToken,
    #[error("sccache.dist.toolchain_cache_size: {0}")]
    BadSize(ValueError),
    #[error("sccache.dist.toolchains[{index}]: {why}")]
    BadToolchain { index: usize, why: String },
    #[error(
        "sccache.dist and sccache.config both configure buildd's sccache server: keep [sccache.dist] and remove sccache.config, or put the [dist] section in that file"
    )]
    WithConfigFile,
}

impl DistSection {
    /// Resolves the section, reading the token file; sizes are written as in the rest of
    /// `config.toml`.
    pub(crate) fn resolve(self) -> Result<DistConfig, DistConfigError> {
        let url = self.scheduler_url.ok_or(DistConfigError::NoScheduler)?;
        let scheduler_url = check_url(&url)?;
        let (token, token_source) = match (self.token, self.token_file) {
            (Some(_), Some(_)) => return Err(DistConfigError::TwoTokens),
            (None, None) => return Err(DistConfigError::NoToken),
            (Some(token), None) => (token, "sccache.dist.token".to_owned()),
            (None, Some(path)) => (read_token_file(&path)?, path.display().to_string()),
        };
        let token = token.trim().to_owned();
        if token.is_empty() || token.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(DistConfigError::BadToken);
        }
        let toolchain_cache_size = match self.toolchain_cache_size {
            None => None,
            Some(SizeValue::Bytes(n)) => Some(n),
            Some(SizeValue::Text(text)) => {
                Some(parse_size(&text).map_err(DistConfigError::BadSize)?)
            }
        };
        let toolchains = self
            .toolchains
            .into_iter()
            .enumerate()
            .map(|(index, t)| {
                toolchain(t).map_err(|why| DistConfigError::BadToolchain { index, why })
            })
            .collect::<Result<_, _>>()?;
        Ok(DistConfig {
            scheduler_url,
            token,
            token_source,
            toolchains,
            toolchain_cache_size,
            rewrite_includes_only: self.rewrite_includes_only.unwrap_or(false),
        })
    }
}

/// `http://host:port` or `https://host[:port]`, with nothing after the authority but `/`
/// (sccache joins its API paths to the URL's root).
fn check_url(url: &str) -> Result<String, DistConfigError> {
    let bad = |why| DistConfigError::BadUrl {
        url: url.to_owned(),
        why,
    };
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"))
        .ok_or_else(|| bad("is not an http:// or https:// URL"))?;
    let authority = rest.strip_suffix('/').unwrap_or(rest);
    if authority.is_empty() {
        return Err(bad("has no host"));
    }
    if authority.contains(['/', '?', '#', '@']) || authority.chars().any(char::is_whitespace) {
        return Err(bad("has more than a scheme, a host and a port"));
    }
    if let Some((host, port)) = authority.rsplit_once(':')
        && !host.ends_with(']')
        && (host.is_empty() || port.parse::<u16>().is_err())
    {
        return Err(bad("has a port that is not a number"));
    }
    Ok(url.trim_end_matches('/').to_owned())
}

fn toolchain(t: ToolchainSection) -> Result<DistToolchain, String> {
    let absolute = |name: &str, path: Option<PathBuf>| -> Result<PathBuf, String> {
        match path {
            Some(p) if p.is_absolute() => Ok(p),
            Some(p) => Err(format!(
                "{name} `{}` is not absolute: write the full path",
                p.display()
            )),
            None => Err(format!("{name} is missing")),
        }
    };
    match t.kind.as_str() {
        "no_dist" => {
            if t.archive.is_some() || t.archive_compiler_executable.is_some() {
                return Err("a no_dist toolchain has only compiler_executable".to_owned());
            }
            Ok(DistToolchain::NoDist {
                compiler_executable: absolute("compiler_executable", t.compiler_executable)?,
            })
        }
        "path_override" => Ok(DistToolchain::PathOverride {
            compiler_executable: absolute("compiler_executable", t.compiler_executable)?,
            archive: absolute("archive", t.archive)?,
            archive_compiler_executable: t
                .archive_compiler_executable
                .ok_or("archive_compiler_executable is missing")?,
        }),
        other => Err(format!(
            "type `{other}` is not a toolchain type: write \"no_dist\" or \"path_override\""
        )),
    }
}

/// Reads the token from a regular file of the user's that no one else can write (as
/// `config.toml`) nor read (it is a secret).
fn read_token_file(path: &Path) -> Result<String, DistConfigError> {
    use std::os::unix::fs::MetadataExt;
    if !path.is_absolute() {
        return Err(DistConfigError::RelativeTokenFile {
            path: path.to_path_buf(),
        });
    }
    let (text, meta) = regular_file::read(path, regular_file::MAX_SETTINGS_FILE)
        .map_err(|e| DistConfigError::TokenFile(e.to_string()))?
        .ok_or_else(|| {
            DistConfigError::TokenFile(format!(
                "{} does not exist: write the scheduler's client token into it (chmod 600)",
                path.display()
            ))
        })?;
    check_private_file(path, &meta).map_err(|e| DistConfigError::TokenFile(e.to_string()))?;
    let mode = meta.mode() & 0o7777;
    if mode & 0o044 != 0 {
        return Err(DistConfigError::TokenReadable {
            path: path.to_path_buf(),
            who: if mode & 0o004 != 0 {
                "others"
            } else {
                "its group"
            },
            mode,
        });
    }
    let token = text.trim();
    if token.is_empty() {
        return Err(DistConfigError::EmptyTokenFile {
            path: path.to_path_buf(),
        });
    }
    Ok(token.to_owned())
}

/// The `[dist]` section of sccache's configuration file for `config`; `cache_dir` is
/// buildd's own (sccache's default is the user's `~/.cache/sccache-dist-client`).
pub(crate) fn sccache_dist_section(config: &DistConfig, cache_dir: &Path) -> String {
    let mut dist = toml::Table::new();
    dist.insert("scheduler_url".into(), config.scheduler_url.clone().into());
    dist.insert(
        "cache_dir".into(),
        cache_dir.to_string_lossy().into_owned().into(),
    );
    if let Some(size) = config.toolchain_cache_size {
        dist.insert(
            "toolchain_cache_size".into(),
            toml::Value::Integer(i64::try_from(size).unwrap_or(i64::MAX)),
        );
    }
    dist.insert(
        "rewrite_includes_only".into(),
        config.rewrite_includes_only.into(),
    );
    let toolchains: Vec<toml::Value> = config
        .toolchains
        .iter()
        .map(|t| {
            let mut table = toml::Table::new();
            let (kind, compiler) = match t {
                DistToolchain::NoDist {
                    compiler_executable,
                } => ("no_dist", compiler_executable),
                DistToolchain::PathOverride {
                    compiler_executable,
                    archive,
                    archive_compiler_executable,
                } => {
                    table.insert(
                        "archive".into(),
                        archive.to_string_lossy().into_owned().into(),
                    );
                    table.insert(
                        "archive_compiler_executable".into(),
                        archive_compiler_executable.clone().into(),
                    );
                    ("path_override", compiler_executable)
                }
            };
            table.insert("type".into(), kind.into());
            table.insert(
                "compiler_executable".into(),
                compiler.to_string_lossy().into_owned().into(),
            );
            toml::Value::Table(table)
        })
        .collect();
    dist.insert("toolchains".into(), toolchains.into());
    let mut auth = toml::Table::new();
    auth.insert("type".into(), "token".into());
    auth.insert("token".into(), config.token.clone().into());
    dist.insert("auth".into(), auth.into());
    let mut file = toml::Table::new();
    file.insert("dist".into(), dist.into());
    toml::to_string(&file).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn resolve(text: &str) -> Result<DistConfig, DistConfigError> {
        let section: DistSection = toml::from_str(text).unwrap();
        section.resolve()
    }

    #[test]
    fn a_section_resolves_and_becomes_sccache_s_dist_section() {
        let config = resolve(
            "scheduler_url = \"http://127.0.0.1:10600/\"\ntoken = \"s3cret\"\n\
             toolchain_cache_size = 1000\n\
             [[toolchains]]\ntype = \"no_dist\"\ncompiler_executable = \"/usr/bin/gcc\"\n",
        )
        .unwrap();
        assert_eq!(config.scheduler_url, "http://127.0.0.1:10600");
        assert!(!format!("{config:?}").contains("s3cret"));
        let text = sccache_dist_section(&config, Path::new("/h/cache/tools/sccache/dist"));
        let back: toml::Table = toml::from_str(&text).unwrap();
        let dist = &back["dist"];
        assert_eq!(
            dist["scheduler_url"].as_str(),
            Some("http://127.0.0.1:10600")
        );
        assert_eq!(dist["auth"]["type"].as_str(), Some("token"));
        assert_eq!(dist["auth"]["token"].as_str(), Some("s3cret"));
        assert_eq!(dist["toolchain_cache_size"].as_integer(), Some(1000));
        assert_eq!(
            dist["cache_dir"].as_str(),
            Some("/h/cache/tools/sccache/dist")
        );
        assert_eq!(dist["toolchains"][0]["type"].as_str(), Some("no_dist"));
    }

    #[test]
    fn bad_sections_name_the_key() {
        for (text, key) in [
            ("token = \"t\"", "scheduler_url is missing"),
            (
                "scheduler_url = \"ftp://x:1\"\ntoken = \"t\"",
                "scheduler_url: `ftp://x:1`",
            ),
            ("scheduler_url = \"http://x:port\"\ntoken = \"t\"", "port"),
            (
                "scheduler_url = \"http://x:1/api\"\ntoken = \"t\"",
                "more than",
            ),
            ("scheduler_url = \"http://x:1\"", "no token"),
            (
                "scheduler_url = \"http://x:1\"\ntoken = \"t\"\ntoken_file = \"/t\"",
                "both",
            ),
            (
                "scheduler_url = \"http://x:1\"\ntoken = \"a b\"",
                "sccache.dist.token:",
            ),
            (
                "scheduler_url = \"http://x:1\"\ntoken_file = \"rel\"",
                "not absolute",
            ),
            (
                "scheduler_url = \"http://x:1\"\ntoken = \"t\"\ntoolchain_cache_size = \"lots\"",
                "toolchain_cache_size: `lots`",
            ),
            (
                "scheduler_url = \"http://x:1\"\ntoken = \"t\"\n[[toolchains]]\ntype = \"remote\"",
                "toolchains[0]: type `remote`",
            ),
            (
                "scheduler_url = \"http://x:1\"\ntoken = \"t\"\n[[toolchains]]\ntype = \"no_dist\"\ncompiler_executable = \"gcc\"",
                "toolchains[0]: compiler_executable `gcc` is not absolute",
            ),
        ] {
            let err = resolve(text).unwrap_err().to_string();
            assert!(err.contains(key), "{text:?}: {err}");
        }
    }

    #[test]
    fn the_token_file_must_be_private_and_hold_a_token() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("token");
        std::fs::write(&file, "tok-123\n").unwrap();
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
        let text = format!(
            "scheduler_url = \"https://sched.internal\"\ntoken_file = {:?}",
            file.to_str().unwrap()
        );
        let config = resolve(&text).unwrap();
        assert_eq!(config.token, "tok-123");
        assert_eq!(config.token_source, file.display().to_string());

        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
        let err = resolve(&text).unwrap_err().to_string();
        assert!(
            err.contains("read by others") && err.contains("chmod 600"),
            "{err}"
        );
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o620)).unwrap();
        let err = resolve(&text).unwrap_err().to_string();
        assert!(
            err.contains("token_file") && err.contains("chmod go-w"),
            "{err}"
        );

        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
        std::fs::write(&file, "\n").unwrap();
        let err = resolve(&text).unwrap_err().to_string();
        assert!(err.contains("is empty"), "{err}");
        std::fs::remove_file(&file).unwrap();
        let err = resolve(&text).unwrap_err().to_string();
        assert!(err.contains("does not exist"), "{err}");
    }
}
