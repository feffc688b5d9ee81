//! The liveness engine on small hand-built graphs whose peaks are worked out
//! by hand in the comments (f32, every activation 4 elements = 16 bytes unless
//! said otherwise; the input is 16 bytes and resident).

use nnmem::graph::{DType, Graph, ModelFormat, Node, NodeId, Shape, Tensor, TensorId, TensorKind};
use nnmem::memory::{analyse, Category, MemorySettings, Optimizer, Phase, Scenario};
use nnmem::ops::{Activation, DenseOp, DenseParams, EltwiseKind, ElementwiseOp, LayoutOp, Op};

struct G(Graph);

impl G {
    fn new() -> Self {
        let mut g = Graph::new("t", ModelFormat::Onnx);
        let x = g.add_tensor(tensor("x", vec![1, 4], TensorKind::Input, None));
        g.inputs.push(x);
        G(g)
    }

    fn x(&self) -> TensorId {
        self.0.inputs[0]
    }

    fn node(&mut self, name: &str, op: Op, inputs: &[TensorId], params: &[TensorId], out: Vec<u64>, in_place: bool) -> TensorId {
        let id = NodeId(self.0.nodes.len());
        let t = self.0.add_tensor(tensor(name, out, TensorKind::Activation, Some(id)));
        self.0.nodes.push(Node {
            name: name.into(),
            source_type: op.name().into(),
            op,
            inputs: inputs.to_vec(),
            params: params.to_vec(),
            outputs: vec![t],
            in_place,
            attrs: Vec::new(),
            scope: Default::default(),
            call: None,
        });
        t
    }

    fn sig(&mut self, name: &str, input: TensorId) -> TensorId {
        let shape = self.0.tensor(input).shape.clone().unwrap().0;
        self.node(name, Op::Elementwise(ElementwiseOp::Activation(Activation::Sigmoid)), &[input], &[], shape, false)
    }

    fn relu(&mut self, name: &str, input: TensorId) -> TensorId {
        self.node(name, Op::Elementwise(ElementwiseOp::Activation(Activation::Relu { negative_slope: 0.0 })), &[input], &[], vec![1, 4], false)
    }

    fn dense(&mut self, name: &str, input: TensorId) -> TensorId {
        // 4×4 weight: 64 bytes.
        let mut w = tensor(&format!("{name}.w"), vec![4, 4], TensorKind::Param, None);
        w.trainable = true;
        let w = self.0.add_tensor(w);
        let op = Op::Dense(DenseOp::Linear(DenseParams { out_features: 4, axis: 1, bias: false, transpose: false }));
        self.node(name, op, &[input], &[w], vec![1, 4], false)
    }

    fn add(&mut self, name: &str, a: TensorId, b: TensorId) -> TensorId {
        self.node(name, Op::Elementwise(ElementwiseOp::Eltwise { kind: EltwiseKind::Sum, broadcast: false }), &[a, b], &[], vec![1, 4], false)
    }

    fn done(mut self, outputs: &[TensorId]) -> Graph {
        self.0.outputs = outputs.to_vec();
        self.0
    }
}

fn tensor(name: &str, dims: Vec<u64>, kind: TensorKind, producer: Option<NodeId>) -> Tensor {
    Tensor {
        name: name.into(),
        shape: Some(Shape::new(dims)),
        unknown: None,
        dtype: DType::F32,
        kind,
        trainable: false,
        producer,
    }
}

/// A learned tensor of these dims (a weight the node lists in `params`).
fn weight(g: &mut G, name: &str, dims: Vec<u64>) -> TensorId {
    let mut w = tensor(name, dims, TensorKind::Param, None);
    w.trainable = true;
    g.0.add_tensor(w)
}

fn inference(g: &Graph) -> nnmem::memory::ScenarioReport {
    let s = MemorySettings { scenarios: vec![Scenario::Inference], ..Default::default() };
    analyse(g, &s).scenarios.remove(0)
}

fn training(g: &Graph) -> nnmem::memory::ScenarioReport {
    let s = MemorySettings { scenarios: vec![Scenario::Training], ..Default::default() };
    analyse(g, &s).scenarios.remove(0)
}

