//! External-data references of ONNX initializers.
//!
//! Only the dims and dtype of an external tensor are needed, and both sit in the
//! .onnx file itself, so the data file is never opened. A `location` is still
//! checked, because a model downloaded from anywhere may point at any file: an
//! absolute path, a `..` that leaves the model's folder, or a symlink that
//! resolves outside it is reported and never followed.

use std::collections::BTreeMap;
use std::path::{Component, Path};

use super::budget::External;

/// Warnings about external-data references, wherever their tensors sit (the
/// budget walk finds them all: initializers, attribute tensors of Constant and
/// other nodes, sparse tensors, subgraphs, training graphs, functions), one
/// per distinct location; `unlisted` more were only counted.
pub fn check_locations(model_dir: &Path, external: &[External], unlisted: u64) -> Vec<String> {
    // location -> (tensors, example tensor name)
    let mut by_location: BTreeMap<&str, (usize, &str)> = BTreeMap::new();
    let mut missing_location = Vec::new();
    for e in external {
        match &e.location {
            Some(loc) => by_location.entry(loc).or_insert((0, &e.tensor)).0 += 1,
            None => missing_location.push(e.tensor.as_str()),
        }
    }
    let mut warnings = Vec::new();
    if let Some(first) = missing_location.first() {
        warnings.push(format!(
            "{} external tensor(s) have no data location (e.g. \"{first}\")",
            missing_location.len()
        ));
    }
    for (loc, (count, example)) in by_location {
        if let Some(why) = escapes(model_dir, loc) {
            let example = if example.is_empty() { String::new() } else { format!(", e.g. \"{example}\"") };
            warnings.push(format!(
                "external data location \"{loc}\" ({count} tensor(s){example}) {why}; not followed (only dims and dtype are used)"
            ));
        }
    }
    if unlisted > 0 {
        warnings.push(format!("{unlisted} more external tensor(s) were not checked (nnmem lists at most {})", super::budget::MAX_EXTERNAL_LISTED));
    }
    warnings
}

/// Why `location` may not be followed, or `None` when it stays inside `dir`.
pub fn escapes(dir: &Path, location: &str) -> Option<&'static str> {
    let rel = Path::new(location);
    if location.is_empty() {
        return Some("is empty");
    }
    if rel.is_absolute() || location.starts_with('/') || location.starts_with('\\') {
        return Some("is an absolute path");
    }
    for c in rel.components() {
        match c {
            Component::ParentDir => return Some("leaves the model's folder (\"..\")"),
            Component::RootDir | Component::Prefix(_) => return Some("is an absolute path"),
            Component::CurDir | Component::Normal(_) => {}
        }
    }
    // A symlink inside the folder may still point outside it. Resolving the path
    // reads directory entries only; the file itself is not opened.
    let joined = dir.join(rel);
    if let (Ok(real), Ok(real_dir)) = (joined.canonicalize(), dir.canonicalize()) {
        if !real.starts_with(&real_dir) {
            return Some("resolves (through a symlink) outside the model's folder");
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_outside_the_folder_are_flagged() {
        let dir = Path::new("/tmp");
        assert!(escapes(dir, "/etc/passwd").is_some());
        assert!(escapes(dir, "../secret.bin").is_some());
        assert!(escapes(dir, "sub/../../x").is_some());
        assert!(escapes(dir, "").is_some());
        assert_eq!(escapes(dir, "model.onnx.data"), None);
        assert_eq!(escapes(dir, "./weights/part1.bin"), None);
    }
}
