//! One resource budget for an ONNX load (src/load/onnx/budget.rs): what
//! decoding keeps is counted at every depth before anything is decoded, so
//! small files of millions of empty messages, long strings or huge ranks are
//! refused in milliseconds, and files just under the limits stay under 1 s and
//! 100 MB. Files are built byte by byte and written in pieces, so the test
//! process itself stays small (a child's measured peak starts from its parent's).

#![cfg(unix)]

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};

use common::{accepted, inspect, refused};
use nnmem::load::onnx::proto::{put_len_field, put_varint};

fn len_field(number: u32, payload: &[u8]) -> Vec<u8> {
    let mut v = Vec::new();
    put_len_field(&mut v, number, payload);
    v
}

fn varint_field(number: u32, value: u64) -> Vec<u8> {
    let mut v = Vec::new();
    put_varint(&mut v, u64::from(number) << 3);
    put_varint(&mut v, value);
    v
}

/// A value (ValueInfoProto) of float type with these dims.
fn value(name: &str, dims: &[u64]) -> Vec<u8> {
    let shape: Vec<u8> = dims.iter().flat_map(|&d| len_field(1, &varint_field(1, d))).collect();
    let mut tensor_type = varint_field(1, 1);
    tensor_type.extend(len_field(2, &shape));
    let mut v = len_field(1, name.as_bytes());
    v.extend(len_field(2, &len_field(1, &tensor_type)));
    v
}

fn node(op: &str, inputs: &[&str], outputs: &[&str], name: &str, attributes: &[Vec<u8>]) -> Vec<u8> {
    let mut n = Vec::new();
    for i in inputs {
        n.extend(len_field(1, i.as_bytes()));
    }
    for o in outputs {
        n.extend(len_field(2, o.as_bytes()));
    }
    n.extend(len_field(3, name.as_bytes()));
    n.extend(len_field(4, op.as_bytes()));
    for a in attributes {
        n.extend(len_field(5, a));
    }
    n
}

/// A piece of a message written straight to a file: nothing large is ever
/// held in memory.
enum Part {
    Raw(Vec<u8>),
    /// `n` copies of one byte.
    Fill(u8, usize),
    /// `n` copies of some bytes.
    Repeat(Vec<u8>, usize),
    /// A length-delimited field holding these parts.
    Field(u32, Vec<Part>),
}

fn parts_len(parts: &[Part]) -> usize {
    parts.iter().map(part_len).sum()
}

fn part_len(p: &Part) -> usize {
    match p {
        Part::Raw(b) => b.len(),
        Part::Fill(_, n) => *n,
        Part::Repeat(b, n) => b.len() * n,
        Part::Field(number, inner) => {
            let n = parts_len(inner);
            let mut head = Vec::new();
            put_varint(&mut head, (u64::from(*number) << 3) | 2);
            put_varint(&mut head, n as u64);
            head.len() + n
        }
    }
}

fn write_parts(w: &mut impl Write, parts: &[Part]) {
    for p in parts {
        match p {
            Part::Raw(b) => w.write_all(b).unwrap(),
            Part::Fill(byte, n) => {
                let chunk = [*byte; 1 << 16];
                let mut left = *n;
                while left > 0 {
                    let k = left.min(chunk.len());
                    w.write_all(&chunk[..k]).unwrap();
                    left -= k;
                }
            }
            Part::Repeat(b, n) => {
                for _ in 0..*n {
                    w.write_all(b).unwrap();
                }
            }
            Part::Field(number, inner) => {
                let mut head = Vec::new();
                put_varint(&mut head, (u64::from(*number) << 3) | 2);
                put_varint(&mut head, parts_len(inner) as u64);
                w.write_all(&head).unwrap();
                write_parts(w, inner);
            }
        }
    }
}

/// Writes a model: ir_version 8, an opset import, `opsets` more empty ones,
/// and a graph of these parts.
fn write_graph(path: &Path, graph: Vec<Part>, opsets: usize) {
    let mut f = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    let mut head = varint_field(1, 8);
    head.extend(len_field(8, &[len_field(1, b"").as_slice(), &varint_field(2, 13)].concat()));
    let model = vec![Part::Raw(head), Part::Repeat(len_field(8, b""), opsets), Part::Field(7, graph)];
    write_parts(&mut f, &model);
    f.flush().unwrap();
}

fn write_model(path: &Path, head: &[u8], repeated: &[u8], count: usize, opsets: usize) {
    write_graph(path, vec![Part::Raw(head.to_vec()), Part::Repeat(repeated.to_vec(), count)], opsets);
}

