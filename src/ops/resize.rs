//! Spatial resampling besides deconvolution: SegNet's Upsample (unpooling with
//! the max-pool mask), DeepLab/PSPNet's bilinear Interp, and resampling by
//! scales or sizes given as inputs (ONNX Resize and Upsample, whose shapes the
//! ONNX loader takes from tract). A linear map of the input: backward needs
//! only shapes.

use super::{first, known, nth, overflow, ConvGeometry, Family, MemoryFacts, OutShape, ParamSpec, ScheduleFacts};
use crate::tensor::{Shape, ShapeError};

/// The resampling family.
#[derive(Clone, Debug, PartialEq)]
pub enum ResizeOp {
    Upsample(UpsampleParams),
    Interp(InterpParams),
    /// Resampling by scales or sizes given as inputs; `mode` as the file names it.
    Scaled { mode: String },
}

impl Family for ResizeOp {
    fn name(&self) -> &'static str {
        match self {
            ResizeOp::Upsample(_) => "Upsample",
            ResizeOp::Interp(_) => "Interp",
            ResizeOp::Scaled { .. } => "Resize",
        }
    }

    fn infer_shapes(&self, inputs: &[&Shape], n_outputs: usize) -> Result<Vec<OutShape>, ShapeError> {
        let shape = match self {
            ResizeOp::Upsample(p) => upsample_shape(p, first(inputs)?)?,
            ResizeOp::Interp(p) => interp_shape(p, inputs)?,
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
            ResizeOp::Upsample(_) | ResizeOp::Interp(_) | ResizeOp::Scaled { .. } => ScheduleFacts::COMPUTES,
        }
    }

    fn memory_facts(&self, _: &[&Shape], _: &[&Shape]) -> MemoryFacts {
        match self {
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
