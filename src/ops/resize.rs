//! Spatial resampling besides deconvolution: SegNet's Upsample (unpooling with
//! the max-pool mask), the DeconvNet forks' Unpooling (to a stated size, the
//! size of the blob the paired pooling read, or a window rule), DeepLab/PSPNet's
//! bilinear Interp, and resampling by scales or sizes (ONNX Resize and
//! Upsample). A linear map of the input: backward needs only shapes.
//!
//! ONNX output extents, as the specification and its reference give them:
//! with sizes, the sizes (`keep_aspect_ratio_policy` not_larger/not_smaller:
//! one scale, the min/max of size/extent over the axes, then
//! `⌊scale·extent + ½⌋`); with scales, `⌊extent·scale⌋`. Scales are float32:
//! the product is taken both in f64 and in f32, and when the two floors
//! differ the extent is not certain and the rule does not apply. With scales,
//! `tf_crop_and_resize` is left to other analyses (the specification scales
//! the region of interest, the reference does not).

use super::value::{floats_arg, ints_arg, shape_arg, Input};
use super::{
    first, known, nth, overflow, ConvGeometry, ExtraSaved, Family, MemoryFacts, OutShape, ParamSpec, SavedType, ScheduleFacts,
};
use crate::tensor::{DType, Shape, ShapeError};

/// The resampling family.
#[derive(Clone, Debug, PartialEq)]
pub enum ResizeOp {
    /// Caffe Upsample (SegNet, YOLO): integer scales or stated extents.
    Upsample(UpsampleParams),
    /// Caffe Interp (PSPNet, DeepLab): to stated extents, or by zoom/shrink factors.
    Interp(InterpParams),
    /// Unpooling: (N, C, H', W') with H', W' from `UnpoolParams::size`.
    Unpool(UnpoolParams),
    /// Resampling by scales or sizes (ONNX Resize, Upsample).
    Scaled(ScaledParams),
}

/// Where an ONNX Resize or Upsample finds its scales or sizes.
#[derive(Clone, Debug, PartialEq)]
pub struct ScaledParams {
    /// `mode` as the file names it.
    pub mode: String,
    /// Scales given as an attribute (Upsample, opset 7).
    pub scales: Vec<f32>,
    /// Input positions of the scales and sizes in this opset (`None`: not an input).
    pub scales_input: Option<usize>,
    /// Input position of the sizes (`None`: not an input).
    pub sizes_input: Option<usize>,
    /// The axes scales and sizes apply to (opset 18); empty: every axis.
    pub axes: Vec<i64>,
    /// How sizes keep the aspect ratio.
    pub policy: AspectPolicy,
    /// `coordinate_transformation_mode` is tf_crop_and_resize.
    pub tf_crop_and_resize: bool,
}

/// `keep_aspect_ratio_policy` (opset 18).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AspectPolicy {
    /// Each axis to its own size.
    Stretch,
    /// The largest size that fits inside the sizes, aspect kept.
    NotLarger,
    /// The smallest size that covers the sizes, aspect kept.
    NotSmaller,
}

