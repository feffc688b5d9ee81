//! The Caffe layer table: every layer type spelling (V2 string, V1 enum, V0
//! string) to one canonical name, and each canonical type to an `Op` with its
//! parameters read from the layer's `*_param` block (V0: flat in the layer).
//! Defaults are Caffe's, spelled out here.

use super::text::{Field, Message};
use crate::ops::detection::{DetectionOutputParams, PriorBoxParams, RoiPoolParams};
use crate::ops::recurrent::{RecurrentKind, RecurrentParams};
use crate::ops::window::per_axis;
use crate::ops::{
    Activation, ConvOp, ConvParams, CropParams, DenseOp, DenseParams, DetectionOp, EltwiseKind, ElementwiseOp as E,
    EmbedParams, FlattenParams, InterpParams, LayoutOp, MarginParams, LossOp, LrnParams, NormOp, Op, PoolMethod, PoolParams,
    ReduceOp, ReshapeParams, ResizeOp, Rounding, ScaleParams, SliceParams, UnknownOp, UnpoolParams, UnpoolSize,
    UpsampleParams, Window,
};

/// A field value that does not fit: where it is and what was expected.
#[derive(Debug)]
pub struct FieldError {
    /// 1-based line of the field.
    pub line: usize,
    /// 1-based column of the field.
    pub column: usize,
    /// What was expected.
    pub message: String,
}

/// The canonical (V2) name for a V1 enum or V0 string spelling.
pub fn canonical_type(spelled: &str) -> &str {
    match spelled {
        "CONVOLUTION" | "conv" => "Convolution",
        "DECONVOLUTION" => "Deconvolution",
        "RELU" | "relu" => "ReLU",
        "POOLING" | "pool" => "Pooling",
        "INNER_PRODUCT" | "innerproduct" => "InnerProduct",
        "DROPOUT" | "dropout" => "Dropout",
        "SOFTMAX" | "softmax" => "Softmax",
        "LRN" | "lrn" => "LRN",
        "DATA" | "data" => "Data",
        "ACCURACY" | "accuracy" => "Accuracy",
        "SOFTMAX_LOSS" | "softmax_loss" => "SoftmaxWithLoss",
        "ABSVAL" => "AbsVal",
        "ARGMAX" => "ArgMax",
        "BNLL" | "bnll" => "BNLL",
        "CONCAT" | "concat" => "Concat",
        "CONTRASTIVE_LOSS" => "ContrastiveLoss",
        "DUMMY_DATA" => "DummyData",
        "EUCLIDEAN_LOSS" | "euclidean_loss" => "EuclideanLoss",
        "ELTWISE" => "Eltwise",
        "EXP" => "Exp",
        "FLATTEN" | "flatten" => "Flatten",
        "HDF5_DATA" | "hdf5_data" => "HDF5Data",
        "HDF5_OUTPUT" | "hdf5_output" => "HDF5Output",
        "HINGE_LOSS" => "HingeLoss",
        "IM2COL" | "im2col" => "Im2col",
        "IMAGE_DATA" | "images" => "ImageData",
        "INFOGAIN_LOSS" | "infogain_loss" => "InfogainLoss",
        "MEMORY_DATA" => "MemoryData",
        "MULTINOMIAL_LOGISTIC_LOSS" | "multinomial_logistic_loss" => "MultinomialLogisticLoss",
        "MVN" => "MVN",
        "POWER" => "Power",
        "SIGMOID" | "sigmoid" => "Sigmoid",
        "SIGMOID_CROSS_ENTROPY_LOSS" => "SigmoidCrossEntropyLoss",
        "SILENCE" => "Silence",
        "SPLIT" | "split" => "Split",
        "SLICE" => "Slice",
        "TANH" | "tanh" => "TanH",
        "WINDOW_DATA" | "window_data" => "WindowData",
        "THRESHOLD" => "Threshold",
        "DepthwiseConvolution" => "ConvolutionDepthwise",
        other => other,
    }
}

/// Layers that produce the net's inputs rather than compute on them (also any
/// Python layer or unknown type without bottoms: see the loader).
pub fn is_data_layer(canonical: &str) -> bool {
    matches!(
        canonical,
        "Input"
            | "Data"
            | "ImageData"
            | "HDF5Data"
            | "MemoryData"
            | "WindowData"
            | "DummyData"
            | "DenseImageData"
            | "AnnotatedData"
            | "VideoData"
            | "VIDEO_DATA"
            | "ImageLabelmapData"
    )
}

/// Reads a layer's parameters. For V0 files the block is the flat inner layer
/// and legacy names (`kernelsize`, `biasterm`) are accepted.
pub struct Params<'a> {
    layer: &'a Message,
    v0: bool,
    empty: Message,
}

impl<'a> Params<'a> {
    /// The parameter blocks of `layer`; a V0 layer keeps its parameters in itself.
    pub fn new(layer: &'a Message, v0: bool) -> Self {
        Params { layer, v0, empty: Message::default() }
    }

    /// The named `*_param` block (V0: the layer itself).
    pub fn block(&self, name: &str) -> Block<'_> {
        let msg = if self.v0 { self.layer } else { self.layer.message(name).unwrap_or(&self.empty) };
        Block { msg }
    }
}

/// One parameter block, with typed getters that name the field on error.
#[derive(Clone, Copy)]
pub struct Block<'a> {
    /// The block's fields.
    pub msg: &'a Message,
}

fn legacy_alias(name: &str) -> Option<&'static str> {
    Some(match name {
        "kernel_size" => "kernelsize",
        "bias_term" => "biasterm",
        "batch_size" => "batchsize",
        "crop_size" => "cropsize",
        _ => return None,
    })
}

