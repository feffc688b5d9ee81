//! ONNX op types and attributes → nnmem's operator vocabulary (`Op`), and
//! everything else the loader knows per op type (`TypeFacts`): which inputs
//! are operator arguments rather than weights, which hold running statistics,
//! whose outputs are sized at run time, whether an output is a boolean mask,
//! and when nnmem's own shape rule is exactly ONNX's. This match is the one
//! table of ONNX op types: one arm per type.
//!
//! Attributes are read with the defaults the ONNX operator specification
//! gives. No shape arithmetic happens here (the shape rules live in `ops/`;
//! `rules.rs` applies them, tract covers the rest). Weight dims (Conv out
//! channels, Gemm out features) are read from the initializer headers when the
//! weight is an initializer.

use std::collections::HashMap;

use super::proto::{AttributeProto, NodeProto, TensorProto, Wire};
use crate::graph::AttrValue;
use crate::ops::{
    Activation, BinaryKind, CompareKind, ConstantOp, ConvOp, ConvParams, DenseOp, DenseParams, EltwiseKind,
    ElementwiseOp as E, FlattenParams, LayoutOp as L, LrnParams, NormOp, Op, PoolMethod, PoolParams, ReduceKind,
    ReduceOp, ReshapeParams, ResizeOp, RnnCell, Rounding, SequenceParams, SliceParams, UnknownOp, Window,
};

/// What the mapper may look at besides the node itself.
pub struct MapCtx<'a> {
    /// Default-domain opset the model imports.
    pub opset: i64,
    pub initializers: &'a HashMap<&'a str, &'a TensorProto>,
    /// One-element float values stored in the file, by value name
    /// (`scalar_floats`): operator arguments such as Dropout's ratio.
    pub scalars: &'a HashMap<String, f64>,
}

impl MapCtx<'_> {
    /// Dims of input `i` when it is an initializer.
    fn init_dims(&self, node: &NodeProto, i: usize) -> Option<Vec<u64>> {
        let t = self.initializers.get(node.input.get(i)?.as_str())?;
        t.dims.iter().map(|&d| u64::try_from(d).ok()).collect()
    }
}

/// When nnmem's own shape rule gives exactly ONNX's output (`rules.rs`
/// evaluates the condition on the node).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OwnRule {
    /// Never: the shape depends on values, the element type changes, or the
    /// op is not in the vocabulary; tract decides.
    No,
    /// Always.
    Yes,
    /// Explicit padding (no SAME auto_pad) and the weight's dims known.
    Conv,
    /// Explicit padding and no Indices output.
    Pool,
    /// A untransposed, the weight's dims known.
    Gemm,
    /// B is a 2-D weight (the op became a dense layer).
    MatMulWeight,
    /// The stored value's dims are known.
    Constant,
    /// Axis 1 (ONNX Flatten always gives 2-D; our rule does for axis 1 only).
    Flatten,
}

/// What the ONNX loader knows about an op type besides its `Op`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TypeFacts {
    /// Inputs from this position on are operator arguments (a ratio, scales,
    /// pads), so a float initializer read only there is a constant, not a weight.
    pub arguments_from: Option<usize>,
    /// Input positions that hold running statistics, not learned weights.
    pub statistics: &'static [usize],
    /// Output extents depend on data or control flow.
    pub run_time: bool,
    /// Output positions that are boolean masks whatever the input type.
    pub bool_outputs: &'static [usize],
    pub own_rule: OwnRule,
}

impl TypeFacts {
    /// Nothing special: every initializer input a weight, shapes from tract.
    const TRACT: TypeFacts = TypeFacts { arguments_from: None, statistics: &[], run_time: false, bool_outputs: &[], own_rule: OwnRule::No };

    const fn own(own_rule: OwnRule) -> TypeFacts {
        TypeFacts { own_rule, ..TypeFacts::TRACT }
    }
}

/// A node in nnmem's terms.
pub struct Mapped {
    pub op: Op,
    /// Attributes kept for the report.
    pub attrs: Vec<(String, AttrValue)>,
    pub facts: TypeFacts,
}

