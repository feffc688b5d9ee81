//! nnmem's own ONNX shape engine: every node, in execution order, through
//! its op's shape rule (`Op::infer` in `ops/`), with values.
//!
//! Each tensor carries its shape, its element type and, when it is small
//! (at most `MAX_VALUE_ELEMS` elements) and known before the net runs, its
//! value: integer initializers and Constants, and whatever the ops' value
//! rules compute from them (`Shape → Gather → Unsqueeze → Concat → Reshape`,
//! `Range`, `ConstantOfShape`, `Where` on shape vectors …). A rule that needs
//! a value it does not have says so; the node then stays unsized, never
//! guessed. Outputs sized by the data (NonZero, Compress …) are run-time, and
//! so is everything computed from them.
//!
//! Combination with tract (`mod.rs`): the engine runs first. When it sizes
//! every node (or leaves only run-time outputs), tract is not run. Otherwise
//! tract analyses the graph, and the engine runs again taking tract's answer
//! only for the nodes its own rules could not size (an op outside the
//! vocabulary, a form a rule does not model, a free symbol in an input's
//! shape); the nodes after them are sized by the own rules again from that
//! answer. Where both would answer, the own rule's answer is used: rules
//! are checked against tract on every fixture and corpus model
//! (`tests/onnx_rules.rs`) and against the ONNX backend tests' own outputs.
//!
//! Free symbols: graph inputs with an unbound dimension are unsized here;
//! their shapes, and those computed from them, are tract's formulas.

use std::borrow::Cow;

use super::map::{OwnRule, TypeFacts};
use super::{ValueFact, ValueShape};
use crate::graph::{DType, Graph, Shape, TensorId};
use crate::ops::{value, Input, OutShape, Value, MAX_VALUE_ELEMS};

/// Values are kept until this many elements in all (a bound on the memory the
/// engine spends on values, whatever the graph).
const VALUE_BUDGET: u64 = 1 << 22;

/// A node as the engine sees it: its type's facts and its inputs and
/// outputs by position (`None`: an optional one the file leaves out).
pub(super) struct NodeSource {
    pub facts: TypeFacts,
    pub inputs: Vec<Option<TensorId>>,
    pub outputs: Vec<Option<TensorId>>,
}

/// What the engine knows of one tensor; shapes and values of initializers
/// and inputs are borrowed, computed ones owned.
#[derive(Clone, Debug, Default)]
struct Slot<'a> {
    shape: Option<Cow<'a, Shape>>,
    dtype: Option<DType>,
    value: Option<Cow<'a, Value>>,
    run_time: bool,
    /// What the fallback said when it is neither concrete nor run-time (a formula).
    other: Option<ValueFact>,
}

/// What the engine found.
pub(super) struct Outcome {
    /// Per tensor (by id): what is known of node outputs; `None` for tensors
    /// that are not node outputs.
    pub facts: Vec<Option<ValueFact>>,
    /// Nodes whose outputs neither the own rules nor the fallback sized
    /// (and that are not run-time), with the reason.
    pub stuck: Vec<(usize, String)>,
    /// `If` nodes whose condition's value is known: (node, branch taken is `then`).
    pub decided: Vec<(usize, bool)>,
}

impl Outcome {
    /// Every node output is sized or honestly run-time.
    pub fn complete(&self) -> bool {
        self.stuck.is_empty()
    }
}

