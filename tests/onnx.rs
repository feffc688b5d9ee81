//! ONNX loader tests: the committed fixtures (fixtures/onnx, written by
//! make_fixtures.py), hostile files, and the shared corpus when it is present.

use std::path::{Path, PathBuf};

use nnmem::graph::{Graph, TensorKind, Unknown};
use nnmem::load::{load, DimBinding, InputSpec, LoadError, LoadOptions};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/onnx").join(name)
}

fn load_fixture(name: &str, options: &LoadOptions) -> Graph {
    match load(&fixture(name), options) {
        Ok(g) => g,
        Err(e) => panic!("{name}: {e}"),
    }
}

fn shape_of(g: &Graph, name: &str) -> Option<Vec<u64>> {
    g.tensors.iter().find(|t| t.name == name).and_then(|t| t.shape.as_ref()).map(|s| s.dims().to_vec())
}

fn unknown_of(g: &Graph, name: &str) -> Option<Unknown> {
    g.tensors.iter().find(|t| t.name == name).and_then(|t| t.unknown.clone())
}

fn with_input(spec: &str) -> LoadOptions {
    LoadOptions { inputs: vec![InputSpec::parse(spec).unwrap()], ..Default::default() }
}

fn has_warning(g: &Graph, needle: &str) -> bool {
    g.warnings.iter().any(|w| w.contains(needle))
}

#[test]
fn conv_chain_params_and_shapes() {
    let g = load_fixture("conv_chain.onnx", &with_input("input=2x3x16x16"));
    let totals = g.param_totals();
    assert_eq!(totals.params, 5410);
    assert_eq!(totals.non_trainable, 16);
    assert_eq!(shape_of(&g, "conv_out"), Some(vec![2, 8, 16, 16]));
    assert_eq!(shape_of(&g, "pool_out"), Some(vec![2, 8, 8, 8]));
    assert_eq!(shape_of(&g, "flat"), Some(vec![2, 512]));
    assert_eq!(shape_of(&g, "probs"), Some(vec![2, 4]));
    let names: Vec<&str> = g.nodes.iter().map(|n| n.op.name()).collect();
    assert_eq!(names, ["Conv", "BatchNorm", "ReLU", "MaxPool", "Reshape", "Dense", "Dense", "Softmax"]);
    // Conv reads its weight and bias as params, the input as data.
    let conv = &g.nodes[0];
    assert_eq!(conv.inputs.len(), 1);
    assert_eq!(conv.params.len(), 2);
    // The reshape target is a small integer constant, not a parameter.
    let reshape = &g.nodes[4];
    assert_eq!(g.tensors[reshape.inputs[1].0].kind, TensorKind::Constant);
    assert!(g.warnings.is_empty(), "{:?}", g.warnings);
}

#[test]
fn batch_flag_and_symbolic_shapes() {
    let g = load_fixture("conv_chain.onnx", &LoadOptions { batch: Some(7), ..Default::default() });
    assert_eq!(shape_of(&g, "probs"), Some(vec![7, 4]));

    let g = load_fixture("conv_chain.onnx", &LoadOptions::default());
    assert_eq!(unknown_of(&g, "probs"), Some(Unknown::Symbolic(vec!["batch".into(), "4".into()])));
}

#[test]
fn dynamic_dims_stay_formulas_until_bound() {
    let g = load_fixture("dynamic.onnx", &LoadOptions::default());
    assert_eq!(
        unknown_of(&g, "c"),
        Some(Unknown::Symbolic(vec!["batch".into(), "16".into(), "(height+1)/2".into(), "(width+1)/2".into()]))
    );
    let dims = |pairs: &[(&str, u64)]| LoadOptions {
        dims: pairs.iter().map(|(s, v)| DimBinding { symbol: s.to_string(), value: *v }).collect(),
        ..Default::default()
    };
    let g = load_fixture("dynamic.onnx", &dims(&[("batch", 2), ("height", 65), ("width", 64)]));
    assert_eq!(shape_of(&g, "c"), Some(vec![2, 16, 33, 32]));
    assert_eq!(shape_of(&g, "logits"), Some(vec![2, 5]));
    let g = load_fixture("dynamic.onnx", &dims(&[("nosuch", 2)]));
    assert!(has_warning(&g, "nosuch"), "{:?}", g.warnings);
}

