//! Opening what nnmem reads: regular files only, and standard input with a cap.
//!
//! A path is followed once (the open resolves its symlinks). Before the open,
//! `stat` says what the path names: a FIFO, a device, a socket or a directory
//! is refused there, without being opened, so a FIFO never blocks and a device
//! never sees an open. The open itself is non-blocking, and its handle is
//! checked again with `fstat`, so a path swapped for something else between
//! the two is caught too. A size the file system reports is never trusted for
//! anything but a regular file, and even then what is read is bounded while
//! reading.
//!
//! Standard input (`-`, or `/dev/stdin`, `/dev/fd/0`, `/proc/self/fd/0`) is
//! read through the process's own handle: when it is a regular file (`< FILE`)
//! like any file; otherwise (a pipe, a terminal) at most `STDIN_MAX_BYTES` are
//! read, and more is an error.

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use super::LoadError;

/// The most nnmem reads from standard input when it is not a regular file.
pub const STDIN_MAX_BYTES: u64 = 16 << 20;

/// How standard input is named in messages.
pub const STDIN_NAME: &str = "<stdin>";

/// Spellings of standard input.
pub fn is_stdin(path: &Path) -> bool {
    matches!(path.to_str(), Some("-" | "/dev/stdin" | "/dev/fd/0" | "/proc/self/fd/0"))
}

/// What a file type is, in words, when it is not a regular file.
fn not_regular(ft: &std::fs::FileType) -> Option<&'static str> {
    use std::os::unix::fs::FileTypeExt;
    if ft.is_file() {
        None
    } else if ft.is_dir() {
        Some("a directory")
    } else if ft.is_fifo() {
        Some("a FIFO (named pipe)")
    } else if ft.is_char_device() {
        Some("a character device")
    } else if ft.is_block_device() {
        Some("a block device")
    } else if ft.is_socket() {
        Some("a socket")
    } else {
        Some("not a regular file")
    }
}

fn refuse(path: &Path, kind: &str) -> LoadError {
    LoadError::Format {
        path: path.to_path_buf(),
        message: format!("is {kind}, not a model file; nnmem reads regular files only (standard input as `-`)"),
    }
}

/// An opened input: a regular file, or bytes already read from standard input.
pub enum Input {
    File { file: File, len: u64 },
    Bytes(Vec<u8>),
}

/// An input and the name it is given in messages.
pub struct Opened {
    pub name: PathBuf,
    pub input: Input,
}

/// The bytes of an input: mapped read-only, or owned.
pub enum Data {
    Mapped(memmap2::Mmap),
    Owned(Vec<u8>),
}

impl std::ops::Deref for Data {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match self {
            Data::Mapped(m) => m,
            Data::Owned(v) => v,
        }
    }
}

/// Opens `path` when it names a regular file (after following symlinks);
/// anything else is refused without being opened.
pub fn open_regular(path: &Path) -> Result<(File, u64), LoadError> {
    use std::os::unix::fs::OpenOptionsExt;
    let io = |cause| LoadError::Io { path: path.to_path_buf(), cause };
    let before = std::fs::metadata(path).map_err(io)?;
    if let Some(kind) = not_regular(&before.file_type()) {
        return Err(refuse(path, kind));
    }
    // Non-blocking: if the path became a FIFO since the stat, the open does not wait.
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY | libc::O_CLOEXEC)
        .open(path)
        .map_err(io)?;
    let meta = file.metadata().map_err(io)?;
    if let Some(kind) = not_regular(&meta.file_type()) {
        return Err(refuse(path, kind));
    }
    Ok((file, meta.len()))
}

/// `open_regular` as an `Opened` named by its path.
pub fn open_file(path: &Path) -> Result<Opened, LoadError> {
    let (file, len) = open_regular(path)?;
    Ok(Opened { name: path.to_path_buf(), input: Input::File { file, len } })
}

/// Opens the model argument: standard input for its spellings, else a regular file.
pub fn open_model(path: &Path) -> Result<Opened, LoadError> {
    if !is_stdin(path) {
        return open_file(path);
    }
    use std::os::fd::AsFd;
    let name = PathBuf::from(STDIN_NAME);
    let io = |cause| LoadError::Io { path: name.clone(), cause };
    let stdin = std::io::stdin();
    let handle = stdin.as_fd().try_clone_to_owned().map_err(io)?;
    let file = File::from(handle);
    let meta = file.metadata().map_err(io)?;
    if meta.file_type().is_file() {
        return Ok(Opened { name, input: Input::File { file, len: meta.len() } });
    }
    if meta.file_type().is_dir() {
        return Err(refuse(&name, "a directory"));
    }
    // A pipe or a terminal: bounded while reading, whatever it is.
    let bytes = read_capped(stdin.lock(), STDIN_MAX_BYTES).map_err(io)?.ok_or_else(|| LoadError::Format {
        path: name.clone(),
        message: format!(
            "more than {} bytes on standard input; give a larger model as a file",
            STDIN_MAX_BYTES
        ),
    })?;
    Ok(Opened { name, input: Input::Bytes(bytes) })
}

