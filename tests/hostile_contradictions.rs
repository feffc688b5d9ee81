//! Contradictions refused, overflow never hidden: a model that states two
//! sizes for one thing is an error naming the node and both values; a size
//! that does not fit in 64 bits is an error naming it, never 0 or a saturated
//! figure; gate and budget numbers of 2^64 or more are refused; a valid
//! sparse initializer is counted. Each case within 1 s and 100 MB.

#![cfg(unix)]

mod common;

use std::path::{Path, PathBuf};

use common::{accepted, inspect, refused, run, Input};
use nnmem::load::onnx::proto::{
    put_len_field, AttributeProto, Dimension, GraphProto, ModelProto, NodeMsg, OperatorSetIdProto, SparseTensorProto,
    TensorProto, TensorShapeProto, TypeProto, TypeTensor, ValueInfoProto,
};
use prost::Message;

fn model(graph: &GraphProto, sparse: &[SparseTensorProto]) -> Vec<u8> {
    let mut g = graph.encode_to_vec();
    for s in sparse {
        put_len_field(&mut g, 15, &s.encode_to_vec());
    }
    let mut bytes = ModelProto {
        ir_version: 8,
        producer_name: "hostile".into(),
        opset_import: vec![OperatorSetIdProto { domain: String::new(), version: 13 }],
    }
    .encode_to_vec();
    put_len_field(&mut bytes, 7, &g);
    bytes
}

fn node(name: &str, op: &str, inputs: &[&str], outputs: &[&str], attribute: Vec<AttributeProto>) -> NodeMsg {
    NodeMsg {
        input: inputs.iter().map(|s| s.to_string()).collect(),
        output: outputs.iter().map(|s| s.to_string()).collect(),
        name: name.into(),
        op_type: op.into(),
        attribute,
        ..Default::default()
    }
}

fn ints(name: &str, v: &[i64]) -> AttributeProto {
    AttributeProto { name: name.into(), ints: v.to_vec(), r#type: 7, ..Default::default() }
}

fn int(name: &str, v: i64) -> AttributeProto {
    AttributeProto { name: name.into(), i: v, r#type: 2, ..Default::default() }
}

fn value(name: &str, dims: &[i64]) -> ValueInfoProto {
    ValueInfoProto {
        name: name.into(),
        r#type: Some(TypeProto {
            tensor_type: Some(TypeTensor {
                elem_type: 1,
                shape: Some(TensorShapeProto {
                    dim: dims.iter().map(|&d| Dimension { dim_value: Some(d), dim_param: None }).collect(),
                }),
            }),
        }),
    }
}

fn weight(name: &str, dims: &[i64]) -> TensorProto {
    TensorProto { dims: dims.to_vec(), data_type: 1, name: name.into(), ..Default::default() }
}

/// One node reading x (and weights) into y.
fn one_node(n: NodeMsg, x: &[i64], weights: Vec<TensorProto>) -> GraphProto {
    GraphProto {
        name: "g".into(),
        node: vec![n],
        initializer: weights,
        input: vec![value("x", x)],
        output: vec![value("y", &[])],
        ..Default::default()
    }
}

fn write(dir: &tempfile::TempDir, name: &str, bytes: &[u8]) -> PathBuf {
    let p = dir.path().join(name);
    std::fs::write(&p, bytes).unwrap();
    p
}