#[test]
fn chain_holds_two_activations_at_a_time() {
    // x → a → b → c. At b: x + a + b = 48 (a dies after b); at c: x + b + c = 48.
    let mut g = G::new();
    let x = g.x();
    let a = g.sig("a", x);
    let b = g.sig("b", a);
    let c = g.sig("c", b);
    let g = g.done(&[c]);
    let r = inference(&g);
    assert_eq!(r.peak_bytes, 48);
    assert_eq!(r.peak_breakdown.get(Category::Inputs), 16);
    assert_eq!(r.peak_breakdown.get(Category::Activations), 32);
    assert_eq!(r.peak_node_name.as_deref(), Some("b"));
    // After a: x + a; after b: x + b; after c: x + c (output kept).
    let live: Vec<u64> = r.nodes.iter().map(|n| n.live_bytes_after).collect();
    assert_eq!(live, vec![32, 32, 32]);
    assert_eq!(r.naive.activations_bytes, 48);
}

#[test]
fn a_module_call_holds_its_argument_until_it_returns() {
    // x → a → [module m: b → c] → d. PyTorch's caller holds a, the argument of
    // m's call, until m returns (after c): at c, x + a + b + c = 64 instead of 48.
    // The module path is `Node::scope` (what the ONNX loader reads from names).
    let mut g = G::new();
    let x = g.x();
    let a = g.sig("a", x);
    let b = g.sig("b", a);
    let c = g.sig("c", b);
    let d = g.sig("d", c);
    let mut g = g.done(&[d]);
    let plain = inference(&g);
    assert_eq!(plain.peak_bytes, 48);
    for n in &mut g.nodes[1..3] {
        n.scope = ["m".to_string()].into();
    }
    let held = inference(&g);
    assert_eq!(held.peak_bytes, 64);
    assert_eq!(held.peak_node_name.as_deref(), Some("c"));
    // Names alone mean nothing to the memory pass.
    g.nodes[1].name = "/other/b".into();
    g.nodes[1].scope = Default::default();
    g.nodes[2].scope = Default::default();
    assert_eq!(inference(&g).peak_bytes, 48);
}

#[test]
fn residual_branch_keeps_the_skip_alive() {
    // r1 = σ(x); r2 = σ(r1); s = r1 + r2. At s: x + r1 + r2 + s = 64.
    let mut g = G::new();
    let x = g.x();
    let r1 = g.sig("r1", x);
    let r2 = g.sig("r2", r1);
    let s = g.add("s", r1, r2);
    let g = g.done(&[s]);
    let r = inference(&g);
    assert_eq!(r.peak_bytes, 64);
    assert_eq!(r.peak_node_name.as_deref(), Some("s"));
    assert_eq!(r.nodes[2].live_bytes_after, 32);
}

#[test]
fn concat_fan_in_holds_every_branch_and_the_result() {
    // Three 16-byte branches and their 48-byte concatenation: 16 + 48 + 48 = 112.
    let mut g = G::new();
    let x = g.x();
    let a = g.sig("a", x);
    let b = g.sig("b", x);
    let c = g.sig("c", x);
    let y = g.node("cat", Op::Layout(LayoutOp::Concat { axis: 1 }), &[a, b, c], &[], vec![1, 12], false);
    let g = g.done(&[y]);
    let r = inference(&g);
    assert_eq!(r.peak_bytes, 112);
    assert_eq!(r.nodes[3].live_bytes_after, 64);
}

#[test]
fn in_place_chain_reuses_one_storage() {
    // a = σ(x), then two ReLUs in place on a: never more than x + a = 32.
    // (Out of place the first ReLU would hold x + a + r1 = 48.)
    let mut g = G::new();
    let x = g.x();
    let a = g.sig("a", x);
    let r1 = g.relu("r1", a);
    let r2 = g.relu("r2", r1);
    let g = g.done(&[r2]);
    let r = inference(&g);
    assert_eq!(r.peak_bytes, 32);
    assert_eq!(r.naive.activations_bytes, 48);
}

#[test]
fn caffe_in_place_top_counts_once() {
    // A Caffe layer with top == bottom writes over its input whatever its type.
    let mut g = G::new();
    let x = g.x();
    let a = g.sig("a", x);
    let b = g.node("b", Op::Elementwise(ElementwiseOp::Activation(Activation::Sigmoid)), &[a], &[], vec![1, 4], true);
    let g = g.done(&[b]);
    assert_eq!(inference(&g).peak_bytes, 32);
}