/// Relu(x: [1,4]) -> y, as graph fields.
fn relu_head() -> Vec<u8> {
    let mut g = len_field(1, &node("Relu", &["x"], &["y"], "relu", &[]));
    g.extend(len_field(11, &value("x", &[1, 4])));
    g.extend(len_field(12, &value("y", &[])));
    g
}

fn file(dir: &tempfile::TempDir, name: &str) -> PathBuf {
    dir.path().join(name)
}

#[test]
fn a_million_nodes_inside_a_subgraph_are_counted() {
    let dir = tempfile::tempdir().unwrap();
    let p = file(&dir, "if_branch.onnx");
    // If(c) with a then_branch of a million empty nodes: 2 MB of file.
    let branch: Vec<u8> = [len_field(1, b"").as_slice()].concat().repeat(1_000_000);
    let mut attr = len_field(1, b"then_branch");
    attr.extend(len_field(6, &branch));
    let mut head = len_field(1, &node("If", &["c"], &["z"], "if", &[attr]));
    head.extend(len_field(11, &value("c", &[])));
    head.extend(len_field(12, &value("z", &[])));
    drop(branch);
    write_model(&p, &head, b"", 0, 0);
    drop(head);
    refused(&inspect(&p, &[]), "1M nodes in an If branch", &["if_branch.onnx", "more than nnmem's limit of 200000 nodes (counted in every subgraph)"]);
}

#[test]
fn millions_of_empty_messages_are_refused_before_decoding() {
    let dir = tempfile::tempdir().unwrap();
    let empty = |n: u32| len_field(n, b"");
    let cases: [(&str, Vec<u8>, usize, usize, &str); 4] = [
        ("value_info.onnx", empty(13), 2_000_000, 0, "value entries"),
        ("initializers.onnx", empty(5), 2_000_000, 0, "tensors"),
        ("sparse.onnx", empty(15), 2_000_000, 0, "tensors"),
        ("opsets.onnx", Vec::new(), 0, 2_000_000, "more than 1000 opset imports"),
    ];
    for (name, repeated, count, opsets, expected) in cases {
        let p = file(&dir, name);
        write_model(&p, &relu_head(), &repeated, count, opsets);
        refused(&inspect(&p, &[]), name, &[name, expected]);
    }
    // A node with a million empty attribute graphs, or tensors.
    for (name, field, expected) in [("attr_graphs.onnx", 11u32, "graphs"), ("attr_tensors.onnx", 10, "tensors")] {
        let mut attr = len_field(1, b"a");
        attr.extend(empty(field).repeat(1_000_000));
        let mut head = relu_head();
        head.extend(len_field(1, &node("Relu", &["y"], &["z"], "r2", &[attr])));
        let p = file(&dir, name);
        write_model(&p, &head, b"", 0, 0);
        drop(head);
        refused(&inspect(&p, &[]), name, &[name, "more than 40 MiB", expected]);
    }
}

#[test]
fn long_strings_and_huge_ranks_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    // A 60 MiB string attribute (it was copied five times: 316 MB).
    let p = file(&dir, "string.onnx");
    let attr = vec![Part::Raw(len_field(1, b"junk")), Part::Field(4, vec![Part::Fill(b'a', 60 << 20)])];
    let relu2 = vec![
        Part::Raw([len_field(1, b"y"), len_field(2, b"z"), len_field(3, b"r2"), len_field(4, b"Relu")].concat()),
        Part::Field(5, attr),
    ];
    write_graph(&p, vec![Part::Raw(relu_head()), Part::Field(1, relu2)], 0);
    refused(&inspect(&p, &[]), "60 MiB string", &["string.onnx", "node \"r2\"", "string attribute values add up to more than 4194304 bytes"]);
    // An input of rank 1,000,000 (4 s and 864 MB through tract, and an 88 MB report).
    let p = file(&dir, "rank.onnx");
    {
        let mut head = len_field(1, &node("Relu", &["x"], &["y"], "relu", &[]));
        head.extend(len_field(11, &value("x", &vec![1; 1_000_000])));
        head.extend(len_field(12, &value("y", &[])));
        write_model(&p, &head, b"", 0, 0);
    }
    refused(&inspect(&p, &[]), "rank 1M", &["rank.onnx", "value \"x\" has a shape of more than 64 dims"]);
    // An initializer with 65 dims.
    let p = file(&dir, "rank_init.onnx");
    let mut dims = Vec::new();
    for _ in 0..65 {
        put_varint(&mut dims, 1);
    }
    let mut t = len_field(1, &dims);
    t.extend(varint_field(2, 1));
    t.extend(len_field(8, b"w"));
    write_model(&p, &relu_head(), &len_field(5, &t), 1, 0);
    refused(&inspect(&p, &[]), "rank 65 initializer", &["tensor \"w\" has more than 64 dims"]);
}

