//! nnmem's own shape rules for ONNX graphs, tried before tract.
//!
//! When every input is sized and every node is an op whose ONNX semantics our
//! rules in `ops/` reproduce exactly (plain convolutions and pooling, dense
//! layers, pointwise ops, concat, flatten to 2-D, batch norm, dropout …: each
//! type's `OwnRule` in the table of `map.rs`), the shapes are computed here in
//! microseconds and tract is not run. Anything else — `auto_pad`, reshapes
//! driven by values, shape arithmetic, unknown ops — returns `None` and the
//! whole graph goes to tract. A test checks both paths agree on every fixture
//! and corpus model.

use std::collections::HashMap;

use super::map::{OwnRule, TypeFacts};
use super::{ValueFact, ValueShape};
use crate::graph::{AttrValue, DType, Graph, Node, Shape};
use crate::ops::{ConvOp, DenseOp, LayoutOp, NormOp, Op, OutShape};

fn attr<'a>(node: &'a Node, name: &str) -> Option<&'a AttrValue> {
    node.attrs.iter().find(|(n, _)| n == name).map(|(_, v)| v)
}

fn int_attr(node: &Node, name: &str) -> Option<i64> {
    match attr(node, name) {
        Some(AttrValue::Int(i)) => Some(*i),
        _ => None,
    }
}

/// Whether our rule for this node is exactly ONNX's, by its type's `OwnRule`.
fn exact(rule: OwnRule, node: &Node) -> bool {
    let plain_padding = || match attr(node, "auto_pad") {
        None => true,
        Some(AttrValue::Str(s)) => s == "NOTSET" || s == "VALID" && !node.attrs.iter().any(|(n, _)| n == "pads"),
        Some(_) => false,
    };
    let dense_with_weight = || matches!(&node.op, Op::Dense(DenseOp::Linear(d)) if d.out_features > 0);
    match rule {
        OwnRule::No => false,
        OwnRule::Yes => true,
        OwnRule::Conv => plain_padding() && matches!(&node.op, Op::Conv(ConvOp::Forward(c)) if c.out_channels > 0),
        OwnRule::Pool => plain_padding() && node.outputs.len() == 1,
        // Gemm multiplies a 2-D A, untransposed here.
        OwnRule::Gemm => int_attr(node, "transA").unwrap_or(0) == 0 && dense_with_weight(),
        OwnRule::MatMulWeight => dense_with_weight(),
        OwnRule::Constant => matches!(attr(node, "value_dims"), Some(AttrValue::Ints(_))),
        OwnRule::Flatten => matches!(&node.op, Op::Layout(LayoutOp::Flatten(f)) if f.axis == 1),
    }
}

fn dtype_named(name: &str) -> Option<DType> {
    use DType::*;
    [F64, F32, F16, BF16, F8, I64, I32, I16, I8, U8, U16, U32, U64, Bool, Packed4, String].into_iter().find(|d| d.name() == name)
}

/// Output element types this path knows besides the input's.
fn output_dtype(facts: &TypeFacts, index: usize, input: DType) -> DType {
    if facts.bool_outputs.contains(&index) {
        DType::Bool
    } else {
        input
    }
}

/// Shapes of every node output by name, or `None` when some node needs tract.
/// `inputs` holds the sized graph inputs by name; `facts` the type facts of
/// every node, in graph order.
pub(super) fn own_shapes(
    g: &Graph,
    inputs: &HashMap<String, Vec<u64>>,
    facts: &[TypeFacts],
) -> Option<HashMap<String, ValueFact>> {
    let mut known: HashMap<usize, (Shape, DType)> = HashMap::with_capacity(g.tensors.len());
    for (i, t) in g.tensors.iter().enumerate() {
        if t.producer.is_none() {
            if let Some(dims) = inputs.get(&t.name) {
                known.insert(i, (Shape(dims.clone()), t.dtype));
            } else if let Some(s) = &t.shape {
                // Initializers: their dims come from the file.
                known.insert(i, (s.clone(), t.dtype));
            }
        }
    }
    let mut out = HashMap::with_capacity(g.tensors.len());
    for (node, facts) in g.nodes.iter().zip(facts) {
        if !exact(facts.own_rule, node) {
            return None;
        }
        if let (Op::Constant(_), Some(AttrValue::Ints(dims)), Some(&t)) = (&node.op, attr(node, "value_dims"), node.outputs.first()) {
            let shape = Shape(dims.iter().map(|&d| d as u64).collect());
            let dt = match attr(node, "value_dtype") {
                Some(AttrValue::Str(name)) => dtype_named(name)?,
                _ => return None,
            };
            out.insert(g.tensors[t.0].name.clone(), ValueFact { dtype: Some(dt), shape: ValueShape::Concrete(shape.0.clone()) });
            known.insert(t.0, (shape, dt));
            continue;
        }
        // A node fed only by weights (Identity on an initializer) takes their shape.
        let sources = if node.inputs.is_empty() { &node.params } else { &node.inputs };
        let ins: Option<Vec<&(Shape, DType)>> = sources.iter().map(|t| known.get(&t.0)).collect();
        let ins = ins?;
        let shapes: Vec<&Shape> = ins.iter().map(|(s, _)| s).collect();
        let dtype = ins.first().map(|(_, d)| *d).unwrap_or(DType::F32);
        let mut outs = node.op.infer_shapes(&shapes, node.outputs.len()).ok()?;
        // Training-mode batch norm also returns running mean and variance, one per channel.
        if matches!(node.op, Op::Norm(NormOp::BatchNorm { .. })) && node.outputs.len() > 1 {
            let c = shapes.first()?.dim(1).ok()?;
            for o in outs.iter_mut().skip(1) {
                *o = OutShape::Known(Shape(vec![c]));
            }
        }
        for (k, (&t, shape)) in node.outputs.iter().zip(outs).enumerate() {
            let OutShape::Known(shape) = shape else { return None };
            let dt = output_dtype(facts, k, dtype);
            out.insert(g.tensors[t.0].name.clone(), ValueFact { dtype: Some(dt), shape: ValueShape::Concrete(shape.0.clone()) });
            known.insert(t.0, (shape, dt));
        }
    }
    Some(out)
}
