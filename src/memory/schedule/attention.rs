//! Attention: exporters spell attention as separate ops — scores = Q·Kᵀ, a
//! scale, an optional mask add, softmax, an optional dropout, ·V — whatever
//! kernel the framework ran. This phase finds those ops and decides what the
//! backend really allocates (docs/memory-model.md, "Attention").
//!
//! Two kinds of code write them:
//! - **A `scaled_dot_product_attention` call.** Both exporters spell it with Q
//!   and Kᵀ each multiplied by √scale before the product (the TorchScript
//!   symbolic and torchlib's decomposition alike), and the dynamo exporter
//!   also names the call in the nodes' metadata (`Node::call`), with its
//!   `dropout_p` — the only record of it, since dynamo writes no Dropout node
//!   for it. The backend's kernel applies: `fused` keeps no score matrix
//!   (the output and one log-sum-exp per row, saved with Q, K, V for
//!   backward); `math` runs the composition as the ops say.
//! - **Attention written out in the model's code** (T5, "eager" attention):
//!   no scale before the product (none, or one after it). It runs as written.
//!
//! The phase returns the calls; `Dataflow` folds a fused call's inner nodes
//! into its output product, which then reads Q, K, V (and a data mask).

use crate::graph::{DType, Graph, TensorId};
use crate::memory::profiles::{AttentionKernel, Profile};
use crate::ops::{AttentionExtents, AttentionPart, ExtraSaved, MemoryFacts, Produces, SavedType};

/// The traced function a dynamo export names for these nodes.
const SDPA: &str = "aten.scaled_dot_product_attention";

/// One attention computation found in the graph.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Call {
    /// The nodes between the operands and the output product: the scales of
    /// Q and Kᵀ, the scores product, scale and mask adds after it, softmax,
    /// dropout.
    pub inner: Vec<usize>,
    pub softmax: usize,
    /// The dropout node after the softmax, when the graph has one.
    pub dropout_node: Option<usize>,
    /// The ·V product.
    pub output: usize,
    /// The kernel's operands (before any scale) and a mask computed from data.
    pub q: TensorId,
    pub k: TensorId,
    pub v: TensorId,
    pub mask: Option<TensorId>,
    /// A `scaled_dot_product_attention` call (else attention the model's code writes out).
    pub sdpa: bool,
    /// It applies dropout in training: a Dropout node (of ratio above 0)
    /// after the softmax, or a traced call's `dropout_p` above 0.
    pub dropout: bool,
    /// Extents: batch × heads of the scores, query rows, key columns, head
    /// sizes of Q·K and of V.
    pub batch_heads: u64,
    pub q_len: u64,
    pub kv_len: u64,
    pub head_qk: u64,
    pub head_v: u64,
}

/// How the backend runs one call in this scenario.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Runs {
    /// The fused kernel: no score matrix.
    Fused,
    /// `scaled_dot_product_attention`'s math path (the ops as written, plus
    /// what the composition adds).
    Math,
    /// Attention the model writes out: the ops as written.
    AsWritten,
}

impl Call {
    /// What the backend runs: a fused kernel for a call the profile runs
    /// fused, unless it applies dropout and the fused kernel cannot.
    pub fn runs(&self, profile: &Profile, training: bool) -> Runs {
        if !self.sdpa {
            return Runs::AsWritten;
        }
        let dropout = training && self.dropout;
        match profile.attention.kernel {
            AttentionKernel::Fused if !dropout || profile.attention.fused_dropout => Runs::Fused,
            AttentionKernel::Fused | AttentionKernel::Math => Runs::Math,
        }
    }

    /// The fused kernel's facts for its output node, whose inputs are
    /// rewired to [q, k, v, mask]: backward keeps Q, K, V and the output,
    /// plus the log-sum-exp of every score row (f32).
    pub fn fused_facts(&self) -> MemoryFacts {
        MemoryFacts {
            saves_inputs: vec![0, 1, 2],
            saves_outputs: vec![0],
            extra_saved: vec![ExtraSaved { what: "log-sum-exp", elems: self.rows(), dtype: SavedType::Fixed(DType::F32) }],
            macs: self.batch_heads.saturating_mul(self.q_len).saturating_mul(self.kv_len).saturating_mul(self.head_qk + self.head_v),
            ..Default::default()
        }
    }

