//! Normalisation and per-channel affine layers: BatchNorm (running statistics),
//! Scale and Bias (Caffe's learned gamma/beta or a second-input factor), the fork
//! BN layer, SSD's Normalize, LRN, and ONNX's LayerNorm and GroupNorm /
//! InstanceNorm over feature axes. All keep the input's shape.

use super::value::{shape_arg, Input};
use super::{
    channels, first, known, nth, ConvGeometry, ExtraSaved, Family, InputLayout, MemoryFacts, OutShape, ParamSpec, SavedType,
    ScheduleFacts,
};
use crate::tensor::{DType, Shape, ShapeError};

/// The normalisation family.
#[derive(Clone, Debug, PartialEq)]
pub enum NormOp {
    /// Local response normalisation (Caffe LRN, ONNX LRN).
    Lrn(LrnParams),
    /// Normalises with running statistics (Caffe BatchNorm: mean, variance, factor).
    BatchNorm {
        /// ε added to the variance.
        eps: f32,
        /// Caffe's scale-factor blob (statistics divided by it).
        caffe_factor: bool,
    },
    /// Caffe Scale: multiply by a learned or second-input scale, optional bias.
    Scale(ScaleParams),
    /// Caffe Bias: add a learned or second-input bias.
    Bias(ScaleParams),
    /// Fork BN layer: learned scale and shift per channel, optional running stats.
    BnFork {
        /// Whether it keeps running statistics.
        running_stats: bool,
    },
    /// SSD Normalize: L2 across channels with a learned scale.
    Normalize {
        /// One scale for every channel.
        channel_shared: bool,
    },
    /// Normalises over the axes from `axis` on, learned scale and bias.
    LayerNorm {
        /// The first normalised axis.
        axis: i64,
        /// ε.
        eps: f32,
    },
    /// Normalises per group of channels; `None` groups: one per channel (InstanceNorm).
    GroupNorm {
        /// The number of groups (`None`: one per channel).
        groups: Option<u64>,
        /// ε.
        eps: f32,
    },
    /// x / ‖x‖₂ over the axes from `axis` on, no weights (Python normalisers).
    L2Normalize {
        /// The first normalised axis.
        axis: i64,
    },
    /// x / √(mean(x²) + ε) · scale over the axes from `axis` on (ONNX
    /// RMSNormalization; ORT's SimplifiedLayerNormalization, whose optional
    /// outputs are LayerNorm's row statistics).
    RmsNorm {
        /// The first normalised axis.
        axis: i64,
    },
    /// ORT's SkipLayerNormalization (`rms` false: inputs x, skip, gamma,
    /// beta, bias) and SkipSimplifiedLayerNormalization (`rms` true: x, skip,
    /// gamma, bias): the norm of x + skip (+ bias) over the last axis.
    /// Outputs: y, mean and inverse deviation per row (the last axis kept as
    /// 1), and x + skip + bias.
    SkipNorm {
        /// The RMS form (no mean subtracted).
        rms: bool,
    },
}

