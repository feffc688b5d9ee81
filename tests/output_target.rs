//! `-o FILE` never replaces anything but a regular file, never writes over the
//! model or a file it names, keeps a file's permissions, and writes a FIFO,
//! the null device or standard output directly. Devices are stand-ins made
//! with mknod in a temporary folder (root only), never the machine's /dev.

#![cfg(unix)]

mod common;

use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::{run, Input, HANG_LIMIT};

fn fixture(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures").join(rel)
}

struct Outcome {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

/// Runs `inspect MODEL --json -o TARGET` through the shared runner, whose
/// hang guard kills it after 30 s (a hang is a failure, not a stuck test run;
/// not a performance limit).
fn report_to(model: &Path, target: &Path) -> Outcome {
    let o = run(&["inspect".as_ref(), model.as_os_str(), "--json".as_ref(), "-o".as_ref(), target.as_os_str()], Input::Null, true);
    assert!(!o.hung, "nnmem -o {} hung", target.display());
    Outcome { code: (o.code >= 0).then_some(o.code), stdout: o.stdout, stderr: o.stderr }
}

fn model_in(dir: &Path) -> PathBuf {
    let m = dir.join("net.prototxt");
    std::fs::copy(fixture("caffe/seed_cnn.prototxt"), &m).unwrap();
    m
}

fn mkfifo(path: &Path) {
    let c = std::ffi::CString::new(path.to_str().unwrap()).unwrap();
    // SAFETY: a NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
}

/// A character device node with these numbers, or `None` when not allowed (not root).
fn mknod_char(path: &Path, major: u32, minor: u32) -> Option<()> {
    let c = std::ffi::CString::new(path.to_str().unwrap()).unwrap();
    // SAFETY: a NUL-terminated path; the node lives in a temporary folder.
    let rc = unsafe { libc::mknod(c.as_ptr(), libc::S_IFCHR | 0o666, libc::makedev(major, minor)) };
    (rc == 0).then_some(())
}

#[test]
fn a_fifo_without_a_reader_is_refused_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let model = model_in(dir.path());
    let fifo = dir.path().join("out.fifo");
    mkfifo(&fifo);
    let o = report_to(&model, &fifo);
    assert_eq!(o.code, Some(2), "{}", o.stderr);
    assert!(o.stderr.contains("no process reading"), "{}", o.stderr);
    assert!(std::fs::symlink_metadata(&fifo).unwrap().file_type().is_fifo(), "the FIFO was replaced");
}

#[test]
fn a_fifo_with_a_reader_gets_the_report() {
    let dir = tempfile::tempdir().unwrap();
    let model = model_in(dir.path());
    let fifo = dir.path().join("out.fifo");
    mkfifo(&fifo);
    let reader_path = fifo.clone();
    // The reader opens first (blocking until nnmem opens the write end).
    let reader = std::thread::spawn(move || std::fs::read(&reader_path).unwrap());
    // Give the reader time to block in open(); nnmem's non-blocking open needs
    // it there. Retried until the hang guard's limit: a busy machine may be
    // slow to schedule the reader (a guard, not a performance limit).
    let start = Instant::now();
    let mut o = report_to(&model, &fifo);
    while o.code != Some(0) && start.elapsed() < HANG_LIMIT {
        std::thread::sleep(Duration::from_millis(100));
        o = report_to(&model, &fifo);
    }
    assert_eq!(o.code, Some(0), "{}", o.stderr);
    let got = reader.join().unwrap();
    let v: serde_json::Value = serde_json::from_slice(&got).unwrap();
    assert!(v["totals"]["params"].as_u64().unwrap() > 0);
    assert!(std::fs::symlink_metadata(&fifo).unwrap().file_type().is_fifo());
}

#[test]
fn devices_are_written_only_when_they_are_the_null_device() {
    let dir = tempfile::tempdir().unwrap();
    let model = model_in(dir.path());
    let null = dir.path().join("null");
    let full = dir.path().join("full");
    if mknod_char(&null, 1, 3).is_none() || mknod_char(&full, 1, 7).is_none() {
        eprintln!("SKIPPED devices_are_written_only_when_they_are_the_null_device: mknod needs root");
        return;
    }
    let o = report_to(&model, &null);
    assert_eq!(o.code, Some(0), "{}", o.stderr);
    assert!(std::fs::symlink_metadata(&null).unwrap().file_type().is_char_device(), "the null device was replaced");
    let o = report_to(&model, &full);
    assert_eq!(o.code, Some(2), "{}", o.stderr);
    assert!(o.stderr.contains("is a device"), "{}", o.stderr);
    let meta = std::fs::symlink_metadata(&full).unwrap();
    assert!(meta.file_type().is_char_device(), "the full device was replaced");
    // Through a symlink, the same rules.
    let link = dir.path().join("link-to-full");
    std::os::unix::fs::symlink(&full, &link).unwrap();
    assert_eq!(report_to(&model, &link).code, Some(2));
    assert!(std::fs::symlink_metadata(&link).unwrap().file_type().is_symlink());
}