#[test]
fn graph_input_is_never_overwritten_in_place() {
    // ReLU straight on the input must allocate: x + r = 32.
    let mut g = G::new();
    let x = g.x();
    let r = g.relu("r", x);
    let g = g.done(&[r]);
    assert_eq!(inference(&g).peak_bytes, 32);
}

#[test]
fn training_chain_peaks_when_the_first_weight_gradient_appears() {
    // x → D1 → a → σ → b → D2 → c. Weights 128, input 16.
    // Forward ends with x, b (saved by σ and D2), c: 128 + 48 = 176.
    // Loss: +16 (dc) = 192. D2 backward: +db 16 +dW2 64 = 272, then dc freed: 256.
    // σ backward: +da 16 = 272, then db and b freed: 240.
    // D1 backward (x needs no gradient): +dW1 64 = 304, the peak.
    let mut g = G::new();
    let x = g.x();
    let a = g.dense("d1", x);
    let b = g.sig("s", a);
    let c = g.dense("d2", b);
    let g = g.done(&[c]);
    let r = training(&g);
    assert_eq!(r.peak_bytes, 304);
    assert_eq!(r.peak_phase, Phase::Backward);
    assert_eq!(r.peak_node_name.as_deref(), Some("d1"));
    assert_eq!(r.peak_breakdown.get(Category::Weights), 128);
    assert_eq!(r.peak_breakdown.get(Category::WeightGrads), 128);
    assert_eq!(r.peak_breakdown.get(Category::ActivationGrads), 16);
    assert_eq!(r.peak_breakdown.get(Category::Inputs), 16);
    // σ saves its output; the dense layers save their inputs.
    assert_eq!(r.nodes[1].saved_bytes, 16);
    assert_eq!(r.nodes[2].saved_bytes, 16);
    assert_eq!(r.nodes[1].live_bytes_after_backward, Some(240));
}

#[test]
fn tensor_read_twice_accumulates_its_gradient() {
    // x → D → a; b = σ(a); c = σ(a); d = b + c. Weights 64, input 16.
    // Forward end: 64 + 16 + b + c + d = 128. Loss +dd: 144.
    // add backward: +db +dc = 176. σc backward: +da = 176 again (dc, c freed after).
    // σb backward adds into da (transient 16): 160. D backward: 112 + dW 64 = 176,
    // then da is freed: 160.
    let mut g = G::new();
    let x = g.x();
    let a = g.dense("d", x);
    let b = g.sig("b", a);
    let c = g.sig("c", a);
    let d = g.add("sum", b, c);
    let g = g.done(&[d]);
    let r = training(&g);
    assert_eq!(r.peak_bytes, 176);
    assert_eq!(r.nodes[0].live_bytes_after_backward, Some(160));
}

#[test]
fn optimizer_state_scales_with_trainable_weights() {
    // One 4×4 dense: Adam keeps two 64-byte moments for the whole step.
    let mut g = G::new();
    let x = g.x();
    let a = g.dense("d", x);
    let g = g.done(&[a]);
    let s = MemorySettings { scenarios: vec![Scenario::Training], optimizer: Optimizer::Adam, ..Default::default() };
    let r = analyse(&g, &s).scenarios.remove(0);
    assert_eq!(r.peak_breakdown.get(Category::OptimizerState), 128);
    // weights 64 + x 16 + a 16 + da 16 (loss) + dW 64 + state 128 = 304.
    assert_eq!(r.peak_bytes, 304);
}

#[test]
fn half_precision_halves_everything_mixed_keeps_master_weights() {
    let mut g = G::new();
    let x = g.x();
    let a = g.dense("d", x);
    let g = g.done(&[a]);
    let half = MemorySettings { scenarios: vec![Scenario::Inference], dtype: DType::F16, ..Default::default() };
    assert_eq!(analyse(&g, &half).scenarios[0].peak_bytes, (64 + 16 + 16) / 2);
    let mixed = MemorySettings { scenarios: vec![Scenario::Inference], mixed_precision: true, ..Default::default() };
    // f32 master 64 + f16 copy 32, input and output in f16: 8 + 8.
    assert_eq!(analyse(&g, &mixed).scenarios[0].peak_bytes, 64 + 32 + 8 + 8);
}

