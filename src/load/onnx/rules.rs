//! nnmem's own shape rules for ONNX graphs, tried before tract.
//!
//! When every input is sized and every node is an op whose ONNX semantics our
//! rules in `ops/` reproduce exactly (plain convolutions and pooling, dense
//! layers, pointwise ops, concat, flatten to 2-D, batch norm, dropout …), the
//! shapes are computed here in microseconds and tract is not run. Anything
//! else — `auto_pad`, reshapes driven by values, shape arithmetic, unknown
//! ops — returns `None` and the whole graph goes to tract. A test checks both
//! paths agree on every fixture and corpus model.

use std::collections::HashMap;

use super::{ValueFact, ValueShape};
use crate::graph::{AttrValue, DType, Graph, Node, Shape};
use crate::ops::{ConstantOp, ConvOp, DenseOp, ElementwiseOp as E, LayoutOp, NormOp, Op, OutShape};

fn attr<'a>(node: &'a Node, name: &str) -> Option<&'a AttrValue> {
    node.attrs.iter().find(|(n, _)| n == name).map(|(_, v)| v)
}

fn int_attr(node: &Node, name: &str) -> Option<i64> {
    match attr(node, name) {
        Some(AttrValue::Int(i)) => Some(*i),
        _ => None,
    }
}

/// Whether our rule for this node is exactly ONNX's.
fn eligible(node: &Node) -> bool {
    let plain_padding = match attr(node, "auto_pad") {
        None => true,
        Some(AttrValue::Str(s)) => s == "NOTSET" || s == "VALID" && !node.attrs.iter().any(|(n, _)| n == "pads"),
        Some(_) => false,
    };
    match (&node.op, node.source_type.as_str()) {
        (Op::Conv(ConvOp::Forward(c)), "Conv") => plain_padding && c.out_channels > 0,
        (Op::Pool(_), "MaxPool" | "AveragePool") => plain_padding && node.outputs.len() == 1,
        (Op::Pool(p), "GlobalMaxPool" | "GlobalAveragePool") => p.global,
        // Gemm multiplies a 2-D A, untransposed here.
        (Op::Dense(DenseOp::Linear(d)), "Gemm") => int_attr(node, "transA").unwrap_or(0) == 0 && d.out_features > 0,
        (Op::Dense(DenseOp::Linear(d)), "MatMul") => d.out_features > 0,
        // Cast changes the element type, which this path does not track.
        (Op::Elementwise(E::Activation(_)), t) => t != "Cast" && t != "CastLike",
        (
            Op::Elementwise(E::PRelu { .. } | E::Dropout { .. } | E::Eltwise { .. } | E::Softmax { .. })
            | Op::Layout(LayoutOp::Concat { .. }),
            _,
        ) => true,
        (Op::Norm(NormOp::Lrn(_)), "LRN") => true,
        (Op::Norm(NormOp::BatchNorm { .. }), "BatchNormalization") => true,
        (Op::Constant(ConstantOp::Stored), "Constant") => matches!(attr(node, "value_dims"), Some(AttrValue::Ints(_))),
        // ONNX Flatten always gives 2-D; our rule does for axis 1 only.
        (Op::Layout(LayoutOp::Flatten(f)), "Flatten") => f.axis == 1,
        _ => false,
    }
}

fn dtype_named(name: &str) -> Option<DType> {
    use DType::*;
    [F64, F32, F16, BF16, F8, I64, I32, I16, I8, U8, U16, U32, U64, Bool, Packed4, String].into_iter().find(|d| d.name() == name)
}

/// Output element types this path knows besides the input's.
fn output_dtype(node: &Node, index: usize, input: DType) -> DType {
    match (node.source_type.as_str(), index) {
        ("Dropout", 1) => DType::Bool,
        _ => input,
    }
}

/// Shapes of every node output by name, or `None` when some node needs tract.
/// `inputs` holds the sized graph inputs by name.
pub(super) fn own_shapes(g: &Graph, inputs: &HashMap<String, Vec<u64>>) -> Option<HashMap<String, ValueFact>> {
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
    for node in &g.nodes {
        if !eligible(node) {
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
            let dt = output_dtype(node, k, dtype);
            out.insert(g.tensors[t.0].name.clone(), ValueFact { dtype: Some(dt), shape: ValueShape::Concrete(shape.0.clone()) });
            known.insert(t.0, (shape, dt));
        }
    }
    Some(out)
}
