//! ONNX op types and attributes → nnmem's operator vocabulary (`Op`).
//!
//! One arm per ONNX op type, each reading attributes with the defaults the ONNX
//! operator specification gives. No shape arithmetic happens here: ONNX shapes
//! come from tract. Weight dims (Conv out channels, Gemm out features) are read
//! from the initializer headers when the weight is an initializer.

use std::collections::HashMap;

use super::proto::{AttributeProto, NodeProto, TensorProto};
use crate::graph::AttrValue;
use crate::ops::{
    Activation, BinaryKind, CompareKind, ConstantOp, ConvOp, ConvParams, DenseOp, DenseParams, EltwiseKind,
    ElementwiseOp as E, FlattenParams, LayoutOp as L, LrnParams, NormOp, Op, PoolMethod, PoolParams, ReduceKind,
    ReduceOp, ReshapeParams, ResizeOp, Rounding, SliceParams, UnknownOp, Window,
};

/// What the mapper may look at besides the node itself.
pub struct MapCtx<'a> {
    /// Default-domain opset the model imports.
    pub opset: i64,
    pub initializers: &'a HashMap<&'a str, &'a TensorProto>,
}

impl MapCtx<'_> {
    /// Dims of input `i` when it is an initializer.
    fn init_dims(&self, node: &NodeProto, i: usize) -> Option<Vec<u64>> {
        let t = self.initializers.get(node.input.get(i)?.as_str())?;
        t.dims.iter().map(|&d| u64::try_from(d).ok()).collect()
    }
}