fn bad(field: &Field, expected: &str) -> FieldError {
    FieldError {
        line: field.line,
        column: field.column,
        message: format!(
            "expected {expected} for \"{}\", found {}",
            field.name,
            field.as_text().map(|t| format!("\"{t}\"")).unwrap_or_else(|| "a block".into())
        ),
    }
}

impl<'a> Block<'a> {
    fn fields(&self, name: &str) -> Vec<&'a Field> {
        let named = |n: &str| -> Vec<&'a Field> { self.msg.fields.iter().filter(|f| f.name == n).collect() };
        let v = named(name);
        match legacy_alias(name) {
            Some(alias) if v.is_empty() => named(alias),
            _ => v,
        }
    }

    /// Whether the block sets this field.
    pub fn has(&self, name: &str) -> bool {
        !self.fields(name).is_empty()
    }

    /// Every value of a repeated unsigned field.
    pub fn u64s(&self, name: &str) -> Result<Vec<u64>, FieldError> {
        self.fields(name)
            .into_iter()
            .map(|f| f.as_text().and_then(parse_u64).ok_or_else(|| bad(f, "a non-negative integer")))
            .collect()
    }

    /// An unsigned field, if set.
    pub fn opt_u64(&self, name: &str) -> Result<Option<u64>, FieldError> {
        Ok(self.u64s(name)?.last().copied())
    }

    /// An unsigned field, or `default`.
    pub fn u64_or(&self, name: &str, default: u64) -> Result<u64, FieldError> {
        Ok(self.opt_u64(name)?.unwrap_or(default))
    }

    /// Every value of a repeated signed field.
    pub fn i64s(&self, name: &str) -> Result<Vec<i64>, FieldError> {
        self.fields(name)
            .into_iter()
            .map(|f| f.as_text().and_then(|t| t.trim().parse().ok()).ok_or_else(|| bad(f, "an integer")))
            .collect()
    }

    /// A signed field, or `default`.
    pub fn i64_or(&self, name: &str, default: i64) -> Result<i64, FieldError> {
        Ok(self.i64s(name)?.last().copied().unwrap_or(default))
    }

    /// Every value of a repeated float field.
    pub fn f64s(&self, name: &str) -> Result<Vec<f64>, FieldError> {
        self.fields(name)
            .into_iter()
            .map(|f| f.as_text().and_then(parse_f64).ok_or_else(|| bad(f, "a number")))
            .collect()
    }

    /// A float field, or `default`.
    pub fn f64_or(&self, name: &str, default: f64) -> Result<f64, FieldError> {
        Ok(self.f64s(name)?.last().copied().unwrap_or(default))
    }

    /// A bool field (`true`/`false`, or 0/1 as old files write it), or `default`.
    pub fn bool_or(&self, name: &str, default: bool) -> Result<bool, FieldError> {
        match self.fields(name).last() {
            None => Ok(default),
            Some(f) => match f.as_text().map(str::trim) {
                Some("true" | "True" | "t" | "1") => Ok(true),
                Some("false" | "False" | "f" | "0") => Ok(false),
                _ => Err(bad(f, "true or false")),
            },
        }
    }

    /// An enum field: one of `allowed` (also given as its number), or the default.
    pub fn enum_or(&self, name: &str, allowed: &[&'static str], default: &'static str) -> Result<&'static str, FieldError> {
        let Some(f) = self.fields(name).last().copied() else { return Ok(default) };
        let text = f.as_text().unwrap_or_default().trim();
        if let Some(v) = allowed.iter().find(|a| **a == text) {
            return Ok(v);
        }
        if let Some(v) = text.parse::<usize>().ok().and_then(|i| allowed.get(i)) {
            return Ok(v);
        }
        Err(bad(f, &format!("one of {}", allowed.join(", "))))
    }

    /// A nested message field, if set.
    pub fn message(&self, name: &str) -> Option<&'a Message> {
        self.msg.message(name)
    }
}

/// The value after `key:` in a Python layer's `param_str` (`'num_classes': 21`).
fn yaml_value<'t>(text: &'t str, key: &str) -> Option<&'t str> {
    let at = ["'", "\"", ""].iter().find_map(|q| text.find(&format!("{q}{key}{q}:")).map(|i| i + 2 * q.len() + key.len() + 1))?;
    Some(text[at..].trim_start())
}

fn yaml_int(text: &str, key: &str) -> Option<u64> {
    let v = yaml_value(text, key)?;
    let digits: String = v.chars().take_while(|c| c.is_ascii_digit()).collect();
    digits.parse().ok()
}

/// Items of a list value (`'scales': !!python/tuple [4, 8, 16, 32]` or `(8, 16)`).
fn yaml_list_len(text: &str, key: &str) -> Option<u64> {
    let v = yaml_value(text, key)?;
    let open = v.find(['[', '('])?;
    let close = v[open..].find([']', ')'])? + open;
    Some(v[open + 1..close].split(',').filter(|x| !x.trim().is_empty()).count() as u64)
}

fn parse_u64(text: &str) -> Option<u64> {
    let t = text.trim();
    t.parse::<u64>().ok().or_else(|| {
        // Some files write integers as floats ("4.0").
        let f: f64 = t.parse().ok()?;
        (f >= 0.0 && f.fract() == 0.0 && f < 9.0e15).then_some(f as u64)
    })
}

fn parse_f64(text: &str) -> Option<f64> {
    let t = text.trim();
    let t = t.strip_suffix(['f', 'F']).unwrap_or(t);
    match t {
        "inf" | "infinity" => Some(f64::INFINITY),
        "-inf" | "-infinity" => Some(f64::NEG_INFINITY),
        "nan" => Some(f64::NAN),
        _ => t.parse().ok(),
    }
}

