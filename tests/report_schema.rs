//! Every field docs/report.schema.json names is documented in docs/json-report.md,
//! and the style-transfer report carries its settings. Validation of real reports
//! against the schema lives in tools/schema-check (a crate of its own so that its
//! validator does not change the feature flags nnmem's build shares with tract);
//! `.ci/run` runs it.

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use serde_json::Value;

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

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn schema() -> Value {
    serde_json::from_str(&std::fs::read_to_string(root().join("docs/report.schema.json")).unwrap()).unwrap()
}

fn report(model: &Path, extra: &[&str]) -> Value {
    let out = Command::cargo_bin("nnmem").unwrap().arg("inspect").arg(model).arg("--json").args(extra).output().unwrap();
    assert!(out.status.success(), "{}: {}", model.display(), String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn style_transfer_settings_name_the_layers() {
    let model: PathBuf = root().join("fixtures/caffe/vgg19_neural_style_v2.prototxt");
    let r = report(&model, &["--scenario", "style-transfer", "--optimizer", "lbfgs:5", "--input", "data=1x3x128x128"]);
    let settings = &r["scenarios"]["style-transfer"]["settings"];
    assert_eq!(settings["style_layers"].as_array().map(|l| l.len()), Some(5));
    assert_eq!(settings["content_layers"], serde_json::json!(["relu4_2"]));
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