impl Family for ResizeOp {
    fn name(&self) -> &'static str {
        match self {
            ResizeOp::Upsample(_) => "Upsample",
            ResizeOp::Interp(_) => "Interp",
            ResizeOp::Unpool(_) => "Unpool",
            ResizeOp::Scaled(_) => "Resize",
        }
    }

    fn infer_shapes(&self, inputs: &[&Shape], n_outputs: usize) -> Result<Vec<OutShape>, ShapeError> {
        let shape = match self {
            ResizeOp::Upsample(p) => upsample_shape(p, first(inputs)?)?,
            ResizeOp::Interp(p) => interp_shape(p, inputs)?,
            ResizeOp::Unpool(p) => unpool_shape(p, inputs)?,
            ResizeOp::Scaled(p) if p.scales_input.is_none() && p.sizes_input.is_none() => scaled_shape(p, first(inputs)?, None, None)?,
            ResizeOp::Scaled(_) => return Err(ShapeError::new("Resize: the output shape depends on input values")),
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
            ResizeOp::Upsample(_) | ResizeOp::Interp(_) | ResizeOp::Unpool(_) | ResizeOp::Scaled(_) => ScheduleFacts::COMPUTES,
        }
    }

    /// Unpooling's backward reads the gradient at the mask's positions (it keeps
    /// the mask input); a mask-free unpooling keeps its int32 position map of
    /// one output plane.
    fn memory_facts(&self, _: &[&Shape], outputs: &[&Shape]) -> MemoryFacts {
        match self {
            ResizeOp::Unpool(p) => unpool_memory(p, outputs.first().copied()),
            ResizeOp::Upsample(_) | ResizeOp::Interp(_) | ResizeOp::Scaled(_) => MemoryFacts::default(),
        }
    }

    fn conv_geometry(&self, _: Option<&Shape>, _: &[&Shape]) -> Option<ConvGeometry> {
        None
    }

    fn infer(&self, ins: &[Option<Input<'_>>], n_outputs: usize) -> Result<Vec<OutShape>, ShapeError> {
        match self {
            ResizeOp::Scaled(p) => {
                let x = shape_arg(ins, 0, "data input")?;
                let sizes = match p.sizes_input {
                    Some(i) => ints_arg(ins, i, "output sizes")?.filter(|v| !v.is_empty()),
                    None => None,
                };
                let scales = match (p.scales_input, &sizes) {
                    (Some(i), None) => floats_arg(ins, i, "scales")?.filter(|v| !v.is_empty()),
                    _ => None,
                };
                known(scaled_shape(p, x, scales.as_deref(), sizes.as_deref())?, n_outputs)
            }
            ResizeOp::Upsample(_) | ResizeOp::Interp(_) | ResizeOp::Unpool(_) => {
                self.infer_shapes(&super::value::present_shapes(ins)?, n_outputs)
            }
        }
    }
}

/// ONNX Resize/Upsample output extents (module comment).
pub fn scaled_shape(p: &ScaledParams, x: &Shape, scales: Option<&[f64]>, sizes: Option<&[i64]>) -> Result<Shape, ShapeError> {
    let r = x.rank();
    let axes: Vec<usize> = if p.axes.is_empty() { (0..r).collect() } else { p.axes.iter().map(|&a| x.axis(a)).collect::<Result<_, _>>()? };
    let mut dims = x.dims().to_vec();
    if let Some(sizes) = sizes {
        if sizes.len() != axes.len() {
            return Err(ShapeError::new(format!("Resize: {} sizes for {} axes", sizes.len(), axes.len())));
        }
        let sizes: Vec<u64> = sizes.iter().map(|&v| u64::try_from(v).map_err(|_| ShapeError::new("Resize: negative size"))).collect::<Result<_, _>>()?;
        match p.policy {
            AspectPolicy::Stretch => {
                for (&a, &s) in axes.iter().zip(&sizes) {
                    dims[a] = s;
                }
            }
            AspectPolicy::NotLarger | AspectPolicy::NotSmaller => {
                let ratios = axes.iter().zip(&sizes).map(|(&a, &s)| s as f64 / x.dims()[a] as f64);
                let scale = if p.policy == AspectPolicy::NotLarger { ratios.reduce(f64::min) } else { ratios.reduce(f64::max) };
                let scale = scale.filter(|s| s.is_finite()).ok_or_else(|| ShapeError::new("Resize: no finite scale"))?;
                for &a in &axes {
                    dims[a] = (scale * x.dims()[a] as f64 + 0.5).floor() as u64;
                }
            }
        }
        return Ok(Shape(dims));
    }
    let scales: Vec<f64> = match scales {
        Some(s) => s.to_vec(),
        None if !p.scales.is_empty() => p.scales.iter().map(|&f| f64::from(f)).collect(),
        None => return Err(ShapeError::new("Resize: neither scales nor sizes are given")),
    };
    if p.tf_crop_and_resize {
        return Err(ShapeError::new("Resize: tf_crop_and_resize by scales (the region of interest's role differs between the specification and its reference)"));
    }
    if scales.len() != axes.len() {
        return Err(ShapeError::new(format!("Resize: {} scales for {} axes", scales.len(), axes.len())));
    }
    for (&a, &s) in axes.iter().zip(&scales) {
        let extent = x.dims()[a];
        if !(s.is_finite() && s > 0.0) {
            return Err(ShapeError::new(format!("Resize: scale {s}")));
        }
        let wide = (extent as f64 * s).floor();
        let narrow = f64::from((extent as f32 * s as f32).floor());
        if wide != narrow || wide >= u64::MAX as f64 {
            return Err(ShapeError::new(format!("Resize: {extent}·{s} rounds differently in f32 and f64")));
        }
        dims[a] = wide as u64;
    }
    Ok(Shape(dims))
}

