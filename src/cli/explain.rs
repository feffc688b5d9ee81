//! `nnmem explain`: from the naive arithmetic people do first (learned weights
//! plus every neuron, times the element size) to the profile's peak, one
//! correction at a time. The steps telescope, so they add up exactly to the
//! peak; the rules behind each are in docs/memory-model.md ("nnmem explain").

use std::io::Write;

use anyhow::{Context, Result};
use clap::Args;

use super::exit::ExitCode;
use super::{MemoryArgs, ModelArgs};
use nnmem::analysis::explain::{chosen, steps};
use nnmem::report::json::{ExplainJson, ExplainStepJson, SCHEMA_VERSION};
use nnmem::units::format_bytes;

#[derive(Args, Debug)]
#[command(after_help = "Examples:
  nnmem explain seed_cnn.prototxt --profile tiny-dnn --threads 8 --dtype f64
  nnmem explain vgg19.prototxt --scenario style-transfer --optimizer lbfgs:100 --profile torch-nn")]
pub struct ExplainArgs {
    #[command(flatten)]
    pub model: ModelArgs,

    /// Write JSON instead of text.
    #[arg(long)]
    pub json: bool,

    /// Print no warnings on standard error.
    #[arg(long, short = 'q')]
    pub quiet: bool,

    #[command(flatten)]
    pub memory: MemoryArgs,
}

pub fn run(args: ExplainArgs) -> Result<ExitCode> {
    let settings = args.memory.settings();
    let a = super::analyse(&args.model, &settings)?;
    let graph = &a.graph;
    let scenario = chosen(&settings);
    let (steps, report) = steps(graph, &settings, scenario);
    if !args.quiet {
        super::print_warnings(&graph.warnings);
        super::print_notes(&a.notes);
    }
    let complete = report.completeness.is_complete();
    if !complete && !args.quiet {
        if let Some(why) = nnmem::analysis::incompleteness(graph, &report) {
            super::print_warnings(&[format!("the peak is only a lower bound: {why}")]);
        }
    }
    let mut out = Vec::new();
    let peak = report.peak_bytes;
    if args.json {
        let value = ExplainJson {
            schema_version: SCHEMA_VERSION,
            kind: "explain",
            model: args.model.model.display().to_string(),
            scenario: scenario.as_str(),
            profile: settings.profile.name,
            threads: settings.threads,
            dtype: settings.dtype.name(),
            steps: steps
                .iter()
                .map(|s| ExplainStepJson { step: s.what.clone(), why: s.why.clone(), bytes: s.delta as i64, total_bytes: s.total })
                .collect(),
            peak_bytes: peak,
            peak_node: report.peak_node_name.clone(),
            peak_phase: report.peak_phase.as_str(),
            complete,
        };
        serde_json::to_writer_pretty(&mut out, &value).context("serialising JSON")?;
        out.push(b'\n');
        out = nnmem::report::escape::json(out);
    } else {
        writeln!(
            out,
            "{}: {} peak, profile {}, {}, {} thread(s)",
            nnmem::units::printable(&args.model.model.display().to_string()),
            scenario.as_str(),
            settings.profile.name,
            settings.dtype.name(),
            settings.threads
        )?;
        let width = steps.iter().map(|s| s.what.chars().count()).max().unwrap_or(0);
        let mut prev = 0u64;
        for (k, s) in steps.iter().enumerate() {
            let sign = if s.delta < 0 { "-" } else { "+" };
            let amount = format_bytes(s.delta.unsigned_abs().min(u128::from(u64::MAX)) as u64);
            let factor = if k >= 2 && prev > 0 { format!("×{:.2}", s.total as f64 / prev as f64) } else { String::new() };
            writeln!(
                out,
                "{:>2}. {:<width$}  {sign}{:>11}  = {:>11}  {:>6}  {}",
                k + 1,
                // Step texts name layers of the model: escaped for the terminal.
                nnmem::units::printable(&s.what),
                amount,
                format_bytes(s.total),
                factor,
                nnmem::units::printable(&s.why)
            )?;
            prev = s.total;
        }
        writeln!(
            out,
            "peak: {}{} ({} bytes) at {} ({}), ×{:.1} the naive {}",
            if complete { "" } else { "≥ " },
            format_bytes(peak),
            peak,
            nnmem::units::printable(report.peak_node_name.as_deref().unwrap_or("-")),
            report.peak_phase.as_str(),
            peak as f64 / steps.get(1).map(|s| s.total.max(1)).unwrap_or(1) as f64,
            steps.get(1).map(|s| format_bytes(s.total)).unwrap_or_default()
        )?;
    }
    std::io::stdout().write_all(&out).context("writing to standard output")?;
    Ok(ExitCode::Success)
}