/// Runs the engine. `inputs`: the graph inputs bound to concrete dims, by
/// tensor id; `values`: known values of initializers; `fallback`: another
/// analysis's answer for a tensor, used only where the own rules cannot size
/// its producer.
pub(super) fn run<'a>(
    g: &'a Graph,
    sources: &[NodeSource],
    inputs: &'a [(TensorId, Vec<u64>)],
    values: &'a [(TensorId, Value)],
    fallback: Option<&dyn Fn(TensorId) -> Option<ValueFact>>,
) -> Outcome {
    let mut slots: Vec<Slot<'a>> = g
        .tensors
        .iter()
        .map(|t| match t.producer {
            // Initializers: dims from the file; graph inputs: bound below.
            None => Slot { shape: t.shape.as_ref().map(Cow::Borrowed), dtype: Some(t.dtype), ..Slot::default() },
            Some(_) => Slot::default(),
        })
        .collect();
    for (id, dims) in inputs {
        slots[id.0].shape = Some(Cow::Owned(Shape(dims.clone())));
    }
    let mut budget = VALUE_BUDGET;
    for (id, v) in values {
        if let Some(rest) = budget.checked_sub(v.len() as u64) {
            budget = rest;
            slots[id.0].value = Some(Cow::Borrowed(v));
        }
    }
    let mut stuck = Vec::new();
    let mut decided = Vec::new();
    for (ni, src) in sources.iter().enumerate() {
        let node = &g.nodes[ni];
        if node.source_type == "If" {
            let cond = src.inputs.first().copied().flatten().and_then(|c| slots[c.0].value.as_deref()).and_then(Value::scalar_f64);
            if let Some(c) = cond {
                decided.push((ni, c != 0.0));
            }
        }
        match own_rule(&node.op, src, &slots) {
            Step::Sized(outs) => {
                for (id, mut slot) in src.outputs.iter().zip(outs) {
                    let Some(id) = id else { continue };
                    if let Some(v) = slot.value.take() {
                        if let Some(rest) = budget.checked_sub(v.len() as u64) {
                            budget = rest;
                            slot.value = Some(v);
                        }
                    }
                    slots[id.0] = slot;
                }
            }
            Step::RunTime(dtypes) => {
                for (id, dtype) in src.outputs.iter().zip(dtypes) {
                    let Some(id) = id else { continue };
                    slots[id.0] = Slot { dtype, run_time: true, ..Slot::default() };
                }
            }
            Step::Unsized(reason) => {
                let mut sized_by_fallback = true;
                for id in src.outputs.iter().flatten() {
                    let f = fallback.and_then(|f| f(*id));
                    slots[id.0] = match f {
                        Some(ValueFact { dtype, shape: ValueShape::Concrete(d) }) => {
                            Slot { shape: Some(Cow::Owned(Shape(d))), dtype, ..Slot::default() }
                        }
                        Some(ValueFact { dtype, shape: ValueShape::RunTime }) => Slot { dtype, run_time: true, ..Slot::default() },
                        Some(other) => {
                            sized_by_fallback = false;
                            Slot { dtype: other.dtype, other: Some(other), ..Slot::default() }
                        }
                        None => {
                            sized_by_fallback = false;
                            Slot::default()
                        }
                    };
                }
                if !sized_by_fallback {
                    stuck.push((ni, reason));
                }
            }
        }
    }
    let facts = slots
        .into_iter()
        .zip(&g.tensors)
        .map(|(slot, t)| {
            t.producer?;
            if let Some(other) = slot.other {
                return Some(other);
            }
            let shape = match (slot.shape, slot.run_time) {
                (Some(s), _) => ValueShape::Concrete(s.into_owned().0),
                (None, true) => ValueShape::RunTime,
                (None, false) => return None,
            };
            Some(ValueFact { dtype: slot.dtype, shape })
        })
        .collect();
    Outcome { facts, stuck, decided }
}

/// What one node's own rule gave.
enum Step<'a> {
    Sized(Vec<Slot<'a>>),
    /// Outputs sized by the data (or computed from such); their element types.
    RunTime(Vec<Option<DType>>),
    Unsized(String),
}

/// The value of every tensor with no elements.
static EMPTY_INTS: Value = Value::Int(Vec::new());
static EMPTY_FLOATS: Value = Value::Float(Vec::new());