/// Convolution geometry: `kernel_h`/`kernel_w` or repeated `kernel_size`, and
/// the same for pad and stride; dilation only repeated.
fn conv_window(b: Block<'_>) -> Result<Window, FieldError> {
    let kernel = if b.has("kernel_h") || b.has("kernel_w") {
        vec![b.u64_or("kernel_h", 0)?, b.u64_or("kernel_w", 0)?]
    } else {
        b.u64s("kernel_size")?
    };
    if kernel.is_empty() || kernel.contains(&0) {
        return Err(FieldError { line: 0, column: 0, message: "kernel_size (or kernel_h and kernel_w) must be given and positive".into() });
    }
    // Two spatial axes unless the repeated fields say otherwise.
    let n_axes = kernel.len().max(2);
    let expand = |values: Vec<u64>, default: u64, what: &str| {
        per_axis(&values, n_axes, default, what).map_err(|e| FieldError { line: 0, column: 0, message: e.message })
    };
    let pick = |h: &str, w: &str, rep: &str, default: u64| -> Result<Vec<u64>, FieldError> {
        if b.has(h) || b.has(w) {
            Ok(vec![b.u64_or(h, default)?, b.u64_or(w, default)?])
        } else {
            expand(b.u64s(rep)?, default, rep)
        }
    };
    let kernel = expand(kernel, 1, "kernel_size")?;
    let pad = pick("pad_h", "pad_w", "pad", 0)?;
    let stride = pick("stride_h", "stride_w", "stride", 1)?;
    let dilation = expand(b.u64s("dilation")?, 1, "dilation")?;
    if stride.contains(&0) || dilation.contains(&0) {
        return Err(FieldError { line: 0, column: 0, message: "stride and dilation must be positive".into() });
    }
    Ok(Window::symmetric(kernel, stride, pad, dilation))
}

fn conv_params(p: &Params<'_>, depthwise: bool) -> Result<ConvParams, FieldError> {
    let b = p.block("convolution_param");
    let out = b.opt_u64("num_output")?.ok_or_else(|| FieldError {
        line: 0,
        column: 0,
        message: "convolution_param.num_output is required".into(),
    })?;
    if out == 0 {
        return Err(FieldError { line: 0, column: 0, message: "convolution_param.num_output must be positive".into() });
    }
    let group = b.u64_or("group", 1)?;
    if group == 0 {
        return Err(FieldError { line: 0, column: 0, message: "group must be positive".into() });
    }
    Ok(ConvParams {
        out_channels: out,
        window: conv_window(b)?,
        group,
        depthwise,
        bias: b.bool_or("bias_term", true)?,
        axis: b.i64_or("axis", 1)?,
        output_pad: Vec::new(),
    })
}

fn pool_params(p: &Params<'_>) -> Result<PoolParams, FieldError> {
    let b = p.block("pooling_param");
    let method = match b.enum_or("pool", &["MAX", "AVE", "STOCHASTIC"], "MAX")? {
        "AVE" => PoolMethod::Average,
        "STOCHASTIC" => PoolMethod::Stochastic,
        _ => PoolMethod::Max,
    };
    let global = b.bool_or("global_pooling", false)?;
    let pair = |h: &str, w: &str, one: &str, default: u64| -> Result<Vec<u64>, FieldError> {
        if b.has(h) || b.has(w) {
            Ok(vec![b.u64_or(h, default)?, b.u64_or(w, default)?])
        } else {
            let v = b.u64_or(one, default)?;
            Ok(vec![v, v])
        }
    };
    let kernel = pair("kernel_h", "kernel_w", "kernel_size", 0)?;
    if !global && kernel.contains(&0) {
        return Err(FieldError { line: 0, column: 0, message: "pooling needs kernel_size (or kernel_h and kernel_w) unless global_pooling".into() });
    }
    let pad = pair("pad_h", "pad_w", "pad", 0)?;
    let stride = pair("stride_h", "stride_w", "stride", 1)?;
    if stride.contains(&0) {
        return Err(FieldError { line: 0, column: 0, message: "pooling stride must be positive".into() });
    }
    // BVLC's round_mode, or the fork's ceil_mode: false, select FLOOR.
    let mut rounding = match b.enum_or("round_mode", &["CEIL", "FLOOR"], "CEIL")? {
        "FLOOR" => Rounding::Floor,
        _ => Rounding::Ceil,
    };
    if !b.bool_or("ceil_mode", true)? {
        rounding = Rounding::Floor;
    }
    let clip = pad.iter().any(|&v| v > 0);
    Ok(PoolParams {
        method,
        window: Window::symmetric(kernel.iter().map(|&k| k.max(1)).collect(), stride, pad, vec![1, 1]),
        rounding,
        global,
        clip_last_window: clip,
    })
}

/// C3D's 3-D window over (L, H, W): `kernel_depth`/`kernel_size`,
/// `temporal_stride`/`stride`, `temporal_pad`/`pad` (none on L for pooling).
fn window3d(b: Block<'_>, temporal_pad: bool) -> Result<Window, FieldError> {
    let err = |message: String| FieldError { line: 0, column: 0, message };
    let required = |name: &str| -> Result<u64, FieldError> {
        b.opt_u64(name)?.filter(|&v| v > 0).ok_or_else(|| err(format!("{name} is required and must be positive")))
    };
    let (kd, k) = (required("kernel_depth")?, required("kernel_size")?);
    let (ts, s) = (b.u64_or("temporal_stride", 1)?, b.u64_or("stride", 1)?);
    if ts == 0 || s == 0 {
        return Err(err("stride and temporal_stride must be positive".into()));
    }
    let p = b.u64_or("pad", 0)?;
    let tp = if temporal_pad { b.u64_or("temporal_pad", 0)? } else { 0 };
    Ok(Window::symmetric(vec![kd, k, k], vec![ts, s, s], vec![tp, p, p], vec![1, 1, 1]))
}

