//! ONNX op types and attributes → nnmem's operator vocabulary (`Op`), and
//! everything else the loader knows per op type (`TypeFacts`): which inputs
//! are operator arguments rather than weights, which hold running statistics,
//! whose outputs are sized at run time, and when nnmem's own shape rule is
//! exactly ONNX's. This match is the one table of ONNX op types: one arm per
//! type; ONNX Runtime's contrib ops (domain com.microsoft) have a second
//! table of the same kind. Ops of other domains (ai.onnx.ml, …) are outside
//! the vocabulary.
//!
//! Attributes are read with the defaults the ONNX operator specification
//! gives, and by the opset the model imports where ONNX moved an attribute
//! to an input (Squeeze/Unsqueeze/Split axes at 13, Reduce* axes at 13/18,
//! Slice at 10, Pad at 11, Reshape at 5, TopK's k at 10, Resize's inputs at
//! 11, Upsample's scales at 9). No shape arithmetic happens here (the shape
//! rules live in `ops/`; `rules.rs` applies them, tract covers the rest).
//! Weight dims (Conv out channels, Gemm out features) are read from the
//! initializer headers when the weight is an initializer; small attribute
//! tensors (a Constant's value, ConstantOfShape's fill) are read from the
//! node's bytes.

use std::collections::HashMap;

use super::proto::{AttributeProto, NodeProto, TensorProto, Wire};
use crate::graph::{AttrValue, DType};
use crate::ops::detection::{DetectionOp, RoiPoolParams};
use crate::ops::{AttentionOp, LossOp, QuantOp};
use crate::ops::{
    Activation, AspectPolicy, AutoPad, BinaryKind, CompareKind, ConstantOp, ConvOp, ConvParams, DenseOp, DenseParams,
    EltwiseKind, ElementwiseOp as E, IndexOp, LayoutOp as L, LrnParams, NormOp, Op, PoolMethod, PoolParams, ReduceKind,
    ReduceOp, ResizeOp, RnnCell, Rounding, ScaledParams, SequenceParams, SliceAttrs, StoredValue, UnaryKind, UnknownOp, Value, Window,
    MAX_VALUE_ELEMS,
};

/// What the mapper may look at besides the node itself.
pub struct MapCtx<'a> {
    /// Default-domain opset the model imports.
    pub opset: i64,
    pub initializers: &'a super::names::NameMap<'a, &'a TensorProto>,
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

/// Whether nnmem's own shape rule (the op's `infer` in `ops/`) is exactly
/// ONNX's for this node, decided per node from its attributes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OwnRule {
    /// No: the op is outside the vocabulary, or this form of it (an
    /// attribute the rule does not model) is left to tract.
    No,
    /// Yes: the rule applies; it still says so when a value it needs is not
    /// known, and then the output stays unknown (or comes from tract).
    Yes,
}

/// What the ONNX loader knows about an op type besides its `Op`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TypeFacts {
    /// Inputs from this position on are operator arguments (a ratio, scales,
    /// pads), so a float initializer read only there is a constant, not a weight.
    pub arguments_from: Option<usize>,
    /// Input positions that hold running statistics, not learned weights.
    pub statistics: &'static [usize],
    /// Input positions where an integer initializer is a stored weight (a
    /// quantised graph's int8/int4 tensors and zero points), counted as a
    /// parameter at its stored element size.
    pub stored_weights: &'static [usize],
    /// Output extents depend on data or control flow.
    pub run_time: bool,
    pub own_rule: OwnRule,
}

impl TypeFacts {
    /// Nothing special: every initializer input a weight, shapes from tract.
    const TRACT: TypeFacts =
        TypeFacts { arguments_from: None, statistics: &[], stored_weights: &[], run_time: false, own_rule: OwnRule::No };

    const fn own(own_rule: OwnRule) -> TypeFacts {
        TypeFacts { own_rule, ..TypeFacts::TRACT }
    }

