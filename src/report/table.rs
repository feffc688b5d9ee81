//! The human-readable table: one row per node (layer, type, output shape,
//! params, output size) and totals. Sizes in binary units (MiB = 2^20 bytes).

use std::io::{self, Write};

use super::{activation_bytes, input_bytes, shape_text, Source};
use crate::analysis::Analysed;
use crate::graph::Graph;
use crate::units::{format_bytes, format_count, printable};

/// One table row, already formatted.
pub struct Row {
    pub cells: Vec<String>,
}

/// Extra columns an analysis adds to each node row (header, one cell per node).
pub struct Column {
    pub header: String,
    pub cells: Vec<String>,
}

/// How the table is drawn.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Style {
    /// Aligned columns; `color` makes the header bold (only on a terminal).
    Text { color: bool },
    /// A GitHub-flavoured Markdown table.
    Markdown,
}

/// Header and formatted cells of the per-node table.
fn node_rows(graph: &Graph, extra: &[Column]) -> (Vec<String>, Vec<Row>) {
    let per_node = graph.node_param_counts();
    let mut weights_unsized = vec![false; graph.nodes.len()];
    for n in &graph.uncounted_weights {
        weights_unsized[n.0] = true;
    }
    let mut header: Vec<String> = ["layer", "type", "output shape", "params", "output"].map(String::from).to_vec();
    header.extend(extra.iter().map(|c| c.header.clone()));
    let mut rows = Vec::with_capacity(graph.nodes.len());
    for (i, (node, &(learned, stats))) in graph.nodes.iter().zip(&per_node).enumerate() {
        let shapes: Vec<String> = node.outputs.iter().map(|&t| shape_text(graph, t)).collect();
        let params = match (learned, stats) {
            _ if weights_unsized[i] => "?".to_string(),
            (0, 0) => String::new(),
            (l, 0) => format_count(l),
            (l, s) => format!("{} (+{} stats)", format_count(l), format_count(s)),
        };
        let mut cells = vec![
            if node.in_place { format!("{} (in place)", node.name) } else { node.name.clone() },
            node.source_type.clone(),
            shapes.join(" "),
            params,
            output_bytes(graph, node).map(format_bytes).unwrap_or_else(|| "?".into()),
        ];
        cells.extend(extra.iter().map(|c| c.cells.get(i).cloned().unwrap_or_default()));
        // Names come from the model file: never let them drive the terminal.
        let cells = cells.into_iter().map(|c| crate::units::printable(&c).into_owned()).collect();
        rows.push(Row { cells });
    }
    (header, rows)
}

/// Bytes of all of a node's outputs, when every one is known.
fn output_bytes(graph: &Graph, node: &crate::graph::Node) -> Option<u64> {
    node.outputs.iter().map(|&t| graph.tensor(t).bytes()).try_fold(0u64, |a, b| a.checked_add(b?))
}

/// The `inspect` report for people: what was read, the summary (parameters,
/// each scenario's peak with its node and breakdown, incomplete figures as
/// lower bounds with the flags that complete them), then the per-node table,
/// then totals and units.
pub fn write_inspect(out: &mut dyn Write, a: &Analysed, source: &Source<'_>, style: Style) -> io::Result<()> {
    let graph = &a.graph;
    let (bullet, heading) = if style == Style::Markdown { ("- ", "## ") } else { ("", "") };
    writeln!(out, "{heading}{} ({}, {})", printable(&graph.name), graph.format.as_str(), printable(source.path))?;
    if style == Style::Markdown {
        writeln!(out)?;
    }
    for &t in &graph.inputs {
        let tensor = graph.tensor(t);
        writeln!(out, "{bullet}input {} {} {}", printable(&tensor.name), printable(&shape_text(graph, t)), tensor.dtype.name())?;
    }
    for line in summary_lines(a, source) {
        match (style, line.strip_prefix("  ")) {
            (Style::Markdown, Some(sub)) => writeln!(out, "  - {}", printable(sub))?,
            (Style::Markdown, None) => writeln!(out, "- {}", printable(&line))?,
            _ => writeln!(out, "{}", printable(&line))?,
        }
    }
    writeln!(out)?;
    write_table(out, graph, &memory_columns(&a.memory), style)?;
    writeln!(out)?;
    writeln!(
        out,
        "{bullet}activations (all outputs at once, in-place counted once): {}; inputs: {}",
        format_bytes(activation_bytes(graph)),
        format_bytes(input_bytes(graph))
    )?;
    for sc in &a.memory.scenarios {
        writeln!(
            out,
            "{bullet}{} naive sums: all outputs {}, x2 for backward {}",
            sc.scenario.as_str(),
            format_bytes(sc.naive.activations_bytes),
            format_bytes(sc.naive.activations_x2_bytes)
        )?;
    }
    writeln!(out, "{bullet}units: KiB = 1024 B, MiB = 1024 KiB, GiB = 1024 MiB")?;
    Ok(())
}

