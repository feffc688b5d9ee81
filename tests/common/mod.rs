//! A runner for hostile cases: runs the real binary, measures that one child
//! (`wait4`: its own peak RSS, so tests running in parallel do not see each
//! other), kills it if it outlives 20 s (a hang fails the test instead of
//! stalling it), and checks the bounds every hostile case must meet.

#![allow(dead_code)] // each test file uses a part

use std::io::{Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub const TIME_LIMIT: Duration = Duration::from_secs(1);
pub const RSS_LIMIT_KB: i64 = 100 * 1024;

pub struct Outcome {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
    pub elapsed: Duration,
    /// Peak resident set of this one run.
    pub rss_kb: i64,
}

/// What the child reads on standard input.
pub enum Input {
    Null,
    Bytes(Vec<u8>),
    /// The standard output of this command (a pipe that never ends, say).
    Command(Vec<String>),
    /// This file, opened for reading (`< FILE`).
    File(std::path::PathBuf),
}

pub fn bin() -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_BIN_EXE_nnmem"))
}

/// Runs `nnmem ARGS…`. `keep_stdout: false` sends the report to /dev/null: a
/// big report held here would raise the RSS later children are measured with.
pub fn run(args: &[&std::ffi::OsStr], input: Input, keep_stdout: bool) -> Outcome {
    run_in(None, args, input, keep_stdout)
}

/// `run` with the child's working directory set to `cwd`.
pub fn run_in(cwd: Option<&Path>, args: &[&std::ffi::OsStr], input: Input, keep_stdout: bool) -> Outcome {
    let mut feeder = None;
    let stdin = match &input {
        Input::Null => Stdio::null(),
        Input::Bytes(_) => Stdio::piped(),
        Input::File(p) => Stdio::from(std::fs::File::open(p).unwrap()),
        Input::Command(argv) => {
            let mut c = Command::new(&argv[0])
                .args(&argv[1..])
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
                .spawn()
                .unwrap();
            let out = c.stdout.take().unwrap();
            feeder = Some(c);
            Stdio::from(out)
        }
    };
    let start = Instant::now();
    let mut command = Command::new(bin());
    if let Some(dir) = cwd {
        command.current_dir(dir);
    }
    let mut child = command
        .args(args)
        .stdin(stdin)
        .stdout(if keep_stdout { Stdio::piped() } else { Stdio::null() })
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id() as libc::pid_t;
    if let (Input::Bytes(b), Some(mut w)) = (input, child.stdin.take()) {
        std::thread::spawn(move || {
            let _ = w.write_all(&b);
        });
    }
    let mut out_pipe: Box<dyn Read + Send> = match child.stdout.take() {
        Some(p) => Box::new(p),
        None => Box::new(std::io::empty()),
    };
    let mut err_pipe = child.stderr.take().unwrap();
    let out_reader = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = out_pipe.read_to_end(&mut v);
        v
    });
    let err_reader = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = err_pipe.read_to_end(&mut v);
        v
    });
    let done = Arc::new(AtomicBool::new(false));
    let watchdog = {
        let done = done.clone();
        std::thread::spawn(move || {
            let deadline = Instant::now() + Duration::from_secs(20);
            while Instant::now() < deadline {
                if done.load(Ordering::SeqCst) {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            // SAFETY: signals our own child, which has not been reaped (done is false).
            unsafe { libc::kill(pid, libc::SIGKILL) };
        })
    };
    let mut status = 0;
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: wait4 reaps our own child and fills `status` and `usage`.
    let usage = unsafe {
        assert_eq!(libc::wait4(pid, &mut status, 0, usage.as_mut_ptr()), pid);
        usage.assume_init()
    };
    let elapsed = start.elapsed();
    done.store(true, Ordering::SeqCst);
    watchdog.join().unwrap();
    if let Some(mut f) = feeder {
        let _ = f.kill();
        let _ = f.wait();
    }
    let code = if libc::WIFEXITED(status) { libc::WEXITSTATUS(status) } else { -1 };
    Outcome {
        code,
        stdout: String::from_utf8_lossy(&out_reader.join().unwrap()).into_owned(),
        stderr: String::from_utf8_lossy(&err_reader.join().unwrap()).into_owned(),
        elapsed,
        rss_kb: usage.ru_maxrss,
    }
}

/// `nnmem inspect PATH EXTRA…`, standard input empty.
pub fn inspect(path: &Path, extra: &[&str]) -> Outcome {
    let mut args: Vec<&std::ffi::OsStr> = vec!["inspect".as_ref(), path.as_os_str()];
    args.extend(extra.iter().map(|s| std::ffi::OsStr::new(*s)));
    run(&args, Input::Null, true)
}

/// Exit 0 or 2, no panic, under 1 s and 100 MB; prints the measure (see it with --nocapture).
pub fn within_bounds(o: &Outcome, what: &str) {
    println!("bounds: {what}: exit {} in {:?}, {} KiB", o.code, o.elapsed, o.rss_kb);
    assert!(o.code == 0 || o.code == 2, "{what}: exit {} (killed or crashed): {}", o.code, o.stderr);
    assert!(!o.stderr.contains("panicked"), "{what}: {}", o.stderr);
    assert!(o.elapsed < TIME_LIMIT, "{what}: took {:?}", o.elapsed);
    assert!(o.rss_kb < RSS_LIMIT_KB, "{what}: rss {} KiB", o.rss_kb);
}

/// Exit 2 with one `nnmem: error:` line holding every `expected` piece, within bounds.
pub fn refused(o: &Outcome, what: &str, expected: &[&str]) {
    assert_eq!(o.code, 2, "{what}: expected exit 2: {}", o.stderr);
    assert!(o.stderr.starts_with("nnmem: error: "), "{what}: {}", o.stderr);
    for e in expected {
        assert!(o.stderr.contains(e), "{what}: stderr {:?} lacks {e:?}", o.stderr);
    }
    within_bounds(o, what);
}

/// Exit 0 with every `expected` piece on stderr, within bounds.
pub fn accepted(o: &Outcome, what: &str, expected: &[&str]) {
    assert_eq!(o.code, 0, "{what}: expected exit 0: {}", o.stderr);
    for e in expected {
        assert!(o.stderr.contains(e), "{what}: stderr {:?} lacks {e:?}", o.stderr);
    }
    within_bounds(o, what);
}

/// Makes a device node stand-in with mknod (root only); `None` (and a SKIPPED
/// line) otherwise. Never touches the machine's /dev.
pub fn char_device(path: &Path, major: u32, minor: u32, test: &str) -> Option<()> {
    let c = std::ffi::CString::new(path.as_os_str().to_str().unwrap()).unwrap();
    // SAFETY: mknod reads a NUL-terminated path.
    let rc = unsafe { libc::mknod(c.as_ptr(), libc::S_IFCHR | 0o666, libc::makedev(major, minor)) };
    if rc != 0 {
        eprintln!("SKIPPED {test}: mknod needs root ({})", std::io::Error::last_os_error());
        return None;
    }
    Some(())
}

pub fn fifo(path: &Path) {
    let c = std::ffi::CString::new(path.as_os_str().to_str().unwrap()).unwrap();
    // SAFETY: mkfifo reads a NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0, "mkfifo {}", path.display());
}
