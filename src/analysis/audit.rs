//! `audit`: every .onnx and .prototxt under a folder, analysed in parallel
//! with one set of flags, each checked against the gates. One bad file is
//! reported and never stops the rest.

use std::path::{Path, PathBuf};

use rayon::prelude::*;

use crate::load::LoadOptions;
use crate::memory::MemorySettings;
use crate::report::gate::{Gate, GateFailure};

use super::Analysed;

/// What one model came to.
#[derive(Debug)]
pub struct AuditRow {
    /// The model file.
    pub path: PathBuf,
    /// The analysed model, or why it could not be loaded.
    pub outcome: Result<Box<Analysed>, String>,
    /// One entry per gate that did not hold or could not be checked.
    pub gate_failures: Vec<GateFailure>,
}

/// Every model file under `dir` (recursively; symlinks are not followed, so
/// the audit reads only what lies in the folder), sorted by name.
pub fn model_files(dir: &Path) -> Result<Vec<PathBuf>, String> {
    let mut files = Vec::new();
    for entry in walkdir::WalkDir::new(dir).follow_links(false).sort_by_file_name() {
        let entry = entry.map_err(|e| format!("reading {}: {e}", dir.display()))?;
        let ext = entry.path().extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase);
        if entry.file_type().is_file() && matches!(ext.as_deref(), Some("onnx" | "prototxt")) {
            files.push(entry.into_path());
        }
    }
    Ok(files)
}

/// Analyses one model; a panic (a bug, not bad input) becomes this row's error.
pub fn audit_one(path: &Path, options: &LoadOptions, settings: &MemorySettings, gates: &[Gate]) -> AuditRow {
    let outcome = std::panic::catch_unwind(|| super::run(path, options, settings).map_err(|e| e.to_string()))
        .unwrap_or_else(|_| Err(format!("{}: internal error (please report)", path.display())));
    let gate_failures = match &outcome {
        Ok(a) => gates.iter().filter_map(|g| g.evaluate(a).err()).collect(),
        Err(_) => Vec::new(),
    };
    AuditRow { path: path.to_path_buf(), outcome: outcome.map(Box::new), gate_failures }
}

/// Audits `files` on the current rayon pool; `each` runs after every model.
pub fn audit(files: &[PathBuf], options: &LoadOptions, settings: &MemorySettings, gates: &[Gate], each: &(dyn Fn() + Sync)) -> Vec<AuditRow> {
    let mut options = options.clone();
    options.lenient_inputs = true;
    files
        .par_iter()
        .map(|path| {
            let row = audit_one(path, &options, settings, gates);
            each();
            row
        })
        .collect()
}
