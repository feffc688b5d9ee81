//! A figure nnmem cannot complete never looks complete: free symbols and
//! unsized inputs are named with the flags that bind them, incomplete peaks
//! are lower bounds everywhere (JSON, table, Markdown, gates, audit, diff),
//! and style transfer audits one image, whatever batch the deploy file states.

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use serde_json::Value;

fn fixture(rel: &str) -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures").join(rel).display().to_string()
}

fn nnmem() -> Command {
    Command::cargo_bin("nnmem").expect("the nnmem binary is built")
}

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

fn run(args: &[&str]) -> Run {
    let out = nnmem().args(args).output().expect("runs");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn json(args: &[&str]) -> Value {
    let r = run(args);
    assert_eq!(r.code, 0, "{args:?}: {}", r.stderr);
    serde_json::from_str(&r.stdout).expect("JSON")
}

#[test]
fn free_symbols_make_every_scenario_incomplete_in_json() {
    let r = json(&["inspect", &fixture("onnx/dynamic.onnx"), "--json", "-q"]);
    for name in ["inference", "training"] {
        let sc = &r["scenarios"][name];
        assert_eq!(sc["complete"], false, "{name}");
        assert!(sc["unknown_tensors"].as_u64().unwrap() > 0);
        let symbols: Vec<&str> = sc["free_symbols"].as_array().unwrap().iter().map(|s| s["name"].as_str().unwrap()).collect();
        assert_eq!(symbols, ["batch", "height", "width"]);
        let batch = &sc["free_symbols"][0];
        assert_eq!(batch["uses"][0]["input"], "input");
        assert_eq!(batch["uses"][0]["axis"], 0);
        assert_eq!(batch["named_in_file"], true);
    }
    // Bound, the same model is complete.
    let r = json(&["inspect", &fixture("onnx/dynamic.onnx"), "--json", "-q", "--input", "2x3x32x32"]);
    assert_eq!(r["scenarios"]["training"]["complete"], true);
    assert_eq!(r["scenarios"]["training"]["unknown_tensors"], 0);
    assert_eq!(r["scenarios"]["training"]["free_symbols"].as_array().unwrap().len(), 0);
    let r = json(&["inspect", &fixture("onnx/dynamic.onnx"), "--json", "-q", "--dim", "batch=2", "--dim", "height=32", "--dim", "width=32"]);
    assert_eq!(r["scenarios"]["training"]["complete"], true);
}

#[test]
fn the_table_leads_with_a_lower_bound_and_the_flags_that_bind_it() {
    let model = fixture("onnx/dynamic.onnx");
    let r = run(&["inspect", &model]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    // A long command wraps with ` \` continuations (how long depends on where the
    // checkout is): read each command as one logical line.
    let mut lines: Vec<String> = Vec::new();
    let mut continued = false;
    for l in r.stdout.lines() {
        match lines.last_mut() {
            Some(last) if continued => last.push_str(l.trim_start()),
            _ => lines.push(l.to_string()),
        }
        continued = l.ends_with(" \\");
        if continued {
            let last = lines.last_mut().unwrap();
            last.truncate(last.len() - 1);
        }
    }
    let table_at = lines.iter().position(|l| l.starts_with("layer ")).expect("a table header");
    let peak_at = lines.iter().position(|l| l.starts_with("training peak: ≥ ")).expect("a lower bound");
    let bind_at = lines
        .iter()
        .position(|l| l.contains(&format!("nnmem inspect {model} --dim batch=N --dim height=N --dim width=N")))
        .expect("the command that completes it");
    assert!(peak_at < table_at && bind_at < table_at, "the summary comes first:\n{}", r.stdout);
    assert!(lines[peak_at].contains("(incomplete)"), "{}", lines[peak_at]);
}

#[test]
fn markdown_summary_is_a_list() {
    let r = run(&["inspect", &fixture("onnx/dynamic.onnx"), "--format", "markdown"]);
    assert_eq!(r.code, 0);
    let peak = r.stdout.lines().find(|l| l.contains("training peak")).unwrap();
    assert!(peak.starts_with("- training peak: ≥ "), "{peak}");
    let sub = r.stdout.lines().find(|l| l.contains("at the peak")).unwrap();
    assert!(sub.starts_with("  - at the peak"), "{sub}");
}

#[test]
fn a_gate_on_an_incomplete_figure_exits_2_and_says_how_to_bind() {
    let model = fixture("onnx/dynamic.onnx");
    let r = run(&["inspect", &model, "--assert", "training.peak < 1GiB"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("cannot check 'training.peak < 1GiB'"), "{}", r.stderr);
    assert!(r.stderr.contains("--dim batch=N --dim height=N --dim width=N"), "{}", r.stderr);
    let r = run(&["inspect", &model, "--input", "1x3x224x224", "--assert", "training.peak < 1GiB"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    // Parameters are complete even when shapes are not.
    let r = run(&["inspect", &model, "--assert", "params < 1M"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
}

#[test]
fn unsized_weights_are_unknown_never_zero() {
    // A data layer whose shape lives in a database: nothing can be sized.
    let dir = tempfile::tempdir().unwrap();
    let net = dir.path().join("db.prototxt");
    std::fs::write(
        &net,
        "name: 'db'\nlayer { name: 'data' type: 'Data' top: 'data' top: 'label' data_param { source: 'x' batch_size: 4 } }\n\
         layer { name: 'conv' type: 'Convolution' bottom: 'data' top: 'conv' convolution_param { num_output: 8 kernel_size: 3 } }\n\
         layer { name: 'fc' type: 'InnerProduct' bottom: 'conv' top: 'fc' inner_product_param { num_output: 10 } }\n",
    )
    .unwrap();
    let model = net.display().to_string();
    let r = json(&["inspect", &model, "--json", "-q"]);
    assert_eq!(r["totals"]["params_complete"], false);
    assert_eq!(r["totals"]["unsized_weight_nodes"], serde_json::json!(["conv", "fc"]));
    let conv = r["nodes"].as_array().unwrap().iter().find(|n| n["name"] == "conv").unwrap();
    assert!(conv["params"].is_null(), "{conv}");
    let table = run(&["inspect", &model]);
    assert!(table.stdout.contains("params: unknown (incomplete: 2 layer(s)"), "{}", table.stdout);
    assert_eq!(run(&["inspect", &model, "--assert", "params < 1M"]).code, 2);
    let audit = run(&["audit", dir.path().to_str().unwrap()]);
    let row = audit.stdout.lines().find(|l| l.starts_with("db.prototxt")).unwrap();
    assert!(row.contains("unknown") && !row.contains(" 0 "), "{row}");
    // Sized through --input, the same layers are counted.
    let r = json(&["inspect", &model, "--json", "-q", "--input", "data=4x3x8x8"]);
    assert_eq!(r["totals"]["params_complete"], true);
    assert_eq!(r["totals"]["params"], 8 * 3 * 3 * 3 + 8 + 10 * 8 * 6 * 6 + 10);
}

/// The fixture with its input batch set to `batch`, in a temporary folder.
fn vgg_with_batch(dir: &Path, batch: u64) -> String {
    let text = std::fs::read_to_string(fixture("caffe/vgg19_neural_style_v2.prototxt")).unwrap();
    let text = text.replacen("input_shape { dim: 1 dim: 3", &format!("input_shape {{ dim: {batch} dim: 3"), 1);
    let path = dir.join("vgg19_deploy.prototxt");
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

#[test]
fn style_transfer_audits_one_image_whatever_the_deploy_batch() {
    let dir = tempfile::tempdir().unwrap();
    let deploy = vgg_with_batch(dir.path(), 10);
    let style = ["--scenario", "style-transfer", "--input", "data=1x3x256x256"];
    let one = json(&[&["inspect", &fixture("caffe/vgg19_neural_style_v2.prototxt"), "--json", "-q"][..], &style[..]].concat());
    // Without --input the deploy file's batch 10 is replaced by 1, with a note.
    let r = run(&["inspect", &deploy, "--json", "--scenario", "style-transfer"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stderr.contains("note: style transfer optimises one image: input \"data\" has batch 1 (the file says 10)"), "{}", r.stderr);
    let ten: Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(ten["inputs"][0]["shape"], serde_json::json!([1, 3, 224, 224]));
    assert_eq!(ten["notes"].as_array().unwrap().len(), 1);
    let at224 = json(&["inspect", &fixture("caffe/vgg19_neural_style_v2.prototxt"), "--json", "-q", "--scenario", "style-transfer"]);
    assert_eq!(ten["scenarios"]["style-transfer"]["peak_bytes"], at224["scenarios"]["style-transfer"]["peak_bytes"]);
    // --batch says otherwise: it is used, and no note.
    let r = json(&["inspect", &deploy, "--json", "-q", "--scenario", "style-transfer", "--batch", "2"]);
    assert_eq!(r["inputs"][0]["shape"][0], 2);
    assert_eq!(r["notes"].as_array().unwrap().len(), 0);
    // The same image size gives the same figures as the batch-1 fixture.
    let ten = json(&[&["inspect", &deploy, "--json", "-q"][..], &style[..]].concat());
    assert_eq!(ten["scenarios"], one["scenarios"]);
    // The layers after the deepest loss are marked as not run.
    let fc6 = ten["nodes"].as_array().unwrap().iter().find(|n| n["name"] == "fc6").unwrap();
    assert_eq!(fc6["style-transfer"]["runs"], false);
    let conv1 = ten["nodes"].as_array().unwrap().iter().find(|n| n["name"] == "conv1_1").unwrap();
    assert_eq!(conv1["style-transfer"]["runs"], true);
    let table = run(&[&["inspect", &deploy][..], &style[..]].concat());
    let fc6_row = table.stdout.lines().find(|l| l.starts_with("fc6 ")).unwrap();
    assert!(fc6_row.ends_with("not run"), "{fc6_row}");
    // The default optimizer of style transfer is L-BFGS with PyTorch's history.
    assert_eq!(ten["scenarios"]["style-transfer"]["settings"]["optimizer"], "lbfgs:100");
}

#[test]
fn diff_compares_style_transfer_and_gates_on_deltas() {
    let m = fixture("caffe/vgg19_neural_style_v2.prototxt");
    let a = format!("{m} --scenario style-transfer --input data=1x3x128x128");
    let b = format!("{m} --scenario style-transfer --input data=1x3x128x128 --optimizer adam");
    let r = run(&["diff", &a, &b, "--json"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let v: Value = serde_json::from_str(&r.stdout).unwrap();
    let fig = v["figures"].as_array().unwrap().iter().find(|f| f["name"] == "style-transfer.optimizer_state").unwrap().clone();
    let (x, y) = (fig["a"].as_u64().unwrap(), fig["b"].as_u64().unwrap());
    assert_eq!(x, 205 * 3 * 128 * 128 * 4, "L-BFGS(100): 2H+5 image-sized vectors");
    assert_eq!(y, 2 * 3 * 128 * 128 * 4, "Adam: two moments");
    assert_eq!(v["layer_scenario"], "style-transfer");
    // Adam needs less: the peak falls.
    assert_eq!(run(&["diff", &a, &b, "--assert", "style-transfer.peak.delta < 0%"]).code, 0);
    let r = run(&["diff", &a, &b, "--assert", "style-transfer.peak.delta >= 0"]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(r.stderr.contains("assertion failed: style-transfer.peak.delta >= 0"), "{}", r.stderr);
    // A side with free symbols cannot be gated.
    let d = fixture("onnx/dynamic.onnx");
    let r = run(&["diff", &d, &format!("{d} --input 1x3x64x64"), "--assert", "training.peak.delta < 5%"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("side A"), "{}", r.stderr);
}

#[test]
fn audit_takes_inputs_and_gates() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(fixture("caffe/seed_cnn.prototxt"), dir.path().join("seed.prototxt")).unwrap();
    std::fs::copy(fixture("onnx/dynamic.onnx"), dir.path().join("dynamic.onnx")).unwrap();
    let d = dir.path().to_str().unwrap();
    // Unbound, the ONNX model is incomplete: a gate cannot be checked there.
    let r = run(&["audit", d, "--json", "--assert", "training.peak < 1GiB"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    let lines: Vec<Value> = r.stdout.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let dynamic = lines.iter().find(|l| l["model"] == "dynamic.onnx").unwrap();
    assert_eq!(dynamic["scenarios"]["training"]["complete"], false);
    assert!(dynamic["gate_failures"][0].as_str().unwrap().contains("cannot check"), "{dynamic}");
    assert!(dynamic["warnings"].as_array().unwrap().iter().all(|w| w.is_string()));
    // Bound with --dim, every model is complete and the gate holds.
    let bind = ["--dim", "batch=1", "--dim", "height=64", "--dim", "width=64"];
    let r = run(&[&["audit", d, "--assert", "training.peak < 1GiB"][..], &bind[..]].concat());
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    // A gate that breaks on every model exits 1 and names each.
    let r = run(&[&["audit", d, "--assert", "training.peak < 1KiB"][..], &bind[..]].concat());
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(r.stderr.contains("seed.prototxt: assertion failed") && r.stderr.contains("dynamic.onnx: assertion failed"), "{}", r.stderr);
    // An unnamed --input reaches every one-input model.
    let r = run(&["audit", d, "--input", "1x3x64x64", "--json"]);
    let lines: Vec<Value> = r.stdout.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert!(lines.iter().filter(|l| l["kind"] == "audit-model").all(|l| l["scenarios"]["training"]["complete"] == true), "{}", r.stdout);
}

#[test]
fn fit_and_sweep_vary_a_free_sequence_length() {
    let lm = fixture("onnx/tiny_lm.onnx");
    let r = json(&["fit", &lm, "--budget", "2MiB", "--vary", "seq", "--dim", "batch=1", "--json", "-q"]);
    assert_eq!(r["vary"], "seq");
    let (fits, next) = (&r["fits"], &r["next"]);
    assert_eq!(fits["flags"][0], "--dim");
    let size = fits["size"].as_u64().unwrap();
    assert!(size > 1, "{r}");
    assert_eq!(next["size"].as_u64().unwrap(), size + 1);
    // inspect with the printed flags gives the same peaks.
    let peak = |flags: &Value| {
        let f: Vec<&str> = flags.as_array().unwrap().iter().map(|x| x.as_str().unwrap()).collect();
        let v = json(&[&["inspect", &lm, "--json", "-q", "--dim", "batch=1"][..], &f[..]].concat());
        v["scenarios"].as_object().unwrap().values().map(|s| s["peak_bytes"].as_u64().unwrap()).max().unwrap()
    };
    assert_eq!(peak(&fits["flags"]), fits["peak_bytes"].as_u64().unwrap());
    assert!(fits["peak_bytes"].as_u64().unwrap() <= 2 << 20 && next["peak_bytes"].as_u64().unwrap() > 2 << 20, "{r}");
    // Without batch bound, every probe is incomplete: fit refuses to guess.
    let r = run(&["fit", &lm, "--budget", "2MiB", "--vary", "seq"]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("incomplete") && r.stderr.contains("--dim batch=N"), "{}", r.stderr);
    // A name that is not a free symbol is refused with the ones there are.
    let r = run(&["fit", &lm, "--budget", "2MiB", "--vary", "tokens"]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("free symbols: batch, seq"), "{}", r.stderr);
    // sweep over the same symbol: the attention scores grow with seq².
    let s = json(&["sweep", &lm, "--dim", "batch=1", "--dim", "seq=64,128,256", "--json", "-q"]);
    let peaks: Vec<u64> = s["rows"].as_array().unwrap().iter().map(|r| r["scenarios"]["inference"]["peak_bytes"].as_u64().unwrap()).collect();
    assert!(peaks[0] < peaks[1] && peaks[1] < peaks[2], "{peaks:?}");
    assert_eq!(s["rows"][2]["flags"], serde_json::json!(["--dim", "seq=256"]));
}

#[test]
fn resolution_of_a_symbolic_input_needs_no_starting_input() {
    let d = fixture("onnx/dynamic.onnx");
    let r = json(&["sweep", &d, "--sizes", "32,64", "--batch", "1", "--json", "-q"]);
    assert_eq!(r["rows"][1]["input"], "input=1x3x64x64");
    let r = run(&["sweep", &d, "--sizes", "32,64"]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("--dim batch=N or --batch N"), "{}", r.stderr);
}