/// The op, the attributes kept for the report and the type's facts. An op
/// type outside the vocabulary becomes `Op::Unknown` (the caller warns once per type).
pub fn map_node(node: &NodeProto, ctx: &MapCtx<'_>) -> Mapped {
    let mut attrs: Vec<(String, AttrValue)> = node.attribute.iter().filter_map(attr_value).collect();
    if node.op_type == "Constant" {
        attrs.extend(constant_value_shape(node));
    }
    let a = Attrs(&node.attribute);
    let has_input = |i: usize| node.input.get(i).is_some_and(|s| !s.is_empty());
    use Activation as A;
    let act = |a: Activation| Op::Elementwise(E::Activation(a));
    let exact = TypeFacts::own(OwnRule::Yes);
    let tract = TypeFacts::TRACT;
    let unknown = || Op::Unknown(UnknownOp { type_name: node.op_type.clone() });
    let (op, facts) = match node.op_type.as_str() {
        "Conv" => {
            let w = ctx.init_dims(node, 1).unwrap_or_default();
            let out_channels = w.first().copied().unwrap_or(0);
            (Op::Conv(ConvOp::Forward(conv_params(&a, &w, out_channels, has_input(2), 2))), TypeFacts::own(OwnRule::Conv))
        }
        "ConvTranspose" => {
            let w = ctx.init_dims(node, 1).unwrap_or_default();
            let group = a.int("group", 1).max(1) as u64;
            let out_channels = w.get(1).copied().unwrap_or(0).saturating_mul(group);
            let mut p = conv_params(&a, &w, out_channels, has_input(2), 2);
            p.output_pad = a.ints("output_padding").iter().map(|&v| v.max(0) as u64).collect();
            (Op::Conv(ConvOp::Transposed(p)), tract)
        }
        "MaxPool" | "AveragePool" => {
            let method = if node.op_type == "MaxPool" { PoolMethod::Max } else { PoolMethod::Average };
            let ceil = a.int("ceil_mode", 0) != 0;
            let op = Op::Pool(PoolParams {
                method,
                window: window(&a, &[]),
                rounding: if ceil { Rounding::Ceil } else { Rounding::Floor },
                global: false,
                clip_last_window: ceil,
            });
            (op, TypeFacts::own(OwnRule::Pool))
        }
        "GlobalMaxPool" | "GlobalAveragePool" => {
            let op = Op::Pool(PoolParams {
                method: if node.op_type == "GlobalMaxPool" { PoolMethod::Max } else { PoolMethod::Average },
                window: Window::symmetric(Vec::new(), Vec::new(), Vec::new(), Vec::new()),
                rounding: Rounding::Floor,
                global: true,
                clip_last_window: false,
            });
            (op, exact)
        }
        "Gemm" => {
            // B is (K, N), or (N, K) with transB: Caffe's (out, K) layout is transB = 1.
            let trans_b = a.int("transB", 0) != 0;
            let b = ctx.init_dims(node, 1).unwrap_or_default();
            let out_features = if trans_b { b.first() } else { b.get(1) }.copied().unwrap_or(0);
            let p = DenseParams { out_features, axis: 1, bias: has_input(2), transpose: !trans_b };
            (Op::Dense(DenseOp::Linear(p)), TypeFacts::own(OwnRule::Gemm))
        }
        "MatMul" => match ctx.init_dims(node, 1) {
            // A weight matrix (K, N) applied to the last axis: a dense layer.
            Some(b) if b.len() == 2 => {
                let p = DenseParams { out_features: b[1], axis: -1, bias: false, transpose: true };
                (Op::Dense(DenseOp::Linear(p)), TypeFacts::own(OwnRule::MatMulWeight))
            }
            _ => (Op::Dense(DenseOp::MatMul), tract),
        },
        "Relu" => (act(A::Relu { negative_slope: 0.0 }), exact),
        "LeakyRelu" => (act(A::Relu { negative_slope: a.float("alpha", 0.01) }), exact),
        "Sigmoid" => (act(A::Sigmoid), exact),
        "Tanh" => (act(A::Tanh), exact),
        "Abs" => (act(A::AbsVal), exact),
        "Exp" => (act(A::Exp), exact),
        "Log" => (act(A::Log), exact),
        "Elu" | "Selu" | "Celu" => (act(A::Elu), exact),
        // min and max are inputs from opset 11.
        "Clip" => (act(A::Clip), TypeFacts { arguments_from: Some(1), ..exact }),
        "Gelu" => (act(A::Gelu), exact),
        "HardSigmoid" => (act(A::HardSigmoid), exact),
        "HardSwish" => (act(A::HardSwish), exact),
        "Softplus" => (act(A::Softplus), exact),
        "Erf" => (act(A::Erf), exact),
        "Sqrt" => (act(A::Sqrt), exact),
        "Reciprocal" => (act(A::Reciprocal), exact),
        "Neg" => (act(A::Neg), exact),
        "Identity" => (act(A::Identity), exact),
        // The element type changes, which the own rules do not track.
        "Cast" | "CastLike" => (act(A::Identity), tract),
        "PRelu" => {
            let shared = ctx.init_dims(node, 1).and_then(|d| crate::tensor::checked_product(&d)) == Some(1);
            (Op::Elementwise(E::PRelu { channel_shared: shared }), exact)
        }
        // ratio and training_mode are inputs from opset 12 (ratio absent:
        // 0.5; stored elsewhere than in the file: taken as non-zero, the mask
        // kept); output 1 is the mask.
        "Dropout" => {
            let ratio = if ctx.opset >= 12 {
                match node.input.get(1).filter(|n| !n.is_empty()) {
                    Some(n) => ctx.scalars.get(n.as_str()).map_or(0.5, |&v| v as f32),
                    None => 0.5,
                }
            } else {
                a.float("ratio", 0.5)
            };
            (Op::Elementwise(E::Dropout { ratio }), TypeFacts { arguments_from: Some(1), bool_outputs: &[1], ..exact })
        }
        "Add" | "Sum" | "Mean" => (eltwise(EltwiseKind::Sum), exact),
        "Sub" => (eltwise(EltwiseKind::Sub), exact),
        "Mul" => (eltwise(EltwiseKind::Prod), exact),
        "Div" => (eltwise(EltwiseKind::Div), exact),
        "Max" => (eltwise(EltwiseKind::Max), exact),
        "Min" => (eltwise(EltwiseKind::Min), exact),
        "Pow" => (Op::Elementwise(E::Binary(BinaryKind::Pow)), tract),
        "Mod" => (Op::Elementwise(E::Binary(BinaryKind::Mod)), tract),
        "Concat" => (Op::Layout(L::Concat { axis: a.int("axis", 1) }), exact),
        "Softmax" | "LogSoftmax" => {
            // Opset 13 changed the default axis from 1 (flattening) to -1.
            (Op::Elementwise(E::Softmax { axis: a.int("axis", if ctx.opset < 13 { 1 } else { -1 }) }), exact)
        }
        "LRN" => {
            let p = LrnParams { local_size: a.int("size", 5).max(1) as u64, across_channels: true };
            (Op::Norm(NormOp::Lrn(p)), exact)
        }
        // Inputs 3 and 4 are the running mean and variance.
        "BatchNormalization" => (
            Op::Norm(NormOp::BatchNorm { eps: a.float("epsilon", 1e-5), caffe_factor: false }),
            TypeFacts { statistics: &[3, 4], ..exact },
        ),
        "LayerNormalization" => {
            (Op::Norm(NormOp::LayerNorm { axis: a.int("axis", -1), eps: a.float("epsilon", 1e-5) }), tract)
        }
        "InstanceNormalization" => (Op::Norm(NormOp::GroupNorm { groups: None, eps: a.float("epsilon", 1e-5) }), tract),
        "GroupNormalization" => {
            let groups = Some(a.int("num_groups", 1).max(1) as u64);
            (Op::Norm(NormOp::GroupNorm { groups, eps: a.float("epsilon", 1e-5) }), tract)
        }
        "Flatten" => {
            (Op::Layout(L::Flatten(FlattenParams { axis: a.int("axis", 1), end_axis: -1 })), TypeFacts::own(OwnRule::Flatten))
        }
        "Reshape" => (Op::Layout(L::Reshape(ReshapeParams { dims: Vec::new(), axis: 0, num_axes: -1 })), tract),
        "Transpose" => {
            (Op::Layout(L::Permute { order: a.ints("perm").iter().map(|&p| p.max(0) as usize).collect() }), tract)
        }
        "Squeeze" => (Op::Layout(L::Squeeze { axes: a.ints("axes").to_vec() }), tract),
        "Unsqueeze" => (Op::Layout(L::Unsqueeze { axes: a.ints("axes").to_vec() }), tract),
        "Split" => {
            let mut points = Vec::new();
            let mut acc = 0u64;
            let split = a.ints("split");
            for &s in split.iter().take(split.len().saturating_sub(1)) {
                acc = acc.saturating_add(s.max(0) as u64);
                points.push(acc);
            }
            (Op::Layout(L::Slice(SliceParams { axis: a.int("axis", 0), points })), tract)
        }
        "Slice" => (Op::Layout(L::StridedSlice), tract),
        // pads and the fill value are inputs from opset 11.
        "Pad" => (Op::Layout(L::Pad), TypeFacts { arguments_from: Some(1), ..tract }),
        // scales and sizes are inputs.
        "Resize" | "Upsample" => (
            Op::Resize(ResizeOp::Scaled { mode: a.string("mode").unwrap_or_else(|| "nearest".into()) }),
            TypeFacts { arguments_from: Some(1), ..tract },
        ),
        "Expand" => (Op::Layout(L::Expand), tract),
        "Gather" => (Op::Layout(L::Gather { axis: a.int("axis", 0) }), tract),
        "Shape" => (Op::Constant(ConstantOp::ShapeOf), tract),
        "Constant" => (Op::Constant(ConstantOp::Stored), TypeFacts::own(OwnRule::Constant)),
        // Input 0 is the shape to fill.
        "ConstantOfShape" => (Op::Constant(ConstantOp::Filled), TypeFacts { arguments_from: Some(0), ..tract }),
        "ReduceMean" | "ReduceSum" | "ReduceMax" | "ReduceMin" | "ReduceProd" | "ReduceL1" | "ReduceL2"
        | "ReduceLogSumExp" | "ReduceSumSquare" => {
            let kind = match node.op_type.as_str() {
                "ReduceMean" => ReduceKind::Mean,
                "ReduceSum" => ReduceKind::Sum,
                "ReduceMax" => ReduceKind::Max,
                "ReduceMin" => ReduceKind::Min,
                "ReduceProd" => ReduceKind::Prod,
                "ReduceL1" => ReduceKind::L1,
                "ReduceL2" => ReduceKind::L2,
                "ReduceLogSumExp" => ReduceKind::LogSumExp,
                _ => ReduceKind::SumSquare,
            };
            // Newer opsets pass the axes as an input; the attribute is then absent.
            let op = ReduceOp::Axes { kind, axes: a.ints("axes").to_vec(), keep_dims: a.int("keepdims", 1) != 0 };
            (Op::Reduce(op), tract)
        }
        "ArgMax" => (Op::Reduce(ReduceOp::ArgMax { top_k: 1, out_max_val: false, axis: Some(a.int("axis", 0)) }), tract),
        // The axis is input 1; exclusive and reverse leave the shape alone.
        "CumSum" => (Op::Reduce(ReduceOp::CumSum), TypeFacts { arguments_from: Some(1), ..exact }),
        // Sizes from tract for now (an output left unnamed would shift ours).
        "LSTM" => (Op::Sequence(sequence_params(&a, node, ctx, RnnCell::Lstm)), tract),
        "GRU" => (Op::Sequence(sequence_params(&a, node, ctx, RnnCell::Gru)), tract),
        "RNN" => (Op::Sequence(sequence_params(&a, node, ctx, RnnCell::Rnn)), tract),
        "Equal" => (compare(CompareKind::Equal), tract),
        "Less" => (compare(CompareKind::Less), tract),
        "LessOrEqual" => (compare(CompareKind::LessOrEqual), tract),
        "Greater" => (compare(CompareKind::Greater), tract),
        "GreaterOrEqual" => (compare(CompareKind::GreaterOrEqual), tract),
        "And" => (compare(CompareKind::And), tract),
        "Or" => (compare(CompareKind::Or), tract),
        "Xor" => (compare(CompareKind::Xor), tract),
        "Not" => (compare(CompareKind::Not), tract),
        "Where" => (Op::Elementwise(E::Where), tract),
        // Outside the vocabulary, with facts the loader still needs.
        // start, limit and delta are arguments.
        "Range" => (unknown(), TypeFacts { arguments_from: Some(0), ..tract }),
        // Output extents depend on data or control flow.
        "If" | "Loop" | "Scan" | "NonZero" | "NonMaxSuppression" | "Unique" | "Compress" | "TopK" | "RoiAlign"
        | "MaxRoiPool" | "SequenceAt" | "SplitToSequence" | "ConcatFromSequence" => {
            (unknown(), TypeFacts { run_time: true, ..tract })
        }
        _ => (unknown(), tract),
    };
    Mapped { op, attrs, facts }
}

