//! `nnmem sweep`: peaks and their breakdowns over a list of input sizes or
//! batches, as a table or JSON. Each row's `input` reproduces it with
//! `nnmem inspect --input …` and the same settings.

use std::io::Write;

use anyhow::{bail, Context, Result};
use clap::Args;
use serde_json::{json, Map, Value};

use super::exit::ExitCode;
use super::fit::{probe, Base, Vary};
use super::{MemoryArgs, ModelArgs};
use crate::memory::Category;
use crate::units::format_bytes;

#[derive(Args, Debug)]
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
    let (vary, points) = match (args.sizes.is_empty(), args.batches.is_empty()) {
        (false, _) => (Vary::Resolution, args.sizes.clone()),
        (true, false) => (Vary::Batch, args.batches.clone()),
        (true, true) => bail!("say what to sweep: --sizes 256,512,1024 or --batches 1,2,4"),
    };
    if points.contains(&0) {
        bail!("sizes and batches start at 1");
    }
    let settings = args.memory.settings();
    let base = Base::new(&args.model, &settings, args.aspect)?;
    let bar = super::progress::bar(points.len() as u64, if vary == Vary::Batch { "batches" } else { "sizes" }, args.quiet || args.json);
    let mut rows = Vec::new();
    let mut warned = false;
    for &size in &points {
        let p = probe(&args.model, &settings, &base, vary, size).with_context(|| format!("at {} {size}", vary.as_str()))?;
        if !args.quiet && !warned {
            super::print_warnings(&p.report.warnings);
            warned = true;
        }
        rows.push(p);
        bar.inc(1);
    }
    bar.finish_and_clear();

    let mut out = Vec::new();
    if args.json {
        let rows_json: Vec<Value> = rows
            .iter()
            .map(|p| {
                let mut sc = Map::new();
                for s in &p.report.scenarios {
                    let br: Map<String, Value> = s.peak_breakdown.iter().map(|(c, b)| (c.as_str().to_string(), json!(b))).collect();
                    sc.insert(
                        s.scenario.as_str().to_string(),
                        json!({
                            "peak_bytes": s.peak_bytes,
                            "peak_node": s.peak_node_name,
                            "peak_phase": s.peak_phase.as_str(),
                            "peak_breakdown": br,
                        }),
                    );
                }
                json!({ "size": p.size, "input": p.input, "scenarios": sc })
            })
            .collect();
        let value = json!({
            "model": args.model.model.display().to_string(),
            "vary": vary.as_str(),
            "profile": settings.profile.name,
            "rows": rows_json,
        });
        serde_json::to_writer_pretty(&mut out, &value).context("serialising JSON")?;
        out.push(b'\n');
        out = crate::report::escape::json(out);
    } else {
        // One line per size and scenario: the peak and its non-zero categories.
        let mut table: Vec<[String; 4]> = vec![["input".into(), "scenario".into(), "peak".into(), "at the peak".into()]];
        for p in &rows {
            for s in &p.report.scenarios {
                let parts: Vec<String> = s
                    .peak_breakdown
                    .iter()
                    .filter(|(_, b)| *b > 0)
                    .map(|(c, b)| format!("{} {}", short(c), format_bytes(b)))
                    .collect();
                table.push([crate::units::printable(&p.input).into_owned(), s.scenario.as_str().into(), format_bytes(s.peak_bytes), parts.join(", ")]);
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

fn short(c: Category) -> &'static str {
    c.as_str()
}
