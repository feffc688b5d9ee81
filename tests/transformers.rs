//! Transformer rules through the real binary, on the graph-only exports of
//! the measured models (fixtures/measured): the attention kernel, KV-cache
//! decoding, tied embeddings.

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use serde_json::Value;

fn measured(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/measured").join(name)
}

fn report(model: &str, args: &[&str]) -> Value {
    let out = Command::cargo_bin("nnmem").unwrap().arg("inspect").arg(measured(model)).args(["--json", "-q"]).args(args).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

/// The inference figures of the first node of this op type whose name contains `part`.
fn node_inference<'a>(r: &'a Value, op: &str, part: &str) -> &'a Value {
    r["nodes"].as_array().unwrap().iter().find(|n| n["op"] == op && n["name"].as_str().unwrap().contains(part)).map(|n| &n["inference"]).unwrap()
}

#[test]
fn attention_runs_fused_by_default_and_as_math_when_asked() {
    // BERT at 2×512, 4 heads: one score matrix is 2·4·512² f32 = 8 MiB.
    let fused = report("bert.train.onnx", &["--input", "input_ids=2x512"]);
    let inf = &fused["scenarios"]["inference"]["settings"]["attention"];
    assert_eq!((inf["kernel"].as_str(), inf["fused"].as_u64(), inf["math"].as_u64()), (Some("fused"), Some(4), Some(0)));
    // Training: the CPU kernel takes no dropout, so the calls run the math path.
    let tr = &fused["scenarios"]["training"]["settings"]["attention"];
    assert_eq!((tr["fused"].as_u64(), tr["math"].as_u64()), (Some(0), Some(4)));
    // Fused, the ·V product holds the log-sum-exp it drops (2·4·512 f32) and
    // one thread's CPU flash blocks (64·512 + 2·64 + 64·64 floats).
    let fused_out = node_inference(&fused, "MatMul", "layers.0/MatMul_1");
    assert_eq!(fused_out["workspace_bytes"], 16_384 + 147_968);
    let math = report("bert.train.onnx", &["--input", "input_ids=2x512", "--attention", "math"]);
    assert_eq!(math["scenarios"]["inference"]["settings"]["attention"]["kernel"], "math");
    assert_eq!(math["scenarios"]["inference"]["settings"]["attention"]["math"], 4);
    // Math: `_safe_softmax`'s one-byte test per score and flag per row; after
    // it the probabilities (8 MiB) live, while Q and K (1 MiB each) are gone,
    // copied by their scales — fused, the kernel still has them to read.
    let softmax = node_inference(&math, "Softmax", "layers.0");
    assert_eq!(softmax["workspace_bytes"], (8 << 20) / 4 + 2 * 4 * 512);
    let after = |r: &Value| node_inference(r, "Softmax", "layers.0")["live_bytes_after"].as_u64().unwrap();
    assert_eq!(after(&math), after(&fused) + (8 << 20) - (2 << 20));
    // The cudnn profile's kernels apply dropout: fused in training too.
    let cuda = report("bert.train.onnx", &["--input", "input_ids=2x512", "--profile", "cudnn", "--scenario", "training"]);
    assert_eq!(cuda["scenarios"]["training"]["settings"]["attention"]["fused"], 4);
}

#[test]
fn written_out_attention_is_counted_as_written() {
    // T5 writes its attention out (no scale before the product): as the ops say.
    let r = report("t5.train.onnx", &["--input", "input_ids=2x128", "--input", "decoder_input_ids=2x32", "--scenario", "inference"]);
    let a = &r["scenarios"]["inference"]["settings"]["attention"];
    assert_eq!((a["fused"].as_u64(), a["as_written"].as_u64()), (Some(0), Some(6)));
}

#[test]
fn dynamo_exports_give_sdpa_dropout_from_the_traced_call() {
    // dynamo writes no Dropout node inside SDPA; its dropout_p (0.1), read
    // from the node metadata, sends the CPU training step down the math path.
    let args = ["--input", "input_ids=2x128", "--scenario", "training"];
    let dynamo = report("bert.dynamo.train.onnx", &args);
    assert_eq!(dynamo["scenarios"]["training"]["settings"]["attention"]["math"], 4);
}

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/torch").join(name)
}

#[test]
fn grouped_kv_is_a_view_for_the_fused_kernel_and_a_copy_for_the_math_path() {
    // SDPA with enable_gqa (fixtures/torch/export.py): 4 query heads on 2 K/V
    // heads of 8, x [2,16,32]; dynamo expands K and V inside the call
    // (Unsqueeze, Expand, Reshape). The fused kernel reads the grouped K/V:
    // the expansion allocates nothing. The math path copies both to 4 heads
    // (4,096 B each) and the grouped projections (2,048 B each) die.
    let live = |kernel: &str, node: &str| {
        let out = Command::cargo_bin("nnmem")
            .unwrap()
            .arg("inspect")
            .arg(fixture("sdpa_gqa.dynamo.onnx"))
            .args(["--json", "-q", "--scenario", "inference", "--input", "x=2x16x32", "--attention", kernel])
            .output()
            .unwrap();
        let r: Value = serde_json::from_slice(&out.stdout).unwrap();
        let n = r["nodes"].as_array().unwrap().iter().find(|n| n["name"] == node).unwrap();
        n["inference"]["live_bytes_after"].as_u64().unwrap()
    };
    assert_eq!(live("fused", "node_Reshape_66"), live("fused", "node_Unsqueeze_57"));
    assert_eq!(live("math", "node_Reshape_66"), live("fused", "node_Reshape_66") + 2 * 4096 - 2 * 2048);
}

#[test]
fn float_constants_are_not_parameters() {
    // Every training export of the measured family counts the parameters
    // PyTorch reports: T5's relative-position bias (a table plus a causal mask)
    // stays learned, while dynamo's rotary frequencies (`unsqueeze_2`, 32
    // floats) and lifted scalars are constants.
    let data: Value = serde_json::from_str(
        &std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/measurements/cpu_transformer.json")).unwrap(),
    )
    .unwrap();
    let param_count = |model: &str| {
        data["cases"].as_object().unwrap().values().find(|c| c["model"] == model).unwrap()["param_count"].as_u64().unwrap()
    };
    for model in ["bert", "gpt2", "llama", "t5"] {
        let mut args = vec!["--scenario", "inference", "--input", "input_ids=2x128"];
        if model == "t5" {
            args.extend(["--input", "decoder_input_ids=2x32"]);
        }
        let r = report(&format!("{model}.train.onnx"), &args);
        assert_eq!(r["totals"]["params"].as_u64(), Some(param_count(model)), "{model}");
    }
    let r = report("llama.dynamo.train.onnx", &["--scenario", "inference", "--input", "input_ids=2x128"]);
    let t = r["tensors"].as_array().unwrap().iter().find(|t| t["name"] == "unsqueeze_2").unwrap();
    assert_eq!((t["kind"].as_str(), t["shape"].clone()), (Some("constant"), serde_json::json!([1, 32, 1])));
}