/// Just under the limits: decoded, within 1 s and 100 MB.
#[test]
fn files_just_under_the_budget_stay_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let empty = |n: u32| len_field(n, b"");
    for (name, repeated, count) in [
        ("value_info.onnx", empty(13), 550_000),
        ("value_rank64.onnx", len_field(13, &value("v", &[1; 64])), 15_000),
    ] {
        let p = file(&dir, name);
        write_model(&p, &relu_head(), &repeated, count, 0);
        accepted(&inspect(&p, &[]), name, &[]);
    }
    // 280,000 empty graphs in one attribute (a list that grows by doubling).
    let mut attr = len_field(1, b"a");
    attr.extend(empty(11).repeat(280_000));
    let mut head = relu_head();
    head.extend(len_field(1, &node("Relu", &["y"], &["z"], "r2", &[attr])));
    let p = file(&dir, "attr_graphs.onnx");
    write_model(&p, &head, b"", 0, 0);
    drop(head);
    accepted(&inspect(&p, &[]), "280k attribute graphs", &[]);
}

/// 400,000 nameless initializers: one warning with a count, not 400,000 lines.
#[test]
fn identical_warnings_are_printed_once_with_a_count() {
    let dir = tempfile::tempdir().unwrap();
    let p = file(&dir, "nameless.onnx");
    write_model(&p, &relu_head(), &len_field(5, b""), 400_000, 0);
    let o = inspect(&p, &[]);
    accepted(&o, "400k nameless initializers", &["an initializer has no name; it is ignored (\u{d7}400000)"]);
    assert_eq!(o.stderr.lines().count(), 1, "{}", o.stderr);
}

/// The shape of tensor `name` in a JSON report.
fn shape_in(report: &str, name: &str) -> Option<Vec<u64>> {
    let v: serde_json::Value = serde_json::from_str(report).ok()?;
    let t = v["tensors"].as_array()?.iter().find(|t| t["name"] == name)?;
    t["shape"].as_array()?.iter().map(|d| d.as_u64()).collect()
}

/// A tensor header with these dims and `payload` bytes of raw_data, as parts.
fn tensor_parts(name: &str, dims: &[u64], payload: usize) -> Vec<Part> {
    let mut packed = Vec::new();
    for &d in dims {
        put_varint(&mut packed, d);
    }
    let head = [len_field(1, &packed), varint_field(2, 1), len_field(8, name.as_bytes())].concat();
    vec![Part::Raw(head), Part::Field(9, vec![Part::Fill(0, payload)])]
}

/// Relu(x) -> y; Add(y, k) -> z; Shape(z) -> s: Shape sends the graph to tract.
fn add_graph(k_nodes: Vec<Part>, k_init: Option<Vec<Part>>) -> Vec<Part> {
    let mut g = vec![Part::Raw(len_field(1, &node("Relu", &["x"], &["y"], "relu", &[])))];
    g.extend(k_nodes);
    g.push(Part::Raw(len_field(1, &node("Add", &["y", "k"], &["z"], "add", &[]))));
    g.push(Part::Raw(len_field(1, &node("Shape", &["z"], &["s"], "shape", &[]))));
    if let Some(t) = k_init {
        g.push(Part::Field(5, t));
    }
    g.push(Part::Raw(len_field(11, &value("x", &[1, 4]))));
    g.push(Part::Raw(len_field(12, &value("s", &[]))));
    g
}

/// An initializer or a Constant of dims [4] holding 150 MiB of raw_data was
/// kept as a value for tract (kept by dims) and copied: 470 MB. Judged by its
/// stored size, it is a typed input of its dims: nothing is copied, and the
/// shapes behind it are still known.
#[test]
fn tiny_dims_with_a_huge_payload_cost_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let p = file(&dir, "init.onnx");
    write_graph(&p, add_graph(Vec::new(), Some(tensor_parts("k", &[4], 150 << 20))), 0);
    let o = inspect(&p, &["--json"]);
    accepted(&o, "initializer [4] with 150 MiB", &[]);
    assert_eq!(shape_in(&o.stdout, "z"), Some(vec![1, 4]), "{}", o.stderr);

    let p = file(&dir, "constant.onnx");
    let attr = vec![Part::Raw([len_field(1, b"value"), varint_field(20, 4)].concat()), Part::Field(5, tensor_parts("", &[4], 150 << 20))];
    let constant = vec![Part::Raw([len_field(2, b"k"), len_field(3, b"const"), len_field(4, b"Constant")].concat()), Part::Field(5, attr)];
    write_graph(&p, add_graph(vec![Part::Field(1, constant)], None), 0);
    let o = inspect(&p, &["--json"]);
    accepted(&o, "Constant [4] with 150 MiB", &[]);
    assert_eq!(shape_in(&o.stdout, "z"), Some(vec![1, 4]), "{}", o.stderr);
}

