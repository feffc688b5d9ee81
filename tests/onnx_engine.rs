//! nnmem's own ONNX shape engine on fixtures of its own
//! (fixtures/onnx/engine, written by make_engine_fixtures.py): every value's
//! shape and element type as ONNX's reference evaluator computed them
//! (expected.json), from the own rules alone; model-local functions and a
//! settled `If` inlined; narrow element types sized by their storage;
//! operands made of constants are constants; quantised weights counted at
//! their stored size (ONNX QDQ and ORT's MatMulNBits; the com.microsoft
//! fixture's values come from onnxruntime); a generated Llama-2-7B-shaped
//! graph sized whole.

use std::path::{Path, PathBuf};

use nnmem::graph::{DType, Graph, TensorKind};
use nnmem::load::{load, DimBinding, LoadOptions, OnnxShapes};

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/onnx/engine")
}

fn options(dims: &serde_json::Map<String, serde_json::Value>, shapes: OnnxShapes) -> LoadOptions {
    let dims = dims.iter().map(|(k, v)| DimBinding { symbol: k.clone(), value: v.as_u64().unwrap() }).collect();
    LoadOptions { dims, onnx_shapes: shapes, ..LoadOptions::default() }
}

fn find<'g>(g: &'g Graph, name: &str) -> &'g nnmem::graph::Tensor {
    g.tensors.iter().find(|t| t.name == name).unwrap_or_else(|| panic!("no tensor {name}"))
}

#[test]
fn every_value_as_the_onnx_reference_computes_it() {
    let text = std::fs::read_to_string(dir().join("expected.json")).unwrap();
    let expected: serde_json::Value = serde_json::from_str(&text).unwrap();
    let cases = expected.as_object().unwrap();
    assert!(cases.len() >= 10);
    for (file, case) in cases {
        let dims = case["dims"].as_object().unwrap();
        for mode in [OnnxShapes::Own, OnnxShapes::Auto] {
            let g = load(&dir().join(file), &options(dims, mode)).unwrap_or_else(|e| panic!("{file}: {e}"));
            assert!(!g.warnings.iter().any(|w| w.contains("do not cover") || w.contains("shape analysis")), "{file}: {:?}", g.warnings);
            for (name, want) in case["values"].as_object().unwrap() {
                let t = find(&g, name);
                let shape: Vec<u64> = want["shape"].as_array().unwrap().iter().map(|d| d.as_u64().unwrap()).collect();
                assert_eq!(t.shape.as_ref().map(|s| s.0.clone()), Some(shape), "{file}: {name} ({mode:?})");
                assert_eq!(t.dtype.name(), want["dtype"].as_str().unwrap(), "{file}: {name} ({mode:?})");
            }
        }
    }
}

#[test]
fn functions_and_a_settled_if_are_inlined() {
    let none = serde_json::Map::new();
    let mut dims = none.clone();
    dims.insert("n".into(), 3.into());
    let g = load(&dir().join("functions.onnx"), &options(&dims, OnnxShapes::Own)).unwrap();
    let names: Vec<&str> = g.nodes.iter().map(|n| n.name.as_str()).collect();
    assert_eq!(&names[..5], ["block1::MatMul", "block1::Add", "block1::Sigmoid", "block1::Mul", "block1::Concat"]);
    assert!(g.nodes.iter().all(|n| n.source_type != "LinearSiLU"));
    // The two calls' weights are the graph's: 8·16 + 16 + 32·4 + 4.
    assert_eq!(g.param_totals().params, 276);
    // Size(x) = 2·6 = 12: the then-branch (a Reshape to [-1, 2, 3]) replaces the If.
    dims.insert("n".into(), 2.into());
    let g = load(&dir().join("if_settled.onnx"), &options(&dims, OnnxShapes::Own)).unwrap();
    assert!(g.nodes.iter().any(|n| n.source_type == "Reshape") && g.nodes.iter().all(|n| n.source_type != "If"));
    assert_eq!(find(&g, "out").shape.as_ref().unwrap().0, vec![2, 2, 3]);
    // n = 3: the else-branch (a Relu).
    dims.insert("n".into(), 3.into());
    let g = load(&dir().join("if_settled.onnx"), &options(&dims, OnnxShapes::Own)).unwrap();
    assert!(g.nodes.iter().any(|n| n.source_type == "Relu"));
    assert_eq!(find(&g, "out").shape.as_ref().unwrap().0, vec![3, 6]);
    // Unbound, the condition is not known: the If stays, its outputs unknown.
    let g = load(&dir().join("if_settled.onnx"), &LoadOptions::default()).unwrap();
    assert!(g.nodes.iter().any(|n| n.source_type == "If"));
}