#[test]
fn weights_that_contradict_attributes_or_inputs_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let conv = |k: &[i64], w: &[i64], group: i64| {
        let mut attrs = vec![int("group", group)];
        if !k.is_empty() {
            attrs.push(ints("kernel_shape", k));
        }
        model(&one_node(node("conv", "Conv", &["x", "w"], &["y"], attrs), &[1, 4, 8, 8], vec![weight("w", w)]), &[])
    };
    let cases: Vec<(&str, Vec<u8>, Vec<&str>)> = vec![
        // kernel_shape [5,5] with a 3x3 weight reported a 4x4 output.
        ("kernel.onnx", conv(&[5, 5], &[2, 4, 3, 3], 1), vec!["node \"conv\"", "kernel_shape [5,5] contradicts the weight \"w\" [2,4,3,3] (kernel [3,3])"]),
        ("channels.onnx", conv(&[3, 3], &[2, 5, 3, 3], 1), vec!["node \"conv\"", "input \"x\" [1,4,8,8] has 4 channels", "with group 1 takes 5"]),
        ("group.onnx", conv(&[3, 3], &[2, 4, 3, 3], 2), vec!["has 4 channels", "with group 2 takes 8"]),
        ("rank.onnx", conv(&[], &[2, 4, 3], 1), vec!["has rank 4", "rank 3"]),
        (
            "deconv.onnx",
            model(&one_node(node("up", "ConvTranspose", &["x", "w"], &["y"], vec![ints("kernel_shape", &[2, 2])]), &[1, 4, 8, 8], vec![weight("w", &[4, 2, 3, 3])]), &[]),
            vec!["node \"up\"", "kernel_shape [2,2] contradicts"],
        ),
        // A Gemm whose inner sizes are 10 and 30 under transB reported [1,20].
        (
            "gemm.onnx",
            model(&one_node(node("fc", "Gemm", &["x", "w"], &["y"], vec![int("transB", 1)]), &[1, 10], vec![weight("w", &[20, 30])]), &[]),
            vec!["node \"fc\"", "A \"x\" [1,10] gives 10 (transA = 0), B \"w\" [20,30] gives 30 (transB = 1)"],
        ),
        (
            "gemm_ta.onnx",
            model(&one_node(node("fc", "Gemm", &["x", "w"], &["y"], vec![int("transA", 1)]), &[10, 3], vec![weight("w", &[3, 4])]), &[]),
            vec!["A \"x\" [10,3] gives 10 (transA = 1)", "B \"w\" [3,4] gives 3"],
        ),
        (
            "matmul.onnx",
            model(&one_node(node("mm", "MatMul", &["x", "w"], &["y"], vec![]), &[2, 10], vec![weight("w", &[30, 4])]), &[]),
            vec!["node \"mm\"", "inner dimensions differ: A \"x\" [2,10] has 10, B \"w\" [30,4] has 30"],
        ),
    ];
    for (name, bytes, expected) in cases {
        let p = write(&dir, name, &bytes);
        let mut e = vec![name];
        e.extend(expected);
        refused(&inspect(&p, &[]), name, &e);
    }
    // The same ops, consistent: no false alarm.
    let fine: Vec<(&str, Vec<u8>)> = vec![
        ("conv_ok.onnx", conv(&[3, 3], &[2, 2, 3, 3], 2)),
        ("gemm_ok.onnx", model(&one_node(node("fc", "Gemm", &["x", "w"], &["y"], vec![int("transA", 1), int("transB", 1)]), &[10, 3], vec![weight("w", &[4, 10])]), &[])),
        ("matmul_ok.onnx", model(&one_node(node("mm", "MatMul", &["x", "w"], &["y"], vec![]), &[2, 5, 10], vec![weight("w", &[10])]), &[])),
    ];
    for (name, bytes) in fine {
        accepted(&inspect(&write(&dir, name, &bytes), &["--json"]), name, &[]);
    }
}