/// Caffe Upsample's parameters.
#[derive(Clone, Debug, PartialEq)]
pub struct UpsampleParams {
    /// Height scale.
    pub scale_h: u64,
    /// Width scale.
    pub scale_w: u64,
    /// Explicit output extents override the scale.
    pub out_h: Option<u64>,
    /// Explicit output width.
    pub out_w: Option<u64>,
    /// Subtract one from the scaled extent (odd pre-pool sizes).
    pub pad_out_h: bool,
    /// Subtract one from the scaled width.
    pub pad_out_w: bool,
}

/// Caffe Interp's parameters.
#[derive(Clone, Debug, PartialEq)]
pub struct InterpParams {
    /// Stated output height.
    pub height: Option<u64>,
    /// Stated output width.
    pub width: Option<u64>,
    /// Zoom factor: (H−1)·zoom + 1.
    pub zoom: Option<u64>,
    /// Shrink factor: (H−1)/shrink + 1.
    pub shrink: Option<u64>,
    /// Negative values crop.
    pub pad_beg: i64,
    /// Padding at the end (negative: crops).
    pub pad_end: i64,
}

/// Unpooling's parameters.
#[derive(Clone, Debug, PartialEq)]
pub struct UnpoolParams {
    /// Where the output extent comes from.
    pub size: UnpoolSize,
    /// Input 1 is the argmax mask of a max pooling.
    pub mask_input: bool,
}

/// Where an unpooling's output extent comes from.
#[derive(Clone, Debug, PartialEq)]
pub enum UnpoolSize {
    /// Stated (`unpool_size`, `unpool_h`/`unpool_w`), or the extent of the blob
    /// the paired max pooling read, which the loader looks up.
    Fixed {
        /// Height.
        h: u64,
        /// Width.
        w: u64,
    },
    /// The height and width of input `index` (a reference blob).
    LikeInput(usize),
    /// (H−1)·stride − 2·pad + kernel per axis, (h, w) pairs.
    Window {
        /// Kernel (h, w).
        kernel: [u64; 2],
        /// Stride (h, w).
        stride: [u64; 2],
        /// Padding (h, w).
        pad: [u64; 2],
    },
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

/// Caffe Upsample: stated extents, else the input's times the scales (minus one where padded).
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

/// Unpooling writes its output whole; its backward gathers (keeps the mask input when given).
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

/// Caffe Interp: stated extents, else zoomed or shrunk, after padding.
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
    fn onnx_resize_by_scales_and_sizes() {
        let p = ScaledParams {
            mode: "nearest".into(),
            scales: vec![],
            scales_input: Some(2),
            sizes_input: Some(3),
            axes: vec![],
            policy: AspectPolicy::Stretch,
            tf_crop_and_resize: false,
        };
        let x = Shape::new(vec![1, 1, 2, 2]);
        // test_resize_upsample_scales_nearest: scales [1, 1, 2, 3] → [1, 1, 4, 6].
        assert_eq!(scaled_shape(&p, &x, Some(&[1.0, 1.0, 2.0, 3.0]), None).unwrap().dims(), &[1, 1, 4, 6]);
        // test_resize_downsample_scales_linear: [1,1,2,4] by 0.6 → [1, 1, 1, 2].
        let x = Shape::new(vec![1, 1, 2, 4]);
        assert_eq!(scaled_shape(&p, &x, Some(&[1.0, 1.0, f64::from(0.6f32), f64::from(0.6f32)]), None).unwrap().dims(), &[1, 1, 1, 2]);
        // test_resize_upsample_sizes_nearest_not_larger: [1,1,2,2], axes 2,3 sizes [7, 8] → scale 3.5 → [1,1,7,7].
        let p2 = ScaledParams { axes: vec![2, 3], policy: AspectPolicy::NotLarger, ..p.clone() };
        assert_eq!(scaled_shape(&p2, &Shape::new(vec![1, 1, 2, 2]), None, Some(&[7, 8])).unwrap().dims(), &[1, 1, 7, 7]);
        let p3 = ScaledParams { policy: AspectPolicy::NotSmaller, ..p2 };
        assert_eq!(scaled_shape(&p3, &Shape::new(vec![1, 1, 2, 2]), None, Some(&[7, 8])).unwrap().dims(), &[1, 1, 8, 8]);
        let crop = ScaledParams { tf_crop_and_resize: true, ..p };
        assert!(scaled_shape(&crop, &x, Some(&[1.0, 1.0, 2.0, 2.0]), None).is_err());
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