    /// One node that is the whole computation (ONNX Attention, ORT's
    /// GroupQueryAttention and MultiHeadAttention, `AttentionExtents` in its
    /// facts): nothing inner, the node is both softmax and output, and its
    /// own facts are the fused kernel's.
    pub fn single_node(&self) -> bool {
        self.inner.is_empty() && self.softmax == self.output
    }

    /// A single attention node as a call: its data operands in order (Q, K,
    /// V; a packed input stands for all three).
    pub fn of_node(i: usize, data_inputs: &[TensorId], e: &AttentionExtents) -> Option<Call> {
        let q = *data_inputs.first()?;
        Some(Call {
            inner: Vec::new(),
            softmax: i,
            dropout_node: None,
            output: i,
            q,
            k: data_inputs.get(1).copied().unwrap_or(q),
            v: data_inputs.get(2).copied().unwrap_or(q),
            mask: None,
            sdpa: true,
            dropout: false,
            batch_heads: e.batch_heads,
            q_len: e.q_len,
            kv_len: e.kv_len,
            head_qk: e.head_qk,
            head_v: e.head_v,
        })
    }

    /// The math path of a single attention node: the score matrix and the
    /// probabilities, f32 (training keeps both for backward, inference frees
    /// them as the node returns).
    pub fn math_matrices(&self) -> Vec<ExtraSaved> {
        let elems = self.scores();
        vec![
            ExtraSaved { what: "attention scores", elems, dtype: SavedType::Fixed(DType::F32) },
            ExtraSaved { what: "attention probabilities", elems, dtype: SavedType::Fixed(DType::F32) },
        ]
    }

    /// Score rows: batch × heads × query rows.
    pub fn rows(&self) -> u64 {
        self.batch_heads.saturating_mul(self.q_len)
    }

    /// Elements of one score matrix (B·H·Sq·Skv).
    pub fn scores(&self) -> u64 {
        self.rows().saturating_mul(self.kv_len)
    }

    /// PyTorch's CPU flash kernel (`_scaled_dot_product_flash_attention_for_cpu`)
    /// splits the query rows into blocks of 32, 64 (from 192 rows) or 256
    /// (from 768 rows) and the keys into blocks of 512, and gives every thread
    /// an f32 buffer of one score block, the running max and sum of its rows
    /// and one output block: (q·kv + 2q + q·hd_v) floats. Backward gives every
    /// thread two score blocks (the probabilities and their gradient).
    /// aten/src/ATen/native/cpu/FlashAttentionKernel.cpp.
    pub fn cpu_flash_scratch(&self, threads: u32) -> (u64, u64) {
        let q_split = match self.q_len {
            n if n >= 768 => 256,
            n if n >= 192 => 64,
            _ => 32,
        }
        .min(self.q_len.max(1));
        let kv_split = self.kv_len.clamp(1, 512);
        let t = u64::from(threads.max(1)).saturating_mul(4);
        let fwd = q_split.saturating_mul(kv_split).saturating_add(2 * q_split).saturating_add(q_split.saturating_mul(self.head_v));
        let bwd = q_split.saturating_mul(kv_split).saturating_mul(2);
        (fwd.saturating_mul(t), bwd.saturating_mul(t))
    }
}

/// The graph as the attention search reads it: the dataflow's data inputs
/// and readers (after folding).
struct Search<'a> {
    graph: &'a Graph,
    data_inputs: &'a [Vec<TensorId>],
    readers: &'a [Vec<usize>],
    folded: &'a [bool],
}

/// The chain before a softmax: the scores' product, the nodes between, the mask.
struct Scores {
    product: usize,
    inner: Vec<usize>,
    mask: Option<TensorId>,
}

/// The chain after a softmax: the ·V product and the nodes between (dropout,
/// views).
struct Output {
    product: usize,
    dropout_node: Option<usize>,
    inner: Vec<usize>,
}