#[test]
fn narrow_types_are_sized_by_their_storage() {
    let g = load(&dir().join("element_types.onnx"), &LoadOptions::default()).unwrap();
    // float8: one byte an element; int4: two elements a byte, rounded up (1001 → 501).
    assert_eq!((find(&g, "w8").dtype, find(&g, "w8").bytes()), (DType::F8, Some(1001)));
    assert_eq!((find(&g, "w4").dtype, find(&g, "w4").bytes()), (DType::Packed4, Some(501)));
    assert_eq!((find(&g, "x8").dtype, find(&g, "x8").bytes()), (DType::F8, Some(2002)));
}

#[test]
fn operands_made_of_constants_are_constants() {
    let g = load(&dir().join("constant_operands.onnx"), &LoadOptions::default()).unwrap();
    for name in ["bias_shape", "bias", "wt"] {
        assert_eq!(find(&g, name).kind, TensorKind::Constant, "{name}");
    }
    assert_eq!(find(&g, "xw").kind, TensorKind::Activation);
    assert_eq!(nnmem::report::activation_bytes(&g), 2 * (2 * 4 * 4));
    assert_eq!(g.param_totals().params, 32);
}

/// scripts/make_llama_graph.py at Llama-2-7B's config: every tensor sized at
/// 1×4096, the parameter count exact, the logits [1, 4096, 32000].
/// Needs python3 with the `onnx` package (else skipped); the file goes to a temp dir.
#[test]
fn a_llama_2_7b_shaped_graph_is_sized_whole() {
    let out = tempfile::tempdir().unwrap();
    let model = out.path().join("llama7b.onnx");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/make_llama_graph.py");
    let made = std::process::Command::new("python3").arg(&script).arg(&model).output();
    match made {
        Ok(o) if o.status.success() => {}
        Ok(o) => {
            let err = String::from_utf8_lossy(&o.stderr);
            if err.contains("No module named") {
                eprintln!("SKIPPED a_llama_2_7b_shaped_graph_is_sized_whole: python3 has no `onnx` package");
                return;
            }
            panic!("make_llama_graph.py failed: {err}");
        }
        Err(e) => {
            eprintln!("SKIPPED a_llama_2_7b_shaped_graph_is_sized_whole: python3 not runnable ({e})");
            return;
        }
    }
    let opts = LoadOptions { inputs: vec![nnmem::load::InputSpec::parse("input_ids=1x4096").unwrap()], ..LoadOptions::default() };
    let g = load(&model, &opts).unwrap();
    assert!(g.warnings.is_empty(), "{:?}", g.warnings);
    assert_eq!(g.param_totals().params, 6_738_415_616);
    assert!(g.tensors.iter().all(|t| t.shape.is_some()), "some tensor is not sized");
    assert_eq!(find(&g, "logits").shape.as_ref().unwrap().0, vec![1, 4096, 32000]);
}

