//! `nnmem audit DIR`: every .onnx and .prototxt under a folder, inspected in
//! parallel. One bad file is reported and never stops the rest.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result};
use clap::Args;
use rayon::prelude::*;
use serde_json::json;

use super::exit::ExitCode;
use super::{progress, MemoryArgs};
use crate::load::{self, LoadOptions};
use crate::memory::Scenario;
use crate::units::{format_bytes, format_count};

#[derive(Args, Debug)]
pub struct AuditArgs {
    /// The folder to search (recursively) for .onnx and .prototxt files.
    pub dir: PathBuf,

    /// Write JSON lines (one object per model, then a summary) instead of the table.
    #[arg(long)]
    pub json: bool,

    /// Worker threads (default: one per core).
    #[arg(long, value_name = "N")]
    pub jobs: Option<usize>,

    /// No progress bar.
    #[arg(long, short = 'q')]
    pub quiet: bool,

    #[command(flatten)]
    pub memory: MemoryArgs,
}

/// What one model came to.
struct Row {
    path: PathBuf,
    outcome: Result<Summary, String>,
}

struct Summary {
    format: &'static str,
    params: u64,
    inference_peak: Option<u64>,
    training_peak: Option<u64>,
    warnings: usize,
}

fn model_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    // Symlinks are not followed: the audit reads only what lies in the folder.
    for entry in walkdir::WalkDir::new(dir).follow_links(false).sort_by_file_name() {
        let entry = entry.with_context(|| format!("reading {}", dir.display()))?;
        let ext = entry.path().extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase);
        if entry.file_type().is_file() && matches!(ext.as_deref(), Some("onnx" | "prototxt")) {
            files.push(entry.into_path());
        }
    }
    Ok(files)
}

fn audit_one(path: &Path, settings: &crate::memory::MemorySettings) -> Result<Summary, String> {
    // A panic in one model (a bug, not bad input) must not stop the others.
    std::panic::catch_unwind(|| {
        let graph = load::load(path, &LoadOptions::default()).map_err(|e| e.to_string())?;
        let memory = crate::memory::analyse(&graph, settings);
        let peak = |s: Scenario| memory.scenario(s).map(|r| r.peak_bytes);
        Ok(Summary {
            format: graph.format.as_str(),
            params: graph.param_totals().params,
            inference_peak: peak(Scenario::Inference),
            training_peak: peak(Scenario::Training),
            warnings: graph.warnings.len() + memory.warnings.len(),
        })
    })
    .unwrap_or_else(|_| Err(format!("{}: internal error (please report)", path.display())))
}

pub fn run(args: AuditArgs) -> Result<ExitCode> {
    let start = Instant::now();
    let files = model_files(&args.dir)?;
    let settings = args.memory.settings();
    let bar = progress::bar(files.len() as u64, "models", args.quiet || args.json);
    let work = || -> Vec<Row> {
        files
            .par_iter()
            .map(|path| {
                let outcome = audit_one(path, &settings);
                bar.inc(1);
                Row { path: path.clone(), outcome }
            })
            .collect()
    };
    let rows = match args.jobs {
        Some(n) => rayon::ThreadPoolBuilder::new().num_threads(n.max(1)).build().context("starting workers")?.install(work),
        None => work(),
    };
    bar.finish_and_clear();

    let failed = rows.iter().filter(|r| r.outcome.is_err()).count();
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let rel = |p: &Path| p.strip_prefix(&args.dir).unwrap_or(p).display().to_string();
    // The table goes to a terminal: file names and messages are escaped there (JSON escapes by itself).
    let shown = |p: &Path| crate::units::printable(&rel(p)).into_owned();
    let result = if args.json {
        rows.iter().try_for_each(|r| {
            let line = match &r.outcome {
                Ok(s) => json!({"model": rel(&r.path), "format": s.format, "params": s.params,
                    "inference_peak_bytes": s.inference_peak, "training_peak_bytes": s.training_peak, "warnings": s.warnings}),
                Err(e) => json!({"model": rel(&r.path), "error": e}),
            };
            writeln!(out, "{line}")
        })
        .and_then(|_| {
            writeln!(out, "{}", json!({"summary": {"models": rows.len(), "failed": failed, "seconds": start.elapsed().as_secs_f64()}}))
        })
    } else {
        write_table(&mut out, &rows, &shown).and_then(|_| {
            writeln!(out, "\n{} models, {} failed, {:.2} s", rows.len(), failed, start.elapsed().as_secs_f64())
        })
    };
    match result {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {}
        other => other.context("writing the audit")?,
    }
    Ok(if failed > 0 { ExitCode::Error } else { ExitCode::Success })
}

fn write_table(out: &mut dyn Write, rows: &[Row], rel: &dyn Fn(&Path) -> String) -> std::io::Result<()> {
    let header = ["model", "format", "params", "inference peak", "training peak", "warnings"];
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|r| match &r.outcome {
            Ok(s) => vec![
                rel(&r.path),
                s.format.to_string(),
                format_count(s.params),
                s.inference_peak.map(format_bytes).unwrap_or_default(),
                s.training_peak.map(format_bytes).unwrap_or_default(),
                s.warnings.to_string(),
            ],
            Err(e) => vec![rel(&r.path), "error".into(), String::new(), String::new(), String::new(), crate::units::printable(e).into_owned()],
        })
        .collect();
    let widths: Vec<usize> =
        (0..header.len()).map(|c| cells.iter().map(|r| r[c].chars().count()).chain([header[c].len()]).max().unwrap_or(0)).collect();
    let line = |out: &mut dyn Write, row: &[String]| {
        let parts: Vec<String> = row
            .iter()
            .enumerate()
            .map(|(c, v)| if (2..5).contains(&c) { format!("{v:>w$}", w = widths[c]) } else { format!("{v:<w$}", w = widths[c]) })
            .collect();
        writeln!(out, "{}", parts.join("  ").trim_end())
    };
    line(out, &header.map(String::from))?;
    line(out, &widths.iter().map(|w| "-".repeat(*w)).collect::<Vec<_>>())?;
    for r in &cells {
        line(out, r)?;
    }
    Ok(())
}
