//! `nnmem audit DIR`: flags and printing; the work is `analysis::audit`.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result};
use clap::Args;

use super::exit::ExitCode;
use super::{progress, MemoryArgs, ModelArgs};
use nnmem::analysis::audit::{self, AuditRow};
use nnmem::report::gate::{Gate, GateFailure};
use nnmem::report::json::{audit_model, AuditSummaryJson, SCHEMA_VERSION};
use nnmem::units::{format_bytes, format_count};

/// Most workers `--jobs` starts: more than the machine has cores only adds memory.
pub const MAX_JOBS: usize = 256;

#[derive(Args, Debug)]
#[command(after_help = "Examples:
  nnmem audit models/ --input 1x3x224x224
  nnmem audit models/ --dim batch=1 --dim height=512 --dim width=512 --assert 'training.peak < 8GiB'
  nnmem audit models/ --json > audit.jsonl")]
pub struct AuditArgs {
    /// The folder to search (recursively) for .onnx and .prototxt files.
    pub dir: PathBuf,

    /// Input shapes for every model: NAME=DIMS for models with that input, or
    /// DIMS for models with one input (others keep their own). Repeatable.
    #[arg(long = "input", short = 'i', value_name = "[NAME=]DIMS", value_parser = nnmem::load::InputSpec::parse)]
    pub inputs: Vec<nnmem::load::InputSpec>,

    /// Replace the batch (first) dimension of every input of every model.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub batch: Option<u64>,

    /// Bind a free dimension wherever a model has it, e.g. --dim batch=1.
    #[arg(long = "dim", value_name = "SYMBOL=N", value_parser = super::parse_dim)]
    pub dims: Vec<super::DimArg>,

    /// Caffe phase whose layers are built.
    #[arg(long, value_enum)]
    pub phase: Option<super::PhaseArg>,

    /// ONNX: count a probably tied embedding table and output projection (see `inspect --help`)
    /// as one weight in every model.
    #[arg(long)]
    pub tie_embeddings: bool,

    /// Fail (exit 1) when any model breaks this budget; a model whose figure
    /// is incomplete cannot be checked (exit 2). Repeatable; see `inspect --help`.
    #[arg(long = "assert", value_name = "GATE", value_parser = Gate::parse)]
    pub gates: Vec<Gate>,

    /// Write JSON lines (one object per model, then a summary) instead of the table.
    #[arg(long)]
    pub json: bool,

    /// Worker threads (default: one per core; at most the cores available, and 256).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub jobs: Option<u64>,

    /// No progress bar.
    #[arg(long, short = 'q')]
    pub quiet: bool,

    #[command(flatten)]
    pub memory: MemoryArgs,
}

pub fn run(args: AuditArgs) -> Result<ExitCode> {
    let start = Instant::now();
    let files = audit::model_files(&args.dir).map_err(anyhow::Error::msg)?;
    let settings = args.memory.settings();
    let options = ModelArgs {
        model: PathBuf::new(),
        inputs: args.inputs.clone(),
        batch: args.batch,
        dims: args.dims.clone(),
        phase: args.phase,
        weights: None,
        tie_embeddings: args.tie_embeddings,
    }
    .load_options()?;
    let bar = progress::bar(files.len() as u64, "models", args.quiet || args.json);
    let tick = || bar.inc(1);
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    let jobs = args.jobs.map_or(cores, |j| usize::try_from(j).unwrap_or(MAX_JOBS).min(cores).min(MAX_JOBS));
    let rows = rayon::ThreadPoolBuilder::new()
        .num_threads(jobs)
        .build()
        .context("starting workers")?
        .install(|| audit::audit(&files, &options, &settings, &args.gates, &tick));
    bar.finish_and_clear();

    let failed = rows.iter().filter(|r| r.outcome.is_err()).count();
    let incomplete = rows.iter().filter(|r| r.outcome.as_ref().is_ok_and(|a| !a.complete())).count();
    let unavailable = rows.iter().flat_map(|r| &r.gate_failures).filter(|f| matches!(f, GateFailure::Unavailable(_))).count();
    let broken = rows.iter().flat_map(|r| &r.gate_failures).filter(|f| matches!(f, GateFailure::Failed(_))).count();
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let rel = |p: &Path| p.strip_prefix(&args.dir).unwrap_or(p).display().to_string();
    let result = if args.json {
        rows.iter()
            .try_for_each(|r| json_line(&mut out, &audit_model(rel(&r.path), r)))
            .and_then(|_| {
                let summary = AuditSummaryJson {
                    schema_version: SCHEMA_VERSION,
                    kind: "audit-summary",
                    models: rows.len(),
                    failed,
                    incomplete,
                    gate_failures: broken + unavailable,
                    seconds: start.elapsed().as_secs_f64(),
                };
                json_line(&mut out, &summary)
            })
    } else {
        // The table goes to a terminal: file names and messages are escaped there (JSON escapes by itself).
        let shown = |p: &Path| nnmem::units::printable(&rel(p)).into_owned();
        write_table(&mut out, &rows, &settings, &shown).and_then(|_| {
            writeln!(
                out,
                "\n{} models, {} failed, {} incomplete (≥: a lower bound), {} gate failure(s), {:.2} s",
                rows.len(),
                failed,
                incomplete,
                broken + unavailable,
                start.elapsed().as_secs_f64()
            )
        })
    };
    match result {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {}
        other => other.context("writing the audit")?,
    }
    if !args.json {
        for r in &rows {
            for f in &r.gate_failures {
                let (GateFailure::Failed(s) | GateFailure::Unavailable(s)) = f;
                eprintln!("nnmem: {}: {}", nnmem::units::printable(&rel(&r.path)), nnmem::units::printable(s));
            }
        }
    }
    Ok(if failed > 0 || unavailable > 0 {
        ExitCode::Error
    } else if broken > 0 {
        ExitCode::AssertionFailed
    } else {
        ExitCode::Success
    })
}

