//! `nnmem fit`, `sweep` and `explain` through the binary: every `input` they
//! print reproduces its figure with `nnmem inspect` and the same settings.

use std::path::PathBuf;

use assert_cmd::Command;
use serde_json::Value;

fn fixture(name: &str) -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures").join(name).display().to_string()
}

fn nnmem() -> Command {
    Command::cargo_bin("nnmem").expect("the nnmem binary is built")
}

fn json(args: &[&str]) -> Value {
    let out = nnmem().args(args).arg("--json").arg("-q").output().expect("runs");
    assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("JSON")
}

/// The largest scenario peak `inspect` prints for this input and these settings.
fn inspect_peak(model: &str, input: &str, settings: &[&str]) -> u64 {
    let mut args = vec!["inspect", model, "--input", input];
    args.extend_from_slice(settings);
    let r = json(&args);
    r["scenarios"].as_object().unwrap().values().map(|s| s["peak_bytes"].as_u64().unwrap()).max().unwrap()
}

fn check_fit(model: &str, extra_model: &[&str], budget: &str, settings: &[&str]) {
    let mut args = vec!["fit", model, "--budget", budget];
    args.extend_from_slice(extra_model);
    args.extend_from_slice(settings);
    let r = json(&args);
    let budget = r["budget_bytes"].as_u64().unwrap();
    let reserve = r["reserve_bytes"].as_u64().unwrap();
    let fits = &r["fits"];
    let next = &r["next"];
    assert!(fits.is_object(), "{model} {budget}: nothing fits: {r}");
    let fit_peak = fits["peak_bytes"].as_u64().unwrap();
    let next_peak = next["peak_bytes"].as_u64().unwrap();
    assert!(fit_peak + reserve <= budget, "{r}");
    assert!(next_peak + reserve > budget, "{r}");
    assert_eq!(next["size"].as_u64().unwrap(), fits["size"].as_u64().unwrap() + 1, "{r}");
    // The boundary is exact: inspect at each input prints the same peaks.
    assert_eq!(inspect_peak(model, fits["input"].as_str().unwrap(), settings), fit_peak, "{r}");
    assert_eq!(inspect_peak(model, next["input"].as_str().unwrap(), settings), next_peak, "{r}");
    assert!(r["probes"].as_u64().unwrap() < 40, "search, not a scan: {r}");
}

#[test]
fn fit_neural_style_vgg19_boundary_is_exact() {
    let m = fixture("caffe/vgg19_neural_style_v2.prototxt");
    check_fit(&m, &[], "8GiB", &["--scenario", "style-transfer", "--optimizer", "lbfgs:100", "--profile", "torch-nn"]);
    check_fit(&m, &["--reserve", "1GiB"], "8GiB", &["--scenario", "style-transfer", "--optimizer", "adam", "--profile", "cudnn"]);
    check_fit(&m, &[], "3GB", &["--scenario", "style-transfer", "--optimizer", "lbfgs:5"]);
}

#[test]
fn fit_other_models_budgets_and_axes() {
    let seed = fixture("caffe/seed_cnn.prototxt");
    check_fit(&seed, &["--vary", "batch"], "1GiB", &["--scenario", "training"]);
    check_fit(&seed, &["--aspect", "4:3"], "256MiB", &["--scenario", "inference"]);
    check_fit(&seed, &["--vary", "batch"], "2GiB", &["--scenario", "training", "--profile", "tiny-dnn", "--threads", "4"]);
    let resnet = fixture("caffe/small_resnet.prototxt");
    check_fit(&resnet, &[], "512MiB", &["--scenario", "all", "--profile", "caffe"]);
}

#[test]
fn fit_reports_null_when_nothing_fits() {
    let seed = fixture("caffe/seed_cnn.prototxt");
    let r = json(&["fit", &seed, "--budget", "1MiB", "--vary", "batch"]);
    assert!(r["fits"].is_null(), "{r}");
    assert!(r["next"]["peak_bytes"].as_u64().unwrap() > 1 << 20);
}

#[test]
fn sweep_rows_reproduce_with_inspect() {
    let m = fixture("caffe/vgg19_neural_style_v2.prototxt");
    let settings = ["--scenario", "style-transfer", "--profile", "torch-nn"];
    let mut args = vec!["sweep", m.as_str(), "--sizes", "64,128,256"];
    args.extend_from_slice(&settings);
    let r = json(&args);
    let rows = r["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 3);
    let mut last = 0;
    for row in rows {
        let peak = row["scenarios"]["style-transfer"]["peak_bytes"].as_u64().unwrap();
        assert!(peak > last);
        last = peak;
        assert_eq!(inspect_peak(&m, row["input"].as_str().unwrap(), &settings), peak);
    }
    let table = nnmem().args(["sweep", m.as_str(), "--batches", "1,2"]).output().unwrap();
    assert!(table.status.success());
    let text = String::from_utf8_lossy(&table.stdout);
    assert!(text.contains("data=2x3x224x224") && text.contains("training"), "{text}");
}

#[test]
fn explain_seed_tiny_dnn_f64_ends_above_a_gigabyte_and_adds_up() {
    let seed = fixture("caffe/seed_cnn.prototxt");
    let settings = ["--profile", "tiny-dnn", "--threads", "8", "--dtype", "f64"];
    let mut args = vec!["explain", seed.as_str()];
    args.extend_from_slice(&settings);
    let r = json(&args);
    let peak = r["peak_bytes"].as_u64().unwrap();
    assert!(peak > 1 << 30, "{r}");
    let steps = r["steps"].as_array().unwrap();
    let sum: i64 = steps.iter().map(|s| s["bytes"].as_i64().unwrap()).sum();
    assert_eq!(sum as u64, peak);
    assert_eq!(steps.last().unwrap()["total_bytes"].as_u64().unwrap(), peak);
    // The same peak as inspect's training scenario.
    let mut args = vec!["inspect", seed.as_str(), "--scenario", "training"];
    args.extend_from_slice(&settings);
    assert_eq!(json(&args)["scenarios"]["training"]["peak_bytes"].as_u64().unwrap(), peak);
    let text = nnmem().args(["explain", seed.as_str()]).args(settings).output().unwrap();
    assert!(String::from_utf8_lossy(&text.stdout).contains("per-thread copies (×8 workers)"));
}

#[test]
fn style_transfer_counts_only_layers_up_to_the_deepest_loss() {
    let m = fixture("caffe/vgg19_neural_style_v2.prototxt");
    let small = json(&["inspect", &m, "--scenario", "style-transfer", "--input", "data=1x3x224x224"]);
    let big = json(&["inspect", &m, "--scenario", "style-transfer", "--input", "data=1x3x448x448"]);
    let w = |r: &Value| r["scenarios"]["style-transfer"]["peak_breakdown"]["weights"].as_u64().unwrap();
    // conv1_1..conv5_1 only: 12,944,960 parameters, whatever the input size (fc6 grows with it).
    assert_eq!(w(&small), 12_944_960 * 4);
    assert_eq!(w(&big), w(&small));
    let out = nnmem().args(["inspect", &m, "--scenario", "style-transfer", "--style-layers", "nope"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("nope"));
}