/// The summary, one line each; sub-lines start with two spaces.
pub fn summary_lines(a: &Analysed, source: &Source<'_>) -> Vec<String> {
    let graph = &a.graph;
    let mut lines = Vec::new();
    let totals = graph.param_totals();
    let stats = if totals.non_trainable > 0 {
        format!(" + {} running statistics", format_count(totals.non_trainable))
    } else {
        String::new()
    };
    if graph.params_complete() {
        lines.push(format!("params: {} learned{stats}, {}", format_count(totals.params), format_bytes(totals.param_bytes)));
    } else {
        let n = graph.uncounted_weights.len();
        let first = graph.uncounted_weights.first().map(|&i| graph.node(i).name.as_str()).unwrap_or_default();
        let counted = if totals.params == 0 && totals.non_trainable == 0 {
            "unknown".to_string()
        } else {
            format!("≥ {} learned{stats}, ≥ {}", format_count(totals.params), format_bytes(totals.param_bytes))
        };
        lines.push(format!("params: {counted} (incomplete: {n} layer(s) with weights of unknown size, first \"{first}\")"));
    }
    let bind = crate::analysis::missing_bindings(graph);
    for sc in &a.memory.scenarios {
        let s = &sc.settings;
        let opt = s.optimizer.map(|o| format!(", optimizer {o}")).unwrap_or_default();
        let complete = sc.completeness.is_complete();
        let peak = if complete { format_bytes(sc.peak_bytes) } else { format!("≥ {} (incomplete)", format_bytes(sc.peak_bytes)) };
        lines.push(format!(
            "{} peak: {peak} at {} ({}); profile {}, {}{}{opt}",
            sc.scenario.as_str(),
            sc.peak_node_name.as_deref().unwrap_or(sc.peak_phase.as_str()),
            sc.peak_phase.as_str(),
            s.profile,
            s.dtype.name(),
            if s.mixed_precision { " mixed precision" } else { "" },
        ));
        let parts: Vec<String> = sc
            .peak_breakdown
            .iter()
            .filter(|(_, b)| *b > 0)
            .map(|(c, b)| format!("{} {}", c.as_str(), format_bytes(b)))
            .collect();
        lines.push(format!("  at the peak: {}", parts.join(", ")));
        if let Some(why) = crate::analysis::incompleteness(graph, sc) {
            lines.push(format!("  incomplete: {why}"));
        }
    }
    if !bind.is_empty() && a.memory.scenarios.iter().any(|s| !s.completeness.is_complete()) {
        lines.push(format!("to complete the figures: nnmem inspect {} {}", source.path, bind.join(" ")));
    }
    for n in &a.notes {
        lines.push(format!("note: {n}"));
    }
    lines
}

