//! The human-readable table: one row per node (layer, type, output shape,
//! params, output size) and totals. Sizes in binary units (MiB = 2^20 bytes).

use std::io::{self, Write};

use super::{activation_bytes, input_bytes, shape_text, Source};
use crate::graph::Graph;
use super::escape;
use crate::units::{format_bytes, format_count};

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
    let mut header: Vec<String> = ["layer", "type", "output shape", "params", "output"].map(String::from).to_vec();
    header.extend(extra.iter().map(|c| c.header.clone()));
    let mut rows = Vec::with_capacity(graph.nodes.len());
    for (i, (node, &(learned, stats))) in graph.nodes.iter().zip(&per_node).enumerate() {
        let shapes: Vec<String> = node.outputs.iter().map(|&t| shape_text(graph, t)).collect();
        let params = match (learned, stats) {
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
        rows.push(Row { cells });
    }
    (header, rows)
}

/// Bytes of all of a node's outputs, when every one is known.
fn output_bytes(graph: &Graph, node: &crate::graph::Node) -> Option<u64> {
    node.outputs.iter().map(|&t| graph.tensor(t).bytes()).try_fold(0u64, |a, b| a.checked_add(b?))
}

/// Render the per-node table, with extra columns, then the totals.
pub fn write(out: &mut dyn Write, graph: &Graph, source: &Source<'_>, extra: &[Column], style: Style) -> io::Result<()> {
    // Names come from the model file: every cell goes through the format's escape.
    let esc = |text: &str| match style {
        Style::Markdown => escape::markdown(text),
        Style::Text { .. } => escape::terminal(text).into_owned(),
    };
    let (header, rows) = node_rows(graph, extra);
    let rows: Vec<Row> = rows.into_iter().map(|r| Row { cells: r.cells.iter().map(|c| esc(c)).collect() }).collect();
    let widths: Vec<usize> = (0..header.len())
        .map(|c| rows.iter().map(|r| r.cells[c].chars().count()).chain([header[c].chars().count()]).max().unwrap_or(0))
        .collect();
    let numeric = |c: usize| c >= 3;
    let line = |out: &mut dyn Write, cells: &[String]| -> io::Result<()> {
        if style == Style::Markdown {
            return writeln!(out, "| {} |", cells.join(" | "));
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

    let (bullet, heading) = if style == Style::Markdown { ("- ", "## ") } else { ("", "") };
    writeln!(out, "{heading}{} ({}, {})", esc(&graph.name), graph.format.as_str(), esc(source.path))?;
    if style == Style::Markdown {
        writeln!(out)?;
    }
    for &t in &graph.inputs {
        let tensor = graph.tensor(t);
        writeln!(out, "{bullet}input {} {} {}", esc(&tensor.name), esc(&shape_text(graph, t)), tensor.dtype.name())?;
    }
    writeln!(out)?;
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
    let totals = graph.param_totals();
    writeln!(out)?;
    writeln!(
        out,
        "{bullet}params: {} learned{}, {}",
        format_count(totals.params),
        if totals.non_trainable > 0 { format!(" + {} running statistics", format_count(totals.non_trainable)) } else { String::new() },
        format_bytes(totals.param_bytes)
    )?;
    writeln!(
        out,
        "{bullet}activations (all outputs at once, in-place counted once): {}; inputs: {}",
        format_bytes(activation_bytes(graph)),
        format_bytes(input_bytes(graph))
    )?;
    writeln!(out, "{bullet}units: KiB = 1024 B, MiB = 1024 KiB, GiB = 1024 MiB")?;
    Ok(())
}

/// Comma-separated values for spreadsheets: one row per node, exact integers
/// (bytes, elements), per scenario saved / workspace / live-after bytes.
pub fn write_csv(out: &mut dyn Write, graph: &Graph, memory: &crate::memory::MemoryReport) -> io::Result<()> {
    // Names from the file: quoted, no raw control characters, no formulas.
    let quote = escape::csv;
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
            cells: sc.nodes.iter().map(|n| format_bytes(n.live_bytes_after)).collect(),
        });
    }
    cols
}

/// Summary lines: each scenario's peak, where it happens, and its breakdown.
pub fn write_memory_summary(out: &mut dyn Write, memory: &crate::memory::MemoryReport, style: Style) -> io::Result<()> {
    let esc = |text: &str| match style {
        Style::Markdown => escape::markdown(text),
        Style::Text { .. } => escape::terminal(text).into_owned(),
    };
    for sc in &memory.scenarios {
        let s = &sc.settings;
        let opt = s.optimizer.map(|o| format!(", optimizer {o}")).unwrap_or_default();
        writeln!(
            out,
            "{} peak: {} at {} ({}); profile {}, {}{}{}",
            sc.scenario.as_str(),
            format_bytes(sc.peak_bytes),
            esc(sc.peak_node_name.as_deref().unwrap_or(sc.peak_phase.as_str())),
            sc.peak_phase.as_str(),
            s.profile,
            s.dtype.name(),
            if s.mixed_precision { " mixed precision" } else { "" },
            opt
        )?;
        let parts: Vec<String> = sc
            .peak_breakdown
            .iter()
            .filter(|(_, b)| *b > 0)
            .map(|(c, b)| format!("{} {}", c.as_str(), format_bytes(b)))
            .collect();
        writeln!(out, "  at the peak: {}", parts.join(", "))?;
        writeln!(
            out,
            "  naive sums: all outputs {}, x2 for backward {}",
            format_bytes(sc.naive.activations_bytes),
            format_bytes(sc.naive.activations_x2_bytes)
        )?;
    }
    Ok(())
}