#[test]
fn external_data_absent_or_present_is_not_read() {
    for name in ["ext_absent.onnx", "ext_present.onnx"] {
        let g = load_fixture(name, &with_input("input=1x3x16x16"));
        assert_eq!(g.param_totals().params, 5410, "{name}");
        assert_eq!(g.param_totals().non_trainable, 16, "{name}");
        assert_eq!(shape_of(&g, "probs"), Some(vec![1, 4]), "{name}");
        assert!(g.warnings.is_empty(), "{name}: {:?}", g.warnings);
    }
}

#[test]
fn unknown_op_is_a_warning_and_its_dependents_unknown() {
    let g = load_fixture("unknown_op.onnx", &LoadOptions::default());
    assert_eq!(shape_of(&g, "c"), Some(vec![1, 8, 16, 16]));
    assert_eq!(unknown_of(&g, "m"), Some(Unknown::NoRule));
    assert_eq!(unknown_of(&g, "out"), Some(Unknown::NoRule));
    assert!(has_warning(&g, "MyLayer"), "{:?}", g.warnings);
}

#[test]
fn training_batchnorm_and_dropout() {
    let g = load_fixture("train_bn.onnx", &LoadOptions::default());
    assert_eq!(g.param_totals().params, 116);
    assert_eq!(g.param_totals().non_trainable, 8);
    assert_eq!(shape_of(&g, "bn_y"), Some(vec![2, 4, 8, 8]));
    assert_eq!(shape_of(&g, "bn_mean"), Some(vec![4]));
    assert_eq!(shape_of(&g, "bn_var"), Some(vec![4]));
    assert_eq!(shape_of(&g, "out"), Some(vec![2, 4, 8, 8]));
    assert_eq!(shape_of(&g, "mask"), Some(vec![2, 4, 8, 8]));
    let bn = g.nodes.iter().find(|n| n.source_type == "BatchNormalization").unwrap();
    assert_eq!(bn.outputs.len(), 3);
}

#[test]
fn upsample_gets_a_rule() {
    let g = load_fixture("upsample.onnx", &LoadOptions::default());
    assert_eq!(shape_of(&g, "up"), Some(vec![1, 4, 10, 12]));
    assert_eq!(shape_of(&g, "out"), Some(vec![1, 4, 10, 12]));
}

#[test]
fn bf16_weights_are_reported_as_bf16() {
    let g = load_fixture("bf16.onnx", &LoadOptions::default());
    let w = g.tensors.iter().find(|t| t.name == "w_bf16").unwrap();
    assert_eq!(w.dtype, nnmem::graph::DType::BF16);
    assert_eq!(g.param_totals().params, 128);
    assert_eq!(shape_of(&g, "out"), Some(vec![2, 8]));
}

#[test]
fn shared_weight_counted_once() {
    let g = load_fixture("shared_weight.onnx", &LoadOptions::default());
    assert_eq!(g.param_totals().params, 36);
    assert_eq!(g.nodes[0].params, g.nodes[1].params);
}

#[test]
fn input_option_errors_are_usage_errors() {
    let e = load(&fixture("conv_chain.onnx"), &with_input("nope=1x3x16x16")).unwrap_err();
    assert!(matches!(e, LoadError::Usage { .. }), "{e}");
    let e = load(&fixture("conv_chain.onnx"), &with_input("input=1x3x16")).unwrap_err();
    assert!(matches!(e, LoadError::Usage { .. }), "{e}");
    // A single unnamed spec is fine for a single-input model.
    let g = load_fixture("conv_chain.onnx", &with_input("3x3x16x16"));
    assert_eq!(shape_of(&g, "probs"), Some(vec![3, 4]));
}

// ---- hostile files: a clear error or warning, never a panic ----

