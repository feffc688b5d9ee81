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
    /// reader (none when the weights are frozen, as in style transfer). A
    /// weight read by several nodes (a tied embedding and LM head) gets one
    /// gradient per reader, summed as they arrive: the incoming gradient is a
    /// transient, and when the buffer holds a view (the first gradient came
    /// through `W.t()`) autograd sums out of place, so the sum is a second
    /// transient that then replaces the view; later sums are in place.
    fn weight_gradients(&mut self, df: &Dataflow<'_>, plans: &[NodePlan]) {
        let mut seen = vec![false; df.graph.tensors.len()];
        let mut holds_view = vec![false; df.graph.tensors.len()];
        for i in (0..plans.len()).rev() {
            if df.style.is_some() || !plans[i].needs_backward || plans[i].role == Role::Skip {
                continue;
            }
            for (k, &p) in df.node_weights[i].iter().enumerate() {
                let t = df.graph.tensor(p);
                let b = t.elems().unwrap_or(0).saturating_mul(df.prec.master).saturating_mul(df.copies);
                if std::mem::replace(&mut seen[p.0], true) {
                    let out_of_place = std::mem::replace(&mut holds_view[p.0], false) && !df.profile.persistent;
                    let transient = if out_of_place { b.saturating_mul(2) } else { b };
                    self.weight_grad_accum[i] = self.weight_grad_accum[i].saturating_add(transient);
                } else {
                    self.weight_grads_born[i] = self.weight_grads_born[i].saturating_add(b);
                    holds_view[p.0] = df.weight_via_view[i].get(k).copied().unwrap_or(false);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::graph::{Graph, ModelFormat, Node, NodeId, Shape, Tensor, TensorId, TensorKind};
    use crate::memory::{analyse, Category, MemorySettings, Scenario};
    use crate::ops::{DenseOp, ElementwiseOp, EltwiseKind, LayoutOp, Op};
    use crate::tensor::DType;

    /// A 64×16 f32 table: 4,096 B.
    const W: u64 = 64 * 16 * 4;

    fn tensor(g: &mut Graph, name: &str, dims: Vec<u64>, dtype: DType, kind: TensorKind) -> TensorId {
        g.add_tensor(Tensor {
            name: name.into(),
            shape: Some(Shape::new(dims)),
            unknown: None,
            dtype,
            kind,
            trainable: kind == TensorKind::Param,
            producer: None,
        })
    }

    fn node(g: &mut Graph, op: Op, inputs: &[TensorId], params: &[TensorId], out: TensorId) {
        g.tensors[out.0].producer = Some(NodeId(g.nodes.len()));
        g.nodes.push(Node {
            name: g.tensors[out.0].name.clone(),
            source_type: op.name().into(),
            op,
            inputs: inputs.to_vec(),
            params: params.to_vec(),
            outputs: vec![out],
            in_place: false,
            attrs: Vec::new(),
            scope: Default::default(),
            call: None,
        });
    }

    /// The table's readers: `heads` LM heads MatMul(x, Transpose(W)) after
    /// `embeddings` Gathers of W (each embedding feeds the next reader).
    fn tied(embeddings: usize, heads: usize) -> Graph {
        let mut g = Graph::new("tied", ModelFormat::Onnx);
        let w = tensor(&mut g, "w", vec![64, 16], DType::F32, TensorKind::Param);
        let mut x = None;
        for k in 0..embeddings {
            let ids = tensor(&mut g, &format!("ids{k}"), vec![2, 8], DType::I64, TensorKind::Input);
            g.inputs.push(ids);
            let e = tensor(&mut g, &format!("e{k}"), vec![2, 8, 16], DType::F32, TensorKind::Activation);
            node(&mut g, Op::Layout(LayoutOp::Gather { axis: 0 }), &[ids], &[w], e);
            x = Some(match x {
                None => e,
                Some(prev) => {
                    let s = tensor(&mut g, &format!("s{k}"), vec![2, 8, 16], DType::F32, TensorKind::Activation);
                    let sum = Op::Elementwise(ElementwiseOp::Eltwise { kind: EltwiseKind::Sum, broadcast: true });
                    node(&mut g, sum, &[prev, e], &[], s);
                    s
                }
            });
        }
        let mut out = x.expect("one embedding");
        for k in 0..heads {
            let wt = tensor(&mut g, &format!("wt{k}"), vec![16, 64], DType::F32, TensorKind::Constant);
            node(&mut g, Op::Layout(LayoutOp::Transpose { perm: None }), &[], &[w], wt);
            let y = tensor(&mut g, &format!("logits{k}"), vec![2, 8, 64], DType::F32, TensorKind::Activation);
            node(&mut g, Op::Dense(DenseOp::MatMul), &[out, wt], &[], y);
            out = y;
        }
        g.outputs.push(out);
        g
    }

    /// Weight-gradient bytes at each node's backward high point.
    fn weight_grads_during(g: &Graph) -> Vec<(String, u64)> {
        let settings = MemorySettings { scenarios: vec![Scenario::Training], ..Default::default() };
        let r = analyse(g, &settings);
        let s = r.scenario(Scenario::Training).expect("training");
        s.timeline
            .iter()
            .filter(|t| t.phase == crate::memory::Phase::Backward)
            .filter_map(|t| Some((g.nodes[t.node?].name.clone(), t.during.get(Category::WeightGrads))))
            .collect()
    }

    #[test]
    fn a_tied_head_gradient_is_a_view_so_the_first_sum_is_out_of_place() {
        // Head first (its gradient arrives through W.t()), then the embedding:
        // the view, the embedding's gradient and their sum.
        let steps = weight_grads_during(&tied(1, 1));
        assert_eq!(steps, vec![("logits0".into(), W), ("e0".into(), 3 * W)]);
        // A third reader sums into the sum, in place: one incoming gradient.
        let steps = weight_grads_during(&tied(2, 1));
        assert_eq!(steps.iter().find(|(n, _)| n == "e1").map(|s| s.1), Some(3 * W));
        assert_eq!(steps.iter().find(|(n, _)| n == "e0").map(|s| s.1), Some(2 * W));
    }

    #[test]
    fn a_table_read_directly_sums_in_place() {
        // Two embeddings of one table (no head): the first gradient is a
        // plain buffer, so the second is added into it.
        let steps = weight_grads_during(&tied(2, 0));
        assert_eq!(steps.iter().find(|(n, _)| n == "e1").map(|s| s.1), Some(W));
        assert_eq!(steps.iter().find(|(n, _)| n == "e0").map(|s| s.1), Some(2 * W));
    }
}
