//! Pooling (Caffe Pooling; ONNX MaxPool, AveragePool and their global forms).
//!
//! Output extent: `round((in + pads − k) / stride) + 1` with Caffe's default
//! CEIL rounding (FLOOR with `round_mode: FLOOR` or the fork's `ceil_mode:
//! false`), then, when the loader asks for it, the last window is dropped if it
//! would start in the padding: `(out − 1)·stride ≥ in + pad_begin` ⇒ `out − 1`.

use super::value::Input;
use super::window::{Rounding, Window};
use super::{first, known, ConvGeometry, ExtraSaved, Family, MemoryFacts, OutShape, ParamSpec, SavedType, ScheduleFacts};
use crate::tensor::{checked_product, DType, Shape, ShapeError};

/// How a pooling window combines its elements.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PoolMethod {
    /// The maximum.
    Max,
    /// The mean.
    Average,
    /// A sample drawn by value (Caffe stochastic pooling).
    Stochastic,
    /// The p-norm of each window (ONNX LpPool).
    Lp,
}

/// A pooling layer's parameters.
#[derive(Clone, Debug, PartialEq)]
pub struct PoolParams {
    /// How windows combine.
    pub method: PoolMethod,
    /// The window geometry.
    pub window: Window,
    /// How a partial last window counts.
    pub rounding: Rounding,
    /// Pool over the whole spatial extent (output 1×1).
    pub global: bool,
    /// Drop a last window that would start inside the padding (Caffe applies
    /// this only when pad > 0; PyTorch and ONNX whenever rounding is CEIL).
    pub clip_last_window: bool,
}

impl PoolMethod {
    /// The method's name in reports.
    pub fn name(self) -> &'static str {
        match self {
            PoolMethod::Max => "MaxPool",
            PoolMethod::Average => "AvgPool",
            PoolMethod::Stochastic => "StochasticPool",
            PoolMethod::Lp => "LpPool",
        }
    }
}

/// Pooling is a family of one operator, its method a parameter.
impl Family for PoolParams {
    fn name(&self) -> &'static str {
        self.method.name()
    }

    fn infer_shapes(&self, inputs: &[&Shape], n_outputs: usize) -> Result<Vec<OutShape>, ShapeError> {
        known(pool_shape(self, first(inputs)?)?, n_outputs)
    }

    fn has_weights(&self) -> bool {
        false
    }

    fn param_specs(&self, _: &[&Shape]) -> Result<Vec<ParamSpec>, ShapeError> {
        Ok(Vec::new())
    }

    fn schedule_facts(&self) -> ScheduleFacts {
        ScheduleFacts::COMPUTES
    }

    fn memory_facts(&self, _: &[&Shape], outputs: &[&Shape]) -> MemoryFacts {
        pool_memory(self, outputs.first().copied())
    }

    fn conv_geometry(&self, _: Option<&Shape>, _: &[&Shape]) -> Option<ConvGeometry> {
        None
    }

    /// ONNX MaxPool's second output holds int64 positions.
    fn out_dtype(&self, _: &[Option<Input<'_>>], index: usize) -> Option<DType> {
        (index == 1 && self.method == PoolMethod::Max).then_some(DType::I64)
    }
}

/// Pooling: the window rule per spatial axis, channels and batch kept.
pub fn pool_shape(p: &PoolParams, input: &Shape) -> Result<Shape, ShapeError> {
    if input.rank() < 3 {
        return Err(ShapeError::new(format!("pooling needs an N×C×spatial input, got {input}")));
    }
    let n_spatial = input.rank() - 2;
    let mut dims = input.dims()[..2].to_vec();
    if p.global {
        dims.extend(std::iter::repeat_n(1, n_spatial));
        return Ok(Shape(dims));
    }
    if p.window.n_axes() != n_spatial {
        return Err(ShapeError::new(format!(
            "input {input} has {n_spatial} spatial axes but the window has {}",
            p.window.n_axes()
        )));
    }
    let window = p.window.resolved(&input.dims()[2..])?;
    for (i, &extent) in input.dims()[2..].iter().enumerate() {
        let mut out = window.output_extent(i, extent, p.rounding)?;
        let stride = window.stride[i];
        let starts_in_padding = (out - 1)
            .checked_mul(stride)
            .is_none_or(|start| start >= extent.saturating_add(window.pad_begin[i]));
        if p.clip_last_window && out > 1 && starts_in_padding {
            out -= 1;
        }
        dims.push(out);
    }
    Ok(Shape(dims))
}

