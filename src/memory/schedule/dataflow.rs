//! What every phase of the schedule reads: which tensors carry data, who reads
//! them (after decompositions are folded), each op's memory facts, which
//! trainable weights each node's backward updates, which nodes run, and what
//! needs a gradient.

use super::attention::{self, Call, Runs};
use super::folding::fold_decompositions;
use super::{Mode, ResolvedLoss};
use crate::graph::{Graph, TensorId};
use crate::memory::profiles::Profile;
use crate::memory::LossPlacement;
use crate::memory::training::Precision;
use crate::ops::{ExtraSaved, MemoryFacts, SavedType, Storage};

pub(super) struct Dataflow<'a> {
    pub graph: &'a Graph,
    pub profile: &'a Profile,
    pub prec: &'a Precision,
    pub threads: u32,
    pub training: bool,
    /// Style transfer's loss tensors.
    pub style: Option<&'a ResolvedLoss>,
    /// Per-worker copies (tiny-dnn): activations, gradients and scratch once
    /// per thread; 1 otherwise.
    pub copies: u64,
    /// Per tensor: bytes at the run's precision (0 when the shape is unknown).
    pub bytes: Vec<u64>,
    /// Per tensor: it carries data (see `Graph::data_tensors`).
    pub data: Vec<bool>,
    /// Tensors the scenario needs whose size is unknown (left out of the estimate).
    pub unknown_tensors: usize,
    /// Per node: its data inputs; a fused decomposition's root reads just x.
    pub data_inputs: Vec<Vec<TensorId>>,
    /// Per tensor: the nodes that read it as data, folded nodes left out.
    pub readers: Vec<Vec<usize>>,
    /// Per node: folded into a later node (it does not run on its own).
    pub folded: Vec<bool>,
    /// Per node: the root x of the decomposition it closes, when it does.
    pub fold_root: Vec<Option<TensorId>>,
    /// Per node: its op's memory facts for its shapes.
    pub facts: Vec<MemoryFacts>,
    /// Per node: the trainable weights its backward step makes gradients for.
    pub node_weights: Vec<Vec<TensorId>>,
    /// Per node, beside `node_weights`: the weight reaches the node through
    /// weight-only views alone (Transpose(W) into a MatMul), so the gradient
    /// its backward step makes for W is a view of the product's gradient.
    pub weight_via_view: Vec<Vec<bool>>,
    /// Per node: not run (style transfer stops at the deepest loss).
    pub skipped: Vec<bool>,
    /// Per tensor: training needs its gradient.
    pub requires_grad: Vec<bool>,
    /// Per node: training runs its backward step.
    pub needs_backward: Vec<bool>,
    /// Held to the end: the graph outputs, or style transfer's loss tensors
    /// when the losses run after the forward pass.
    pub held: Vec<TensorId>,
    /// Per tensor: style transfer taps it for a loss (nothing may overwrite it in place).
    pub tapped: Vec<bool>,
    /// Style transfer with the losses inside the net.
    pub in_net: bool,
    /// Attention computations, and per node the one whose output it is and
    /// how the backend runs it (`attention.rs`).
    pub attention: Vec<Call>,
    pub attention_at: Vec<Option<(usize, Runs)>>,
}

