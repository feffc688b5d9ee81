//! Writing results: standard output, or `-o FILE`.
//!
//! A regular file (new or existing) is written atomically: a temporary file
//! with a short random name in the same folder, then a rename. The rename only
//! ever replaces a regular file, so a device, a FIFO or a symlink is never
//! swapped for a file. What `-o` accepts (docs/security.md):
//!
//! - a path that does not exist yet, or a regular file: atomic, keeping an
//!   existing file's permission bits (and owner, where allowed);
//! - a symlink to a regular file: the file it points to is replaced, the link stays;
//! - `-`, `/dev/stdout`, `/dev/fd/1`, `/proc/self/fd/1`: standard output;
//! - a FIFO with a reader, or the null device: written directly (not atomic);
//! - anything else (other devices, sockets, directories, a dangling symlink) is refused;
//! - never the model itself or any file the model names (`--weights`, ONNX external data).

use std::fs::{Metadata, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

/// Writes `bytes` to standard output (`target` `None` or `-`) or to `target`.
/// `inputs` are the files the run read or the model names: never overwritten.
pub fn emit(bytes: &[u8], target: Option<&Path>, inputs: &[&Path]) -> Result<()> {
    match target {
        None => write_stdout(bytes),
        Some(t) if is_stdout_alias(t) => write_stdout(bytes),
        Some(t) => write_to(t, bytes, inputs),
    }
}

fn write_stdout(bytes: &[u8]) -> Result<()> {
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    match out.write_all(bytes).and_then(|_| out.flush()) {
        // A closed pipe (`nnmem … | head`) is not an error.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => other.context("writing to standard output"),
    }
}

/// Spellings of standard output. Opening them anew would truncate or replace
/// what the shell set up, so they are written through the process's own handle.
fn is_stdout_alias(t: &Path) -> bool {
    matches!(t.to_str(), Some("-" | "/dev/stdout" | "/dev/fd/1" | "/proc/self/fd/1"))
}

/// The null device's numbers on Linux (major 1, minor 3).
const NULL_DEVICE: (u64, u64) = (1, 3);

fn device_numbers(rdev: u64) -> (u64, u64) {
    // glibc's gnu_dev_major / gnu_dev_minor.
    let major = ((rdev >> 8) & 0xfff) | ((rdev >> 32) & !0xfff);
    let minor = (rdev & 0xff) | ((rdev >> 12) & !0xff);
    (major, minor)
}

fn write_to(target: &Path, bytes: &[u8], inputs: &[&Path]) -> Result<()> {
    let shown = target.display();
    let link = match std::fs::symlink_metadata(target) {
        Ok(m) => Some(m),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(e).with_context(|| format!("-o {shown}")),
    };
    let Some(link) = link else {
        refuse_inputs(target, None, inputs)?;
        return write_atomically(target, None, bytes);
    };
    // Follow a symlink once to what it names.
    let (real_path, meta): (PathBuf, Metadata) = if link.file_type().is_symlink() {
        let meta = std::fs::metadata(target)
            .with_context(|| format!("-o {shown}: a symlink whose target cannot be used"))?;
        let real = target.canonicalize().with_context(|| format!("-o {shown}: resolving the symlink"))?;
        (real, meta)
    } else {
        (target.to_path_buf(), link)
    };
    refuse_inputs(&real_path, Some(&meta), inputs)?;
    let kind = meta.file_type();
    if kind.is_file() {
        write_atomically(&real_path, Some(&meta), bytes)
    } else if kind.is_fifo() {
        write_fifo(&real_path, bytes).with_context(|| format!("-o {shown}"))
    } else if kind.is_char_device() && device_numbers(meta.rdev()) == NULL_DEVICE {
        let mut f = OpenOptions::new().write(true).open(&real_path).with_context(|| format!("-o {shown}"))?;
        f.write_all(bytes).with_context(|| format!("-o {shown}"))
    } else {
        let what = if kind.is_dir() {
            "a directory"
        } else if kind.is_char_device() || kind.is_block_device() {
            "a device"
        } else if kind.is_socket() {
            "a socket"
        } else {
            "not a regular file"
        };
        bail!("-o {shown}: is {what}; nnmem writes only regular files, a FIFO, the null device or standard output")
    }
}

/// Refuses a target that is one of the inputs, by identity (hard links too)
/// or, for inputs that do not exist (external data not shipped), by path.
fn refuse_inputs(target: &Path, meta: Option<&Metadata>, inputs: &[&Path]) -> Result<()> {
    let target_key = normalised(target);
    for input in inputs {
        let same_inode = match (meta, std::fs::metadata(input)) {
            (Some(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
            _ => false,
        };
        if same_inode || (target_key.is_some() && target_key == normalised(input)) {
            bail!("refusing to write the report over the input {} (the model, its --weights or its external data)", input.display());
        }
    }
    Ok(())
}

/// The path with its folder resolved (the file itself need not exist).
fn normalised(p: &Path) -> Option<PathBuf> {
    let name = p.file_name()?;
    let dir = match p.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    Some(dir.canonicalize().ok()?.join(name))
}

fn write_atomically(target: &Path, existing: Option<&Metadata>, bytes: &[u8]) -> Result<()> {
    let shown = target.display();
    let dir = match target.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    // A short random name (never longer than the target's own limit), created
    // exclusively, so nothing planted at that name is followed or reused.
    let mut tmp = tempfile::Builder::new()
        .prefix(".nnmem-")
        .suffix(".tmp")
        .rand_bytes(8)
        .permissions(std::fs::Permissions::from_mode(0o666))
        .tempfile_in(dir)
        .with_context(|| format!("-o {shown}: creating a temporary file in {}", dir.display()))?;
    tmp.write_all(bytes).with_context(|| format!("-o {shown}: writing"))?;
    if let Some(m) = existing {
        let file = tmp.as_file();
        // Keep who may read it. The owner only changes back where allowed (root).
        let _ = std::os::unix::fs::fchown(file, Some(m.uid()), Some(m.gid()));
        file.set_permissions(std::fs::Permissions::from_mode(m.mode() & 0o7777))
            .with_context(|| format!("-o {shown}: keeping its permissions"))?;
    }
    let _ = tmp.as_file().sync_all();
    tmp.persist(target).map_err(|e| e.error).with_context(|| format!("-o {shown}: replacing it"))?;
    Ok(())
}

/// A FIFO is written directly, once a reader is there: opening without one
/// would block forever, so the open does not wait.
fn write_fifo(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut f = match OpenOptions::new().write(true).custom_flags(libc::O_NONBLOCK).open(path) {
        Ok(f) => f,
        Err(e) if e.raw_os_error() == Some(libc::ENXIO) => bail!("a FIFO with no process reading it"),
        Err(e) => return Err(e.into()),
    };
    // Back to blocking writes, so a full pipe waits for the reader.
    use std::os::fd::AsRawFd;
    let fd = f.as_raw_fd();
    // SAFETY: fcntl on a descriptor this function owns; no memory is passed.
    unsafe {
        let flags = libc::fcntl(fd, libc::F_GETFL);
        if flags >= 0 {
            libc::fcntl(fd, libc::F_SETFL, flags & !libc::O_NONBLOCK);
        }
    }
    match f.write_all(bytes) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => Ok(other?),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_numbers_split_like_glibc() {
        // makedev(1, 3) and makedev(1, 7) as glibc packs them.
        assert_eq!(device_numbers(0x103), (1, 3));
        assert_eq!(device_numbers(0x107), (1, 7));
        assert_eq!(device_numbers((259 << 8) | 2), (259, 2));
    }

    #[test]
    fn stdout_spellings() {
        assert!(is_stdout_alias(Path::new("/dev/stdout")));
        assert!(is_stdout_alias(Path::new("-")));
        assert!(!is_stdout_alias(Path::new("/dev/null")));
    }
}
