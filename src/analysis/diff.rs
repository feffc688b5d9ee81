//! `diff`: two analyses side by side — every total, every scenario both sides
//! computed (peak and breakdown), and the layers whose memory changed most,
//! matched by name in linear time.

use std::collections::HashMap;

use crate::memory::{Category, Scenario};
use crate::report::gate::{Figure, Subject, Total};

use super::Analysed;

/// One figure on both sides (`None`: not computed on that side).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FigureDiff {
    /// Which figure this is.
    pub subject: Subject,
    /// Its value on the first side.
    pub a: Option<u64>,
    /// Its value on the second side.
    pub b: Option<u64>,
    /// Both sides' figures are complete (not lower bounds).
    pub complete: bool,
}

/// One layer's memory on both sides (`None`: absent on that side).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LayerDiff {
    /// The layer's name.
    pub layer: String,
    /// Output + saved + workspace bytes on the first side.
    pub a_bytes: Option<u64>,
    /// The same on the second side.
    pub b_bytes: Option<u64>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
/// What `nnmem diff` found between two analysed models.
pub struct DiffResult {
    /// Every figure both sides report, side by side.
    pub figures: Vec<FigureDiff>,
    /// The scenario whose per-layer figures are compared.
    pub layer_scenario: Option<Scenario>,
    /// The layers whose output + saved + workspace bytes changed most, largest change first.
    pub layers: Vec<LayerDiff>,
}

const SCENARIOS: [Scenario; 4] = Scenario::ALL;

/// Compares `a` and `b`, listing at most `top` layers.
pub fn diff(a: &Analysed, b: &Analysed, top: usize) -> DiffResult {
    let mut figures = Vec::new();
    let mut push = |subject: Subject, both: bool| {
        let (x, y) = (subject.value(a), subject.value(b));
        let complete = x.is_ok() && y.is_ok();
        let raw = |side: &Analysed| raw_value(subject, side);
        if both {
            figures.push(FigureDiff { subject, a: raw(a), b: raw(b), complete });
        }
    };
    for t in Total::ALL {
        push(Subject::Total(t), true);
    }
    for s in SCENARIOS {
        let both = a.memory.scenario(s).is_some() && b.memory.scenario(s).is_some();
        push(Subject::Scenario(s, Figure::Peak), both);
        for c in Category::ALL {
            push(Subject::Scenario(s, Figure::Category(c)), both);
        }
    }
    // Per-layer bytes of the most telling scenario both sides computed.
    let layer_scenario = [Scenario::Training, Scenario::StyleTransfer, Scenario::Inference, Scenario::Decode]
        .into_iter()
        .find(|&s| a.memory.scenario(s).is_some() && b.memory.scenario(s).is_some());
    let la = layer_bytes(a, layer_scenario);
    let lb = layer_bytes(b, layer_scenario);
    let index_b: HashMap<&str, u64> = lb.iter().map(|(n, v)| (n.as_str(), *v)).collect();
    let index_a: HashMap<&str, u64> = la.iter().map(|(n, v)| (n.as_str(), *v)).collect();
    let mut layers: Vec<LayerDiff> = la
        .iter()
        .map(|(n, v)| LayerDiff { layer: n.clone(), a_bytes: Some(*v), b_bytes: index_b.get(n.as_str()).copied() })
        .chain(
            lb.iter()
                .filter(|(n, _)| !index_a.contains_key(n.as_str()))
                .map(|(n, v)| LayerDiff { layer: n.clone(), a_bytes: None, b_bytes: Some(*v) }),
        )
        .filter(|l| l.a_bytes != l.b_bytes)
        .collect();
    let change = |l: &LayerDiff| (i128::from(l.b_bytes.unwrap_or(0)) - i128::from(l.a_bytes.unwrap_or(0))).abs();
    // Stable: equal changes keep execution order.
    layers.sort_by_key(|l| std::cmp::Reverse(change(l)));
    layers.truncate(top);
    DiffResult { figures, layer_scenario, layers }
}

/// The figure as computed, complete or not (`None`: the scenario was not computed).
fn raw_value(subject: Subject, a: &Analysed) -> Option<u64> {
    match subject {
        Subject::Total(t) => {
            let totals = a.graph.param_totals();
            Some(match t {
                Total::Params => totals.params,
                Total::NonTrainable => totals.non_trainable,
                Total::ParamBytes => totals.param_bytes,
                Total::ActivationBytes => crate::report::activation_bytes(&a.graph),
            })
        }
        Subject::Scenario(s, f) => a.memory.scenario(s).map(|sc| match f {
            Figure::Peak => sc.peak_bytes,
            Figure::Category(c) => sc.peak_breakdown.get(c),
        }),
    }
}

/// Per layer (first name wins), output + saved + workspace bytes in `scenario`.
fn layer_bytes(side: &Analysed, scenario: Option<Scenario>) -> Vec<(String, u64)> {
    let sc = scenario.and_then(|s| side.memory.scenario(s));
    let mut seen = std::collections::HashSet::new();
    side.graph
        .nodes
        .iter()
        .enumerate()
        .filter(|(_, n)| seen.insert(n.name.as_str()))
        .map(|(i, n)| {
            let m = sc.and_then(|s| s.nodes.get(i));
            let total = m.map(|m| m.output_bytes.saturating_add(m.saved_bytes).saturating_add(m.workspace_bytes)).unwrap_or(0);
            (n.name.clone(), total)
        })
        .collect()
}