/// 199,990 empty nodes in an If branch (under the node limit) used to go to
/// tract's model at about 1.5 KB a node: 322 MB. Nodes holding subgraphs of
/// more than 5,000 nodes in all are stand-ins for tract now.
#[test]
fn a_large_subgraph_is_not_given_to_tract() {
    let dir = tempfile::tempdir().unwrap();
    let p = file(&dir, "if.onnx");
    let attr = vec![Part::Raw(len_field(1, b"then_branch")), Part::Field(6, vec![Part::Repeat(len_field(1, b""), 199_990)])];
    let if_node = vec![Part::Raw([len_field(1, b"c"), len_field(2, b"z"), len_field(3, b"if"), len_field(4, b"If")].concat()), Part::Field(5, attr)];
    let graph = vec![
        Part::Field(1, if_node),
        Part::Raw(len_field(1, &node("Shape", &["z"], &["s"], "shape", &[]))),
        Part::Raw(len_field(11, &value("c", &[]))),
        Part::Raw(len_field(12, &value("s", &[]))),
    ];
    write_graph(&p, graph, 0);
    accepted(&inspect(&p, &[]), "199,990 nodes in an If branch", &["first \"if\", are not given to tract's shape analysis"]);
}

/// Names are copied into the graph and every report: one longer than 64 KiB is refused.
#[test]
fn long_names_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let p = file(&dir, "name.onnx");
    let long = vec![b'n'; 1 << 20];
    let mut head = relu_head();
    head.extend(len_field(1, &node("Relu", &["y"], &["z"], std::str::from_utf8(&long).unwrap(), &[])));
    write_model(&p, &head, b"", 0, 0);
    drop(head);
    refused(&inspect(&p, &[]), "1 MiB node name", &["name.onnx", "a name or string of 1048576 bytes, more than nnmem's limit of 65536"]);
}

mod caffemodel {
    use super::*;

    /// A V2 layer (NetParameter field 100) with these fields.
    fn layer(fields: &[u8]) -> Vec<u8> {
        len_field(100, fields)
    }

    /// A small file of millions of empty layers or blobs, a 200 MiB name or a
    /// blob of rank 8 million decoded into 0.5 to 2.2 GB; counted first now.
    #[test]
    fn caffemodel_budget() {
        let dir = tempfile::tempdir().unwrap();
        let write = |name: &str, parts: Vec<Part>| {
            let p = file(&dir, name);
            let mut f = std::io::BufWriter::new(std::fs::File::create(&p).unwrap());
            write_parts(&mut f, &parts);
            f.flush().unwrap();
            p
        };
        let cases = [
            ("layers.caffemodel", vec![Part::Repeat(layer(b""), 3_000_000)], "more than 25000 layers"),
            ("v1_layers.caffemodel", vec![Part::Repeat(len_field(2, b""), 3_000_000)], "more than 25000 layers"),
            (
                "blobs.caffemodel",
                vec![Part::Field(100, vec![Part::Raw(len_field(1, b"l")), Part::Repeat(len_field(7, b""), 3_000_000)])],
                "more than 100000 weight blobs",
            ),
            (
                "name.caffemodel",
                vec![Part::Field(100, vec![Part::Field(1, vec![Part::Fill(b'n', 200 << 20)])])],
                "a name or type of 209715200 bytes",
            ),
            (
                "rank.caffemodel",
                vec![Part::Field(100, vec![Part::Raw(len_field(1, b"l")), Part::Field(7, vec![Part::Field(7, vec![Part::Field(1, vec![Part::Fill(1, 8_000_000)])])])])],
                "a blob shape of more than 64 dims",
            ),
            (
                "bottoms.caffemodel",
                vec![Part::Field(100, vec![Part::Raw(len_field(1, b"l")), Part::Repeat(len_field(3, b""), 4_000_000)])],
                "more than 40 MiB",
            ),
        ];
        for (name, parts, expected) in cases {
            let p = write(name, parts);
            refused(&inspect(&p, &[]), name, &[name, expected]);
        }
        // Under the limits: 20,000 layers of one blob each.
        let p = write("many.caffemodel", vec![Part::Repeat(layer(&[len_field(1, b"l"), len_field(7, &len_field(7, &len_field(1, &[4, 4])))].concat()), 20_000)]);
        accepted(&inspect(&p, &["-q"]), "20,000 layers", &[]);
    }
}