impl Family for NormOp {
    fn name(&self) -> &'static str {
        match self {
            NormOp::Lrn(_) => "LRN",
            NormOp::BatchNorm { .. } => "BatchNorm",
            NormOp::Scale(_) => "Scale",
            NormOp::Bias(_) => "Bias",
            NormOp::BnFork { .. } => "BN",
            NormOp::Normalize { .. } => "Normalize",
            NormOp::LayerNorm { .. } => "LayerNorm",
            NormOp::GroupNorm { groups: None, .. } => "InstanceNorm",
            NormOp::GroupNorm { groups: Some(_), .. } => "GroupNorm",
            NormOp::L2Normalize { .. } => "L2Normalize",
            NormOp::RmsNorm { .. } => "RMSNorm",
            NormOp::SkipNorm { rms: false } => "SkipLayerNorm",
            NormOp::SkipNorm { rms: true } => "SkipRMSNorm",
        }
    }

    fn infer_shapes(&self, inputs: &[&Shape], n_outputs: usize) -> Result<Vec<OutShape>, ShapeError> {
        let shape = match self {
            NormOp::Lrn(_) | NormOp::BatchNorm { .. } | NormOp::BnFork { .. } | NormOp::Normalize { .. } => {
                first(inputs)?.clone()
            }
            NormOp::Scale(p) | NormOp::Bias(p) => scale_shape(p, inputs)?,
            NormOp::LayerNorm { .. } | NormOp::GroupNorm { .. } | NormOp::RmsNorm { .. } | NormOp::SkipNorm { .. } => {
                nth(inputs, 0, "data input")?.clone()
            }
            NormOp::L2Normalize { axis } => {
                let x = first(inputs)?;
                x.axis(*axis)?;
                x.clone()
            }
        };
        known(shape, n_outputs)
    }

    fn has_weights(&self) -> bool {
        match self {
            NormOp::Lrn(_) | NormOp::L2Normalize { .. } => false,
            NormOp::BatchNorm { .. }
            | NormOp::Scale(_)
            | NormOp::Bias(_)
            | NormOp::BnFork { .. }
            | NormOp::Normalize { .. }
            | NormOp::LayerNorm { .. }
            | NormOp::GroupNorm { .. }
            | NormOp::RmsNorm { .. }
            | NormOp::SkipNorm { .. } => true,
        }
    }

    fn param_specs(&self, inputs: &[&Shape]) -> Result<Vec<ParamSpec>, ShapeError> {
        match self {
            NormOp::Lrn(_) | NormOp::L2Normalize { .. } => Ok(Vec::new()),
            NormOp::BatchNorm { caffe_factor, .. } => batch_norm_params(*caffe_factor, first(inputs)?),
            NormOp::Scale(p) => scale_params(p, inputs, true),
            NormOp::Bias(p) => scale_params(p, inputs, false),
            NormOp::BnFork { running_stats } => bn_fork_params(*running_stats, first(inputs)?),
            NormOp::Normalize { channel_shared } => normalize_params(*channel_shared, first(inputs)?),
            NormOp::LayerNorm { axis, .. } => {
                let x = nth(inputs, 0, "data input")?;
                Ok(affine(x.dims()[x.axis(*axis)?..].to_vec()))
            }
            NormOp::GroupNorm { .. } => Ok(affine(vec![nth(inputs, 0, "data input")?.dim(1)?])),
            NormOp::RmsNorm { axis } => {
                let x = nth(inputs, 0, "data input")?;
                Ok(vec![ParamSpec::learned("scale", x.dims()[x.axis(*axis)?..].to_vec())])
            }
            NormOp::SkipNorm { rms } => {
                let h = nth(inputs, 0, "data input")?.axis(-1).map(|a| inputs[0].dims()[a])?;
                Ok(if *rms { vec![ParamSpec::learned("scale", vec![h])] } else { affine(vec![h]) })
            }
        }
    }

    /// Batch, layer and group normalisation hold an input-sized temporary in backward.
    fn schedule_facts(&self) -> ScheduleFacts {
        match self {
            NormOp::Lrn(_) | NormOp::Scale(_) | NormOp::Bias(_) | NormOp::Normalize { .. } | NormOp::L2Normalize { .. } => {
                ScheduleFacts::COMPUTES
            }
            NormOp::BatchNorm { .. }
            | NormOp::BnFork { .. }
            | NormOp::LayerNorm { .. }
            | NormOp::GroupNorm { .. }
            | NormOp::RmsNorm { .. }
            | NormOp::SkipNorm { .. } => ScheduleFacts { backward_input_temporary: true, ..ScheduleFacts::COMPUTES },
        }
    }

    fn memory_facts(&self, inputs: &[&Shape], outputs: &[&Shape]) -> MemoryFacts {
        let in0 = inputs.first().copied();
        match self {
            NormOp::Lrn(_) => lrn_memory(in0),
            NormOp::BatchNorm { .. } | NormOp::BnFork { .. } => batch_norm_memory(in0),
            NormOp::Scale(_) => scale_memory(inputs.len()),
            NormOp::Bias(_) => bias_memory(),
            NormOp::Normalize { .. } => normalize_memory(in0),
            NormOp::LayerNorm { axis, .. } => layer_norm_memory(*axis, in0),
            NormOp::GroupNorm { groups, .. } => group_norm_memory(*groups, in0),
            // The gradient (dy − y·(y·dy)) / ‖x‖ is computed from the input.
            NormOp::L2Normalize { .. } => MemoryFacts { saves_inputs: vec![0], ..Default::default() },
            NormOp::RmsNorm { axis } => rms_norm_memory(*axis, in0),
            NormOp::SkipNorm { rms } => skip_norm_memory(*rms, in0, outputs),
        }
    }

    fn conv_geometry(&self, _: Option<&Shape>, _: &[&Shape]) -> Option<ConvGeometry> {
        None
    }

    /// Inputs in ONNX order (x, scale, bias, mean, variance). Extra outputs:
    /// batch norm's running (and saved) statistics, one per channel; layer
    /// norm's mean and inverse deviation, one per normalised row (the
    /// normalised axes kept as 1).
    fn infer(&self, ins: &[Option<Input<'_>>], n_outputs: usize) -> Result<Vec<OutShape>, ShapeError> {
        let x = shape_arg(ins, 0, "data input")?;
        match self {
            NormOp::BatchNorm { .. } => {
                let mut outs = vec![OutShape::Known(x.clone())];
                if n_outputs > 1 {
                    let c = channels(x)?;
                    outs.extend(std::iter::repeat_n(OutShape::Known(Shape::new(vec![c])), n_outputs - 1));
                }
                Ok(outs)
            }
            NormOp::LayerNorm { axis, .. } | NormOp::RmsNorm { axis } => {
                let a = x.axis(*axis)?;
                let mut stats = x.dims()[..a].to_vec();
                stats.resize(x.rank(), 1);
                let mut outs = vec![OutShape::Known(x.clone())];
                outs.extend(std::iter::repeat_n(OutShape::Known(Shape(stats)), n_outputs.saturating_sub(1)));
                Ok(outs)
            }
            NormOp::SkipNorm { .. } => {
                if n_outputs > 4 {
                    return Err(ShapeError::new(format!("the layer declares {n_outputs} outputs, at most 4")));
                }
                let mut stats = x.dims().to_vec();
                *stats.last_mut().ok_or_else(|| ShapeError::new("the data input is a scalar"))? = 1;
                let mut outs = vec![OutShape::Known(x.clone())];
                outs.extend((1..n_outputs).map(|k| OutShape::Known(if k == 3 { x.clone() } else { Shape(stats.clone()) })));
                Ok(outs)
            }
            NormOp::Lrn(_)
            | NormOp::Scale(_)
            | NormOp::Bias(_)
            | NormOp::BnFork { .. }
            | NormOp::Normalize { .. }
            | NormOp::GroupNorm { .. }
            | NormOp::L2Normalize { .. } => self.infer_shapes(&super::value::present_shapes(ins)?, n_outputs),
        }
    }

    /// Batch norm's statistics outputs have the running mean's type; layer
    /// norm's are float32 (ONNX's default `stash_type`).
    fn out_dtype(&self, ins: &[Option<Input<'_>>], index: usize) -> Option<DType> {
        if index == 0 {
            return None;
        }
        match self {
            NormOp::BatchNorm { .. } => ins.get(3).copied().flatten().map(|m| m.dtype),
            NormOp::LayerNorm { .. } | NormOp::RmsNorm { .. } => Some(DType::F32),
            NormOp::SkipNorm { .. } => (index != 3).then_some(DType::F32),
            NormOp::Lrn(_)
            | NormOp::Scale(_)
            | NormOp::Bias(_)
            | NormOp::BnFork { .. }
            | NormOp::Normalize { .. }
            | NormOp::GroupNorm { .. }
            | NormOp::L2Normalize { .. } => None,
        }
    }
}

/// Learned weights of LayerNorm / GroupNorm: a scale and a bias over the
/// normalised features (LayerNorm) or the channels (GroupNorm).
fn affine(dims: Vec<u64>) -> Vec<ParamSpec> {
    vec![ParamSpec::learned("scale", dims.clone()), ParamSpec::learned("bias", dims)]
}

/// Memory facts of LayerNorm: the input and two f32 statistics per normalised row.
pub fn layer_norm_memory(axis: i64, input: Option<&Shape>) -> MemoryFacts {
    let rows = input.and_then(|s| s.axis(axis).ok().map(|a| s.dims()[..a].iter().product::<u64>())).unwrap_or(0);
    MemoryFacts {
        saves_inputs: vec![0],
        saves_params: true,
        extra_saved: vec![ExtraSaved { what: "row statistics", elems: rows.saturating_mul(2), dtype: SavedType::Fixed(DType::F32) }],
        // The kernel normalises contiguous rows.
        input_layout: InputLayout::Contiguous,
        ..Default::default()
    }
}

/// Rows normalised: the product of the dims before `axis`.
fn norm_rows(axis: i64, input: Option<&Shape>) -> u64 {
    input.and_then(|s| s.axis(axis).ok().map(|a| s.dims()[..a].iter().product::<u64>())).unwrap_or(0)
}

/// Memory facts of RMSNorm: the input and one f32 statistic (1/rms) per normalised row.
pub fn rms_norm_memory(axis: i64, input: Option<&Shape>) -> MemoryFacts {
    MemoryFacts {
        saves_inputs: vec![0],
        saves_params: true,
        extra_saved: vec![ExtraSaved { what: "row statistics", elems: norm_rows(axis, input), dtype: SavedType::Fixed(DType::F32) }],
        ..Default::default()
    }
}

/// Memory facts of the skip norms: the sum x + skip (+ bias) that is
/// normalised — output 3 when the node declares it, else a tensor of its
/// own — and the f32 row statistics (mean and 1/σ; 1/rms alone for RMS).
pub fn skip_norm_memory(rms: bool, input: Option<&Shape>, outputs: &[&Shape]) -> MemoryFacts {
    let rows = norm_rows(-1, input);
    let mut f = MemoryFacts {
        saves_params: true,
        extra_saved: vec![ExtraSaved {
            what: "row statistics",
            elems: if rms { rows } else { rows.saturating_mul(2) },
            dtype: SavedType::Fixed(DType::F32),
        }],
        ..Default::default()
    };
    if outputs.len() > 3 {
        f.saves_outputs = vec![3];
    } else {
        let elems = input.and_then(Shape::elems).unwrap_or(0);
        f.extra_saved.push(ExtraSaved { what: "input + skip sum", elems, dtype: SavedType::Compute });
    }
    f
}

/// Memory facts of GroupNorm / InstanceNorm: the input and two f32 statistics per group.
pub fn group_norm_memory(groups: Option<u64>, input: Option<&Shape>) -> MemoryFacts {
    let n = input.and_then(|s| s.dims().first().copied()).unwrap_or(0);
    let c = input.and_then(|s| s.dims().get(1).copied()).unwrap_or(0);
    let g = groups.unwrap_or(c);
    MemoryFacts {
        saves_inputs: vec![0],
        saves_params: true,
        extra_saved: vec![ExtraSaved {
            what: "group statistics",
            elems: n.saturating_mul(g).saturating_mul(2),
            dtype: SavedType::Fixed(DType::F32),
        }],
        ..Default::default()
    }
}

/// LRN's parameters.
#[derive(Clone, Debug, PartialEq)]
pub struct LrnParams {
    /// The window's extent.
    pub local_size: u64,
    /// ACROSS_CHANNELS (true) or WITHIN_CHANNEL.
    pub across_channels: bool,
}

/// Caffe Scale / Bias: the factor covers `num_axes` axes of the input from `axis`.
#[derive(Clone, Debug, PartialEq)]
pub struct ScaleParams {
    /// The first axis the factor covers.
    pub axis: i64,
    /// -1: every axis from `axis` to the end.
    pub num_axes: i64,
    /// Scale only: also learn a bias of the factor's shape.
    pub bias: bool,
}

/// The axes `[axis, axis+num_axes)` of the input that a learned factor covers.
fn factor_dims(p: &ScaleParams, input: &Shape) -> Result<Vec<u64>, ShapeError> {
    let axis = if input.rank() == 0 { 0 } else { input.axis(p.axis)? };
    let end = if p.num_axes < 0 { input.rank() } else { axis.saturating_add(p.num_axes as usize) };
    input
        .dims()
        .get(axis..end)
        .map(<[u64]>::to_vec)
        .ok_or_else(|| ShapeError::new(format!("num_axes {} from axis {} exceeds input {input}", p.num_axes, p.axis)))
}

/// Caffe Scale / Bias: the input's shape; a second-input factor must match its axes from `axis` (or be a scalar).
pub fn scale_shape(p: &ScaleParams, inputs: &[&Shape]) -> Result<Shape, ShapeError> {
    let x = nth(inputs, 0, "blob to scale")?;
    if let Some(factor) = inputs.get(1) {
        // A scalar factor broadcasts; otherwise it must match x's axes from `axis`.
        if factor.elems() != Some(1) {
            let axis = x.axis(p.axis)?;
            let end = axis + factor.rank();
            if x.dims().get(axis..end) != Some(factor.dims()) {
                return Err(ShapeError::new(format!(
                    "factor {factor} does not match axes {axis}..{end} of {x}"
                )));
            }
        }
    } else {
        factor_dims(p, x)?;
    }
    Ok(x.clone())
}

/// Scale: the learned factor (one bottom) and the optional bias.
/// Bias layer (`is_scale` false): the learned bias when there is one bottom.
pub fn scale_params(p: &ScaleParams, inputs: &[&Shape], is_scale: bool) -> Result<Vec<ParamSpec>, ShapeError> {
    let x = nth(inputs, 0, "blob to scale")?;
    let second = inputs.get(1);
    let dims = match second {
        Some(f) => f.dims().to_vec(),
        None => factor_dims(p, x)?,
    };
    let mut specs = Vec::new();
    if is_scale {
        if second.is_none() {
            specs.push(ParamSpec::learned("scale", dims.clone()));
        }
        if p.bias {
            specs.push(ParamSpec::learned("bias", dims));
        }
    } else if second.is_none() {
        specs.push(ParamSpec::learned("bias", dims));
    }
    Ok(specs)
}

/// Caffe BatchNorm stores mean (C), variance (C) and a 1-element moving-average
/// factor; none is learned. Gamma and beta live in the following Scale.
pub fn batch_norm_params(caffe_factor: bool, input: &Shape) -> Result<Vec<ParamSpec>, ShapeError> {
    let c = channels(input)?;
    let mut specs = vec![ParamSpec::statistic("mean", vec![c]), ParamSpec::statistic("variance", vec![c])];
    if caffe_factor {
        specs.push(ParamSpec::statistic("factor", vec![1]));
    }
    Ok(specs)
}

/// The fork BN (SegNet/ENet/PSPNet) learns scale and shift per channel, stored
/// as (1, C, 1, 1); PSPNet's variant adds running mean and variance.
pub fn bn_fork_params(running_stats: bool, input: &Shape) -> Result<Vec<ParamSpec>, ShapeError> {
    let c = channels(input)?;
    let mut specs = vec![ParamSpec::learned("scale", vec![1, c, 1, 1]), ParamSpec::learned("shift", vec![1, c, 1, 1])];
    if running_stats {
        specs.push(ParamSpec::statistic("mean", vec![1, c, 1, 1]));
        specs.push(ParamSpec::statistic("variance", vec![1, c, 1, 1]));
    }
    Ok(specs)
}

/// SSD Normalize: a learned scale per channel, or one shared.
pub fn normalize_params(channel_shared: bool, input: &Shape) -> Result<Vec<ParamSpec>, ShapeError> {
    let n = if channel_shared { 1 } else { channels(input)? };
    Ok(vec![ParamSpec::learned("scale", vec![n])])
}

/// Memory facts of LRN: input, output and the scale it divided by.
pub fn lrn_memory(input: Option<&Shape>) -> MemoryFacts {
    let elems = input.and_then(|s| s.elems()).unwrap_or(0);
    MemoryFacts {
        saves_inputs: vec![0],
        saves_outputs: vec![0],
        extra_saved: vec![ExtraSaved { what: "LRN scale", elems, dtype: SavedType::Compute }],
        ..Default::default()
    }
}

/// Memory facts of batch normalisation (Caffe BatchNorm, fork BN): the input
/// plus per-channel mean and inverse std of the batch.
pub fn batch_norm_memory(input: Option<&Shape>) -> MemoryFacts {
    let c = input.and_then(|s| s.dims().get(1).copied()).unwrap_or(0);
    MemoryFacts {
        saves_inputs: vec![0],
        saves_params: true,
        extra_saved: vec![ExtraSaved { what: "batch statistics", elems: c.saturating_mul(2), dtype: SavedType::Fixed(DType::F32) }],
        ..Default::default()
    }
}

/// Memory facts of Caffe Scale: the scale's gradient needs the input, the
/// input's gradient the scale (a second input or a weight).
pub fn scale_memory(n_inputs: usize) -> MemoryFacts {
    MemoryFacts { saves_inputs: (0..n_inputs).collect(), saves_params: true, ..Default::default() }
}

/// Memory facts of Caffe Bias: a linear map, backward needs only shapes.
pub fn bias_memory() -> MemoryFacts {
    MemoryFacts::default()
}

/// Memory facts of SSD Normalize: the input and its norms.
pub fn normalize_memory(input: Option<&Shape>) -> MemoryFacts {
    let elems = input.and_then(|s| s.elems()).unwrap_or(0);
    MemoryFacts {
        saves_inputs: vec![0],
        saves_params: true,
        extra_saved: vec![ExtraSaved { what: "norms", elems, dtype: SavedType::Compute }],
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sp(axis: i64, num_axes: i64, bias: bool) -> ScaleParams {
        ScaleParams { axis, num_axes, bias }
    }

    fn count(specs: &[ParamSpec], trainable: bool) -> u64 {
        specs.iter().filter(|s| s.trainable == trainable).map(|s| s.shape.elems().unwrap()).sum()
    }

    #[test]
    fn scale_with_bias_learns_two_vectors() {
        let x = Shape::new(vec![1, 64, 56, 56]);
        assert_eq!(count(&scale_params(&sp(1, 1, true), &[&x], true).unwrap(), true), 128);
        assert_eq!(count(&scale_params(&sp(1, 1, false), &[&x], true).unwrap(), true), 64);
    }

    #[test]
    fn scale_by_second_bottom_learns_nothing() {
        // SE-BN-Inception: (1,C,H,W) times (1,C) with axis 0.
        let x = Shape::new(vec![1, 256, 28, 28]);
        let f = Shape::new(vec![1, 256]);
        assert_eq!(scale_shape(&sp(0, 1, false), &[&x, &f]).unwrap(), x);
        assert!(scale_params(&sp(0, 1, false), &[&x, &f], true).unwrap().is_empty());
        assert!(scale_shape(&sp(0, 1, false), &[&x, &Shape::new(vec![1, 255])]).is_err());
    }

    #[test]
    fn batch_norm_statistics_are_2c_plus_1() {
        let x = Shape::new(vec![1, 64, 8, 8]);
        assert_eq!(count(&batch_norm_params(true, &x).unwrap(), false), 129);
        assert_eq!(count(&batch_norm_params(true, &x).unwrap(), true), 0);
    }

    #[test]
    fn num_axes_minus_one_covers_the_rest() {
        let x = Shape::new(vec![2, 3, 4]);
        assert_eq!(scale_params(&sp(1, -1, false), &[&x], true).unwrap()[0].shape.dims(), &[3, 4]);
    }
}
