//! The human-readable report: a summary first (parameters, each scenario's
//! peak, what the figures leave out), then one row per node — compact by
//! default (fits 100 columns: layer, type, output shape, params, output and
//! one memory column), every column with `--wide`, folded by module scope
//! (`--depth N`) or op type (`--group-by type`) — then a totals block.
//! Markdown uses the same rows. Sizes in binary units (MiB = 2^20 bytes).

use std::io::{self, Write};

use super::{activation_bytes, input_bytes, shape_text, Source};
use crate::analysis::Analysed;
use crate::graph::{Graph, Node};
use crate::memory::{NodeMemory, Scenario, ScenarioReport};
use crate::units::{format_bytes, format_count, printable};

/// How the table is drawn.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Style {
    /// Aligned columns; `color` makes the header bold (only on a terminal).
    Text {
        /// Bold header (a terminal that takes colour).
        color: bool,
    },
    /// A GitHub-flavoured Markdown table.
    Markdown,
}

/// How rows are formed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Grouping {
    /// One row per node.
    #[default]
    Nodes,
    /// One row per module scope, cut at this depth (`/layer1/layer1.0/conv1/Conv`
    /// is in `layer1` at depth 1 and `layer1/layer1.0` at depth 2).
    Depth(usize),
    /// One row per op type.
    Type,
}

/// What the table shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TableOptions {
    /// Every memory column of every scenario (today's wide table), no width limit.
    pub wide: bool,
    /// Also the nodes that only compute shapes or constants.
    pub all_nodes: bool,
    /// Rows one per node, or grouped by module or op type.
    pub grouping: Grouping,
    /// Widest line of the text table (names and shapes are shortened in the middle to fit).
    pub max_width: usize,
}

impl Default for TableOptions {
    fn default() -> Self {
        TableOptions { wide: false, all_nodes: false, grouping: Grouping::Nodes, max_width: 100 }
    }
}

/// The module path of a node: ONNX exporters name nodes `/a/a.0/Conv` (scope
/// `a`, `a.0`); Caffe nets name layers `inception_3a/1x1` (scope `inception_3a`).
pub fn scope_of(name: &str) -> Vec<&str> {
    let trimmed = name.strip_prefix('/').unwrap_or(name);
    let mut parts: Vec<&str> = trimmed.split('/').filter(|p| !p.is_empty()).collect();
    parts.pop();
    parts
}

/// `text` shortened to `width` characters by an ellipsis in the middle.
pub fn shorten_middle(text: &str, width: usize) -> String {
    let n = text.chars().count();
    if n <= width || width < 3 {
        return text.to_string();
    }
    let keep = width - 1;
    let front = keep.div_ceil(2);
    let back = keep - front;
    let chars: Vec<char> = text.chars().collect();
    let mut out: String = chars[..front].iter().collect();
    out.push('…');
    out.extend(&chars[n - back..]);
    out
}

/// The scenario whose figures the compact table shows: the one a user
/// would size a machine for (training, else style transfer, else inference).
pub fn chosen_scenario(a: &Analysed) -> Option<&ScenarioReport> {
    [Scenario::Training, Scenario::StyleTransfer, Scenario::Inference, Scenario::Decode].into_iter().find_map(|s| a.memory.scenario(s))
}

/// One row's figures before formatting.
struct RowData {
    name: String,
    /// Shown as " (in place)" after the name, never cut by shortening.
    in_place: bool,
    kind: String,
    shape: String,
    /// Learned and statistics elements; `None` when some weight is unsized.
    params: Option<(u64, u64)>,
    output: Option<u64>,
    /// Memory cells (one per memory column).
    memory: Vec<String>,
}

/// Memory columns: headers and, per node, cells.
fn memory_headers(a: &Analysed, options: &TableOptions) -> Vec<String> {
    if options.wide {
        let mut h = Vec::new();
        for sc in &a.memory.scenarios {
            let name = sc.scenario.as_str();
            if sc.scenario.trains() {
                h.push(format!("saved ({name})"));
            }
            h.push(format!("workspace ({name})"));
            h.push(format!("live after ({name})"));
        }
        h
    } else {
        chosen_scenario(a).map(|sc| vec![compact_header(sc.scenario)]).unwrap_or_default()
    }
}