/// C3D's Convolution3D/Deconvolution3D: one filter group whatever
/// `filter_group` says (it only splits the GEMM), floor rounding.
fn conv3d_params(b: Block<'_>, bias: bool) -> Result<ConvParams, FieldError> {
    let out = b.opt_u64("num_output")?.filter(|&n| n > 0).ok_or_else(|| FieldError {
        line: 0,
        column: 0,
        message: "num_output is required and must be positive".into(),
    })?;
    Ok(ConvParams { out_channels: out, window: window3d(b, true)?, group: 1, depthwise: false, bias, axis: 1, output_pad: Vec::new() })
}

/// C3D's Pooling3D: CEIL on every axis and no clipping of a last window that
/// starts in the padding; padding (on H and W only) only for AVE.
fn pool3d_params(b: Block<'_>) -> Result<PoolParams, FieldError> {
    let method = match b.enum_or("pool", &["MAX", "AVE", "STOCHASTIC"], "MAX")? {
        "AVE" => PoolMethod::Average,
        "STOCHASTIC" => PoolMethod::Stochastic,
        _ => PoolMethod::Max,
    };
    if method != PoolMethod::Average && b.u64_or("pad", 0)? > 0 {
        return Err(FieldError { line: 0, column: 0, message: "3-D pooling pads only with pool: AVE".into() });
    }
    Ok(PoolParams { method, window: window3d(b, false)?, rounding: Rounding::Ceil, global: false, clip_last_window: false })
}

fn scale_params(b: Block<'_>, bias_default: bool) -> Result<ScaleParams, FieldError> {
    Ok(ScaleParams { axis: b.i64_or("axis", 1)?, num_axes: b.i64_or("num_axes", 1)?, bias: b.bool_or("bias_term", bias_default)? })
}

/// Loss layers by name: `…Loss`, and fork variants with a suffix
/// (R-FCN's `SmoothL1LossOHEM`).
fn loss_kind(canonical: &str) -> bool {
    canonical.contains("Loss")
}

