//! Hostile binary models — ONNX and .caffemodel — run through the real binary:
//! every case ends with exit 2 and a message naming the file and what was
//! wrong (or exit 0 where the file is in fact valid), never a panic or a hang,
//! under 100 MB (each run measured alone, tests/common/mod.rs; the "< 1 s" is
//! measured by scripts/hostile_timings.sh, not asserted here). Also: external-data locations are never opened,
//! inputs are never modified, and `-o` writes atomically and never over an
//! input.
//!
//! The files are built here, byte by byte or through nnmem's own reduced prost
//! schema, so nothing large is committed.

#![cfg(unix)]

mod common;

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use common::{fifo, inspect as run_path, inspect_with as run_path_with, takes_linear_time, within_bounds, Outcome};
use nnmem::load::onnx::proto::{
    put_len_field, put_varint, Dimension, GraphProto, ModelProto, NodeMsg, OperatorSetIdProto, StringStringEntryProto,
    TensorProto, TensorShapeProto, TypeProto, TypeTensor, ValueInfoProto,
};
use prost::Message;

fn nnmem() -> Command {
    let mut c = Command::cargo_bin("nnmem").unwrap();
    // A command that blocks (say, on a FIFO it should never have opened) fails
    // the test instead of hanging it: a hang guard, not a performance limit.
    c.timeout(common::HANG_LIMIT);
    c
}

/// Writes `bytes` as `<dir>/<name>` and runs `nnmem inspect` on it.
fn run_bytes(name: &str, bytes: &[u8], extra: &[&str]) -> Outcome {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join(name);
    std::fs::write(&p, bytes).unwrap();
    run_path(&p, extra)
}

/// Exit 2, one `nnmem: error:` line naming the file, containing every `expected` piece.
fn rejects(name: &str, bytes: &[u8], expected: &[&str]) {
    let o = run_bytes(name, bytes, &[]);
    assert_eq!(o.code, 2, "{name}: expected exit 2: {}", o.stderr);
    assert!(o.stderr.starts_with("nnmem: error: "), "{name}: {}", o.stderr);
    assert!(o.stderr.contains(name), "{name}: the message does not name the file: {}", o.stderr);
    for e in expected {
        assert!(o.stderr.contains(e), "{name}: stderr {:?} lacks {e:?}", o.stderr);
    }
    within_bounds(&o, name);
}

/// Exit 0 (the file is valid), with each `expected` piece in a warning.
fn accepts(name: &str, bytes: &[u8], extra: &[&str], expected: &[&str]) -> Outcome {
    let o = run_bytes(name, bytes, extra);
    assert_eq!(o.code, 0, "{name}: expected exit 0: {}", o.stderr);
    for e in expected {
        assert!(o.stderr.contains(e), "{name}: stderr {:?} lacks {e:?}", o.stderr);
    }
    within_bounds(&o, name);
    o
}

fn fixture(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures").join(rel)
}

// ---- building ONNX files ----

fn model(graph: &GraphProto) -> Vec<u8> {
    let mut bytes = ModelProto {
        ir_version: 8,
        producer_name: "hostile".into(),
        opset_import: vec![OperatorSetIdProto { domain: String::new(), version: 13 }],
    }
    .encode_to_vec();
    put_len_field(&mut bytes, 7, &graph.encode_to_vec());
    bytes
}

fn node(name: &str, op: &str, inputs: &[&str], outputs: &[&str]) -> NodeMsg {
    NodeMsg {
        input: inputs.iter().map(|s| s.to_string()).collect(),
        output: outputs.iter().map(|s| s.to_string()).collect(),
        name: name.into(),
        op_type: op.into(),
        ..Default::default()
    }
}

/// A float value with these dims (`None`: a named symbolic dim).
fn value(name: &str, dims: &[Option<i64>]) -> ValueInfoProto {
    ValueInfoProto {
        name: name.into(),
        r#type: Some(TypeProto {
            tensor_type: Some(TypeTensor {
                elem_type: 1,
                shape: Some(TensorShapeProto {
                    dim: dims
                        .iter()
                        .enumerate()
                        .map(|(i, d)| match d {
                            Some(v) => Dimension { dim_value: Some(*v), dim_param: None },
                            None => Dimension { dim_value: None, dim_param: Some(format!("s{i}")) },
                        })
                        .collect(),
                }),
            }),
        }),
    }
}

fn fixed(dims: &[i64]) -> Vec<Option<i64>> {
    dims.iter().map(|&d| Some(d)).collect()
}

fn relu_graph(input_dims: &[i64]) -> GraphProto {
    GraphProto {
        name: "g".into(),
        node: vec![node("relu", "Relu", &["x"], &["y"])],
        input: vec![value("x", &fixed(input_dims))],
        output: vec![value("y", &[])],
        ..Default::default()
    }
}

fn initializer(name: &str, dims: &[i64]) -> TensorProto {
    TensorProto { dims: dims.to_vec(), data_type: 1, name: name.into(), ..Default::default() }
}

fn external(name: &str, dims: &[i64], location: &str) -> TensorProto {
    TensorProto {
        external_data: vec![StringStringEntryProto { key: "location".into(), value: location.into() }],
        data_location: 1,
        ..initializer(name, dims)
    }
}

/// ir_version 8 then a graph field holding `graph_payload` verbatim.
fn raw_model(graph_payload: &[u8]) -> Vec<u8> {
    let mut bytes = vec![0x08, 0x08];
    put_len_field(&mut bytes, 7, graph_payload);
    bytes
}

