//! `file:` URIs and paths, both ways, byte-exact.
//!
//! Paths on Unix are bytes, not text: a file name may not be UTF-8. `ls_types::Uri`'s own
//! conversions go through lossy strings, which would turn such a name into another file, so
//! this module percent-encodes and decodes the raw bytes itself. A URI that is not a local
//! `file:` URI (`untitled:`, a remote host) is an error the caller logs, never a panic.

use std::ffi::OsString;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};
use std::str::FromStr;

use tower_lsp_server::ls_types::Uri;

#[derive(Debug, PartialEq, Eq)]
pub(crate) enum UriError {
    NotFile(String),
    RemoteHost(String),
    NotAbsolute(String),
}

impl std::fmt::Display for UriError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            UriError::NotFile(uri) => write!(f, "{uri} is not a file: URI"),
            UriError::RemoteHost(uri) => write!(f, "{uri} names a file on another host"),
            UriError::NotAbsolute(uri) => write!(f, "{uri} has no absolute path"),
        }
    }
}

/// The path a `file:` URI names.
pub(crate) fn to_path(uri: &Uri) -> Result<PathBuf, UriError> {
    let text = uri.as_str();
    if !uri.scheme().as_str().eq_ignore_ascii_case("file") {
        return Err(UriError::NotFile(text.to_owned()));
    }
    if let Some(authority) = uri.authority() {
        let host = authority.host();
        if !host.is_empty() && !host.eq_ignore_ascii_case("localhost") {
            return Err(UriError::RemoteHost(text.to_owned()));
        }
    }
    let bytes = decode(uri.path().as_str());
    if bytes.first() != Some(&b'/') {
        return Err(UriError::NotAbsolute(text.to_owned()));
    }
    Ok(PathBuf::from(OsString::from_vec(bytes)))
}

/// The `file:` URI of an absolute path; `None` for a relative one.
pub(crate) fn from_path(path: &Path) -> Option<Uri> {
    if !path.is_absolute() {
        return None;
    }
    let mut text = String::from("file://");
    for &byte in path.as_os_str().as_bytes() {
        // RFC 3986 unreserved characters and the separator stay; every other byte (spaces,
        // `%`, `#`, `?`, non-ASCII and non-UTF-8 bytes) is escaped.
        if byte.is_ascii_alphanumeric() || b"-._~/".contains(&byte) {
            text.push(byte as char);
        } else {
            text.push_str(&format!("%{byte:02X}"));
        }
    }
    Uri::from_str(&text).ok()
}

/// Percent-decodes into bytes; a `%` not followed by two hex digits stays as it is.
fn decode(text: &str) -> Vec<u8> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let Some(hex) = bytes.get(i + 1..i + 3)
            && let Ok(hex) = std::str::from_utf8(hex)
            && let Ok(byte) = u8::from_str_radix(hex, 16)
        {
            out.push(byte);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn uri(text: &str) -> Uri {
        Uri::from_str(text).unwrap()
    }

    #[test]
    fn paths_round_trip_with_spaces_and_unicode() {
        for path in ["/tmp/a b/c#d.rs", "/home/me/café/😀.rs", "/w/src/lib.rs"] {
            let u = from_path(Path::new(path)).unwrap();
            assert_eq!(to_path(&u).unwrap(), Path::new(path), "{}", u.as_str());
        }
        assert_eq!(
            from_path(Path::new("/a b/é")).unwrap().as_str(),
            "file:///a%20b/%C3%A9"
        );
    }

    #[test]
    fn non_utf8_paths_round_trip_byte_for_byte() {
        let path = PathBuf::from(OsString::from_vec(b"/tmp/bad\xff name.rs".to_vec()));
        let u = from_path(&path).unwrap();
        assert_eq!(u.as_str(), "file:///tmp/bad%FF%20name.rs");
        assert_eq!(to_path(&u).unwrap(), path);
    }

    #[test]
    fn lowercase_escapes_and_localhost_are_read() {
        assert_eq!(
            to_path(&uri("file://localhost/tmp/%c3%a9.rs")).unwrap(),
            Path::new("/tmp/é.rs")
        );
    }

    #[test]
    fn other_uris_are_errors_not_panics() {
        assert!(matches!(
            to_path(&uri("untitled:Untitled-1")),
            Err(UriError::NotFile(_))
        ));
        assert!(matches!(
            to_path(&uri("file://server/share/x.rs")),
            Err(UriError::RemoteHost(_))
        ));
        assert!(from_path(Path::new("relative/x.rs")).is_none());
    }
}