/// Map a canonical compute-layer type to an op. `n_bottoms` and `n_tops`
/// decide between layer forms (Scale by a second input, a one-top Region).
/// Unknown types become `Op::Unknown`.
pub fn layer_op(canonical: &str, p: &Params<'_>, n_bottoms: usize, n_tops: usize) -> Result<Op, FieldError> {
    let act = |a: Activation| Ok(Op::Elementwise(E::Activation(a)));
    match canonical {
        "Convolution" => Ok(Op::Conv(ConvOp::Forward(Box::new(conv_params(p, false)?)))),
        "ConvolutionDepthwise" => Ok(Op::Conv(ConvOp::Forward(Box::new(conv_params(p, true)?)))),
        "Deconvolution" => Ok(Op::Conv(ConvOp::Transposed(Box::new(conv_params(p, false)?)))),
        "Pooling" => Ok(Op::Pool(Box::new(pool_params(p)?))),
        // C3D v1.1 (V2) reads its own blocks, v1.0 (V1 enums) the extended
        // convolution_param/pooling_param. Deconvolution3D takes bias_term from
        // convolution_param in both (deconvolution3d_layer.cpp:79).
        "Convolution3D" => {
            let b = p.block("convolution3d_param");
            Ok(Op::Conv(ConvOp::Forward(Box::new(conv3d_params(b, b.bool_or("bias_term", true)?)?))))
        }
        "CONVOLUTION3D" => {
            let b = p.block("convolution_param");
            Ok(Op::Conv(ConvOp::Forward(Box::new(conv3d_params(b, b.bool_or("bias_term", true)?)?))))
        }
        "Deconvolution3D" | "DECONVOLUTION3D" => {
            let bias = p.block("convolution_param").bool_or("bias_term", true)?;
            let geometry = p.block(if canonical == "Deconvolution3D" { "convolution3d_param" } else { "convolution_param" });
            Ok(Op::Conv(ConvOp::Transposed(Box::new(conv3d_params(geometry, bias)?))))
        }
        "Pooling3D" => Ok(Op::Pool(Box::new(pool3d_params(p.block("pooling3d_param"))?))),
        "POOLING3D" => Ok(Op::Pool(Box::new(pool3d_params(p.block("pooling_param"))?))),
        "InnerProduct" => {
            let b = p.block("inner_product_param");
            let out = b.opt_u64("num_output")?.ok_or_else(|| FieldError {
                line: 0,
                column: 0,
                message: "inner_product_param.num_output is required".into(),
            })?;
            if out == 0 {
                return Err(FieldError { line: 0, column: 0, message: "inner_product_param.num_output must be positive".into() });
            }
            Ok(Op::Dense(DenseOp::Linear(DenseParams {
                out_features: out,
                axis: b.i64_or("axis", 1)?,
                bias: b.bool_or("bias_term", true)?,
                transpose: b.bool_or("transpose", false)?,
            })))
        }
        "ReLU" => act(Activation::Relu { negative_slope: p.block("relu_param").f64_or("negative_slope", 0.0)? as f32 }),
        "PReLU" => Ok(Op::Elementwise(E::PRelu { channel_shared: p.block("prelu_param").bool_or("channel_shared", false)? })),
        "Sigmoid" => act(Activation::Sigmoid),
        "TanH" => act(Activation::Tanh),
        "AbsVal" => act(Activation::AbsVal),
        "BNLL" => act(Activation::Bnll),
        "Exp" => act(Activation::Exp),
        "Log" => act(Activation::Log),
        "ELU" => act(Activation::Elu),
        "Power" => act(Activation::Power),
        "Threshold" => act(Activation::Threshold),
        "Clip" => act(Activation::Clip),
        // min(max(x, 0), 6) (chuanqi305/ssd relu6_layer.cpp); eric612's fork adds
        // a negative slope below 0, which changes no shape.
        "ReLU6" => {
            p.block("relu6_param").f64_or("negative_slope", 0.0)?;
            act(Activation::Clip)
        }
        "Swish" => act(Activation::Silu),
        "MVN" => act(Activation::Identity),
        "Dropout" => Ok(Op::Elementwise(E::Dropout { ratio: p.block("dropout_param").f64_or("dropout_ratio", 0.5)? as f32 })),
        "LRN" => {
            let b = p.block("lrn_param");
            Ok(Op::Norm(NormOp::Lrn(LrnParams {
                local_size: b.u64_or("local_size", 5)?,
                across_channels: b.enum_or("norm_region", &["ACROSS_CHANNELS", "WITHIN_CHANNEL"], "ACROSS_CHANNELS")?
                    == "ACROSS_CHANNELS",
            })))
        }
        "Softmax" => Ok(Op::Elementwise(E::Softmax { axis: p.block("softmax_param").i64_or("axis", 1)? })),
        "BatchNorm" => Ok(Op::Norm(NormOp::BatchNorm { eps: p.block("batch_norm_param").f64_or("eps", 1e-5)? as f32, caffe_factor: true })),
        "Scale" => Ok(Op::Norm(NormOp::Scale(scale_params(p.block("scale_param"), false)?))),
        "Bias" => Ok(Op::Norm(NormOp::Bias(scale_params(p.block("bias_param"), false)?))),
        "BN" => {
            // PSPNet's BN variant keeps running statistics; it says so with
            // its own fields (moving_average_fraction / use_global_stats).
            let b = p.block("bn_param");
            let stats = b.has("moving_average_fraction") || b.has("use_global_stats") || b.has("momentum");
            Ok(Op::Norm(NormOp::BnFork { running_stats: stats }))
        }
        "Normalize" => Ok(Op::Norm(NormOp::Normalize { channel_shared: p.block("norm_param").bool_or("channel_shared", true)? })),
        "Concat" => {
            let b = p.block("concat_param");
            let axis = if b.has("concat_dim") { b.i64_or("concat_dim", 1)? } else { b.i64_or("axis", 1)? };
            Ok(Op::Layout(LayoutOp::Concat { axis }))
        }
        "Eltwise" => {
            let kind = match p.block("eltwise_param").enum_or("operation", &["PROD", "SUM", "MAX"], "SUM")? {
                "PROD" => EltwiseKind::Prod,
                "MAX" => EltwiseKind::Max,
                _ => EltwiseKind::Sum,
            };
            Ok(Op::Elementwise(E::Eltwise { kind, broadcast: false }))
        }
        "Axpy" => Ok(Op::Elementwise(E::Axpy)),
        "Split" => Ok(Op::Layout(LayoutOp::Split)),
        "Slice" => {
            let b = p.block("slice_param");
            let axis = if b.has("slice_dim") { b.i64_or("slice_dim", 1)? } else { b.i64_or("axis", 1)? };
            Ok(Op::Layout(LayoutOp::Slice(SliceParams { axis, points: b.u64s("slice_point")? })))
        }
        "Flatten" => {
            let b = p.block("flatten_param");
            Ok(Op::Layout(LayoutOp::Flatten(FlattenParams { axis: b.i64_or("axis", 1)?, end_axis: b.i64_or("end_axis", -1)? })))
        }
        "Reshape" => {
            let b = p.block("reshape_param");
            let dims = match b.message("shape") {
                Some(shape) => Block { msg: shape }.i64s("dim")?,
                None => Vec::new(),
            };
            Ok(Op::Layout(LayoutOp::Reshape(ReshapeParams { dims, axis: b.i64_or("axis", 0)?, num_axes: b.i64_or("num_axes", -1)? })))
        }
        "Crop" => {
            let b = p.block("crop_param");
            Ok(Op::Layout(LayoutOp::Crop(CropParams { axis: b.i64_or("axis", 2)?, offsets: b.u64s("offset")? })))
        }
        "Permute" => {
            let order = p.block("permute_param").u64s("order")?;
            Ok(Op::Layout(LayoutOp::Permute { order: order.into_iter().map(|o| o as usize).collect() }))
        }
        "Reorg" => {
            let b = p.block("reorg_param");
            let stride = b.opt_u64("stride")?.filter(|&s| s > 0).ok_or_else(|| FieldError {
                line: 0,
                column: 0,
                message: "reorg_param.stride is required and must be positive".into(),
            })?;
            Ok(Op::Layout(LayoutOp::Reorg { stride, reverse: b.bool_or("reverse", false)? }))
        }
        "ShuffleChannel" => Ok(Op::Layout(LayoutOp::ShuffleChannel { group: p.block("shuffle_channel_param").u64_or("group", 1)? })),
        "Tile" => {
            let b = p.block("tile_param");
            Ok(Op::Layout(LayoutOp::Tile { axis: b.i64_or("axis", 1)?, tiles: b.u64_or("tiles", 1)? }))
        }
        "Reduction" => Ok(Op::Reduce(ReduceOp::Reduction { axis: p.block("reduction_param").i64_or("axis", 0)? })),
        "ArgMax" => {
            let b = p.block("argmax_param");
            let axis = if b.has("axis") { Some(b.i64_or("axis", 0)?) } else { None };
            Ok(Op::Reduce(ReduceOp::ArgMax { top_k: b.u64_or("top_k", 1)?, out_max_val: b.bool_or("out_max_val", false)?, axis }))
        }
        "Upsample" => {
            let b = p.block("upsample_param");
            let scale = b.u64_or("scale", 2)?;
            Ok(Op::Resize(Box::new(ResizeOp::Upsample(UpsampleParams {
                scale_h: b.u64_or("scale_h", scale)?,
                scale_w: b.u64_or("scale_w", scale)?,
                out_h: b.opt_u64("upsample_h")?,
                out_w: b.opt_u64("upsample_w")?,
                pad_out_h: b.bool_or("pad_out_h", false)?,
                pad_out_w: b.bool_or("pad_out_w", false)?,
            }))))
        }
        "UNPOOLING" | "Unpooling" => unpooling_op(p, n_bottoms, None),
        // extended-caffe's UnPooling: no mask, a window rule, or fitted to a second bottom.
        "UnPooling" => {
            if n_bottoms >= 2 {
                return Ok(Op::Resize(Box::new(ResizeOp::Unpool(UnpoolParams { size: UnpoolSize::FitInput(1), mask_input: false }))));
            }
            let b = p.block("unpooling_param");
            let pair = |h: &str, w: &str, one: &str, default: Option<u64>| -> Result<[u64; 2], FieldError> {
                let v = match (b.opt_u64(h)?, b.opt_u64(w)?) {
                    (Some(vh), Some(vw)) => Some([vh, vw]),
                    _ => b.opt_u64(one)?.or(default).map(|v| [v, v]),
                };
                v.ok_or_else(|| FieldError { line: 0, column: 0, message: format!("unpooling_param.{one} (or {h} and {w}) is required") })
            };
            let kernel = pair("out_kernel_h", "out_kernel_w", "out_kernel_size", None)?;
            if kernel.contains(&0) {
                return Err(FieldError { line: 0, column: 0, message: "unpooling_param.out_kernel_size must be positive".into() });
            }
            let size = UnpoolSize::Window {
                kernel,
                stride: pair("out_stride_h", "out_stride_w", "out_stride", Some(1))?,
                pad: pair("out_pad_h", "out_pad_w", "out_pad", Some(0))?,
            };
            Ok(Op::Resize(Box::new(ResizeOp::Unpool(UnpoolParams { size, mask_input: false }))))
        }
        "Interp" => {
            let b = p.block("interp_param");
            Ok(Op::Resize(Box::new(ResizeOp::Interp(InterpParams {
                height: b.opt_u64("height")?,
                width: b.opt_u64("width")?,
                zoom: b.opt_u64("zoom_factor")?,
                shrink: b.opt_u64("shrink_factor")?,
                pad_beg: b.i64_or("pad_beg", 0)?,
                pad_end: b.i64_or("pad_end", 0)?,
            }))))
        }
        "PriorBox" => {
            let b = p.block("prior_box_param");
            Ok(Op::Detection(DetectionOp::PriorBox(PriorBoxParams {
                n_min_sizes: b.f64s("min_size")?.len() as u64,
                n_max_sizes: b.f64s("max_size")?.len() as u64,
                aspect_ratios: b.f64s("aspect_ratio")?,
                flip: b.bool_or("flip", true)?,
            })))
        }
        // YOLO forks: one row per kept detection, like SSD's DetectionOutput.
        "YoloDetectionOutput" | "Yolov3DetectionOutput" => {
            Ok(Op::Detection(DetectionOp::DetectionOutput(DetectionOutputParams { keep_top_k: None })))
        }
        // The one-top Region of the YOLOv2 forks; a two-top Region (boxes and
        // probabilities from region_loss_param) has no rule.
        "Region" if n_tops <= 1 => Ok(Op::Detection(DetectionOp::Region)),
        "DetectionOutput" => {
            Ok(Op::Detection(DetectionOp::DetectionOutput(DetectionOutputParams {
                keep_top_k: p.block("detection_output_param").opt_u64("keep_top_k")?,
            })))
        }
        "PSROIPooling" => {
            let b = p.block("psroi_pooling_param");
            let required = |name: &str| -> Result<u64, FieldError> {
                b.opt_u64(name)?.filter(|&v| v > 0).ok_or_else(|| FieldError {
                    line: 0,
                    column: 0,
                    message: format!("psroi_pooling_param.{name} is required and must be positive"),
                })
            };
            Ok(Op::Detection(DetectionOp::PsRoiPool { output_dim: required("output_dim")?, group_size: required("group_size")? }))
        }
        "ROIPooling" => {
            let b = p.block("roi_pooling_param");
            Ok(Op::Detection(DetectionOp::RoiPool(RoiPoolParams { pooled_h: b.u64_or("pooled_h", 0)?, pooled_w: b.u64_or("pooled_w", 0)? })))
        }
        // SphereFace: an InnerProduct without bias whose logit for the label
        // (bottom 1) gets the angular margin; a second top holds λ.
        "MarginInnerProduct" => {
            let b = p.block("margin_inner_product_param");
            let out = b.opt_u64("num_output")?.filter(|&n| n > 0).ok_or_else(|| FieldError {
                line: 0,
                column: 0,
                message: "margin_inner_product_param.num_output is required and must be positive".into(),
            })?;
            let margin = match b.enum_or("type", &["SINGLE", "DOUBLE", "TRIPLE", "QUADRUPLE"], "SINGLE")? {
                "SINGLE" => 1,
                "DOUBLE" => 2,
                "TRIPLE" => 3,
                _ => 4,
            };
            Ok(Op::Dense(DenseOp::MarginLinear(MarginParams {
                linear: DenseParams { out_features: out, axis: b.i64_or("axis", 1)?, bias: false, transpose: false },
                margin,
            })))
        }
        "Embed" => {
            let b = p.block("embed_param");
            Ok(Op::Dense(DenseOp::Embed(EmbedParams {
                out_features: b.u64_or("num_output", 0)?,
                vocabulary: b.u64_or("input_dim", 0)?,
                bias: b.bool_or("bias_term", true)?,
            })))
        }
        // caffe_ocr (senlinuc): Transpose (top axis i = bottom axis dim(i)),
        // its own Lstm (W_ih, W_hh, b), Reverse along an axis, CTC decoding.
        "Transpose" => {
            let order = p.block("transpose_param").u64s("dim")?;
            Ok(Op::Layout(LayoutOp::Permute { order: order.into_iter().map(|o| o as usize).collect() }))
        }
        "Lstm" => Ok(Op::Recurrent(RecurrentParams {
            kind: RecurrentKind::LstmIhHh,
            num_output: p.block("lstm_param").opt_u64("num_output")?.filter(|&n| n > 0).ok_or_else(|| FieldError {
                line: 0,
                column: 0,
                message: "lstm_param.num_output is required and must be positive".into(),
            })?,
            expose_hidden: false,
        })),
        "Reverse" => Ok(Op::Layout(LayoutOp::Reverse { axis: p.block("reverse_param").i64_or("axis", 0)? })),
        "CTCGreedyDecoder" => Ok(Op::Reduce(ReduceOp::CtcGreedyDecode)),
        "LSTM" | "RNN" => {
            let b = p.block("recurrent_param");
            Ok(Op::Recurrent(RecurrentParams {
                kind: if canonical == "LSTM" { RecurrentKind::Lstm } else { RecurrentKind::Rnn },
                num_output: b.u64_or("num_output", 0)?,
                expose_hidden: b.bool_or("expose_hidden", false)?,
            }))
        }
        "Accuracy" => Ok(Op::Loss(LossOp::Accuracy { top_k: p.block("accuracy_param").u64_or("top_k", 1)? })),
        "Silence" => Ok(Op::Loss(LossOp::Silence)),
        "Python" => Ok(python_op(p, n_bottoms)),
        t if loss_kind(t) => Ok(Op::Loss(LossOp::Loss { kind: t.to_string() })),
        t => Ok(Op::Unknown(UnknownOp { type_name: t.to_string() })),
    }
}