/// In training a quantised weight is frozen: its integer tensor cannot be
/// trained by autograd, and its scales and zero points describe it; none gets
/// a gradient or optimizer state. The float weights beside them do.
#[test]
fn quantised_weights_get_no_gradient_or_optimizer_state() {
    use nnmem::memory::{analyse, MemorySettings, Optimizer, Scenario};
    let settings = MemorySettings { scenarios: vec![Scenario::Training], optimizer: Optimizer::Adam, ..Default::default() };
    let state = |g: &Graph| analyse(g, &settings).scenarios[0].peak_breakdown.get(nnmem::memory::Category::OptimizerState);
    let mut dims = serde_json::Map::new();
    for (k, v) in [("b", 2), ("s", 3), ("p", 5)] {
        dims.insert(k.into(), v.into());
    }
    let g = load(&dir().join("transformer_ops.onnx"), &options(&dims, OnnxShapes::Own)).unwrap();
    for name in ["wq_int", "wq_scale", "wq_zp", "w4", "w4_scale"] {
        let id = nnmem::graph::TensorId(g.tensors.iter().position(|t| t.name == name).unwrap());
        assert!(!g.gets_gradient(id), "{name}");
    }
    // Adam: two f32 moments of rms_gamma (64 f32) only.
    assert_eq!(state(&g), 2 * 256);
    // MatMulNBits: the float weights around it (layer-norm gamma, beta, biases: 224 f32) only.
    let g = load(&dir().join("ort_contrib.onnx"), &LoadOptions::default()).unwrap();
    assert_eq!(state(&g), 2 * (64 + 64 + 64 + 32) * 4);
}

/// Quantised weights are parameters at their stored size: the int8 and int4
/// tensors a DequantizeLinear reads with their scales and zero points
/// (activation scales and zero points are arguments, rotary tables
/// constants); the dequantized float weight is a constant, not an activation.
/// Their parameter count is the logical weight's: an int8 or int4 tensor one
/// per element (int4 two per byte in bytes), MatMulNBits' packed blocks N×K,
/// scales and zero points none.
#[test]
fn quantised_weights_count_their_stored_bytes() {
    let none = serde_json::Map::new();
    let mut dims = none.clone();
    for (k, v) in [("b", 2), ("s", 3), ("p", 5)] {
        dims.insert(k.into(), v.into());
    }
    let g = load(&dir().join("transformer_ops.onnx"), &options(&dims, OnnxShapes::Own)).unwrap();
    // wq_int 64·64 i8, wq_scale 64 f32, wq_zp 64 i8, w4 64·32 int4, w4_scale 4·32 f32, rms_gamma 64 f32.
    let t = g.param_totals();
    assert_eq!(t.param_bytes, 4096 + 256 + 64 + 1024 + 512 + 256);
    assert_eq!((t.params, t.non_trainable), (4096 + 2048 + 64, 0));
    let per_node = g.node_param_counts();
    let node = |name: &str| g.nodes.iter().position(|n| n.name == name).unwrap();
    assert_eq!(per_node[node("wq")], (4096, 0), "wq_int 64·64 i8; its scale and zero point count no parameters");
    assert_eq!(per_node[node("w4f")], (2048, 0), "w4 64·32 int4: 2,048 parameters in 1,024 bytes");
    for name in ["wq_int", "wq_zp", "w4"] {
        assert_eq!(find(&g, name).kind, TensorKind::Param, "{name}");
    }
    for name in ["act_scale", "act_zp", "cos_cache", "sin_cache", "wq", "w4f"] {
        assert_eq!(find(&g, name).kind, TensorKind::Constant, "{name}");
    }
    assert_eq!(find(&g, "w4").bytes(), Some(1024));
    // ORT's MatMulNBits: packed 4-bit blocks [32, 4, 8] u8, scales 128 f32,
    // zero points 64 u8; layer-norm gamma, beta, biases (64, 64, 64, 32 f32).
    let g = load(&dir().join("ort_contrib.onnx"), &LoadOptions::default()).unwrap();
    let t = g.param_totals();
    assert_eq!(t.param_bytes, 1024 + 512 + 64 + (64 + 64 + 64 + 32) * 4);
    // K = 64, N = 32: the packed blocks hold 32·64 4-bit weights in 1,024 bytes.
    assert_eq!(t.params, 32 * 64 + 64 + 64 + 64 + 32);
    let nb = g.nodes.iter().position(|n| n.name == "nb").unwrap();
    assert_eq!(g.node_param_counts()[nb], (32 * 64 + 32, 0), "N×K and the bias");
    assert_eq!(find(&g, "nb_w").kind, TensorKind::Param);
    for name in ["cos16", "sin16", "seqlens_k", "total_len", "pos_ids"] {
        assert_eq!(find(&g, name).kind, TensorKind::Constant, "{name}");
    }
    assert!(!g.warnings.iter().any(|w| w.contains("vocabulary")), "{:?}", g.warnings);
}