fn eltwise(kind: EltwiseKind) -> Op {
    Op::Elementwise(E::Eltwise { kind, broadcast: true })
}

fn compare(kind: CompareKind) -> Op {
    Op::Elementwise(E::Compare(kind))
}

fn conv_params(a: &Attrs<'_>, w: &[u64], out_channels: u64, bias: bool, skip: usize) -> ConvParams {
    let kernel_from_weight = w.get(skip..).map(|k| k.to_vec()).unwrap_or_default();
    ConvParams {
        out_channels,
        window: window(a, &kernel_from_weight),
        group: a.int("group", 1).max(1) as u64,
        depthwise: false,
        bias,
        axis: 1,
        output_pad: Vec::new(),
    }
}

/// Kernel, strides, pads (`[b1..bn, e1..en]`) and dilations with ONNX defaults.
/// `auto_pad` SAME_* padding depends on the input size; it is left at 0 here
/// and the real output shape comes from tract.
fn window(a: &Attrs<'_>, kernel_fallback: &[u64]) -> Window {
    let u = |v: &[i64]| v.iter().map(|&x| x.max(0) as u64).collect::<Vec<u64>>();
    let kernel = match a.ints("kernel_shape") {
        k if !k.is_empty() => u(k),
        _ => kernel_fallback.to_vec(),
    };
    let n = kernel.len();
    let or_ones = |v: Vec<u64>| if v.len() == n { v } else { vec![1; n] };
    let pads = u(a.ints("pads"));
    let (pad_begin, pad_end) =
        if pads.len() == 2 * n { (pads[..n].to_vec(), pads[n..].to_vec()) } else { (vec![0; n], vec![0; n]) };
    Window {
        stride: or_ones(u(a.ints("strides"))),
        dilation: or_ones(u(a.ints("dilations"))),
        pad_begin,
        pad_end,
        kernel,
    }
}