/// One JSON line, escaped as every JSON nnmem writes (controls and bidi marks as \uXXXX).
fn json_line(out: &mut dyn Write, value: &impl serde::Serialize) -> std::io::Result<()> {
    let text = nnmem::report::escape::json(serde_json::to_vec(value).map_err(std::io::Error::other)?);
    out.write_all(&text)?;
    writeln!(out)
}

fn write_table(out: &mut dyn Write, rows: &[AuditRow], settings: &nnmem::memory::MemorySettings, rel: &dyn Fn(&Path) -> String) -> std::io::Result<()> {
    let mut header: Vec<String> = vec!["model".into(), "format".into(), "params".into()];
    header.extend(settings.scenarios.iter().map(|s| format!("{} peak", s.as_str())));
    header.extend(["warnings".to_string(), "gates".to_string()]);
    let n = header.len();
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            let gates = if r.gate_failures.is_empty() { String::new() } else { format!("{} failed", r.gate_failures.len()) };
            match &r.outcome {
                Ok(a) => {
                    let totals = a.graph.param_totals();
                    let params = match (a.graph.params_complete(), totals.params) {
                        (true, p) => format_count(p),
                        (false, 0) => "unknown".into(),
                        (false, p) => format!("≥ {}", format_count(p)),
                    };
                    let mut row = vec![rel(&r.path), a.graph.format.as_str().to_string(), params];
                    for s in &settings.scenarios {
                        row.push(a.memory.scenario(*s).map_or_else(String::new, |sc| {
                            let mark = if sc.completeness.is_complete() { "" } else { "≥ " };
                            format!("{mark}{}", format_bytes(sc.peak_bytes))
                        }));
                    }
                    row.push((a.graph.warnings.len() + a.memory.warnings.len()).to_string());
                    row.push(gates);
                    row
                }
                Err(e) => {
                    let mut row = vec![rel(&r.path), "error".into()];
                    row.resize(n - 2, String::new());
                    row.push(nnmem::units::printable(e).into_owned());
                    row.push(gates);
                    row
                }
            }
        })
        .collect();
    let widths: Vec<usize> =
        (0..n).map(|c| cells.iter().map(|r| r[c].chars().count()).chain([header[c].chars().count()]).max().unwrap_or(0)).collect();
    let numeric = |c: usize| c >= 2 && c < n - 2;
    let line = |out: &mut dyn Write, row: &[String]| {
        let parts: Vec<String> = row
            .iter()
            .enumerate()
            .map(|(c, v)| {
                let pad = widths[c].saturating_sub(v.chars().count());
                if numeric(c) { format!("{}{v}", " ".repeat(pad)) } else { format!("{v}{}", " ".repeat(pad)) }
            })
            .collect();
        writeln!(out, "{}", parts.join("  ").trim_end())
    };
    line(out, &header)?;
    line(out, &widths.iter().map(|w| "-".repeat(*w)).collect::<Vec<_>>())?;
    for r in &cells {
        line(out, r)?;
    }
    Ok(())
}