impl Search<'_> {
    fn part(&self, i: usize) -> AttentionPart {
        self.graph.nodes[i].op.schedule_facts().attention
    }

    fn producer(&self, t: TensorId) -> Option<usize> {
        self.graph.tensor(t).producer.map(|p| p.0).filter(|&p| !self.folded[p])
    }

    fn is_product(&self, i: usize) -> bool {
        self.graph.nodes[i].op.schedule_facts().fusion.takes_bias()
    }

    fn dims(&self, t: TensorId) -> Option<Vec<u64>> {
        self.graph.tensor(t).shape.as_ref().map(|s| s.dims().to_vec())
    }

    /// Readers that compute data (a Shape node reading a tensor is not a use).
    fn users(&self, t: TensorId) -> Vec<usize> {
        self.readers[t.0].iter().copied().filter(|&r| self.graph.nodes[r].op.schedule_facts().produces == Produces::Data).collect()
    }

    fn only_user(&self, t: TensorId) -> Option<usize> {
        match self.users(t).as_slice() {
            [r] => Some(*r),
            _ => None,
        }
    }

    /// Back from the softmax `s`: mask adds and scales applied to the scores,
    /// up to the product that made them.
    fn scores_before(&self, s: usize) -> Option<Scores> {
        let (graph, data_inputs) = (self.graph, self.data_inputs);
        let mut inner = Vec::new();
        let mut mask = None;
        let mut x = data_inputs[s][0];
        loop {
            let p = self.producer(x).filter(|_| self.users(x).len() == 1)?;
            let facts = graph.nodes[p].op.schedule_facts();
            if self.is_product(p) {
                return (data_inputs[p].len() == 2).then_some(Scores { product: p, inner, mask });
            } else if (facts.attention == AttentionPart::Scale || facts.storage.view_like()) && data_inputs[p].len() == 1 {
                inner.push(p);
                x = data_inputs[p][0];
            } else if facts.fusion.bias_add() && (1..=2).contains(&data_inputs[p].len()) {
                inner.push(p);
                let ins = &data_inputs[p];
                let chain = ins
                    .iter()
                    .position(|&t| self.producer(t).is_some_and(|q| self.is_product(q) || self.part(q) == AttentionPart::Scale))
                    .unwrap_or(0);
                if ins.len() == 2 {
                    mask = Some(ins[1 - chain]);
                }
                x = ins[chain];
            } else {
                return None;
            }
        }
    }

    /// Forward from the softmax `s`: an optional dropout (a view when its
    /// ratio is 0), then the ·V product reading the probabilities first.
    fn output_after(&self, s: usize) -> Option<Output> {
        let (graph, data_inputs) = (self.graph, self.data_inputs);
        let mut probs = graph.nodes[s].outputs[0];
        let mut dropout_node = None;
        let mut inner = Vec::new();
        let mut o = self.only_user(probs)?;
        for _ in 0..4 {
            let facts = graph.nodes[o].op.schedule_facts();
            let pass = facts.attention == AttentionPart::Dropout || (facts.storage.view_like() && data_inputs[o].len() == 1);
            if !pass || self.is_product(o) {
                break;
            }
            if facts.attention == AttentionPart::Dropout {
                dropout_node = Some(o);
            }
            inner.push(o);
            probs = graph.nodes[o].outputs[0];
            let Some(after) = self.only_user(probs) else { break };
            o = after;
        }
        let reads_probs = self.is_product(o) && data_inputs[o].len() == 2 && data_inputs[o][0] == probs;
        reads_probs.then_some(Output { product: o, dropout_node, inner })
    }

    /// Q and Kᵀ of the scores' product, each scaled by a constant first in
    /// an SDPA call (the scale nodes join `inner`), and whether they were.
    fn operands(&self, sc: usize, inner: &mut Vec<usize>) -> (TensorId, TensorId, bool) {
        let data_inputs = self.data_inputs;
        let scaled = |t: TensorId| {
            self.producer(t)
                .filter(|&p| self.users(t).len() == 1 && self.part(p) == AttentionPart::Scale && data_inputs[p].len() == 1)
                .map(|p| (p, data_inputs[p][0]))
        };
        let (a, b) = (data_inputs[sc][0], data_inputs[sc][1]);
        match (scaled(a), scaled(b)) {
            (Some((pa, qa)), Some((pb, kb))) => {
                inner.push(pa);
                inner.push(pb);
                (qa, kb, true)
            }
            _ => (a, b, false),
        }
    }

    /// Views the SDPA call `o` belongs to applies itself to K and V (with
    /// enable_gqa, the expansion of grouped K/V to every head) belong to the
    /// kernel: a fused kernel reads the grouped tensors where they lie.
    fn call_views(&self, o: usize, operand: &mut TensorId, inner: &mut Vec<usize>) {
        let graph = self.graph;
        let Some(id) = graph.nodes[o].call.as_ref().filter(|c| c.function == SDPA).map(|c| c.id.as_str()) else { return };
        while let Some(p) = self.producer(*operand).filter(|&p| {
            self.users(*operand).len() == 1
                && self.data_inputs[p].len() == 1
                && graph.nodes[p].op.schedule_facts().storage.view_like()
                && graph.nodes[p].call.as_ref().is_some_and(|c| c.id == id)
        }) {
            inner.push(p);
            *operand = self.data_inputs[p][0];
        }
    }

    /// The attention computation around softmax `s`, if the pattern holds.
    fn call_at(&self, s: usize) -> Option<Call> {
        let graph = self.graph;
        if self.folded[s] || self.part(s) != AttentionPart::Softmax || self.data_inputs[s].len() != 1 {
            return None;
        }
        let Scores { product: sc, inner: before, mask } = self.scores_before(s)?;
        let Output { product: o, dropout_node, inner: after } = self.output_after(s)?;
        let mut inner = vec![s];
        inner.extend(before);
        inner.push(sc);
        inner.extend(after);
        let (q, mut k, scaled) = self.operands(sc, &mut inner);
        let traced = [sc, s, o].iter().any(|&i| graph.nodes[i].call.as_ref().is_some_and(|c| c.function == SDPA));
        let mut v = self.data_inputs[o][1];
        self.call_views(o, &mut k, &mut inner);
        self.call_views(o, &mut v, &mut inner);
        // dynamo writes no Dropout node for the call: its argument says.
        let traced_p = graph.nodes[o]
            .call
            .as_ref()
            .filter(|c| c.function == SDPA)
            .and_then(|c| c.arg(4, "dropout_p"))
            .and_then(|p| p.parse::<f64>().ok())
            .unwrap_or(0.0);
        let (Some(sd), Some(qd), Some(vd)) = (self.dims(graph.nodes[sc].outputs[0]), self.dims(q), self.dims(v)) else {
            return None;
        };
        if sd.len() < 2 || qd.is_empty() || vd.is_empty() {
            return None;
        }
        let n = sd.len();
        inner.sort_unstable();
        Some(Call {
            inner,
            softmax: s,
            dropout_node,
            output: o,
            q,
            k,
            v,
            mask,
            sdpa: traced || scaled,
            dropout: dropout_node.is_some() || traced_p > 0.0,
            batch_heads: sd[..n - 2].iter().product(),
            q_len: sd[n - 2],
            kv_len: sd[n - 1],
            head_qk: *qd.last().unwrap_or(&0),
            head_v: *vd.last().unwrap_or(&0),
        })
    }
}