impl<'a> Dataflow<'a> {
    pub(super) fn new(graph: &'a Graph, profile: &'a Profile, prec: &'a Precision, mode: Mode<'a>, threads: u32) -> Self {
        let style = match mode {
            Mode::Style(l) => Some(l),
            Mode::Inference | Mode::Training => None,
        };
        let bytes: Vec<u64> = graph
            .tensors
            .iter()
            .map(|t| match t.elems() {
                Some(e) => prec.activation_bytes(t.dtype, e),
                None => 0,
            })
            .collect();
        let data = graph.data_tensors();
        let n_nodes = graph.nodes.len();
        let mut df = Dataflow {
            graph,
            profile,
            prec,
            threads,
            training: !matches!(mode, Mode::Inference),
            style,
            // Each worker handles one sample at a time, so its copy is one sample's worth.
            copies: if profile.per_thread_copies { u64::from(threads.max(1)) } else { 1 },
            bytes,
            data_inputs: graph.nodes.iter().map(|nd| nd.inputs.iter().copied().filter(|t| data[t.0]).collect()).collect(),
            data,
            unknown_tensors: 0,
            readers: Vec::new(),
            folded: vec![false; n_nodes],
            fold_root: vec![None; n_nodes],
            facts: Vec::new(),
            node_weights: Vec::new(),
            weight_via_view: Vec::new(),
            skipped: vec![false; n_nodes],
            requires_grad: vec![false; graph.tensors.len()],
            needs_backward: vec![false; n_nodes],
            held: match style {
                Some(l) if l.placement == LossPlacement::AfterForward => l.style.iter().chain(l.content.iter()).map(|(_, t)| *t).collect(),
                Some(_) => Vec::new(),
                None => graph.outputs.clone(),
            },
            tapped: vec![false; graph.tensors.len()],
            in_net: style.is_some_and(|l| l.placement == LossPlacement::InNet),
            attention: Vec::new(),
            attention_at: vec![None; n_nodes],
        };
        if let Some(l) = style {
            for (_, t) in l.style.iter().chain(l.content.iter()) {
                df.tapped[t.0] = true;
            }
        }
        df.fold();
        df.attend();
        df.facts = node_facts(graph, &df.fold_root);
        df.single_node_attention();
        df.attention_facts();
        (df.node_weights, df.weight_via_view) = node_weights(graph, &df.data);
        df.skip_unused();
        df.count_unknown();
        df.mark_gradients();
        df
    }

    /// Extent of a tensor's first axis (1 when unknown or 0).
    pub fn batch_of(&self, t: TensorId) -> u64 {
        self.graph.tensor(t).shape.as_ref().and_then(|s| s.dims().first().copied()).unwrap_or(1).max(1)
    }

    /// Bytes one worker holds of a buffer of `b` bytes for a batch of `n`
    /// (all of it unless the profile keeps per-worker copies).
    pub fn worker(&self, b: u64, n: u64) -> u64 {
        if self.profile.per_thread_copies {
            (b / n.max(1)).saturating_mul(self.copies)
        } else {
            b
        }
    }

    /// Readers of every tensor, and the decompositions folded back into one op.
    fn fold(&mut self) {
        let no_skip = vec![false; self.graph.nodes.len()];
        readers_of(&mut self.readers, self.graph.tensors.len(), &self.data_inputs, &no_skip);
        if !self.profile.fuse_pointwise_decompositions {
            return;
        }
        let (folded, fold_root) = fold_decompositions(self.graph, &self.data_inputs, &self.readers);
        self.folded = folded.iter().map(|f| f.is_some()).collect();
        for (m, r) in fold_root.iter().enumerate() {
            if let Some(x) = r {
                self.data_inputs[m] = vec![*x];
            }
        }
        self.fold_root = fold_root;
        if self.folded.iter().any(|&f| f) {
            readers_of(&mut self.readers, self.graph.tensors.len(), &self.data_inputs, &self.folded);
        }
    }

    /// Attention: a call the backend runs fused becomes its output product
    /// reading Q, K, V (and a data mask); the nodes inside it do not run.
    fn attend(&mut self) {
        self.attention = attention::find(self.graph, &self.data_inputs, &self.readers, &self.folded);
        let mut rewired = false;
        for (c, call) in self.attention.iter().enumerate() {
            let runs = call.runs(self.profile, self.training);
            self.attention_at[call.output] = Some((c, runs));
            if runs == Runs::Fused {
                for &i in &call.inner {
                    self.folded[i] = true;
                }
                self.data_inputs[call.output] = [call.q, call.k, call.v].into_iter().chain(call.mask).collect();
                rewired = true;
            }
        }
        if rewired {
            readers_of(&mut self.readers, self.graph.tensors.len(), &self.data_inputs, &self.folded);
        }
    }