/// The compact table's memory column: what each node keeps for backward
/// (training, style transfer), or the live total after it (inference).
fn compact_header(s: Scenario) -> String {
    match s {
        Scenario::Inference | Scenario::Decode => format!("live after ({})", s.as_str()),
        other => format!("saved ({})", other.as_str()),
    }
}

/// The compact column's figure for one node (`None`: the scenario does not run it).
fn compact_value(s: Scenario, m: &NodeMemory) -> Option<u64> {
    m.runs.then_some(match s {
        Scenario::Inference | Scenario::Decode => m.live_bytes_after,
        _ => m.saved_bytes,
    })
}

fn memory_cells(a: &Analysed, i: usize, options: &TableOptions) -> Vec<String> {
    let bytes = |b: u64| if b > 0 { format_bytes(b) } else { String::new() };
    let live = |m: &NodeMemory| if m.runs { format_bytes(m.live_bytes_after) } else { "not run".into() };
    if options.wide {
        let mut cells = Vec::new();
        for sc in &a.memory.scenarios {
            let Some(m) = sc.nodes.get(i) else { continue };
            if sc.scenario.trains() {
                cells.push(bytes(m.saved_bytes));
            }
            cells.push(bytes(m.workspace_bytes));
            cells.push(live(m));
        }
        cells
    } else {
        chosen_scenario(a)
            .and_then(|sc| sc.nodes.get(i).map(|m| (sc.scenario, m)))
            .map(|(s, m)| vec![compact_value(s, m).map_or_else(|| "not run".into(), |b| if !s.trains() { format_bytes(b) } else { bytes(b) })])
            .unwrap_or_default()
    }
}

/// A node's output shapes, separated by spaces.
fn shapes_text(graph: &Graph, node: &Node) -> String {
    match node.outputs.as_slice() {
        [one] => shape_text(graph, *one),
        many => many.iter().map(|&t| shape_text(graph, t)).collect::<Vec<_>>().join(" "),
    }
}

/// Bytes of all of a node's outputs, when every one is known.
fn output_bytes(graph: &Graph, node: &Node) -> Option<u64> {
    node.outputs.iter().map(|&t| graph.tensor(t).bytes()).try_fold(0u64, |a, b| a.checked_add(b?))
}

/// Whether a row shows this node: nodes that only compute shapes or
/// constants are hidden unless asked, except those that read weights (their
/// parameters belong in the table's sums).
fn shown(a: &Analysed, i: usize, options: &TableOptions) -> bool {
    options.all_nodes
        || !a.graph.nodes[i].params.is_empty()
        || a.memory.scenarios.first().and_then(|s| s.nodes.get(i)).is_none_or(|m| m.computes_data)
}

