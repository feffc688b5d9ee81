//! Detection layers: SSD's PriorBox and DetectionOutput, Fast R-CNN's
//! ROIPooling (also ONNX MaxRoiPool), ONNX RoiAlign, R-FCN's position-sensitive
//! RoI pooling, py-faster-rcnn's region proposals and its training targets
//! (anchor and proposal targets), YOLOv2's Region activation. Counts the data
//! decides (proposals, detections) are run-time extents with a symbol: see
//! `OutShape::RunTimeExtent`.

use super::{
    channels, first, known, no_grad, nth, overflow, ConvGeometry, ExtraSaved, Family, MemoryFacts, OutShape, ParamSpec,
    SavedType, ScheduleFacts,
};
use crate::tensor::{checked_product, DType, Shape, ShapeError};

/// The detection family.
#[derive(Clone, Debug, PartialEq)]
pub enum DetectionOp {
    /// SSD PriorBox: the anchor boxes of a feature map, (1, 2, H·W·priors·4).
    PriorBox(PriorBoxParams),
    /// Kept detections: (1, 1, D, 7), D set at run time.
    DetectionOutput(DetectionOutputParams),
    /// Caffe ROIPooling: (R, C, pooled_h, pooled_w) with R the rois' rows.
    RoiPool(RoiPoolParams),
    /// Bilinear RoI sampling (ONNX RoiAlign): (R, C, h, w) with R the rois' rows.
    RoiAlign(RoiPoolParams),
    /// Region proposals (py-faster-rcnn's Python ProposalLayer): (R, 5), R set at run time.
    Proposal,
    /// Position-sensitive RoI pooling: (R, output_dim, g, g) from a score map of
    /// output_dim·g² channels.
    PsRoiPool {
        /// Output channels.
        output_dim: u64,
        /// The g×g grid of positions.
        group_size: u64,
    },
    /// Training targets for sampled proposals: rois (S, 5), labels (S) and
    /// three (S, 4·num_classes) regression blobs; S set at run time.
    ProposalTarget {
        /// Classes (regression blobs hold 4 per class).
        num_classes: u64,
    },
    /// Training targets for the anchors of an RPN score map (1, 2A, H, W):
    /// labels (1, 1, A·H, W) and three (1, 4A, H, W) blobs.
    AnchorTarget {
        /// Anchors per position (A).
        anchors: u64,
    },
    /// YOLOv2's output activation (logistic on box centres and objectness,
    /// softmax over classes): same shape, no weights, no backward.
    Region,
}

impl Family for DetectionOp {
    fn name(&self) -> &'static str {
        match self {
            DetectionOp::PriorBox(_) => "PriorBox",
            DetectionOp::DetectionOutput(_) => "DetectionOutput",
            DetectionOp::RoiPool(_) => "RoiPool",
            DetectionOp::RoiAlign(_) => "RoiAlign",
            DetectionOp::Proposal => "Proposal",
            DetectionOp::Region => "Region",
            DetectionOp::PsRoiPool { .. } => "PsRoiPool",
            DetectionOp::ProposalTarget { .. } => "ProposalTarget",
            DetectionOp::AnchorTarget { .. } => "AnchorTarget",
        }
    }

    fn infer_shapes(&self, inputs: &[&Shape], n_outputs: usize) -> Result<Vec<OutShape>, ShapeError> {
        match self {
            DetectionOp::PriorBox(p) => known(prior_box_shape(p, inputs)?, n_outputs),
            DetectionOp::DetectionOutput(_) => Ok(vec![rows(vec![1, 1, 1, 7], 2, "D"); n_outputs.max(1)]),
            DetectionOp::RoiPool(p) | DetectionOp::RoiAlign(p) => known(roi_pool_shape(p, inputs)?, n_outputs),
            // rois [R, 5] (batch index and corners), then scores [R, 1].
            DetectionOp::Proposal => Ok([vec![1, 5], vec![1, 1]].into_iter().take(n_outputs.max(1)).map(|d| rows(d, 0, "R")).collect()),
            DetectionOp::PsRoiPool { output_dim, group_size } => known(psroi_pool_shape(*output_dim, *group_size, inputs)?, n_outputs),
            DetectionOp::ProposalTarget { num_classes } => {
                let width = num_classes.checked_mul(4).ok_or_else(|| overflow("target width"))?;
                let dims = [vec![1, 5], vec![1], vec![1, width], vec![1, width], vec![1, width]];
                if n_outputs > dims.len() {
                    return Err(ShapeError::new(format!("ProposalTarget writes at most {} tops", dims.len())));
                }
                Ok(dims.into_iter().take(n_outputs.max(1)).map(|d| rows(d, 0, "S")).collect())
            }
            DetectionOp::AnchorTarget { anchors } => anchor_target_shapes(*anchors, inputs, n_outputs),
            DetectionOp::Region => {
                if n_outputs > 1 {
                    return Err(ShapeError::new("Region with several tops (a region-loss layout) has no rule"));
                }
                known(first(inputs)?.clone(), 1)
            }
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
            | DetectionOp::Proposal
            | DetectionOp::Region
            | DetectionOp::PsRoiPool { .. }
            | DetectionOp::ProposalTarget { .. }
            | DetectionOp::AnchorTarget { .. } => ScheduleFacts::COMPUTES,
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
            // The backward reads the rois and the channel each output came from.
            DetectionOp::PsRoiPool { .. } => MemoryFacts {
                saves_inputs: vec![1],
                extra_saved: vec![ExtraSaved {
                    what: "source channel map",
                    elems: outputs.first().and_then(|s| s.elems()).unwrap_or(0),
                    dtype: SavedType::Fixed(DType::I32),
                }],
                ..Default::default()
            },
            DetectionOp::PriorBox(_)
            | DetectionOp::DetectionOutput(_)
            | DetectionOp::Proposal
            | DetectionOp::Region
            | DetectionOp::ProposalTarget { .. }
            | DetectionOp::AnchorTarget { .. } => no_grad(),
        }
    }

    fn conv_geometry(&self, _: Option<&Shape>, _: &[&Shape]) -> Option<ConvGeometry> {
        None
    }
}

