//! Detection layers: SSD's PriorBox and DetectionOutput, Fast R-CNN's
//! ROIPooling (also ONNX MaxRoiPool), ONNX RoiAlign, py-faster-rcnn's region
//! proposals.

use super::{
    channels, known, no_grad, nth, overflow, ConvGeometry, ExtraSaved, Family, MemoryFacts, OutShape, ParamSpec,
    SavedType, ScheduleFacts,
};
use crate::tensor::{checked_product, DType, Shape, ShapeError};

/// The detection family.
#[derive(Clone, Debug, PartialEq)]
pub enum DetectionOp {
    PriorBox(PriorBoxParams),
    /// Kept detections: (1, 1, D, 7), D set at run time.
    DetectionOutput(DetectionOutputParams),
    RoiPool(RoiPoolParams),
    /// Bilinear RoI sampling (ONNX RoiAlign): (R, C, h, w) with R the rois' rows.
    RoiAlign(RoiPoolParams),
    /// Region proposals (py-faster-rcnn's Python ProposalLayer): (R, 5), R set at run time.
    Proposal,
}

impl Family for DetectionOp {
    fn name(&self) -> &'static str {
        match self {
            DetectionOp::PriorBox(_) => "PriorBox",
            DetectionOp::DetectionOutput(_) => "DetectionOutput",
            DetectionOp::RoiPool(_) => "RoiPool",
            DetectionOp::RoiAlign(_) => "RoiAlign",
            DetectionOp::Proposal => "Proposal",
        }
    }

    fn infer_shapes(&self, inputs: &[&Shape], n_outputs: usize) -> Result<Vec<OutShape>, ShapeError> {
        let run_time = |dims: Vec<u64>| Ok(vec![OutShape::RunTime(Shape(dims)); n_outputs.max(1)]);
        match self {
            DetectionOp::PriorBox(p) => known(prior_box_shape(p, inputs)?, n_outputs),
            DetectionOp::DetectionOutput(_) => run_time(vec![1, 1, 1, 7]),
            DetectionOp::RoiPool(p) | DetectionOp::RoiAlign(p) => known(roi_pool_shape(p, inputs)?, n_outputs),
            DetectionOp::Proposal => run_time(vec![1, 5]),
        }
    }

    fn has_weights(&self) -> bool {
        false
    }

    fn param_specs(&self, _: &[&Shape]) -> Result<Vec<ParamSpec>, ShapeError> {
        Ok(Vec::new())
    }

    fn schedule_facts(&self) -> ScheduleFacts {
        match self {
            DetectionOp::PriorBox(_)
            | DetectionOp::DetectionOutput(_)
            | DetectionOp::RoiPool(_)
            | DetectionOp::RoiAlign(_)
            | DetectionOp::Proposal => ScheduleFacts::COMPUTES,
        }
    }

    /// RoI pooling keeps its inputs and an int32 argmax per output element;
    /// prior boxes, proposals and the detection output have no gradient.
    fn memory_facts(&self, inputs: &[&Shape], outputs: &[&Shape]) -> MemoryFacts {
        match self {
            DetectionOp::RoiPool(_) => MemoryFacts {
                saves_inputs: (0..inputs.len()).collect(),
                extra_saved: vec![ExtraSaved {
                    what: "argmax",
                    elems: outputs.first().and_then(|s| s.elems()).unwrap_or(0),
                    dtype: SavedType::Fixed(DType::I32),
                }],
                ..Default::default()
            },
            // The gradient scatters through bilinear weights computed from
            // the rois (and batch indices): those, not the features.
            DetectionOp::RoiAlign(_) => MemoryFacts { saves_inputs: (1..inputs.len()).collect(), ..Default::default() },
            DetectionOp::PriorBox(_) | DetectionOp::DetectionOutput(_) | DetectionOp::Proposal => no_grad(),
        }
    }

    fn conv_geometry(&self, _: Option<&Shape>, _: &[&Shape]) -> Option<ConvGeometry> {
        None
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct PriorBoxParams {
    pub n_min_sizes: u64,
    pub n_max_sizes: u64,
    pub aspect_ratios: Vec<f64>,
    pub flip: bool,
}

impl PriorBoxParams {
    /// Boxes per feature-map position: the ratio list starts with 1; each new
    /// ratio is added (and its reciprocal when flipping); then
    /// ratios × min sizes + max sizes.
    pub fn priors_per_position(&self) -> u64 {
        let mut ratios = vec![1.0f64];
        for &ar in &self.aspect_ratios {
            if ratios.iter().any(|r| (r - ar).abs() < 1e-6) {
                continue;
            }
            ratios.push(ar);
            if self.flip && ar != 0.0 {
                ratios.push(1.0 / ar);
            }
        }
        (ratios.len() as u64).saturating_mul(self.n_min_sizes).saturating_add(self.n_max_sizes)
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct DetectionOutputParams {
    /// Upper bound on detections kept per image, when the file states it.
    pub keep_top_k: Option<u64>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct RoiPoolParams {
    pub pooled_h: u64,
    pub pooled_w: u64,
}

/// (1, 2, H·W·priors·4): box corners in channel 0, variances in channel 1.
pub fn prior_box_shape(p: &PriorBoxParams, inputs: &[&Shape]) -> Result<Shape, ShapeError> {
    let feature = nth(inputs, 0, "feature map")?;
    nth(inputs, 1, "image")?;
    let hw = checked_product(feature.dims().get(2..4).ok_or_else(|| {
        ShapeError::new(format!("PriorBox needs an N×C×H×W feature map, got {feature}"))
    })?)
    .ok_or_else(|| overflow("feature map"))?;
    let len = hw
        .checked_mul(p.priors_per_position())
        .and_then(|v| v.checked_mul(4))
        .ok_or_else(|| overflow("prior count"))?;
    Ok(Shape(vec![1, 2, len]))
}

/// (R, C, pooled_h, pooled_w) where R is the rois' row count; R is usually set
/// at run time by a proposal layer, in which case the rois are unknown already.
pub fn roi_pool_shape(p: &RoiPoolParams, inputs: &[&Shape]) -> Result<Shape, ShapeError> {
    let features = nth(inputs, 0, "feature map")?;
    let rois = nth(inputs, 1, "region list")?;
    Ok(Shape(vec![rois.dim(0)?, channels(features)?, p.pooled_h, p.pooled_w]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ssd_prior_counts() {
        // conv4_3: min 30, max 60, ratio 2 with flip → {1, 2, 1/2}·1 + 1 = 4.
        let p = PriorBoxParams { n_min_sizes: 1, n_max_sizes: 1, aspect_ratios: vec![2.0], flip: true };
        assert_eq!(p.priors_per_position(), 4);
        let p = PriorBoxParams { aspect_ratios: vec![2.0, 3.0], ..p };
        assert_eq!(p.priors_per_position(), 6);
        let s = prior_box_shape(&p, &[&Shape::new(vec![1, 1024, 19, 19]), &Shape::new(vec![1, 3, 300, 300])]);
        assert_eq!(s.unwrap().dims(), &[1, 2, 19 * 19 * 6 * 4]);
    }

    #[test]
    fn duplicate_ratio_is_counted_once() {
        let p = PriorBoxParams { n_min_sizes: 1, n_max_sizes: 0, aspect_ratios: vec![1.0, 2.0, 2.0], flip: false };
        assert_eq!(p.priors_per_position(), 2);
    }
}
