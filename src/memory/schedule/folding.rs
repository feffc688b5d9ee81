//! Folding: an ONNX export splits some framework ops into pointwise pieces
//! (SiLU = x·σ(x), GELU = x·½·(1+erf(x/√2)), tanh-GELU = ½·x·(1+tanh(√(2/π)·(x
//! + 0.044715·x³)))); profiles that fuse them count the one op the framework
//! ran. Which ops may be pieces is an op fact (`ScheduleFacts::fusion`).

use crate::graph::{Graph, TensorId};

/// The most pieces one decomposition may have (tanh-GELU has nine).
const MAX_PIECES: usize = 12;

/// Folds ONNX decompositions of one framework op: a binary pointwise product
/// whose operands are computed, through pointwise nodes whose results nothing
/// else reads, from one tensor x alone (x may be read by several of them, as
/// tanh-GELU reads it four times). Returns, per node, the node it was folded
/// into, and per fused node its root x.
pub(super) fn fold_decompositions(
    graph: &Graph,
    data_inputs: &[Vec<TensorId>],
    readers: &[Vec<usize>],
) -> (Vec<Option<usize>>, Vec<Option<TensorId>>) {
    let n = graph.nodes.len();
    let mut folded = vec![None; n];
    let mut root = vec![None; n];
    // Last node first, so that the widest decomposition is found before the
    // products inside it (tanh-GELU's x·x and x·x² are pieces, not roots).
    for (m, node) in graph.nodes.iter().enumerate().rev() {
        let binary = node.op.schedule_facts().fusion.product();
        if !binary || data_inputs[m].len() != 2 || folded[m].is_some() {
            continue;
        }
        let Some((x, pieces)) = single_root(graph, data_inputs, readers, &folded, &root, m) else { continue };
        if pieces.is_empty() {
            continue;
        }
        for p in pieces {
            folded[p] = Some(m);
        }
        root[m] = Some(x);
    }
    (folded, root)
}