#[test]
fn directories_sockets_and_dangling_links_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let model = model_in(dir.path());
    let sub = dir.path().join("sub");
    std::fs::create_dir(&sub).unwrap();
    let o = report_to(&model, &sub);
    assert_eq!(o.code, Some(2));
    assert!(o.stderr.contains("is a directory"), "{}", o.stderr);
    let sock_path = dir.path().join("s.sock");
    let _sock = std::os::unix::net::UnixListener::bind(&sock_path).unwrap();
    let o = report_to(&model, &sock_path);
    assert_eq!(o.code, Some(2));
    assert!(o.stderr.contains("is a socket"), "{}", o.stderr);
    let dangling = dir.path().join("dangling.json");
    std::os::unix::fs::symlink(dir.path().join("nowhere/x.json"), &dangling).unwrap();
    assert_eq!(report_to(&model, &dangling).code, Some(2));
    assert!(std::fs::symlink_metadata(&dangling).unwrap().file_type().is_symlink());
}

#[test]
fn standard_output_spellings_write_to_standard_output() {
    let dir = tempfile::tempdir().unwrap();
    let model = model_in(dir.path());
    let o = report_to(&model, Path::new("/dev/stdout"));
    assert_eq!(o.code, Some(0), "{}", o.stderr);
    let v: serde_json::Value = serde_json::from_str(&o.stdout).unwrap();
    assert!(v.is_object());
}

#[test]
fn a_symlink_to_a_regular_file_is_written_through() {
    let dir = tempfile::tempdir().unwrap();
    let model = model_in(dir.path());
    let real = dir.path().join("real.json");
    std::fs::write(&real, "old").unwrap();
    let link = dir.path().join("link.json");
    std::os::unix::fs::symlink(&real, &link).unwrap();
    assert_eq!(report_to(&model, &link).code, Some(0));
    assert!(std::fs::symlink_metadata(&link).unwrap().file_type().is_symlink(), "the link was replaced");
    assert!(std::fs::read_to_string(&real).unwrap().starts_with('{'));
}

#[test]
fn an_existing_file_keeps_its_permissions() {
    let dir = tempfile::tempdir().unwrap();
    let model = model_in(dir.path());
    let target = dir.path().join("private.json");
    std::fs::write(&target, "old").unwrap();
    std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o600)).unwrap();
    assert_eq!(report_to(&model, &target).code, Some(0));
    assert_eq!(std::fs::metadata(&target).unwrap().mode() & 0o777, 0o600);
    let group = dir.path().join("group.json");
    std::fs::write(&group, "old").unwrap();
    std::fs::set_permissions(&group, std::fs::Permissions::from_mode(0o640)).unwrap();
    assert_eq!(report_to(&model, &group).code, Some(0));
    assert_eq!(std::fs::metadata(&group).unwrap().mode() & 0o777, 0o640);
}

#[test]
fn a_long_legal_name_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let model = model_in(dir.path());
    let name = format!("{}.json", "r".repeat(244));
    let target = dir.path().join(&name);
    let o = report_to(&model, &target);
    assert_eq!(o.code, Some(0), "{}", o.stderr);
    assert!(std::fs::read_to_string(&target).unwrap().starts_with('{'));
    let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(names.len(), 2, "a temporary file was left: {names:?}");
}

#[test]
fn external_data_and_hard_links_of_the_model_are_inputs() {
    let dir = tempfile::tempdir().unwrap();
    for f in ["ext_present.onnx", "ext_present.onnx.data", "ext_absent.onnx"] {
        std::fs::copy(fixture(&format!("onnx/{f}")), dir.path().join(f)).unwrap();
    }
    let data = dir.path().join("ext_present.onnx.data");
    let before = std::fs::read(&data).unwrap();
    let o = report_to(&dir.path().join("ext_present.onnx"), &data);
    assert_eq!(o.code, Some(2), "{}", o.stderr);
    assert!(o.stderr.contains("refusing to write the report over the input"), "{}", o.stderr);
    assert_eq!(std::fs::read(&data).unwrap(), before, "the external data changed");
    // The data file of ext_absent.onnx is not shipped: its name is still refused.
    let absent_data = dir.path().join("ext_absent.onnx.data");
    let o = report_to(&dir.path().join("ext_absent.onnx"), &absent_data);
    assert_eq!(o.code, Some(2), "{}", o.stderr);
    assert!(!absent_data.exists(), "a report was written where the model's data belongs");
    // A hard link to the model is the model.
    let model = model_in(dir.path());
    let hard = dir.path().join("hard.json");
    std::fs::hard_link(&model, &hard).unwrap();
    let o = report_to(&model, &hard);
    assert_eq!(o.code, Some(2), "{}", o.stderr);
}
