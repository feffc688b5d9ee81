//! Replays a `Schedule` step by step and keeps the live bytes per category,
//! the peak, and the live set after every node. Each step first allocates
//! (outputs before inputs are freed, plus the step's transient workspace),
//! is observed for the peak, then frees what the schedule says dies there.

use super::schedule::{Role, Schedule};
use super::{Breakdown, Category, NodeMemory, Phase, Scenario, TimelineStep};

pub(crate) struct Outcome {
    pub peak_bytes: u64,
    pub peak_node: Option<usize>,
    pub peak_phase: Phase,
    pub peak_breakdown: Breakdown,
    /// Set when the peak is at a step that is not a graph node (a loss term).
    pub peak_label: Option<String>,
    pub nodes: Vec<NodeMemory>,
    pub timeline: Vec<TimelineStep>,
}

struct Tracker {
    live: Breakdown,
    /// The highest moment observed since the current step began.
    moment: Breakdown,
    peak: Breakdown,
    peak_total: u64,
    peak_node: Option<usize>,
    peak_phase: Phase,
    peak_label: Option<String>,
}

impl Tracker {
    /// Takes the current live set plus `transient` as a candidate peak; true
    /// when it is the new peak.
    fn observe(&mut self, transient: &[(Category, u64)], node: Option<usize>, phase: Phase) -> bool {
        let mut now = self.live;
        for &(c, b) in transient {
            now.add(c, b);
        }
        let total = now.total();
        if total >= self.moment.total() {
            self.moment = now;
        }
        if total > self.peak_total || self.peak_node.is_none() && self.peak_total == 0 {
            self.peak_total = total;
            self.peak = now;
            self.peak_node = node;
            self.peak_phase = phase;
            self.peak_label = None;
            return true;
        }
        false
    }
}

pub(crate) fn replay(s: &Schedule, scenario: Scenario, optimizer_state: u64) -> Outcome {
    let training = scenario.trains();
    let mut r = Replay {
        s,
        training,
        category: s.storages.iter().map(|st| if st.is_input { Category::Inputs } else { Category::Activations }).collect(),
        t: Tracker {
            live: Breakdown::default(),
            moment: Breakdown::default(),
            peak: Breakdown::default(),
            peak_total: 0,
            peak_node: None,
            peak_phase: Phase::Forward,
            peak_label: None,
        },
        nodes: s
            .nodes
            .iter()
            .map(|p| NodeMemory {
                output_bytes: p.output_bytes,
                saved_bytes: if training { p.saved_bytes } else { 0 },
                workspace_bytes: if training { p.workspace_train } else { p.workspace_infer },
                live_bytes_after: 0,
                backward_workspace_bytes: if training && p.needs_backward { p.workspace_backward } else { 0 },
                live_bytes_after_backward: None,
                runs: p.runs,
                computes_data: !p.outputs.is_empty(),
            })
            .collect(),
        timeline: Vec::with_capacity(if training { 2 * s.nodes.len() } else { s.nodes.len() }),
        freed_taps: vec![false; s.storages.len()],
        terms_at: {
            let mut at = vec![Vec::new(); s.nodes.len()];
            for (k, term) in s.loss_terms.iter().enumerate() {
                if let Some(i) = term.at_node.filter(|_| training) {
                    at[i].push(k);
                }
            }
            at
        },
    };
    r.t.live.add(Category::Weights, s.weight_bytes);
    r.t.live.add(Category::Inputs, s.input_bytes);
    // Style transfer's target Grams and feature maps are computed before the
    // optimization starts and stay resident, like the image.
    r.t.live.add(Category::Inputs, s.target_bytes);
    r.t.live.add(Category::Workspace, s.shared_workspace);
    if training {
        // Steady state: the optimizer's state survives from the previous step.
        r.t.live.add(Category::OptimizerState, optimizer_state);
    }
    r.forward();
    if training {
        if s.loss_terms.is_empty() {
            r.loss();
        } else if s.loss_terms.iter().any(|t| t.at_node.is_none()) {
            r.style_loss();
        }
        r.backward();
        // Optimizer step: weights, gradients and state together.
        r.t.moment = Breakdown::default();
        r.t.observe(&[], None, Phase::Step);
        r.step("optimizer step", Phase::Step);
    }
    Outcome {
        peak_bytes: r.t.peak_total,
        peak_node: r.t.peak_node,
        peak_phase: r.t.peak_phase,
        peak_breakdown: r.t.peak,
        peak_label: r.t.peak_label,
        nodes: r.nodes,
        timeline: r.timeline,
    }
}

