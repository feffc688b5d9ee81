//! One self-contained HTML page: model summary, the memory timeline of each
//! scenario over its execution schedule (peak marked with its node), a peak
//! breakdown, per-layer bars, and a sortable layer table. Inline SVG and a few
//! lines of inline script; nothing is fetched from the network.

use std::fmt::Write as _;
use std::io::{self, Write};

use super::{activation_bytes, shape_text, Source};
use crate::graph::Graph;
use crate::memory::{Category, MemoryReport, ScenarioReport};
use crate::units::{format_bytes, format_count};

/// Every name from the model goes through the HTML escape (markup and controls).
fn esc(text: &str) -> String {
    super::escape::html(text)
}

/// A colour per category, shared by the breakdown bar and the legend.
fn colour(c: Category) -> &'static str {
    match c {
        Category::Weights => "#4e79a7",
        Category::WeightGrads => "#f28e2b",
        Category::OptimizerState => "#e15759",
        Category::Activations => "#76b7b2",
        Category::SavedForBackward => "#59a14f",
        Category::ActivationGrads => "#edc948",
        Category::Workspace => "#b07aa1",
        Category::Inputs => "#9c755f",
    }
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:24px;color:#222;max-width:1600px}\
h1{font-size:22px}h2{font-size:18px;margin-top:28px}table{border-collapse:collapse;font-size:12px}\
th,td{padding:3px 8px;border-bottom:1px solid #ddd;text-align:left}td.n,th.n{text-align:right;white-space:nowrap}\
th{cursor:pointer;background:#f4f4f4;position:sticky;top:0}.legend span{display:inline-block;margin-right:14px;font-size:12px}\
.sw{display:inline-block;width:10px;height:10px;margin-right:4px}svg text{font-size:11px;fill:#333}\
.summary td{border:none;padding:2px 12px 2px 0}";

const SCRIPT: &str = "document.querySelectorAll('table.sortable th').forEach(function(th,i){th.addEventListener('click',function(){\
var tb=th.closest('table').tBodies[0];var rows=Array.from(tb.rows);var asc=th.dataset.asc!=='1';th.dataset.asc=asc?'1':'0';\
rows.sort(function(a,b){var x=a.cells[i].dataset.v,y=b.cells[i].dataset.v;var r=(x!==undefined&&y!==undefined)?(Number(x)-Number(y)):a.cells[i].textContent.localeCompare(b.cells[i].textContent);return asc?r:-r;});\
rows.forEach(function(r){tb.appendChild(r);});});});\
var p=document.querySelector('svg.timeline path.area');if(p){document.body.setAttribute('data-chart-width',Math.round(p.getBBox().width));}\
document.querySelectorAll('svg.timeline').forEach(function(svg){var m=svg.querySelector('circle.peak-marker');if(!m)return;\
var x=m.cx.baseVal.value,cy=m.cy.baseVal.value,top=null;var areas=svg.querySelectorAll('path.area');\
for(var y=0;y<=svg.height.baseVal.value&&top===null;y+=0.25){var pt=svg.createSVGPoint();pt.x=x;pt.y=y;\
areas.forEach(function(a){if(top===null&&a.isPointInFill(pt)){top=y;}});}\
svg.setAttribute('data-peak-gap',top===null?'none':Math.abs(top-cy).toFixed(2));});";

/// Steps of the schedule with the live bytes by category at each step's high point.
fn steps<'a>(sc: &'a ScenarioReport, graph: &'a Graph) -> Vec<(String, &'static str, &'a crate::memory::Breakdown)> {
    sc.timeline
        .iter()
        .map(|s| {
            let name = match (s.node, &s.label) {
                (Some(n), _) => graph.nodes.get(n).map(|n| n.name.clone()).unwrap_or_default(),
                (None, Some(l)) => l.clone(),
                (None, None) => String::new(),
            };
            (name, s.phase.as_str(), &s.during)
        })
        .collect()
}

/// Round tick values for an axis up to `max` bytes — 1, 2 or 5 × 10^k of one
/// binary unit, four to eight ticks — and that unit, so every label reads in it.
pub fn nice_ticks(max: u64) -> (Vec<u64>, u64) {
    let max = max.max(1);
    let unit: u64 = [1u64 << 40, 1 << 30, 1 << 20, 1 << 10, 1].into_iter().find(|&u| max >= u).unwrap_or(1);
    let span = max as f64 / unit as f64;
    let mut step = 1.0f64;
    'search: for exp in -3i32..=4 {
        for m in [1.0, 2.0, 5.0] {
            let candidate = m * 10f64.powi(exp);
            if span / candidate <= 8.0 {
                step = candidate;
                break 'search;
            }
        }
    }
    let step_bytes = ((step * unit as f64).round() as u64).max(1);
    let ticks = (0..).map(|k: u64| k * step_bytes).take_while(|&v| v <= max.saturating_add(step_bytes)).take(10).collect();
    (ticks, unit)
}

/// A tick label in the axis unit, without needless decimals: `200 MiB`, `0.4 GiB`.
fn tick_label(v: u64, unit: u64) -> String {
    if v == 0 {
        return "0".into();
    }
    let name = match unit {
        u if u >= 1 << 40 => "TiB",
        u if u >= 1 << 30 => "GiB",
        u if u >= 1 << 20 => "MiB",
        u if u >= 1 << 10 => "KiB",
        _ => "B",
    };
    let number = format!("{:.2}", v as f64 / unit.max(1) as f64);
    let number = number.trim_end_matches('0').trim_end_matches('.');
    format!("{number} {name}")
}

/// The timeline: one stacked area per category over the schedule's steps,
/// and the peak (which can fall inside a step, in its workspace) marked.
fn timeline_svg(sc: &ScenarioReport, graph: &Graph) -> String {
    let (w, h, left, bottom) = (1100.0f64, 280.0f64, 70.0f64, 30.0f64);
    let points = steps(sc, graph);
    let (ticks, unit) = nice_ticks(points.iter().map(|p| p.2.total()).max().unwrap_or(0).max(sc.peak_bytes));
    let max = ticks.last().copied().unwrap_or(1).max(1) as f64;
    let n = points.len().max(2) as f64;
    let x = |i: usize| left + (w - left - 10.0) * i as f64 / (n - 1.0);
    let y = |b: f64| 10.0 + (h - bottom - 10.0) * (1.0 - b / max);
    let name = sc.scenario.as_str();
    let mut svg = String::new();
    let _ = write!(svg, "<svg id=\"timeline-{name}\" class=\"timeline\" width=\"{w}\" height=\"{h}\" viewBox=\"0 0 {w} {h}\" role=\"img\" aria-label=\"memory timeline, {name}\">");
    for &v in &ticks {
        let yy = y(v as f64);
        let _ = write!(svg, "<line x1=\"{left}\" x2=\"{}\" y1=\"{yy:.1}\" y2=\"{yy:.1}\" stroke=\"#eee\"/><text class=\"tick\" x=\"{}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>", w - 10.0, left - 4.0, yy + 4.0, esc(&tick_label(v, unit)));
    }
    // Stacked areas, bottom to top in the categories' fixed order.
    let mut lower = vec![0u64; points.len()];
    for c in Category::ALL {
        let upper: Vec<u64> = points.iter().zip(&lower).map(|(p, l)| l.saturating_add(p.2.get(c))).collect();
        if upper == lower {
            continue;
        }
        let mut d = String::new();
        for (i, u) in upper.iter().enumerate() {
            let _ = write!(d, "{}{:.1},{:.1} ", if i == 0 { "M" } else { "L" }, x(i), y(*u as f64));
        }
        for (i, l) in lower.iter().enumerate().rev() {
            let _ = write!(d, "L{:.1},{:.1} ", x(i), y(*l as f64));
        }
        let _ = write!(svg, "<path class=\"area\" d=\"{}Z\" fill=\"{}\" fill-opacity=\"0.85\"><title>{}</title></path>", d, colour(c), c.as_str());
        lower = upper;
    }
    if let Some(split) = points.iter().position(|p| p.1 == "backward") {
        let xs = x(split);
        let _ = write!(svg, "<line x1=\"{xs:.1}\" x2=\"{xs:.1}\" y1=\"10\" y2=\"{}\" stroke=\"#555\" stroke-dasharray=\"4 3\"/><text x=\"{:.1}\" y=\"{}\">backward →</text>", h - bottom, xs + 4.0, h - bottom - 6.0);
    }
    for (i, p) in points.iter().enumerate() {
        let _ = write!(svg, "<rect x=\"{:.1}\" y=\"10\" width=\"{:.1}\" height=\"{}\" fill=\"transparent\"><title>{} ({}): {} live after the step</title></rect>", x(i) - 2.0, 4.0, h - bottom - 10.0, esc(&p.0), p.1, esc(&format_bytes(p.2.total())));
    }
    let peak_node = sc.peak_node_name.clone().unwrap_or_else(|| sc.peak_phase.as_str().to_string());
    let phase = sc.peak_phase.as_str();
    // The step whose high point is the peak (the first, if several are).
    let peak_idx = points
        .iter()
        .position(|p| p.2.total() == sc.peak_bytes && p.1 == phase)
        .or_else(|| points.iter().position(|p| Some(&p.0) == sc.peak_node_name.as_ref() && p.1 == phase))
        .unwrap_or(0);
    let (px, py) = (x(peak_idx), y(sc.peak_bytes as f64));
    let label = format!("peak {} at {} ({})", format_bytes(sc.peak_bytes), peak_node, phase);
    let anchor = if px > w * 0.6 { "end" } else { "start" };
    let _ = write!(svg, "<line x1=\"{px:.1}\" x2=\"{px:.1}\" y1=\"{py:.1}\" y2=\"{}\" stroke=\"#e15759\" stroke-width=\"1\"/><circle class=\"peak-marker\" cx=\"{px:.1}\" cy=\"{py:.1}\" r=\"5\" fill=\"none\" stroke=\"#e15759\" stroke-width=\"2\"/>\
<text id=\"peak-label-{name}\" class=\"peak-label\" x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"{anchor}\" style=\"font-weight:bold;fill:#e15759\">{}</text>", h - bottom, if anchor == "end" { px - 8.0 } else { px + 8.0 }, py + 4.0, esc(&label));
    let _ = write!(svg, "<text x=\"{left}\" y=\"{}\">step (node in execution order{}); areas: live bytes at each step's high point (outputs and workspace allocated, nothing freed yet); marker: the peak</text></svg>", h - 8.0, if points.iter().any(|p| p.1 == "backward") { ", then backward in reverse" } else { "" });
    let mut legend = String::from("<div class=\"legend\">");
    for c in Category::ALL {
        if points.iter().any(|p| p.2.get(c) > 0) {
            let _ = write!(legend, "<span><i class=\"sw\" style=\"background:{}\"></i>{}</span>", colour(c), c.as_str());
        }
    }
    legend.push_str("</div>");
    svg + &legend
}

fn breakdown_svg(sc: &ScenarioReport) -> String {
    let w = 1100.0f64;
    let total = sc.peak_breakdown.total().max(1) as f64;
    let mut svg = format!("<svg class=\"breakdown\" width=\"{w}\" height=\"28\" viewBox=\"0 0 {w} 28\">");
    let mut at = 0.0;
    for (c, b) in sc.peak_breakdown.iter().filter(|(_, b)| *b > 0) {
        let width = w * b as f64 / total;
        let _ = write!(svg, "<rect x=\"{at:.1}\" y=\"2\" width=\"{width:.1}\" height=\"24\" fill=\"{}\"><title>{}: {}</title></rect>", colour(c), c.as_str(), esc(&format_bytes(b)));
        at += width;
    }
    svg.push_str("</svg><div class=\"legend\">");
    for (c, b) in sc.peak_breakdown.iter().filter(|(_, b)| *b > 0) {
        let _ = write!(svg, "<span><i class=\"sw\" style=\"background:{}\"></i>{} {}</span>", colour(c), c.as_str(), esc(&format_bytes(b)));
    }
    svg.push_str("</div>");
    svg
}

/// Per-layer bars: output, weights and workspace bytes on one scale, with a
/// byte axis and each bar's value written beside it. Shape-only nodes are left out.
fn layer_bars_svg(graph: &Graph, memory: &MemoryReport) -> String {
    let computes = |i: usize| memory.scenarios.first().and_then(|s| s.nodes.get(i)).is_none_or(|m| m.computes_data);
    let rows: Vec<(String, [u64; 3])> = graph
        .nodes
        .iter()
        .enumerate()
        .filter(|(i, _)| computes(*i))
        .map(|(i, n)| {
            let ws = memory.scenarios.iter().filter_map(|s| s.nodes.get(i)).map(|m| m.workspace_bytes).max().unwrap_or(0);
            let out = n.outputs.iter().filter_map(|&t| graph.tensor(t).bytes()).fold(0u64, u64::saturating_add);
            let params = n.params.iter().filter_map(|&t| graph.tensor(t).bytes()).fold(0u64, u64::saturating_add);
            (n.name.clone(), [out, params, ws])
        })
        .collect();
    let (ticks, unit) = nice_ticks(rows.iter().flat_map(|r| r.1).max().unwrap_or(0));
    let max = ticks.last().copied().unwrap_or(1).max(1) as f64;
    let (label_w, bar_w, value_w, row_h, top) = (240.0f64, 560.0f64, 300.0f64, 16.0f64, 24.0f64);
    let h = top + row_h * rows.len() as f64 + 8.0;
    let total_w = label_w + bar_w + value_w;
    let colours = ["#76b7b2", "#4e79a7", "#b07aa1"];
    let kinds = ["output", "weights", "workspace"];
    let mut svg = format!("<svg id=\"layer-bars\" width=\"{total_w}\" height=\"{h}\" viewBox=\"0 0 {total_w} {h}\">");
    for &v in &ticks {
        let x = label_w + bar_w * v as f64 / max;
        let _ = write!(svg, "<line x1=\"{x:.1}\" x2=\"{x:.1}\" y1=\"{}\" y2=\"{h}\" stroke=\"#eee\"/><text class=\"tick\" x=\"{x:.1}\" y=\"{}\" text-anchor=\"middle\">{}</text>", top - 6.0, top - 10.0, esc(&tick_label(v, unit)));
    }
    for (i, (name, values)) in rows.iter().enumerate() {
        let y0 = top + row_h * i as f64;
        let _ = write!(svg, "<text x=\"{}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>", label_w - 6.0, y0 + 11.0, esc(&super::table::shorten_middle(name, 36)));
        for (k, v) in values.iter().enumerate() {
            let width = bar_w * *v as f64 / max;
            if *v > 0 {
                let _ = write!(svg, "<rect x=\"{label_w}\" y=\"{:.1}\" width=\"{:.1}\" height=\"4\" fill=\"{}\"><title>{}: {}</title></rect>", y0 + 2.0 + 4.0 * k as f64, width.max(0.5), colours[k], kinds[k], esc(&format_bytes(*v)));
            }
        }
        let shown: Vec<String> = values.iter().zip(kinds).filter(|(v, _)| **v > 0).map(|(v, k)| format!("{} {}", &k[..1], format_bytes(*v))).collect();
        let _ = write!(svg, "<text class=\"value\" x=\"{}\" y=\"{:.1}\">{}</text>", label_w + bar_w + 6.0, y0 + 11.0, esc(&shown.join(" · ")));
    }
    svg.push_str("</svg>");
    svg
}

/// Writes the self-contained HTML report (summary, timelines, peak
/// breakdown, per-layer table) of an analysed model to `out`.
pub fn write(out: &mut dyn Write, a: &crate::analysis::Analysed, source: &Source<'_>) -> io::Result<()> {
    let (graph, memory) = (&a.graph, &a.memory);
    let totals = graph.param_totals();
    let mut html = String::new();
    let _ = write!(html, "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>nnmem: {}</title><style>{STYLE}</style></head><body>", esc(&graph.name));
    let _ = write!(html, "<h1>{} <small>({}, {})</small></h1><table class=\"summary\">", esc(&graph.name), graph.format.as_str(), esc(source.path));
    for &t in &graph.inputs {
        let tensor = graph.tensor(t);
        let _ = write!(html, "<tr><td>input {}</td><td>{} {}</td></tr>", esc(&tensor.name), esc(&shape_text(graph, t)), tensor.dtype.name());
    }
    let _ = write!(html, "<tr><td>parameters</td><td>{} learned, {} statistics, {}</td></tr>", format_count(totals.params), format_count(totals.non_trainable), esc(&format_bytes(totals.param_bytes)));
    let _ = write!(html, "<tr><td>activations, all at once</td><td>{}</td></tr>", esc(&format_bytes(activation_bytes(graph))));
    for sc in &memory.scenarios {
        let bound = if sc.completeness.is_complete() { "" } else { "≥ " };
        let tail = if sc.completeness.is_complete() { "" } else { " <b>incomplete</b>" };
        let _ = write!(html, "<tr><td>{} peak</td><td id=\"peak-{}\">{bound}{} ({} bytes) at {} ({}){tail}</td></tr>", sc.scenario.as_str(), sc.scenario.as_str(), esc(&format_bytes(sc.peak_bytes)), format_count(sc.peak_bytes), esc(sc.peak_node_name.as_deref().unwrap_or("-")), sc.peak_phase.as_str());
        for (k, line) in super::table::decode_lines(sc).iter().enumerate() {
            let _ = write!(html, "<tr><td>{}</td><td id=\"decode-{k}\">{}</td></tr>", if k == 0 { "decode, per token" } else { "" }, esc(line));
        }
    }
    html.push_str("</table>");
    // What the figures leave out, and everything nnmem could not resolve, before any chart.
    let lines = super::table::summary_lines(a, source);
    let flagged: Vec<&String> = lines.iter().filter(|l| l.flagged).map(|l| &l.text).collect();
    if !flagged.is_empty() || !graph.warnings.is_empty() || !memory.warnings.is_empty() {
        html.push_str("<div id=\"notices\" style=\"border-left:4px solid #e15759;padding:4px 12px;background:#fff5f5\"><ul>");
        for l in flagged {
            let _ = write!(html, "<li><b>{}</b></li>", esc(l.trim_start()));
        }
        for w in graph.warnings.iter().chain(&memory.warnings) {
            let _ = write!(html, "<li>warning: {}</li>", esc(w));
        }
        html.push_str("</ul></div>");
    }
    for sc in &memory.scenarios {
        let s = &sc.settings;
        let _ = write!(html, "<h2>Memory over time: {}</h2><p>profile {}, {}{}{}</p>", sc.scenario.as_str(), s.profile, s.dtype.name(), if s.mixed_precision { ", mixed precision" } else { "" }, s.optimizer.map(|o| format!(", optimizer {o}")).unwrap_or_default());
        html.push_str(&timeline_svg(sc, graph));
        html.push_str("<p>At the peak:</p>");
        html.push_str(&breakdown_svg(sc));
    }
    html.push_str("<h2>Per layer</h2><div class=\"legend\"><span><i class=\"sw\" style=\"background:#76b7b2\"></i>output</span><span><i class=\"sw\" style=\"background:#4e79a7\"></i>weights</span><span><i class=\"sw\" style=\"background:#b07aa1\"></i>workspace</span></div>");
    html.push_str(&layer_bars_svg(graph, memory));
    html.push_str("<h2>Layers</h2><p>Click a column to sort. o: output, w: weights, ws: workspace.</p><table class=\"sortable\" id=\"layers\"><thead><tr><th>#</th><th>layer</th><th>type</th><th>output shape</th><th class=\"n\">params</th><th class=\"n\">output</th>");
    // Memory columns that hold anything (inference saves nothing, for one).
    type Pick = fn(&crate::memory::NodeMemory) -> u64;
    let figures: [(&str, Pick); 3] = [("saved", |m| m.saved_bytes), ("workspace", |m| m.workspace_bytes), ("live after", |m| m.live_bytes_after)];
    let mut columns: Vec<(usize, &str, Pick)> = Vec::new();
    for (k, sc) in memory.scenarios.iter().enumerate() {
        for (label, pick) in figures {
            if sc.nodes.iter().any(|m| pick(m) > 0) {
                columns.push((k, label, pick));
            }
        }
    }
    for (k, label, _) in &columns {
        let _ = write!(html, "<th class=\"n\">{label} ({})</th>", memory.scenarios[*k].scenario.as_str());
    }
    html.push_str("</tr></thead><tbody>");
    let per_node = graph.node_param_counts();
    for (i, node) in graph.nodes.iter().enumerate() {
        let out_bytes = node.outputs.iter().filter_map(|&t| graph.tensor(t).bytes()).fold(0u64, u64::saturating_add);
        let shapes: Vec<String> = node.outputs.iter().map(|&t| shape_text(graph, t)).collect();
        let in_place = if node.in_place { " <small>(in place)</small>" } else { "" };
        let _ = write!(html, "<tr><td data-v=\"{i}\">{i}</td><td>{}{in_place}</td><td>{}</td><td>{}</td><td class=\"n\" data-v=\"{}\">{}</td><td class=\"n\" data-v=\"{out_bytes}\">{}</td>", esc(&node.name), esc(&node.source_type), esc(&shapes.join(" ")), per_node[i].0, format_count(per_node[i].0), esc(&format_bytes(out_bytes)));
        for (k, _, pick) in &columns {
            match memory.scenarios[*k].nodes.get(i) {
                Some(m) if !m.runs => html.push_str("<td class=\"n\" data-v=\"0\">not run</td>"),
                Some(m) => {
                    let v = pick(m);
                    let _ = write!(html, "<td class=\"n\" data-v=\"{v}\">{}</td>", if v > 0 { esc(&format_bytes(v)) } else { String::new() });
                }
                None => html.push_str("<td></td>"),
            }
        }
        html.push_str("</tr>");
    }
    html.push_str("</tbody></table>");
    let _ = write!(html, "<p><small>nnmem {}. Sizes in binary units: KiB = 1024 B, MiB = 2^20 B, GiB = 2^30 B.</small></p><script>{SCRIPT}</script></body></html>", env!("CARGO_PKG_VERSION"));
    out.write_all(html.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::{esc, nice_ticks, tick_label};

    #[test]
    fn ticks_are_round() {
        let (t, unit) = nice_ticks(93_690_000);
        assert_eq!((t[1], unit), (20 << 20, 1 << 20), "{t:?}");
        assert!(*t.last().unwrap() >= 93_690_000 && t.len() <= 10);
        assert_eq!(tick_label(100 << 20, 1 << 20), "100 MiB");
        assert_eq!(tick_label(3 << 29, 1 << 30), "1.5 GiB");
        // Over a GiB, ticks step in tenths of a GiB and read that way.
        let (t, unit) = nice_ticks(1_221_625_824);
        assert_eq!(tick_label(t[1], unit), "0.2 GiB");
        assert_eq!(tick_label(0, unit), "0");
        assert!(nice_ticks(0).0.len() >= 2);
    }

    #[test]
    fn escapes_markup() {
        assert_eq!(esc("<a href=\"x\">&'"), "&lt;a href=&quot;x&quot;&gt;&amp;&#39;");
    }
}
