//! Validation of nnmem JSON reports against docs/report.schema.json.

use std::path::{Path, PathBuf};

use serde_json::Value;

/// The repository root (two folders up).
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The nnmem binary: $NNMEM, else the release build, else the debug build.
pub fn nnmem_binary() -> PathBuf {
    if let Some(p) = std::env::var_os("NNMEM") {
        // cargo runs tests in this crate's folder: a relative path means the repository root.
        let p = PathBuf::from(p);
        return if p.is_relative() { repo().join(p) } else { p };
    }
    let release = repo().join("target/release/nnmem");
    if release.exists() {
        release
    } else {
        repo().join("target/debug/nnmem")
    }
}

pub struct Validator {
    schemas: boon::Schemas,
    index: boon::SchemaIndex,
}

impl Validator {
    pub fn new() -> Self {
        let text = std::fs::read_to_string(repo().join("docs/report.schema.json")).expect("docs/report.schema.json");
        let schema: Value = serde_json::from_str(&text).expect("the schema is JSON");
        let url = "https://nnmem.invalid/report.schema.json";
        let mut schemas = boon::Schemas::new();
        let mut compiler = boon::Compiler::new();
        compiler.add_resource(url, schema).expect("the schema is a resource");
        let index = compiler.compile(url, &mut schemas).unwrap_or_else(|e| panic!("the schema compiles: {e}"));
        Validator { schemas, index }
    }

    /// Every violation, as text; empty when the report conforms.
    pub fn errors(&self, report: &Value) -> Vec<String> {
        match self.schemas.validate(report, self.index) {
            Ok(()) => Vec::new(),
            Err(e) => vec![format!("{e:#}")],
        }
    }
}

impl Default for Validator {
    fn default() -> Self {
        Self::new()
    }
}
