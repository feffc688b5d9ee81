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