/// DeconvNet's unpooling (V1 `UNPOOLING`, V2 `Unpooling`): to `unpool_size`, or
/// `unpool_h` and `unpool_w`; without them, to the height and width of a third
/// bottom (the blob before pooling), else to `paired`: those of the blob the
/// max pooling that wrote the mask (bottom 1) read, which the loader looks up.
pub fn unpooling_op(p: &Params<'_>, n_bottoms: usize, paired: Option<(u64, u64)>) -> Result<Op, FieldError> {
    let b = p.block("unpooling_param");
    let max = b.enum_or("unpool", &["MAX", "AVE", "TILE"], "MAX")? == "MAX";
    let mask_input = max && n_bottoms >= 2;
    let err = |message: &str| FieldError { line: 0, column: 0, message: message.into() };
    let size = match (b.opt_u64("unpool_size")?, b.opt_u64("unpool_h")?, b.opt_u64("unpool_w")?) {
        (Some(_), Some(_), _) | (Some(_), _, Some(_)) => {
            return Err(err("give unpooling_param.unpool_size or unpool_h and unpool_w, not both"))
        }
        (Some(v), None, None) => UnpoolSize::Fixed { h: v, w: v },
        (None, Some(h), Some(w)) => UnpoolSize::Fixed { h, w },
        (None, Some(_), None) | (None, None, Some(_)) => return Err(err("unpooling_param needs both unpool_h and unpool_w")),
        (None, None, None) if n_bottoms >= 3 => UnpoolSize::LikeInput(n_bottoms - 1),
        (None, None, None) => match paired {
            Some((h, w)) => UnpoolSize::Fixed { h, w },
            None => {
                return Err(err(
                    "unpooling needs unpooling_param.unpool_size (or unpool_h and unpool_w), or a mask from a max pooling whose input is sized",
                ))
            }
        },
    };
    if let UnpoolSize::Fixed { h: 0, .. } | UnpoolSize::Fixed { w: 0, .. } = size {
        return Err(err("the unpooled size must be positive"));
    }
    Ok(Op::Resize(Box::new(ResizeOp::Unpool(UnpoolParams { size, mask_input }))))
}