/// The per-node table with extra columns.
pub fn write_table(out: &mut dyn Write, graph: &Graph, extra: &[Column], style: Style) -> io::Result<()> {
    let (header, rows) = node_rows(graph, extra);
    let widths: Vec<usize> = (0..header.len())
        .map(|c| rows.iter().map(|r| r.cells[c].chars().count()).chain([header[c].chars().count()]).max().unwrap_or(0))
        .collect();
    let numeric = |c: usize| c >= 3;
    let line = |out: &mut dyn Write, cells: &[String]| -> io::Result<()> {
        if style == Style::Markdown {
            let escaped: Vec<String> = cells.iter().map(|c| c.replace('|', "\\|")).collect();
            return writeln!(out, "| {} |", escaped.join(" | "));
        }
        let mut text = String::new();
        for (c, cell) in cells.iter().enumerate() {
            if c > 0 {
                text.push_str("  ");
            }
            let pad = widths[c].saturating_sub(cell.chars().count());
            if numeric(c) {
                text.push_str(&" ".repeat(pad));
                text.push_str(cell);
            } else {
                text.push_str(cell);
                text.push_str(&" ".repeat(pad));
            }
        }
        writeln!(out, "{}", text.trim_end())
    };

    match style {
        Style::Text { color: true } => {
            let mut buf = Vec::new();
            line(&mut buf, &header)?;
            let text = String::from_utf8_lossy(&buf);
            writeln!(out, "\x1b[1m{}\x1b[0m", text.trim_end())?;
        }
        _ => line(out, &header)?,
    }
    let rule: Vec<String> = match style {
        Style::Markdown => (0..header.len()).map(|c| if numeric(c) { "---:".to_string() } else { "---".to_string() }).collect(),
        Style::Text { .. } => widths.iter().map(|w| "-".repeat(*w)).collect(),
    };
    line(out, &rule)?;
    for r in &rows {
        line(out, &r.cells)?;
    }
    Ok(())
}

/// Comma-separated values for spreadsheets: one row per node, exact integers
/// (bytes, elements), per scenario saved / workspace / live-after bytes.
pub fn write_csv(out: &mut dyn Write, graph: &Graph, memory: &crate::memory::MemoryReport) -> io::Result<()> {
    let quote = |s: &str| {
        if s.contains([',', '"', '\n']) {
            format!("\"{}\"", s.replace('"', "\"\""))
        } else {
            s.to_string()
        }
    };
    let mut header: Vec<String> =
        ["layer", "op", "concept", "output_shape", "params", "non_trainable", "output_bytes", "in_place"].map(String::from).to_vec();
    for sc in &memory.scenarios {
        for f in ["saved_bytes", "workspace_bytes", "live_bytes_after"] {
            header.push(format!("{}_{f}", sc.scenario.as_str()));
        }
    }
    writeln!(out, "{}", header.join(","))?;
    let per_node = graph.node_param_counts();
    for (i, (node, &(learned, stats))) in graph.nodes.iter().zip(&per_node).enumerate() {
        let shapes: Vec<String> = node.outputs.iter().map(|&t| shape_text(graph, t)).collect();
        let mut cells = vec![
            quote(&node.name),
            quote(&node.source_type),
            quote(node.op.name()),
            quote(&shapes.join(" ")),
            learned.to_string(),
            stats.to_string(),
            output_bytes(graph, node).map(|b| b.to_string()).unwrap_or_default(),
            node.in_place.to_string(),
        ];
        for sc in &memory.scenarios {
            let n = sc.nodes.get(i);
            cells.push(n.map(|n| n.saved_bytes.to_string()).unwrap_or_default());
            cells.push(n.map(|n| n.workspace_bytes.to_string()).unwrap_or_default());
            cells.push(n.map(|n| n.live_bytes_after.to_string()).unwrap_or_default());
        }
        writeln!(out, "{}", cells.join(","))?;
    }
    Ok(())
}

/// Memory columns for the node table: output, then per scenario the live bytes after the node.
pub fn memory_columns(memory: &crate::memory::MemoryReport) -> Vec<Column> {
    let mut cols = Vec::new();
    for sc in &memory.scenarios {
        let name = sc.scenario.as_str();
        if sc.scenario == crate::memory::Scenario::Training {
            cols.push(Column {
                header: "saved (train)".into(),
                cells: sc.nodes.iter().map(|n| if n.saved_bytes > 0 { format_bytes(n.saved_bytes) } else { String::new() }).collect(),
            });
        }
        cols.push(Column {
            header: format!("workspace ({name})"),
            cells: sc.nodes.iter().map(|n| if n.workspace_bytes > 0 { format_bytes(n.workspace_bytes) } else { String::new() }).collect(),
        });
        cols.push(Column {
            header: format!("live after ({name})"),
            cells: sc.nodes.iter().map(|n| if n.runs { format_bytes(n.live_bytes_after) } else { "not run".into() }).collect(),
        });
    }
    cols
}
