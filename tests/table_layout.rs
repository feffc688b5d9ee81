//! The table people read: summary first, 100 columns by default, every column
//! with --wide, folded by module or type with sums equal to the totals, and
//! Markdown and CSV that real parsers read back as written.

use std::path::{Path, PathBuf};

use assert_cmd::Command;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn fixture(rel: &str) -> String {
    root().join("fixtures").join(rel).display().to_string()
}

fn shared(rel: &str) -> Option<String> {
    let p: PathBuf = root().join("../shared").join(rel);
    p.exists().then(|| p.display().to_string())
}

fn stdout(args: &[&str]) -> String {
    let out = Command::cargo_bin("nnmem").unwrap().args(args).output().unwrap();
    assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

fn widest(text: &str) -> usize {
    text.lines().map(|l| l.chars().count()).max().unwrap_or(0)
}

/// (first cell, params) of each table row: between the rule under the header and the blank line after.
fn table_rows(text: &str) -> Vec<(String, u64)> {
    let lines: Vec<&str> = text.lines().collect();
    let header = lines.iter().position(|l| l.starts_with("layer ") || l.starts_with("module ") || l.starts_with("type ")).unwrap();
    let params_at = lines[header].find("params").unwrap() + "params".len();
    lines[header + 2..]
        .iter()
        .take_while(|l| !l.is_empty())
        .map(|l| {
            let cells: String = l.chars().take(params_at).collect();
            let number: String = cells.rsplit("  ").next().unwrap_or("").chars().filter(|c| c.is_ascii_digit()).collect();
            (l.split("  ").next().unwrap().to_string(), number.parse().unwrap_or(0))
        })
        .collect()
}

fn total_params(text: &str) -> u64 {
    let line = text.lines().find(|l| l.starts_with("total params: ")).unwrap();
    line["total params: ".len()..].replace(',', "").parse().unwrap()
}

#[test]
fn the_default_table_fits_100_columns_with_the_summary_first() {
    let model = fixture("caffe/vgg19_neural_style_v2.prototxt");
    let text = stdout(&["inspect", &model]);
    assert!(widest(&text) <= 100, "a line is {} wide:\n{text}", widest(&text));
    let lines: Vec<&str> = text.lines().collect();
    let at = |prefix: &str| lines.iter().position(|l| l.starts_with(prefix)).unwrap_or_else(|| panic!("no {prefix}"));
    assert!(at("params:") < at("layer ") && at("training peak:") < at("layer "));
    assert!(at("layer ") < at("total params:") && at("total params:") < at("trainable params:"));
    assert!(lines[at("layer ")].ends_with("saved (training)"), "{}", lines[at("layer ")]);
    assert!(text.contains("relu1_1 (in place)"), "in-place markers are kept");
    // --wide: every memory column of every scenario.
    let wide = stdout(&["inspect", &model, "--wide"]);
    let header = wide.lines().find(|l| l.starts_with("layer ")).unwrap();
    for col in ["workspace (inference)", "live after (inference)", "saved (training)", "workspace (training)", "live after (training)"] {
        assert!(header.contains(col), "{header}");
    }
}

#[test]
fn groups_sum_to_the_totals() {
    let vgg = fixture("caffe/vgg19_neural_style_v2.prototxt");
    let text = stdout(&["inspect", &vgg, "--group-by", "type"]);
    let rows = table_rows(&text);
    let names: Vec<&str> = rows.iter().map(|r| r.0.as_str()).collect();
    assert!(names.contains(&"Convolution") && names.contains(&"InnerProduct"), "{names:?}");
    assert_eq!(rows.iter().map(|r| r.1).sum::<u64>(), total_params(&text), "{text}");
    let conv = text.lines().find(|l| l.starts_with("Convolution ")).unwrap();
    assert!(conv.contains(" 16 "), "16 convolutions: {conv}");
    // By module scope: the language model's attention block is one row.
    let lm = fixture("onnx/tiny_lm.onnx");
    let text = stdout(&["inspect", &lm, "--dim", "batch=1", "--dim", "seq=32", "--depth", "1"]);
    let rows = table_rows(&text);
    assert!(rows.iter().any(|r| r.0 == "attn"), "{text}");
    assert_eq!(rows.iter().map(|r| r.1).sum::<u64>(), total_params(&text));
    assert_eq!(total_params(&text), 2848);
}

#[test]
fn markdown_is_commonmark() {
    use pulldown_cmark::{Event, Options, Parser, Tag, TagEnd};
    let md = stdout(&["inspect", &fixture("caffe/seed_cnn.prototxt"), "--format", "markdown"]);
    let mut rows = 0;
    let mut cells_in_row = Vec::new();
    let mut cells = 0;
    let mut items = 0;
    let mut texts = Vec::new();
    for e in Parser::new_ext(&md, Options::ENABLE_TABLES) {
        match e {
            Event::Start(Tag::TableRow) | Event::Start(Tag::TableHead) => cells = 0,
            Event::End(TagEnd::TableCell) => cells += 1,
            Event::End(TagEnd::TableRow) | Event::End(TagEnd::TableHead) => {
                rows += 1;
                cells_in_row.push(cells);
            }
            Event::Start(Tag::Item) => items += 1,
            Event::Text(t) => texts.push(t.to_string()),
            _ => {}
        }
    }
    // 18 layers and the header, every row with the header's cells.
    assert_eq!(rows, 19, "{md}");
    assert!(cells_in_row.iter().all(|&c| c == cells_in_row[0]), "{cells_in_row:?}");
    // The summary and totals are list items, each peak its own item with the breakdown under it.
    assert!(items >= 10, "{items} items:\n{md}");
    assert!(texts.iter().any(|t| t.starts_with("training peak: ")), "{texts:?}");
    assert!(texts.iter().any(|t| t == "relu1 (in place)"), "escaped names read back as written: {texts:?}");
}

#[test]
fn csv_reads_back_with_names_that_need_quoting() {
    let dir = tempfile::tempdir().unwrap();
    let net = dir.path().join("odd.prototxt");
    std::fs::write(
        &net,
        "name: 'odd'\ninput: 'data'\ninput_shape { dim: 1 dim: 3 dim: 8 dim: 8 }\n\
         layer { name: 'conv, \"a\"' type: 'Convolution' bottom: 'data' top: 'c' convolution_param { num_output: 4 kernel_size: 3 } }\n\
         layer { name: 'relu' type: 'ReLU' bottom: 'c' top: 'c' }\n",
    )
    .unwrap();
    let text = stdout(&["inspect", net.to_str().unwrap(), "--format", "csv"]);
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let header: Vec<String> = reader.headers().unwrap().iter().map(String::from).collect();
    let records: Vec<csv::StringRecord> = reader.records().map(|r| r.unwrap()).collect();
    assert_eq!(records.len(), 2);
    assert!(records.iter().all(|r| r.len() == header.len()));
    assert_eq!(&records[0][0], "conv, \"a\"");
    assert_eq!(&records[0][4], "112");
}

#[test]
fn shared_corpus_layouts() {
    let (Some(googlenet), Some(vit)) = (shared("corpus/caffe/bvlc_googlenet_deploy.prototxt"), shared("corpus/onnx/vit_b_16.ext.onnx")) else {
        eprintln!("SKIPPED shared_corpus_layouts: ../shared is absent");
        return;
    };
    let text = stdout(&["inspect", &googlenet]);
    assert!(widest(&text) <= 100, "GoogLeNet: a line is {} wide", widest(&text));
    let text = stdout(&["inspect", &vit, "--input", "1x3x224x224", "--depth", "2"]);
    assert!(text.lines().count() <= 50, "ViT at depth 2 is {} lines:\n{text}", text.lines().count());
    let rows = table_rows(&text);
    assert_eq!(rows.iter().map(|r| r.1).sum::<u64>(), total_params(&text));
    assert_eq!(total_params(&text), 86_567_656);
}