/// Python layers run user code; a few well-known ones have a known shape:
/// py-faster-rcnn's region proposals and training targets (their settings in
/// `param_str`, a YAML dict), ENet's spatial dropout, an L2 normaliser.
fn python_op(p: &Params<'_>, _n_bottoms: usize) -> Op {
    let python = p.block("python_param").msg;
    let layer = python.text("layer").unwrap_or_default();
    let param_str = python.text("param_str").unwrap_or_default();
    match layer {
        "ProposalLayer" => Op::Detection(DetectionOp::Proposal),
        "ProposalTargetLayer" => match yaml_int(param_str, "num_classes") {
            Some(num_classes) if num_classes > 0 => Op::Detection(DetectionOp::ProposalTarget { num_classes }),
            _ => Op::Unknown(UnknownOp { type_name: "Python (ProposalTargetLayer without num_classes in param_str)".into() }),
        },
        // A = 3 aspect ratios × the anchor scales (8, 16, 32 unless param_str says).
        "AnchorTargetLayer" => {
            let scales = yaml_list_len(param_str, "scales").unwrap_or(3);
            Op::Detection(DetectionOp::AnchorTarget { anchors: 3 * scales })
        }
        // x / ‖x‖₂ over the channels; its reshape copies the bottom's shape.
        "Norm2Layer" => Op::Norm(NormOp::L2Normalize { axis: 1 }),
        // ENet's spatial dropout (SpatialDropoutLayer) keeps the shape.
        l if l.starts_with("SpatialDropout") => Op::Elementwise(E::Dropout { ratio: 0.5 }),
        other => Op::Unknown(UnknownOp { type_name: format!("Python ({other})") }),
    }
}

#[cfg(test)]
mod tests {
    use super::super::text::parse;
    use super::*;