/// Window elements each output reads (the kernel area, or the whole input when global).
pub fn window_elems(p: &PoolParams, input: &Shape) -> Option<u64> {
    if p.global {
        checked_product(input.dims().get(2..)?)
    } else {
        checked_product(&p.window.kernel)
    }
}

/// Memory facts of pooling. Max pooling's backward scatters into the argmax
/// positions: one index per output element in the backend's index type
/// (int64 in PyTorch), plus the input for its shape; average pooling's
/// backward takes the input as argument.
pub fn pool_memory(p: &PoolParams, output: Option<&Shape>) -> MemoryFacts {
    let mut f = MemoryFacts { saves_inputs: vec![0], ..Default::default() };
    match p.method {
        PoolMethod::Max => {
            let elems = output.and_then(|s| s.elems()).unwrap_or(0);
            f.extra_saved.push(ExtraSaved { what: "max-pool indices", elems, dtype: SavedType::PoolIndex });
        }
        // d‖x‖ₚ/dx = (x/‖x‖ₚ)^(p−1)·sign(x): the input and the output.
        PoolMethod::Lp => f.saves_outputs = vec![0],
        PoolMethod::Average | PoolMethod::Stochastic => {}
    }
    f
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caffe_pool(k: u64, s: u64, pad: u64, rounding: Rounding) -> PoolParams {
        PoolParams {
            method: PoolMethod::Max,
            window: Window::symmetric(vec![k, k], vec![s, s], vec![pad, pad], vec![1, 1]),
            rounding,
            global: false,
            clip_last_window: pad > 0,
        }
    }

    fn hw(p: &PoolParams, h: u64) -> u64 {
        pool_shape(p, &Shape::new(vec![1, 8, h, h])).unwrap().dims()[2]
    }

    #[test]
    fn ceil_is_caffe_default() {
        assert_eq!(hw(&caffe_pool(3, 2, 0, Rounding::Ceil), 112), 56); // GoogLeNet
        assert_eq!(hw(&caffe_pool(3, 2, 0, Rounding::Floor), 112), 55);
        assert_eq!(hw(&caffe_pool(3, 2, 0, Rounding::Ceil), 32), 16); // CIFAR
        assert_eq!(hw(&caffe_pool(2, 2, 0, Rounding::Ceil), 75), 38); // SSD pool3
    }

    #[test]
    fn ceil_mode_false_with_padding() {
        // DenseNet pool1: 112, k3 s2 p1 → FLOOR 56; CEIL would give 57 before the clip.
        assert_eq!(hw(&caffe_pool(3, 2, 1, Rounding::Floor), 112), 56);
    }

    #[test]
    fn last_window_starting_in_padding_is_dropped() {
        // in 5, k2 s2 pad1: ceil((5+2-2)/2)+1 = 4, but window 4 starts at 6 ≥ 5+1 → 3.
        assert_eq!(hw(&caffe_pool(2, 2, 1, Rounding::Ceil), 5), 3);
        let no_clip = PoolParams { clip_last_window: false, ..caffe_pool(2, 2, 1, Rounding::Ceil) };
        assert_eq!(hw(&no_clip, 5), 4);
    }

    #[test]
    fn global_pool_is_one_by_one() {
        let p = PoolParams { global: true, ..caffe_pool(1, 1, 0, Rounding::Ceil) };
        assert_eq!(pool_shape(&p, &Shape::new(vec![2, 1024, 7, 7])).unwrap().dims(), &[2, 1024, 1, 1]);
    }

    #[test]
    fn placeholder_one_by_one_survives_ceil() {
        // OpenPose's 1x1 placeholder input stays 1x1 through 2x2/s2 CEIL pools.
        assert_eq!(hw(&caffe_pool(2, 2, 0, Rounding::Ceil), 1), 1);
    }
}
