//! The JSON report of every nnmem fixture validates against docs/report.schema.json,
//! and the schema rejects what it should. Needs a built nnmem (see `nnmem_binary`).

use std::path::{Path, PathBuf};
use std::process::Command;

use nnmem_schema_check::{nnmem_binary, repo, Validator};
use serde_json::Value;

fn report(model: &Path, extra: &[&str]) -> Value {
    let out = Command::new(nnmem_binary()).arg("inspect").arg(model).arg("--json").arg("-q").args(extra).output().expect("nnmem runs");
    assert!(out.status.success(), "{}: {}", model.display(), String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("stdout is JSON")
}

/// Fixtures that load (the hostile ONNX files are meant to fail).
fn fixtures() -> Vec<PathBuf> {
    let mut files = Vec::new();
    for dir in ["fixtures/caffe", "fixtures/caffe/forks", "fixtures/onnx"] {
        for entry in std::fs::read_dir(repo().join(dir)).expect("fixtures folder") {
            let path = entry.expect("a directory entry").path();
            let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            if (name.ends_with(".prototxt") || name.ends_with(".onnx")) && !name.starts_with("hostile") {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

#[test]
fn every_fixture_report_matches_the_schema() {
    let validator = Validator::new();
    let files = fixtures();
    assert!(files.len() >= 10, "fixtures found: {files:?}");
    for model in files {
        for extra in [&[][..], &["--scenario", "training", "--optimizer", "adam", "--dtype", "f16"][..]] {
            let errors = validator.errors(&report(&model, extra));
            assert!(errors.is_empty(), "{} {extra:?}: {errors:#?}", model.display());
        }
    }
}

#[test]
fn style_transfer_report_matches_the_schema() {
    let validator = Validator::new();
    let model = repo().join("fixtures/caffe/vgg19_neural_style_v2.prototxt");
    let r = report(&model, &["--scenario", "style-transfer", "--optimizer", "lbfgs:5", "--input", "data=1x3x128x128"]);
    let errors = validator.errors(&r);
    assert!(errors.is_empty(), "{errors:#?}");
}

#[test]
fn decode_report_matches_the_schema() {
    let validator = Validator::new();
    let model = repo().join("fixtures/measured/llama_decode.dynamo.onnx");
    for scenario in ["decode", "all"] {
        let r = report(&model, &["--scenario", scenario, "--dim", "batch=2", "--dim", "past=256"]);
        assert!(r["scenarios"]["decode"]["decode"]["peak_bytes_per_token"].as_u64().is_some(), "{scenario}: {r}");
        let errors = validator.errors(&r);
        assert!(errors.is_empty(), "{scenario}: {errors:#?}");
    }
    // Unbound: the cache is found, its size unknown.
    let r = report(&model, &["--scenario", "decode"]);
    assert!(r["scenarios"]["decode"]["decode"]["cache_bytes"].is_null());
    assert!(validator.errors(&r).is_empty());
    let model = model.to_str().unwrap();
    let fit = output(&["fit", model, "--scenario", "decode", "--vary", "past", "--dim", "batch=2", "--budget", "100MiB", "--json", "-q"]);
    let v: Value = serde_json::from_str(&fit).expect("JSON");
    assert_eq!(v["fits"]["scenario"], "decode");
    let errors = validator.errors(&v);
    assert!(errors.is_empty(), "fit: {errors:#?}");
}

/// Runs nnmem with `args` and returns its stdout (exit 0 expected).
fn output(args: &[&str]) -> String {
    let out = Command::new(nnmem_binary()).args(args).output().expect("nnmem runs");
    assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).expect("UTF-8")
}

#[test]
fn every_other_output_matches_the_schema() {
    let validator = Validator::new();
    let seed = repo().join("fixtures/caffe/seed_cnn.prototxt");
    let seed = seed.to_str().unwrap();
    let lm = repo().join("fixtures/onnx/tiny_lm.onnx");
    let lm = lm.to_str().unwrap();
    let small = format!("{seed} --input data=1x3x128x128");
    let outputs = [
        output(&["fit", seed, "--budget", "64MiB", "--json", "-q"]),
        output(&["fit", lm, "--budget", "2MiB", "--vary", "seq", "--dim", "batch=1", "--json", "-q"]),
        output(&["sweep", seed, "--sizes", "64,128", "--json", "-q"]),
        output(&["diff", seed, &small, "--json"]),
        output(&["explain", seed, "--json", "-q"]),
    ];
    let mut kinds = Vec::new();
    for text in &outputs {
        let v: Value = serde_json::from_str(text).expect("JSON");
        kinds.push(v["kind"].as_str().unwrap_or_default().to_string());
        let errors = validator.errors(&v);
        assert!(errors.is_empty(), "{}: {errors:#?}", v["kind"]);
    }
    // audit: JSON lines, every model and the summary.
    let audit = output(&["audit", repo().join("fixtures/caffe").to_str().unwrap(), "--json", "-q"]);
    for line in audit.lines() {
        let v: Value = serde_json::from_str(line).expect("a JSON line");
        kinds.push(v["kind"].as_str().unwrap_or_default().to_string());
        let errors = validator.errors(&v);
        assert!(errors.is_empty(), "{line}: {errors:#?}");
    }
    for k in ["fit", "sweep", "diff", "explain", "audit-model", "audit-summary"] {
        assert!(kinds.iter().any(|x| x == k), "no {k} output was checked: {kinds:?}");
    }
}

#[test]
fn the_schema_rejects_what_it_should() {
    let validator = Validator::new();
    let mut r = report(&repo().join("fixtures/caffe/seed_cnn.prototxt"), &[]);
    assert!(validator.errors(&r).is_empty());
    r["totals"]["params"] = Value::from(-1);
    assert!(!validator.errors(&r).is_empty(), "a negative count must fail");
    r["totals"]["params"] = Value::from(1);
    r["surprise"] = Value::from(true);
    assert!(!validator.errors(&r).is_empty(), "an undocumented field must fail");
}