    fn op_of(canonical: &str, text: &str) -> Result<Op, FieldError> {
        let m = parse(text.as_bytes()).unwrap();
        layer_op(canonical, &Params::new(&m, false), 1, 1)
    }

    #[test]
    fn spellings_map_to_one_type() {
        assert_eq!(canonical_type("CONVOLUTION"), "Convolution");
        assert_eq!(canonical_type("conv"), "Convolution");
        assert_eq!(canonical_type("SOFTMAX_LOSS"), "SoftmaxWithLoss");
        assert_eq!(canonical_type("MyFancyLayer"), "MyFancyLayer");
    }

    #[test]
    fn pooling_rounding_flags() {
        let Op::Pool(p) = op_of("Pooling", "pooling_param { pool: MAX kernel_size: 3 stride: 2 }").unwrap() else { panic!() };
        assert_eq!(p.rounding, Rounding::Ceil);
        let Op::Pool(p) = op_of("Pooling", "pooling_param { kernel_size: 3 ceil_mode: false }").unwrap() else { panic!() };
        assert_eq!(p.rounding, Rounding::Floor);
        let Op::Pool(p) = op_of("Pooling", "pooling_param { kernel_size: 3 round_mode: FLOOR }").unwrap() else { panic!() };
        assert_eq!(p.rounding, Rounding::Floor);
    }

    #[test]
    fn unknown_enum_and_bad_numbers_are_located() {
        let e = op_of("Pooling", "pooling_param {\n pool: MAXIMUM kernel_size: 2 }").unwrap_err();
        assert_eq!(e.line, 2);
        assert!(e.message.contains("one of MAX, AVE, STOCHASTIC"), "{}", e.message);
        let e = op_of("Convolution", "convolution_param { num_output: -3 kernel_size: 3 }").unwrap_err();
        assert!(e.message.contains("non-negative integer for \"num_output\""), "{}", e.message);
        assert!(op_of("Convolution", "convolution_param { num_output: 3 }").is_err());
        assert!(op_of("Convolution", "convolution_param { num_output: 3 kernel_size: 3 stride: 0 }").is_err());
    }

    #[test]
    fn v0_reads_flat_legacy_names() {
        let m = parse(b"name: 'conv1' type: 'conv' num_output: 96 kernelsize: 11 stride: 4 biasterm: false").unwrap();
        let Op::Conv(ConvOp::Forward(c)) = layer_op("Convolution", &Params::new(&m, true), 1, 1).unwrap() else { panic!() };
        assert_eq!((c.out_channels, c.window.kernel.clone(), c.bias), (96, vec![11, 11], false));
    }

    #[test]
    fn python_param_str_values() {
        assert_eq!(yaml_int("'num_classes': 21", "num_classes"), Some(21));
        assert_eq!(yaml_int("'feat_stride': 16", "num_classes"), None);
        assert_eq!(yaml_list_len("'feat_stride': 16 \\n'scales': !!python/tuple [4, 8, 16, 32]", "scales"), Some(4));
        assert_eq!(yaml_list_len("\"scales\": (8, 16)", "scales"), Some(2));
        let m = parse(b"python_param { layer: 'AnchorTargetLayer' param_str: \"'feat_stride': 16\" }").unwrap();
        assert_eq!(python_op(&Params::new(&m, false), 1), Op::Detection(DetectionOp::AnchorTarget { anchors: 9 }));
    }

    #[test]
    fn c3d_layers_are_three_axis_windows() {
        let Op::Conv(ConvOp::Forward(c)) =
            op_of("Convolution3D", "convolution3d_param { num_output: 64 kernel_size: 3 kernel_depth: 3 pad: 1 temporal_pad: 1 temporal_stride: 2 filter_group: 4 }").unwrap()
        else {
            panic!()
        };
        assert_eq!((c.window.kernel.clone(), c.window.stride.clone(), c.window.pad_begin.clone(), c.group), (vec![3, 3, 3], vec![2, 1, 1], vec![1, 1, 1], 1));
        // Deconvolution3D's bias comes from convolution_param (default true).
        let Op::Conv(ConvOp::Transposed(d)) =
            op_of("Deconvolution3D", "convolution3d_param { num_output: 4 kernel_size: 3 kernel_depth: 1 bias_term: false }").unwrap()
        else {
            panic!()
        };
        assert!(d.bias);
        let Op::Pool(p) = op_of("POOLING3D", "pooling_param { pool: MAX kernel_size: 2 kernel_depth: 2 stride: 2 temporal_stride: 2 }").unwrap() else {
            panic!()
        };
        assert_eq!((p.rounding, p.clip_last_window, p.window.kernel.clone()), (Rounding::Ceil, false, vec![2, 2, 2]));
        assert!(op_of("Pooling3D", "pooling3d_param { pool: MAX kernel_size: 2 kernel_depth: 2 pad: 1 }").is_err());
        assert!(op_of("Convolution3D", "convolution3d_param { num_output: 4 kernel_size: 3 }").is_err());
    }

    #[test]
    fn loss_types_with_a_suffix() {
        assert!(matches!(op_of("SmoothL1LossOHEM", "").unwrap(), Op::Loss(LossOp::Loss { .. })));
        assert!(matches!(op_of("MultiBoxLoss", "").unwrap(), Op::Loss(LossOp::Loss { .. })));
    }

    #[test]
    fn legacy_concat_and_slice_dims() {
        assert_eq!(op_of("Concat", "concat_param { concat_dim: 2 }").unwrap(), Op::Layout(LayoutOp::Concat { axis: 2 }));
        let Op::Layout(LayoutOp::Slice(s)) = op_of("Slice", "slice_param { slice_dim: 1 slice_point: 1 }").unwrap() else { panic!() };
        assert_eq!((s.axis, s.points), (1, vec![1]));
    }
}
