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
    // (4,096 B each); the grouped projections stay, bound to the locals `k`
    // and `v` until forward returns (docs/memory-model.md, "Python locals").
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
    assert_eq!(live("math", "node_Reshape_66"), live("fused", "node_Reshape_66") + 2 * 4096);
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

#[test]
fn tied_embeddings_are_noted_and_counted_once_when_asked() {
    // The TorchScript exporter with constant folding writes BERT's tied MLM
    // head as a transposed copy of the 16,384 × 256 table.
    let args = ["--input", "input_ids=2x128", "--scenario", "training", "--optimizer", "adam"];
    let twice = report("bert.onnx", &args);
    let notes = twice["notes"].as_array().unwrap();
    assert!(notes.iter().any(|n| n.as_str().unwrap().contains("\"word.weight\" [16384, 256] and the weight \"onnx::MatMul_549\" [256, 16384]")), "{notes:?}");
    let mut tied_args = args.to_vec();
    tied_args.push("--tie-embeddings");
    let once = report("bert.onnx", &tied_args);
    let table = 16_384 * 256;
    assert_eq!(twice["totals"]["params"].as_u64().unwrap() - once["totals"]["params"].as_u64().unwrap(), table);
    // Adam's two moments of one table fewer, from the first step.
    let state = |r: &Value| r["scenarios"]["training"]["peak_breakdown"]["optimizer_state"].as_u64().unwrap();
    assert_eq!(state(&twice) - state(&once), 2 * 4 * table);
    // The training export already shares one tensor (Transpose of the table): nothing to note.
    let shared = report("bert.train.onnx", &args);
    let notes = shared["notes"].as_array().unwrap();
    assert!(!notes.iter().any(|n| n.as_str().unwrap().contains("--tie-embeddings")), "{notes:?}");
    assert_eq!(shared["totals"]["params"], report("bert.train.onnx", &tied_args)["totals"]["params"]);
}