/// The rows, folded as `options.grouping` says; and how many nodes were hidden.
fn rows(a: &Analysed, options: &TableOptions) -> (Vec<RowData>, usize) {
    let graph = &a.graph;
    let per_node = graph.node_param_counts();
    let mut weights_unsized = vec![false; graph.nodes.len()];
    for n in &graph.uncounted_weights {
        weights_unsized[n.0] = true;
    }
    let node_params = |i: usize| (!weights_unsized[i]).then_some(per_node[i]);
    let hidden = (0..graph.nodes.len()).filter(|&i| !shown(a, i, options)).count();
    let visible = (0..graph.nodes.len()).filter(|&i| shown(a, i, options));
    if options.grouping == Grouping::Nodes {
        let rows = visible
            .map(|i| {
                let node = &graph.nodes[i];
                RowData {
                    name: node.name.clone(),
                    in_place: node.in_place,
                    kind: node.source_type.clone(),
                    shape: shapes_text(graph, node),
                    params: node_params(i),
                    output: output_bytes(graph, node),
                    memory: memory_cells(a, i, options),
                }
            })
            .collect();
        return (rows, hidden);
    }
    // Groups in order of first appearance; figures summed (params, outputs) or
    // the group's largest (live bytes), so group sums equal the totals.
    let chosen = chosen_scenario(a);
    let mut order: Vec<String> = Vec::new();
    let mut index: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
    let mut groups: Vec<(RowData, usize, Option<u64>, bool)> = Vec::new();
    for i in visible {
        let node = &graph.nodes[i];
        let key = match options.grouping {
            Grouping::Type => node.source_type.clone(),
            Grouping::Depth(d) => {
                let scope = scope_of(&node.name);
                if scope.is_empty() {
                    node.name.clone()
                } else {
                    scope[..d.min(scope.len())].join("/")
                }
            }
            Grouping::Nodes => unreachable!("handled above"),
        };
        let k = *index.entry(key.clone()).or_insert_with(|| {
            order.push(key.clone());
            groups.push((
                RowData {
                    name: key.clone(),
                    in_place: false,
                    kind: String::new(),
                    shape: String::new(),
                    params: Some((0, 0)),
                    output: Some(0),
                    memory: Vec::new(),
                },
                0,
                None,
                true,
            ));
            groups.len() - 1
        });
        let g = &mut groups[k];
        g.1 += 1;
        g.0.params = match (g.0.params, node_params(i)) {
            (Some((l, s)), Some((l2, s2))) => Some((l.saturating_add(l2), s.saturating_add(s2))),
            _ => None,
        };
        g.0.output = match (g.0.output, output_bytes(graph, node)) {
            (Some(x), Some(y)) => Some(x.saturating_add(y)),
            _ => None,
        };
        g.0.shape = shapes_text(graph, node);
        if let Some((s, m)) = chosen.and_then(|sc| sc.nodes.get(i).map(|m| (sc.scenario, m))) {
            g.3 &= !m.runs;
            if let Some(v) = compact_value(s, m) {
                // Live totals: the group's largest; saved bytes: the group's sum.
                g.2 = Some(if !s.trains() { g.2.unwrap_or(0).max(v) } else { g.2.unwrap_or(0).saturating_add(v) });
            }
        }
        g.0.kind = g.1.to_string();
    }
    let rows = groups
        .into_iter()
        .map(|(mut r, _, live, none_run)| {
            r.memory = if options.wide || chosen.is_none() {
                Vec::new()
            } else if none_run {
                vec!["not run".into()]
            } else {
                vec![live.map(format_bytes).unwrap_or_default()]
            };
            r
        })
        .collect();
    (rows, hidden)
}

fn params_cell(p: Option<(u64, u64)>) -> String {
    match p {
        None => "?".to_string(),
        Some((0, 0)) => String::new(),
        Some((l, 0)) => format_count(l),
        Some((l, s)) => format!("{} (+{} stats)", format_count(l), format_count(s)),
    }
}

/// The `inspect` report for people: what was read, the summary (parameters,
/// each scenario's peak with its node and breakdown, incomplete figures as
/// lower bounds with the flags that complete them), then the per-node table,
/// then the totals.
pub fn write_inspect(out: &mut dyn Write, a: &Analysed, source: &Source<'_>, style: Style, options: &TableOptions) -> io::Result<()> {
    let graph = &a.graph;
    let (bullet, heading) = if style == Style::Markdown { ("- ", "## ") } else { ("", "") };
    // Names from the file through the escape of the format they are written in.
    let esc = |text: &str| if style == Style::Markdown { md_inline(text) } else { printable(text).into_owned() };
    writeln!(out, "{heading}{} ({}, {})", esc(&graph.name), graph.format.as_str(), esc(source.path))?;
    if style == Style::Markdown {
        writeln!(out)?;
    }
    for &t in &graph.inputs {
        let tensor = graph.tensor(t);
        writeln!(out, "{bullet}input {} {} {}", esc(&tensor.name), esc(&shape_text(graph, t)), tensor.dtype.name())?;
    }
    for line in summary_lines(a, source) {
        match style {
            Style::Markdown => writeln!(out, "{}- {}", "  ".repeat(usize::from(line.level)), md_inline(&line.text))?,
            Style::Text { .. } => {
                let indented = format!("{}{}", "  ".repeat(usize::from(line.level)), line.text);
                for l in wrap(&printable(&indented), options.max_width) {
                    writeln!(out, "{l}")?;
                }
            }
        }
    }
    writeln!(out)?;
    let hidden = write_table(out, a, style, options)?;
    writeln!(out)?;
    write_totals(out, a, style, hidden)
}