/// A shape whose extent along `axis` is a count set at run time, named `symbol`.
fn rows(dims: Vec<u64>, axis: usize, symbol: &'static str) -> OutShape {
    OutShape::RunTimeExtent { shape: Shape(dims), axis, symbol }
}

/// SSD PriorBox's parameters.
#[derive(Clone, Debug, PartialEq)]
pub struct PriorBoxParams {
    /// Number of `min_size` values.
    pub n_min_sizes: u64,
    /// Number of `max_size` values.
    pub n_max_sizes: u64,
    /// The `aspect_ratio` values.
    pub aspect_ratios: Vec<f64>,
    /// Whether each ratio's reciprocal is added.
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

/// SSD DetectionOutput's parameters.
#[derive(Clone, Debug, PartialEq)]
pub struct DetectionOutputParams {
    /// Upper bound on detections kept per image, when the file states it.
    pub keep_top_k: Option<u64>,
}

/// RoI pooling's output grid.
#[derive(Clone, Debug, PartialEq)]
pub struct RoiPoolParams {
    /// Output height.
    pub pooled_h: u64,
    /// Output width.
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
    if p.pooled_h == 0 || p.pooled_w == 0 {
        return Err(ShapeError::new("ROIPooling needs pooled_h and pooled_w above 0"));
    }
    Ok(Shape(vec![rois.dim(0)?, channels(features)?, p.pooled_h, p.pooled_w]))
}

/// (R, output_dim, g, g); the score map must have output_dim·g² channels.
pub fn psroi_pool_shape(output_dim: u64, group_size: u64, inputs: &[&Shape]) -> Result<Shape, ShapeError> {
    let features = nth(inputs, 0, "score map")?;
    let rois = nth(inputs, 1, "region list")?;
    if output_dim == 0 || group_size == 0 {
        return Err(ShapeError::new("PSROIPooling needs output_dim and group_size above 0"));
    }
    let c = channels(features)?;
    let want = group_size.checked_mul(group_size).and_then(|g2| g2.checked_mul(output_dim)).ok_or_else(|| overflow("score channels"))?;
    if c != want {
        return Err(ShapeError::new(format!(
            "PSROIPooling: the score map has {c} channels, output_dim·group_size² = {output_dim}·{group_size}² = {want}"
        )));
    }
    Ok(Shape(vec![rois.dim(0)?, output_dim, group_size, group_size]))
}

/// Anchor targets from the RPN score map (1, 2A, H, W): labels (1, 1, A·H, W),
/// then bbox targets, inside and outside weights (1, 4A, H, W).
pub fn anchor_target_shapes(anchors: u64, inputs: &[&Shape], n_outputs: usize) -> Result<Vec<OutShape>, ShapeError> {
    let score = nth(inputs, 0, "RPN score map")?;
    let [_, _, h, w] = score.dims() else {
        return Err(ShapeError::new(format!("AnchorTarget needs an N×C×H×W score map, got {score}")));
    };
    if n_outputs > 4 {
        return Err(ShapeError::new("AnchorTarget writes at most 4 tops"));
    }
    let ah = anchors.checked_mul(*h).ok_or_else(|| overflow("anchor rows"))?;
    let a4 = anchors.checked_mul(4).ok_or_else(|| overflow("anchor targets"))?;
    let mut outs = vec![OutShape::Known(Shape(vec![1, 1, ah, *w]))];
    for _ in 1..n_outputs {
        outs.push(OutShape::Known(Shape(vec![1, a4, *h, *w])));
    }
    Ok(outs)
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
    fn position_sensitive_pooling_checks_its_channels() {
        let rois = Shape::new(vec![300, 5]);
        let s = psroi_pool_shape(21, 7, &[&Shape::new(vec![1, 21 * 49, 38, 50]), &rois]).unwrap();
        assert_eq!(s.dims(), &[300, 21, 7, 7]);
        assert!(psroi_pool_shape(21, 7, &[&Shape::new(vec![1, 1000, 38, 50]), &rois]).is_err());
    }

    #[test]
    fn anchor_targets_follow_the_score_map() {
        // VGG16 at 600×1000: rpn_cls_score (1, 18, 38, 63), A = 9.
        let outs = anchor_target_shapes(9, &[&Shape::new(vec![1, 18, 38, 63])], 4).unwrap();
        assert_eq!(outs[0], OutShape::Known(Shape::new(vec![1, 1, 342, 63])));
        assert_eq!(outs[3], OutShape::Known(Shape::new(vec![1, 36, 38, 63])));
    }

    #[test]
    fn duplicate_ratio_is_counted_once() {
        let p = PriorBoxParams { n_min_sizes: 1, n_max_sizes: 0, aspect_ratios: vec![1.0, 2.0, 2.0], flip: false };
        assert_eq!(p.priors_per_position(), 2);
    }
}