#[test]
fn kv_cache_decoding_is_noted_per_token_and_fit_varies_the_past_length() {
    // Llama decode: 4 layers × (K, V) of batch 2 × 2 K/V heads × 64 f32 per
    // token of context = 8,192 B per token; 8,388,608 B at past 1,024.
    let args = ["--scenario", "inference", "--dim", "batch=2", "--dim", "past=1024"];
    for model in ["llama_decode.onnx", "llama_decode.dynamo.onnx"] {
        let r = report(model, &args);
        let notes = r["notes"].as_array().unwrap();
        assert!(
            notes.iter().any(|n| n.as_str().unwrap().contains("8,388,608 B at past length 1,024, 8,192 B more per generated token")),
            "{model}: {notes:?}"
        );
    }
    // Models without a cache get no such note.
    assert!(!report("llama.train.onnx", &["--input", "input_ids=2x128"])["notes"].to_string().contains("KV cache"));
    // The longest context that fits in a budget: fit varies the past length.
    // One token more grows at least the past inputs and the present outputs
    // (8,192 B each).
    let out = Command::cargo_bin("nnmem")
        .unwrap()
        .arg("fit")
        .arg(measured("llama_decode.onnx"))
        .args(["--json", "-q", "--scenario", "inference", "--dim", "batch=2", "--vary", "past", "--budget", "200MiB"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let r: Value = serde_json::from_slice(&out.stdout).unwrap();
    let (fits, next) = (r["fits"]["peak_bytes"].as_u64().unwrap(), r["next"]["peak_bytes"].as_u64().unwrap());
    assert_eq!(r["next"]["size"].as_u64().unwrap(), r["fits"]["size"].as_u64().unwrap() + 1);
    assert!(fits <= 200 << 20 && next > 200 << 20, "{r}");
    assert!(next - fits >= 2 * 8192, "{r}");
}

fn nnmem(args: &[&str]) -> std::process::Output {
    Command::cargo_bin("nnmem").unwrap().args(args).output().unwrap()
}

#[test]
fn decode_scenario_reports_the_step_the_cache_and_the_growth_per_token() {
    // Llama decode at batch 2, past 1,024: one step is inference's schedule;
    // the cache is 8 inputs of 2×2×1,024×64 f32; one token more adds 8,192 B
    // of cache, 8,192 B of present K/V and the expanded K and V of the layer
    // at the peak, 2 × (2 batch × 6 heads × 64 × 4 B) = 6,144 B: 22,528 B.
    let model = measured("llama_decode.onnx");
    let model = model.to_str().unwrap();
    let bind = ["--dim", "batch=2", "--dim", "past=1024"];
    let r = report("llama_decode.onnx", &[&["--scenario", "all"][..], &bind].concat());
    let (inf, dec) = (&r["scenarios"]["inference"], &r["scenarios"]["decode"]);
    for k in ["peak_bytes", "peak_node", "peak_breakdown"] {
        assert_eq!(inf[k], dec[k], "{k}");
    }
    assert!(r["scenarios"]["training"].is_object(), "all keeps training");
    let d = &dec["decode"];
    assert_eq!(d["cache_inputs"], 8);
    assert_eq!((d["past_length"].as_u64(), d["cache_bytes"].as_u64(), d["cache_bytes_per_token"].as_u64()), (Some(1024), Some(8_388_608), Some(8192)));
    assert_eq!(d["peak_bytes_per_token"], 22_528);
    // The growth is checked against a real run one token longer.
    let longer = report("llama_decode.onnx", &["--scenario", "decode", "--dim", "batch=2", "--dim", "past=1025"]);
    assert_eq!(d["next_peak_bytes"], longer["scenarios"]["decode"]["peak_bytes"]);
    assert_eq!(longer["scenarios"]["decode"]["peak_bytes"].as_u64().unwrap(), dec["peak_bytes"].as_u64().unwrap() + 22_528);
    // The same through --input per cache input (as the measurements give it).
    let mut by_input: Vec<String> = vec!["--scenario".into(), "decode".into(), "--input".into(), "input_ids=2x1".into()];
    for l in 0..4 {
        for kv in ["key", "value"] {
            by_input.extend(["--input".to_string(), format!("past_{kv}_{l}=2x2x1024x64")]);
        }
    }
    let by_input: Vec<&str> = by_input.iter().map(String::as_str).collect();
    assert_eq!(report("llama_decode.onnx", &by_input)["scenarios"]["decode"], *dec);
    // Table and HTML say the same.
    let table = nnmem(&[&["inspect", model, "-q", "--scenario", "decode"][..], &bind].concat());
    let text = String::from_utf8(table.stdout).unwrap();
    assert!(text.contains("KV cache: 8.00 MiB in 8 inputs at past length 1,024; per generated token +8.00 KiB (8,192 B)"), "{text}");
    assert!(text.contains("step peak grows 22.00 KiB (22,528 B) per token of past length"), "{text}");
    let html = nnmem(&[&["inspect", model, "-q", "--scenario", "decode", "--format", "html"][..], &bind].concat());
    let html = String::from_utf8(html.stdout).unwrap();
    assert!(html.contains("id=\"peak-decode\"") && html.contains("per generated token +8.00 KiB (8,192 B)"));
    // Gates.
    let gate = |limit: &str| nnmem(&[&["inspect", model, "-q", "--scenario", "decode", "--assert", limit][..], &bind].concat()).status.code();
    assert_eq!(gate("decode.peak < 24GiB"), Some(0));
    assert_eq!(gate("decode.peak < 90MiB"), Some(1));
    assert_eq!(gate("decode.inputs == 8388624"), Some(0));
    // Unbound, the figures are a lower bound: a gate cannot pass.
    let out = nnmem(&["inspect", model, "-q", "--scenario", "decode", "--assert", "decode.peak < 24GiB"]);
    assert_eq!(out.status.code(), Some(2), "{}", String::from_utf8_lossy(&out.stderr));
    // fit over the past length with the decode scenario.
    let out = nnmem(&["fit", model, "--json", "-q", "--scenario", "decode", "--dim", "batch=2", "--vary", "past", "--budget", "200MiB"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let f: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!((f["fits"]["scenario"].as_str(), f["scenarios"][0].as_str()), (Some("decode"), Some("decode")));
    let fits = f["fits"]["size"].as_u64().unwrap();
    // The growth rule predicts the same longest context: 98,596,680 + (P − 1,024) · 22,528 ≤ 200 MiB.
    assert_eq!(fits, 1024 + ((200u64 << 20) - 98_596_680) / 22_528);
}

#[test]
fn decode_without_a_kv_cache_is_an_error_and_all_leaves_it_out() {
    let model = measured("llama.onnx");
    let model = model.to_str().unwrap();
    let out = nnmem(&["inspect", model, "-q", "--scenario", "decode", "--input", "input_ids=2x128"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("llama.onnx") && err.contains("--scenario decode needs a decoder exported with a KV cache"), "{err}");
    let r = report("llama.onnx", &["--input", "input_ids=2x128"]);
    let names: Vec<&String> = r["scenarios"].as_object().unwrap().keys().collect();
    assert_eq!(names, ["inference", "training"]);
    assert!(r["warnings"].as_array().unwrap().is_empty(), "{r}");
    // A decode gate on such a model cannot be checked: exit 2, saying why.
    let out = nnmem(&["inspect", model, "-q", "--input", "input_ids=2x128", "--assert", "decode.peak < 24GiB"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("has no KV cache"));
}

#[test]
fn pytorch_exports_say_what_they_cannot_show() {
    // The TorchScript exporter records no source lines: a note says eager
    // PyTorch may hold more (docs/memory-model.md, "Python locals"). The
    // dynamo export records them (no such note) but traced BatchNorm in its
    // inference form, folded into the convolutions: a note counts them.
    let notes = |r: &Value| -> Vec<String> { r["notes"].as_array().unwrap().iter().map(|n| n.as_str().unwrap().to_string()).collect() };
    let args = ["--input", "input=1x3x256x256", "--scenario", "inference"];
    let legacy = notes(&report("unet.train.onnx", &args));
    assert!(legacy.iter().any(|n| n.contains("without source lines")), "{legacy:?}");
    assert!(!legacy.iter().any(|n| n.contains("BatchNorm")), "{legacy:?}");
    let dynamo = notes(&report("unet.dynamo.onnx", &args));
    assert!(!dynamo.iter().any(|n| n.contains("without source lines")), "{dynamo:?}");
    assert!(dynamo.iter().any(|n| n.starts_with("18 BatchNorm layer(s) were exported in their inference form")), "{dynamo:?}");
}