/// The replay's state as it walks the schedule.
struct Replay<'a> {
    s: &'a Schedule,
    training: bool,
    /// Per storage: the category its bytes count under now.
    category: Vec<Category>,
    t: Tracker,
    nodes: Vec<NodeMemory>,
    timeline: Vec<TimelineStep>,
    /// Per node: the loss terms inside the net on the maps it produces.
    terms_at: Vec<Vec<usize>>,
    /// Per storage: a tapped map already freed by its loss's backward.
    freed_taps: Vec<bool>,
}

impl Replay<'_> {
    /// Records a step that is not a node (a loss term, the optimizer step).
    fn step(&mut self, label: &str, phase: Phase) {
        self.timeline.push(TimelineStep { node: None, label: Some(label.to_string()), phase, breakdown: self.t.live, during: self.t.moment });
    }

    fn forward(&mut self) {
        let (s, training) = (self.s, self.training);
        let t = &mut self.t;
        for (i, p) in s.nodes.iter().enumerate() {
            t.moment = Breakdown::default();
            if p.role != Role::Skip {
                for &st in &p.new_storages {
                    t.live.add(Category::Activations, s.storages[st].bytes);
                }
                let extra = if training && p.needs_backward { p.extra_saved_bytes } else { 0 };
                t.live.add(Category::SavedForBackward, extra);
                let ws = if training { p.workspace_train } else { p.workspace_infer };
                if s.persistent {
                    // Module-owned scratch (finput, pool masks) stays allocated.
                    t.live.add(Category::Workspace, ws);
                    t.observe(&[], Some(i), Phase::Forward);
                } else {
                    t.observe(&[(Category::Workspace, ws)], Some(i), Phase::Forward);
                }
                if training {
                    for &st in &p.saved {
                        if self.category[st] == Category::Activations {
                            self.category[st] = Category::SavedForBackward;
                            t.live.move_bytes(Category::Activations, Category::SavedForBackward, s.storages[st].bytes);
                        }
                    }
                }
                for &st in &p.fwd_frees {
                    t.live.sub(self.category[st], s.storages[st].bytes);
                }
                // Losses inside the net run their forward right after the
                // layer: the Gram is kept for their backward, the criterion's
                // buffer for the whole step.
                if !self.terms_at[i].is_empty() {
                    for &k in &self.terms_at[i] {
                        t.live.add(Category::SavedForBackward, s.loss_terms[k].gram_bytes);
                        t.live.add(Category::Activations, s.loss_terms[k].criterion_bytes);
                    }
                    t.observe(&[], Some(i), Phase::Forward);
                }
            }
            self.nodes[i].live_bytes_after = t.live.total();
            if p.role != Role::Skip {
                self.timeline.push(TimelineStep { node: Some(i), label: None, phase: Phase::Forward, breakdown: t.live, during: t.moment });
            }
        }
    }

    /// Loss: the gradients of the graph outputs.
    fn loss(&mut self) {
        self.t.moment = Breakdown::default();
        for g in &self.s.grads {
            if g.born_at.is_none() {
                self.t.live.add(Category::ActivationGrads, g.bytes);
            }
        }
        self.t.observe(&[], None, Phase::Loss);
        self.step("loss", Phase::Loss);
    }

    /// Style transfer: every style term computes its Gram matrix and keeps
    /// it for backward; then the terms run backward in reverse order, each
    /// creating the gradient of its feature map (two F-sized products
    /// summed into one for a Gram; the squared error's derivative for a
    /// content term), which lives until that map's producer runs backward.
    fn style_loss(&mut self) {
        let s = self.s;
        self.t.moment = Breakdown::default();
        for term in &s.loss_terms {
            self.t.live.add(Category::SavedForBackward, term.gram_bytes);
        }
        self.t.observe(&[], None, Phase::Loss);
        self.step("loss forward (Gram matrices)", Phase::Loss);
        let mut born = vec![false; s.grads.len()];
        for term in s.loss_terms.iter().rev() {
            let t = &mut self.t;
            t.moment = Breakdown::default();
            if let Some(g) = term.grad {
                if !std::mem::replace(&mut born[g], true) {
                    t.live.add(Category::ActivationGrads, s.grads[g].bytes);
                }
            }
            let transient = [(Category::ActivationGrads, term.feature_bytes), (Category::ActivationGrads, term.gram_bytes)];
            if s.persistent {
                // The loss module's own gradient buffers stay.
                for (c, b) in transient {
                    t.live.add(c, b);
                }
                if t.observe(&[], None, Phase::Loss) {
                    t.peak_label = Some(term.label.clone());
                }
                self.step(&term.label, Phase::Loss);
                continue;
            }
            if t.observe(&transient, None, Phase::Loss) {
                t.peak_label = Some(term.label.clone());
            }
            t.live.sub(Category::SavedForBackward, term.gram_bytes);
            // The map goes with its loss's graph unless a layer saved it too.
            if let Some(st) = term.storage.filter(|&st| s.storages[st].held_to_loss && s.storages[st].saved_until.is_none()) {
                if !std::mem::replace(&mut self.freed_taps[st], true) {
                    t.live.sub(self.category[st], s.storages[st].bytes);
                }
            }
            self.step(&term.label, Phase::Loss);
        }
    }

    /// Backward, in reverse node order.
    fn backward(&mut self) {
        let (s, t) = (self.s, &mut self.t);
        for i in (0..s.nodes.len()).rev() {
            let p = &s.nodes[i];
            if !p.needs_backward || p.role == Role::Skip {
                continue;
            }
            t.moment = Breakdown::default();
            for &g in &s.grads_born[i] {
                t.live.add(grad_category(s, g), s.grads[g].bytes);
            }
            t.live.add(Category::WeightGrads, s.weight_grads_born[i]);
            // Losses inside the net on this layer's maps run their backward
            // first, as autograd nodes of their own: two F-sized products (one
            // summed into F's gradient, a new buffer or a transient sum) and dL/dG.
            if !self.terms_at[i].is_empty() {
                for &g in &s.term_grads_born[i] {
                    t.live.add(grad_category(s, g), s.grads[g].bytes);
                }
                // Several losses on one map run one after another: the largest
                // one's products are the transient.
                let largest = self.terms_at[i]
                    .iter()
                    .map(|&k| s.loss_terms[k].feature_bytes.saturating_add(s.loss_terms[k].gram_bytes))
                    .max()
                    .unwrap_or(0);
                let term_bytes = s.term_accum_bytes[i].saturating_add(largest);
                if s.persistent {
                    t.live.add(Category::ActivationGrads, term_bytes);
                    t.observe(&[], Some(i), Phase::Backward);
                } else {
                    t.observe(&[(Category::ActivationGrads, term_bytes)], Some(i), Phase::Backward);
                }
                for &k in &self.terms_at[i] {
                    t.live.sub(Category::SavedForBackward, s.loss_terms[k].gram_bytes);
                }
            }
            if s.persistent {
                // Each reader's gradient buffer and the module's backward scratch
                // (fgradInput) stay allocated.
                t.live.add(Category::ActivationGrads, s.grad_accum_bytes[i]);
                t.live.add(Category::WeightGrads, s.weight_grad_accum[i]);
                t.live.add(Category::Workspace, p.workspace_backward);
                t.observe(&[], Some(i), Phase::Backward);
            } else {
                t.observe(
                    &[
                        (Category::ActivationGrads, s.grad_accum_bytes[i]),
                        (Category::WeightGrads, s.weight_grad_accum[i]),
                        (Category::Workspace, p.workspace_backward),
                    ],
                    Some(i),
                    Phase::Backward,
                );
            }
            for &g in &s.grads_freed[i] {
                t.live.sub(grad_category(s, g), s.grads[g].bytes);
            }
            for &st in &p.saved {
                if s.storages[st].saved_until == Some(i) && !s.storages[st].pinned {
                    t.live.sub(self.category[st], s.storages[st].bytes);
                }
            }
            if !s.persistent {
                t.live.sub(Category::SavedForBackward, p.extra_saved_bytes);
            }
            self.nodes[i].live_bytes_after_backward = Some(t.live.total());
            self.timeline.push(TimelineStep { node: Some(i), label: None, phase: Phase::Backward, breakdown: t.live, during: t.moment });
        }
    }
}

/// The optimized input's gradient counts with the weight gradients.
fn grad_category(s: &Schedule, g: usize) -> Category {
    if s.grads[g].optimized {
        Category::WeightGrads
    } else {
        Category::ActivationGrads
    }
}