#[test]
fn unknown_shapes_are_skipped_with_a_warning() {
    let mut g = G::new();
    let x = g.x();
    let a = g.sig("a", x);
    let g0 = g.0.tensors.len();
    let mut graph = g.done(&[a]);
    graph.tensors[g0 - 1].shape = None;
    let r = analyse(&graph, &MemorySettings::default());
    assert_eq!(r.scenarios[0].peak_bytes, 16);
    assert_eq!(r.warnings.len(), 1);
}

#[test]
fn linear_bias_add_writes_into_the_product() {
    // nn.Linear on a [1,1,4] input exports as MatMul(x, W) then Add(·, b) with
    // b a weight vector along the last axis; PyTorch runs one addmm, one
    // 16-byte result: x + y = 32 (counting both would be 48).
    let mut g = G::new();
    let x = g.x();
    let w = weight(&mut g, "w", vec![4, 4]);
    let b = weight(&mut g, "b", vec![4]);
    let mm = g.node("mm", Op::Dense(DenseOp::MatMul), &[x], &[w], vec![1, 4], false);
    let add = Op::Elementwise(ElementwiseOp::Eltwise { kind: EltwiseKind::Sum, broadcast: true });
    let y = g.node("bias", add.clone(), &[mm], &[b], vec![1, 4], false);
    let g = g.done(&[y]);
    let r = inference(&g);
    assert_eq!(r.peak_bytes - r.peak_breakdown.get(Category::Weights), 32);

    // The same Add after a non-product (σ) allocates: x + s + y = 48.
    let mut g = G::new();
    let x = g.x();
    let b = weight(&mut g, "b", vec![4]);
    let s = g.sig("s", x);
    let y = g.node("bias", add.clone(), &[s], &[b], vec![1, 4], false);
    let g = g.done(&[y]);
    let r = inference(&g);
    assert_eq!(r.peak_bytes - r.peak_breakdown.get(Category::Weights), 48);

    // A weight that is not a vector along the last axis (a [4,1] scale) is
    // not a bias: x + mm + y = 48.
    let mut g = G::new();
    let x = g.x();
    let w = weight(&mut g, "w", vec![4, 4]);
    let c = weight(&mut g, "c", vec![4, 1]);
    let mm = g.node("mm", Op::Dense(DenseOp::MatMul), &[x], &[w], vec![4, 4], false);
    let y = g.node("scale", add, &[mm], &[c], vec![4, 4], false);
    let g = g.done(&[y]);
    let r = inference(&g);
    assert_eq!(r.peak_bytes - r.peak_breakdown.get(Category::Weights), 16 + 64 + 64);
}

#[test]
fn a_folded_decomposition_allocates_its_result() {
    // GELU as exported: d = x/√2, e = erf(d), a = e + 1, m = x·a, y = m·½.
    // PyTorch runs one out-of-place gelu: x + y = 32 at most, and the closing
    // product m is the op itself (a new tensor), with y = m·½ its epilogue.
    // x comes from σ so it is an activation with one reader after folding.
    let mut g = G::new();
    let x0 = g.x();
    let x = g.sig("x", x0);
    let k = g.0.add_tensor(tensor("k", vec![1], TensorKind::Constant, None));
    let div = Op::Elementwise(ElementwiseOp::Eltwise { kind: EltwiseKind::Div, broadcast: true });
    let d = g.node("d", div, &[x, k], &[], vec![1, 4], false);
    let e = g.node("e", Op::Elementwise(ElementwiseOp::Activation(Activation::Erf)), &[d], &[], vec![1, 4], false);
    let a = g.node("a", Op::Elementwise(ElementwiseOp::Eltwise { kind: EltwiseKind::Sum, broadcast: true }), &[e, k], &[], vec![1, 4], false);
    let mul = Op::Elementwise(ElementwiseOp::Eltwise { kind: EltwiseKind::Prod, broadcast: true });
    let m = g.node("m", mul.clone(), &[x, a], &[], vec![1, 4], false);
    let y = g.node("y", mul, &[m, k], &[], vec![1, 4], false);
    let g = g.done(&[y]);
    let r = inference(&g);
    // At m: x0 (input) + x + m = 48 (were m an update of x, 32).
    assert_eq!(r.peak_bytes, 48);
    assert_eq!(r.peak_node_name.as_deref(), Some("m"));
}

