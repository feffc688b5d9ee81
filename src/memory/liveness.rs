//! Replays a `Schedule` step by step and keeps the live bytes per category,
//! the peak, and the live set after every node. Each step first allocates
//! (outputs before inputs are freed, plus the step's transient workspace),
//! is observed for the peak, then frees what the schedule says dies there.

use super::schedule::{Role, Schedule, NEVER};
use super::{Breakdown, Category, NodeMemory, Phase, Scenario};

pub(crate) struct Outcome {
    pub peak_bytes: u64,
    pub peak_node: Option<usize>,
    pub peak_phase: Phase,
    pub peak_breakdown: Breakdown,
    pub nodes: Vec<NodeMemory>,
}

struct Tracker {
    live: Breakdown,
    peak: Breakdown,
    peak_total: u64,
    peak_node: Option<usize>,
    peak_phase: Phase,
}

impl Tracker {
    /// Takes the current live set plus `transient` as a candidate peak.
    fn observe(&mut self, transient: &[(Category, u64)], node: Option<usize>, phase: Phase) {
        let mut now = self.live;
        for &(c, b) in transient {
            now.add(c, b);
        }
        let total = now.total();
        if total > self.peak_total || self.peak_node.is_none() && self.peak_total == 0 {
            self.peak_total = total;
            self.peak = now;
            self.peak_node = node;
            self.peak_phase = phase;
        }
    }
}

pub(crate) fn replay(s: &Schedule, scenario: Scenario, optimizer_state: u64) -> Outcome {
    let training = scenario == Scenario::Training;
    let mut category: Vec<Category> = s
        .storages
        .iter()
        .map(|st| if st.is_input { Category::Inputs } else { Category::Activations })
        .collect();
    let mut t = Tracker {
        live: Breakdown::default(),
        peak: Breakdown::default(),
        peak_total: 0,
        peak_node: None,
        peak_phase: Phase::Forward,
    };
    t.live.add(Category::Weights, s.weight_bytes);
    t.live.add(Category::Inputs, s.input_bytes);
    if training {
        // Steady state: the optimizer's state survives from the previous step.
        t.live.add(Category::OptimizerState, optimizer_state);
    }
    let mut nodes: Vec<NodeMemory> = s
        .nodes
        .iter()
        .map(|p| NodeMemory {
            output_bytes: p.output_bytes,
            saved_bytes: if training { p.saved_bytes } else { 0 },
            workspace_bytes: if training { p.workspace_train } else { p.workspace_infer },
            live_bytes_after: 0,
            backward_workspace_bytes: if training && p.needs_backward { p.workspace_backward } else { 0 },
            live_bytes_after_backward: None,
        })
        .collect();

    // Forward.
    for (i, p) in s.nodes.iter().enumerate() {
        if p.role != Role::Skip {
            for &st in &p.new_storages {
                t.live.add(Category::Activations, s.storages[st].bytes);
            }
            let extra = if training && p.needs_backward { p.extra_saved_bytes } else { 0 };
            t.live.add(Category::SavedForBackward, extra);
            let ws = if training { p.workspace_train } else { p.workspace_infer };
            t.observe(&[(Category::Workspace, ws)], Some(i), Phase::Forward);
            if training {
                for &st in &p.saved {
                    if category[st] == Category::Activations {
                        category[st] = Category::SavedForBackward;
                        t.live.move_bytes(Category::Activations, Category::SavedForBackward, s.storages[st].bytes);
                    }
                }
            }
            for &st in &p.fwd_frees {
                t.live.sub(category[st], s.storages[st].bytes);
            }
        }
        nodes[i].live_bytes_after = t.live.total();
    }
    if !training {
        return finish(t, nodes);
    }

    // Loss: the gradients of the graph outputs.
    for g in &s.grads {
        if g.born_at == NEVER {
            t.live.add(Category::ActivationGrads, g.bytes);
        }
    }
    t.observe(&[], None, Phase::Loss);

    // Backward, in reverse node order.
    for i in (0..s.nodes.len()).rev() {
        let p = &s.nodes[i];
        if !p.needs_backward || p.role == Role::Skip {
            continue;
        }
        for &g in &s.grads_born[i] {
            t.live.add(Category::ActivationGrads, s.grads[g].bytes);
        }
        t.live.add(Category::WeightGrads, s.weight_grads_born[i]);
        t.observe(
            &[
                (Category::ActivationGrads, s.grad_accum_bytes[i]),
                (Category::WeightGrads, s.weight_grad_accum[i]),
                (Category::Workspace, p.workspace_backward),
            ],
            Some(i),
            Phase::Backward,
        );
        for &g in &s.grads_freed[i] {
            t.live.sub(Category::ActivationGrads, s.grads[g].bytes);
        }
        for &st in &p.saved {
            if s.storages[st].saved_until == i && !s.storages[st].pinned {
                t.live.sub(category[st], s.storages[st].bytes);
            }
        }
        t.live.sub(Category::SavedForBackward, p.extra_saved_bytes);
        nodes[i].live_bytes_after_backward = Some(t.live.total());
    }

    // Optimizer step: weights, gradients and state together.
    t.observe(&[], None, Phase::Step);
    finish(t, nodes)
}

fn finish(t: Tracker, nodes: Vec<NodeMemory>) -> Outcome {
    Outcome {
        peak_bytes: t.peak_total,
        peak_node: t.peak_node,
        peak_phase: t.peak_phase,
        peak_breakdown: t.peak,
        nodes,
    }
}