    /// Attention in one node (ONNX Attention, ORT's GroupQueryAttention and
    /// MultiHeadAttention): a call of its own, whose facts are the op's (the
    /// fused kernel) unless the backend runs the math path.
    fn single_node_attention(&mut self) {
        for i in 0..self.graph.nodes.len() {
            if self.folded[i] || self.attention_at[i].is_some() {
                continue;
            }
            let Some(e) = self.facts[i].fused_attention else { continue };
            let Some(call) = Call::of_node(i, &self.data_inputs[i], &e) else { continue };
            let runs = call.runs(self.profile, self.training);
            self.attention_at[i] = Some((self.attention.len(), runs));
            self.attention.push(call);
        }
    }

    /// The fused kernel's facts on its output node; the math path's dropout
    /// when the graph has no Dropout node for it (dynamo's exports): the f32
    /// noise and the dropped probabilities, both kept for backward.
    fn attention_facts(&mut self) {
        for (i, at) in self.attention_at.iter().enumerate() {
            let Some((c, runs)) = *at else { continue };
            let call = &self.attention[c];
            match runs {
                // A single node's own facts are the fused kernel's.
                Runs::Fused if call.single_node() => {}
                // Its math path keeps the scores and probabilities instead of
                // the log-sum-exp.
                Runs::Math if call.single_node() => {
                    let extra = call.math_matrices();
                    self.facts[i].extra_saved = extra;
                }
                Runs::Fused => self.facts[i] = call.fused_facts(),
                Runs::Math if call.dropout && call.dropout_node.is_none() => {
                    let elems = call.scores();
                    self.facts[i].extra_saved.push(ExtraSaved { what: "dropout mask", elems, dtype: SavedType::DropoutMask });
                    self.facts[i].extra_saved.push(ExtraSaved { what: "dropped probabilities", elems, dtype: SavedType::Compute });
                }
                Runs::Math | Runs::AsWritten => {}
            }
        }
    }

    /// Node `i` adds constants or weights to one data operand of its own
    /// shape (a bias, a mask): autograd hands its output gradient to that
    /// operand as it is (`AddBackward` returns `grad`), no new buffer.
    pub fn passes_gradient(&self, i: usize) -> bool {
        let nd = &self.graph.nodes[i];
        let shape = |t: &TensorId| self.graph.tensor(*t).shape.as_ref();
        nd.op.schedule_facts().fusion.bias_add()
            && !self.rewired(i)
            && self.data_inputs[i].len() == 1
            && nd.outputs.len() == 1
            && shape(&self.data_inputs[i][0]).is_some()
            && shape(&self.data_inputs[i][0]) == shape(&nd.outputs[0])
    }

    /// `t` is a broadcast: a view (through views) of a tensor with fewer
    /// elements, as `expand` makes one.
    pub fn broadcast(&self, t: TensorId) -> bool {
        let elems = |t: TensorId| self.graph.tensor(t).elems();
        let mut t = t;
        for _ in 0..64 {
            let Some(p) = self.graph.tensor(t).producer.map(|p| p.0) else { return false };
            let storage = self.graph.nodes[p].op.schedule_facts().storage;
            let [x] = self.data_inputs[p].as_slice() else { return false };
            if !(storage.view_like() || (storage == Storage::ViewInInference && !self.training)) {
                return false;
            }
            if matches!((elems(t), elems(*x)), (Some(a), Some(b)) if a > b) {
                return true;
            }
            t = *x;
        }
        false
    }

    /// How many attention computations run each way.
    pub fn attention_calls(&self) -> crate::memory::AttentionCalls {
        let mut n = crate::memory::AttentionCalls::default();
        for (_, runs) in self.attention_at.iter().flatten() {
            match runs {
                Runs::Fused => n.fused += 1,
                Runs::Math => n.math += 1,
                Runs::AsWritten => n.as_written += 1,
            }
        }
        n
    }

