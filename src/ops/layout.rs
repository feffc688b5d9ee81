//! Ops that rearrange, select or join values without arithmetic on them:
//! Concat, Split, Slice, Flatten, Reshape, Crop, Permute, Tile, ShuffleChannel,
//! the forks' Reorg and Reverse,
//! and ONNX's Transpose, Reshape, Flatten (to 2-D), Split, Squeeze, Unsqueeze,
//! Slice (strided), Pad, Expand, Tile, Gather, DepthToSpace, SpaceToDepth and
//! CenterCropPad.
//!
//! Their backward is a linear map that needs only shapes (Gather needs its
//! indices). The ONNX forms take their extents from input *values* (a
//! Reshape's target, a Slice's starts and ends, Squeeze's axes from opset 13):
//! `infer` reads them from the inputs' known values and says so when a value
//! is not known. These ops also have value rules, so that shape vectors can
//! be followed through them.

use super::value::{self, arg, ints_arg, select_index, shape_arg, Input, Value};
use super::{
    channels, first, known, nth, overflow, resolve_axes, ConvGeometry, Family, MemoryFacts, OutShape, ParamSpec, ScheduleFacts,
    Storage,
};
use crate::tensor::{checked_product, Shape, ShapeError};

/// The layout family.
#[derive(Clone, Debug, PartialEq)]
pub enum LayoutOp {
    /// Joins its inputs along `axis` (a copy).
    Concat {
        /// The axis joined.
        axis: i64,
    },
    /// Every output is a copy (view) of the input.
    Split,
    /// Caffe Slice: the input cut into parts along an axis.
    Slice(SliceParams),
    /// Caffe Flatten: a run of axes merged into one.
    Flatten(FlattenParams),
    /// Caffe Reshape: new dims for a run of axes (0 copies, −1 infers).
    Reshape(ReshapeParams),
    /// Caffe Crop: `bottom[0]` cut to `bottom[1]`'s extents.
    Crop(CropParams),
    /// Caffe Permute (SSD): axes reordered.
    Permute {
        /// The new order of the input's axes (unlisted ones follow).
        order: Vec<usize>,
    },
    /// Channels regrouped across `group` groups (ShuffleNet).
    ShuffleChannel {
        /// The number of groups.
        group: u64,
    },
    /// Caffe Tile: the input repeated `tiles` times along `axis`.
    Tile {
        /// The axis repeated.
        axis: i64,
        /// How many copies.
        tiles: u64,
    },
    /// Axes of extent 1 removed.
    Squeeze {
        /// Which (empty: every axis of extent 1).
        axes: Vec<i64>,
    },
    /// Axes of extent 1 inserted.
    Unsqueeze {
        /// Their positions in the output.
        axes: Vec<i64>,
    },
    /// ONNX Slice: starts/ends/axes/steps given as inputs 1–4 (opset 10 on),
    /// or as attributes (`attrs`, opsets 1–9).
    StridedSlice {
        /// The attributes, for opsets 1–9 (`None`: from inputs).
        attrs: Option<SliceAttrs>,
    },
    /// Pads (negative: crops) each axis; `pads` as an attribute (opsets 1–10)
    /// or input 1 with optional axes input 3 (opset 18).
    Pad {
        /// The pads, from the attribute (`None`: from inputs).
        pads: Option<Vec<i64>>,
    },
    /// Broadcasts the input to a shape given as a second input.
    Expand,
    /// Picks slices along `axis` by an index tensor (embedding lookups, token selection).
    Gather {
        /// The axis indexed.
        axis: i64,
    },
    /// Space to depth (YOLOv2's passthrough): (N, C·s², H/s, W/s); `reverse`
    /// goes back, (N, C/s², H·s, W·s). A copy.
    Reorg {
        /// The block size s.
        stride: u64,
        /// Depth to space instead.
        reverse: bool,
    },
    /// The input with its order along `axis` reversed (a sequence run backwards). A copy.
    Reverse {
        /// The reversed axis.
        axis: i64,
    },
    /// Reorders every axis (`None`: reverses them, ONNX Transpose's default).
    Transpose {
        /// The output's axes as input axes (`None`: reversed).
        perm: Option<Vec<usize>>,
    },
    /// ONNX Reshape: the target from input 1 (or the `shape` attribute of
    /// opsets 1–4); 0 copies the input's extent unless `allow_zero`, −1 is inferred.
    ReshapeTo {
        /// The target from the `shape` attribute (`None`: from input 1).
        dims: Option<Vec<i64>>,
        /// A 0 means an extent of 0, not a copy.
        allow_zero: bool,
    },
    /// ONNX Flatten: always 2-D, `[∏ dims[..axis], ∏ dims[axis..]]`.
    Flatten2d {
        /// Axes before it go to the first output axis.
        axis: i64,
    },
    /// ONNX Split along `axis`: sizes from input 1 (opset 13 on) or the
    /// `split` attribute, else `num_outputs` (opset 18) or one part per
    /// output, the last one smaller when the extent does not divide.
    SplitParts {
        /// The split axis.
        axis: i64,
        /// Sizes from the attribute (empty: from input 1 or equal parts).
        split: Vec<i64>,
        /// The number of equal parts (opset 18).
        num_outputs: Option<u64>,
    },
    /// ONNX Tile: each axis repeated by input 1's count.
    TileBy,
    /// DepthToSpace / SpaceToDepth with a square block.
    DepthToSpace {
        /// The block size.
        block: u64,
    },
    /// The inverse of `DepthToSpace`: (N, C·b², H/b, W/b).
    SpaceToDepth {
        /// The block size.
        block: u64,
    },
    /// Crops or pads the listed axes (all when empty) to extents given as input 1.
    CenterCropPad {
        /// The axes cropped or padded.
        axes: Vec<i64>,
    },
}

