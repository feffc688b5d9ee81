//! Spatial resampling besides deconvolution: SegNet's Upsample (unpooling with
//! the max-pool mask), the DeconvNet forks' Unpooling (to a stated size, the
//! size of the blob the paired pooling read, or a window rule), DeepLab/PSPNet's
//! bilinear Interp, and resampling by
//! scales or sizes given as inputs (ONNX Resize and Upsample, whose shapes the
//! ONNX loader takes from tract). A linear map of the input: backward needs
//! only shapes.

use super::{
    first, known, nth, overflow, ConvGeometry, ExtraSaved, Family, MemoryFacts, OutShape, ParamSpec, SavedType, ScheduleFacts,
};
use crate::tensor::{DType, Shape, ShapeError};

/// The resampling family.
#[derive(Clone, Debug, PartialEq)]
pub enum ResizeOp {
    Upsample(UpsampleParams),
    Interp(InterpParams),
    /// Unpooling: (N, C, H', W') with H', W' from `UnpoolParams::size`.
    Unpool(UnpoolParams),
    /// Resampling by scales or sizes given as inputs; `mode` as the file names it.
    Scaled { mode: String },
}

impl Family for ResizeOp {
    fn name(&self) -> &'static str {
        match self {
            ResizeOp::Upsample(_) => "Upsample",
            ResizeOp::Interp(_) => "Interp",
            ResizeOp::Unpool(_) => "Unpool",
            ResizeOp::Scaled { .. } => "Resize",
        }
    }

    fn infer_shapes(&self, inputs: &[&Shape], n_outputs: usize) -> Result<Vec<OutShape>, ShapeError> {
        let shape = match self {
            ResizeOp::Upsample(p) => upsample_shape(p, first(inputs)?)?,
            ResizeOp::Interp(p) => interp_shape(p, inputs)?,
            ResizeOp::Unpool(p) => unpool_shape(p, inputs)?,
            ResizeOp::Scaled { .. } => {
                return Err(ShapeError::new(
                    "Resize: the output shape depends on input values (taken from the ONNX shape analysis)",
                ))
            }
        };
        known(shape, n_outputs)
    }

    fn has_weights(&self) -> bool {
        false
    }

    fn param_specs(&self, _: &[&Shape]) -> Result<Vec<ParamSpec>, ShapeError> {
        Ok(Vec::new())
    }

    fn schedule_facts(&self) -> ScheduleFacts {
        match self {
            ResizeOp::Upsample(_) | ResizeOp::Interp(_) | ResizeOp::Unpool(_) | ResizeOp::Scaled { .. } => {
                ScheduleFacts::COMPUTES
            }
        }
    }

    /// Unpooling's backward reads the gradient at the mask's positions (it keeps
    /// the mask input); a mask-free unpooling keeps its int32 position map of
    /// one output plane.
    fn memory_facts(&self, _: &[&Shape], outputs: &[&Shape]) -> MemoryFacts {
        match self {
            ResizeOp::Unpool(p) => unpool_memory(p, outputs.first().copied()),
            ResizeOp::Upsample(_) | ResizeOp::Interp(_) | ResizeOp::Scaled { .. } => MemoryFacts::default(),
        }
    }

    fn conv_geometry(&self, _: Option<&Shape>, _: &[&Shape]) -> Option<ConvGeometry> {
        None
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct UpsampleParams {
    pub scale_h: u64,
    pub scale_w: u64,
    /// Explicit output extents override the scale.
    pub out_h: Option<u64>,
    pub out_w: Option<u64>,
    /// Subtract one from the scaled extent (odd pre-pool sizes).
    pub pad_out_h: bool,
    pub pad_out_w: bool,
}

#[derive(Clone, Debug, PartialEq)]
pub struct InterpParams {
    pub height: Option<u64>,
    pub width: Option<u64>,
    pub zoom: Option<u64>,
    pub shrink: Option<u64>,
    /// Negative values crop.
    pub pad_beg: i64,
    pub pad_end: i64,
}

#[derive(Clone, Debug, PartialEq)]
pub struct UnpoolParams {
    pub size: UnpoolSize,
    /// Input 1 is the argmax mask of a max pooling.
    pub mask_input: bool,
}

/// Where an unpooling's output extent comes from.
#[derive(Clone, Debug, PartialEq)]
pub enum UnpoolSize {
    /// Stated (`unpool_size`, `unpool_h`/`unpool_w`), or the extent of the blob
    /// the paired max pooling read, which the loader looks up.
    Fixed { h: u64, w: u64 },
    /// The height and width of input `index` (a reference blob).
    LikeInput(usize),
    /// (H−1)·stride − 2·pad + kernel per axis, (h, w) pairs.
    Window { kernel: [u64; 2], stride: [u64; 2], pad: [u64; 2] },
    /// The window fitted to input `index`: kernel = stride = ⌈H_ref/H⌉ (stride 1
    /// when that is H_ref), pad = ⌊((H−1)·stride + kernel − H_ref)/2⌋, then the
    /// window rule (extended-caffe's UnPooling with a second bottom).
    FitInput(usize),
}

fn spatial(input: &Shape) -> Result<(u64, u64), ShapeError> {
    match input.dims() {
        [_, _, h, w] => Ok((*h, *w)),
        _ => Err(ShapeError::new(format!("expected an N×C×H×W input, got {input}"))),
    }
}

pub fn upsample_shape(p: &UpsampleParams, input: &Shape) -> Result<Shape, ShapeError> {
    let (h, w) = spatial(input)?;
    let scaled = |extent: u64, scale: u64, pad_out: bool| {
        extent
            .checked_mul(scale)
            .map(|v| v.saturating_sub(u64::from(pad_out)))
            .ok_or_else(|| overflow("upsampled extent"))
    };
    let out_h = match p.out_h {
        Some(v) => v,
        None => scaled(h, p.scale_h, p.pad_out_h)?,
    };
    let out_w = match p.out_w {
        Some(v) => v,
        None => scaled(w, p.scale_w, p.pad_out_w)?,
    };
    Ok(Shape(vec![input.dims()[0], input.dims()[1], out_h, out_w]))
}

/// Unpooling: batch and channels of input 0, height and width from the size rule.
pub fn unpool_shape(p: &UnpoolParams, inputs: &[&Shape]) -> Result<Shape, ShapeError> {
    let x = nth(inputs, 0, "blob to unpool")?;
    let (h, w) = spatial(x)?;
    let window = |extent: u64, k: u64, s: u64, pad: u64| -> Result<u64, ShapeError> {
        let grown = (extent.saturating_sub(1)).checked_mul(s).and_then(|v| v.checked_add(k)).ok_or_else(|| overflow("unpooled extent"))?;
        grown
            .checked_sub(pad.saturating_mul(2))
            .filter(|&v| v > 0)
            .ok_or_else(|| ShapeError::new(format!("unpooling pad {pad} leaves nothing of extent {extent}")))
    };
    let fit = |extent: u64, reference: u64| -> Result<u64, ShapeError> {
        if extent == 0 {
            return Err(ShapeError::new("unpooling an empty blob"));
        }
        let k = reference.div_ceil(extent);
        let s = if k == reference { 1 } else { k };
        let span = ((extent - 1) * s + k) as i128 - reference as i128;
        let pad = span.div_euclid(2).max(0) as u64;
        window(extent, k, s, pad)
    };
    let (out_h, out_w) = match &p.size {
        UnpoolSize::Fixed { h, w } => (*h, *w),
        UnpoolSize::LikeInput(i) => spatial(nth(inputs, *i, "reference blob")?)?,
        UnpoolSize::Window { kernel, stride, pad } => (window(h, kernel[0], stride[0], pad[0])?, window(w, kernel[1], stride[1], pad[1])?),
        UnpoolSize::FitInput(i) => {
            let (rh, rw) = spatial(nth(inputs, *i, "reference blob")?)?;
            (fit(h, rh)?, fit(w, rw)?)
        }
    };
    if out_h == 0 || out_w == 0 {
        return Err(ShapeError::new("unpooling to an empty extent"));
    }
    Ok(Shape(vec![x.dims()[0], x.dims()[1], out_h, out_w]))
}

pub fn unpool_memory(p: &UnpoolParams, output: Option<&Shape>) -> MemoryFacts {
    let mut f = MemoryFacts::default();
    if p.mask_input {
        f.saves_inputs.push(1);
    }
    if matches!(p.size, UnpoolSize::Window { .. } | UnpoolSize::FitInput(_)) {
        let plane = output.and_then(|s| s.dims().get(2..).and_then(|hw| hw.iter().try_fold(1u64, |a, &d| a.checked_mul(d)))).unwrap_or(0);
        f.extra_saved.push(ExtraSaved { what: "unpooling position map", elems: plane, dtype: SavedType::Fixed(DType::I32) });
    }
    f
}

pub fn interp_shape(p: &InterpParams, inputs: &[&Shape]) -> Result<Shape, ShapeError> {
    let x = nth(inputs, 0, "blob to resize")?;
    let (h, w) = spatial(x)?;
    let (out_h, out_w) = if let Some(reference) = inputs.get(1) {
        spatial(reference)?
    } else if let (Some(oh), Some(ow)) = (p.height, p.width) {
        (oh, ow)
    } else {
        let effective = |extent: u64| {
            let e = extent as i128 + p.pad_beg as i128 + p.pad_end as i128;
            if e <= 0 {
                Err(ShapeError::new(format!("padding {}+{} leaves nothing of extent {extent}", p.pad_beg, p.pad_end)))
            } else {
                Ok(e as u64)
            }
        };
        let (mut eh, mut ew) = (effective(h)?, effective(w)?);
        if let Some(s) = p.shrink {
            if s == 0 {
                return Err(ShapeError::new("shrink_factor 0"));
            }
            eh = (eh - 1) / s + 1;
            ew = (ew - 1) / s + 1;
        }
        if let Some(z) = p.zoom {
            if z == 0 {
                return Err(ShapeError::new("zoom_factor 0"));
            }
            let grow = |e: u64| (e - 1).checked_mul(z - 1).and_then(|v| v.checked_add(e)).ok_or_else(|| overflow("zoom"));
            eh = grow(eh)?;
            ew = grow(ew)?;
        }
        (eh, ew)
    };
    Ok(Shape(vec![x.dims()[0], x.dims()[1], out_h, out_w]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segnet_upsample_with_explicit_and_padded_extent() {
        let p = UpsampleParams { scale_h: 2, scale_w: 2, out_h: Some(45), out_w: Some(60), pad_out_h: false, pad_out_w: false };
        assert_eq!(upsample_shape(&p, &Shape::new(vec![1, 64, 23, 30])).unwrap().dims(), &[1, 64, 45, 60]);
        let p = UpsampleParams { out_h: None, out_w: None, pad_out_h: true, ..p };
        assert_eq!(upsample_shape(&p, &Shape::new(vec![1, 64, 23, 30])).unwrap().dims(), &[1, 64, 45, 60]);
    }

    #[test]
    fn unpooling_sizes() {
        let x = Shape::new(vec![1, 16, 4, 4]);
        let fixed = UnpoolParams { size: UnpoolSize::Fixed { h: 8, w: 8 }, mask_input: true };
        assert_eq!(unpool_shape(&fixed, &[&x, &x]).unwrap().dims(), &[1, 16, 8, 8]);
        // SegNet's pairing: the 15×20 blob the pooling read, not (8−1)·2+2 = 16.
        let r = Shape::new(vec![1, 8, 15, 20]);
        let like = UnpoolParams { size: UnpoolSize::LikeInput(2), mask_input: true };
        assert_eq!(unpool_shape(&like, &[&Shape::new(vec![1, 8, 8, 10]), &x, &r]).unwrap().dims(), &[1, 8, 15, 20]);
        let win = UnpoolParams { size: UnpoolSize::Window { kernel: [2, 3], stride: [2, 2], pad: [0, 1] }, mask_input: false };
        // (4−1)·2 + 2 = 8; (4−1)·2 − 2 + 3 = 7.
        assert_eq!(unpool_shape(&win, &[&x]).unwrap().dims(), &[1, 16, 8, 7]);
        // Fitted to a 15-high reference from 8: k = s = 2, pad ⌊(7·2+2−15)/2⌋ = 0 → 16
        // (extended-caffe's rule overshoots by one here); to 16 exactly → 16.
        let fit = UnpoolParams { size: UnpoolSize::FitInput(1), mask_input: false };
        let x8 = Shape::new(vec![1, 2, 8, 8]);
        assert_eq!(unpool_shape(&fit, &[&x8, &Shape::new(vec![1, 2, 15, 16])]).unwrap().dims(), &[1, 2, 16, 16]);
        // 24 from 8: k = s = 3, pad 0 → 24.
        assert_eq!(unpool_shape(&fit, &[&x8, &Shape::new(vec![1, 2, 24, 16])]).unwrap().dims(), &[1, 2, 24, 16]);
    }

    #[test]
    fn pspnet_zoom_by_eight() {
        // 60 + 59·7 = 473
        let p = InterpParams { height: None, width: None, zoom: Some(8), shrink: None, pad_beg: 0, pad_end: 0 };
        assert_eq!(interp_shape(&p, &[&Shape::new(vec![1, 150, 60, 60])]).unwrap().dims(), &[1, 150, 473, 473]);
    }

    #[test]
    fn interp_to_reference_blob() {
        let p = InterpParams { height: None, width: None, zoom: None, shrink: None, pad_beg: 0, pad_end: 0 };
        let r = Shape::new(vec![1, 512, 60, 60]);
        assert_eq!(interp_shape(&p, &[&Shape::new(vec![1, 512, 1, 1]), &r]).unwrap().dims(), &[1, 512, 60, 60]);
    }
}