/// An ONNX LSTM, GRU or RNN: `hidden_size` (else R's second dim over the gates,
/// when R is stored), `direction`, `layout`.
fn sequence_params(a: &Attrs<'_>, node: &NodeProto, ctx: &MapCtx<'_>, cell: RnnCell) -> SequenceParams {
    let from_r = || ctx.init_dims(node, 2).and_then(|d| d.get(1).copied()).map_or(0, |gh| gh / cell.gates());
    let hidden = u64::try_from(a.int("hidden_size", 0)).ok().filter(|&h| h > 0).unwrap_or_else(from_r);
    let directions = if a.string("direction").as_deref() == Some("bidirectional") { 2 } else { 1 };
    SequenceParams { cell, hidden, directions, batch_first: a.int("layout", 0) == 1 }
}

/// One-element float values held in the file, by value name: Constant nodes
/// (`value` with one FLOAT or DOUBLE element, or `value_float`) and
/// one-element float initializers stored inside the file. Only these tiny
/// payloads are read (from each node's or initializer's own bytes); weights
/// never are.
pub fn scalar_floats(nodes: &[(NodeProto, &[u8])], initializers: &[(TensorProto, &[u8])]) -> HashMap<String, f64> {
    let mut out = HashMap::new();
    for (t, bytes) in initializers {
        if t.dims.iter().all(|&d| d == 1) {
            if let Some(v) = one_float(bytes) {
                out.insert(t.name.clone(), v);
            }
        }
    }
    for (n, bytes) in nodes {
        let Some(name) = n.output.first() else { continue };
        if n.op_type != "Constant" || !n.domain.is_empty() {
            continue;
        }
        if let Some(a) = n.attribute.iter().find(|a| a.name == "value_float") {
            out.insert(name.clone(), f64::from(a.f));
            continue;
        }
        let value_tensor = super::proto::fields(bytes).ok().and_then(|fs| {
            fs.into_iter().filter(|f| f.number == 5 && f.wire == Wire::Len).find_map(|attr| {
                let afs = super::proto::fields(attr.bytes).ok()?;
                let named_value = afs.iter().any(|f| f.number == 1 && f.bytes == b"value");
                afs.iter().find(|f| named_value && f.number == 5 && f.wire == Wire::Len).map(|f| f.bytes)
            })
        });
        if let Some(v) = value_tensor.and_then(one_float) {
            out.insert(name.clone(), v);
        }
    }
    out
}

