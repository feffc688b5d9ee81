//! `nnmem diff A B`: two models, or one model under two settings, side by side.
//! Each side is a model path optionally followed by inspect flags, quoted as one
//! argument: `nnmem diff 'vgg.prototxt --input data=1x3x512x512' 'vgg.prototxt --input data=1x3x1024x1024'`.

use std::io::Write;

use anyhow::{bail, Context, Result};
use clap::{Args, Parser};

use super::exit::ExitCode;
use super::{load_model, MemoryArgs, ModelArgs};
use crate::graph::Graph;
use crate::memory::{MemoryReport, Scenario};
use crate::units::{format_bytes, format_count};

#[derive(Args, Debug)]
pub struct DiffArgs {
    /// The first side: a model path, optionally followed by inspect flags (quote them together).
    pub a: String,
    /// The second side, like the first.
    pub b: String,
    /// How many changed layers to list.
    #[arg(long, default_value_t = 10)]
    pub top: usize,
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

struct Analysed {
    label: String,
    graph: Graph,
    memory: MemoryReport,
}

fn analyse_side(text: &str) -> Result<Analysed> {
    let words = split_words(text)?;
    let side = Side::try_parse_from(&words).map_err(|e| anyhow::anyhow!("in \"{text}\": {}", e.to_string().trim()))?;
    let graph = load_model(&side.model)?;
    let memory = crate::memory::analyse(&graph, &side.memory.settings());
    Ok(Analysed { label: text.to_string(), graph, memory })
}

/// Per-layer bytes that change with a model edit: output, saved and workspace
/// (training when computed, else inference).
fn layer_bytes(side: &Analysed) -> Vec<(String, u64)> {
    let sc = side.memory.scenario(Scenario::Training).or_else(|| side.memory.scenario(Scenario::Inference));
    side.graph
        .nodes
        .iter()
        .enumerate()
        .map(|(i, n)| {
            let m = sc.and_then(|s| s.nodes.get(i));
            let total = m.map(|m| m.output_bytes.saturating_add(m.saved_bytes).saturating_add(m.workspace_bytes)).unwrap_or(0);
            (n.name.clone(), total)
        })
        .collect()
}

pub fn run(args: DiffArgs) -> Result<ExitCode> {
    let a = analyse_side(&args.a).context("side A")?;
    let b = analyse_side(&args.b).context("side B")?;
    let (pa, pb) = (a.graph.param_totals(), b.graph.param_totals());

    let mut rows: Vec<(String, u64, u64)> = vec![
        ("params".into(), pa.params, pb.params),
        ("non_trainable".into(), pa.non_trainable, pb.non_trainable),
        ("param_bytes".into(), pa.param_bytes, pb.param_bytes),
    ];
    for s in [Scenario::Inference, Scenario::Training] {
        if let (Some(x), Some(y)) = (a.memory.scenario(s), b.memory.scenario(s)) {
            rows.push((format!("{}.peak", s.as_str()), x.peak_bytes, y.peak_bytes));
        }
    }

    // Layers matched by name; a layer on one side only counts against zero.
    let la = layer_bytes(&a);
    let lb = layer_bytes(&b);
    let mut names: Vec<&String> = la.iter().map(|(n, _)| n).collect();
    names.extend(lb.iter().map(|(n, _)| n).filter(|n| !la.iter().any(|(m, _)| m == *n)));
    let get = |v: &[(String, u64)], n: &str| v.iter().find(|(m, _)| m == n).map(|(_, b)| *b);
    let mut changes: Vec<(String, Option<u64>, Option<u64>)> =
        names.iter().map(|n| ((*n).clone(), get(&la, n), get(&lb, n))).filter(|(_, x, y)| x != y).collect();
    let delta = |x: &Option<u64>, y: &Option<u64>| (y.unwrap_or(0) as i128 - x.unwrap_or(0) as i128).abs();
    changes.sort_by_key(|(_, x, y)| std::cmp::Reverse(delta(x, y)));
    changes.truncate(args.top);

    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    if args.json {
        let v = serde_json::json!({
            "a": a.label, "b": b.label,
            "figures": rows.iter().map(|(k, x, y)| serde_json::json!({"name": k, "a": x, "b": y})).collect::<Vec<_>>(),
            "layers": changes.iter().map(|(n, x, y)| serde_json::json!({"layer": n, "a_bytes": x, "b_bytes": y})).collect::<Vec<_>>(),
        });
        writeln!(out, "{}", serde_json::to_string_pretty(&v)?)?;
        return Ok(ExitCode::Success);
    }
    writeln!(out, "A: {}\nB: {}\n", a.label, b.label)?;
    writeln!(out, "{:<18} {:>16} {:>16} {:>10}", "", "A", "B", "B/A")?;
    for (k, x, y) in &rows {
        let show = |v: u64| if k.contains("params") || k == "non_trainable" { format_count(v) } else { format_bytes(v) };
        let ratio = if *x > 0 { format!("{:.3}", *y as f64 / *x as f64) } else { "-".into() };
        writeln!(out, "{k:<18} {:>16} {:>16} {ratio:>10}", show(*x), show(*y))?;
    }
    writeln!(out, "\nlayers whose memory (output + saved + workspace) changed most:")?;
    for (n, x, y) in &changes {
        let show = |v: &Option<u64>| v.map(format_bytes).unwrap_or_else(|| "absent".into());
        writeln!(out, "  {:<32} {:>12} -> {:>12}", crate::units::printable(n), show(x), show(y))?;
    }
    if changes.is_empty() {
        writeln!(out, "  none")?;
    }
    Ok(ExitCode::Success)
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
