//! Names from a model file never reach a terminal, a spreadsheet or a page
//! raw, in any output format: C0/C1 controls, DEL and bidirectional overrides
//! are shown as `\u{…}` escapes, and each format's own markup (CSV quotes and
//! formulas, Markdown pipes and backticks, HTML tags) is neutralised.

#![cfg(unix)]

mod common;

use common::{accepted, inspect, refused};
use nnmem::load::onnx::proto::{
    put_len_field, Dimension, GraphProto, ModelProto, NodeMsg, OperatorSetIdProto, TensorShapeProto, TypeProto,
    TypeTensor, ValueInfoProto,
};
use nnmem::units::is_unsafe;
use prost::Message;

/// Escape sequences (CSI colour, OSC title, BEL), an 8-bit CSI (U+009B),
/// DEL, a right-to-left override, and the markup of every format.
const HOSTILE: &str = "a\x1b[31mred\x1b]0;title\x07\u{9b}2J\u{7f}|b`c\u{202e}fed\u{2066}<script>x</script>,\"q\"";

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

fn encode(g: &GraphProto) -> Vec<u8> {
    let mut bytes = ModelProto {
        ir_version: 8,
        producer_name: "hostile".into(),
        opset_import: vec![OperatorSetIdProto { domain: String::new(), version: 13 }],
    }
    .encode_to_vec();
    put_len_field(&mut bytes, 7, &g.encode_to_vec());
    bytes
}

/// Relu named `name`, reading input `input` and writing y, in a graph named `graph_name`.
fn model(name: &str, input: &str, graph_name: &str) -> Vec<u8> {
    let g = GraphProto {
        name: graph_name.into(),
        node: vec![NodeMsg {
            input: vec![input.into()],
            output: vec!["y".into()],
            name: name.into(),
            op_type: "Relu".into(),
            ..Default::default()
        }],
        input: vec![value(input, &[1, 4])],
        output: vec![value("y", &[])],
        ..Default::default()
    };
    encode(&g)
}

fn no_raw_unsafe(text: &str, what: &str) {
    if let Some(c) = text.chars().find(|&c| c != '\n' && is_unsafe(c)) {
        panic!("{what}: raw {:?} in {text:?}", c);
    }
}

#[test]
fn every_format_escapes_names() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("names.onnx");
    std::fs::write(&p, model(&format!("=cmd{HOSTILE}"), HOSTILE, HOSTILE)).unwrap();
    for format in ["table", "csv", "markdown", "html", "json"] {
        let o = inspect(&p, &["--format", format]);
        accepted(&o, format, &[]);
        no_raw_unsafe(&o.stdout, format);
        no_raw_unsafe(&o.stderr, format);
        assert!(o.stdout.contains("\\u{202e}") || o.stdout.contains("\\u202e"), "{format}: {}", o.stdout);
    }
    // CSV: one header and one row, the name quoted and defused as a formula.
    let csv = inspect(&p, &["--format", "csv"]).stdout;
    assert_eq!(csv.lines().count(), 2, "{csv}");
    assert!(csv.lines().nth(1).unwrap().starts_with("\"'=cmd"), "{csv}");
    // Markdown: the pipe and backtick cannot end a cell or open code.
    let md = inspect(&p, &["--format", "markdown"]).stdout;
    assert!(md.contains("\\|b\\`c") && !md.contains("<script>"), "{md}");
    let row = md.lines().find(|l| l.starts_with("| ") && l.contains("cmd")).unwrap();
    assert_eq!(row.matches(" | ").count(), md.lines().find(|l| l.starts_with("| layer")).unwrap().matches(" | ").count(), "{row}");
    // HTML: no tag from the file.
    let html = inspect(&p, &["--format", "html"]).stdout;
    assert!(!html.contains("<script>x") && html.contains("&lt;script&gt;x"), "cannot find the escaped name");
    // JSON: the name is intact for a JSON reader.
    let json = inspect(&p, &["--json"]).stdout;
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["nodes"][0]["name"], format!("=cmd{HOSTILE}"));
}

/// A right-to-left override in a node name must not reorder the terminal
/// line of an error or a warning either.
#[test]
fn errors_and_warnings_escape_names() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("ghost.onnx");
    // The node reads an input that does not exist: the error names the node and the input.
    let g = GraphProto {
        name: "g".into(),
        node: vec![NodeMsg {
            input: vec!["gh\u{202e}ost\u{9b}".into()],
            output: vec!["y".into()],
            name: "n\u{202e}ode".into(),
            op_type: "Relu".into(),
            ..Default::default()
        }],
        input: vec![value("x", &[1, 4])],
        output: vec![value("y", &[])],
        ..Default::default()
    };
    std::fs::write(&p, encode(&g)).unwrap();
    let o = inspect(&p, &[]);
    refused(&o, "ghost input", &["n\\u{202e}ode", "gh\\u{202e}ost\\u{9b}"]);
    no_raw_unsafe(&o.stderr, "error");
    // An unknown op type with an escape in its name: a warning.
    let g = GraphProto {
        name: "g".into(),
        node: vec![NodeMsg { input: vec!["x".into()], output: vec!["y".into()], name: "u".into(), op_type: "Op\u{202e}\u{1b}]0;x\u{7}".into(), ..Default::default() }],
        input: vec![value("x", &[1, 4])],
        output: vec![value("y", &[])],
        ..Default::default()
    };
    std::fs::write(&p, encode(&g)).unwrap();
    let o = inspect(&p, &[]);
    accepted(&o, "unknown op warning", &["Op\\u{202e}\\u{1b}]0;x\\u{7}"]);
    no_raw_unsafe(&o.stderr, "warning");
    no_raw_unsafe(&o.stdout, "table");
}