#[test]
fn hostile_missing_input_is_a_located_error() {
    let e = load(&fixture("hostile_missing_input.onnx"), &LoadOptions::default()).unwrap_err();
    let msg = e.to_string();
    assert!(matches!(e, LoadError::Model { .. }), "{msg}");
    assert!(msg.contains("bad_relu") && msg.contains("nowhere"), "{msg}");
}

#[test]
fn hostile_cycle_is_an_error() {
    let e = load(&fixture("hostile_cycle.onnx"), &LoadOptions::default()).unwrap_err();
    assert!(e.to_string().contains("cycle"), "{e}");
}

/// An initializer whose byte size overflows 64 bits is an error naming it
/// (it was a warning, and the weight counted as 0 bytes).
#[test]
fn hostile_huge_dims_are_refused() {
    let e = load(&fixture("hostile_huge_dims.onnx"), &LoadOptions::default()).unwrap_err();
    assert!(matches!(e, LoadError::Model { .. }), "{e:?}");
    assert!(e.to_string().contains("initializer \"huge\"") && e.to_string().contains("overflow 64 bits"), "{e}");
}

#[test]
fn hostile_external_locations_are_not_followed() {
    let g = load_fixture("hostile_external_escape.onnx", &LoadOptions::default());
    assert!(has_warning(&g, "/etc/passwd"), "{:?}", g.warnings);
    assert!(has_warning(&g, "../outside.bin"), "{:?}", g.warnings);
    assert_eq!(shape_of(&g, "out"), Some(vec![1, 4]));
}

#[test]
fn hostile_truncated_files_error_cleanly() {
    let bytes = std::fs::read(fixture("conv_chain.onnx")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    // Every cut through the graph header region, plus some through the weights.
    let cuts: Vec<usize> = (1..200).chain((200..bytes.len()).step_by(997)).collect();
    for cut in cuts {
        let p = dir.path().join("cut.onnx");
        std::fs::write(&p, &bytes[..cut]).unwrap();
        // Either an error or (when the cut falls between fields) a smaller graph.
        let _ = load(&p, &LoadOptions::default());
    }
    let p = dir.path().join("cut.onnx");
    std::fs::write(&p, &bytes[..bytes.len() / 2]).unwrap();
    let e = load(&p, &LoadOptions::default()).unwrap_err();
    assert!(matches!(e, LoadError::Format { .. }), "{e}");
}

#[test]
fn hostile_wire_types_and_lengths() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("bad.onnx");
    let cases: &[&[u8]] = &[
        // ir_version (varint) followed by field 7 sent as a varint.
        &[0x08, 0x08, 0x38, 0x01],
        // graph field with a length of 2^62.
        &[0x08, 0x08, 0x3a, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x40],
        // graph with a node field (1) sent as fixed64.
        &[0x08, 0x08, 0x3a, 0x09, 0x09, 1, 2, 3, 4, 5, 6, 7, 8],
        // a group wire type.
        &[0x08, 0x08, 0x3b],
        // no graph at all.
        &[0x08, 0x08],
        // a varint that never ends.
        &[0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff],
    ];
    for bytes in cases {
        std::fs::write(&p, bytes).unwrap();
        let e = load(&p, &LoadOptions::default());
        assert!(matches!(e, Err(LoadError::Format { .. })), "{bytes:?}: {:?}", e.map(|g| g.nodes.len()));
    }
}

// ---- the shared corpus (graph-only exports), when present ----

fn corpus(name: &str) -> Option<PathBuf> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/corpus/onnx").join(name);
    p.exists().then_some(p)
}

/// The corpus file, or `None` after saying on stderr that `test` is skipped.
fn corpus_or_skip(test: &str, name: &str) -> Option<PathBuf> {
    let p = corpus(name);
    if p.is_none() {
        eprintln!("SKIPPED {test}: ../shared/corpus/onnx/{name} is absent");
    }
    p
}