/// The value of a serialized TensorProto holding exactly one FLOAT or DOUBLE
/// element inside the file (raw_data, float_data or double_data).
fn one_float(tensor: &[u8]) -> Option<f64> {
    use super::proto::elem;
    let fs = super::proto::fields(tensor).ok()?;
    let mut data_type = 0u64;
    let mut n_elems = 1u64;
    for f in &fs {
        match (f.number, f.wire) {
            (1, Wire::Varint) => n_elems = n_elems.checked_mul(varint(f.bytes)?)?,
            (1, Wire::Len) => {
                let mut rest = f.bytes;
                while !rest.is_empty() {
                    let (d, used) = varint_prefix(rest)?;
                    n_elems = n_elems.checked_mul(d)?;
                    rest = &rest[used..];
                }
            }
            (2, Wire::Varint) => data_type = varint(f.bytes)?,
            // Stored outside the file.
            (14, Wire::Varint) if varint(f.bytes)? == 1 => return None,
            _ => {}
        }
    }
    if n_elems != 1 {
        return None;
    }
    let width = match i32::try_from(data_type).ok()? {
        elem::FLOAT => 4,
        elem::DOUBLE => 8,
        _ => return None,
    };
    let payload = fs.iter().find_map(|f| match (f.number, f.wire) {
        (9, Wire::Len) | (4, Wire::Len) | (10, Wire::Len) => Some(f.bytes),
        (4, Wire::Fixed32) | (10, Wire::Fixed64) => Some(f.bytes),
        _ => None,
    })?;
    match (width, payload.len()) {
        (4, 4) => Some(f64::from(f32::from_le_bytes(payload.try_into().ok()?))),
        (8, 8) => Some(f64::from_le_bytes(payload.try_into().ok()?)),
        _ => None,
    }
}

