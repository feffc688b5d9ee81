//! The path logic: what `load::input` opens and what `onnx::external` lets a
//! model's external-data location reach. A fixed folder holds a model, a FIFO,
//! a directory, a socket and symlinks in and out of it; the fuzzer picks a
//! path inside it (from a small alphabet, so it never leaves the temporary
//! folder's parent) and a location. Invariants: opening never blocks and
//! accepts regular files only; a location that is absolute, has a `..` or
//! resolves outside the folder is always flagged, and one that is not flagged
//! stays inside.
#![no_main]

use std::path::{Component, Path, PathBuf};
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use nnmem::load::input::open_regular;
use nnmem::load::onnx::external::escapes;

struct Folder {
    _root: tempfile::TempDir,
    dir: PathBuf,
}

fn folder() -> &'static Folder {
    static F: OnceLock<Folder> = OnceLock::new();
    F.get_or_init(|| {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("m");
        std::fs::create_dir_all(dir.join("d")).unwrap();
        std::fs::write(dir.join("a"), b"model").unwrap();
        std::fs::write(root.path().join("outside"), b"secret").unwrap();
        let fifo = std::ffi::CString::new(dir.join("p").to_str().unwrap()).unwrap();
        // SAFETY: mkfifo reads a NUL-terminated path.
        unsafe { libc::mkfifo(fifo.as_ptr(), 0o600) };
        std::os::unix::fs::symlink(root.path().join("outside"), dir.join("l")).unwrap();
        std::os::unix::fs::symlink("a", dir.join("i")).unwrap();
        std::os::unix::fs::symlink(root.path(), dir.join("u")).unwrap();
        let _ = std::os::unix::net::UnixListener::bind(dir.join("s")).map(std::mem::forget);
        Folder { dir, _root: root }
    })
}

/// A relative path over the names in the folder, '/' and '.', never `..`.
fn inside(bytes: &[u8]) -> PathBuf {
    const ALPHABET: &[u8] = b"apdliusx/.";
    let s: String = bytes.iter().map(|b| ALPHABET[*b as usize % ALPHABET.len()] as char).collect();
    let s = s.trim_start_matches('/').replace("..", ".");
    PathBuf::from(s)
}

fuzz_target!(|data: &[u8]| {
    let f = folder();
    let (a, b) = data.split_at(data.len() / 2);
    // Opening: never blocks, regular files only (a FIFO would hang this run).
    let rel = inside(a);
    let p = f.dir.join(&rel);
    if let Ok((file, len)) = open_regular(&p) {
        let meta = file.metadata().unwrap();
        assert!(meta.file_type().is_file() && meta.len() == len, "{p:?}");
    }
    // Locations: anything from the model, checked against the folder.
    let location = String::from_utf8_lossy(b);
    let flagged = escapes(&f.dir, &location);
    let loc = Path::new(location.as_ref());
    let outward = location.is_empty()
        || loc.is_absolute()
        || location.starts_with('\\')
        || loc.components().any(|c| matches!(c, Component::ParentDir | Component::RootDir | Component::Prefix(_)));
    if outward {
        assert!(flagged.is_some(), "{location:?} not flagged");
    }
    if flagged.is_none() {
        if let (Ok(real), Ok(real_dir)) = (f.dir.join(loc).canonicalize(), f.dir.canonicalize()) {
            assert!(real.starts_with(&real_dir), "{location:?} resolves to {real:?}");
        }
    }
});
