//! The JSON report of every fixture validates against docs/report.schema.json,
//! and every field the schema names is documented in docs/json-report.md.

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use serde_json::Value;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn schema() -> Value {
    serde_json::from_str(&std::fs::read_to_string(root().join("docs/report.schema.json")).unwrap()).unwrap()
}

/// Fixtures that load (the hostile ONNX files are meant to fail).
fn fixtures() -> Vec<PathBuf> {
    let mut files = Vec::new();
    for dir in ["fixtures/caffe", "fixtures/onnx"] {
        for entry in std::fs::read_dir(root().join(dir)).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            let model = name.ends_with(".prototxt") || name.ends_with(".onnx");
            if model && !name.starts_with("hostile") {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

fn report(model: &Path, extra: &[&str]) -> Value {
    let out = Command::cargo_bin("nnmem").unwrap().arg("inspect").arg(model).arg("--json").args(extra).output().unwrap();
    assert!(out.status.success(), "{}: {}", model.display(), String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn every_fixture_report_matches_the_schema() {
    let validator = jsonschema::validator_for(&schema()).expect("the schema compiles");
    let files = fixtures();
    assert!(files.len() >= 10, "fixtures found: {files:?}");
    for model in files {
        for extra in [&[][..], &["--scenario", "training", "--optimizer", "adam", "--dtype", "f16"][..]] {
            let r = report(&model, extra);
            let errors: Vec<String> = validator.iter_errors(&r).map(|e| format!("{} at {}", e, e.instance_path())).collect();
            assert!(errors.is_empty(), "{} {extra:?}: {errors:#?}", model.display());
        }
    }
}

#[test]
fn style_transfer_report_matches_the_schema() {
    let validator = jsonschema::validator_for(&schema()).expect("the schema compiles");
    let model = root().join("fixtures/caffe/vgg19_neural_style_v2.prototxt");
    let r = report(&model, &["--scenario", "style-transfer", "--optimizer", "lbfgs:5", "--input", "data=1x3x128x128"]);
    let errors: Vec<String> = validator.iter_errors(&r).map(|e| format!("{} at {}", e, e.instance_path())).collect();
    assert!(errors.is_empty(), "{errors:#?}");
    assert!(r["scenarios"]["style-transfer"]["settings"]["style_layers"].as_array().is_some_and(|l| l.len() == 5));
}

/// Collect every property name the schema defines.
fn property_names(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(map) => {
            for (k, child) in map {
                if k == "properties" {
                    if let Value::Object(props) = child {
                        out.extend(props.keys().cloned());
                    }
                }
                property_names(child, out);
            }
        }
        Value::Array(items) => items.iter().for_each(|i| property_names(i, out)),
        _ => {}
    }
}

#[test]
fn docs_list_every_schema_field() {
    let docs = std::fs::read_to_string(root().join("docs/json-report.md")).unwrap();
    let mut names = Vec::new();
    property_names(&schema(), &mut names);
    names.sort();
    names.dedup();
    // A field counts as documented where it appears as a whole word inside backticks.
    let code: String = docs.split('`').skip(1).step_by(2).collect::<Vec<_>>().join(" ");
    let is_word = |c: char| c.is_alphanumeric() || c == '_';
    let documented = |n: &str| {
        code.match_indices(n).any(|(i, _)| {
            let before = code[..i].chars().next_back().is_none_or(|c| !is_word(c));
            let after = code[i + n.len()..].chars().next().is_none_or(|c| !is_word(c));
            before && after
        })
    };
    let missing: Vec<&String> = names.iter().filter(|n| !documented(n)).collect();
    assert!(missing.is_empty(), "fields not in docs/json-report.md: {missing:?}");
}
