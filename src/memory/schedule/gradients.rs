//! Gradients (training): the activation gradient buffers, when backward
//! creates, accumulates and frees each, and the weight gradients.

use super::dataflow::Dataflow;
use super::{GradPlan, NodePlan, Role};
use crate::graph::TensorKind;

/// The gradient phase's result.
pub(super) struct Gradients {
    pub grads: Vec<GradPlan>,
    /// Per node: gradient buffers born at its backward step, transient
    /// accumulation bytes, buffers freed after it.
    pub grads_born: Vec<Vec<usize>>,
    pub grad_accum_bytes: Vec<u64>,
    pub grads_freed: Vec<Vec<usize>>,
    /// Per node: weight-gradient bytes born (persist) and accumulated (transient).
    pub weight_grads_born: Vec<u64>,
    pub weight_grad_accum: Vec<u64>,
    /// Per tensor: the index into `grads` of the buffer holding its gradient.
    pub grad_of: Vec<Option<usize>>,
    /// Losses inside the net, per node: gradient buffers their backward
    /// creates for the node's maps, and what it sums into existing ones.
    pub term_grads_born: Vec<Vec<usize>>,
    pub term_accum_bytes: Vec<u64>,
}

pub(super) fn plan(df: &Dataflow<'_>, plans: &[NodePlan]) -> Gradients {
    let n_nodes = df.graph.nodes.len();
    let mut g = Gradients {
        grads: Vec::new(),
        grads_born: vec![Vec::new(); n_nodes],
        grad_accum_bytes: vec![0; n_nodes],
        grads_freed: vec![Vec::new(); n_nodes],
        weight_grads_born: vec![0; n_nodes],
        weight_grad_accum: vec![0; n_nodes],
        grad_of: vec![None; df.graph.tensors.len()],
        term_grads_born: vec![Vec::new(); n_nodes],
        term_accum_bytes: vec![0; n_nodes],
    };
    if df.training {
        g.activation_gradients(df, plans);
        g.weight_gradients(df, plans);
    }
    g
}

impl Gradients {
    /// Walks backward: a node's output gradients exist before its step; its
    /// step creates (or accumulates into) its inputs' gradients and frees its
    /// output gradients.
    fn activation_gradients(&mut self, df: &Dataflow<'_>, plans: &[NodePlan]) {
        // The held tensors' gradients are born at the loss.
        for &t in &df.held {
            if df.requires_grad[t.0] && self.grad_of[t.0].is_none() {
                self.grad_of[t.0] = Some(self.grads.len());
                let bytes = df.worker(df.bytes[t.0], df.batch_of(t));
                self.grads.push(GradPlan { bytes, optimized: false, born_at: None, freed_after: None });
            }
        }
        for i in (0..plans.len()).rev() {
            let plan = &plans[i];
            if !plan.needs_backward || plan.role == Role::Skip {
                continue;
            }
            if df.in_net {
                self.in_net_loss_gradients(df, plan, i);
            }
            // Output gradients are consumed here; free them after this step
            // (a view's input gradient reuses the buffer instead).
            let out_grads: Vec<usize> = plan.outputs.iter().filter_map(|t| self.grad_of[t.0]).collect();
            let mut passes_through = false;
            for (k, &t) in plan.inputs.iter().enumerate() {
                if !df.requires_grad[t.0] {
                    continue;
                }
                let gb = df.worker(df.bytes[t.0], df.batch_of(t));
                if self.grad_of[t.0].is_some() {
                    // Another reader already made this gradient: accumulate.
                    self.grad_accum_bytes[i] = self.grad_accum_bytes[i].saturating_add(gb);
                    continue;
                }
                // An add of constants or weights to one data operand (a bias,
                // a mask) hands its incoming gradient on as that operand's.
                let shares = plan.role == Role::View
                    || (plan.role == Role::InPlace && df.profile.in_place_grads)
                    || (df.profile.sum_grads_pass_through && df.passes_gradient(i));
                if shares && k == 0 && out_grads.len() == 1 && df.readers[t.0].len() == 1 {
                    self.grad_of[t.0] = Some(out_grads[0]);
                    passes_through = true;
                } else {
                    self.grad_of[t.0] = Some(self.grads.len());
                    self.grads_born[i].push(self.grads.len());
                    let optimized = df.graph.tensor(t).kind == TensorKind::Input;
                    self.grads.push(GradPlan { bytes: gb, optimized, born_at: Some(i), freed_after: None });
                }
            }
            if !passes_through && !df.profile.persistent {
                for g in out_grads {
                    if self.grads[g].freed_after.is_none() {
                        self.grads[g].freed_after = Some(i);
                        self.grads_freed[i].push(g);
                    }
                }
            }
        }
    }

    /// Losses inside the net: just before node `i`'s backward step, the loss
    /// on each map it produced adds dL/dF to the map's gradient — a new buffer
    /// when no later layer made one (the deepest tap), else a transient sum.
    fn in_net_loss_gradients(&mut self, df: &Dataflow<'_>, plan: &NodePlan, i: usize) {
        for &t in &plan.outputs {
            if !df.tapped[t.0] || !df.requires_grad[t.0] {
                continue;
            }
            let gb = df.worker(df.bytes[t.0], df.batch_of(t));
            if self.grad_of[t.0].is_some() {
                self.term_accum_bytes[i] = self.term_accum_bytes[i].saturating_add(gb);
            } else {
                self.grad_of[t.0] = Some(self.grads.len());
                self.term_grads_born[i].push(self.grads.len());
                self.grads.push(GradPlan { bytes: gb, optimized: false, born_at: Some(i), freed_after: None });
            }
        }
    }

    /// Weight gradients: born at the backward step of the weight's last
    /// reader (none when the weights are frozen, as in style transfer).
    fn weight_gradients(&mut self, df: &Dataflow<'_>, plans: &[NodePlan]) {
        let mut seen = vec![false; df.graph.tensors.len()];
        for i in (0..plans.len()).rev() {
            if df.style.is_some() || !plans[i].needs_backward || plans[i].role == Role::Skip {
                continue;
            }
            for &p in &df.node_weights[i] {
                let t = df.graph.tensor(p);
                let b = t.elems().unwrap_or(0).saturating_mul(df.prec.master).saturating_mul(df.copies);
                if std::mem::replace(&mut seen[p.0], true) {
                    self.weight_grad_accum[i] = self.weight_grad_accum[i].saturating_add(b);
                } else {
                    self.weight_grads_born[i] = self.weight_grads_born[i].saturating_add(b);
                }
            }
        }
    }
}