/// Walks back from `m`'s operands through pointwise nodes whose result one node
/// reads (with one data input or several; not yet folded or fused).
/// The tensors where the walk stops are the decomposition's inputs: it is one
/// op of x when they are all x. Returns x and the nodes walked.
fn single_root(
    graph: &Graph,
    data_inputs: &[Vec<TensorId>],
    readers: &[Vec<usize>],
    folded: &[Option<usize>],
    root: &[Option<TensorId>],
    m: usize,
) -> Option<(TensorId, Vec<usize>)> {
    let mut pieces: Vec<usize> = Vec::new();
    let mut leaves: Vec<TensorId> = Vec::new();
    let mut stack: Vec<TensorId> = data_inputs[m].clone();
    while let Some(t) = stack.pop() {
        let inner = graph.tensor(t).producer.map(|p| p.0).filter(|&p| {
            folded[p].is_none()
                && root[p].is_none()
                && graph.nodes[p].op.schedule_facts().fusion.pointwise()
                && !data_inputs[p].is_empty()
                // Read by one node only: x itself, read by several, is where it stops.
                && readers[t.0].len() == 1
        });
        match inner {
            Some(p) if !pieces.contains(&p) => {
                pieces.push(p);
                if pieces.len() > MAX_PIECES {
                    return None;
                }
                stack.extend(data_inputs[p].iter().copied());
            }
            Some(_) => {}
            None => {
                if !leaves.contains(&t) {
                    leaves.push(t);
                }
            }
        }
    }
    match leaves.as_slice() {
        [x] => {
            // Every piece's result is read only inside the decomposition.
            let inside = |r: usize| r == m || pieces.contains(&r);
            let closed = pieces.iter().all(|&p| {
                graph.nodes[p].outputs.iter().all(|o| readers[o.0].iter().all(|&r| inside(r)) && !graph.outputs.contains(o))
            });
            closed.then(|| (*x, pieces))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::{DType, ModelFormat, Node, NodeId, Shape, Tensor, TensorKind};
    use crate::ops::{Activation, ElementwiseOp, EltwiseKind, Op};

    struct G(Graph);

    impl G {
        fn new() -> Self {
            let mut g = G(Graph::new("t", ModelFormat::Onnx));
            let x = g.tensor("x", None);
            g.0.tensors[x.0].kind = TensorKind::Input;
            g.0.inputs.push(x);
            g
        }
        fn tensor(&mut self, name: &str, producer: Option<NodeId>) -> TensorId {
            self.0.add_tensor(Tensor {
                name: name.into(),
                shape: Some(Shape::new(vec![2, 8])),
                unknown: None,
                dtype: DType::F32,
                kind: TensorKind::Activation,
                trainable: false,
                producer,
            })
        }
        fn node(&mut self, name: &str, op: Op, inputs: &[TensorId]) -> TensorId {
            let t = self.tensor(name, Some(NodeId(self.0.nodes.len())));
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
        fn eltwise(&mut self, name: &str, kind: EltwiseKind, inputs: &[TensorId]) -> TensorId {
            self.node(name, Op::Elementwise(ElementwiseOp::Eltwise { kind, broadcast: true }), inputs)
        }
        fn act(&mut self, name: &str, a: Activation, input: TensorId) -> TensorId {
            self.node(name, Op::Elementwise(ElementwiseOp::Activation(a)), &[input])
        }
        fn fold(&self) -> (Vec<Option<usize>>, Vec<Option<TensorId>>) {
            let data: Vec<Vec<TensorId>> = self.0.nodes.iter().map(|n| n.inputs.clone()).collect();
            let mut readers = vec![Vec::new(); self.0.tensors.len()];
            for (i, ins) in data.iter().enumerate() {
                for t in ins {
                    if readers[t.0].last() != Some(&i) {
                        readers[t.0].push(i);
                    }
                }
            }
            fold_decompositions(&self.0, &data, &readers)
        }
    }

    #[test]
    fn tanh_gelu_reading_x_four_times_is_one_op() {
        // y = x·(1 + tanh(c·(x + k·x·x·x))), as the TorchScript exporter writes
        // tanh-GELU (the constant factors are data-free pointwise nodes here).
        let mut g = G::new();
        let x = g.0.inputs[0];
        let xx = g.eltwise("Mul_2", EltwiseKind::Prod, &[x, x]);
        let xxx = g.eltwise("Mul_3", EltwiseKind::Prod, &[x, xx]);
        let kx3 = g.act("Mul_4", Activation::Power, xxx);
        let s = g.eltwise("Add_2", EltwiseKind::Sum, &[x, kx3]);
        let t = g.act("Tanh", Activation::Tanh, s);
        let one_t = g.act("Add_3", Activation::Power, t);
        let y = g.eltwise("Mul_6", EltwiseKind::Prod, &[x, one_t]);
        g.0.outputs.push(y);
        let (folded, root) = g.fold();
        assert_eq!(root[6], Some(x));
        assert!(folded[..6].iter().all(|f| *f == Some(6)), "{folded:?}");
    }

    #[test]
    fn two_roots_are_not_one_op() {
        // silu(g)·u (SwiGLU): the SiLU folds, the product with u does not.
        let mut g = G::new();
        let x = g.0.inputs[0];
        let u = g.act("up", Activation::Tanh, x);
        let gate = g.act("gate", Activation::Tanh, x);
        let s = g.act("Sigmoid", Activation::Sigmoid, gate);
        let silu = g.eltwise("Mul", EltwiseKind::Prod, &[gate, s]);
        let y = g.eltwise("Mul_1", EltwiseKind::Prod, &[silu, u]);
        g.0.outputs.push(y);
        let (folded, root) = g.fold();
        assert_eq!(root[3], Some(gate));
        assert_eq!(folded[2], Some(3));
        assert_eq!(root[4], None);
        assert_eq!(folded[0], None);
    }

    #[test]
    fn a_piece_read_elsewhere_stops_the_fold() {
        let mut g = G::new();
        let x = g.0.inputs[0];
        let s = g.act("Sigmoid", Activation::Sigmoid, x);
        let y = g.eltwise("Mul", EltwiseKind::Prod, &[x, s]);
        let z = g.act("other", Activation::Tanh, s);
        g.0.outputs.extend([y, z]);
        let (_, root) = g.fold();
        assert_eq!(root[1], None);
    }
}
