//! The `nnmem` binary on Caffe fixtures: shapes, parameters, input declarations,
//! phases, in-place layers, shared weights, and clear errors on bad input.

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use serde_json::Value;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/caffe").join(name)
}

fn nnmem() -> Command {
    Command::cargo_bin("nnmem").expect("the nnmem binary is built")
}

/// Run `inspect --json` and parse the report; the run must succeed.
fn report(model: &Path, extra: &[&str]) -> Value {
    let out = nnmem().arg("inspect").arg(model).arg("--json").args(extra).output().unwrap();
    assert!(out.status.success(), "nnmem failed: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("stdout is JSON")
}

/// The last tensor entry with this name (an in-place layer's final value).
fn shape(report: &Value, name: &str) -> Value {
    report["tensors"].as_array().unwrap().iter().rev().find(|t| t["name"] == name).map(|t| t["shape"].clone()).unwrap_or(Value::Null)
}

fn write_temp(text: &str) -> tempfile::NamedTempFile {
    let f = tempfile::Builder::new().suffix(".prototxt").tempfile().unwrap();
    std::fs::write(f.path(), text).unwrap();
    f
}

/// Run on a prototxt text that must fail: exit 2 and a message containing `expected`.
fn fails_with(text: &str, extra: &[&str], expected: &str) {
    let f = write_temp(text);
    let out = nnmem().arg("inspect").arg(f.path()).args(extra).output().unwrap();
    assert_eq!(out.status.code(), Some(2), "stdout: {}", String::from_utf8_lossy(&out.stdout));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains(expected), "stderr {stderr:?} lacks {expected:?}");
    assert!(stderr.contains(&f.path().display().to_string()) || extra.iter().any(|a| a.starts_with("--")), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn vgg19_v1_and_v2_agree_with_published_count() {
    let v1 = report(&fixture("vgg19_neural_style_v1.prototxt"), &[]);
    let v2 = report(&fixture("vgg19_neural_style_v2.prototxt"), &[]);
    for r in [&v1, &v2] {
        assert_eq!(r["totals"]["params"], 143_667_240);
        assert_eq!(shape(r, "pool5"), serde_json::json!([1, 512, 7, 7]));
        assert_eq!(shape(r, "prob"), serde_json::json!([1, 1000]));
    }
    assert_eq!(v1["nodes"].as_array().unwrap().len(), v2["nodes"].as_array().unwrap().len());
    assert_eq!(v1["nodes"][0]["op"], "Convolution", "V1 enum types are reported by their V2 name");
}

#[test]
fn alexnet_grouped_convolutions() {
    let r = report(&fixture("alexnet_grouped.prototxt"), &[]);
    assert_eq!(r["totals"]["params"], 60_965_224);
    let conv2 = r["nodes"].as_array().unwrap().iter().find(|n| n["name"] == "conv2").unwrap();
    // 256 · (96/2) · 5 · 5 + 256
    assert_eq!(conv2["params"], 307_456);
    assert_eq!(shape(&r, "pool5"), serde_json::json!([10, 256, 6, 6]));
}

#[test]
fn residual_net_counts_statistics_separately_and_in_place_once() {
    let r = report(&fixture("small_resnet.prototxt"), &[]);
    assert_eq!(r["totals"]["params"], 19_994);
    // Six BatchNorms: 2·16+1 three times, 2·32+1 three times.
    assert_eq!(r["totals"]["non_trainable"], 294);
    let bn1 = r["nodes"].as_array().unwrap().iter().find(|n| n["name"] == "bn1").unwrap();
    assert_eq!(bn1["in_place"], true);
    assert_eq!(shape(&r, "b_sum"), serde_json::json!([2, 32, 16, 16]));
    // conv1 written four times (conv, bn, scale, relu) is still one 2·16·32·32·4-byte storage.
    let entries = r["tensors"].as_array().unwrap().iter().filter(|t| t["name"] == "conv1").count();
    assert_eq!(entries, 4);
}

#[test]
fn seed_network_shapes_end_at_8x8x192() {
    let r = report(&fixture("seed_cnn.prototxt"), &[]);
    assert_eq!(shape(&r, "pool6"), serde_json::json!([1, 192, 8, 8]));
    // Σ 9·c_in·c_out + c_out over the six convolutions.
    assert_eq!(r["totals"]["params"], 221_508);
}

#[test]
fn input_override_and_batch() {
    let m = fixture("seed_cnn.prototxt");
    let r = report(&m, &["--input", "data=2x3x256x256"]);
    assert_eq!(shape(&r, "pool6"), serde_json::json!([2, 192, 4, 4]));
    let r = report(&m, &["--input", "1x3x128x128", "--batch", "4"]);
    assert_eq!(shape(&r, "conv1"), serde_json::json!([4, 6, 128, 128]));
    let out = nnmem().arg("inspect").arg(&m).args(["--input", "image=1x3x8x8"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no input of that name (its inputs: data)"));
}

#[test]
fn phases_select_layers_and_shared_weights_count_once() {
    let m = fixture("siamese_train_test.prototxt");
    let test = report(&m, &["--input", "pair_data=100x2x28x28"]);
    let train = report(&m, &["--input", "pair_data=64x2x28x28", "--phase", "train"]);
    // conv1 20·25+20 = 520 and ip1 10·(20·24·24)+10 = 115,210, shared by both towers.
    assert_eq!(test["totals"]["params"], 115_730);
    assert_eq!(train["totals"]["params"], 115_730);
    assert_eq!(shape(&test, "sim"), serde_json::json!([100]));
    assert_eq!(shape(&train, "sim"), serde_json::json!([64]));
    let names = |r: &Value| r["nodes"].as_array().unwrap().iter().map(|n| n["name"].as_str().unwrap().to_string()).collect::<Vec<_>>();
    assert!(names(&train).contains(&"train_only_drop".to_string()));
    assert!(!names(&test).contains(&"train_only_drop".to_string()));
    let conv1_p = test["nodes"].as_array().unwrap().iter().find(|n| n["name"] == "conv1_p").unwrap();
    assert_eq!(conv1_p["params"], 0, "the second tower reuses conv1's weights");
    assert_eq!(conv1_p["param_tensors"], serde_json::json!(["conv1_w", "conv1_b"]));
}

#[test]
fn unsized_data_layer_is_reported_not_guessed() {
    let m = fixture("siamese_train_test.prototxt");
    let out = nnmem().arg("inspect").arg(&m).arg("--json").output().unwrap();
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("input \"pair_data\": the file does not state its shape"), "{stderr}");
    let r: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(shape(&r, "conv1"), Value::Null);
}

#[test]
fn input_declaration_styles_agree() {
    let body = r#"layer { name: "c" type: "Convolution" bottom: "data" top: "c" convolution_param { num_output: 4 kernel_size: 3 } }"#;
    let styles = [
        "input: \"data\"\ninput_dim: 1\ninput_dim: 3\ninput_dim: 10\ninput_dim: 10\n".to_string(),
        "input: \"data\"\ninput_shape { dim: 1 dim: 3 dim: 10 dim: 10 }\n".to_string(),
        "layer { name: \"in\" type: \"Input\" top: \"data\" input_param { shape { dim: 1 dim: 3 dim: 10 dim: 10 } } }\n".to_string(),
        "layer { name: \"in\" type: \"MemoryData\" top: \"data\" top: \"label\" memory_data_param { batch_size: 1 channels: 3 height: 10 width: 10 } }\n".to_string(),
        "layer { name: \"in\" type: \"ImageData\" top: \"data\" top: \"label\" transform_param { crop_size: 10 } image_data_param { batch_size: 1 } }\n".to_string(),
    ];
    for head in styles {
        let f = write_temp(&(head.clone() + body));
        let r = report(f.path(), &[]);
        assert_eq!(shape(&r, "c"), serde_json::json!([1, 4, 8, 8]), "{head}");
    }
}

#[test]
fn tolerant_reader_takes_real_world_quirks() {
    // CRLF, tabs, comments after values, V0 syntax, unknown fields and layer types, no final newline.
    let text = "name: 'quirks'\r\ninput: \"data\"\t# the image\r\ninput_dim: 1 #10\r\ninput_dim: 3\r\ninput_dim: 9\r\ninput_dim: 9\r\n\
layers {\r\n  layer { name: 'conv1' type: \"conv\" num_output: 2 kernelsize: 3 biasterm: false blobs_lr: 1. }\r\n  bottom: 'data'\r\n  top: 'conv1'\r\n}\r\n\
layers { layer { name: 'fancy' type: 'my_fork_layer' some_param { x: 1 } } bottom: 'conv1' top: 'fancy' }\r\n\
layers { layer { name: 'pool1' type: 'pool' pool: MAX kernelsize: 2 stride: 2 } bottom: 'conv1' top: 'pool1' }";
    let f = write_temp(text);
    let out = nnmem().arg("inspect").arg(f.path()).arg("--json").output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("no shape rule for type \"my_fork_layer\""), "{stderr}");
    let r: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(shape(&r, "conv1"), serde_json::json!([1, 2, 7, 7]));
    assert_eq!(shape(&r, "pool1"), serde_json::json!([1, 2, 4, 4]), "CEIL: (7-2)/2 rounds up");
    assert_eq!(shape(&r, "fancy"), Value::Null);
    assert_eq!(r["totals"]["params"], 54);
}

#[test]
fn table_states_units() {
    let out = nnmem().arg("inspect").arg(fixture("seed_cnn.prototxt")).output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("conv1"), "{text}");
    assert!(text.contains("[1,192,8,8]"), "{text}");
    assert!(text.contains("221,508 learned"), "{text}");
    assert!(text.contains("MiB = 1024 KiB"), "{text}");
}

#[test]
fn bad_input_is_a_clear_error() {
    fails_with("layer {\n  name: \"a\"\n  type: \"ReLU\"\n", &[], ":4:1: unexpected end of file: expected '}'");
    fails_with(
        "input: 'data'\ninput_shape { dim: 1 dim: 3 dim: 8 dim: 8 }\nlayer { name: 'p' type: 'Pooling' bottom: 'data' top: 'p'\n pooling_param { pool: BIGGEST kernel_size: 2 } }",
        &[],
        ":4:18: expected one of MAX, AVE, STOCHASTIC for \"pool\"",
    );
    fails_with(
        "input: 'data'\ninput_shape { dim: 1 dim: 3 dim: 8 dim: 8 }\nlayer { name: 'r' type: 'ReLU' bottom: 'nothing' top: 'r' }",
        &[],
        "layer \"r\" (type ReLU, line 3): bottom \"nothing\" is not produced by any earlier layer or input",
    );
    fails_with("input: 'data'\ninput_shape { dim: 1 dim: -3 }\n", &[], ":2:22: expected a non-negative integer for \"dim\"");
    fails_with(
        "input: 'data'\ninput_shape { dim: 4611686018427387904 dim: 4611686018427387904 dim: 8 }\nlayer { name: 'c' type: 'InnerProduct' bottom: 'data' top: 'c' inner_product_param { num_output: 2 } }",
        &[],
        "overflows 64 bits",
    );
    fails_with(
        "input: 'data'\ninput_shape { dim: 1 dim: 3 dim: 4 dim: 4 }\nlayer { name: 'c' type: 'Convolution' bottom: 'data' top: 'c' convolution_param { num_output: 2 kernel_size: 7 } }",
        &[],
        "kernel 7 is larger than the padded input 4",
    );
    fails_with(
        "input: 'data'\ninput_shape { dim: 1 dim: 3 dim: 4 dim: 4 }\nlayer { name: 'c' type: 'Convolution' bottom: 'data' top: 'c' convolution_param { num_output: 2 kernel_size: 1 group: 2 } }",
        &[],
        "group 2 does not divide the 3 input channels",
    );
}

#[test]
fn usage_errors_exit_2() {
    let out = nnmem().args(["inspect", "/definitely/not/here.prototxt"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("nnmem: error: /definitely/not/here.prototxt"));
    let out = nnmem().args(["inspect", "x.prototxt", "--input", "data=1xAx3"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let out = nnmem().arg("--help").output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).contains("Exit codes"));
}

#[test]
fn output_file_is_written_and_never_over_the_input() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("net.prototxt");
    std::fs::copy(fixture("seed_cnn.prototxt"), &model).unwrap();
    let before = std::fs::read(&model).unwrap();
    let out = nnmem().arg("inspect").arg(&model).arg("-o").arg(&model).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("refusing to write the report over the input"));
    assert_eq!(std::fs::read(&model).unwrap(), before);
    let target = dir.path().join("report.json");
    nnmem().arg("inspect").arg(&model).arg("--json").arg("-o").arg(&target).assert().success();
    let r: Value = serde_json::from_slice(&std::fs::read(&target).unwrap()).unwrap();
    assert_eq!(r["schema_version"], 2);
}
