//! Special files as models: FIFOs, devices, sockets, directories and endless
//! standard input are refused at once (exit 2, naming the file), never read
//! without a bound and never waited on. Devices are mknod stand-ins in a
//! temporary folder (root only; `SKIPPED` otherwise), never the machine's /dev.

#![cfg(unix)]

mod common;

use std::ffi::OsStr;
use std::path::Path;

use common::{accepted, char_device, fifo, inspect, refused, run, Input};

const NET: &str = "input: 'data'\ninput_shape { dim: 1 dim: 3 dim: 8 dim: 8 }\n\
                   layer { name: 'fc' type: 'InnerProduct' bottom: 'data' top: 'fc' inner_product_param { num_output: 2 } }\n";

/// Opening any of these FIFOs for reading would block until the watchdog: a
/// pass proves nnmem refused them without waiting.
#[test]
fn fifos_are_refused_without_blocking() {
    let dir = tempfile::tempdir().unwrap();
    for name in ["m.onnx", "m.prototxt", "m.caffemodel", "model"] {
        let p = dir.path().join(name);
        fifo(&p);
        refused(&inspect(&p, &[]), name, &[name, "is a FIFO (named pipe), not a model file"]);
    }
    // --weights naming a FIFO.
    let net = dir.path().join("net.prototxt");
    std::fs::write(&net, NET).unwrap();
    let w = dir.path().join("w.caffemodel");
    fifo(&w);
    refused(&inspect(&net, &["--weights", w.to_str().unwrap()]), "--weights FIFO", &["w.caffemodel", "is a FIFO"]);
}

#[test]
fn devices_are_refused_directly_and_through_a_symlink() {
    let test = "devices_are_refused_directly_and_through_a_symlink";
    let dir = tempfile::tempdir().unwrap();
    // A stand-in for /dev/zero (1:5): endless zeros with a reported size of 0.
    let zero = dir.path().join("zero");
    let Some(()) = char_device(&zero, 1, 5, test) else { return };
    refused(&inspect(&zero, &[]), "zero device", &["zero", "is a character device"]);
    for name in ["m.prototxt", "m.onnx", "m.caffemodel"] {
        let link = dir.path().join(name);
        std::os::unix::fs::symlink(&zero, &link).unwrap();
        refused(&inspect(&link, &[]), name, &[name, "is a character device"]);
    }
    let net = dir.path().join("net.prototxt");
    std::fs::write(&net, NET).unwrap();
    refused(&inspect(&net, &["--weights", zero.to_str().unwrap()]), "--weights device", &["zero", "is a character device"]);
}

#[test]
fn directories_and_sockets_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let sub = dir.path().join("model.onnx");
    std::fs::create_dir(&sub).unwrap();
    refused(&inspect(&sub, &[]), "directory", &["model.onnx", "is a directory"]);
    let sock = dir.path().join("m.prototxt");
    let _listener = std::os::unix::net::UnixListener::bind(&sock).unwrap();
    refused(&inspect(&sock, &[]), "socket", &["m.prototxt", "is a socket"]);
}

/// `yes 'layer {}' | nnmem inspect -` used to read until memory ran out (through
/// /dev/stdin): standard input is read up to 16 MiB, counted while reading.
#[test]
fn endless_standard_input_is_cut_at_the_cap() {
    let yes = Input::Command(vec!["yes".into(), "layer {}".into()]);
    for spelling in ["-", "/dev/stdin"] {
        let yes = match &yes {
            Input::Command(c) => Input::Command(c.clone()),
            _ => unreachable!(),
        };
        let o = run(&[OsStr::new("inspect"), OsStr::new(spelling)], yes, true);
        refused(&o, spelling, &["<stdin>", "more than 16777216 bytes on standard input"]);
    }
}

#[test]
fn a_model_on_standard_input_is_read() {
    // A prototxt through a pipe.
    let o = run(&[OsStr::new("inspect"), OsStr::new("-")], Input::Bytes(NET.as_bytes().to_vec()), true);
    accepted(&o, "prototxt on a pipe", &[]);
    assert!(o.stdout.contains("<stdin>") && o.stdout.contains("fc"), "{}", o.stdout);
    // An ONNX file as standard input (a regular file: mapped like any file).
    let onnx = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/onnx/conv_chain.onnx");
    let o = run(&[OsStr::new("inspect"), OsStr::new("-"), OsStr::new("--json")], Input::File(onnx), true);
    accepted(&o, "onnx as < FILE", &[]);
    assert!(o.stdout.contains("\"format\": \"onnx\""), "{}", o.stdout);
}

mod external {
    use super::common::{accepted, fifo, run_in, Input};
    use nnmem::load::onnx::proto::{
        put_len_field, AttributeProto, Dimension, GraphProto, ModelProto, NodeMsg, OperatorSetIdProto,
        SparseTensorProto, StringStringEntryProto, TensorProto, TensorShapeProto, TypeProto, TypeTensor, ValueInfoProto,
    };
    use prost::Message;
    use std::ffi::OsStr;
    use std::path::Path;