    /// Node `i` reads `data_inputs[i]` rather than its own inputs (a folded
    /// decomposition's root, a fused attention call).
    pub fn rewired(&self, i: usize) -> bool {
        self.fold_root[i].is_some()
            || matches!(self.attention_at[i], Some((c, Runs::Fused)) if !self.attention[c].single_node())
    }

    /// Transient bytes an attention call adds at node `i`: (training forward,
    /// inference forward, backward). The fused CPU kernel's per-thread blocks
    /// (and in inference the log-sum-exp it returns and drops); the math
    /// path's `_safe_softmax` test bytes at the softmax.
    pub fn attention_workspace(&self, i: usize) -> Option<(u64, u64, u64)> {
        let att = &self.profile.attention;
        if let Some((c, runs)) = self.attention_at[i].filter(|&(c, _)| self.attention[c].single_node()) {
            // A single node: the fused kernel's scratch is the op's own
            // business; the math path holds the scores and probabilities in
            // inference, and its backward the gradients of both.
            let m = self.attention[c].math_matrices().iter().map(|e| e.elems.saturating_mul(4)).fold(0u64, u64::saturating_add);
            return (runs == Runs::Math).then_some((0, m, m));
        }
        if let Some((c, Runs::Fused)) = self.attention_at[i] {
            let call = &self.attention[c];
            let (fwd, bwd) = if att.cpu_flash_scratch { call.cpu_flash_scratch(self.threads) } else { (0, 0) };
            let lse = call.rows().saturating_mul(4);
            return Some((fwd, fwd.saturating_add(lse), bwd));
        }
        let call = self.attention.iter().find(|c| c.softmax == i)?;
        let runs = self.attention_at[call.output].map(|(_, r)| r)?;
        (runs == Runs::Math && att.safe_softmax).then(|| {
            let test = call.scores().saturating_add(call.rows());
            (test, test, 0)
        })
    }

    /// Style transfer runs only the nodes the loss tensors depend on.
    fn skip_unused(&mut self) {
        let Some(l) = self.style else { return };
        let mut wanted = vec![false; self.graph.tensors.len()];
        for (_, t) in l.style.iter().chain(l.content.iter()) {
            wanted[t.0] = true;
        }
        for (i, nd) in self.graph.nodes.iter().enumerate().rev() {
            if nd.outputs.iter().any(|o| wanted[o.0]) {
                for t in &nd.inputs {
                    wanted[t.0] = true;
                }
            } else {
                self.skipped[i] = true;
            }
        }
    }

    /// Tensors the scenario needs whose size is unknown: graph inputs and
    /// what the nodes that run produce (style transfer skips the rest).
    fn count_unknown(&mut self) {
        let (graph, data) = (self.graph, &self.data);
        let unknown = |t: TensorId| data[t.0] && graph.tensor(t).elems().is_none();
        let inputs = graph.inputs.iter().filter(|&&t| unknown(t)).count();
        let outputs: usize = graph
            .nodes
            .iter()
            .enumerate()
            .filter(|(i, _)| !self.skipped[*i])
            .map(|(_, nd)| nd.outputs.iter().filter(|&&o| unknown(o)).count())
            .sum();
        self.unknown_tensors = inputs + outputs;
    }

    /// Which tensors need a gradient (training): those computed from
    /// trainable weights, or (style transfer) from the optimized inputs.
    fn mark_gradients(&mut self) {
        if self.style.is_some() {
            for &t in &self.graph.inputs {
                if self.data[t.0] {
                    self.requires_grad[t.0] = true;
                }
            }
        }
        if !self.training {
            return;
        }
        for (i, nd) in self.graph.nodes.iter().enumerate() {
            if self.folded[i] || self.facts[i].no_grad || self.skipped[i] {
                continue;
            }
            let from_weights = self.style.is_none() && !self.node_weights[i].is_empty();
            let from_inputs = self.data_inputs[i].iter().any(|t| self.requires_grad[t.0]);
            if from_weights || from_inputs {
                self.needs_backward[i] = true;
                for &o in &nd.outputs {
                    if self.data[o.0] {
                        self.requires_grad[o.0] = true;
                    }
                }
            }
        }
    }
}