fn xorshift(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

// ---- ONNX: the wire format ----

#[test]
fn onnx_a_valid_model_is_within_bounds() {
    accepts("relu.onnx", &model(&relu_graph(&[1, 3, 8, 8])), &[], &[]);
}

#[test]
fn onnx_truncated_at_many_offsets() {
    let full = std::fs::read(fixture("onnx/conv_chain.onnx")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("cut.onnx");
    // Every cut through the header and graph structure, then every 641st byte through the weights.
    let cuts: Vec<usize> = (1..120).step_by(3).chain((120..full.len()).step_by(641)).collect();
    for &cut in &cuts {
        std::fs::write(&p, &full[..cut]).unwrap();
        let o = run_path(&p, &[]);
        // A cut between two fields leaves a shorter valid message: exit 0 is right then.
        assert!(o.code == 0 || o.code == 2, "cut at {cut}: exit {} {}", o.code, o.stderr);
        if o.code == 2 {
            assert!(o.stderr.contains("cut.onnx"), "cut at {cut}: {}", o.stderr);
        }
        within_bounds(&o, &format!("cut at {cut}"));
    }
    std::fs::write(&p, &full[..full.len() / 2]).unwrap();
    let o = run_path(&p, &[]);
    assert_eq!(o.code, 2);
    assert!(o.stderr.contains("cut.onnx") && o.stderr.contains("runs past the end of the data"), "{}", o.stderr);
}

#[test]
fn onnx_random_bytes() {
    let mut state = 0x2545_F491_4F6C_DD1Du64;
    for round in 0..16 {
        let len = 64 + (xorshift(&mut state) % 4096) as usize;
        let mut bytes: Vec<u8> = (0..len).map(|_| xorshift(&mut state) as u8).collect();
        // Half the rounds look like ONNX at first (ir_version, then a graph field of plausible length).
        if round % 2 == 0 {
            let body = bytes.split_off(4);
            bytes = raw_model(&body);
        }
        let o = run_bytes("random.onnx", &bytes, &[]);
        assert!(o.code == 0 || o.code == 2, "round {round}: exit {} {}", o.code, o.stderr);
        within_bounds(&o, &format!("round {round}"));
    }
}

#[test]
fn onnx_wrong_wire_types() {
    // The graph (field 7) as a varint.
    rejects("graph_varint.onnx", &[0x08, 0x08, 0x38, 0x01], &["ModelProto.graph (field 7) has the wrong wire type"]);
    // A node (GraphProto field 1) as a fixed32.
    let mut g = vec![0x0d, 1, 2, 3, 4];
    rejects("node_fixed32.onnx", &raw_model(&g), &["GraphProto field 1 has the wrong wire type"]);
    // A node whose op_type (NodeMsg field 4, a string) is a varint.
    g.clear();
    put_len_field(&mut g, 1, &[0x20, 0x05]);
    rejects("op_type_varint.onnx", &raw_model(&g), &["graph node", "invalid wire type"]);
    // A group (wire type 3) at the top level.
    rejects("group.onnx", &[0x08, 0x08, 0x3b, 0x3c], &["unsupported wire type"]);
    // ir_version as a string: prost refuses the header.
    let mut bytes = Vec::new();
    put_len_field(&mut bytes, 1, b"eight");
    put_len_field(&mut bytes, 7, &[]);
    rejects("ir_string.onnx", &bytes, &["not a valid ONNX model", "invalid wire type"]);
}

#[test]
fn onnx_lengths_larger_than_the_file() {
    // The graph claims 1000 bytes; 3 follow.
    let mut bytes = vec![0x08, 0x08, 0x3a];
    put_varint(&mut bytes, 1000);
    bytes.extend_from_slice(&[0x0a, 0x00, 0x12]);
    rejects("long_graph.onnx", &bytes, &["runs past the end of the data"]);
    // A length of 2^62 and one of 2^64 - 1.
    for (name, len) in [("len_2_62.onnx", 1u64 << 62), ("len_max.onnx", u64::MAX)] {
        let mut bytes = vec![0x08, 0x08, 0x3a];
        put_varint(&mut bytes, len);
        bytes.push(0);
        rejects(name, &bytes, &["not a valid ONNX protobuf"]);
    }
    // A varint that never ends.
    rejects("endless_varint.onnx", &[0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff], &["varint"]);
}

#[test]
fn onnx_one_gigabyte_string_lengths_allocate_nothing() {
    const GB: u64 = 1 << 30;
    // The model's producer_name claims 1 GB.
    let mut bytes = vec![0x08, 0x08, 0x12];
    put_varint(&mut bytes, GB);
    bytes.extend_from_slice(b"abc");
    rejects("gb_producer.onnx", &bytes, &["not a valid ONNX protobuf", "runs past the end of the data"]);
    // A node field of the graph claims 1 GB.
    let mut g = vec![0x0a];
    put_varint(&mut g, GB);
    g.extend_from_slice(b"abc");
    rejects("gb_node.onnx", &raw_model(&g), &["the graph is not valid protobuf", "runs past the end of the data"]);
    // Inside a well-framed node, its name claims 1 GB.
    let mut n = vec![0x1a];
    put_varint(&mut n, GB);
    n.extend_from_slice(b"abc");
    let mut g = Vec::new();
    put_len_field(&mut g, 1, &n);
    rejects("gb_node_name.onnx", &raw_model(&g), &["graph node"]);
    // An initializer's name, and a value_info's dim_param, each claiming 1 GB.
    for (name, field) in [("gb_initializer.onnx", 5u32), ("gb_input.onnx", 11)] {
        let inner_field = if field == 5 { 0x42 } else { 0x0a };
        let mut t = vec![inner_field];
        put_varint(&mut t, GB);
        t.extend_from_slice(b"w");
        let mut g = Vec::new();
        put_len_field(&mut g, field, &t);
        rejects(name, &raw_model(&g), &["graph "]);
    }
}

/// Subgraphs nested 100,000 deep (node → attribute `g` → graph → node …): the
/// decoder's recursion limit refuses them; nothing overflows the stack.
#[test]
fn onnx_deep_subgraph_nesting() {
    // Lengths inside out, then the prefixes outside in: linear in the depth.
    const DEPTH: usize = 100_000;
    let varint_len = |v: usize| {
        let mut b = Vec::new();
        put_varint(&mut b, v as u64);
        b.len()
    };
    let (mut graph_len, mut lens) = (0usize, Vec::with_capacity(DEPTH));
    for _ in 0..DEPTH {
        let attr = 6 + 1 + varint_len(graph_len) + graph_len;
        let node = 4 + 1 + varint_len(attr) + attr;
        lens.push((graph_len, attr, node));
        graph_len = 1 + varint_len(node) + node;
    }
    let mut graph = Vec::with_capacity(graph_len);
    for &(inner, attr, node) in lens.iter().rev() {
        graph.push(0x0a); // GraphProto.node
        put_varint(&mut graph, node as u64);
        graph.extend_from_slice(&[0x22, 2, b'I', b'f']); // NodeMsg.op_type
        graph.push(0x2a); // NodeMsg.attribute
        put_varint(&mut graph, attr as u64);
        graph.extend_from_slice(&[0x0a, 4, b'b', b'o', b'd', b'y']); // AttributeProto.name
        graph.push(0x32); // AttributeProto.g
        put_varint(&mut graph, inner as u64);
    }
    assert_eq!(graph.len(), graph_len);
    rejects("deep.onnx", &raw_model(&graph), &["graph node", "recursion limit"]);
}

/// Found by fuzzing (onnx_graph), from fixtures/onnx/control_flow.onnx: an If
/// branch reads an outer name that does not exist ("inp!t") and tract panics
/// ("no entry found for key"). nnmem catches it and warns; the bug was the
/// default panic hook printing "thread 'main' panicked at …" and a backtrace.
const TRACT_PANIC: &[u8] = &[
    0x08, 0x08, 0x12, 0x0e, 0x6e, 0x6e, 0x6d, 0x65, 0x6d, 0x2d, 0x66, 0x69, 0x78, 0x74, 0x75, 0x72, 0x65, 0x73, 0x3a, 0xa5, 0x02, 0x0a, 0x15, 0x0a,
    0x05, 0x69, 0x6e, 0x70, 0x75, 0x74, 0x12, 0x01, 0x72, 0x1a, 0x03, 0x70, 0x72, 0x65, 0x22, 0x04, 0x52, 0x65, 0x6c, 0x75, 0x0a, 0xb1, 0x01, 0x0a,
    0x04, 0x63, 0x6f, 0x6e, 0x64, 0x12, 0x01, 0x79, 0x3a, 0x06, 0x62, 0x72, 0x61, 0x6e, 0x63, 0x68, 0x22, 0x02, 0x49, 0x66, 0x2a, 0x55, 0x0a, 0x0b,
    0x65, 0x6c, 0x73, 0x65, 0x5f, 0x62, 0x72, 0x61, 0x6e, 0x63, 0x68, 0x32, 0x43, 0x0a, 0x2b, 0x0a, 0x26, 0x69, 0x6e, 0x70, 0x75, 0x74, 0x0a, 0x05,
    0x69, 0x6e, 0x70, 0x21, 0x74, 0x12, 0x06, 0x65, 0x6c, 0x73, 0x65, 0x5f, 0x79, 0x22, 0x06, 0x43, 0x6f, 0x6e, 0x63, 0x00, 0x74, 0x2a, 0x0b, 0x0a,
    0x04, 0x61, 0x78, 0x69, 0x73, 0x18, 0x01, 0xa0, 0x01, 0x02, 0x12, 0x04, 0x65, 0x6c, 0x73, 0x65, 0x62, 0x0e, 0x0a, 0x06, 0x65, 0x6c, 0x73, 0x65,
    0x5f, 0x79, 0x12, 0x04, 0x0a, 0x02, 0x08, 0x03, 0xa0, 0x01, 0x05, 0x2a, 0x43, 0x0a, 0x0b, 0x74, 0x68, 0x65, 0x6e, 0x5f, 0x62, 0x72, 0x61, 0x6e,
    0x63, 0x68, 0x32, 0x31, 0x0a, 0x19, 0x0a, 0x05, 0x69, 0x6e, 0x70, 0x75, 0x74, 0x12, 0x06, 0x74, 0x68, 0x65, 0x6e, 0x5f, 0x79, 0x22, 0x08, 0x49,
    0x64, 0x65, 0x6e, 0x74, 0x69, 0x74, 0x79, 0x12, 0x04, 0x74, 0x68, 0x65, 0x6e, 0x62, 0x0e, 0x0a, 0x06, 0x74, 0x68, 0x65, 0x6e, 0x5f, 0x79, 0x12,
    0x04, 0x0a, 0x02, 0x08, 0x01, 0xa0, 0x01, 0x05, 0x0a, 0x14, 0x0a, 0x01, 0x79, 0x12, 0x03, 0x6f, 0x75, 0x74, 0x1a, 0x04, 0x70, 0x6f, 0x73, 0x74,
    0x22, 0x04, 0x52, 0x69, 0x6c, 0x75, 0x12, 0x0c, 0x63, 0x6f, 0x6e, 0x74, 0x72, 0x6f, 0x6c, 0x5f, 0x66, 0x6c, 0x6f, 0x77, 0x5a, 0x17, 0x0a, 0x05,
    0x69, 0x6e, 0x70, 0x75, 0x74, 0x12, 0x0e, 0x0a, 0x0c, 0x08, 0x01, 0x12, 0x08, 0x0a, 0x02, 0x08, 0x01, 0x0a, 0x02, 0x08, 0x04, 0x5a, 0x0e, 0x0a,
    0x04, 0x63, 0x6f, 0x6e, 0x64, 0x12, 0x06, 0x0a, 0x04, 0x08, 0x19, 0x12, 0x00, 0x62, 0x0b, 0x0a, 0x03, 0x6f, 0x75, 0x74, 0x12, 0x04, 0x0a, 0x02,
    0x08, 0x27, 0x42, 0x04, 0x0a, 0x00, 0x10, 0x11,
];

#[test]
fn onnx_tract_panic_is_a_quiet_warning() {
    let o = accepts("if_ghost.onnx", TRACT_PANIC, &[], &["tract's shape analysis crashed"]);
    assert!(!o.stderr.contains("panicked") && !o.stderr.contains("stack backtrace"), "{}", o.stderr);
}

#[test]
fn onnx_no_graph_and_empty_file() {
    rejects("no_graph.onnx", &[0x08, 0x08], &["holds no graph"]);
    rejects("empty.onnx", &[], &["empty"]);
}

// ---- ONNX: the graph ----

#[test]
fn onnx_cycles_are_refused() {
    let mut g = relu_graph(&[1, 4]);
    g.node = vec![node("a", "Add", &["x", "b_out"], &["a_out"]), node("b", "Relu", &["a_out"], &["b_out"])];
    g.output = vec![value("b_out", &[])];
    rejects("cycle.onnx", &model(&g), &["node \"a\"", "is part of a cycle"]);
    // A node reading its own output.
    g.node = vec![node("selfish", "Add", &["x", "loop"], &["loop"])];
    g.output = vec![value("loop", &[])];
    rejects("self_loop.onnx", &model(&g), &["node \"selfish\"", "is part of a cycle"]);
}

#[test]
fn onnx_inputs_that_never_exist_and_double_definitions() {
    let mut g = relu_graph(&[1, 4]);
    g.node.push(node("late", "Add", &["y", "ghost"], &["z"]));
    rejects("ghost.onnx", &model(&g), &["node \"late\"", "input \"ghost\" is not produced by any node"]);
    // An unnamed node is located by its index and op type.
    g.node[1].name.clear();
    rejects("ghost_unnamed.onnx", &model(&g), &["node #1 (Add)", "\"ghost\""]);
    // Two nodes writing one value.
    let mut g = relu_graph(&[1, 4]);
    g.node.push(node("again", "Relu", &["x"], &["y"]));
    rejects("twice.onnx", &model(&g), &["node \"again\"", "output \"y\" is already defined"]);
}

#[test]
fn onnx_absurd_dims() {
    // Inputs of 2^62 × 2^62 (elements overflow u64) and 2^62 × 4 (bytes overflow): sizes that
    // cannot be counted are refused, as the Caffe loader does, never wrapped or shown as 0 B.
    for dims in [[1i64 << 62, 1 << 62, 1, 1], [1 << 62, 4, 1, 1], [i64::MAX, i64::MAX, i64::MAX, i64::MAX]] {
        rejects("huge_input.onnx", &model(&relu_graph(&dims)), &["input \"x\"", "overflows 64 bits of bytes"]);
    }
    // Bound on the command line instead.
    let o = run_bytes("relu.onnx", &model(&relu_graph(&[1, 4, 1, 1])), &["--input", "x=4611686018427387904x4x1x1"]);
    assert_eq!(o.code, 2, "{}", o.stderr);
    assert!(o.stderr.contains("relu.onnx") && o.stderr.contains("overflows 64 bits of bytes"), "{}", o.stderr);
    within_bounds(&o, "--input 2^62");
    // An initializer of 2^62 × 2^62 elements: an error naming it (it was a warning and
    // counted as 0 bytes, so `--assert 'param_bytes < 1KiB'` passed), whoever reads it.
    let mut g = relu_graph(&[1, 4]);
    g.node = vec![node("custom", "NotAnOnnxOp", &["x", "w"], &["y"])];
    g.initializer = vec![initializer("w", &[1 << 62, 1 << 62])];
    rejects("huge_weight.onnx", &model(&g), &["initializer \"w\"", "overflow 64 bits of bytes"]);
    g.node = vec![node("mm", "MatMul", &["x", "w"], &["y"])];
    rejects("huge_matmul.onnx", &model(&g), &["initializer \"w\"", "overflow 64 bits of bytes"]);
    // A PRelu slope whose element count wraps to exactly 1 modulo 2^64 ((2^63-1)^2 = 2^126 - 2^64 + 1).
    let o = run_bytes("wrapping_prelu.onnx", &model(&wrapping_prelu()), &[]);
    assert!(o.code == 0 || o.code == 2, "{}", o.stderr);
    within_bounds(&o, "wrapping prelu");
}

fn wrapping_prelu() -> GraphProto {
    let mut g = relu_graph(&[1, 3, 4, 4]);
    g.node = vec![node("prelu", "PRelu", &["x", "slope"], &["y"])];
    g.initializer = vec![initializer("slope", &[i64::MAX, i64::MAX])];
    g
}

/// Regression: the slope's element count was an unchecked product; wrapped to 1,
/// it made the slope look channel-shared (and panicked with overflow checks on).
/// A weight whose size overflows is refused now, before any op reads it.
#[test]
fn onnx_prelu_slope_count_is_not_wrapped() {
    let e = nnmem::load::onnx::load_onnx_bytes(Path::new("p.onnx"), &model(&wrapping_prelu()), &Default::default()).unwrap_err();
    assert!(e.to_string().contains("initializer \"slope\"") && e.to_string().contains("overflow 64 bits"), "{e}");
}

#[test]
fn onnx_negative_and_zero_dims() {
    let mut g = relu_graph(&[1, 4]);
    g.node = vec![node("mm", "MatMul", &["x", "w"], &["y"])];
    g.initializer = vec![initializer("w", &[4, -3])];
    rejects("negative_weight.onnx", &model(&g), &["initializer \"w\"", "dimension -3 is negative"]);
    g.initializer = vec![initializer("w", &[i64::MIN, 2])];
    rejects("min_weight.onnx", &model(&g), &["initializer \"w\"", "is negative"]);
    // A negative input dim is not a size: the input stays unsized (a symbol), exit 0.
    accepts("negative_input.onnx", &model(&relu_graph(&[-5, 4])), &[], &[]);
    // Zero-sized tensors are legal ONNX: exit 0, zero bytes.
    accepts("zero_input.onnx", &model(&relu_graph(&[0, 4])), &["--json"], &[]);
    let mut g = relu_graph(&[1, 4]);
    g.node = vec![node("mm", "MatMul", &["x", "w"], &["y"])];
    g.initializer = vec![initializer("w", &[4, 0])];
    accepts("zero_weight.onnx", &model(&g), &[], &[]);
    // A zero-width input with 2^40 × 2^40 leading dims (0 elements) into a padded Conv: the
    // memory pass's padded-input estimate must not multiply the leading dims unchecked.
    let ints = |name: &str, v: &[i64]| nnmem::load::onnx::proto::AttributeProto {
        name: name.into(),
        ints: v.to_vec(),
        r#type: 7, // INTS
        ..Default::default()
    };
    let mut g = relu_graph(&[1 << 40, 1 << 40, 3, 0]);
    let mut conv = node("conv", "Conv", &["x", "w"], &["y"]);
    conv.attribute = vec![ints("kernel_shape", &[1, 1]), ints("pads", &[0, 1, 0, 1])];
    g.node = vec![conv];
    g.initializer = vec![initializer("w", &[1, 1 << 40, 1, 1])];
    let o = run_bytes("zero_width_conv.onnx", &model(&g), &["--json"]);
    assert_eq!(o.code, 0, "an empty input is a valid input: {}", o.stderr);
    within_bounds(&o, "zero-width conv");
    // --input with a dimension beyond i64 is a usage error.
    let o = run_bytes("relu.onnx", &model(&relu_graph(&[1, 4])), &["--input", "x=18446744073709551615x4"]);
    assert_eq!(o.code, 2, "{}", o.stderr);
    assert!(o.stderr.contains("too large"), "{}", o.stderr);
    within_bounds(&o, "--input too large");
}

/// A chain of `n` Relu nodes.
fn chain(n: usize) -> Vec<u8> {
    let mut g = relu_graph(&[1, 4]);
    g.node = (0..n)
        .map(|i| {
            let input = if i == 0 { "x".to_string() } else { format!("v{}", i - 1) };
            NodeMsg { input: vec![input], output: vec![format!("v{i}")], op_type: "Relu".into(), ..Default::default() }
        })
        .collect();
    g.output = vec![value(&format!("v{}", n - 1), &[])];
    model(&g)
}

#[test]
fn onnx_many_nodes_take_linear_time() {
    let dir = tempfile::tempdir().unwrap();
    // Ten times the nodes: well under a hundred times the time (quadratic would be 100×).
    takes_linear_time("chained nodes", 2_000, 20_000, 30, |n| {
        let p = dir.path().join("chain.onnx");
        std::fs::write(&p, chain(n)).unwrap();
        let o = run_path_with(&p, &["--json"], false);
        assert_eq!(o.code, 0, "{n} nodes: {}", o.stderr);
        assert!(!o.stderr.contains("panicked"));
        o
    });
}

/// Writes a model of `n` nodes, each reading an input that never exists,
/// straight to a file: the test process itself stays small, which matters
/// because a child's measured peak RSS is never below its parent's at spawn.
fn write_dangling_nodes(path: &Path, n: usize) {
    use std::io::Write;
    let node_bytes = |i: usize| {
        NodeMsg { input: vec![format!("missing{i}")], output: vec![format!("v{i}")], op_type: "Relu".into(), ..Default::default() }
            .encode_to_vec()
    };
    let framed = |payload: &[u8]| {
        let mut v = Vec::new();
        put_len_field(&mut v, 1, payload);
        v
    };
    let rest = GraphProto { node: Vec::new(), ..relu_graph(&[1, 4]) }.encode_to_vec();
    let graph_len = rest.len() + (0..n).map(|i| framed(&node_bytes(i)).len()).sum::<usize>();
    let mut w = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    let mut head = model(&GraphProto::default());
    head.truncate(head.len() - 2); // drop the empty graph field (key 0x3a, length 0)
    head.push(0x3a);
    put_varint(&mut head, graph_len as u64);
    w.write_all(&head).unwrap();
    for i in 0..n {
        w.write_all(&framed(&node_bytes(i))).unwrap();
    }
    w.write_all(&rest).unwrap();
    w.flush().unwrap();
}

#[test]
fn onnx_a_million_nodes_are_refused_before_decoding() {
    // 100,000 nodes are decoded (and the dangling input reported); a million are
    // over nnmem's node limit and refused from a count of the graph's fields.
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("dangling100000.onnx");
    write_dangling_nodes(&p, 100_000);
    let o = run_path(&p, &[]);
    assert_eq!(o.code, 2, "{}", o.stderr);
    assert!(o.stderr.contains("node #0 (Relu)") && o.stderr.contains("\"missing0\""), "{}", o.stderr);
    within_bounds(&o, "100000 dangling nodes");

    let p = dir.path().join("dangling1000000.onnx");
    write_dangling_nodes(&p, 1_000_000);
    let o = run_path(&p, &[]);
    assert_eq!(o.code, 2, "{}", o.stderr);
    assert!(o.stderr.contains("dangling1000000.onnx") && o.stderr.contains("nnmem refuses models this large"), "{}", o.stderr);
    assert!(!o.stderr.contains("panicked"));
    within_bounds(&o, &format!("1000000 nodes ({} bytes)", std::fs::metadata(&p).unwrap().len()));
}

/// Shapes of hostile files that used to cost quadratic time (each fixed): many
/// graph inputs (a linear search per input), many distinct unknown op types (a
/// linear search per node), one node reading many distinct weights (a linear
/// search per weight).
#[test]
fn onnx_wide_files_take_linear_time() {
    let many_inputs = |n: usize| {
        let mut g = relu_graph(&[1, 4]);
        g.input = (0..n).map(|i| value(&format!("x{i}"), &fixed(&[1, 4]))).collect();
        g.node = vec![node("relu", "Relu", &["x0"], &["y"])];
        model(&g)
    };
    let many_op_types = |n: usize| {
        let mut g = relu_graph(&[1, 4]);
        g.node = (0..n)
            .map(|i| {
                let input = if i == 0 { "x".to_string() } else { format!("v{}", i - 1) };
                NodeMsg { input: vec![input], output: vec![format!("v{i}")], op_type: format!("Op{i}"), ..Default::default() }
            })
            .collect();
        g.output = vec![value(&format!("v{}", n - 1), &[])];
        model(&g)
    };
    let many_weights = |n: usize| {
        let mut g = relu_graph(&[1, 4]);
        g.initializer = (0..n).map(|i| initializer(&format!("w{i}"), &[1, 4])).collect();
        let mut inputs = vec!["x".to_string()];
        inputs.extend((0..n).map(|i| format!("w{i}")));
        g.node = vec![NodeMsg { input: inputs, output: vec!["y".into()], op_type: "Concat".into(), ..Default::default() }];
        model(&g)
    };
    let dir = tempfile::tempdir().unwrap();
    let cases: [(&str, &dyn Fn(usize) -> Vec<u8>, usize); 3] =
        [("inputs", &many_inputs, 40_000), ("op types", &many_op_types, 40_000), ("weights", &many_weights, 40_000)];
    for (what, build, n) in cases {
        // Eight times the size: quadratic would be 64 times the time.
        takes_linear_time(what, n / 8, n, 20, |n| {
            let p = dir.path().join("wide.onnx");
            std::fs::write(&p, build(n)).unwrap();
            let o = run_path_with(&p, &[], false);
            assert_eq!(o.code, 0, "{n} {what}: {}", o.stderr);
            assert!(!o.stderr.contains("panicked"));
            o
        });
    }
}

// ---- .caffemodel ----

fn caffe_blob(dims: &[i64]) -> Vec<u8> {
    let mut shape = Vec::new();
    let mut packed = Vec::new();
    for &d in dims {
        put_varint(&mut packed, d as u64);
    }
    put_len_field(&mut shape, 1, &packed);
    let mut blob = Vec::new();
    put_len_field(&mut blob, 7, &shape);
    // A few floats of payload (field 5), which must never be read.
    put_len_field(&mut blob, 5, &[0u8; 16]);
    blob
}

fn caffe_layer(name: &str, ty: &str, blobs: &[Vec<u8>]) -> Vec<u8> {
    let mut l = Vec::new();
    put_len_field(&mut l, 1, name.as_bytes());
    put_len_field(&mut l, 2, ty.as_bytes());
    for b in blobs {
        put_len_field(&mut l, 7, b);
    }
    let mut net = Vec::new();
    put_len_field(&mut net, 100, &l);
    net
}

fn caffemodel() -> Vec<u8> {
    let mut net = Vec::new();
    put_len_field(&mut net, 1, b"tiny");
    net.extend(caffe_layer("conv1", "Convolution", &[caffe_blob(&[4, 3, 3, 3]), caffe_blob(&[4])]));
    net.extend(caffe_layer("fc", "InnerProduct", &[caffe_blob(&[2, 4])]));
    net
}

#[test]
fn caffemodel_valid_and_truncated() {
    accepts("tiny.caffemodel", &caffemodel(), &[], &["holds weights only"]);
    let full = caffemodel();
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("cut.caffemodel");
    for cut in 1..full.len() {
        std::fs::write(&p, &full[..cut]).unwrap();
        let o = run_path(&p, &[]);
        assert!(o.code == 0 || o.code == 2, "cut at {cut}: exit {} {}", o.code, o.stderr);
        if o.code == 2 {
            assert!(o.stderr.contains("cut.caffemodel") && o.stderr.contains("not a valid caffemodel"), "cut at {cut}: {}", o.stderr);
        }
        within_bounds(&o, &format!("cut at {cut}"));
    }
}

#[test]
fn caffemodel_hostile_fields() {
    // Random bytes.
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    for round in 0..8 {
        let bytes: Vec<u8> = (0..2048).map(|_| xorshift(&mut state) as u8).collect();
        let o = run_bytes("random.caffemodel", &bytes, &[]);
        assert!(o.code == 0 || o.code == 2, "round {round}: {}", o.stderr);
        within_bounds(&o, &format!("round {round}"));
    }
    // A layer (field 100) claiming 1 GB; a name claiming 2^62.
    let mut bytes = Vec::new();
    put_varint(&mut bytes, (100 << 3) | 2);
    put_varint(&mut bytes, 1 << 30);
    bytes.extend_from_slice(b"abc");
    rejects("gb_layer.caffemodel", &bytes, &["not a valid caffemodel"]);
    let mut bytes = vec![0x0a];
    put_varint(&mut bytes, 1 << 62);
    rejects("huge_name.caffemodel", &bytes, &["not a valid caffemodel"]);
    // The layer's name (a string) sent as a varint.
    let mut bytes = Vec::new();
    put_len_field(&mut bytes, 100, &[0x08, 0x01]);
    rejects("wire.caffemodel", &bytes, &["not a valid caffemodel"]);
    // A negative blob dim, in both the shape and the legacy 4-D header.
    rejects("negative.caffemodel", &caffe_layer("conv1", "Convolution", &[caffe_blob(&[4, -3, 3, 3])]), &["layer \"conv1\"", "negative dimension"]);
    let mut legacy = Vec::new();
    for (field, v) in [(1u32, 1u64), (2, (-2i64) as u64), (3, 3), (4, 3)] {
        put_varint(&mut legacy, u64::from(field << 3));
        put_varint(&mut legacy, v);
    }
    rejects("legacy_negative.caffemodel", &caffe_layer("ip", "InnerProduct", &[legacy]), &["layer \"ip\"", "negative dimension"]);
    // Blobs of 2^62 × 2^62 elements: a valid file whose count cannot be summed; never wrapped.
    let o = run_bytes(
        "huge.caffemodel",
        &caffe_layer("fc", "InnerProduct", &[caffe_blob(&[1 << 62, 1 << 62]), caffe_blob(&[1 << 62, 8])]),
        &["--json"],
    );
    assert!(o.code == 0 || o.code == 2, "{}", o.stderr);
    within_bounds(&o, "huge blobs");
}

#[test]
fn caffemodel_weights_checked_against_a_prototxt_with_absurd_blobs() {
    let dir = tempfile::tempdir().unwrap();
    let proto = dir.path().join("net.prototxt");
    std::fs::write(
        &proto,
        "input: 'data'\ninput_shape { dim: 1 dim: 3 dim: 8 dim: 8 }\n\
         layer { name: 'fc' type: 'InnerProduct' bottom: 'data' top: 'fc' inner_product_param { num_output: 2 } }\n",
    )
    .unwrap();
    let weights = dir.path().join("w.caffemodel");
    // The prototxt implies a [2,192] weight (384 elements). The stored 4-D blob's element count
    // overflows u64 and wraps to exactly 384 ((2^63-1)^2 = 1 mod 2^64): a mismatch, not a match.
    std::fs::write(&weights, caffe_layer("fc", "InnerProduct", &[caffe_blob(&[i64::MAX, i64::MAX, 384, 1]), caffe_blob(&[2])]))
        .unwrap();
    let o = run_path(&proto, &["--weights", weights.to_str().unwrap()]);
    assert_eq!(o.code, 0, "{}", o.stderr);
    assert!(o.stderr.contains("weights: layer \"fc\""), "{}", o.stderr);
    within_bounds(&o, "--weights");
}

/// `--weights` used to match stored layers to prototxt layers by linear search
/// both ways (20,000 layers: 1.2 s); by name now.
#[test]
fn caffemodel_weights_of_many_layers_take_linear_time() {
    let dir = tempfile::tempdir().unwrap();
    let measure = |n: usize| {
        let proto = dir.path().join("wide.prototxt");
        let mut text = String::from("input: 'data'\ninput_shape { dim: 1 dim: 4 }\n");
        let mut weights = Vec::new();
        for i in 0..n {
            text.push_str(&format!(
                "layer {{ name: 'f{i}' type: 'InnerProduct' bottom: 'data' top: 'v{i}' inner_product_param {{ num_output: 2 bias_term: false }} }}\n"
            ));
            weights.extend(caffe_layer(&format!("f{i}"), "InnerProduct", &[caffe_blob(&[2, 4])]));
        }
        std::fs::write(&proto, text).unwrap();
        let w = dir.path().join("wide.caffemodel");
        std::fs::write(&w, weights).unwrap();
        let o = run_path_with(&proto, &["--weights", w.to_str().unwrap()], false);
        assert_eq!(o.code, 0, "{}", o.stderr);
        assert!(!o.stderr.contains("weights: layer"), "the blobs match: {}", o.stderr);
        o
    };
    // Eight times the layers: quadratic would be 64 times the time.
    takes_linear_time("--weights layers", 2_500, 20_000, 20, measure);
}

/// A prototxt case (here since the days when hostile_caffe.rs read
/// RUSAGE_CHILDREN, which this 160 MB run would have raised for every later
/// case; both measure each child alone now): every layer's include rule was tested against the state's stages by linear
/// search, so 40,000 stages and layers took 1.3 s.
#[test]
fn prototxt_many_stages_take_linear_time() {
    let dir = tempfile::tempdir().unwrap();
    let measure = |n: usize| {
        let stages: String = (0..n).map(|i| format!("stage: 's{i}' ")).collect();
        let mut s = format!("state {{ {stages}}}\ninput: 'data'\ninput_shape {{ dim: 1 dim: 4 }}\n");
        for i in 0..n {
            s.push_str(&format!("layer {{ name: 'r{i}' type: 'ReLU' bottom: 'data' top: 'data' include {{ stage: 's{i}' }} }}\n"));
        }
        let p = dir.path().join("stages.prototxt");
        std::fs::write(&p, s).unwrap();
        let o = run_path_with(&p, &[], false);
        assert_eq!(o.code, 0, "{}", o.stderr);
        o
    };
    // 25,000 stages and layers stay under the prototxt field limit (250,000);
    // about eight times the size: quadratic would be about 70 times the time.
    takes_linear_time("stages and layers", 3_000, 25_000, 20, measure);
}

// ---- files: external data, inputs untouched, -o ----


/// Every external-data location, inside the folder or not, is a FIFO: opening
/// one for reading would block until the test's timeout, so a pass proves that
/// none is ever opened. Those outside the folder are also named in a warning.
#[cfg(unix)]
#[test]
fn external_data_is_never_opened_or_followed() {
    let root = tempfile::tempdir().unwrap();
    let models = root.path().join("models");
    std::fs::create_dir(&models).unwrap();
    let outside = root.path().join("secret.bin");
    fifo(&outside);
    fifo(&models.join("inside.bin"));
    std::os::unix::fs::symlink(&outside, models.join("link.bin")).unwrap();
    std::os::unix::fs::symlink(root.path(), models.join("up")).unwrap();

    let mut g = relu_graph(&[1, 4]);
    g.node = vec![node("mm", "MatMul", &["x", "w0"], &["m"]), node("relu", "Relu", &["m"], &["y"])];
    let locations = [
        "inside.bin",
        outside.to_str().unwrap(),
        "../secret.bin",
        "sub/../../secret.bin",
        "link.bin",
        "up/secret.bin",
        "",
    ];
    g.initializer = locations.iter().enumerate().map(|(i, loc)| external(&format!("w{i}"), &[4, 4], loc)).collect();
    let path = models.join("ext.onnx");
    std::fs::write(&path, model(&g)).unwrap();
    let o = run_path(&path, &["--json"]);
    assert_eq!(o.code, 0, "{}", o.stderr);
    assert!(o.stderr.contains("is an absolute path"), "{}", o.stderr);
    assert!(o.stderr.contains("\"../secret.bin\"") && o.stderr.contains("\"sub/../../secret.bin\""), "{}", o.stderr);
    assert!(o.stderr.contains("\"link.bin\"") && o.stderr.contains("through a symlink"), "{}", o.stderr);
    assert!(o.stderr.contains("\"up/secret.bin\""), "{}", o.stderr);
    assert!(o.stderr.contains("is empty"), "{}", o.stderr);
    assert!(!o.stderr.contains("\"inside.bin\""), "a location inside the folder is fine: {}", o.stderr);
    within_bounds(&o, "external data");
}

fn snapshot(paths: &[&Path]) -> Vec<(Vec<u8>, std::time::SystemTime, u64)> {
    paths
        .iter()
        .map(|p| {
            let m = std::fs::metadata(p).unwrap();
            (std::fs::read(p).unwrap(), m.modified().unwrap(), m.len())
        })
        .collect()
}

#[test]
fn inputs_are_never_modified() {
    let dir = tempfile::tempdir().unwrap();
    let onnx = dir.path().join("m.onnx");
    std::fs::write(&onnx, model(&relu_graph(&[1, 4]))).unwrap();
    let proto = dir.path().join("net.prototxt");
    std::fs::copy(fixture("caffe/seed_cnn.prototxt"), &proto).unwrap();
    let weights = dir.path().join("w.caffemodel");
    std::fs::write(&weights, caffemodel()).unwrap();
    let before = snapshot(&[&onnx, &proto, &weights]);
    for args in [
        vec![onnx.to_str().unwrap(), "--json"],
        vec![proto.to_str().unwrap(), "--weights", weights.to_str().unwrap()],
        vec![weights.to_str().unwrap()],
    ] {
        let out = nnmem().arg("inspect").args(&args).output().unwrap();
        assert_eq!(out.status.code(), Some(0), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
    }
    assert!(snapshot(&[&onnx, &proto, &weights]) == before, "an input changed");
    let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(names.len(), 3, "nnmem left files beside its inputs: {names:?}");
}

#[test]
fn output_never_overwrites_an_input() {
    let dir = tempfile::tempdir().unwrap();
    let onnx = dir.path().join("m.onnx");
    std::fs::write(&onnx, model(&relu_graph(&[1, 4]))).unwrap();
    let proto = dir.path().join("net.prototxt");
    std::fs::copy(fixture("caffe/seed_cnn.prototxt"), &proto).unwrap();
    let weights = dir.path().join("w.caffemodel");
    std::fs::write(&weights, caffemodel()).unwrap();
    #[cfg(unix)]
    std::os::unix::fs::symlink(&onnx, dir.path().join("alias.json")).unwrap();
    let before = snapshot(&[&onnx, &proto, &weights]);

    let refused = |args: &[&Path], target: &Path| {
        let out = nnmem().arg("inspect").args(args).arg("--json").arg("-o").arg(target).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?} -o {}: {stderr}", target.display());
        assert!(stderr.contains("refusing to write the report over the input"), "{stderr}");
    };
    refused(&[&onnx], &onnx);
    // The same file by another spelling, and through a symlink.
    refused(&[&onnx], &dir.path().join(".").join("m.onnx"));
    #[cfg(unix)]
    refused(&[&onnx], &dir.path().join("alias.json"));
    // The --weights file is an input too.
    refused(&[&proto, Path::new("--weights"), &weights], &weights);
    refused(&[&proto, Path::new("--weights"), &weights], &proto);
    assert!(snapshot(&[&onnx, &proto, &weights]) == before, "an input changed");
}

#[test]
fn output_is_written_atomically() {
    let dir = tempfile::tempdir().unwrap();
    let onnx = dir.path().join("m.onnx");
    std::fs::write(&onnx, model(&relu_graph(&[1, 4]))).unwrap();
    let target = dir.path().join("report.json");
    std::fs::write(&target, "old report").unwrap();
    // A reader holding the old file keeps the old content: the new one is renamed into place.
    let held = std::fs::File::open(&target).unwrap();
    nnmem().arg("inspect").arg(&onnx).arg("--json").arg("-o").arg(&target).assert().success();
    let report: serde_json::Value = serde_json::from_slice(&std::fs::read(&target).unwrap()).unwrap();
    assert!(report.is_object());
    let mut old = String::new();
    std::io::Read::read_to_string(&mut &held, &mut old).unwrap();
    assert_eq!(old, "old report");
    // No temporary file is left behind.
    let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(names.len(), 2, "{names:?}");
    // A failed write (into a folder that does not exist) leaves nothing and exits 2.
    let out = nnmem().arg("inspect").arg(&onnx).arg("-o").arg(dir.path().join("no/such/dir/r.json")).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
}

/// What PyTorch's dynamo exporter records per node, made hostile: deep module
/// paths and call stacks (aligned with each other, so the Python-locals rule
/// reads them), lines of random Python-ish text, and input dims written as
/// deeply nested arithmetic. nnmem reads what it can and stays within bounds.
#[test]
fn onnx_hostile_dynamo_metadata() {
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let alphabet = b"xy_=+-*/()[]{},.'\" :0123456789";
    let mut nodes = Vec::new();
    for i in 0..2_000 {
        let depth = (xorshift(&mut state) % 200) as usize;
        let scopes: Vec<String> = (0..depth).map(|d| format!("'m{}'", d % 7)).collect();
        let mut trace = String::new();
        for d in 0..=depth {
            let code: String = (0..(xorshift(&mut state) % 80))
                .map(|_| alphabet[(xorshift(&mut state) % alphabet.len() as u64) as usize] as char)
                .collect();
            trace.push_str(&format!("File \"m{}.py\", line {}, in forward\n    {code}\n", d % 3, xorshift(&mut state) % 5));
        }
        let mut n = node(&format!("n{i}"), "Relu", &[&format!("t{i}")], &[&format!("t{}", i + 1)]);
        n.metadata_props = vec![
            StringStringEntryProto { key: "pkg.torch.onnx.name_scopes".into(), value: format!("['', {}, 'relu']", scopes.join(", ")) },
            StringStringEntryProto { key: "pkg.torch.onnx.stack_trace".into(), value: trace },
            StringStringEntryProto {
                key: "pkg.torch.onnx.fx_node".into(),
                value: format!("%relu_{i} : [num_users=1] = call_function[target=torch.ops.aten.relu.default](args = (%t{i},), kwargs = {{}})"),
            },
        ];
        nodes.push(n);
    }
    let mut input = value("t0", &fixed(&[1, 64]));
    if let Some(TypeTensor { shape: Some(shape), .. }) = input.r#type.as_mut().and_then(|t| t.tensor_type.as_mut()) {
        shape.dim[0] = Dimension { dim_value: None, dim_param: Some(format!("{}s{}", "-(".repeat(10_000), ")".repeat(10_000))) };
    }
    let graph = GraphProto { name: "g".into(), node: nodes, input: vec![input], output: vec![value("t2000", &[])], ..Default::default() };
    let mut bytes = ModelProto {
        ir_version: 8,
        producer_name: "pytorch".into(),
        opset_import: vec![OperatorSetIdProto { domain: String::new(), version: 13 }],
    }
    .encode_to_vec();
    put_len_field(&mut bytes, 7, &graph.encode_to_vec());
    let o = run_bytes("dynamo_metadata.onnx", &bytes, &["--dim", "s=3"]);
    // Read whole (every string is under the loader's 64 KiB limit), the
    // nested dim left a free symbol: a report with a warning, not an error.
    assert_eq!(o.code, 0, "{}", o.stderr);
    within_bounds(&o, "dynamo_metadata.onnx");
}