/// One node through its op's rules.
fn own_rule<'a>(op: &crate::ops::Op, src: &NodeSource, slots: &[Slot<'_>]) -> Step<'a> {
    if src.facts.own_rule == OwnRule::No {
        return Step::Unsized(format!("no own shape rule for {}", op.name()));
    }
    let mut ins: Vec<Option<Input<'_>>> = Vec::with_capacity(src.inputs.len());
    let mut run_time = false;
    for (k, id) in src.inputs.iter().enumerate() {
        let Some(id) = id else {
            ins.push(None);
            continue;
        };
        let slot = &slots[id.0];
        match (&slot.shape, slot.dtype) {
            (Some(shape), Some(dtype)) => {
                // A tensor of no elements has a known value whatever it is bound to: empty.
                let value = slot.value.as_deref().or_else(|| {
                    (shape.elems() == Some(0) && value::evaluable(dtype))
                        .then_some(if dtype.is_float() { &EMPTY_FLOATS } else { &EMPTY_INTS })
                });
                ins.push(Some(Input { shape, dtype, value }))
            }
            _ if slot.run_time => {
                run_time = true;
                ins.push(None);
            }
            _ => return Step::Unsized(format!("input {} is not sized", k + 1)),
        }
    }
    let n_outputs = src.outputs.len();
    if run_time {
        return Step::RunTime(vec![None; n_outputs]);
    }
    let outs = match op.infer(&ins, n_outputs) {
        Ok(o) => o,
        Err(e) => return Step::Unsized(e.message),
    };
    let input_dtype = ins.first().copied().flatten().map(|x| x.dtype);
    let dtype = |k: usize| op.out_dtype(&ins, k).or(input_dtype).or(Some(DType::F32));
    if outs.iter().any(|o| matches!(o, OutShape::RunTime(_) | OutShape::RunTimeExtent { .. })) {
        return Step::RunTime((0..n_outputs).map(dtype).collect());
    }
    if outs.len() < n_outputs {
        return Step::Unsized(format!("the rule gives {} of {n_outputs} outputs", outs.len()));
    }
    let mut out: Vec<Slot<'a>> = outs
        .into_iter()
        .enumerate()
        .map(|(k, o)| {
            let s = match o {
                OutShape::Known(s) | OutShape::RunTime(s) | OutShape::RunTimeExtent { shape: s, .. } => s,
            };
            Slot { shape: Some(Cow::Owned(s)), dtype: dtype(k), ..Slot::default() }
        })
        .collect();
    // Values of small outputs whose inputs' values are known.
    let small = out.iter().all(|o| {
        o.shape.as_ref().and_then(|s| s.elems()).is_some_and(|e| e <= MAX_VALUE_ELEMS) && o.dtype.is_some_and(value::evaluable)
    });
    if small {
        let values = {
            let refs: Vec<&Shape> = out.iter().filter_map(|o| o.shape.as_deref()).collect();
            op.eval(&ins, &refs)
        };
        for (slot, v) in out.iter_mut().zip(values.into_iter().flatten()) {
            if slot.shape.as_ref().and_then(|s| s.elems()) == Some(v.len() as u64) {
                slot.value = Some(Cow::Owned(v));
            }
        }
    }
    Step::Sized(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::{ModelFormat, Node, NodeId, Tensor, TensorKind};
    use crate::ops::{ConstantOp, ElementwiseOp, EltwiseKind, LayoutOp, Op};

    fn tensor(name: &str, shape: Option<Vec<u64>>, dtype: DType, producer: Option<usize>) -> Tensor {
        Tensor {
            name: name.into(),
            shape: shape.map(Shape),
            unknown: None,
            dtype,
            kind: if producer.is_some() { TensorKind::Activation } else { TensorKind::Input },
            trainable: false,
            producer: producer.map(NodeId),
        }
    }

    fn node(op: Op) -> Node {
        Node {
            name: String::new(),
            source_type: String::new(),
            op,
            inputs: vec![],
            params: vec![],
            outputs: vec![],
            in_place: false,
            attrs: vec![],
            scope: Default::default(),
            call: None,
        }
    }

    fn yes(inputs: Vec<usize>, outputs: Vec<usize>) -> NodeSource {
        NodeSource {
            facts: TypeFacts { arguments_from: None, statistics: &[], stored_weights: &[], run_time: false, own_rule: OwnRule::Yes },
            inputs: inputs.into_iter().map(|i| Some(TensorId(i))).collect(),
            outputs: outputs.into_iter().map(|i| Some(TensorId(i))).collect(),
        }
    }

    /// An empty axes input (a graph input bound to [0]) has a known value:
    /// ReduceSum over it reduces every axis (noop_with_empty_axes 0).
    #[test]
    fn a_tensor_of_no_elements_has_a_known_value() {
        let mut g = Graph::new("t", ModelFormat::Onnx);
        g.tensors =
            vec![tensor("x", None, DType::F32, None), tensor("axes", None, DType::I64, None), tensor("y", None, DType::F32, Some(0))];
        let op = crate::ops::ReduceOp::Axes { kind: crate::ops::ReduceKind::Sum, axes: vec![], keep_dims: true, noop_with_empty_axes: false };
        g.nodes = vec![node(Op::Reduce(op))];
        let out = run(&g, &[yes(vec![0, 1], vec![2])], &[(TensorId(0), vec![3, 2, 2]), (TensorId(1), vec![0])], &[], None);
        assert!(out.complete(), "{:?}", out.stuck);
        assert!(matches!(&out.facts[2].as_ref().unwrap().shape, ValueShape::Concrete(d) if d == &vec![1, 1, 1]));
    }

    /// x [2,3,4] → Shape → Gather(0) → Unsqueeze → Concat(-1) → Reshape(x): [2, 12].
    #[test]
    fn shape_values_flow_through_a_reshape_chain() {
        let mut g = Graph::new("t", ModelFormat::Onnx);
        g.tensors = vec![
            tensor("x", None, DType::F32, None),
            tensor("idx", Some(vec![]), DType::I64, None),
            tensor("axes", Some(vec![1]), DType::I64, None),
            tensor("minus1", Some(vec![1]), DType::I64, None),
            tensor("shape", None, DType::I64, Some(0)),
            tensor("batch", None, DType::I64, Some(1)),
            tensor("batch1", None, DType::I64, Some(2)),
            tensor("target", None, DType::I64, Some(3)),
            tensor("y", None, DType::F32, Some(4)),
        ];
        g.nodes = vec![
            node(Op::Constant(ConstantOp::ShapeOf { start: 0, end: None })),
            node(Op::Layout(LayoutOp::Gather { axis: 0 })),
            node(Op::Layout(LayoutOp::Unsqueeze { axes: vec![] })),
            node(Op::Layout(LayoutOp::Concat { axis: 0 })),
            node(Op::Layout(LayoutOp::ReshapeTo { dims: None, allow_zero: false })),
        ];
        let sources = vec![yes(vec![0], vec![4]), yes(vec![4, 1], vec![5]), yes(vec![5, 2], vec![6]), yes(vec![6, 3], vec![7]), yes(vec![0, 7], vec![8])];
        let values = vec![(TensorId(1), Value::Int(vec![0])), (TensorId(2), Value::Int(vec![0])), (TensorId(3), Value::Int(vec![-1]))];
        let out = run(&g, &sources, &[(TensorId(0), vec![2, 3, 4])], &values, None);
        assert!(out.complete(), "{:?}", out.stuck);
        let shape = |i: usize| match &out.facts[i].as_ref().unwrap().shape {
            ValueShape::Concrete(d) => d.clone(),
            other => panic!("{other:?}"),
        };
        assert_eq!(shape(7), vec![2]);
        assert_eq!(shape(8), vec![2, 12]);
        assert_eq!(out.facts[4].as_ref().unwrap().dtype, Some(DType::I64));
    }

    /// Concat(x, W) with W an initializer: both operands count (the own rules
    /// once saw only the data input and reported [2,3]).
    #[test]
    fn concat_with_an_initializer_operand() {
        let mut g = Graph::new("t", ModelFormat::Onnx);
        g.tensors = vec![
            tensor("x", None, DType::F32, None),
            tensor("w", Some(vec![2, 3]), DType::F32, None),
            tensor("y", None, DType::F32, Some(0)),
        ];
        g.nodes = vec![node(Op::Layout(LayoutOp::Concat { axis: 0 }))];
        let out = run(&g, &[yes(vec![0, 1], vec![2])], &[(TensorId(0), vec![2, 3])], &[], None);
        assert!(matches!(&out.facts[2].as_ref().unwrap().shape, ValueShape::Concrete(d) if d == &vec![4, 3]));
    }

    /// A node without a rule is unsized, so is what follows; a fallback's
    /// answer sizes it and the own rules continue from there.
    #[test]
    fn fallback_only_where_the_own_rules_stop() {
        let mut g = Graph::new("t", ModelFormat::Onnx);
        g.tensors = vec![
            tensor("x", None, DType::F32, None),
            tensor("u", None, DType::F32, Some(0)),
            tensor("y", None, DType::F32, Some(1)),
        ];
        g.nodes = vec![
            node(Op::Unknown(crate::ops::UnknownOp { type_name: "Magic".into() })),
            node(Op::Elementwise(ElementwiseOp::Eltwise { kind: EltwiseKind::Sum, broadcast: true })),
        ];
        let mut sources = vec![yes(vec![0], vec![1]), yes(vec![1, 0], vec![2])];
        sources[0].facts.own_rule = OwnRule::No;
        let out = run(&g, &sources, &[(TensorId(0), vec![4])], &[], None);
        assert_eq!(out.stuck.len(), 2);
        let tract = |t: TensorId| (t.0 == 1).then(|| ValueFact { dtype: Some(DType::F32), shape: ValueShape::Concrete(vec![1]) });
        let out = run(&g, &sources, &[(TensorId(0), vec![4])], &[], Some(&tract));
        assert!(out.complete());
        assert!(matches!(&out.facts[2].as_ref().unwrap().shape, ValueShape::Concrete(d) if d == &vec![4]));
    }
}