/// Reads at most `cap` bytes; `None` when there is more.
fn read_capped(reader: impl Read, cap: u64) -> std::io::Result<Option<Vec<u8>>> {
    let mut bytes = Vec::new();
    reader.take(cap.saturating_add(1)).read_to_end(&mut bytes)?;
    Ok((bytes.len() as u64 <= cap).then_some(bytes))
}

impl Opened {
    /// The first bytes (at most 256), without moving the file's position.
    pub fn head(&self) -> Result<Vec<u8>, LoadError> {
        match &self.input {
            Input::File { file, len } => {
                use std::os::unix::fs::FileExt;
                let mut head = vec![0u8; (*len).min(256) as usize];
                let mut done = 0;
                while done < head.len() {
                    match file.read_at(&mut head[done..], done as u64) {
                        Ok(0) => break,
                        Ok(n) => done += n,
                        Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                        Err(cause) => return Err(LoadError::Io { path: self.name.clone(), cause }),
                    }
                }
                head.truncate(done);
                Ok(head)
            }
            Input::Bytes(b) => Ok(b[..b.len().min(256)].to_vec()),
        }
    }

    /// The whole input read into memory, refused when over `cap` bytes
    /// (checked against the reported size first, then while reading).
    pub fn read_all(self, cap: u64, what: &str) -> Result<Vec<u8>, LoadError> {
        let Opened { name, input } = self;
        let too_large = |size: String| LoadError::Format {
            path: name.clone(),
            message: format!("{size} bytes is too large for {what} (limit {cap})"),
        };
        match input {
            Input::File { len, .. } if len > cap => Err(too_large(len.to_string())),
            Input::File { file, .. } => read_capped(file, cap)
                .map_err(|cause| LoadError::Io { path: name.clone(), cause })?
                .ok_or_else(|| too_large(format!("more than {cap}"))),
            Input::Bytes(b) if b.len() as u64 > cap => Err(too_large(b.len().to_string())),
            Input::Bytes(b) => Ok(b),
        }
    }

    /// The input's bytes: a regular file is memory-mapped read-only (its pages
    /// are read only where they are touched), standard input is what was read.
    pub fn data(self) -> Result<Data, LoadError> {
        match self.input {
            Input::File { len: 0, .. } => Ok(Data::Owned(Vec::new())),
            Input::File { file, .. } => {
                // SAFETY: the map is read-only and lives only while the model is
                // decoded. A process that truncates the file meanwhile could make a
                // read fault; that is the accepted cost of never reading (or
                // copying) the weights (docs/security.md, "Known limits").
                let map = unsafe { memmap2::Mmap::map(&file) }.map_err(|cause| LoadError::Io { path: self.name.clone(), cause })?;
                Ok(Data::Mapped(map))
            }
            Input::Bytes(b) => Ok(Data::Owned(b)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_directory_and_a_fifo_are_refused_without_blocking() {
        let dir = tempfile::tempdir().unwrap();
        let e = open_regular(dir.path()).err().unwrap();
        assert!(e.to_string().contains("is a directory"), "{e}");
        let fifo = dir.path().join("p");
        let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        // SAFETY: mkfifo reads a NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        let e = open_regular(&fifo).err().unwrap();
        assert!(e.to_string().contains("FIFO"), "{e}");
    }

    #[test]
    fn reads_are_capped_while_reading() {
        assert_eq!(read_capped(&b"abcd"[..], 4).unwrap(), Some(b"abcd".to_vec()));
        assert_eq!(read_capped(&b"abcde"[..], 4).unwrap(), None);
        // An endless reader stops one byte past the cap.
        assert_eq!(read_capped(std::io::repeat(b'x'), 10).unwrap(), None);
    }

    #[test]
    fn stdin_spellings() {
        for s in ["-", "/dev/stdin", "/dev/fd/0", "/proc/self/fd/0"] {
            assert!(is_stdin(Path::new(s)), "{s}");
        }
        assert!(!is_stdin(Path::new("./-")));
    }
}
