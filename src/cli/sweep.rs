//! `nnmem sweep`: flags and printing; the rows come from `analysis::sweep`.
//! Each row's flags reproduce it with `nnmem inspect` and the same settings.

use std::io::Write;

use anyhow::{bail, Context, Result};
use clap::Args;

use super::exit::ExitCode;
use super::{MemoryArgs, ModelArgs};
use nnmem::analysis::fit::Knob;
use nnmem::report::json::{sweep_row, SweepJson, SCHEMA_VERSION};
use nnmem::units::format_bytes;

#[derive(Args, Debug)]
#[command(after_help = "Examples:
  nnmem sweep vgg19.prototxt --sizes 256,512,1024,2048 --scenario style-transfer
  nnmem sweep resnet50.onnx --batches 1,8,32 --dim height=224 --dim width=224
  nnmem sweep gpt.onnx --dim batch=1 --dim seq=128,512,2048")]
pub struct SweepArgs {
    #[command(flatten)]
    pub model: ModelArgs,

    /// Image heights to try (the width follows --aspect), e.g. 256,512,1024,2048.
    #[arg(long, value_name = "LIST", value_delimiter = ',', conflicts_with = "batches")]
    pub sizes: Vec<u64>,

    /// Batches to try, e.g. 1,2,4,8.
    #[arg(long, value_name = "LIST", value_delimiter = ',')]
    pub batches: Vec<u64>,

    /// Width:height when sweeping sizes (default: the model's input).
    #[arg(long, value_name = "W:H", value_parser = super::parse_aspect)]
    pub aspect: Option<(u64, u64)>,

    /// Write JSON instead of a table.
    #[arg(long)]
    pub json: bool,

    /// No warnings and no progress bar.
    #[arg(long, short = 'q')]
    pub quiet: bool,

    #[command(flatten)]
    pub memory: MemoryArgs,
}

pub fn run(args: SweepArgs) -> Result<ExitCode> {
    // A `--dim NAME=A,B,C` with several values is the swept symbol.
    let mut model = args.model.clone();
    let listed: Vec<usize> = model.dims.iter().enumerate().filter(|(_, d)| d.values.len() > 1).map(|(i, _)| i).collect();
    let symbol = match listed.as_slice() {
        [] => None,
        [i] => Some(model.dims.remove(*i)),
        _ => bail!("sweep one symbol at a time: several --dim flags have lists"),
    };
    let (knob, points) = match (args.sizes.is_empty(), args.batches.is_empty(), symbol) {
        (false, true, None) => (Knob::Resolution { input: None, aspect: args.aspect }, args.sizes.clone()),
        (true, false, None) => (Knob::Batch, args.batches.clone()),
        (true, true, Some(d)) => (Knob::Symbol(d.symbol), d.values),
        (true, true, None) => bail!("say what to sweep: --sizes 256,512,1024, --batches 1,2,4 or --dim NAME=A,B,C"),
        _ => bail!("sweep one thing at a time: --sizes, --batches or one --dim NAME=A,B,C"),
    };
    if points.contains(&0) {
        bail!("sizes, batches and symbol values start at 1");
    }
    let settings = args.memory.settings();
    let (axis, base, notes) = super::fit::axis(&model, &settings, knob)?;
    let bar = super::progress::bar(points.len() as u64, "values", args.quiet || args.json);
    let rows = nnmem::analysis::sweep::sweep(&model.model, &base, &settings, &axis, &points, || bar.inc(1))?;
    bar.finish_and_clear();
    if !args.quiet {
        if let Some(p) = rows.first() {
            super::print_warnings(&p.analysed.graph.warnings);
            super::print_warnings(&p.analysed.memory.warnings);
        }
        super::print_notes(&notes);
    }

    let mut out = Vec::new();
    if args.json {
        let value = SweepJson {
            schema_version: SCHEMA_VERSION,
            kind: "sweep",
            model: model.model.display().to_string(),
            vary: axis.knob.label(),
            profile: settings.profile.name,
            rows: rows.iter().map(sweep_row).collect(),
        };
        serde_json::to_writer_pretty(&mut out, &value).context("serialising JSON")?;
        out.push(b'\n');
        out = nnmem::report::escape::json(out);
    } else {
        // One line per value and scenario: the peak and its non-zero categories.
        let mut table: Vec<[String; 4]> = vec![["flags".into(), "scenario".into(), "peak".into(), "at the peak".into()]];
        for p in &rows {
            for s in &p.analysed.memory.scenarios {
                let parts: Vec<String> =
                    s.peak_breakdown.iter().filter(|(_, b)| *b > 0).map(|(c, b)| format!("{} {}", c.as_str(), format_bytes(b))).collect();
                table.push([nnmem::units::printable(&p.flags.join(" ")).into_owned(), s.scenario.as_str().into(), format_bytes(s.peak_bytes), parts.join(", ")]);
            }
        }
        let w: Vec<usize> = (0..3).map(|i| table.iter().map(|r| r[i].chars().count()).max().unwrap_or(0)).collect();
        for (k, r) in table.iter().enumerate() {
            writeln!(out, "{:<w0$}  {:<w1$}  {:>w2$}  {}", r[0], r[1], r[2], r[3], w0 = w[0], w1 = w[1], w2 = w[2])?;
            if k == 0 {
                writeln!(out, "{}  {}  {}  {}", "-".repeat(w[0]), "-".repeat(w[1]), "-".repeat(w[2]), "-".repeat(11))?;
            }
        }
        writeln!(out, "profile {}, {}; sizes are binary (MiB = 2^20 B)", settings.profile.name, settings.dtype.name())?;
    }
    std::io::stdout().write_all(&out).context("writing to standard output")?;
    Ok(ExitCode::Success)
}
