//! Byte-identical JSON reports for our own fixtures, against snapshots written
//! by the binary before the op/schedule redesign (issue 13). Any change to a
//! figure, a name or the order of anything in a report shows up here as a
//! failing case naming the file; a deliberate change rewrites the snapshots
//! with `NNMEM_UPDATE_SNAPSHOTS=1 cargo test --release --test report_snapshots`
//! (which then fails once, so that the diff is reviewed before it is committed).

use std::path::Path;

use assert_cmd::Command;

/// (snapshot name, model relative to the repository root, extra arguments).
const CASES: &[(&str, &str, &[&str])] = &[
    ("alexnet_grouped", "fixtures/caffe/alexnet_grouped.prototxt", &[]),
    ("seed_cnn", "fixtures/caffe/seed_cnn.prototxt", &[]),
    ("siamese_train_test", "fixtures/caffe/siamese_train_test.prototxt", &[]),
    ("small_resnet", "fixtures/caffe/small_resnet.prototxt", &[]),
    ("vgg19_neural_style_v2", "fixtures/caffe/vgg19_neural_style_v2.prototxt", &[]),
    ("bf16", "fixtures/onnx/bf16.onnx", &[]),
    ("control_flow", "fixtures/onnx/control_flow.onnx", &[]),
    ("conv_chain", "fixtures/onnx/conv_chain.onnx", &[]),
    ("dynamic", "fixtures/onnx/dynamic.onnx", &[]),
    ("ext_present", "fixtures/onnx/ext_present.onnx", &[]),
    ("shared_weight", "fixtures/onnx/shared_weight.onnx", &[]),
    ("train_bn", "fixtures/onnx/train_bn.onnx", &[]),
    ("unknown_op", "fixtures/onnx/unknown_op.onnx", &[]),
    ("upsample", "fixtures/onnx/upsample.onnx", &[]),
    ("small_resnet.adam_f16", "fixtures/caffe/small_resnet.prototxt", &["--scenario", "training", "--optimizer", "adam", "--dtype", "f16"]),
    ("train_bn.adam_f16", "fixtures/onnx/train_bn.onnx", &["--scenario", "training", "--optimizer", "adam", "--dtype", "f16"]),
    ("small_resnet.caffe", "fixtures/caffe/small_resnet.prototxt", &["--profile", "caffe"]),
    ("alexnet_grouped.cudnn_mixed", "fixtures/caffe/alexnet_grouped.prototxt", &["--profile", "cudnn", "--mixed-precision", "--optimizer", "momentum"]),
    ("seed_cnn.tiny_dnn", "fixtures/caffe/seed_cnn.prototxt", &["--profile", "tiny-dnn", "--optimizer", "adamw"]),
    (
        "vgg19_neural_style_v2.style",
        "fixtures/caffe/vgg19_neural_style_v2.prototxt",
        &["--scenario", "style-transfer", "--optimizer", "lbfgs"],
    ),
    (
        "vgg19_neural_style_v2.style_torch_nn",
        "fixtures/caffe/vgg19_neural_style_v2.prototxt",
        &["--scenario", "style-transfer", "--profile", "torch-nn", "--style-layers", "relu1_1,relu3_1", "--content-layers", "relu4_2"],
    ),
];

#[test]
fn reports_match_their_snapshots() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = root.join("tests/snapshots/reports");
    let update = std::env::var_os("NNMEM_UPDATE_SNAPSHOTS").is_some();
    let mut differ = Vec::new();
    for (name, model, extra) in CASES {
        let out = Command::cargo_bin("nnmem")
            .unwrap()
            .current_dir(root)
            .args(["inspect", model, "--json"])
            .args(*extra)
            .output()
            .unwrap();
        assert!(out.status.success(), "{name}: {}", String::from_utf8_lossy(&out.stderr));
        let file = dir.join(format!("{name}.json"));
        if update {
            std::fs::write(&file, &out.stdout).unwrap();
            continue;
        }
        let want = std::fs::read(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        if want != out.stdout {
            let line = want
                .split(|&b| b == b'\n')
                .zip(out.stdout.split(|&b| b == b'\n'))
                .position(|(a, b)| a != b)
                .map_or(0, |l| l + 1);
            differ.push(format!("{name} (first difference at line {line})"));
        }
    }
    assert!(!update, "snapshots rewritten under {}: review the diff, then run without NNMEM_UPDATE_SNAPSHOTS", dir.display());
    assert!(differ.is_empty(), "reports differ from tests/snapshots/reports: {differ:?}");
}