/// A varint that is the whole of `bytes`.
fn varint(bytes: &[u8]) -> Option<u64> {
    varint_prefix(bytes).filter(|&(_, used)| used == bytes.len()).map(|(v, _)| v)
}

/// The varint at the start of `bytes` and how many bytes it took.
fn varint_prefix(bytes: &[u8]) -> Option<(u64, usize)> {
    let mut v = 0u64;
    for (i, &b) in bytes.iter().enumerate().take(10) {
        v |= u64::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return Some((v, i + 1));
        }
    }
    None
}

/// A Constant's value, as dims and element type (`value_dims`, `value_dtype`),
/// from whichever `value*` attribute it carries.
fn constant_value_shape(node: &NodeProto) -> Vec<(String, AttrValue)> {
    use super::proto::elem;
    let found = node.attribute.iter().find_map(|a| match a.name.as_str() {
        "value" => a.t.as_ref().map(|t| (t.dims.clone(), t.data_type)),
        "value_float" => Some((Vec::new(), elem::FLOAT)),
        "value_int" => Some((Vec::new(), elem::INT64)),
        "value_floats" => Some((vec![a.floats.len() as i64], elem::FLOAT)),
        "value_ints" => Some((vec![a.ints.len() as i64], elem::INT64)),
        _ => None,
    });
    match found {
        Some((dims, dtype)) if dims.iter().all(|&d| d >= 0) => {
            let mut v = vec![("value_dims".to_string(), AttrValue::Ints(dims))];
            if let Some(dt) = super::proto::dtype_of(dtype) {
                v.push(("value_dtype".to_string(), AttrValue::Str(dt.name().to_string())));
            }
            v
        }
        _ => Vec::new(),
    }
}

