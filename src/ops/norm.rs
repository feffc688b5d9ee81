//! Normalisation and per-channel affine layers: BatchNorm (running statistics),
//! Scale and Bias (Caffe's learned gamma/beta or a second-input factor), the fork
//! BN layer, SSD's Normalize, and LRN. All keep the input's shape.

use super::{channels, nth, ExtraSaved, MemoryFacts, ParamSpec};
use crate::tensor::{DType, Shape, ShapeError};

#[derive(Clone, Debug, PartialEq)]
pub struct LrnParams {
    pub local_size: u64,
    /// ACROSS_CHANNELS (true) or WITHIN_CHANNEL.
    pub across_channels: bool,
}

/// Caffe Scale / Bias: the factor covers `num_axes` axes of the input from `axis`.
#[derive(Clone, Debug, PartialEq)]
pub struct ScaleParams {
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
        extra_saved: vec![ExtraSaved { what: "LRN scale", elems, dtype: None }],
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
        extra_saved: vec![ExtraSaved { what: "batch statistics", elems: c.saturating_mul(2), dtype: Some(DType::F32) }],
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
        extra_saved: vec![ExtraSaved { what: "norms", elems, dtype: None }],
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