#[test]
fn corpus_resnet50_dynamic_stem() {
    let Some(p) = corpus_or_skip("corpus_resnet50_dynamic_stem", "resnet50.ext.onnx") else { return };
    let g = load(&p, &with_input("input=2x3x320x320")).unwrap();
    assert_eq!(shape_of(&g, "/relu/Relu_output_0"), Some(vec![2, 64, 160, 160]));
    assert_eq!(shape_of(&g, "output"), Some(vec![2, 1000]));
    let g = load(&p, &LoadOptions::default()).unwrap();
    assert_eq!(
        unknown_of(&g, "/conv1/Conv_output_0"),
        Some(Unknown::Symbolic(vec!["batch".into(), "64".into(), "(height+1)/2".into(), "(width+1)/2".into()]))
    );
}

/// The acceptance check of nnmem_check.py `onnx`, through the library: every
/// graph-only export loads without its data file, with the manifest's parameter
/// counts and output shapes at 1x3x224x224.
#[test]
fn corpus_file_params_and_outputs() {
    let Some(manifest) = corpus_or_skip("corpus_file_params_and_outputs", "manifest.json") else { return };
    let manifest: serde_json::Value = serde_json::from_slice(&std::fs::read(manifest).unwrap()).unwrap();
    let mut failures = Vec::new();
    for (name, m) in manifest["models"].as_object().unwrap() {
        for (variant, fp) in m["file_params"].as_object().unwrap() {
            let file = fp["file"].as_str().unwrap();
            let Some(p) = corpus(file) else {
                failures.push(format!("{name}/{variant}: {file}, listed in manifest.json, is absent"));
                continue;
            };
            let g = match load(&p, &with_input("input=1x3x224x224")) {
                Ok(g) => g,
                Err(e) => {
                    failures.push(format!("{file}: {e}"));
                    continue;
                }
            };
            let totals = g.param_totals();
            if totals.params != fp["params"].as_u64().unwrap()
                || totals.non_trainable != fp["non_trainable"].as_u64().unwrap()
            {
                failures.push(format!("{name}/{variant}: params {totals:?}, expected {fp}"));
            }
            for (out, dims) in m["outputs"].as_object().unwrap() {
                let got = shape_of(&g, out);
                let ok = got.as_ref().is_some_and(|s| {
                    let want = dims.as_array().unwrap();
                    s.len() == want.len()
                        && want.iter().zip(s).all(|(w, g)| match w.as_u64() {
                            Some(w) => w == *g,
                            None => w != "batch" || *g == 1,
                        })
                });
                if !ok {
                    failures.push(format!("{file}: output {out} {got:?}, expected {dims}"));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

#[test]
fn control_flow_makes_dependents_run_time() {
    let g = load_fixture("control_flow.onnx", &LoadOptions::default());
    assert_eq!(shape_of(&g, "r"), Some(vec![1, 4]));
    assert_eq!(unknown_of(&g, "y"), Some(Unknown::RunTime));
    assert_eq!(unknown_of(&g, "out"), Some(Unknown::RunTime));
}

// ---- through the binary ----

fn inspect_json(args: &[&str]) -> serde_json::Value {
    let out = assert_cmd::Command::cargo_bin("nnmem").unwrap().arg("inspect").args(args).arg("--json").output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

fn json_shape(report: &serde_json::Value, name: &str) -> serde_json::Value {
    report["tensors"].as_array().unwrap().iter().find(|t| t["name"] == name).map(|t| t["shape"].clone()).unwrap()
}

#[test]
fn cli_inspect_onnx_json() {
    let path = fixture("ext_absent.onnx");
    let r = inspect_json(&[path.to_str().unwrap(), "--input", "input=2x3x16x16"]);
    assert_eq!(r["totals"]["params"], 5410);
    assert_eq!(r["totals"]["non_trainable"], 16);
    assert_eq!(json_shape(&r, "conv_out"), serde_json::json!([2, 8, 16, 16]));
    assert_eq!(json_shape(&r, "probs"), serde_json::json!([2, 4]));
}

#[test]
fn cli_hostile_onnx_is_an_error_not_a_crash() {
    let out = assert_cmd::Command::cargo_bin("nnmem")
        .unwrap()
        .args(["inspect", fixture("hostile_cycle.onnx").to_str().unwrap(), "--json"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("cycle"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
}