    fn value(name: &str, dims: &[i64]) -> ValueInfoProto {
        ValueInfoProto {
            name: name.into(),
            r#type: Some(TypeProto {
                tensor_type: Some(TypeTensor {
                    elem_type: 1,
                    shape: Some(TensorShapeProto { dim: dims.iter().map(|&d| Dimension { dim_value: Some(d), dim_param: None }).collect() }),
                }),
            }),
        }
    }

    fn ext(name: &str, location: &str) -> TensorProto {
        TensorProto {
            dims: vec![4],
            data_type: 1,
            name: name.into(),
            external_data: vec![StringStringEntryProto { key: "location".into(), value: location.into() }],
            data_location: 1,
        }
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

    /// External references in every place a TensorProto can sit besides the
    /// top-level initializers. Each location names a FIFO (directly or through
    /// a symlink): opening any would hang until the watchdog.
    fn hostile_model(outside: &Path) -> Vec<u8> {
        let abs = outside.to_str().unwrap();
        let constant = node("const", "Constant", &[], &["k"], vec![AttributeProto { name: "value".into(), t: Some(Box::new(ext("", abs))), r#type: 4, ..Default::default() }]);
        let branch = GraphProto {
            node: vec![node("", "Identity", &["bw"], &["bo"], vec![])],
            initializer: vec![ext("bw", "../outside.fifo")],
            output: vec![value("bo", &[4])],
            ..Default::default()
        };
        let if_node = node(
            "if",
            "If",
            &["c"],
            &["z"],
            vec![
                AttributeProto { name: "then_branch".into(), g: Some(Box::new(branch.clone())), r#type: 5, ..Default::default() },
                AttributeProto { name: "else_branch".into(), g: Some(Box::new(branch)), r#type: 5, ..Default::default() },
            ],
        );
        let g = GraphProto {
            name: "g".into(),
            node: vec![node("relu", "Relu", &["x"], &["y"], vec![]), constant, node("add", "Add", &["y", "k"], &["s"], vec![]), if_node],
            initializer: vec![ext("w", "data.bin")],
            input: vec![value("x", &[1, 4]), value("c", &[])],
            output: vec![value("s", &[]), value("z", &[])],
            ..Default::default()
        };
        let mut graph = g.encode_to_vec();
        // A sparse initializer whose values are external.
        let sparse = SparseTensorProto { values: Some(ext("sp", "sparse/../../outside.fifo")), indices: None, dims: vec![8] };
        put_len_field(&mut graph, 15, &sparse.encode_to_vec());
        let mut m = ModelProto { ir_version: 8, producer_name: String::new(), opset_import: vec![OperatorSetIdProto { domain: String::new(), version: 13 }] }
            .encode_to_vec();
        put_len_field(&mut m, 7, &graph);
        // A training graph (ModelProto.training_info.initialization) with an external initializer.
        let training = GraphProto { initializer: vec![ext("tw", "/training/abs.bin")], ..Default::default() };
        let mut info = Vec::new();
        put_len_field(&mut info, 1, &training.encode_to_vec());
        put_len_field(&mut m, 20, &info);
        m
    }

    #[test]
    fn external_locations_everywhere_are_warned_about_and_never_opened() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("dir");
        std::fs::create_dir(&dir).unwrap();
        let outside = root.path().join("outside.fifo");
        fifo(&outside);
        // Inside the folder, a symlink to the FIFO outside.
        std::os::unix::fs::symlink(&outside, dir.join("data.bin")).unwrap();
        std::fs::write(dir.join("m.onnx"), hostile_model(&outside)).unwrap();
        let abs = dir.join("m.onnx");
        let spellings: Vec<(std::path::PathBuf, String)> = vec![
            (dir.clone(), "m.onnx".into()),
            (dir.clone(), "./m.onnx".into()),
            (root.path().to_path_buf(), "dir//m.onnx".into()),
            (root.path().to_path_buf(), "dir/./m.onnx".into()),
            (root.path().to_path_buf(), "./dir/../dir/m.onnx".into()),
            (root.path().to_path_buf(), abs.to_str().unwrap().into()),
        ];
        for (cwd, spelled) in spellings {
            let o = run_in(Some(&cwd), &[OsStr::new("inspect"), OsStr::new(&spelled)], Input::Null, true);
            accepted(
                &o,
                &spelled,
                &[
                    &format!("\"{}\" (1 tensor(s)) is an absolute path", outside.display()),
                    "\"../outside.fifo\" (2 tensor(s), e.g. \"bw\") leaves the model's folder",
                    "\"data.bin\" (1 tensor(s), e.g. \"w\") resolves (through a symlink) outside the model's folder",
                    "\"sparse/../../outside.fifo\" (1 tensor(s), e.g. \"sp\") leaves the model's folder",
                    "\"/training/abs.bin\" (1 tensor(s), e.g. \"tw\") is an absolute path",
                ],
            );
        }
    }
}