/// The attribute form of ONNX Slice (opsets 1–9).
#[derive(Clone, Debug, PartialEq)]
pub struct SliceAttrs {
    /// Where each axis starts.
    pub starts: Vec<i64>,
    /// Where each axis ends (exclusive).
    pub ends: Vec<i64>,
    /// Empty: axes 0, 1, … in order.
    pub axes: Vec<i64>,
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
            LayoutOp::StridedSlice { .. } => "StridedSlice",
            LayoutOp::Pad { .. } => "Pad",
            LayoutOp::Expand => "Expand",
            LayoutOp::Gather { .. } => "Gather",
            LayoutOp::Reorg { .. } => "Reorg",
            LayoutOp::Reverse { .. } => "Reverse",
            LayoutOp::Transpose { .. } => "Permute",
            LayoutOp::ReshapeTo { .. } => "Reshape",
            LayoutOp::Flatten2d { .. } => "Flatten",
            LayoutOp::SplitParts { .. } => "Slice",
            LayoutOp::TileBy => "Tile",
            LayoutOp::DepthToSpace { .. } => "DepthToSpace",
            LayoutOp::SpaceToDepth { .. } => "SpaceToDepth",
            LayoutOp::CenterCropPad { .. } => "CenterCropPad",
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
            LayoutOp::Transpose { perm } => transpose_shape(perm.as_deref(), first(inputs)?)?,
            LayoutOp::Flatten2d { axis } => flatten2d_shape(*axis, first(inputs)?)?,
            LayoutOp::DepthToSpace { block } => depth_to_space_shape(*block, first(inputs)?)?,
            LayoutOp::SpaceToDepth { block } => space_to_depth_shape(*block, first(inputs)?)?,
            LayoutOp::StridedSlice { .. }
            | LayoutOp::Pad { .. }
            | LayoutOp::Expand
            | LayoutOp::ReshapeTo { .. }
            | LayoutOp::SplitParts { .. }
            | LayoutOp::TileBy
            | LayoutOp::CenterCropPad { .. } => {
                return Err(ShapeError::new(format!("{}: the output shape depends on input values", self.name())))
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
            // A reshape is a view only where the strides allow (a broadcast does not).
            LayoutOp::Reshape(_) | LayoutOp::Flatten(_) | LayoutOp::ReshapeTo { .. } | LayoutOp::Flatten2d { .. } => {
                ScheduleFacts { storage: Storage::Reshape, ..ScheduleFacts::COMPUTES }
            }
            LayoutOp::Squeeze { .. }
            | LayoutOp::Unsqueeze { .. }
            | LayoutOp::Permute { .. }
            | LayoutOp::StridedSlice { .. }
            | LayoutOp::Slice(_)
            | LayoutOp::Split
            | LayoutOp::Expand
            | LayoutOp::Transpose { .. }
            | LayoutOp::SplitParts { .. } => ScheduleFacts::VIEW,
            LayoutOp::Concat { .. }
            | LayoutOp::Crop(_)
            | LayoutOp::ShuffleChannel { .. }
            | LayoutOp::Tile { .. }
            | LayoutOp::Pad { .. }
            | LayoutOp::Gather { .. }
            | LayoutOp::TileBy
            | LayoutOp::DepthToSpace { .. }
            | LayoutOp::SpaceToDepth { .. }
            | LayoutOp::CenterCropPad { .. }
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
            // ONNX Transpose: no perm reverses the axes.
            LayoutOp::Transpose { perm } => MemoryFacts {
                view_permutation: inputs.first().and_then(|x| match perm {
                    Some(p) if p.len() == x.rank() => full_permutation(p, x.rank()),
                    Some(_) => None,
                    None => Some((0..x.rank()).rev().collect()),
                }),
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
            | LayoutOp::StridedSlice { .. }
            | LayoutOp::Pad { .. }
            | LayoutOp::Expand
            | LayoutOp::ReshapeTo { .. }
            | LayoutOp::Flatten2d { .. }
            | LayoutOp::SplitParts { .. }
            | LayoutOp::TileBy
            | LayoutOp::DepthToSpace { .. }
            | LayoutOp::SpaceToDepth { .. }
            | LayoutOp::CenterCropPad { .. }
            | LayoutOp::Reorg { .. }
            | LayoutOp::Reverse { .. } => MemoryFacts::default(),
        }
    }

