//! Output formats, budget gates, audit and diff through the real binary.

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use serde_json::Value;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures").join(name)
}

fn nnmem() -> Command {
    Command::cargo_bin("nnmem").unwrap()
}

fn seed_report() -> Value {
    let out = nnmem().arg("inspect").arg(fixture("caffe/seed_cnn.prototxt")).arg("--json").output().unwrap();
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn gates_pass_fail_and_reject_bad_syntax() {
    let r = seed_report();
    let peak = r["scenarios"]["training"]["peak_bytes"].as_u64().unwrap();
    let model = fixture("caffe/seed_cnn.prototxt");
    // Just above and just below the real peak, in bytes.
    let pass = nnmem().arg("inspect").arg(&model).args(["--assert", &format!("training.peak <= {peak}B"), "--assert", "params < 1M"]).output().unwrap();
    assert_eq!(pass.status.code(), Some(0), "{}", String::from_utf8_lossy(&pass.stderr));
    let fail = nnmem().arg("inspect").arg(&model).args(["--json", "--assert", &format!("training.peak < {peak}")]).output().unwrap();
    assert_eq!(fail.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&fail.stderr);
    assert_eq!(stderr.lines().filter(|l| l.contains("assertion failed")).count(), 1, "{stderr}");
    assert!(stderr.contains(&format!("training.peak is")), "{stderr}");
    // The report is still written before the verdict.
    assert!(serde_json::from_slice::<Value>(&fail.stdout).is_ok());
    let bad = nnmem().arg("inspect").arg(&model).args(["--assert", "training.peak << 1GB"]).output().unwrap();
    assert_eq!(bad.status.code(), Some(2));
    let needs = nnmem().arg("inspect").arg(&model).args(["--scenario", "inference", "--assert", "training.peak < 1GB"]).output().unwrap();
    assert_eq!(needs.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&needs.stderr).contains("needs the training scenario"));
    // Decimal and binary units differ: 23,840,640 B is 22.7 MiB but 23.8 MB.
    let gate = |g: &str| nnmem().arg("inspect").arg(&model).args(["-q", "--assert", g]).output().unwrap().status.code();
    assert_eq!(gate(&format!("training.peak < {}MiB", peak / (1 << 20) + 1)), Some(0));
    assert_eq!(gate(&format!("training.peak < {}MB", peak / 1_000_000)), Some(1));
}

#[test]
fn csv_has_exact_integers_per_node() {
    let out = nnmem().arg("inspect").arg(fixture("caffe/seed_cnn.prototxt")).args(["--format", "csv"]).output().unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    assert_eq!(&header[..3], &["layer", "op", "concept"]);
    let rows: Vec<&str> = lines.collect();
    assert_eq!(rows.len(), 18);
    // conv1: 1·6·512·512·4 bytes of output.
    assert!(rows[0].starts_with("conv1,Convolution,Conv,\"[1,6,512,512]\",168,0,6291456,false,"), "{}", rows[0]);
}

#[test]
fn markdown_and_html_are_self_contained() {
    let md = nnmem().arg("inspect").arg(fixture("caffe/small_resnet.prototxt")).args(["--format", "markdown"]).output().unwrap();
    let md = String::from_utf8(md.stdout).unwrap();
    assert!(md.contains("| layer | type | output shape |"), "{md}");
    assert!(md.contains("| --- | --- | --- | ---: |"));
    let html = nnmem().arg("inspect").arg(fixture("caffe/small_resnet.prototxt")).args(["--format", "html"]).output().unwrap();
    let html = String::from_utf8(html.stdout).unwrap();
    assert!(html.starts_with("<!DOCTYPE html>"));
    assert!(html.contains("id=\"peak-label-training\""));
    assert!(!html.contains("http://") && !html.contains("https://") && !html.contains("src="), "nothing is fetched");
}

#[test]
fn colour_only_when_asked_or_on_a_terminal() {
    let model = fixture("caffe/seed_cnn.prototxt");
    let piped = nnmem().arg("inspect").arg(&model).output().unwrap();
    assert!(!String::from_utf8_lossy(&piped.stdout).contains('\x1b'));
    let forced = nnmem().arg("inspect").arg(&model).args(["--color", "always"]).output().unwrap();
    assert!(String::from_utf8_lossy(&forced.stdout).contains("\x1b[1m"));
}

#[test]
fn audit_reports_every_model_and_survives_a_bad_one() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(fixture("caffe/seed_cnn.prototxt"), dir.path().join("seed.prototxt")).unwrap();
    std::fs::copy(fixture("onnx/conv_chain.onnx"), dir.path().join("chain.onnx")).unwrap();
    std::fs::create_dir(dir.path().join("sub")).unwrap();
    std::fs::write(dir.path().join("sub/broken.prototxt"), "layer { name: 'x'").unwrap();
    std::fs::write(dir.path().join("notes.txt"), "not a model").unwrap();
    let out = nnmem().arg("audit").arg(dir.path()).arg("--json").output().unwrap();
    assert_eq!(out.status.code(), Some(2), "a failed file makes the audit exit 2");
    let lines: Vec<Value> = String::from_utf8(out.stdout).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 4, "three models and a summary: {lines:?}");
    let by = |m: &str| lines.iter().find(|l| l["model"] == m).unwrap().clone();
    assert_eq!(by("seed.prototxt")["params"], 221_508);
    assert!(by("chain.onnx")["scenarios"]["training"]["peak_bytes"].as_u64().unwrap() > 0);
    assert_eq!(by("chain.onnx")["kind"], "audit-model");
    assert!(by("sub/broken.prototxt")["error"].as_str().unwrap().contains("broken.prototxt:1:"));
    assert_eq!(lines[3]["kind"], "audit-summary");
    assert_eq!(lines[3]["failed"], 1);
    let table = nnmem().arg("audit").arg(dir.path()).output().unwrap();
    let text = String::from_utf8(table.stdout).unwrap();
    assert!(text.contains("3 models, 1 failed"), "{text}");
}

#[test]
fn diff_of_one_model_under_two_sizes() {
    let m = fixture("caffe/seed_cnn.prototxt").display().to_string();
    let out = nnmem().args(["diff", &m, &format!("{m} --input data=1x3x256x256"), "--json"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let fig = |n: &str| v["figures"].as_array().unwrap().iter().find(|f| f["name"] == n).unwrap().clone();
    assert_eq!(fig("params")["a"], fig("params")["b"]);
    let (a, b) = (fig("training.peak")["a"].as_u64().unwrap(), fig("training.peak")["b"].as_u64().unwrap());
    assert!(b < a, "a quarter of the pixels needs less memory: {a} vs {b}");
    assert_eq!(v["layers"][0]["layer"], "conv1", "the full-resolution layer changes most");
}