/// `line` broken at spaces into lines of at most `width` characters (a word
/// longer than that stays whole); continuation lines are indented four spaces
/// more. A shell command (a line starting `nnmem `) is continued with ` \\` so
/// it can still be pasted.
pub fn wrap(line: &str, width: usize) -> Vec<String> {
    if line.chars().count() <= width {
        return vec![line.to_string()];
    }
    let indent = line.chars().take_while(|c| *c == ' ').count();
    let command = line.trim_start().starts_with("nnmem ");
    let cont = " ".repeat(indent + 4);
    let tail = if command { " \\" } else { "" };
    let mut out: Vec<String> = Vec::new();
    let mut current = String::new();
    for word in line.trim_start().split(' ') {
        let prefix = if out.is_empty() { " ".repeat(indent) } else { cont.clone() };
        let candidate_len = if current.is_empty() { prefix.len() + word.chars().count() } else { current.chars().count() + 1 + word.chars().count() };
        if !current.is_empty() && candidate_len + tail.len() > width {
            out.push(format!("{current}{tail}"));
            current = format!("{cont}{word}");
        } else if current.is_empty() {
            current = format!("{prefix}{word}");
        } else {
            current.push(' ');
            current.push_str(word);
        }
    }
    out.push(current);
    out
}

/// Text for a Markdown line: control characters escaped, and the characters
/// CommonMark would read as markup (`*`, `_`, `` ` ``, `<`, `[`, `|`, `\`, …)
/// backslashed — `report::escape::markdown`, the one Markdown escape.
pub fn md_inline(text: &str) -> String {
    super::escape::markdown(text)
}

/// The totals block that ends the table (torchinfo-like).
fn write_totals(out: &mut dyn Write, a: &Analysed, style: Style, hidden: usize) -> io::Result<()> {
    let graph = &a.graph;
    let totals = graph.param_totals();
    let ge = if graph.params_complete() { "" } else { "≥ " };
    let mut lines = vec![
        format!("total params: {ge}{}", format_count(totals.params.saturating_add(totals.non_trainable))),
        format!("trainable params: {ge}{}", format_count(totals.params)),
        format!("non-trainable params: {ge}{}", format_count(totals.non_trainable)),
        format!("params size: {ge}{}", format_bytes(totals.param_bytes)),
        format!("input size: {}", format_bytes(input_bytes(graph))),
        format!("forward activations (every output at once, in-place counted once): {}", format_bytes(activation_bytes(graph))),
    ];
    for sc in &a.memory.scenarios {
        let ge = if sc.completeness.is_complete() { "" } else { "≥ " };
        lines.push(format!(
            "{} peak: {ge}{} (naive: all outputs {}, x2 for backward {})",
            sc.scenario.as_str(),
            format_bytes(sc.peak_bytes),
            format_bytes(sc.naive.activations_bytes),
            format_bytes(sc.naive.activations_x2_bytes)
        ));
    }
    if hidden > 0 {
        lines.push(format!("{hidden} node(s) that only compute shapes or constants are hidden (--all-nodes shows them)"));
    }
    lines.push("units: KiB = 1024 B, MiB = 1024 KiB, GiB = 1024 MiB".into());
    match style {
        Style::Markdown => {
            for l in lines {
                writeln!(out, "- {}", md_inline(&l))?;
            }
        }
        Style::Text { .. } => {
            let width = lines.iter().map(|l| l.chars().count()).max().unwrap_or(0).min(100);
            writeln!(out, "{}", "=".repeat(width))?;
            for l in lines {
                writeln!(out, "{l}")?;
            }
            writeln!(out, "{}", "=".repeat(width))?;
        }
    }
    Ok(())
}

/// One line of the summary.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SummaryLine {
    /// The line's text.
    pub text: String,
    /// 0 for a headline, 1 for a line under the one before.
    pub level: u8,
    /// Something the reader must not miss: an incomplete figure, how to
    /// complete it, a choice nnmem made (HTML puts these in its notice box).
    pub flagged: bool,
}

impl SummaryLine {
    fn new(text: String) -> Self {
        SummaryLine { text, level: 0, flagged: false }
    }
    fn sub(mut self) -> Self {
        self.level = 1;
        self
    }
    fn flag(mut self) -> Self {
        self.flagged = true;
        self
    }
}