    fn conv_geometry(&self, _: Option<&Shape>, _: &[&Shape]) -> Option<ConvGeometry> {
        None
    }

    fn infer(&self, ins: &[Option<Input<'_>>], n_outputs: usize) -> Result<Vec<OutShape>, ShapeError> {
        let x = || shape_arg(ins, 0, "data input");
        let shape = match self {
            LayoutOp::SplitParts { axis, split, num_outputs } => {
                let parts = split_parts(*axis, split, *num_outputs, ins, n_outputs)?;
                return Ok(parts.into_iter().map(|(_, s)| OutShape::Known(s)).collect());
            }
            LayoutOp::Squeeze { axes } => squeeze_shape(x()?, &axes_from(ins, axes)?)?,
            LayoutOp::Unsqueeze { axes } => unsqueeze_shape(x()?, &axes_from(ins, axes)?)?,
            LayoutOp::ReshapeTo { dims, allow_zero } => {
                let target = match dims {
                    Some(d) => d.clone(),
                    None => ints_arg(ins, 1, "reshape target")?.ok_or_else(|| ShapeError::new("Reshape needs a target shape"))?,
                };
                onnx_reshape_shape(x()?, &target, *allow_zero)?
            }
            LayoutOp::StridedSlice { attrs } => Shape(slice_ranges(self, attrs.as_ref(), ins)?.iter().map(|r| r.2).collect()),
            LayoutOp::Pad { pads } => pad_shape(x()?, pads.as_deref(), ins)?,
            LayoutOp::Expand => {
                let target = ints_arg(ins, 1, "target shape")?.ok_or_else(|| ShapeError::new("Expand needs a shape input"))?;
                let target = non_negative(&target, "Expand")?;
                Shape(super::dense::broadcast(x()?.dims(), &target)?)
            }
            LayoutOp::TileBy => {
                let reps = ints_arg(ins, 1, "repeat counts")?.ok_or_else(|| ShapeError::new("Tile needs repeat counts"))?;
                let d = x()?.dims();
                if reps.len() != d.len() {
                    return Err(ShapeError::new(format!("Tile: {} repeat counts for rank {}", reps.len(), d.len())));
                }
                let reps = non_negative(&reps, "Tile")?;
                Shape(d.iter().zip(&reps).map(|(&a, &r)| a.checked_mul(r).ok_or_else(|| overflow("tiled extent"))).collect::<Result<_, _>>()?)
            }
            LayoutOp::CenterCropPad { axes } => {
                let target = ints_arg(ins, 1, "target shape")?.ok_or_else(|| ShapeError::new("CenterCropPad needs a shape input"))?;
                let x = x()?;
                let axes = if axes.is_empty() { (0..x.rank() as i64).collect() } else { axes.clone() };
                if axes.len() != target.len() {
                    return Err(ShapeError::new("CenterCropPad: shape and axes differ in length"));
                }
                let mut dims = x.dims().to_vec();
                for (&a, &t) in axes.iter().zip(&non_negative(&target, "CenterCropPad")?) {
                    dims[x.axis(a)?] = t;
                }
                Shape(dims)
            }
            LayoutOp::Concat { axis } => concat_shape(*axis, &value::present_shapes(ins)?)?,
            LayoutOp::Gather { axis } => gather_shape(x()?, shape_arg(ins, 1, "indices input")?, *axis)?,
            LayoutOp::Split
            | LayoutOp::Slice(_)
            | LayoutOp::Flatten(_)
            | LayoutOp::Reshape(_)
            | LayoutOp::Crop(_)
            | LayoutOp::Permute { .. }
            | LayoutOp::ShuffleChannel { .. }
            | LayoutOp::Tile { .. }
            | LayoutOp::Transpose { .. }
            | LayoutOp::Flatten2d { .. }
            | LayoutOp::DepthToSpace { .. }
            | LayoutOp::SpaceToDepth { .. }
            | LayoutOp::Reorg { .. }
            | LayoutOp::Reverse { .. } => return self.infer_shapes(&value::present_shapes(ins)?, n_outputs),
        };
        known(shape, n_outputs)
    }

    /// Values move without arithmetic: same elements for reshapes, picked
    /// elements for slices, gathers, transposes, tiles and broadcasts.
    fn eval(&self, ins: &[Option<Input<'_>>], outputs: &[&Shape]) -> Option<Vec<Value>> {
        let x = ins.first().copied().flatten()?;
        let out = *outputs.first()?;
        let data = || x.value;
        let v = match self {
            LayoutOp::Squeeze { .. }
            | LayoutOp::Unsqueeze { .. }
            | LayoutOp::ReshapeTo { .. }
            | LayoutOp::Flatten2d { .. }
            | LayoutOp::Flatten(_)
            | LayoutOp::Reshape(_) => data()?.clone(),
            LayoutOp::Concat { axis } => {
                let parts: Vec<(&Value, &Shape)> = ins.iter().flatten().map(|i| Some((i.value?, i.shape))).collect::<Option<_>>()?;
                concat_value(*axis, &parts)?
            }
            LayoutOp::Gather { axis } => {
                let idx = arg(ins, 1, "indices").ok()?;
                gather_value(data()?, x.shape, idx.value?.ints()?, *axis)?
            }
            LayoutOp::Expand => data()?.gather(&value::broadcast_index(x.shape.dims(), out.dims())?)?,
            LayoutOp::Transpose { perm } => {
                let d = x.shape.dims();
                let perm: Vec<usize> = perm.clone().unwrap_or_else(|| (0..d.len()).rev().collect());
                let st = value::strides(d);
                let mut idx = Vec::with_capacity(out.elems()? as usize);
                let mut pos = vec![0u64; perm.len()];
                for _ in 0..out.elems()? {
                    idx.push(pos.iter().zip(&perm).map(|(&p, &a)| p as usize * st[a]).sum());
                    for k in (0..pos.len()).rev() {
                        pos[k] += 1;
                        if pos[k] < d[perm[k]] {
                            break;
                        }
                        pos[k] = 0;
                    }
                }
                data()?.gather(&idx)?
            }
            LayoutOp::StridedSlice { attrs } => {
                let picks: Vec<Vec<u64>> = slice_ranges(self, attrs.as_ref(), ins)
                    .ok()?
                    .iter()
                    .map(|&(start, step, n)| (0..n as i128).map(|k| (start + k * step) as u64).collect())
                    .collect();
                data()?.gather(&select_index(x.shape.dims(), &picks)?)?
            }
            LayoutOp::SplitParts { axis, split, num_outputs } => {
                let parts = split_parts(*axis, split, *num_outputs, ins, outputs.len()).ok()?;
                let a = x.shape.axis(*axis).ok()?;
                let mut vals = Vec::with_capacity(parts.len());
                for (start, part) in parts {
                    let picks: Vec<Vec<u64>> = (0..x.shape.rank())
                        .map(|k| if k == a { (start..start + part.dims()[a]).collect() } else { (0..x.shape.dims()[k]).collect() })
                        .collect();
                    vals.push(data()?.gather(&select_index(x.shape.dims(), &picks)?)?);
                }
                return Some(vals);
            }
            LayoutOp::TileBy => {
                let d = x.shape.dims();
                let picks: Vec<Vec<u64>> = out.dims().iter().zip(d).map(|(&o, &i)| (0..o).map(|p| p % i.max(1)).collect()).collect();
                data()?.gather(&select_index(d, &picks)?)?
            }
            LayoutOp::Split
            | LayoutOp::Slice(_)
            | LayoutOp::Crop(_)
            | LayoutOp::Permute { .. }
            | LayoutOp::ShuffleChannel { .. }
            | LayoutOp::Tile { .. }
            | LayoutOp::Pad { .. }
            | LayoutOp::DepthToSpace { .. }
            | LayoutOp::SpaceToDepth { .. }
            | LayoutOp::CenterCropPad { .. }
            | LayoutOp::Reorg { .. }
            | LayoutOp::Reverse { .. } => return None,
        };
        Some(vec![v])
    }
}

/// Extents that must not be negative.
fn non_negative(v: &[i64], what: &str) -> Result<Vec<u64>, ShapeError> {
    v.iter().map(|&d| u64::try_from(d).map_err(|_| ShapeError::new(format!("{what}: negative extent {d}")))).collect()
}

/// Axes from input 1 when given (opset 13 on), else the attribute's.
fn axes_from(ins: &[Option<Input<'_>>], attr: &[i64]) -> Result<Vec<i64>, ShapeError> {
    Ok(ints_arg(ins, 1, "axes")?.unwrap_or_else(|| attr.to_vec()))
}

/// ONNX Transpose: `perm` must be a permutation of every axis; none reverses.
pub fn transpose_shape(perm: Option<&[usize]>, x: &Shape) -> Result<Shape, ShapeError> {
    let d = x.dims();
    match perm {
        None => Ok(Shape(d.iter().rev().copied().collect())),
        Some(p) => {
            if p.len() != d.len() {
                return Err(ShapeError::new(format!("Transpose: perm {p:?} for rank {}", d.len())));
            }
            permute_shape(p, x)
        }
    }
}

/// ONNX Flatten: `axis` in `[-r, r]`.
pub fn flatten2d_shape(axis: i64, x: &Shape) -> Result<Shape, ShapeError> {
    let r = x.rank() as i64;
    let a = if axis < 0 { axis + r } else { axis };
    if a < 0 || a > r {
        return Err(ShapeError::new(format!("Flatten: axis {axis} out of range for {x}")));
    }
    let (outer, inner) = x.dims().split_at(a as usize);
    Ok(Shape(vec![
        checked_product(outer).ok_or_else(|| overflow("flattened extent"))?,
        checked_product(inner).ok_or_else(|| overflow("flattened extent"))?,
    ]))
}

/// ONNX Reshape: at most one −1; 0 copies the input extent at that position
/// (a literal 0 with `allow_zero`); the element count must not change.
pub fn onnx_reshape_shape(x: &Shape, target: &[i64], allow_zero: bool) -> Result<Shape, ShapeError> {
    let mut dims = Vec::with_capacity(target.len());
    let mut infer_at = None;
    for (i, &t) in target.iter().enumerate() {
        match t {
            -1 if infer_at.is_none() => {
                infer_at = Some(i);
                dims.push(1);
            }
            -1 => return Err(ShapeError::new("Reshape: more than one -1")),
            0 if !allow_zero => dims.push(x.dim(i).map_err(|_| ShapeError::new(format!("Reshape: 0 at position {i} copies an axis {x} lacks")))?),
            t if t >= 0 => dims.push(t as u64),
            t => return Err(ShapeError::new(format!("Reshape: extent {t}"))),
        }
    }
    let total = x.elems().ok_or_else(|| overflow("input size"))?;
    let known = checked_product(&dims).ok_or_else(|| overflow("reshape target"))?;
    if let Some(at) = infer_at {
        if allow_zero && target.contains(&0) {
            return Err(ShapeError::new("Reshape: -1 together with a literal 0"));
        }
        if known == 0 || total % known != 0 {
            return Err(ShapeError::new(format!("Reshape: cannot infer -1 for {total} elements over {known}")));
        }
        dims[at] = total / known;
    } else if known != total {
        return Err(ShapeError::new(format!("Reshape of {x} ({total} elements) to {} ({known})", Shape(dims.clone()))));
    }
    Ok(Shape(dims))
}

/// Start and shape of every part of an ONNX Split.
fn split_parts(
    axis: i64,
    split_attr: &[i64],
    num_outputs: Option<u64>,
    ins: &[Option<Input<'_>>],
    n_outputs: usize,
) -> Result<Vec<(u64, Shape)>, ShapeError> {
    let x = shape_arg(ins, 0, "data input")?;
    let a = x.axis(axis)?;
    let extent = x.dims()[a];
    let sizes: Vec<u64> = match ints_arg(ins, 1, "split sizes")? {
        Some(v) => non_negative(&v, "Split")?,
        None if !split_attr.is_empty() => non_negative(split_attr, "Split")?,
        None => {
            let n = num_outputs.unwrap_or(n_outputs as u64).max(1);
            // As the ONNX reference: equal parts, else ceil-sized parts and a smaller last one.
            let part = if extent % n == 0 { extent / n } else { extent / n + 1 };
            let last = extent
                .checked_sub(part * (n - 1))
                .ok_or_else(|| ShapeError::new(format!("Split: {extent} does not split into {n} parts")))?;
            let mut v = vec![part; n as usize];
            if let Some(l) = v.last_mut() {
                *l = last;
            }
            v
        }
    };
    if sizes.len() != n_outputs {
        return Err(ShapeError::new(format!("Split: {} sizes for {n_outputs} outputs", sizes.len())));
    }
    if sizes.iter().try_fold(0u64, |acc, &s| acc.checked_add(s)) != Some(extent) {
        return Err(ShapeError::new(format!("Split: sizes {sizes:?} do not add up to {extent}")));
    }
    let mut start = 0;
    Ok(sizes
        .into_iter()
        .map(|s| {
            let mut d = x.dims().to_vec();
            d[a] = s;
            let r = (start, Shape(d));
            start += s;
            r
        })
        .collect())
}

/// Per axis, the first input position an ONNX Slice takes, its step and how
/// many it takes, clamped as the specification says: start and end to
/// `[0, dim]` for positive steps, to `[0, dim−1]` and `[−1, dim−1]` for
/// negative ones; `max(0, ⌈(end − start) / step⌉)` positions.
fn slice_ranges(op: &LayoutOp, attrs: Option<&SliceAttrs>, ins: &[Option<Input<'_>>]) -> Result<Vec<(i128, i128, u64)>, ShapeError> {
    let x = shape_arg(ins, 0, "data input")?;
    let (starts, ends, axes, steps) = match attrs {
        Some(a) => (a.starts.clone(), a.ends.clone(), a.axes.clone(), Vec::new()),
        None => (
            ints_arg(ins, 1, "starts")?.ok_or_else(|| ShapeError::new("Slice needs starts"))?,
            ints_arg(ins, 2, "ends")?.ok_or_else(|| ShapeError::new("Slice needs ends"))?,
            ints_arg(ins, 3, "axes")?.unwrap_or_default(),
            ints_arg(ins, 4, "steps")?.unwrap_or_default(),
        ),
    };
    if starts.len() != ends.len() || (!axes.is_empty() && axes.len() != starts.len()) || (!steps.is_empty() && steps.len() != starts.len()) {
        return Err(ShapeError::new(format!("{}: starts, ends, axes and steps differ in length", op.name())));
    }
    let d = x.dims();
    let mut ranges: Vec<Option<(i128, i128, u64)>> = vec![None; d.len()];
    for i in 0..starts.len() {
        let axis = match axes.get(i) {
            Some(&a) => x.axis(a)?,
            None if i < d.len() => i,
            None => return Err(ShapeError::new("Slice: more starts than axes")),
        };
        if ranges[axis].is_some() {
            return Err(ShapeError::new(format!("Slice: axis {axis} listed twice")));
        }
        let step = i128::from(steps.get(i).copied().unwrap_or(1));
        if step == 0 {
            return Err(ShapeError::new("Slice: step 0"));
        }
        let dim = i128::from(d[axis]);
        let (mut s, mut e) = (i128::from(starts[i]), i128::from(ends[i]));
        if s < 0 {
            s += dim;
        }
        if e < 0 {
            e += dim;
        }
        let (s, e) = if step > 0 { (s.clamp(0, dim), e.clamp(0, dim)) } else { (s.clamp(0, dim - 1), e.clamp(-1, dim - 1)) };
        let n = if step > 0 { (e - s + step - 1).div_euclid(step) } else { (s - e - step - 1).div_euclid(-step) }.max(0);
        ranges[axis] = Some((s, step, n as u64));
    }
    Ok(ranges.into_iter().zip(d).map(|(r, &dim)| r.unwrap_or((0, 1, dim))).collect())
}

/// ONNX Pad: each axis grows by its begin and end pads (negative pads crop).
fn pad_shape(x: &Shape, attr: Option<&[i64]>, ins: &[Option<Input<'_>>]) -> Result<Shape, ShapeError> {
    let r = x.rank();
    let pads = match attr {
        Some(p) => p.to_vec(),
        None => ints_arg(ins, 1, "pads")?.ok_or_else(|| ShapeError::new("Pad needs pads"))?,
    };
    let axes: Vec<usize> = match ints_arg(ins, 3, "axes")? {
        Some(a) => a.iter().map(|&a| x.axis(a)).collect::<Result<_, _>>()?,
        None => (0..r).collect(),
    };
    if pads.len() != 2 * axes.len() {
        return Err(ShapeError::new(format!("Pad: {} pads for {} axes", pads.len(), axes.len())));
    }
    let mut dims: Vec<i128> = x.dims().iter().map(|&d| i128::from(d)).collect();
    for (k, &a) in axes.iter().enumerate() {
        dims[a] += i128::from(pads[k]) + i128::from(pads[k + axes.len()]);
    }
    dims.into_iter()
        .map(|d| u64::try_from(d).map_err(|_| ShapeError::new(format!("Pad: the pads leave extent {d}"))))
        .collect::<Result<Vec<u64>, _>>()
        .map(Shape)
}

/// [N, C, H, W] → [N, C/b², H·b, W·b].
pub fn depth_to_space_shape(block: u64, x: &Shape) -> Result<Shape, ShapeError> {
    let [n, c, h, w] = x.dims() else { return Err(ShapeError::new(format!("DepthToSpace needs a 4-D input, got {x}"))) };
    let b2 = block.checked_mul(block).filter(|&b| b > 0 && c % b == 0).ok_or_else(|| ShapeError::new(format!("DepthToSpace: block {block} does not divide {c} channels")))?;
    Ok(Shape(vec![*n, c / b2, h.checked_mul(block).ok_or_else(|| overflow("height"))?, w.checked_mul(block).ok_or_else(|| overflow("width"))?]))
}

/// [N, C, H, W] → [N, C·b², H/b, W/b].
pub fn space_to_depth_shape(block: u64, x: &Shape) -> Result<Shape, ShapeError> {
    let [n, c, h, w] = x.dims() else { return Err(ShapeError::new(format!("SpaceToDepth needs a 4-D input, got {x}"))) };
    if block == 0 || h % block != 0 || w % block != 0 {
        return Err(ShapeError::new(format!("SpaceToDepth: block {block} does not divide {h}×{w}")));
    }
    Ok(Shape(vec![*n, c.checked_mul(block * block).ok_or_else(|| overflow("channels"))?, h / block, w / block]))
}

/// Values joined along `axis`: for every position before the axis, each
/// part's block in turn.
fn concat_value(axis: i64, parts: &[(&Value, &Shape)]) -> Option<Value> {
    let first = parts.first()?.1;
    let a = first.axis(axis).ok()?;
    let outer = checked_product(&first.dims()[..a])? as usize;
    let blocks: Vec<usize> = parts.iter().map(|(_, s)| checked_product(s.dims().get(a..)?).map(|b| b as usize)).collect::<Option<_>>()?;
    let mut order: Vec<(usize, usize)> = Vec::new();
    for o in 0..outer {
        for (k, &block) in blocks.iter().enumerate() {
            order.extend((0..block).map(|e| (k, o * block + e)));
        }
    }
    if let Some(ints) = parts.iter().map(|(v, _)| v.ints()).collect::<Option<Vec<&[i64]>>>() {
        return Some(Value::Int(order.iter().map(|&(k, e)| ints[k].get(e).copied()).collect::<Option<_>>()?));
    }
    let floats: Vec<Vec<f64>> = parts
        .iter()
        .map(|(v, _)| match v {
            Value::Float(f) => Some(f.clone()),
            Value::Int(_) => None,
        })
        .collect::<Option<_>>()?;
    Some(Value::Float(order.iter().map(|&(k, e)| floats[k].get(e).copied()).collect::<Option<_>>()?))
}

/// Gather's value: `out[outer, indices…, inner] = data[outer, index, inner]`
/// (negative indices count from the end).
fn gather_value(data: &Value, shape: &Shape, indices: &[i64], axis: i64) -> Option<Value> {
    let a = shape.axis(axis).ok()?;
    let d = shape.dims();
    let dim = d[a] as i64;
    let outer: usize = d[..a].iter().product::<u64>() as usize;
    let inner: usize = d[a + 1..].iter().product::<u64>() as usize;
    let mut idx = Vec::with_capacity(outer * indices.len() * inner);
    for o in 0..outer {
        for &i in indices {
            let i = if i < 0 { i + dim } else { i };
            if i < 0 || i >= dim {
                return None;
            }
            for e in 0..inner {
                idx.push((o * dim as usize + i as usize) * inner + e);
            }
        }
    }
    data.gather(&idx)
}


/// Caffe Slice's parameters.
#[derive(Clone, Debug, PartialEq)]
pub struct SliceParams {
    /// The axis cut.
    pub axis: i64,
    /// Cut positions along the axis; empty means equal parts, one per output.
    pub points: Vec<u64>,
}

/// Caffe Flatten's parameters.
#[derive(Clone, Debug, PartialEq)]
pub struct FlattenParams {
    /// First axis merged.
    pub axis: i64,
    /// Last axis merged (inclusive).
    pub end_axis: i64,
}

/// Caffe Reshape's parameters.
#[derive(Clone, Debug, PartialEq)]
pub struct ReshapeParams {
    /// 0 copies the input's extent at that position; -1 is inferred.
    pub dims: Vec<i64>,
    /// First axis replaced.
    pub axis: i64,
    /// -1: replace every axis from `axis` on.
    pub num_axes: i64,
}

/// Caffe Crop's parameters.
#[derive(Clone, Debug, PartialEq)]
pub struct CropParams {
    /// First axis cropped (every later one too).
    pub axis: i64,
    /// Offsets per cropped axis (one: the same for all).
    pub offsets: Vec<u64>,
}

/// Caffe Concat / ONNX Concat: extents add up along `axis`, the others must match.
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

/// Caffe Slice: the parts along the axis, cut at `points` or equal.
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

/// Caffe Flatten: axes `axis..=end_axis` merged.
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

/// Caffe Reshape: `dims` replace `num_axes` axes from `axis` (0 copies, −1 inferred).
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

/// Crop `bottom[0]` to `bottom[1]`'s extents from `axis` on, at the given offsets.
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

/// Permute: listed axes first, in order; unlisted axes keep their order after them.
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

/// Tile: the axis's extent times `tiles`.
pub fn tile_shape(axis: i64, tiles: u64, input: &Shape) -> Result<Shape, ShapeError> {
    let axis = input.axis(axis)?;
    let mut dims = input.dims().to_vec();
    dims[axis] = dims[axis].checked_mul(tiles).ok_or_else(|| overflow("tiled axis"))?;
    Ok(Shape(dims))
}

/// ShuffleChannel: the same shape; channels must divide by `group`.
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

/// Gather: `data`'s axis replaced by the indices' shape.
pub fn gather_shape(data: &Shape, indices: &Shape, axis: i64) -> Result<Shape, ShapeError> {
    let axis = data.axis(axis)?;
    let mut dims = data.dims()[..axis].to_vec();
    dims.extend_from_slice(indices.dims());
    dims.extend_from_slice(&data.dims()[axis + 1..]);
    Ok(Shape(dims))
}

/// Squeeze: the listed axes (all of extent 1; none listed: every one) removed.
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

/// Unsqueeze: axes of extent 1 inserted at the listed output positions.
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