/// softmax((x·√c)·(xᵀ·√c))·x, the way both exporters spell
/// `scaled_dot_product_attention`; x is [1, 1, 64, 4] (1 KiB).
fn sdpa_graph() -> Graph {
    let mut g = Graph::new("t", ModelFormat::Onnx);
    let x = g.add_tensor(tensor("x", vec![1, 1, 64, 4], TensorKind::Input, None));
    g.inputs.push(x);
    let mut g = G(g);
    let mul = || Op::Elementwise(ElementwiseOp::Eltwise { kind: EltwiseKind::Prod, broadcast: true });
    let c = g.0.add_tensor(tensor("c", vec![1], TensorKind::Constant, None));
    let kt = g.node("kt", Op::Layout(LayoutOp::Permute { order: vec![0, 1, 3, 2] }), &[x], &[], vec![1, 1, 4, 64], false);
    let q = g.node("q_scale", mul(), &[x, c], &[], vec![1, 1, 64, 4], false);
    let k = g.node("k_scale", mul(), &[kt, c], &[], vec![1, 1, 4, 64], false);
    let s = g.node("scores", Op::Dense(DenseOp::MatMul), &[q, k], &[], vec![1, 1, 64, 64], false);
    let p = g.node("softmax", Op::Elementwise(ElementwiseOp::Softmax { axis: -1 }), &[s], &[], vec![1, 1, 64, 64], false);
    let o = g.node("out", Op::Dense(DenseOp::MatMul), &[p, x], &[], vec![1, 1, 64, 4], false);
    g.done(&[o])
}

#[test]
fn fused_attention_keeps_no_score_matrix() {
    // Fused (the pytorch profile's default): x + out (1 KiB each), the
    // log-sum-exp it drops in inference (64 rows × 4 B) and one thread's
    // blocks of the CPU flash kernel: 32×64 + 2·32 + 32×4 floats = 8,960 B.
    let g = sdpa_graph();
    let r = inference(&g);
    assert_eq!(r.peak_bytes, 1024 + 1024 + 256 + 8960);
    assert_eq!(r.peak_node_name.as_deref(), Some("out"));
    // The math path: at the softmax, x + scores + probabilities (16 KiB each)
    // + `_safe_softmax`'s one-byte test per score and one flag per row.
    let mut s = MemorySettings { scenarios: vec![Scenario::Inference], ..Default::default() };
    s.profile.attention.kernel = nnmem::memory::AttentionKernel::Math;
    let r = analyse(&g, &s).scenarios.remove(0);
    assert_eq!(r.peak_bytes, 1024 + 16384 + 16384 + 4096 + 64);
    assert_eq!(r.peak_node_name.as_deref(), Some("softmax"));
}

#[test]
fn a_bias_add_hands_its_gradient_through() {
    // x → MatMul(W) → + b (in place, one addmm). Backward of the add: autograd
    // returns the output gradient itself for the product's result (no new
    // buffer) and sums it into b's gradient. Weights 64 + 16, input 16, y 16,
    // dy 16, db 16: 144 during that step (a copy of dy would make it 160).
    let mut g = G::new();
    let x = g.x();
    let w = weight(&mut g, "w", vec![4, 4]);
    let b = weight(&mut g, "b", vec![4]);
    let mm = g.node("mm", Op::Dense(DenseOp::MatMul), &[x], &[w], vec![1, 4], false);
    let add = Op::Elementwise(ElementwiseOp::Eltwise { kind: EltwiseKind::Sum, broadcast: true });
    let y = g.node("bias", add, &[mm], &[b], vec![1, 4], false);
    let r = training(&g.done(&[y]));
    let step = r.timeline.iter().find(|s| s.node == Some(1) && s.phase == Phase::Backward).unwrap();
    assert_eq!(step.during.total(), 144);
}