/// The summary: parameters, each scenario's peak and breakdown, what is
/// incomplete and the command that completes it, notes.
pub fn summary_lines(a: &Analysed, source: &Source<'_>) -> Vec<SummaryLine> {
    let graph = &a.graph;
    let mut lines = Vec::new();
    let totals = graph.param_totals();
    let stats = if totals.non_trainable > 0 {
        format!(" + {} running statistics", format_count(totals.non_trainable))
    } else {
        String::new()
    };
    if graph.params_complete() {
        lines.push(SummaryLine::new(format!("params: {} learned{stats}, {}", format_count(totals.params), format_bytes(totals.param_bytes))));
    } else {
        let n = graph.uncounted_weights.len();
        let first = graph.uncounted_weights.first().map(|&i| graph.node(i).name.as_str()).unwrap_or_default();
        let counted = if totals.params == 0 && totals.non_trainable == 0 {
            "unknown".to_string()
        } else {
            format!("≥ {} learned{stats}, ≥ {}", format_count(totals.params), format_bytes(totals.param_bytes))
        };
        lines.push(SummaryLine::new(format!("params: {counted} (incomplete: {n} layer(s) with weights of unknown size, first \"{first}\")")).flag());
    }
    let bind = crate::analysis::missing_bindings(graph);
    if let Some(first) = a.memory.scenarios.first() {
        let s = &first.settings;
        let optimizer = a.memory.scenarios.iter().find_map(|sc| sc.settings.optimizer).map(|o| format!(", optimizer {o}")).unwrap_or_default();
        let threads = if s.threads > 1 { format!(", {} threads", s.threads) } else { String::new() };
        let mixed = if s.mixed_precision { " mixed precision" } else { "" };
        let placement = a
            .memory
            .scenarios
            .iter()
            .find_map(|sc| sc.settings.loss_placement)
            .map(|p| format!(", losses {}", p.as_str()))
            .unwrap_or_default();
        let attention = attention_summary(&a.memory.scenarios);
        lines.push(SummaryLine::new(format!("settings: profile {}, {}{mixed}{optimizer}{threads}{placement}{attention}", s.profile, s.dtype.name())));
    }
    for sc in &a.memory.scenarios {
        let complete = sc.completeness.is_complete();
        let peak = if complete { format_bytes(sc.peak_bytes) } else { format!("≥ {} (incomplete)", format_bytes(sc.peak_bytes)) };
        lines.push(SummaryLine::new(format!(
            "{} peak: {peak} at {} ({})",
            sc.scenario.as_str(),
            sc.peak_node_name.as_deref().unwrap_or(sc.peak_phase.as_str()),
            sc.peak_phase.as_str(),
        )));
        let parts: Vec<String> = sc
            .peak_breakdown
            .iter()
            .filter(|(_, b)| *b > 0)
            .map(|(c, b)| format!("{} {}", c.as_str(), format_bytes(b)))
            .collect();
        lines.push(SummaryLine::new(format!("at the peak: {}", parts.join(", "))).sub());
        lines.extend(decode_lines(sc).into_iter().map(|l| SummaryLine::new(l).sub()));
        if let Some(why) = crate::analysis::incompleteness(graph, sc) {
            lines.push(SummaryLine::new(format!("incomplete ({}): {why}", sc.scenario.as_str())).sub().flag());
        }
    }
    for c in crate::analysis::run_time_counts(graph) {
        lines.push(
            SummaryLine::new(format!(
                "per unit of {} (a count layer \"{}\" sets at run time): {} of activations in {} tensor(s)",
                c.name,
                c.set_by,
                format_bytes(c.bytes_per_unit),
                c.tensors
            ))
            .flag(),
        );
    }
    if !bind.is_empty() && a.memory.scenarios.iter().any(|s| !s.completeness.is_complete()) {
        lines.push(SummaryLine::new("to complete the figures, bind what is free:".to_string()).flag());
        lines.push(SummaryLine::new(format!("nnmem inspect {} {}", source.path, bind.join(" "))).sub().flag());
    }
    if let Some(b) = a.memory.scenarios.first().and_then(|s| s.settings.runtime_baseline) {
        lines.push(SummaryLine::new(format!(
            "plus the runtime itself, in none of these figures: about {} ({})",
            format_bytes(b.bytes),
            b.what
        )));
    }
    for n in &a.notes {
        lines.push(SummaryLine::new(format!("note: {n}")).flag());
    }
    lines
}