/// Per tensor, the nodes reading it (in order, once each), `skip` nodes left
/// out, into `r` (its lists are cleared and reused when it is filled again).
fn readers_of(r: &mut Vec<Vec<usize>>, n_tensors: usize, inputs: &[Vec<TensorId>], skip: &[bool]) {
    r.iter_mut().for_each(Vec::clear);
    r.resize(n_tensors, Vec::new());
    for (i, ins) in inputs.iter().enumerate() {
        if skip[i] {
            continue;
        }
        for t in ins {
            if r[t.0].last() != Some(&i) {
                r[t.0].push(i);
            }
        }
    }
}

/// Facts per node, on the original shapes. An op whose shapes are not all
/// known is assumed to keep every input.
fn node_facts(graph: &Graph, fold_root: &[Option<TensorId>]) -> Vec<MemoryFacts> {
    let (mut ins, mut outs) = (Vec::new(), Vec::new());
    graph
        .nodes
        .iter()
        .enumerate()
        .map(|(i, nd)| {
            if fold_root[i].is_some() {
                // The folded op (SiLU, GELU) keeps its input.
                return MemoryFacts { saves_inputs: vec![0], ..Default::default() };
            }
            let known = crate::memory::known_shapes(graph, &nd.inputs, &mut ins);
            if !(known && crate::memory::known_shapes(graph, &nd.outputs, &mut outs)) {
                return MemoryFacts { saves_inputs: (0..nd.inputs.len()).collect(), ..Default::default() };
            }
            nd.op.memory_facts(&ins, &outs)
        })
        .collect()
}

/// The trainable weights each node reads, directly or through weight-only
/// nodes (an ONNX Linear is MatMul(x, Transpose(W)): W's gradient is made by
/// the MatMul's backward step), and per weight whether it is read through
/// weight-only views alone (a transpose, a reshape: PyTorch's `W.t()`), so
/// that the gradient reaching W is a view of the product's gradient.
fn node_weights(graph: &Graph, data: &[bool]) -> (Vec<Vec<TensorId>>, Vec<Vec<bool>>) {
    let mut weight_sources: Vec<Vec<(TensorId, bool)>> = vec![Vec::new(); graph.tensors.len()];
    let mut node_weights: Vec<Vec<TensorId>> = Vec::with_capacity(graph.nodes.len());
    let mut via_views: Vec<Vec<bool>> = Vec::with_capacity(graph.nodes.len());
    for nd in &graph.nodes {
        let mut ws: Vec<(TensorId, bool)> =
            nd.params.iter().copied().filter(|&p| graph.gets_gradient(p)).map(|p| (p, false)).collect();
        let direct = ws.len();
        for t in &nd.inputs {
            if !data[t.0] {
                for &(w, v) in &weight_sources[t.0] {
                    if !ws.iter().any(|&(x, _)| x == w) {
                        ws.push((w, v));
                    }
                }
            }
        }
        if !nd.inputs.iter().any(|t| data[t.0]) {
            // A weight-only node: its outputs carry its weights, as views when
            // the op is one and every earlier step was.
            let view = nd.op.schedule_facts().storage.view_like();
            for &o in &nd.outputs {
                weight_sources[o.0] =
                    ws.iter().enumerate().map(|(k, &(w, v))| (w, view && (k < direct || v))).collect();
            }
        }
        node_weights.push(ws.iter().map(|&(w, _)| w).collect());
        via_views.push(ws.iter().map(|&(_, v)| v).collect());
    }
    (node_weights, via_views)
}