    /// The own rule applies; inputs from `from` on are arguments.
    const fn args(from: usize) -> TypeFacts {
        TypeFacts { arguments_from: Some(from), ..TypeFacts::own(OwnRule::Yes) }
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
/// type outside the vocabulary, or of another domain than ONNX's own,
/// becomes `Op::Unknown` (the caller warns once per type). `bytes` is the
/// node as stored (attribute tensors are read from it: Constant values,
/// ConstantOfShape's fill).
pub fn map_node(node: &NodeProto, bytes: &[u8], ctx: &MapCtx<'_>) -> Mapped {
    let mut attrs: Vec<(String, AttrValue)> = node.attribute.iter().filter_map(attr_value).collect();
    if node.op_type == "Constant" {
        attrs.extend(constant_value_shape(node));
    }
    let (op, facts) = if node.domain.is_empty() || node.domain == "ai.onnx" {
        map_default_domain(node, bytes, ctx)
    } else if node.domain == "com.microsoft" {
        map_microsoft_domain(node, ctx)
    } else {
        (unknown(node), TypeFacts::TRACT)
    };
    Mapped { op, attrs, facts }
}

fn unknown(node: &NodeProto) -> Op {
    let name = if node.domain.is_empty() || node.domain == "ai.onnx" {
        node.op_type.to_string()
    } else {
        format!("{}:{}", node.domain, node.op_type)
    };
    Op::Unknown(UnknownOp { type_name: name })
}

/// The table of ONNX op types (default domain), one arm per type.
fn map_default_domain(node: &NodeProto, bytes: &[u8], ctx: &MapCtx<'_>) -> (Op, TypeFacts) {
    let a = Attrs(&node.attribute);
    let opset = ctx.opset;
    let has_input = |i: usize| node.input.get(i).is_some_and(|s| !s.is_empty());
    use Activation as A;
    let act = |a: Activation| Op::Elementwise(E::Activation(a));
    let un = |k: UnaryKind| Op::Elementwise(E::Unary(k));
    let exact = TypeFacts::own(OwnRule::Yes);
    let tract = TypeFacts::TRACT;
    let own_if = |ok: bool, facts: TypeFacts| if ok { facts } else { TypeFacts { own_rule: OwnRule::No, ..facts } };
    let dtype_attr = |name: &str| a.get(name).map(|x| dtype_of(x.i as i32));
    match node.op_type.as_str() {
        "Conv" => {
            let w = ctx.init_dims(node, 1).unwrap_or_default();
            let out_channels = w.first().copied().unwrap_or(0);
            let (window, ok) = window(&a, &w.get(2..).unwrap_or(&[]).to_vec());
            let p = conv_params(&a, window, out_channels, has_input(2));
            (Op::Conv(ConvOp::Forward(Box::new(p))), own_if(ok, exact))
        }
        "ConvTranspose" => {
            let w = ctx.init_dims(node, 1).unwrap_or_default();
            let group = a.int("group", 1).max(1) as u64;
            let out_channels = w.get(1).copied().unwrap_or(0).saturating_mul(group);
            let (window, ok) = window(&a, &w.get(2..).unwrap_or(&[]).to_vec());
            let same = window.auto_pad != AutoPad::Explicit;
            let mut p = conv_params(&a, window, out_channels, has_input(2));
            p.output_pad = a.ints("output_padding").iter().map(|&v| v.max(0) as u64).collect();
            // An explicit output_shape (or SAME padding) fixes the extent another way.
            let own = ok && !same && a.get("output_shape").is_none() && a.ints("output_padding").iter().all(|&v| v >= 0);
            (Op::Conv(ConvOp::Transposed(Box::new(p))), own_if(own, exact))
        }
        // Inputs: X, W, offset, B, mask.
        "DeformConv" => {
            let w = ctx.init_dims(node, 1).unwrap_or_default();
            let (window, ok) = window(&a, &w.get(2..).unwrap_or(&[]).to_vec());
            let p = conv_params(&a, window, w.first().copied().unwrap_or(0), has_input(3));
            (Op::Conv(ConvOp::Deformable(Box::new(p))), own_if(ok, exact))
        }
        "MaxPool" | "AveragePool" | "LpPool" => {
            let method = match node.op_type.as_str() {
                "MaxPool" => PoolMethod::Max,
                "AveragePool" => PoolMethod::Average,
                _ => PoolMethod::Lp,
            };
            let ceil = a.int("ceil_mode", 0) != 0;
            let (window, ok) = window(&a, &[]);
            let op = Op::Pool(Box::new(PoolParams {
                method,
                window,
                rounding: if ceil { Rounding::Ceil } else { Rounding::Floor },
                global: false,
                clip_last_window: ceil,
            }));
            (op, own_if(ok && !a.ints("kernel_shape").is_empty(), exact))
        }
        "GlobalMaxPool" | "GlobalAveragePool" | "GlobalLpPool" => {
            let method = match node.op_type.as_str() {
                "GlobalMaxPool" => PoolMethod::Max,
                "GlobalAveragePool" => PoolMethod::Average,
                _ => PoolMethod::Lp,
            };
            let op = Op::Pool(Box::new(PoolParams {
                method,
                window: Window::symmetric(Vec::new(), Vec::new(), Vec::new(), Vec::new()),
                rounding: Rounding::Floor,
                global: true,
                clip_last_window: false,
            }));
            (op, exact)
        }
        "Gemm" => {
            // B is (K, N), or (N, K) with transB: Caffe's (out, K) layout is transB = 1.
            let trans_b = a.int("transB", 0) != 0;
            let b = ctx.init_dims(node, 1).unwrap_or_default();
            let out_features = if trans_b { b.first() } else { b.get(1) }.copied().unwrap_or(0);
            let p = DenseParams { out_features, axis: 1, bias: has_input(2), transpose: !trans_b };
            // A transposed A is not what the dense rule computes.
            (Op::Dense(DenseOp::Linear(p)), own_if(a.int("transA", 0) == 0, exact))
        }
        "MatMul" => match ctx.init_dims(node, 1) {
            // A weight matrix (K, N) applied to the last axis: a dense layer.
            Some(b) if b.len() == 2 => {
                let p = DenseParams { out_features: b[1], axis: -1, bias: false, transpose: true };
                (Op::Dense(DenseOp::Linear(p)), exact)
            }
            _ => (Op::Dense(DenseOp::MatMul), exact),
        },
        "Einsum" => match a.string("equation") {
            Some(equation) => (Op::Dense(DenseOp::Einsum { equation }), exact),
            None => (unknown(node), tract),
        },
        "Det" => (Op::Dense(DenseOp::Det), exact),
        "Relu" => (act(A::Relu { negative_slope: 0.0 }), exact),
        "LeakyRelu" => (act(A::Relu { negative_slope: a.float("alpha", 0.01) }), exact),
        "Sigmoid" => (act(A::Sigmoid), exact),
        "Tanh" => (act(A::Tanh), exact),
        "Abs" => (act(A::AbsVal), exact),
        "Exp" => (act(A::Exp), exact),
        "Log" => (act(A::Log), exact),
        "Elu" | "Selu" | "Celu" => (act(A::Elu), exact),
        // min and max are inputs from opset 11.
        "Clip" => (act(A::Clip), TypeFacts::args(1)),
        "Gelu" => (act(A::Gelu), exact),
        "HardSigmoid" => (act(A::HardSigmoid), exact),
        "HardSwish" => (act(A::HardSwish), exact),
        "Swish" => (act(A::Silu), exact),
        "Softplus" => (act(A::Softplus), exact),
        "Erf" => (act(A::Erf), exact),
        "Sqrt" => (act(A::Sqrt), exact),
        "Reciprocal" => (act(A::Reciprocal), exact),
        "Neg" => (act(A::Neg), exact),
        "Identity" => (act(A::Identity), exact),
        "Floor" => (un(UnaryKind::Floor), exact),
        "Ceil" => (un(UnaryKind::Ceil), exact),
        "Round" => (un(UnaryKind::Round), exact),
        "Sign" => (un(UnaryKind::Sign), exact),
        "Cos" => (un(UnaryKind::Cos), exact),
        "Sin" => (un(UnaryKind::Sin), exact),
        "Tan" => (un(UnaryKind::Tan), exact),
        "Acos" => (un(UnaryKind::Acos), exact),
        "Asin" => (un(UnaryKind::Asin), exact),
        "Atan" => (un(UnaryKind::Atan), exact),
        "Sinh" => (un(UnaryKind::Sinh), exact),
        "Cosh" => (un(UnaryKind::Cosh), exact),
        "Asinh" => (un(UnaryKind::Asinh), exact),
        "Acosh" => (un(UnaryKind::Acosh), exact),
        "Atanh" => (un(UnaryKind::Atanh), exact),
        "IsNaN" => (un(UnaryKind::IsNaN), exact),
        "IsInf" => (un(UnaryKind::IsInf), exact),
        "BitwiseNot" => (un(UnaryKind::BitwiseNot), exact),
        "Softsign" => (un(UnaryKind::Softsign), exact),
        "Mish" => (un(UnaryKind::Mish), exact),
        "ThresholdedRelu" => (un(UnaryKind::ThresholdedRelu), exact),
        "Shrink" => (un(UnaryKind::Shrink), exact),
        // k is input 1.
        "Trilu" => (un(UnaryKind::Trilu { upper: a.int("upper", 1) != 0 }), TypeFacts::args(1)),
        "Hardmax" => (un(UnaryKind::Hardmax), exact),
        "LpNormalization" => (un(UnaryKind::LpNorm), exact),
        "MeanVarianceNormalization" => (un(UnaryKind::MeanVarianceNorm), exact),
        "RandomNormalLike" | "RandomUniformLike" | "Bernoulli" => match dtype_attr("dtype") {
            Some(None) => (unknown(node), tract),
            d => (un(UnaryKind::Random { dtype: d.flatten() }), exact),
        },
        "BitCast" => match dtype_attr("to") {
            Some(Some(to)) => (un(UnaryKind::BitCast { to }), exact),
            _ => (unknown(node), tract),
        },
        "Cast" => match dtype_attr("to") {
            Some(Some(to)) => (Op::Elementwise(E::Cast { to: Some(to) }), exact),
            _ => (Op::Elementwise(E::Cast { to: None }), tract),
        },
        "CastLike" => (Op::Elementwise(E::Cast { to: None }), exact),
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
            (Op::Elementwise(E::Dropout { ratio }), TypeFacts::args(1))
        }
        "Add" | "Sum" => (eltwise(EltwiseKind::Sum), exact),
        "Mean" => (eltwise(EltwiseKind::Mean), exact),
        "Sub" => (eltwise(EltwiseKind::Sub), exact),
        "Mul" => (eltwise(EltwiseKind::Prod), exact),
        "Div" => (eltwise(EltwiseKind::Div), exact),
        "Max" => (eltwise(EltwiseKind::Max), exact),
        "Min" => (eltwise(EltwiseKind::Min), exact),
        "Pow" => (Op::Elementwise(E::Binary(BinaryKind::Pow)), exact),
        "Mod" => (Op::Elementwise(E::Binary(BinaryKind::Mod { fmod: a.int("fmod", 0) != 0 })), exact),
        "BitShift" => match a.string("direction").as_deref() {
            Some("LEFT") => (Op::Elementwise(E::Binary(BinaryKind::BitShift { left: true })), exact),
            Some("RIGHT") => (Op::Elementwise(E::Binary(BinaryKind::BitShift { left: false })), exact),
            _ => (unknown(node), tract),
        },
        "SwiGLU" => (Op::Elementwise(E::Binary(BinaryKind::SwiGlu)), exact),
        "BitwiseAnd" => (Op::Elementwise(E::Binary(BinaryKind::BitAnd)), exact),
        "BitwiseOr" => (Op::Elementwise(E::Binary(BinaryKind::BitOr)), exact),
        "BitwiseXor" => (Op::Elementwise(E::Binary(BinaryKind::BitXor)), exact),
        "Equal" => (compare(CompareKind::Equal), exact),
        "Less" => (compare(CompareKind::Less), exact),
        "LessOrEqual" => (compare(CompareKind::LessOrEqual), exact),
        "Greater" => (compare(CompareKind::Greater), exact),
        "GreaterOrEqual" => (compare(CompareKind::GreaterOrEqual), exact),
        "And" => (compare(CompareKind::And), exact),
        "Or" => (compare(CompareKind::Or), exact),
        "Xor" => (compare(CompareKind::Xor), exact),
        "Not" => (compare(CompareKind::Not), exact),
        "Where" => (Op::Elementwise(E::Where), exact),
        "Concat" => (Op::Layout(L::Concat { axis: a.int("axis", 1) }), own_if(a.get("axis").is_some() || opset < 4, exact)),
        "Softmax" | "LogSoftmax" => {
            // Opset 13 changed the default axis from 1 (flattening) to -1.
            (Op::Elementwise(E::Softmax { axis: a.int("axis", if opset < 13 { 1 } else { -1 }) }), exact)
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
            // Mean and InvStdDev are float32 with the default stash_type 1.
            let own = a.int("stash_type", 1) == 1;
            (Op::Norm(NormOp::LayerNorm { axis: a.int("axis", -1), eps: a.float("epsilon", 1e-5) }), own_if(own, exact))
        }
        "InstanceNormalization" => (Op::Norm(NormOp::GroupNorm { groups: None, eps: a.float("epsilon", 1e-5) }), exact),
        "GroupNormalization" => {
            let groups = Some(a.int("num_groups", 1).max(1) as u64);
            (Op::Norm(NormOp::GroupNorm { groups, eps: a.float("epsilon", 1e-5) }), exact)
        }
        "Flatten" => (Op::Layout(L::Flatten2d { axis: a.int("axis", 1) }), exact),
        // The target is the `shape` attribute before opset 5, input 1 after.
        "Reshape" if opset < 5 => {
            (Op::Layout(L::ReshapeTo { dims: Some(a.ints("shape").to_vec()), allow_zero: false }), exact)
        }
        "Reshape" => (Op::Layout(L::ReshapeTo { dims: None, allow_zero: a.int("allowzero", 0) != 0 }), TypeFacts::args(1)),
        "Transpose" => match a.get("perm") {
            Some(p) if p.ints.iter().any(|&x| x < 0) => (unknown(node), tract),
            Some(p) => (Op::Layout(L::Transpose { perm: Some(p.ints.iter().map(|&x| x as usize).collect()) }), exact),
            None => (Op::Layout(L::Transpose { perm: None }), exact),
        },
        // Axes are an attribute before opset 13, input 1 after.
        "Squeeze" => (Op::Layout(L::Squeeze { axes: a.ints("axes").to_vec() }), TypeFacts::args(1)),
        "Unsqueeze" => (Op::Layout(L::Unsqueeze { axes: a.ints("axes").to_vec() }), TypeFacts::args(1)),
        // Sizes are an attribute before opset 13, input 1 after; num_outputs from 18.
        "Split" => {
            let num_outputs = a.get("num_outputs").map(|x| x.i.max(0) as u64);
            let op = L::SplitParts { axis: a.int("axis", 0), split: a.ints("split").to_vec(), num_outputs };
            (Op::Layout(op), TypeFacts::args(1))
        }
        // starts/ends/axes are attributes before opset 10, inputs after.
        "Slice" if opset < 10 => {
            let attrs = SliceAttrs { starts: a.ints("starts").to_vec(), ends: a.ints("ends").to_vec(), axes: a.ints("axes").to_vec() };
            (Op::Layout(L::StridedSlice { attrs: Some(attrs) }), exact)
        }
        "Slice" => (Op::Layout(L::StridedSlice { attrs: None }), TypeFacts::args(1)),
        // pads (`paddings` in opset 1) are an attribute before opset 11; then
        // pads, the fill value and (opset 18) axes are inputs.
        "Pad" if opset < 11 => {
            let pads = a.get("pads").or_else(|| a.get("paddings")).map(|p| p.ints.clone()).unwrap_or_default();
            (Op::Layout(L::Pad { pads: Some(pads) }), exact)
        }
        "Pad" => (Op::Layout(L::Pad { pads: None }), TypeFacts::args(1)),
        "Resize" | "Upsample" => (Op::Resize(Box::new(ResizeOp::Scaled(scaled_params(node, &a, opset)))), TypeFacts::args(1)),
        "Expand" => (Op::Layout(L::Expand), TypeFacts::args(1)),
        // Tile before opset 6 took tiles and axis inputs.
        "Tile" if opset >= 6 => (Op::Layout(L::TileBy), TypeFacts::args(1)),
        "Gather" => (Op::Layout(L::Gather { axis: a.int("axis", 0) }), exact),
        "GatherElements" => (Op::Index(IndexOp::GatherElements { axis: a.int("axis", 0) }), exact),
        "GatherND" => (Op::Index(IndexOp::GatherNd { batch_dims: a.int("batch_dims", 0).max(0) as u64 }), exact),
        // TensorScatter (opset 24) writes updates into a cache: the cache's shape.
        "ScatterND" | "ScatterElements" | "Scatter" | "TensorScatter" => (Op::Index(IndexOp::Scatter), exact),
        "DepthToSpace" => (Op::Layout(L::DepthToSpace { block: a.int("blocksize", 0).max(0) as u64 }), exact),
        "SpaceToDepth" => (Op::Layout(L::SpaceToDepth { block: a.int("blocksize", 0).max(0) as u64 }), exact),
        "CenterCropPad" => (Op::Layout(L::CenterCropPad { axes: a.ints("axes").to_vec() }), TypeFacts::args(1)),
        "Shape" => {
            let end = a.get("end").map(|x| x.i);
            (Op::Constant(ConstantOp::ShapeOf { start: a.int("start", 0), end }), exact)
        }
        "Size" => (Op::Constant(ConstantOp::Size), exact),
        "Constant" => (Op::Constant(ConstantOp::Stored(stored_value(node, bytes))), exact),
        // Input 0 is the shape to fill; the fill is a one-element tensor attribute (0.0f by default).
        "ConstantOfShape" => match fill_value(node, bytes) {
            Some((fill, dtype)) => (Op::Constant(ConstantOp::Filled { fill, dtype }), TypeFacts::args(0)),
            None => (unknown(node), TypeFacts { arguments_from: Some(0), ..tract }),
        },
        // start, limit and delta are arguments.
        "Range" => (Op::Constant(ConstantOp::Range), TypeFacts::args(0)),
        "EyeLike" => match dtype_attr("dtype") {
            Some(None) => (unknown(node), tract),
            d => (Op::Constant(ConstantOp::EyeLike { dtype: d.flatten() }), exact),
        },
        "RandomNormal" | "RandomUniform" => {
            let dims: Option<Vec<u64>> = a.ints("shape").iter().map(|&d| u64::try_from(d).ok()).collect();
            match (dims, dtype_attr("dtype").unwrap_or(Some(DType::F32))) {
                (Some(dims), Some(dtype)) => (Op::Constant(ConstantOp::Random { dims, dtype }), exact),
                _ => (unknown(node), tract),
            }
        }
        "ReduceMean" | "ReduceSum" | "ReduceMax" | "ReduceMin" | "ReduceProd" | "ReduceL1" | "ReduceL2"
        | "ReduceLogSumExp" | "ReduceSumSquare" | "ReduceLogSum" => {
            let kind = match node.op_type.as_str() {
                "ReduceMean" => ReduceKind::Mean,
                "ReduceSum" => ReduceKind::Sum,
                "ReduceMax" => ReduceKind::Max,
                "ReduceMin" => ReduceKind::Min,
                "ReduceProd" => ReduceKind::Prod,
                "ReduceL1" => ReduceKind::L1,
                "ReduceL2" => ReduceKind::L2,
                "ReduceLogSumExp" => ReduceKind::LogSumExp,
                "ReduceLogSum" => ReduceKind::LogSum,
                _ => ReduceKind::SumSquare,
            };
            // Newer opsets pass the axes as input 1 (ReduceSum from 13, the
            // others from 18); the attribute is then absent.
            let op = ReduceOp::Axes {
                kind,
                axes: a.ints("axes").to_vec(),
                keep_dims: a.int("keepdims", 1) != 0,
                noop_with_empty_axes: a.int("noop_with_empty_axes", 0) != 0,
            };
            (Op::Reduce(op), TypeFacts::args(1))
        }
        "ArgMax" | "ArgMin" => {
            let op = ReduceOp::ArgExtreme { max: node.op_type == "ArgMax", axis: a.int("axis", 0), keep_dims: a.int("keepdims", 1) != 0 };
            (Op::Reduce(op), exact)
        }
        // The axis is input 1; exclusive and reverse leave the shape alone.
        // Outputs by position: an unnamed Y_h still leaves Y_c third.
        "LSTM" => (Op::Sequence(sequence_params(&a, node, ctx, RnnCell::Lstm)), exact),
        "GRU" => (Op::Sequence(sequence_params(&a, node, ctx, RnnCell::Gru)), exact),
        "RNN" => (Op::Sequence(sequence_params(&a, node, ctx, RnnCell::Rnn)), exact),
        "CumSum" => (Op::Reduce(ReduceOp::CumSum), TypeFacts::args(1)),
        // k is an attribute in opset 1, input 1 from opset 10.
        "TopK" => {
            let k = if opset < 10 { Some(a.int("k", 0).max(0) as u64) } else { None };
            (Op::Index(IndexOp::TopK { axis: a.int("axis", -1), k }), TypeFacts::args(1))
        }
        "NonZero" => (Op::Index(IndexOp::NonZero), TypeFacts { run_time: true, ..exact }),
        "Compress" => {
            let axis = a.get("axis").map(|x| x.i);
            (Op::Index(IndexOp::Compress { axis }), TypeFacts { run_time: true, ..TypeFacts::args(1) })
        }
        "OneHot" => (Op::Index(IndexOp::OneHot { axis: a.int("axis", -1) }), TypeFacts::args(1)),
        "Unique" => (Op::Index(IndexOp::Unique), TypeFacts { run_time: true, ..exact }),
        "NonMaxSuppression" => (Op::Index(IndexOp::NonMaxSuppression), TypeFacts { run_time: true, ..TypeFacts::args(2) }),
        "RoiAlign" => {
            let p = RoiPoolParams { pooled_h: a.int("output_height", 1).max(0) as u64, pooled_w: a.int("output_width", 1).max(0) as u64 };
            (Op::Detection(DetectionOp::RoiAlign(p)), exact)
        }
        "MaxRoiPool" => match a.ints("pooled_shape") {
            [h, w] if *h >= 0 && *w >= 0 => {
                (Op::Detection(DetectionOp::RoiPool(RoiPoolParams { pooled_h: *h as u64, pooled_w: *w as u64 })), exact)
            }
            _ => (unknown(node), tract),
        },
        "RMSNormalization" => {
            // The statistics are float32 with the default stash_type 1.
            (Op::Norm(NormOp::RmsNorm { axis: a.int("axis", -1) }), own_if(a.int("stash_type", 1) == 1, exact))
        }
        // ORT registers it in the default domain.
        "SimplifiedLayerNormalization" => (Op::Norm(NormOp::RmsNorm { axis: a.int("axis", -1) }), exact),
        // Inputs: Q, K, V, attn_mask, past_key, past_value (, nonpad_kv_seqlen).
        "Attention" => {
            let heads = |name: &str| a.get(name).and_then(|x| u64::try_from(x.i).ok()).filter(|&h| h > 0);
            (Op::Attention(AttentionOp::Onnx { q_heads: heads("q_num_heads"), kv_heads: heads("kv_num_heads") }), exact)
        }
        // Inputs: X, cos_cache, sin_cache, position_ids: the tables are constants.
        "RotaryEmbedding" => (Op::Attention(AttentionOp::Rotary), TypeFacts::args(1)),
        // Class weights (input 2) are arguments, not learned.
        "NegativeLogLikelihoodLoss" | "SoftmaxCrossEntropyLoss" => {
            let softmax = node.op_type == "SoftmaxCrossEntropyLoss";
            let none = a.string("reduction").as_deref() == Some("none");
            (Op::Loss(LossOp::ClassLoss { softmax, reduction_none: none }), TypeFacts::args(2))
        }
        // An initializer x is a stored (quantised) weight, its scale and zero
        // point with it; a data x's scale and zero point are arguments.
        "DequantizeLinear" => {
            let output = match dtype_attr("output_dtype") {
                Some(Some(d)) if a.int("output_dtype", 0) != 0 => Some(d),
                _ => None,
            };
            let op = Op::Quant(QuantOp::Dequantize { output });
            if ctx.initializers.contains_key(node.input.first().map_or("", |x| x.as_str())) {
                (op, TypeFacts { stored_weights: &[0, 2], ..exact })
            } else {
                (op, TypeFacts::args(1))
            }
        }
        "QuantizeLinear" => {
            let output = match dtype_attr("output_dtype") {
                Some(Some(d)) if a.int("output_dtype", 0) != 0 => Some(d),
                _ => None,
            };
            (Op::Quant(QuantOp::Quantize { output }), TypeFacts::args(1))
        }
        "DynamicQuantizeLinear" => (Op::Quant(QuantOp::DynamicQuantize), exact),
        // Output extents depend on data or control flow.
        "If" | "Loop" | "Scan" | "SequenceAt" | "SplitToSequence" | "ConcatFromSequence" => {
            (unknown(node), TypeFacts { run_time: true, ..tract })
        }
        _ => (unknown(node), tract),
    }
}

/// The table of ONNX Runtime's contrib ops (domain com.microsoft), one arm per type.
fn map_microsoft_domain(node: &NodeProto, ctx: &MapCtx<'_>) -> (Op, TypeFacts) {
    let a = Attrs(&node.attribute);
    let exact = TypeFacts::own(OwnRule::Yes);
    let count = |name: &str| a.get(name).and_then(|x| u64::try_from(x.i).ok()).filter(|&h| h > 0);
    let gelu = Op::Elementwise(E::Activation(Activation::Gelu));
    match node.op_type.as_str() {
        // Inputs: A, B (packed blocks), scales, zero_points, g_idx, bias.
        // The packed blocks and zero points are the stored weights; g_idx
        // (an index table) stays a constant.
        "MatMulNBits" => match (count("K"), count("N")) {
            (Some(k), Some(n)) => (Op::Quant(QuantOp::MatMulNBits { k, n }), TypeFacts { stored_weights: &[1, 3], ..exact }),
            _ => (unknown(node), TypeFacts { stored_weights: &[1, 3], ..TypeFacts::TRACT }),
        },
        // Inputs: query, key, value, past_key, past_value, then seqlens_k,
        // total_sequence_length, cos/sin caches, position ids, attention
        // bias: arguments.
        "GroupQueryAttention" => match (count("num_heads"), count("kv_num_heads")) {
            (Some(heads), Some(kv_heads)) => (Op::Attention(AttentionOp::GroupQuery { heads, kv_heads }), TypeFacts::args(5)),
            _ => (unknown(node), TypeFacts::TRACT),
        },
        // Inputs: query, key, value, bias (learned), masks, past K/V, ….
        "MultiHeadAttention" => match count("num_heads") {
            Some(heads) => (Op::Attention(AttentionOp::MultiHead { heads }), TypeFacts::args(4)),
            None => (unknown(node), TypeFacts::TRACT),
        },
        // Inputs: input, position_ids, cos_cache, sin_cache.
        "RotaryEmbedding" => (Op::Attention(AttentionOp::Rotary), TypeFacts::args(1)),
        "SkipLayerNormalization" => (Op::Norm(NormOp::SkipNorm { rms: false }), exact),
        "SkipSimplifiedLayerNormalization" => (Op::Norm(NormOp::SkipNorm { rms: true }), exact),
        "SimplifiedLayerNormalization" => (Op::Norm(NormOp::RmsNorm { axis: a.int("axis", -1) }), exact),
        // X (+ bias): a GELU of X's shape; x·σ(αx) for QuickGelu.
        "FastGelu" | "BiasGelu" | "Gelu" => (gelu, exact),
        "QuickGelu" => (Op::Elementwise(E::Activation(Activation::Silu)), exact),
        _ => {
            let _ = ctx;
            (unknown(node), TypeFacts::TRACT)
        }
    }
}

/// nnmem's dtype for an attribute's element type number.
fn dtype_of(t: i32) -> Option<DType> {
    super::proto::dtype_of(t)
}

/// Resize (opsets 10, 11+) and Upsample (7: scales attribute; 9: input).
fn scaled_params(node: &NodeProto, a: &Attrs<'_>, opset: i64) -> ScaledParams {
    let upsample = node.op_type == "Upsample";
    let (scales_input, sizes_input) = match (upsample, opset) {
        (true, o) if o < 9 => (None, None),
        (true, _) | (false, ..=10) => (Some(1), None),
        (false, _) => (Some(2), Some(3)),
    };
    let policy = match a.string("keep_aspect_ratio_policy").as_deref() {
        Some("not_larger") => AspectPolicy::NotLarger,
        Some("not_smaller") => AspectPolicy::NotSmaller,
        _ => AspectPolicy::Stretch,
    };
    ScaledParams {
        mode: a.string("mode").unwrap_or_else(|| "nearest".into()),
        scales: if scales_input.is_none() { a.floats("scales").to_vec() } else { Vec::new() },
        scales_input,
        sizes_input,
        axes: a.ints("axes").to_vec(),
        policy,
        tf_crop_and_resize: a.string("coordinate_transformation_mode").as_deref() == Some("tf_crop_and_resize"),
    }
}

/// A Constant's dims, type and (when small) elements, from whichever
/// `value*` attribute it carries.
fn stored_value(node: &NodeProto, bytes: &[u8]) -> Option<StoredValue> {
    let attr = node.attribute.iter().find(|x| x.name.starts_with("value"))?;
    match attr.name.as_str() {
        "value" => {
            let t = attr.t.as_ref()?;
            let dims: Option<Vec<u64>> = t.dims.iter().map(|&d| u64::try_from(d).ok()).collect();
            let dtype = dtype_of(t.data_type)?;
            let value = super::proto::attribute_bytes(bytes, "value")
                .and_then(|ab| super::proto::len_field(ab, 5))
                .and_then(|tb| super::proto::tensor_elements(tb, MAX_VALUE_ELEMS));
            Some(StoredValue { dims: dims?, dtype, value })
        }
        "value_float" => Some(StoredValue { dims: vec![], dtype: DType::F32, value: Some(Value::Float(vec![f64::from(attr.f)])) }),
        "value_int" => Some(StoredValue { dims: vec![], dtype: DType::I64, value: Some(Value::Int(vec![attr.i])) }),
        "value_floats" => Some(StoredValue {
            dims: vec![attr.floats.len() as u64],
            dtype: DType::F32,
            value: Some(Value::Float(attr.floats.iter().map(|&f| f64::from(f)).collect())),
        }),
        "value_ints" => {
            Some(StoredValue { dims: vec![attr.ints.len() as u64], dtype: DType::I64, value: Some(Value::Int(attr.ints.clone())) })
        }
        "value_string" => Some(StoredValue { dims: vec![], dtype: DType::String, value: None }),
        "value_strings" => Some(StoredValue { dims: vec![attr.strings.len() as u64], dtype: DType::String, value: None }),
        _ => None,
    }
}

/// ConstantOfShape's fill: its `value` attribute (one element), else 0.0f.
fn fill_value(node: &NodeProto, bytes: &[u8]) -> Option<(Value, DType)> {
    match node.attribute.iter().find(|x| x.name == "value") {
        None => Some((Value::Float(vec![0.0]), DType::F32)),
        Some(attr) => {
            let t = attr.t.as_ref()?;
            let dtype = dtype_of(t.data_type)?;
            let value = super::proto::attribute_bytes(bytes, "value")
                .and_then(|ab| super::proto::len_field(ab, 5))
                .and_then(|tb| super::proto::tensor_elements(tb, 1))
                .filter(|v| v.len() == 1)?;
            Some((value, dtype))
        }
    }
}

fn eltwise(kind: EltwiseKind) -> Op {
    Op::Elementwise(E::Eltwise { kind, broadcast: true })
}

fn compare(kind: CompareKind) -> Op {
    Op::Elementwise(E::Compare(kind))
}

fn conv_params(a: &Attrs<'_>, window: Window, out_channels: u64, bias: bool) -> ConvParams {
    ConvParams { out_channels, window, group: a.int("group", 1).max(1) as u64, depthwise: false, bias, axis: 1, output_pad: Vec::new() }
}

/// Kernel, strides, pads (`[b1..bn, e1..en]`), dilations and `auto_pad`
/// with ONNX defaults, and whether the attributes are consistent (one value
/// per axis, no negative value, a known `auto_pad`). Without a kernel (a
/// weight that is not an initializer and no `kernel_shape`), the per-axis
/// attributes are kept as given and the rule completes them from the
/// weight's dims (`Window::with_kernel`).
fn window(a: &Attrs<'_>, kernel_fallback: &[u64]) -> (Window, bool) {
    let raw = |name: &str| a.ints(name);
    let u = |v: &[i64]| v.iter().map(|&x| x.max(0) as u64).collect::<Vec<u64>>();
    let mut ok = ["kernel_shape", "strides", "pads", "dilations"].iter().all(|n| raw(n).iter().all(|&x| x >= 0));
    let kernel = match raw("kernel_shape") {
        k if !k.is_empty() => u(k),
        _ => kernel_fallback.to_vec(),
    };
    let n = kernel.len();
    let per_axis = |v: Vec<u64>, default: u64, ok: &mut bool| match v.len() {
        0 if n > 0 => vec![default; n],
        l if l == n || n == 0 => v,
        _ => {
            *ok = false;
            vec![default; n]
        }
    };
    let pads = u(raw("pads"));
    let (pad_begin, pad_end) = match pads.len() {
        0 if n > 0 => (vec![0; n], vec![0; n]),
        l if l % 2 == 0 && (l == 2 * n || n == 0) => (pads[..l / 2].to_vec(), pads[l / 2..].to_vec()),
        _ => {
            ok = false;
            (vec![0; n], vec![0; n])
        }
    };
    let (auto_pad, zero_pads) = match a.string("auto_pad").as_deref() {
        None | Some("NOTSET") | Some("") => (AutoPad::Explicit, false),
        Some("VALID") => (AutoPad::Explicit, true),
        Some("SAME_UPPER") => (AutoPad::SameUpper, false),
        Some("SAME_LOWER") => (AutoPad::SameLower, false),
        Some(_) => {
            ok = false;
            (AutoPad::Explicit, false)
        }
    };
    let stride = per_axis(u(raw("strides")), 1, &mut ok);
    let dilation = per_axis(u(raw("dilations")), 1, &mut ok);
    let (pad_begin, pad_end) = if zero_pads { (vec![0; pad_begin.len()], vec![0; pad_end.len()]) } else { (pad_begin, pad_end) };
    (Window { kernel, stride, pad_begin, pad_end, dilation, auto_pad }, ok)
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
pub fn scalar_floats<'b>(
    nodes: impl Iterator<Item = (&'b NodeProto<'b>, &'b [u8])>,
    initializers: &[(TensorProto, &[u8])],
) -> HashMap<String, f64> {
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
            out.insert(name.to_string(), f64::from(a.f));
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
            out.insert(name.to_string(), v);
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
    fn floats(&self, name: &str) -> &[f32] {
        self.get(name).map_or(&[], |a| &a.floats)
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

    fn mapped(op_type: &str, opset: i64, attrs: Vec<AttributeProto>) -> Mapped {
        let inits = super::super::names::name_map(0);
        let node = NodeProto { op_type: op_type.into(), attribute: attrs, ..Default::default() };
        map_node(&node, &[], &MapCtx { opset, initializers: &inits, scalars: &HashMap::new() })
    }

    fn facts(op_type: &str) -> TypeFacts {
        mapped(op_type, 17, vec![]).facts
    }

    fn int_attr(name: &str, i: i64) -> AttributeProto {
        AttributeProto { name: name.into(), i, r#type: INT, ..Default::default() }
    }

    fn str_attr(name: &str, s: &str) -> AttributeProto {
        AttributeProto { name: name.into(), s: s.as_bytes().to_vec(), r#type: STRING, ..Default::default() }
    }

    #[test]
    fn the_type_table_holds_the_loader_facts() {
        assert_eq!(facts("BatchNormalization").statistics, &[3, 4]);
        assert_eq!(facts("Dropout").arguments_from, Some(1));
        assert_eq!(facts("ConstantOfShape").arguments_from, Some(0));
        assert_eq!(facts("Range").arguments_from, Some(0));
        assert!(facts("NonZero").run_time && facts("Loop").run_time);
        assert!(!facts("Conv").run_time && !facts("RoiAlign").run_time);
        assert_eq!(facts("Relu").own_rule, OwnRule::Yes);
        assert_eq!(facts("Cast").own_rule, OwnRule::No, "Cast without `to`");
        assert_eq!(mapped("Cast", 17, vec![int_attr("to", 7)]).op, Op::Elementwise(E::Cast { to: Some(DType::I64) }));
        assert_eq!(facts("CumSum"), TypeFacts::args(1));
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
        // ratio 0.0 as raw_data (PyTorch's export), 0.1 as float_data, a
        // two-element tensor (not a scalar) and a double.
        let zero = constant_node("r0", &[], 1, 9, &0f32.to_le_bytes());
        let tenth = constant_node("r1", &[1], 1, 4, &0.1f32.to_le_bytes());
        let pair = constant_node("r2", &[2], 1, 9, &[0u8; 8]);
        let double = constant_node("r3", &[], 11, 9, &0.25f64.to_le_bytes());
        let decoded: Vec<(NodeProto, &[u8])> =
            [&zero, &tenth, &pair, &double].iter().map(|b| (NodeProto::decode(b.as_slice()).unwrap(), b.as_slice())).collect();
        let scalars = scalar_floats(decoded.iter().map(|(n, b)| (n, *b)), &[]);
        assert_eq!(scalars.get("r0"), Some(&0.0));
        assert_eq!(scalars.get("r1"), Some(&f64::from(0.1f32)));
        assert_eq!(scalars.get("r2"), None);
        assert_eq!(scalars.get("r3"), Some(&0.25));

        let inits = super::super::names::name_map(0);
        let dropout = |ratio: &str, opset: i64| {
            let node = NodeProto {
                op_type: "Dropout".into(),
                input: vec!["x".into(), ratio.into()],
                output: vec!["y".into()],
                ..Default::default()
            };
            map_node(&node, &[], &MapCtx { opset, initializers: &inits, scalars: &scalars }).op
        };
        assert_eq!(dropout("r0", 17), Op::Elementwise(E::Dropout { ratio: 0.0 }));
        assert_eq!(dropout("r1", 17), Op::Elementwise(E::Dropout { ratio: 0.1 }));
        // A ratio the file does not hold is taken as non-zero; before opset 12 the attribute rules.
        assert_eq!(dropout("elsewhere", 17), Op::Elementwise(E::Dropout { ratio: 0.5 }));
        assert_eq!(dropout("r0", 11), Op::Elementwise(E::Dropout { ratio: 0.5 }));
    }

    #[test]
    fn other_domains_are_outside_the_vocabulary() {
        let inits0 = super::super::names::name_map(0);
        let node = NodeProto { op_type: "NotAnOrtOp".into(), domain: "com.microsoft".into(), ..Default::default() };
        let m = map_node(&node, &[], &MapCtx { opset: 17, initializers: &inits0, scalars: &HashMap::new() });
        assert_eq!(m.op, Op::Unknown(UnknownOp { type_name: "com.microsoft:NotAnOrtOp".into() }));
        let inits = super::super::names::name_map(0);
        let node = NodeProto { op_type: "Gelu".into(), domain: "ai.onnx.ml".into(), ..Default::default() };
        let m = map_node(&node, &[], &MapCtx { opset: 17, initializers: &inits, scalars: &HashMap::new() });
        assert_eq!(m.op, Op::Unknown(UnknownOp { type_name: "ai.onnx.ml:Gelu".into() }));
        assert_eq!(m.facts, TypeFacts::TRACT);
    }

    #[test]
    fn opset_moves_attributes_to_inputs() {
        // Slice: attributes before opset 10.
        assert!(matches!(mapped("Slice", 9, vec![]).op, Op::Layout(L::StridedSlice { attrs: Some(_) })));
        assert!(matches!(mapped("Slice", 10, vec![]).op, Op::Layout(L::StridedSlice { attrs: None })));
        // Reshape: the `shape` attribute before opset 5.
        assert!(matches!(mapped("Reshape", 4, vec![]).op, Op::Layout(L::ReshapeTo { dims: Some(_), .. })));
        // TopK: k attribute in opset 1.
        assert_eq!(mapped("TopK", 9, vec![int_attr("k", 3)]).op, Op::Index(IndexOp::TopK { axis: -1, k: Some(3) }));
        assert_eq!(mapped("TopK", 11, vec![]).op, Op::Index(IndexOp::TopK { axis: -1, k: None }));
        // Pad: `paddings` in opset 1, pads attribute to 10, inputs from 11.
        assert!(matches!(mapped("Pad", 2, vec![]).op, Op::Layout(L::Pad { pads: Some(_) })));
        assert!(matches!(mapped("Pad", 11, vec![]).op, Op::Layout(L::Pad { pads: None })));
        // Resize inputs: (X, scales) in opset 10, (X, roi, scales, sizes) from 11.
        let Op::Resize(r) = mapped("Resize", 10, vec![]).op else { panic!() };
        let ResizeOp::Scaled(p) = *r else { panic!() };
        assert_eq!((p.scales_input, p.sizes_input), (Some(1), None));
        let Op::Resize(r) = mapped("Resize", 13, vec![]).op else { panic!() };
        let ResizeOp::Scaled(p) = *r else { panic!() };
        assert_eq!((p.scales_input, p.sizes_input), (Some(2), Some(3)));
        let Op::Resize(r) = mapped("Upsample", 7, vec![]).op else { panic!() };
        let ResizeOp::Scaled(p) = *r else { panic!() };
        assert_eq!((p.scales_input, p.sizes_input), (None, None));
        // Softmax's default axis changed at 13.
        assert_eq!(mapped("Softmax", 11, vec![]).op, Op::Elementwise(E::Softmax { axis: 1 }));
        assert_eq!(mapped("Softmax", 13, vec![]).op, Op::Elementwise(E::Softmax { axis: -1 }));
    }

    #[test]
    fn forms_the_rules_do_not_model_go_to_tract() {
        assert_eq!(mapped("Gemm", 13, vec![int_attr("transA", 1)]).facts.own_rule, OwnRule::No);
        assert_eq!(mapped("Gemm", 13, vec![]).facts.own_rule, OwnRule::Yes);
        let attrs = vec![AttributeProto { name: "output_shape".into(), ints: vec![10, 10], r#type: INTS, ..Default::default() }];
        assert_eq!(mapped("ConvTranspose", 13, attrs).facts.own_rule, OwnRule::No);
        assert_eq!(mapped("LayerNormalization", 17, vec![int_attr("stash_type", 16)]).facts.own_rule, OwnRule::No);
        assert_eq!(mapped("Conv", 13, vec![str_attr("auto_pad", "SAME_UPPER")]).facts.own_rule, OwnRule::Yes);
        assert_eq!(mapped("Conv", 13, vec![str_attr("auto_pad", "WHATEVER")]).facts.own_rule, OwnRule::No);
        // Pads of the wrong length.
        let attrs = vec![
            AttributeProto { name: "kernel_shape".into(), ints: vec![3, 3], r#type: INTS, ..Default::default() },
            AttributeProto { name: "pads".into(), ints: vec![1, 1], r#type: INTS, ..Default::default() },
        ];
        assert_eq!(mapped("MaxPool", 13, attrs).facts.own_rule, OwnRule::No);
    }

    #[test]
    fn recurrent_ops_map_with_their_attributes() {
        let inits = super::super::names::name_map(0);
        let scalars = HashMap::new();
        let map = |op_type: &str, attribute: Vec<AttributeProto>| {
            let node = NodeProto { op_type: op_type.into(), attribute, ..Default::default() };
            map_node(&node, &[], &MapCtx { opset: 14, initializers: &inits, scalars: &scalars }).op
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
        let inits = super::super::names::name_map(0);
        let node = NodeProto {
            op_type: "CumSum".into(),
            input: vec!["x".into(), "axis".into()],
            output: vec!["y".into()],
            ..Default::default()
        };
        let m = map_node(&node, &[], &MapCtx { opset: 14, initializers: &inits, scalars: &HashMap::new() });
        assert_eq!(m.op, Op::Reduce(ReduceOp::CumSum));
        assert_eq!(m.op.name(), "CumSum");
        assert_eq!(m.facts.arguments_from, Some(1));
        assert_eq!(m.facts.own_rule, OwnRule::Yes);
    }
}