/// The decode scenario's own figures, one line each: the KV cache and its
/// growth per generated token, the step peak's growth per token of past.
pub fn decode_lines(sc: &ScenarioReport) -> Vec<String> {
    let Some(d) = &sc.decode else { return Vec::new() };
    let mut lines = Vec::new();
    match d.cache {
        Some(c) => lines.push(format!(
            "KV cache: {} in {} inputs at past length {}; per generated token +{} ({} B)",
            format_bytes(c.bytes),
            d.cache_inputs,
            format_count(c.past),
            format_bytes(c.bytes_per_token),
            format_count(c.bytes_per_token)
        )),
        None => lines.push(format!("KV cache: {} inputs, unsized until the past length is bound (--dim)", d.cache_inputs)),
    }
    if let (Some(g), Some(c)) = (d.peak_growth, d.cache) {
        lines.push(format!(
            "step peak grows {} ({} B) per token of past length ({} at past length {})",
            format_bytes(g.bytes_per_token),
            format_count(g.bytes_per_token),
            format_bytes(g.next_peak_bytes),
            format_count(c.past.saturating_add(1))
        ));
    }
    lines
}

/// The marker of a node that writes over its input.
const IN_PLACE: &str = " (in place)";

/// The per-node (or per-group) table; returns how many shape-only nodes it hid.
pub fn write_table(out: &mut dyn Write, a: &Analysed, style: Style, options: &TableOptions) -> io::Result<usize> {
    let (mut data, hidden) = rows(a, options);
    let first = match options.grouping {
        Grouping::Nodes => "layer",
        Grouping::Depth(_) => "module",
        Grouping::Type => "type",
    };
    let second = match options.grouping {
        Grouping::Nodes => "type",
        Grouping::Depth(_) => "nodes",
        Grouping::Type => "nodes",
    };
    let mut header: Vec<String> = [first, second, "output shape", "params", "output"].map(String::from).to_vec();
    header.extend(memory_headers(a, options));
    // The rows' strings move into the cells (an in-place row's name stays:
    // shortening below reads it again).
    let mut rows: Vec<Vec<String>> = data
        .iter_mut()
        .map(|r| {
            let mut cells = Vec::with_capacity(header.len().max(5 + r.memory.len()));
            cells.extend([
                if r.in_place { format!("{}{IN_PLACE}", r.name) } else { std::mem::take(&mut r.name) },
                std::mem::take(&mut r.kind),
                std::mem::take(&mut r.shape),
                params_cell(r.params),
                r.output.map(format_bytes).unwrap_or_else(|| "?".into()),
            ]);
            cells.append(&mut r.memory);
            cells.resize(header.len(), String::new());
            // Names come from the model file: never let them drive the terminal.
            cells.into_iter().map(printable_string).collect()
        })
        .collect();
    let numeric = |c: usize| c >= 3;
    let mut widths: Vec<usize> = (0..header.len())
        .map(|c| rows.iter().map(|r| r[c].chars().count()).chain([header[c].chars().count()]).max().unwrap_or(0))
        .collect();
    if style != Style::Markdown && !options.wide {
        fit_widths(&mut widths, &header, options.max_width);
        for (r, d) in rows.iter_mut().zip(&data) {
            r[0] = if d.in_place {
                let room = widths[0].saturating_sub(IN_PLACE.chars().count());
                format!("{}{IN_PLACE}", shorten_middle(&printable(&d.name), room))
            } else if r[0].chars().count() > widths[0] {
                shorten_middle(&r[0], widths[0])
            } else {
                std::mem::take(&mut r[0])
            };
            for c in [1, 2] {
                if r[c].chars().count() > widths[c] {
                    r[c] = shorten_middle(&r[c], widths[c]);
                }
            }
        }
    }
    // One line's text, reused from line to line.
    let mut text = String::new();
    let mut line = |out: &mut dyn Write, cells: &[String]| -> io::Result<()> {
        if style == Style::Markdown {
            let escaped: Vec<String> = cells.iter().map(|c| md_inline(c)).collect();
            return writeln!(out, "| {} |", escaped.join(" | "));
        }
        text.clear();
        for (c, cell) in cells.iter().enumerate() {
            if c > 0 {
                text.push_str("  ");
            }
            let pad = std::iter::repeat_n(' ', widths[c].saturating_sub(cell.chars().count()));
            if numeric(c) {
                text.extend(pad);
                text.push_str(cell);
            } else {
                text.push_str(cell);
                text.extend(pad);
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
        line(out, r)?;
    }
    Ok(hidden)
}

/// `text` as [`printable`] writes it, without a copy when it is printable already.
fn printable_string(text: String) -> String {
    let escaped = match printable(&text) {
        std::borrow::Cow::Owned(e) => Some(e),
        std::borrow::Cow::Borrowed(_) => None,
    };
    escaped.unwrap_or(text)
}

/// Narrows the name, type and shape columns (in that order, down to their
/// minimums) until a line fits `max_width`; numbers are never cut.
fn fit_widths(widths: &mut [usize], header: &[String], max_width: usize) {
    let total = |w: &[usize]| w.iter().sum::<usize>() + 2 * w.len().saturating_sub(1);
    for (c, min) in [(0usize, 16usize), (1, 10), (2, 14)] {
        let over = total(widths).saturating_sub(max_width);
        if over == 0 {
            break;
        }
        let floor = min.max(header[c].chars().count());
        widths[c] = widths[c].saturating_sub(over).max(floor.min(widths[c]));
    }
}

/// Comma-separated values for spreadsheets: one row per node, exact integers
/// (bytes, elements), per scenario saved / workspace / live-after bytes.
pub fn write_csv(out: &mut dyn Write, graph: &Graph, memory: &crate::memory::MemoryReport) -> io::Result<()> {
    // Names from the file: quoted, no raw control characters, no formulas.
    let quote = super::escape::csv;
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


/// ", attention: 4 fused" — how the attention computations ran, per scenario
/// when they differ (a call with dropout runs the math path in training on CPU).
fn attention_summary(scenarios: &[crate::memory::ScenarioReport]) -> String {
    let one = |c: &crate::memory::AttentionCalls| {
        [(c.fused, "fused"), (c.math, "math path"), (c.as_written, "as written")]
            .iter()
            .filter(|(n, _)| *n > 0)
            .map(|(n, how)| format!("{n} {how}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let per: Vec<(&str, String)> = scenarios.iter().map(|sc| (sc.scenario.as_str(), one(&sc.settings.attention_calls))).collect();
    if per.iter().all(|(_, s)| s.is_empty()) {
        return String::new();
    }
    if per.windows(2).all(|w| w[0].1 == w[1].1) {
        return format!(", attention: {}", per[0].1);
    }
    let parts: Vec<String> = per.iter().filter(|(_, s)| !s.is_empty()).map(|(sc, s)| format!("{sc} {s}")).collect();
    format!(", attention: {}", parts.join("; "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_shorten_in_the_middle() {
        assert_eq!(shorten_middle("/layer4/layer4.0/downsample/downsample.0/Conv", 20), "/layer4/la…le.0/Conv");
        assert_eq!(shorten_middle("conv1", 20), "conv1");
        assert_eq!(shorten_middle("abcdef", 5).chars().count(), 5);
    }

    #[test]
    fn scopes_from_exporter_and_caffe_names() {
        assert_eq!(scope_of("/layer1/layer1.0/conv1/Conv"), ["layer1", "layer1.0", "conv1"]);
        assert_eq!(scope_of("inception_3a/1x1"), ["inception_3a"]);
        assert!(scope_of("conv1").is_empty());
        assert!(scope_of("/Flatten").is_empty());
    }

    #[test]
    fn markdown_escapes_markup_and_controls() {
        assert_eq!(md_inline("a|b*c_d"), "a\\|b\\*c\\_d");
        assert_eq!(md_inline("x\u{1b}y"), "x\\\\u{1b}y");
    }

    #[test]
    fn long_lines_wrap_and_commands_continue() {
        let w = wrap("  at the peak: weights 26.70 MiB, weight_grads 4.32 MiB, saved_for_backward 391.55 MiB, activation_grads 3.47 MiB", 60);
        assert!(w.iter().all(|l| l.chars().count() <= 60), "{w:?}");
        assert!(w[1].starts_with("      "), "{w:?}");
        let c = wrap("  nnmem inspect a/very/long/path/model.onnx --dim batch=N --dim height=N --dim width=N", 40);
        assert!(c[..c.len() - 1].iter().all(|l| l.ends_with(" \\")), "{c:?}");
        assert_eq!(wrap("short", 40), ["short"]);
    }

    #[test]
    fn widths_fit_the_limit() {
        let header: Vec<String> = ["layer", "type", "output shape", "params", "output", "live after (training)"].map(String::from).to_vec();
        let mut w = vec![60, 24, 30, 13, 10, 21];
        fit_widths(&mut w, &header, 100);
        assert!(w.iter().sum::<usize>() + 10 <= 100, "{w:?}");
        assert_eq!(&w[3..], &[13, 10, 21]);
    }
}