/// The op and the attributes kept for the report. An op type outside the
/// vocabulary becomes `Op::Unknown` (the caller warns once per type).
pub fn map_node(node: &NodeProto, ctx: &MapCtx<'_>) -> (Op, Vec<(String, AttrValue)>) {
    let mut attrs: Vec<(String, AttrValue)> = node.attribute.iter().filter_map(attr_value).collect();
    if node.op_type == "Constant" {
        attrs.extend(constant_value_shape(node));
    }
    let a = Attrs(&node.attribute);
    let has_input = |i: usize| node.input.get(i).is_some_and(|s| !s.is_empty());
    use Activation as A;
    let op = match node.op_type.as_str() {
        "Conv" => {
            let w = ctx.init_dims(node, 1).unwrap_or_default();
            let out_channels = w.first().copied().unwrap_or(0);
            Op::Conv(ConvOp::Forward(conv_params(&a, &w, out_channels, has_input(2), 2)))
        }
        "ConvTranspose" => {
            let w = ctx.init_dims(node, 1).unwrap_or_default();
            let group = a.int("group", 1).max(1) as u64;
            let out_channels = w.get(1).copied().unwrap_or(0).saturating_mul(group);
            let mut p = conv_params(&a, &w, out_channels, has_input(2), 2);
            p.output_pad = a.ints("output_padding").iter().map(|&v| v.max(0) as u64).collect();
            Op::Conv(ConvOp::Transposed(p))
        }
        "MaxPool" | "AveragePool" => {
            let method = if node.op_type == "MaxPool" { PoolMethod::Max } else { PoolMethod::Average };
            let ceil = a.int("ceil_mode", 0) != 0;
            Op::Pool(PoolParams {
                method,
                window: window(&a, &[]),
                rounding: if ceil { Rounding::Ceil } else { Rounding::Floor },
                global: false,
                clip_last_window: ceil,
            })
        }
        "GlobalMaxPool" | "GlobalAveragePool" => Op::Pool(PoolParams {
            method: if node.op_type == "GlobalMaxPool" { PoolMethod::Max } else { PoolMethod::Average },
            window: Window::symmetric(Vec::new(), Vec::new(), Vec::new(), Vec::new()),
            rounding: Rounding::Floor,
            global: true,
            clip_last_window: false,
        }),
        "Gemm" => {
            // B is (K, N), or (N, K) with transB: Caffe's (out, K) layout is transB = 1.
            let trans_b = a.int("transB", 0) != 0;
            let b = ctx.init_dims(node, 1).unwrap_or_default();
            let out_features = if trans_b { b.first() } else { b.get(1) }.copied().unwrap_or(0);
            Op::Dense(DenseOp::Linear(DenseParams { out_features, axis: 1, bias: has_input(2), transpose: !trans_b }))
        }
        "MatMul" => match ctx.init_dims(node, 1) {
            // A weight matrix (K, N) applied to the last axis: a dense layer.
            Some(b) if b.len() == 2 => {
                Op::Dense(DenseOp::Linear(DenseParams { out_features: b[1], axis: -1, bias: false, transpose: true }))
            }
            _ => Op::Dense(DenseOp::MatMul),
        },
        "Relu" => Op::Elementwise(E::Activation(A::Relu { negative_slope: 0.0 })),
        "LeakyRelu" => Op::Elementwise(E::Activation(A::Relu { negative_slope: a.float("alpha", 0.01) })),
        "Sigmoid" => Op::Elementwise(E::Activation(A::Sigmoid)),
        "Tanh" => Op::Elementwise(E::Activation(A::Tanh)),
        "Abs" => Op::Elementwise(E::Activation(A::AbsVal)),
        "Exp" => Op::Elementwise(E::Activation(A::Exp)),
        "Log" => Op::Elementwise(E::Activation(A::Log)),
        "Elu" | "Selu" | "Celu" => Op::Elementwise(E::Activation(A::Elu)),
        "Clip" => Op::Elementwise(E::Activation(A::Clip)),
        "Gelu" => Op::Elementwise(E::Activation(A::Gelu)),
        "HardSigmoid" => Op::Elementwise(E::Activation(A::HardSigmoid)),
        "HardSwish" => Op::Elementwise(E::Activation(A::HardSwish)),
        "Softplus" => Op::Elementwise(E::Activation(A::Softplus)),
        "Erf" => Op::Elementwise(E::Activation(A::Erf)),
        "Sqrt" => Op::Elementwise(E::Activation(A::Sqrt)),
        "Reciprocal" => Op::Elementwise(E::Activation(A::Reciprocal)),
        "Neg" => Op::Elementwise(E::Activation(A::Neg)),
        "Identity" | "Cast" | "CastLike" => Op::Elementwise(E::Activation(A::Identity)),
        "PRelu" => {
            let shared = ctx.init_dims(node, 1).and_then(|d| crate::graph::checked_product(&d)) == Some(1);
            Op::Elementwise(E::PRelu { channel_shared: shared })
        }
        "Dropout" => Op::Elementwise(E::Dropout { ratio: a.float("ratio", 0.5) }),
        "Add" | "Sum" | "Mean" => Op::Elementwise(E::Eltwise { kind: EltwiseKind::Sum, broadcast: true }),
        "Sub" => Op::Elementwise(E::Eltwise { kind: EltwiseKind::Sub, broadcast: true }),
        "Mul" => Op::Elementwise(E::Eltwise { kind: EltwiseKind::Prod, broadcast: true }),
        "Div" => Op::Elementwise(E::Eltwise { kind: EltwiseKind::Div, broadcast: true }),
        "Max" => Op::Elementwise(E::Eltwise { kind: EltwiseKind::Max, broadcast: true }),
        "Min" => Op::Elementwise(E::Eltwise { kind: EltwiseKind::Min, broadcast: true }),
        "Pow" => Op::Elementwise(E::Binary(BinaryKind::Pow)),
        "Mod" => Op::Elementwise(E::Binary(BinaryKind::Mod)),
        "Concat" => Op::Layout(L::Concat { axis: a.int("axis", 1) }),
        "Softmax" | "LogSoftmax" => {
            // Opset 13 changed the default axis from 1 (flattening) to -1.
            Op::Elementwise(E::Softmax { axis: a.int("axis", if ctx.opset < 13 { 1 } else { -1 }) })
        }
        "LRN" => Op::Norm(NormOp::Lrn(LrnParams { local_size: a.int("size", 5).max(1) as u64, across_channels: true })),
        "BatchNormalization" => Op::Norm(NormOp::BatchNorm { eps: a.float("epsilon", 1e-5), caffe_factor: false }),
        "LayerNormalization" => Op::Norm(NormOp::LayerNorm { axis: a.int("axis", -1), eps: a.float("epsilon", 1e-5) }),
        "InstanceNormalization" => Op::Norm(NormOp::GroupNorm { groups: None, eps: a.float("epsilon", 1e-5) }),
        "GroupNormalization" => Op::Norm(NormOp::GroupNorm {
            groups: Some(a.int("num_groups", 1).max(1) as u64),
            eps: a.float("epsilon", 1e-5),
        }),
        "Flatten" => Op::Layout(L::Flatten(FlattenParams { axis: a.int("axis", 1), end_axis: -1 })),
        "Reshape" => Op::Layout(L::Reshape(ReshapeParams { dims: Vec::new(), axis: 0, num_axes: -1 })),
        "Transpose" => Op::Layout(L::Permute { order: a.ints("perm").iter().map(|&p| p.max(0) as usize).collect() }),
        "Squeeze" => Op::Layout(L::Squeeze { axes: a.ints("axes").to_vec() }),
        "Unsqueeze" => Op::Layout(L::Unsqueeze { axes: a.ints("axes").to_vec() }),
        "Split" => {
            let mut points = Vec::new();
            let mut acc = 0u64;
            let split = a.ints("split");
            for &s in split.iter().take(split.len().saturating_sub(1)) {
                acc = acc.saturating_add(s.max(0) as u64);
                points.push(acc);
            }
            Op::Layout(L::Slice(SliceParams { axis: a.int("axis", 0), points }))
        }
        "Slice" => Op::Layout(L::StridedSlice),
        "Pad" => Op::Layout(L::Pad),
        "Resize" | "Upsample" => {
            Op::Resize(ResizeOp::Scaled { mode: a.string("mode").unwrap_or_else(|| "nearest".into()) })
        }
        "Expand" => Op::Layout(L::Expand),
        "Gather" => Op::Layout(L::Gather { axis: a.int("axis", 0) }),
        "Shape" => Op::Constant(ConstantOp::ShapeOf),
        "Constant" => Op::Constant(ConstantOp::Stored),
        "ConstantOfShape" => Op::Constant(ConstantOp::Filled),
        "ReduceMean" | "ReduceSum" | "ReduceMax" | "ReduceMin" | "ReduceProd" | "ReduceL1" | "ReduceL2"
        | "ReduceLogSumExp" | "ReduceSumSquare" => Op::Reduce(ReduceOp::Axes {
            kind: match node.op_type.as_str() {
                "ReduceMean" => ReduceKind::Mean,
                "ReduceSum" => ReduceKind::Sum,
                "ReduceMax" => ReduceKind::Max,
                "ReduceMin" => ReduceKind::Min,
                "ReduceProd" => ReduceKind::Prod,
                "ReduceL1" => ReduceKind::L1,
                "ReduceL2" => ReduceKind::L2,
                "ReduceLogSumExp" => ReduceKind::LogSumExp,
                _ => ReduceKind::SumSquare,
            },
            // Newer opsets pass the axes as an input; the attribute is then absent.
            axes: a.ints("axes").to_vec(),
            keep_dims: a.int("keepdims", 1) != 0,
        }),
        "ArgMax" => Op::Reduce(ReduceOp::ArgMax { top_k: 1, out_max_val: false, axis: Some(a.int("axis", 0)) }),
        "Equal" => Op::Elementwise(E::Compare(CompareKind::Equal)),
        "Less" => Op::Elementwise(E::Compare(CompareKind::Less)),
        "LessOrEqual" => Op::Elementwise(E::Compare(CompareKind::LessOrEqual)),
        "Greater" => Op::Elementwise(E::Compare(CompareKind::Greater)),
        "GreaterOrEqual" => Op::Elementwise(E::Compare(CompareKind::GreaterOrEqual)),
        "And" => Op::Elementwise(E::Compare(CompareKind::And)),
        "Or" => Op::Elementwise(E::Compare(CompareKind::Or)),
        "Xor" => Op::Elementwise(E::Compare(CompareKind::Xor)),
        "Not" => Op::Elementwise(E::Compare(CompareKind::Not)),
        "Where" => Op::Elementwise(E::Where),
        other => Op::Unknown(UnknownOp { type_name: other.to_string() }),
    };
    (op, attrs)
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
