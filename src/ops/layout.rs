//! Ops that rearrange, select or join values without arithmetic on them:
//! Concat, Split, Slice, Flatten, Reshape, Crop, Permute, Tile, ShuffleChannel,
//! and ONNX's Squeeze, Unsqueeze, Slice (strided), Pad, Expand and Gather.
//!
//! Their backward is a linear map that needs only shapes (Gather needs its
//! indices). Several ONNX forms take their extents from input *values*
//! (Expand, strided Slice, Pad): their rules return an error and the ONNX
//! loader takes those shapes from tract.

use super::{
    channels, first, known, nth, overflow, resolve_axes, ConvGeometry, Family, MemoryFacts, OutShape, ParamSpec, ScheduleFacts,
    Storage,
};
use crate::tensor::{checked_product, Shape, ShapeError};

/// The layout family.
#[derive(Clone, Debug, PartialEq)]
pub enum LayoutOp {
    Concat { axis: i64 },
    /// Every output is a copy (view) of the input.
    Split,
    Slice(SliceParams),
    Flatten(FlattenParams),
    Reshape(ReshapeParams),
    Crop(CropParams),
    Permute { order: Vec<usize> },
    ShuffleChannel { group: u64 },
    Tile { axis: i64, tiles: u64 },
    Squeeze { axes: Vec<i64> },
    Unsqueeze { axes: Vec<i64> },
    /// ONNX Slice: starts/ends/axes/steps given as inputs.
    StridedSlice,
    Pad,
    /// Broadcasts the input to a shape given as a second input.
    Expand,
    /// Picks slices along `axis` by an index tensor (embedding lookups, token selection).
    Gather { axis: i64 },
    /// Space to depth (YOLOv2's passthrough): (N, C·s², H/s, W/s); `reverse`
    /// goes back, (N, C/s², H·s, W·s). A copy.
    Reorg { stride: u64, reverse: bool },
    /// The input with its order along `axis` reversed (a sequence run backwards). A copy.
    Reverse { axis: i64 },
}

