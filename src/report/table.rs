//! The human-readable table: one row per node (layer, type, output shape,
//! params, output size) and totals. Sizes in binary units (MiB = 2^20 bytes).

use std::io::{self, Write};

use super::{activation_bytes, input_bytes, shape_text, Source};
use crate::graph::Graph;
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

/// Render the per-node table, with extra columns, then the totals.
pub fn write(out: &mut dyn Write, graph: &Graph, source: &Source<'_>, extra: &[Column]) -> io::Result<()> {
    let per_node = graph.node_param_counts();
    let mut header: Vec<String> = ["layer", "type", "output shape", "params", "output"].map(String::from).to_vec();
    header.extend(extra.iter().map(|c| c.header.clone()));
    let mut rows = Vec::with_capacity(graph.nodes.len());
    for (i, (node, &(learned, stats))) in graph.nodes.iter().zip(&per_node).enumerate() {
        let shapes: Vec<String> = node.outputs.iter().map(|&t| shape_text(graph, t)).collect();
        let out_bytes: Option<u64> =
            node.outputs.iter().map(|&t| graph.tensor(t).bytes()).try_fold(0u64, |a, b| a.checked_add(b?));
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
            out_bytes.map(format_bytes).unwrap_or_else(|| "?".into()),
        ];
        cells.extend(extra.iter().map(|c| c.cells.get(i).cloned().unwrap_or_default()));
        rows.push(Row { cells });
    }
    let widths: Vec<usize> = (0..header.len())
        .map(|c| rows.iter().map(|r| r.cells[c].chars().count()).chain([header[c].chars().count()]).max().unwrap_or(0))
        .collect();
    let numeric = |c: usize| c >= 3;
    let line = |out: &mut dyn Write, cells: &[String]| -> io::Result<()> {
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

    writeln!(out, "{} ({}, {})", graph.name, graph.format.as_str(), source.path)?;
    for &t in &graph.inputs {
        let tensor = graph.tensor(t);
        writeln!(out, "input {} {} {}", tensor.name, shape_text(graph, t), tensor.dtype.name())?;
    }
    writeln!(out)?;
    line(out, &header)?;
    let rule: Vec<String> = widths.iter().map(|w| "-".repeat(*w)).collect();
    line(out, &rule)?;
    for r in &rows {
        line(out, &r.cells)?;
    }
    let totals = graph.param_totals();
    writeln!(out)?;
    writeln!(
        out,
        "params: {} learned{}, {}",
        format_count(totals.params),
        if totals.non_trainable > 0 { format!(" + {} running statistics", format_count(totals.non_trainable)) } else { String::new() },
        format_bytes(totals.param_bytes)
    )?;
    writeln!(
        out,
        "activations (all outputs at once, in-place counted once): {}; inputs: {}",
        format_bytes(activation_bytes(graph)),
        format_bytes(input_bytes(graph))
    )?;
    writeln!(out, "units: KiB = 1024 B, MiB = 1024 KiB, GiB = 1024 MiB")?;
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
pub fn write_memory_summary(out: &mut dyn Write, memory: &crate::memory::MemoryReport) -> io::Result<()> {
    for sc in &memory.scenarios {
        let s = &sc.settings;
        let opt = s.optimizer.map(|o| format!(", optimizer {o}")).unwrap_or_default();
        writeln!(
            out,
            "{} peak: {} at {} ({}); profile {}, {}{}{}",
            sc.scenario.as_str(),
            format_bytes(sc.peak_bytes),
            sc.peak_node_name.as_deref().unwrap_or(sc.peak_phase.as_str()),
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