/// Attribute lookup with defaults.
struct Attrs<'a>(&'a [AttributeProto]);

impl Attrs<'_> {
    fn get(&self, name: &str) -> Option<&AttributeProto> {
        self.0.iter().find(|a| a.name == name)
    }
    fn int(&self, name: &str, default: i64) -> i64 {
        self.get(name).map_or(default, |a| a.i)
    }
    fn float(&self, name: &str, default: f32) -> f32 {
        self.get(name).map_or(default, |a| a.f)
    }
    fn ints(&self, name: &str) -> &[i64] {
        self.get(name).map_or(&[], |a| &a.ints)
    }
    fn string(&self, name: &str) -> Option<String> {
        self.get(name).map(|a| String::from_utf8_lossy(&a.s).into_owned())
    }
}

/// AttributeProto.AttributeType numbers.
const FLOAT: i32 = 1;
const INT: i32 = 2;
const STRING: i32 = 3;
const FLOATS: i32 = 6;
const INTS: i32 = 7;
const STRINGS: i32 = 8;

/// The report form of a scalar or list attribute; tensors and graphs are left out.
fn attr_value(a: &AttributeProto) -> Option<(String, AttrValue)> {
    let v = match a.r#type {
        FLOAT => AttrValue::Float(f64::from(a.f)),
        INT => AttrValue::Int(a.i),
        STRING => AttrValue::Str(String::from_utf8_lossy(&a.s).into_owned()),
        FLOATS => AttrValue::Floats(a.floats.iter().map(|&f| f64::from(f)).collect()),
        INTS => AttrValue::Ints(a.ints.clone()),
        STRINGS => AttrValue::Strs(a.strings.iter().map(|s| String::from_utf8_lossy(s).into_owned()).collect()),
        _ => return None,
    };
    Some((a.name.clone(), v))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(op_type: &str) -> TypeFacts {
        let inits = HashMap::new();
        let node = NodeProto { op_type: op_type.into(), ..Default::default() };
        map_node(&node, &MapCtx { opset: 17, initializers: &inits, scalars: &HashMap::new() }).facts
    }

    #[test]
    fn the_type_table_holds_the_loader_facts() {
        assert_eq!(facts("BatchNormalization").statistics, &[3, 4]);
        assert_eq!(facts("Dropout").arguments_from, Some(1));
        assert_eq!(facts("Dropout").bool_outputs, &[1]);
        assert_eq!(facts("ConstantOfShape").arguments_from, Some(0));
        assert_eq!(facts("Range").arguments_from, Some(0));
        assert!(facts("NonZero").run_time && facts("Loop").run_time);
        assert!(!facts("Conv").run_time);
        assert_eq!(facts("Relu").own_rule, OwnRule::Yes);
        assert_eq!(facts("Cast").own_rule, OwnRule::No);
        assert_eq!(facts("Conv").own_rule, OwnRule::Conv);
        assert_eq!(facts("CumSum"), TypeFacts { arguments_from: Some(1), ..TypeFacts::own(OwnRule::Yes) });
        // Unknown types: every initializer a weight, shapes from tract.
        assert_eq!(facts("SomethingNew"), TypeFacts::TRACT);
    }

    /// A Constant node's bytes: output `out`, its `value` a TensorProto of
    /// `dims` and `data_type` with `payload` in field `field`.
    fn constant_node(out: &str, dims: &[u64], data_type: u64, field: u32, payload: &[u8]) -> Vec<u8> {
        use super::super::proto::{put_len_field, put_varint};
        let mut t = Vec::new();
        for &d in dims {
            put_varint(&mut t, 1 << 3);
            put_varint(&mut t, d);
        }
        put_varint(&mut t, 2 << 3);
        put_varint(&mut t, data_type);
        put_len_field(&mut t, field, payload);
        let mut attr = Vec::new();
        put_len_field(&mut attr, 1, b"value");
        put_len_field(&mut attr, 5, &t);
        let mut node = Vec::new();
        put_len_field(&mut node, 2, out.as_bytes());
        put_len_field(&mut node, 4, b"Constant");
        put_len_field(&mut node, 5, &attr);
        node
    }

    #[test]
    fn dropout_ratio_is_read_from_a_stored_scalar() {
        use prost::Message;
        // ratio 0.0 as raw_data (PyTorch's export), 0.1 as float_data, a
        // two-element tensor (not a scalar) and a double.
        let zero = constant_node("r0", &[], 1, 9, &0f32.to_le_bytes());
        let tenth = constant_node("r1", &[1], 1, 4, &0.1f32.to_le_bytes());
        let pair = constant_node("r2", &[2], 1, 9, &[0u8; 8]);
        let double = constant_node("r3", &[], 11, 9, &0.25f64.to_le_bytes());
        let decoded: Vec<(NodeProto, &[u8])> =
            [&zero, &tenth, &pair, &double].iter().map(|b| (NodeProto::decode(b.as_slice()).unwrap(), b.as_slice())).collect();
        let scalars = scalar_floats(&decoded, &[]);
        assert_eq!(scalars.get("r0"), Some(&0.0));
        assert_eq!(scalars.get("r1"), Some(&f64::from(0.1f32)));
        assert_eq!(scalars.get("r2"), None);
        assert_eq!(scalars.get("r3"), Some(&0.25));

        let inits = HashMap::new();
        let dropout = |ratio: &str, opset: i64| {
            let node = NodeProto {
                op_type: "Dropout".into(),
                input: vec!["x".into(), ratio.into()],
                output: vec!["y".into()],
                ..Default::default()
            };
            map_node(&node, &MapCtx { opset, initializers: &inits, scalars: &scalars }).op
        };
        assert_eq!(dropout("r0", 17), Op::Elementwise(E::Dropout { ratio: 0.0 }));
        assert_eq!(dropout("r1", 17), Op::Elementwise(E::Dropout { ratio: 0.1 }));
        // A ratio the file does not hold is taken as non-zero; before opset 12 the attribute rules.
        assert_eq!(dropout("elsewhere", 17), Op::Elementwise(E::Dropout { ratio: 0.5 }));
        assert_eq!(dropout("r0", 11), Op::Elementwise(E::Dropout { ratio: 0.5 }));
    }

    #[test]
    fn recurrent_ops_map_with_their_attributes() {
        let inits = HashMap::new();
        let scalars = HashMap::new();
        let map = |op_type: &str, attribute: Vec<AttributeProto>| {
            let node = NodeProto { op_type: op_type.into(), attribute, ..Default::default() };
            map_node(&node, &MapCtx { opset: 14, initializers: &inits, scalars: &scalars }).op
        };
        let int = |name: &str, i| AttributeProto { name: name.into(), i, r#type: 2, ..Default::default() };
        let string = |name: &str, s: &str| AttributeProto { name: name.into(), s: s.as_bytes().to_vec(), r#type: 3, ..Default::default() };
        assert_eq!(
            map("LSTM", vec![int("hidden_size", 512)]),
            Op::Sequence(SequenceParams { cell: RnnCell::Lstm, hidden: 512, directions: 1, batch_first: false })
        );
        assert_eq!(
            map("GRU", vec![int("hidden_size", 64), string("direction", "bidirectional"), int("layout", 1)]),
            Op::Sequence(SequenceParams { cell: RnnCell::Gru, hidden: 64, directions: 2, batch_first: true })
        );
        assert_eq!(map("RNN", vec![int("hidden_size", 8), string("direction", "reverse")]).name(), "RNN");
    }

    #[test]
    fn cumsum_maps_and_its_axis_is_an_argument() {
        let inits = HashMap::new();
        let node = NodeProto {
            op_type: "CumSum".into(),
            input: vec!["x".into(), "axis".into()],
            output: vec!["y".into()],
            ..Default::default()
        };
        let m = map_node(&node, &MapCtx { opset: 14, initializers: &inits, scalars: &HashMap::new() });
        assert_eq!(m.op, Op::Reduce(ReduceOp::CumSum));
        assert_eq!(m.op.name(), "CumSum");
        assert_eq!(m.facts.arguments_from, Some(1));
        assert_eq!(m.facts.own_rule, OwnRule::Yes);
    }
}