impl Family for LayoutOp {
    fn name(&self) -> &'static str {
        match self {
            LayoutOp::Concat { .. } => "Concat",
            LayoutOp::Split => "Split",
            LayoutOp::Slice(_) => "Slice",
            LayoutOp::Flatten(_) => "Flatten",
            LayoutOp::Reshape(_) => "Reshape",
            LayoutOp::Crop(_) => "Crop",
            LayoutOp::Permute { .. } => "Permute",
            LayoutOp::ShuffleChannel { .. } => "ShuffleChannel",
            LayoutOp::Tile { .. } => "Tile",
            LayoutOp::Squeeze { .. } => "Squeeze",
            LayoutOp::Unsqueeze { .. } => "Unsqueeze",
            LayoutOp::StridedSlice => "StridedSlice",
            LayoutOp::Pad => "Pad",
            LayoutOp::Expand => "Expand",
            LayoutOp::Gather { .. } => "Gather",
            LayoutOp::Reorg { .. } => "Reorg",
            LayoutOp::Reverse { .. } => "Reverse",
        }
    }

    fn infer_shapes(&self, inputs: &[&Shape], n_outputs: usize) -> Result<Vec<OutShape>, ShapeError> {
        let x = || nth(inputs, 0, "data input");
        let shape = match self {
            LayoutOp::Slice(p) => return slice_shapes(p, first(inputs)?, n_outputs),
            LayoutOp::Concat { axis } => concat_shape(*axis, inputs)?,
            LayoutOp::Split => first(inputs)?.clone(),
            LayoutOp::Flatten(p) => flatten_shape(p, first(inputs)?)?,
            LayoutOp::Reshape(p) => reshape_shape(p, first(inputs)?)?,
            LayoutOp::Crop(p) => crop_shape(p, inputs)?,
            LayoutOp::Permute { order } => permute_shape(order, first(inputs)?)?,
            LayoutOp::ShuffleChannel { group } => shuffle_shape(*group, first(inputs)?)?,
            LayoutOp::Tile { axis, tiles } => tile_shape(*axis, *tiles, first(inputs)?)?,
            LayoutOp::Squeeze { axes } => squeeze_shape(x()?, axes)?,
            LayoutOp::Unsqueeze { axes } => unsqueeze_shape(x()?, axes)?,
            LayoutOp::Gather { axis } => gather_shape(x()?, nth(inputs, 1, "indices input")?, *axis)?,
            LayoutOp::Reorg { stride, reverse } => reorg_shape(*stride, *reverse, first(inputs)?)?,
            LayoutOp::Reverse { axis } => {
                let x = first(inputs)?;
                x.axis(*axis)?;
                x.clone()
            }
            LayoutOp::StridedSlice | LayoutOp::Pad | LayoutOp::Expand => {
                return Err(ShapeError::new(format!(
                    "{}: the output shape depends on input values (taken from the ONNX shape analysis)",
                    self.name()
                )))
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

    /// Reshaping, permuting, slicing and broadcasting return views in the
    /// frameworks; joining, cropping, tiling, padding and gathering copy.
    fn schedule_facts(&self) -> ScheduleFacts {
        match self {
            LayoutOp::Reshape(_) | LayoutOp::Flatten(_) => ScheduleFacts { storage: Storage::Reshape, ..ScheduleFacts::COMPUTES },
            LayoutOp::Squeeze { .. }
            | LayoutOp::Unsqueeze { .. }
            | LayoutOp::Permute { .. }
            | LayoutOp::StridedSlice
            | LayoutOp::Slice(_)
            | LayoutOp::Split
            | LayoutOp::Expand => ScheduleFacts::VIEW,
            LayoutOp::Concat { .. }
            | LayoutOp::Crop(_)
            | LayoutOp::ShuffleChannel { .. }
            | LayoutOp::Tile { .. }
            | LayoutOp::Pad
            | LayoutOp::Gather { .. }
            | LayoutOp::Reorg { .. }
            | LayoutOp::Reverse { .. } => ScheduleFacts::COMPUTES,
        }
    }

    /// A linear map whose backward needs only shapes; Gather keeps its indices.
    /// A permute says which input axis each output axis is.
    fn memory_facts(&self, inputs: &[&Shape], _: &[&Shape]) -> MemoryFacts {
        match self {
            LayoutOp::Gather { .. } => MemoryFacts { saves_inputs: vec![1], ..Default::default() },
            LayoutOp::Permute { order } => MemoryFacts {
                view_permutation: inputs.first().and_then(|x| full_permutation(order, x.rank())),
                ..Default::default()
            },
            LayoutOp::Concat { .. }
            | LayoutOp::Split
            | LayoutOp::Slice(_)
            | LayoutOp::Flatten(_)
            | LayoutOp::Reshape(_)
            | LayoutOp::Crop(_)
            | LayoutOp::ShuffleChannel { .. }
            | LayoutOp::Tile { .. }
            | LayoutOp::Squeeze { .. }
            | LayoutOp::Unsqueeze { .. }
            | LayoutOp::StridedSlice
            | LayoutOp::Pad
            | LayoutOp::Expand
            | LayoutOp::Reorg { .. }
            | LayoutOp::Reverse { .. } => MemoryFacts::default(),
        }
    }

    fn conv_geometry(&self, _: Option<&Shape>, _: &[&Shape]) -> Option<ConvGeometry> {
        None
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct SliceParams {
    pub axis: i64,
    /// Cut positions along the axis; empty means equal parts, one per output.
    pub points: Vec<u64>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct FlattenParams {
    pub axis: i64,
    /// Last axis merged (inclusive).
    pub end_axis: i64,
}

#[derive(Clone, Debug, PartialEq)]
pub struct ReshapeParams {
    /// 0 copies the input's extent at that position; -1 is inferred.
    pub dims: Vec<i64>,
    pub axis: i64,
    /// -1: replace every axis from `axis` on.
    pub num_axes: i64,
}

#[derive(Clone, Debug, PartialEq)]
pub struct CropParams {
    pub axis: i64,
    pub offsets: Vec<u64>,
}

pub fn concat_shape(axis: i64, inputs: &[&Shape]) -> Result<Shape, ShapeError> {
    let first = nth(inputs, 0, "blob to concatenate")?;
    let axis = first.axis(axis)?;
    let mut dims = first.dims().to_vec();
    for other in &inputs[1..] {
        let same_elsewhere = other.rank() == first.rank()
            && other.dims().iter().zip(first.dims()).enumerate().all(|(i, (a, b))| i == axis || a == b);
        if !same_elsewhere {
            return Err(ShapeError::new(format!(
                "Concat along axis {axis}: {first} and {other} differ on another axis"
            )));
        }
        dims[axis] = dims[axis].checked_add(other.dims()[axis]).ok_or_else(|| overflow("concatenated axis"))?;
    }
    Ok(Shape(dims))
}

pub fn slice_shapes(p: &SliceParams, input: &Shape, n_outputs: usize) -> Result<Vec<OutShape>, ShapeError> {
    let axis = input.axis(p.axis)?;
    let extent = input.dims()[axis];
    let mut cuts = Vec::new();
    if p.points.is_empty() {
        let n = n_outputs.max(1) as u64;
        if extent % n != 0 {
            return Err(ShapeError::new(format!("axis {axis} of {input} does not split evenly into {n} parts")));
        }
        cuts.extend(std::iter::repeat_n(extent / n, n as usize));
    } else {
        if p.points.len() + 1 != n_outputs {
            return Err(ShapeError::new(format!(
                "{} slice points need {} tops, the layer has {n_outputs}",
                p.points.len(),
                p.points.len() + 1
            )));
        }
        let mut prev = 0;
        for &pt in p.points.iter().chain(std::iter::once(&extent)) {
            if pt <= prev || pt > extent {
                return Err(ShapeError::new(format!(
                    "slice points {:?} must increase within axis {axis} of extent {extent}",
                    p.points
                )));
            }
            cuts.push(pt - prev);
            prev = pt;
        }
    }
    Ok(cuts
        .into_iter()
        .map(|c| {
            let mut dims = input.dims().to_vec();
            dims[axis] = c;
            OutShape::Known(Shape(dims))
        })
        .collect())
}

pub fn flatten_shape(p: &FlattenParams, input: &Shape) -> Result<Shape, ShapeError> {
    let start = input.axis(p.axis)?;
    let end = input.axis(p.end_axis)?;
    if end < start {
        return Err(ShapeError::new(format!("end_axis {} precedes axis {} in {input}", p.end_axis, p.axis)));
    }
    let d = input.dims();
    let mut dims = d[..start].to_vec();
    dims.push(checked_product(&d[start..=end]).ok_or_else(|| overflow("flattened extent"))?);
    dims.extend_from_slice(&d[end + 1..]);
    Ok(Shape(dims))
}

pub fn reshape_shape(p: &ReshapeParams, input: &Shape) -> Result<Shape, ShapeError> {
    let rank = input.rank() as i64;
    // Caffe's axis may equal the rank (append axes), so resolve it by hand.
    let start = if p.axis < 0 { p.axis + rank + 1 } else { p.axis };
    if start < 0 || start > rank {
        return Err(ShapeError::new(format!("axis {} is out of range for {input}", p.axis)));
    }
    let start = start as usize;
    let end = if p.num_axes < 0 { input.rank() } else { start.saturating_add(p.num_axes as usize) };
    if end > input.rank() {
        return Err(ShapeError::new(format!("num_axes {} from axis {start} exceeds {input}", p.num_axes)));
    }
    let d = input.dims();
    let mut dims = d[..start].to_vec();
    let mut infer_at = None;
    for (i, &v) in p.dims.iter().enumerate() {
        match v {
            0 => dims.push(
                *d.get(start + i)
                    .ok_or_else(|| ShapeError::new(format!("dim 0 at position {i} copies an axis {input} lacks")))?,
            ),
            -1 if infer_at.is_none() => {
                infer_at = Some(dims.len());
                dims.push(1);
            }
            -1 => return Err(ShapeError::new("more than one -1 in the reshape dims")),
            v if v > 0 => dims.push(v as u64),
            v => return Err(ShapeError::new(format!("reshape dim {v} is negative"))),
        }
    }
    dims.extend_from_slice(&d[end..]);
    let total = input.elems().ok_or_else(|| overflow("input size"))?;
    let known = checked_product(&dims).ok_or_else(|| overflow("reshape target"))?;
    if let Some(at) = infer_at {
        if known == 0 || total % known != 0 {
            return Err(ShapeError::new(format!("cannot infer -1: {total} elements do not divide by {known}")));
        }
        dims[at] = total / known;
    } else if known != total {
        return Err(ShapeError::new(format!(
            "reshape of {input} ({total} elements) to {} ({known} elements)",
            Shape(dims.clone())
        )));
    }
    Ok(Shape(dims))
}

/// Crop bottom[0] to bottom[1]'s extents from `axis` on, at the given offsets.
pub fn crop_shape(p: &CropParams, inputs: &[&Shape]) -> Result<Shape, ShapeError> {
    let x = nth(inputs, 0, "blob to crop")?;
    let reference = nth(inputs, 1, "reference blob")?;
    let axis = x.axis(p.axis)?;
    if reference.rank() != x.rank() {
        return Err(ShapeError::new(format!("crop reference {reference} and input {x} differ in rank")));
    }
    let n_cropped = x.rank() - axis;
    let offsets = super::window::per_axis(&p.offsets, n_cropped, 0, "crop offsets")?;
    let mut dims = x.dims()[..axis].to_vec();
    for (i, off) in offsets.iter().enumerate() {
        let (have, want) = (x.dims()[axis + i], reference.dims()[axis + i]);
        if off.checked_add(want).is_none_or(|end| end > have) {
            return Err(ShapeError::new(format!(
                "crop of axis {} at offset {off} to {want} exceeds the input extent {have}",
                axis + i
            )));
        }
        dims.push(want);
    }
    Ok(Shape(dims))
}

/// Listed axes first, in order; unlisted axes keep their order after them.
/// A permute's order completed to `rank` axes (the unnamed ones follow in
/// order, as `permute_shape` places them); `None` for an empty or invalid order.
pub fn full_permutation(order: &[usize], rank: usize) -> Option<Vec<usize>> {
    if order.is_empty() {
        return None;
    }
    let mut seen = vec![false; rank];
    let mut perm = Vec::with_capacity(rank);
    for &a in order {
        if a >= rank || std::mem::replace(&mut seen[a], true) {
            return None;
        }
        perm.push(a);
    }
    perm.extend((0..rank).filter(|&a| !seen[a]));
    Some(perm)
}

pub fn permute_shape(order: &[usize], input: &Shape) -> Result<Shape, ShapeError> {
    let mut seen = vec![false; input.rank()];
    let mut dims = Vec::with_capacity(input.rank());
    for &a in order {
        if a >= input.rank() || std::mem::replace(&mut seen[a], true) {
            return Err(ShapeError::new(format!("permute order {order:?} is not valid for {input}")));
        }
        dims.push(input.dims()[a]);
    }
    dims.extend(input.dims().iter().zip(&seen).filter(|(_, s)| !**s).map(|(d, _)| *d));
    Ok(Shape(dims))
}

pub fn tile_shape(axis: i64, tiles: u64, input: &Shape) -> Result<Shape, ShapeError> {
    let axis = input.axis(axis)?;
    let mut dims = input.dims().to_vec();
    dims[axis] = dims[axis].checked_mul(tiles).ok_or_else(|| overflow("tiled axis"))?;
    Ok(Shape(dims))
}

pub fn shuffle_shape(group: u64, input: &Shape) -> Result<Shape, ShapeError> {
    let c = channels(input)?;
    if group == 0 || c % group != 0 {
        return Err(ShapeError::new(format!("group {group} does not divide the {c} channels")));
    }
    Ok(input.clone())
}

/// Reorg with stride s: channels times s², height and width divided by s
/// (integer division, as the forks compute it); reversed, the other way.
pub fn reorg_shape(stride: u64, reverse: bool, input: &Shape) -> Result<Shape, ShapeError> {
    let [n, c, h, w] = input.dims() else {
        return Err(ShapeError::new(format!("Reorg needs an N×C×H×W input, got {input}")));
    };
    let s2 = stride.checked_mul(stride).filter(|&v| v > 0).ok_or_else(|| ShapeError::new(format!("Reorg stride {stride}")))?;
    let grow = |v: u64, by: u64| v.checked_mul(by).ok_or_else(|| overflow("Reorg output"));
    let dims = if reverse {
        vec![*n, c / s2, grow(*h, stride)?, grow(*w, stride)?]
    } else {
        vec![*n, grow(*c, s2)?, h / stride, w / stride]
    };
    if dims.contains(&0) {
        return Err(ShapeError::new(format!("Reorg with stride {stride} leaves nothing of {input}")));
    }
    Ok(Shape(dims))
}

pub fn gather_shape(data: &Shape, indices: &Shape, axis: i64) -> Result<Shape, ShapeError> {
    let axis = data.axis(axis)?;
    let mut dims = data.dims()[..axis].to_vec();
    dims.extend_from_slice(indices.dims());
    dims.extend_from_slice(&data.dims()[axis + 1..]);
    Ok(Shape(dims))
}

pub fn squeeze_shape(x: &Shape, axes: &[i64]) -> Result<Shape, ShapeError> {
    if axes.is_empty() {
        return Ok(Shape(x.dims().iter().copied().filter(|&d| d != 1).collect()));
    }
    let axes = resolve_axes(axes, x.rank())?;
    for &a in &axes {
        if x.dims()[a] != 1 {
            return Err(ShapeError::new(format!("Squeeze: axis {a} of {x} is not 1")));
        }
    }
    Ok(Shape(x.dims().iter().enumerate().filter(|(i, _)| !axes.contains(i)).map(|(_, &d)| d).collect()))
}

pub fn unsqueeze_shape(x: &Shape, axes: &[i64]) -> Result<Shape, ShapeError> {
    let rank = x.rank().checked_add(axes.len()).ok_or_else(|| ShapeError::new("Unsqueeze: rank overflows"))?;
    let axes = resolve_axes(axes, rank)?;
    let mut rest = x.dims().iter();
    let dims = (0..rank).map(|i| if axes.contains(&i) { Some(1) } else { rest.next().copied() }).collect::<Option<Vec<u64>>>();
    dims.map(Shape).ok_or_else(|| ShapeError::new("Unsqueeze: repeated axes"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(d: &[u64]) -> Shape {
        Shape::new(d.to_vec())
    }

    #[test]
    fn reorg_moves_space_into_channels_and_back() {
        // YOLOv2: 26×26×64, stride 2 → 13×13×256.
        assert_eq!(reorg_shape(2, false, &s(&[1, 64, 26, 26])).unwrap(), s(&[1, 256, 13, 13]));
        assert_eq!(reorg_shape(2, true, &s(&[1, 256, 13, 13])).unwrap(), s(&[1, 64, 26, 26]));
        // Integer division, as the forks do it: 27 → 13.
        assert_eq!(reorg_shape(2, false, &s(&[1, 4, 27, 27])).unwrap(), s(&[1, 16, 13, 13]));
        assert!(reorg_shape(2, true, &s(&[1, 3, 4, 4])).is_err());
        assert!(reorg_shape(0, false, &s(&[1, 3, 4, 4])).is_err());
    }

    #[test]
    fn concat_sums_the_axis() {
        assert_eq!(concat_shape(1, &[&s(&[1, 64, 8, 8]), &s(&[1, 32, 8, 8])]).unwrap(), s(&[1, 96, 8, 8]));
        assert!(concat_shape(1, &[&s(&[1, 64, 8, 8]), &s(&[1, 32, 4, 8])]).is_err());
    }

    #[test]
    fn slice_at_points_and_evenly() {
        let shapes = slice_shapes(&SliceParams { axis: 1, points: vec![1] }, &s(&[64, 2, 28, 28]), 2).unwrap();
        assert_eq!(shapes, vec![OutShape::Known(s(&[64, 1, 28, 28])); 2]);
        let halves = slice_shapes(&SliceParams { axis: 1, points: vec![] }, &s(&[1, 116, 28, 28]), 2).unwrap();
        assert_eq!(halves[1], OutShape::Known(s(&[1, 58, 28, 28])));
        assert!(slice_shapes(&SliceParams { axis: 1, points: vec![3] }, &s(&[1, 2]), 2).is_err());
    }

    #[test]
    fn flatten_merges_axis_range() {
        let p = FlattenParams { axis: 1, end_axis: -1 };
        assert_eq!(flatten_shape(&p, &s(&[1, 38, 38, 16])).unwrap(), s(&[1, 23104]));
    }

    #[test]
    fn reshape_copies_zero_and_infers_minus_one() {
        let p = ReshapeParams { dims: vec![0, 2, -1, 0], axis: 0, num_axes: -1 };
        assert_eq!(reshape_shape(&p, &s(&[1, 18, 14, 14])).unwrap(), s(&[1, 2, 126, 14]));
        let p = ReshapeParams { dims: vec![0, -1, 21], axis: 0, num_axes: -1 };
        assert_eq!(reshape_shape(&p, &s(&[1, 7308, 1])).unwrap(), s(&[1, 348, 21]));
        // SE-BN-Inception drops the trailing 1x1 axes with {0, 0}.
        let p = ReshapeParams { dims: vec![0, 0], axis: 0, num_axes: -1 };
        assert_eq!(reshape_shape(&p, &s(&[1, 256, 1, 1])).unwrap(), s(&[1, 256]));
        let p = ReshapeParams { dims: vec![3, 0], axis: 0, num_axes: -1 };
        assert!(reshape_shape(&p, &s(&[1, 256, 1, 1])).is_err());
        let p = ReshapeParams { dims: vec![-1, -1], axis: 0, num_axes: -1 };
        assert!(reshape_shape(&p, &s(&[4])).is_err());
    }

    #[test]
    fn crop_takes_reference_extent() {
        let p = CropParams { axis: 2, offsets: vec![31] };
        assert_eq!(crop_shape(&p, &[&s(&[1, 21, 568, 568]), &s(&[1, 3, 500, 500])]).unwrap(), s(&[1, 21, 500, 500]));
        let p = CropParams { axis: 2, offsets: vec![100] };
        assert!(crop_shape(&p, &[&s(&[1, 21, 568, 568]), &s(&[1, 3, 500, 500])]).is_err());
    }

    #[test]
    fn permute_nchw_to_nhwc() {
        assert_eq!(permute_shape(&[0, 2, 3, 1], &s(&[1, 16, 38, 38])).unwrap(), s(&[1, 38, 38, 16]));
        assert!(permute_shape(&[0, 0], &s(&[1, 2])).is_err());
    }

    #[test]
    fn tile_and_shuffle() {
        assert_eq!(tile_shape(1, 3, &s(&[2, 4, 5])).unwrap(), s(&[2, 12, 5]));
        assert_eq!(shuffle_shape(3, &s(&[1, 240, 28, 28])).unwrap(), s(&[1, 240, 28, 28]));
        assert!(shuffle_shape(7, &s(&[1, 240, 28, 28])).is_err());
    }

    #[test]
    fn flatten_middle_axes_and_bad_range() {
        let p = FlattenParams { axis: 1, end_axis: 2 };
        assert_eq!(flatten_shape(&p, &s(&[2, 3, 4, 5])).unwrap(), s(&[2, 12, 5]));
        let p = FlattenParams { axis: 2, end_axis: 1 };
        assert!(flatten_shape(&p, &s(&[2, 3, 4, 5])).is_err());
    }

    #[test]
    fn gather_and_squeeze() {
        let data = s(&[10, 768]);
        let idx = s(&[2, 5]);
        assert_eq!(gather_shape(&data, &idx, 0).unwrap(), s(&[2, 5, 768]));
        assert_eq!(squeeze_shape(&s(&[1, 3, 1]), &[0]).unwrap(), s(&[3, 1]));
        assert!(squeeze_shape(&s(&[2, 3]), &[0]).is_err());
        assert_eq!(unsqueeze_shape(&s(&[3]), &[0, -1]).unwrap(), s(&[1, 3, 1]));
    }
}