#[test]
fn a_product_keeps_an_operand_only_for_another_operands_gradient() {
    // d = dense(x) needs a gradient (its weight is trainable); k is a constant
    // (a dropout or stochastic-depth mask, a scale). m = d·k: dm/dd = k, so
    // autograd keeps k (4 bytes) and not d (16); p = d·d2 keeps both.
    let mut g = G::new();
    let x = g.x();
    let d = g.dense("d", x);
    let k = g.0.add_tensor(tensor("k", vec![1], TensorKind::Constant, None));
    let mul = Op::Elementwise(ElementwiseOp::Eltwise { kind: EltwiseKind::Prod, broadcast: true });
    let m = g.node("m", mul.clone(), &[d, k], &[], vec![1, 4], false);
    let d2 = g.dense("d2", x);
    let p = g.node("p", mul, &[m, d2], &[], vec![1, 4], false);
    let g = g.done(&[p]);
    let r = training(&g);
    assert_eq!(r.nodes[1].saved_bytes, 4);
    assert_eq!(r.nodes[3].saved_bytes, 32);
}

#[test]
fn an_added_bias_hands_its_gradient_on() {
    // a = dense(x) [1,4]; e = a + c (c a constant [256,4]: 4,096 bytes, a new
    // tensor); y = e + b (b a weight vector), the output. Backward's first
    // step, y's Add, would make e's gradient (4,096 bytes) beside y's; PyTorch's
    // AddBackward returns y's gradient itself for e. (e's own Add broadcasts:
    // a's gradient is a reduction, a new 16 bytes either way.)
    let mut g = G::new();
    let x = g.x();
    let a = g.dense("a", x);
    let c = g.0.add_tensor(tensor("c", vec![256, 4], TensorKind::Constant, None));
    let add = Op::Elementwise(ElementwiseOp::Eltwise { kind: EltwiseKind::Sum, broadcast: true });
    let e = g.node("e", add.clone(), &[a, c], &[], vec![256, 4], false);
    let b = weight(&mut g, "b", vec![4]);
    let y = g.node("y", add, &[e], &[b], vec![256, 4], false);
    let g = g.done(&[y]);
    let run = |pass_through: bool| {
        let profile = nnmem::memory::Profile { sum_grads_pass_through: pass_through, ..nnmem::memory::Profile::pytorch() };
        let s = MemorySettings { scenarios: vec![Scenario::Training], profile, ..Default::default() };
        analyse(&g, &s).scenarios.remove(0)
    };
    let (with, without) = (run(true), run(false));
    // Without: at y's step weights 80 + b's gradient 16 + y 4,096 + y's and
    // e's gradients 8,192 + x 16 = 12,400. With: y's step holds one 4,096-byte
    // gradient (8,304); e's step, where a's 16-byte gradient is added, is the peak.
    assert_eq!((without.peak_bytes, with.peak_bytes), (12_400, 8_320));
    assert_eq!(with.peak_node_name.as_deref(), Some("e"));
    assert_eq!(without.peak_node_name.as_deref(), Some("y"));
    // Forward: e is a new tensor (an add that broadcasts to a larger result is
    // never an update of its operand), y updates e: x + a + e at most.
    assert_eq!(with.nodes[2].output_bytes, 4096);
}

#[test]
fn reshaping_a_broadcast_copies_it() {
    // x [1,1,4] (16 B) expanded to [1,3,4] (a view) and reshaped to [3,4]:
    // PyTorch's reshape cannot view a broadcast axis merged with another, so
    // it copies (48 B) — grouped-query attention's K/V expansion. At σ:
    // x + copy + σ = 112 (64 were the reshape a view).
    let mut g = G::new();
    let x = g.0.add_tensor(tensor("x3", vec![1, 1, 4], TensorKind::Input, None));
    g.0.inputs = vec![x];
    let shape = g.0.add_tensor(tensor("shape", vec![3], TensorKind::Constant, None));
    let e = g.node("expand", Op::Layout(LayoutOp::Expand), &[x, shape], &[], vec![1, 3, 4], false);
    let reshape = Op::Layout(LayoutOp::Reshape(nnmem::ops::ReshapeParams { axis: 0, num_axes: -1, dims: vec![3, 4] }));
    let r = g.node("reshape", reshape, &[e, shape], &[], vec![3, 4], false);
    let s = g.sig("s", r);
    let rep = inference(&g.done(&[s]));
    assert_eq!(rep.peak_bytes, 112);
    assert_eq!(rep.nodes[1].live_bytes_after, 16 + 48);
}