#[test]
fn sizes_past_64_bits_are_errors_never_zero_or_saturated() {
    let dir = tempfile::tempdir().unwrap();
    // A [2^31, 2^31] f32 weight: 2^62 elements, 2^64 bytes. It reported
    // param_bytes 0, so `--assert 'param_bytes < 1KiB'` passed.
    let g = one_node(node("custom", "Mish", &["x", "w"], &["y"], vec![]), &[1, 4], vec![weight("w", &[1 << 31, 1 << 31])]);
    let p = write(&dir, "w.onnx", &model(&g, &[]));
    refused(&inspect(&p, &["--assert", "param_bytes < 1KiB"]), "2^64-byte weight", &["initializer \"w\"", "overflow 64 bits of bytes"]);
    // An input of 2^63 bytes into a Relu: the peak (input and output live) was 2^64 − 1.
    let g = one_node(node("relu", "Relu", &["x"], &["y"], vec![]), &[1 << 61], vec![]);
    let p = write(&dir, "peak.onnx", &model(&g, &[]));
    refused(&inspect(&p, &["--json"]), "2^64-byte peak", &["peak.onnx", "add up to more than 2^64 bytes"]);
    // The same in a prototxt.
    let p = write(&dir, "peak.prototxt", b"input: 'data'\ninput_shape { dim: 2305843009213693952 }\nlayer { name: 'r' type: 'ReLU' bottom: 'data' top: 'r' }\n");
    refused(&inspect(&p, &[]), "2^64-byte prototxt peak", &["peak.prototxt", "add up to more than 2^64 bytes"]);
    let p = write(&dir, "ip.prototxt", b"input: 'data'\ninput_shape { dim: 1 dim: 1099511627776 }\nlayer { name: 'fc' type: 'InnerProduct' bottom: 'data' top: 'fc' inner_product_param { num_output: 1099511627776 } }\n");
    refused(&inspect(&p, &["--assert", "param_bytes < 1KiB"]), "2^80-element prototxt weight", &["tensor \"fc/weight\"", "overflows 64 bits"]);
    // 4 TiB of input is fine, until the settings keep billions of copies of it.
    let g = one_node(node("relu", "Relu", &["x"], &["y"], vec![]), &[1, 1 << 40], vec![]);
    let p = write(&dir, "big.onnx", &model(&g, &[]));
    accepted(&inspect(&p, &["--json"]), "4 TiB input", &[]);
    refused(&inspect(&p, &["--scenario", "style-transfer", "--optimizer", "lbfgs:4000000000"]), "lbfgs:4e9", &["could overflow 64 bits", "optimizer state copies"]);
    refused(&inspect(&p, &["--profile", "tiny-dnn", "--threads", "4294967295"]), "4e9 threads", &["could overflow 64 bits", "by 4294967295 worker threads"]);
}

#[test]
fn gate_and_budget_numbers_of_2_64_or_more_are_refused() {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/onnx/conv_chain.onnx");
    for gate in ["params < 18446744073709551616", "training.peak < 20EiB", "training.peak < 1e30", "param_bytes < 18446744073709551616B"] {
        let o = inspect(&p, &["--assert", gate]);
        assert_eq!(o.code, 2, "{gate}: {}", o.stderr);
        assert!(o.stderr.contains("2^64 or more"), "{gate}: {}", o.stderr);
    }
    // u64::MAX itself is a number nnmem can compare.
    accepted(&inspect(&p, &["--assert", "params < 18446744073709551615"]), "u64::MAX gate", &[]);
    for budget in ["20EiB", "18446744073709551616", "1e20"] {
        let o = run(&["fit".as_ref(), p.as_os_str(), "--budget".as_ref(), budget.as_ref()], Input::Null, true);
        assert_eq!(o.code, 2, "--budget {budget}: {}", o.stderr);
        assert!(o.stderr.contains("2^64 or more"), "--budget {budget}: {}", o.stderr);
    }
}

/// A valid sparse initializer was refused as "not produced by any node". It is
/// a parameter of its dense shape now, with a warning saying so.
#[test]
fn a_sparse_initializer_counts_at_its_dense_size() {
    let dir = tempfile::tempdir().unwrap();
    let sparse = SparseTensorProto {
        values: Some(weight("w", &[2])),
        indices: Some(TensorProto { dims: vec![2], data_type: 7, ..Default::default() }),
        dims: vec![4, 4],
    };
    let g = one_node(node("mm", "MatMul", &["x", "w"], &["y"], vec![]), &[1, 4], vec![]);
    let p = write(&dir, "sparse.onnx", &model(&g, &[sparse]));
    let o = inspect(&p, &["--json"]);
    accepted(&o, "sparse initializer", &["1 sparse initializer(s) (e.g. \"w\") are counted at their dense size"]);
    let v: serde_json::Value = serde_json::from_str(&o.stdout).unwrap();
    assert_eq!(v["totals"]["params"], 16, "{}", o.stdout);
}
