//! `nnmem diff A B`: two models, or one model under two settings, side by side.
//! Each side is a model path optionally followed by inspect flags, quoted as one
//! argument: `nnmem diff 'vgg.prototxt --input data=1x3x512x512' 'vgg.prototxt --input data=1x3x1024x1024'`.

use std::io::Write;

use anyhow::{bail, Context, Result};
use clap::{Args, Parser};

use super::exit::ExitCode;
use super::{MemoryArgs, ModelArgs};
use nnmem::analysis::Analysed;
use nnmem::report::gate::{DeltaGate, Figure, GateFailure, Subject};
use nnmem::units::{format_bytes, format_count};

#[derive(Args, Debug)]
#[command(after_help = "Examples:
  nnmem diff 'vgg19.prototxt --input data=1x3x512x512' 'vgg19.prototxt --batch 4'
  nnmem diff old.onnx new.onnx --assert 'training.peak.delta < 5%' --assert 'params.delta <= 0'
  nnmem diff vgg19.prototxt 'vgg19.prototxt --scenario training --optimizer adam'")]
pub struct DiffArgs {
    /// The first side: a model path, optionally followed by inspect flags (quote them together).
    pub a: String,
    /// The second side, like the first.
    pub b: String,
    /// How many changed layers to list.
    #[arg(long, default_value_t = 10)]
    pub top: usize,
    /// Fail (exit 1) unless the change of a figure from A to B holds, e.g.
    /// 'training.peak.delta < 5%' (of A's figure) or 'params.delta <= 0' or
    /// 'inference.peak.delta < 100MiB'. An incomplete figure on either side
    /// cannot be checked: exit 2. Repeatable.
    #[arg(long = "assert", value_name = "GATE", value_parser = DeltaGate::parse)]
    pub gates: Vec<DeltaGate>,
    /// Write JSON instead of the table.
    #[arg(long)]
    pub json: bool,
}

/// The flags one side may carry: the model's and the memory pass's.
#[derive(Parser, Debug)]
#[command(name = "side", no_binary_name = true)]
struct Side {
    #[command(flatten)]
    model: ModelArgs,
    #[command(flatten)]
    memory: MemoryArgs,
}

/// Split a side on whitespace, honouring single and double quotes.
fn split_words(text: &str) -> Result<Vec<String>> {
    let mut words = Vec::new();
    let mut current = String::new();
    let mut quote: Option<char> = None;
    let mut in_word = false;
    for c in text.chars() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), c) => current.push(c),
            (None, '\'' | '"') => {
                quote = Some(c);
                in_word = true;
            }
            (None, c) if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut current));
                    in_word = false;
                }
            }
            (None, c) => {
                current.push(c);
                in_word = true;
            }
        }
    }
    if quote.is_some() {
        bail!("unbalanced quote in \"{text}\"");
    }
    if in_word {
        words.push(current);
    }
    Ok(words)
}

fn analyse_side(text: &str) -> Result<Analysed> {
    let words = split_words(text)?;
    let side = Side::try_parse_from(&words).map_err(|e| anyhow::anyhow!("in \"{text}\": {}", e.to_string().trim()))?;
    super::analyse(&side.model, &side.memory.settings())
}

pub fn run(args: DiffArgs) -> Result<ExitCode> {
    let a = analyse_side(&args.a).context("side A")?;
    let b = analyse_side(&args.b).context("side B")?;
    let d = nnmem::analysis::diff::diff(&a, &b, args.top);
    let mut failures = Vec::new();
    let mut code = ExitCode::Success;
    for g in &args.gates {
        match g.evaluate(&a, &b) {
            Ok(()) => {}
            Err(GateFailure::Failed(r)) => {
                failures.push(r);
                if code == ExitCode::Success {
                    code = ExitCode::AssertionFailed;
                }
            }
            Err(GateFailure::Unavailable(r)) => {
                failures.push(r);
                code = ExitCode::Error;
            }
        }
    }
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    if args.json {
        let v = nnmem::report::json::diff(&args.a, &args.b, &d, failures.clone());
        let text = nnmem::report::escape::json(serde_json::to_vec_pretty(&v)?);
        out.write_all(&text)?;
        writeln!(out)?;
    } else {
        write_table(&mut out, &args, &d)?;
    }
    for f in &failures {
        eprintln!("nnmem: {}", nnmem::units::printable(f));
    }
    Ok(code)
}

fn write_table(out: &mut dyn Write, args: &DiffArgs, d: &nnmem::analysis::diff::DiffResult) -> Result<()> {
    writeln!(out, "A: {}\nB: {}\n", args.a, args.b)?;
    writeln!(out, "{:<36} {:>18} {:>18} {:>10}", "", "A", "B", "B/A")?;
    for f in &d.figures {
        // Breakdown categories that are zero on both sides say nothing.
        let category = matches!(f.subject, Subject::Scenario(_, Figure::Category(_)));
        if category && f.a.unwrap_or(0) == 0 && f.b.unwrap_or(0) == 0 {
            continue;
        }
        let show = |v: Option<u64>| match v {
            None => "-".to_string(),
            Some(v) if f.subject.is_count() => format_count(v),
            Some(v) => format_bytes(v),
        };
        let mark = if f.complete { "" } else { "≥ " };
        let ratio = match (f.a, f.b) {
            (Some(x), Some(y)) if x > 0 => format!("{:.3}", y as f64 / x as f64),
            _ => "-".into(),
        };
        let name = format!("{}{}", f.subject, if f.complete { "" } else { " (incomplete)" });
        writeln!(out, "{name:<36} {:>18} {:>18} {ratio:>10}", format!("{mark}{}", show(f.a)), format!("{mark}{}", show(f.b)))?;
    }
    let scenario = d.layer_scenario.map(|s| s.as_str()).unwrap_or("none");
    writeln!(out, "\nlayers whose memory (output + saved + workspace, {scenario}) changed most:")?;
    for l in &d.layers {
        let show = |v: Option<u64>| v.map(format_bytes).unwrap_or_else(|| "absent".into());
        writeln!(out, "  {:<32} {:>12} -> {:>12}", nnmem::units::printable(&l.layer), show(l.a_bytes), show(l.b_bytes))?;
    }
    if d.layers.is_empty() {
        writeln!(out, "  none")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::split_words;

    #[test]
    fn splits_with_quotes() {
        assert_eq!(split_words("a.onnx --input 'data=1x3x8x8'").unwrap(), ["a.onnx", "--input", "data=1x3x8x8"]);
        assert_eq!(split_words("\"my model.onnx\"").unwrap(), ["my model.onnx"]);
        assert!(split_words("'open").is_err());
    }
}