/// Every attention computation in the graph, in node order. `data_inputs`
/// and `readers` are the dataflow's (after folding).
pub(crate) fn find(graph: &Graph, data_inputs: &[Vec<TensorId>], readers: &[Vec<usize>], folded: &[bool]) -> Vec<Call> {
    let search = Search { graph, data_inputs, readers, folded };
    (0..graph.nodes.len()).filter_map(|s| search.call_at(s)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::{FrameworkCall, ModelFormat, Node, NodeId, Shape, Tensor, TensorKind};
    use crate::ops::{DenseOp, ElementwiseOp, EltwiseKind, LayoutOp, Op};

    /// A graph of one attention head group: x [2,4,16,8] is Q, K and V.
    struct G(Graph);

    impl G {
        fn new() -> Self {
            let mut g = G(Graph::new("t", ModelFormat::Onnx));
            let x = g.tensor("x", vec![2, 4, 16, 8], TensorKind::Input, None);
            g.0.inputs.push(x);
            g
        }
        fn tensor(&mut self, name: &str, dims: Vec<u64>, kind: TensorKind, producer: Option<NodeId>) -> TensorId {
            self.0.add_tensor(Tensor {
                name: name.into(),
                shape: Some(Shape::new(dims)),
                unknown: None,
                dtype: DType::F32,
                kind,
                trainable: false,
                producer,
            })
        }
        fn node(&mut self, name: &str, op: Op, inputs: &[TensorId], out: Vec<u64>) -> TensorId {
            let t = self.tensor(name, out, TensorKind::Activation, Some(NodeId(self.0.nodes.len())));
            self.0.nodes.push(Node {
                name: name.into(),
                source_type: op.name().into(),
                op,
                inputs: inputs.to_vec(),
                params: Vec::new(),
                outputs: vec![t],
                in_place: false,
                attrs: Vec::new(),
                scope: Default::default(),
                call: None,
            });
            t
        }
        fn constant(&mut self) -> TensorId {
            self.tensor("c", vec![1], TensorKind::Constant, None)
        }
        fn find(&self) -> Vec<Call> {
            let data: Vec<Vec<TensorId>> = self
                .0
                .nodes
                .iter()
                .map(|n| n.inputs.iter().copied().filter(|t| self.0.tensor(*t).kind != TensorKind::Constant).collect())
                .collect();
            let mut readers = vec![Vec::new(); self.0.tensors.len()];
            for (i, ins) in data.iter().enumerate() {
                for t in ins {
                    readers[t.0].push(i);
                }
            }
            find(&self.0, &data, &readers, &vec![false; self.0.nodes.len()])
        }
    }

    fn mul() -> Op {
        Op::Elementwise(ElementwiseOp::Eltwise { kind: EltwiseKind::Prod, broadcast: true })
    }

    /// softmax(Q·Kᵀ)·V with `pre` scaling Q and Kᵀ by constants (the SDPA spelling).
    fn attention(pre: bool, dropout: bool) -> G {
        let mut g = G::new();
        let x = g.0.inputs[0];
        let kt = g.node("kt", Op::Layout(LayoutOp::Permute { order: vec![0, 1, 3, 2] }), &[x], vec![2, 4, 8, 16]);
        let (q, k) = if pre {
            let c = g.constant();
            let q = g.node("q_scale", mul(), &[x, c], vec![2, 4, 16, 8]);
            let c = g.constant();
            (q, g.node("k_scale", mul(), &[kt, c], vec![2, 4, 8, 16]))
        } else {
            (x, kt)
        };
        let s = g.node("scores", Op::Dense(DenseOp::MatMul), &[q, k], vec![2, 4, 16, 16]);
        let mut p = g.node("softmax", Op::Elementwise(ElementwiseOp::Softmax { axis: -1 }), &[s], vec![2, 4, 16, 16]);
        if dropout {
            p = g.node("dropout", Op::Elementwise(ElementwiseOp::Dropout { ratio: 0.1 }), &[p], vec![2, 4, 16, 16]);
        }
        let o = g.node("out", Op::Dense(DenseOp::MatMul), &[p, x], vec![2, 4, 16, 8]);
        g.0.outputs.push(o);
        g
    }

    #[test]
    fn sdpa_spelling_is_one_call() {
        let g = attention(true, false);
        let calls = g.find();
        assert_eq!(calls.len(), 1);
        let c = &calls[0];
        assert!(c.sdpa && !c.dropout);
        assert_eq!((c.q, c.k, c.v), (g.0.inputs[0], TensorId(1), g.0.inputs[0]));
        assert_eq!((c.batch_heads, c.q_len, c.kv_len, c.head_qk, c.head_v), (8, 16, 16, 8, 8));
        assert_eq!(c.output, g.0.nodes.len() - 1);
        // Both scales, the scores product and the softmax are inside it.
        assert_eq!(c.inner.len(), 4);
        let pytorch = Profile::pytorch();
        assert_eq!(c.runs(&pytorch, true), Runs::Fused);
        let f = c.fused_facts();
        assert_eq!((f.saves_inputs.clone(), f.saves_outputs.clone()), (vec![0, 1, 2], vec![0]));
        assert_eq!(f.extra_saved[0].elems, 8 * 16);
    }

    #[test]
    fn dropout_sends_a_cpu_call_to_the_math_path_not_a_cuda_one() {
        let c = attention(true, true).find().remove(0);
        assert!(c.dropout && c.dropout_node.is_some());
        assert_eq!(c.runs(&Profile::pytorch(), true), Runs::Math);
        // Dropout is off in inference.
        assert_eq!(c.runs(&Profile::pytorch(), false), Runs::Fused);
        assert_eq!(c.runs(&Profile::cudnn(), true), Runs::Fused);
        let mut math = Profile::pytorch();
        math.attention.kernel = AttentionKernel::Math;
        assert_eq!(c.runs(&math, false), Runs::Math);
    }

    #[test]
    fn written_out_attention_runs_as_written() {
        // No scale before the product (T5): the model's own code.
        let c = attention(false, false).find().remove(0);
        assert!(!c.sdpa);
        assert_eq!(c.runs(&Profile::pytorch(), false), Runs::AsWritten);
    }

    #[test]
    fn a_traced_call_gives_its_dropout() {
        let mut g = attention(true, false);
        let call = FrameworkCall {
            function: SDPA.into(),
            id: "scaled_dot_product_attention".into(),
            args: vec!["%q".into(), "%k".into(), "%v".into(), "None".into(), "0.1".into()],
            kwargs: Vec::new(),
            stack: Default::default(),
        };
        let out = g.0.nodes.len() - 1;
        g.0.nodes[out].call = Some(call);
        let c = g.find().remove(0);
        assert!(c.sdpa && c.dropout && c.dropout_node.is_none());
        assert_eq!(c.runs(&Profile::pytorch(), true), Runs::Math);
    }

    #[test]
    fn cpu_flash_blocks_follow_the_sequence_length() {
        // BERT at 2×512 (4 heads of 64): 64×512 + 2·64 + 64·64 floats per thread.
        let c = Call { batch_heads: 8, q_len: 512, kv_len: 512, head_qk: 64, head_v: 64, ..attention(true, false).find().remove(0) };
        assert_eq!(c.cpu_flash_scratch(2), (295_936, 524_288));
        let c = Call { q_len: 128, kv_len: 128, ..c };
        assert_eq!(c.cpu_flash_scratch(2).0, 49_664);
    }

    /// One ONNX Attention node on 4-D Q, K, V [1, 2, 64, 8] (2 heads, 64
    /// positions, head 8): a fused kernel by its facts, the math path's score
    /// and probability matrices (1·2·64·64 f32 = 32,768 B each) when asked.
    fn single_node() -> Graph {
        let mut g = G(Graph::new("t", ModelFormat::Onnx));
        let mut operands = Vec::new();
        for name in ["q", "k", "v"] {
            let t = g.tensor(name, vec![1, 2, 64, 8], TensorKind::Input, None);
            g.0.inputs.push(t);
            operands.push(t);
        }
        let attention = Op::Attention(crate::ops::AttentionOp::Onnx { q_heads: None, kv_heads: None });
        let y = g.node("attention", attention, &operands, vec![1, 2, 64, 8]);
        g.0.outputs.push(y);
        g.0
    }

    #[test]
    fn a_single_attention_node_runs_the_math_path_when_asked() {
        use crate::memory::{analyse, AttentionKernel, MemorySettings, Scenario};
        let g = single_node();
        let mut s = MemorySettings { scenarios: vec![Scenario::Inference], ..Default::default() };
        // Fused (the default): Q, K, V and Y, 4,096 B each; no score matrix.
        let r = analyse(&g, &s);
        assert_eq!(r.scenarios[0].peak_bytes, 4 * 4096);
        assert_eq!(r.scenarios[0].settings.attention_calls.fused, 1);
        // Math: the scores and probabilities exist while the node runs.
        s.profile.attention.kernel = AttentionKernel::Math;
        let r = analyse(&g, &s);
        assert_eq!(r.scenarios[0].peak_bytes, 4 * 4096 + 2 * 32768);
        assert_eq!(r.scenarios[0].settings.attention_calls.math, 1);
        assert_eq!(r.scenarios[0].peak_breakdown.get(crate::memory::Category::Workspace), 2 * 32768);
        // Training keeps them for backward instead of the log-sum-exp.
        let prec = crate::memory::training::Precision::new(DType::F32, false);
        let df = super::super::dataflow::Dataflow::new(&g, &s.profile, &prec, super::super::Mode::Training, 1);
        let saved: Vec<(&str, u64)> = df.facts[0].extra_saved.iter().map(|e| (e.what, e.elems)).collect();
        assert_eq!(saved, vec![("attention scores", 8192), ("attention probabilities", 8192)]);
        s.profile.attention.kernel = AttentionKernel::Fused;
        let df = super::super::dataflow::Dataflow::new(&g, &s.profile, &prec, super::super::Mode::Training, 1);
        let saved: Vec<(&str, u64)> = df.facts[0].extra_saved.iter().map(|e| (e.what, e.elems)).collect();
        assert_eq!(saved, vec![("log-sum-exp per query row", 128)]);
    }
}
