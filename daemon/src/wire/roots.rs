//! Which workspace a path belongs to. A request names a path (a file, a dir, a workspace);
//! it concerns the deepest registered root that contains it, since workspaces nest (see
//! `docs/protocol.md`). The daemon and `buildd lsp` both answer that question, and a package
//! of a workspace is found the same way, so it is answered here once.

use std::path::Path;

/// The item whose dir (`dir_of`) is the deepest one containing `path`; `None` when no dir
/// contains it. Containment is by path components, so `/w/ab` is not inside `/w/a`.
pub fn deepest_containing<I>(
    items: impl IntoIterator<Item = I>,
    path: &Path,
    dir_of: impl Fn(&I) -> &Path,
) -> Option<I> {
    items
        .into_iter()
        .filter(|item| path.starts_with(dir_of(item)))
        .max_by_key(|item| dir_of(item).components().count())
}

/// The deepest of `roots` that contains `path`.
pub fn root_of<'a, P: AsRef<Path> + 'a>(
    roots: impl IntoIterator<Item = &'a P>,
    path: &Path,
) -> Option<&'a P> {
    deepest_containing(roots, path, |root| root.as_ref())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    #[test]
    fn the_deepest_containing_root_wins_and_prefixes_of_names_do_not_count() {
        let roots: Vec<PathBuf> = ["/w", "/w/inner", "/w/ab"]
            .iter()
            .map(PathBuf::from)
            .collect();
        let of = |p: &str| root_of(&roots, Path::new(p)).map(|r| r.to_str().unwrap());
        assert_eq!(of("/w/inner/src/lib.rs"), Some("/w/inner"));
        assert_eq!(of("/w/inner"), Some("/w/inner"));
        assert_eq!(of("/w/a/x.rs"), Some("/w"));
        assert_eq!(of("/w/abc/x.rs"), Some("/w"));
        assert_eq!(of("/elsewhere"), None);
    }
}
