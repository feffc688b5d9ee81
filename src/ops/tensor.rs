//! Tensor-program ops that ONNX graphs use and Caffe has no layer for:
//! normalisations over feature axes (LayerNorm, GroupNorm/InstanceNorm), reductions
//! over listed axes, gathers, shape plumbing (Shape, Constant, ConstantOfShape,
//! Expand, Squeeze, Unsqueeze, Slice, Pad, Resize), comparisons, Where, and the
//! binary ops outside `Eltwise` (Pow, Mod).
//!
//! For ONNX the loader takes every shape from tract, so several rules here only
//! cover the cases that need no input *values* and return an error otherwise.
//! What they keep for backward differs and is why the variants are separate:
//! LayerNorm/GroupNorm save their input and per-row statistics, comparisons and
//! shape ops have no gradient at all, Pow saves both inputs, Gather saves indices.

use super::dense::broadcast;
use super::{nth, ExtraSaved, MemoryFacts, Op, OutShape, ParamSpec};
use crate::tensor::{DType, Shape, ShapeError};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReduceKind {
    Mean,
    Sum,
    Max,
    Min,
    Prod,
    L1,
    L2,
    LogSumExp,
    SumSquare,
}

impl ReduceKind {
    pub fn name(self) -> &'static str {
        match self {
            ReduceKind::Mean => "ReduceMean",
            ReduceKind::Sum => "ReduceSum",
            ReduceKind::Max => "ReduceMax",
            ReduceKind::Min => "ReduceMin",
            ReduceKind::Prod => "ReduceProd",
            ReduceKind::L1 => "ReduceL1",
            ReduceKind::L2 => "ReduceL2",
            ReduceKind::LogSumExp => "ReduceLogSumExp",
            ReduceKind::SumSquare => "ReduceSumSquare",
        }
    }
}

/// Element-wise predicates and logic: boolean outputs, no gradient.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CompareKind {
    Equal,
    Less,
    LessOrEqual,
    Greater,
    GreaterOrEqual,
    And,
    Or,
    Xor,
    Not,
}

impl CompareKind {
    pub fn name(self) -> &'static str {
        match self {
            CompareKind::Equal => "Equal",
            CompareKind::Less => "Less",
            CompareKind::LessOrEqual => "LessOrEqual",
            CompareKind::Greater => "Greater",
            CompareKind::GreaterOrEqual => "GreaterOrEqual",
            CompareKind::And => "And",
            CompareKind::Or => "Or",
            CompareKind::Xor => "Xor",
            CompareKind::Not => "Not",
        }
    }
}

/// Broadcasting binary arithmetic that `EltwiseKind` does not cover.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BinaryKind {
    /// Backward needs both inputs (and the output).
    Pow,
    /// Integer-style remainder; gradient only through the dividend.
    Mod,
}

impl BinaryKind {
    pub fn name(self) -> &'static str {
        match self {
            BinaryKind::Pow => "Pow",
            BinaryKind::Mod => "Mod",
        }
    }
}

/// The report name of one of this family's variants.
pub fn name(op: &Op) -> &'static str {
    match op {
        Op::LayerNorm { .. } => "LayerNorm",
        Op::GroupNorm { groups: None, .. } => "InstanceNorm",
        Op::GroupNorm { .. } => "GroupNorm",
        Op::Reduce { kind, .. } => kind.name(),
        Op::Gather { .. } => "Gather",
        Op::ShapeOf => "Shape",
        Op::Constant { from_shape: false } => "Constant",
        Op::Constant { from_shape: true } => "ConstantOfShape",
        Op::Expand => "Expand",
        Op::Squeeze { .. } => "Squeeze",
        Op::Unsqueeze { .. } => "Unsqueeze",
        Op::StridedSlice => "StridedSlice",
        Op::Pad => "Pad",
        Op::Resize { .. } => "Resize",
        Op::Compare(k) => k.name(),
        Op::Where => "Where",
        Op::Binary(k) => k.name(),
        _ => "?",
    }
}

/// Output shapes for this family's variants (see the module doc for the limits).
pub fn infer_shapes(op: &Op, inputs: &[&Shape], n_outputs: usize) -> Result<Vec<OutShape>, ShapeError> {
    let known = |s: Shape| Ok(vec![OutShape::Known(s); n_outputs.max(1)]);
    let x = || nth(inputs, 0, "data input");
    match op {
        Op::LayerNorm { .. } | Op::GroupNorm { .. } => known(x()?.clone()),
        Op::Reduce { axes, keep_dims, .. } => known(reduce_shape(x()?, axes, *keep_dims)?),
        Op::Gather { axis } => known(gather_shape(x()?, nth(inputs, 1, "indices input")?, *axis)?),
        Op::ShapeOf => known(Shape::new(vec![x()?.rank() as u64])),
        Op::Squeeze { axes } => known(squeeze_shape(x()?, axes)?),
        Op::Unsqueeze { axes } => known(unsqueeze_shape(x()?, axes)?),
        Op::Compare(CompareKind::Not) => known(x()?.clone()),
        Op::Compare(_) | Op::Binary(_) => {
            known(Shape(broadcast(x()?.dims(), nth(inputs, 1, "second operand")?.dims())?))
        }
        Op::Where => {
            let ab = broadcast(nth(inputs, 1, "first choice")?.dims(), nth(inputs, 2, "second choice")?.dims())?;
            known(Shape(broadcast(x()?.dims(), &ab)?))
        }
        Op::Constant { .. } | Op::Expand | Op::StridedSlice | Op::Pad | Op::Resize { .. } => Err(ShapeError::new(
            format!("{}: the output shape depends on input values (taken from the ONNX shape analysis)", name(op)),
        )),
        _ => Err(ShapeError::new("not a tensor-family op")),
    }
}

/// Learned weights of LayerNorm / GroupNorm: a scale and a bias over the
/// normalised features (LayerNorm) or the channels (GroupNorm).
pub fn param_specs(op: &Op, inputs: &[&Shape]) -> Result<Vec<ParamSpec>, ShapeError> {
    let x = nth(inputs, 0, "data input")?;
    let dims = match op {
        Op::LayerNorm { axis, .. } => x.dims()[x.axis(*axis)?..].to_vec(),
        Op::GroupNorm { .. } => vec![x.dim(1)?],
        _ => return Ok(Vec::new()),
    };
    Ok(vec![ParamSpec::learned("scale", dims.clone()), ParamSpec::learned("bias", dims)])
}

/// Axes listed by an op, resolved against `rank` (negative counts from the end),
/// sorted and without repeats.
fn resolve_axes(axes: &[i64], rank: usize) -> Result<Vec<usize>, ShapeError> {
    let mut out = Vec::with_capacity(axes.len().min(rank));
    for &a in axes {
        let r = if a < 0 { a.checked_add(rank as i64) } else { Some(a) };
        match r {
            Some(r) if r >= 0 && (r as usize) < rank => out.push(r as usize),
            _ => return Err(ShapeError::new(format!("axis {a} is out of range for rank {rank}"))),
        }
    }
    out.sort_unstable();
    out.dedup();
    Ok(out)
}

pub fn reduce_shape(x: &Shape, axes: &[i64], keep_dims: bool) -> Result<Shape, ShapeError> {
    // No axes: every axis is reduced (ONNX default).
    let axes = if axes.is_empty() { (0..x.rank()).collect() } else { resolve_axes(axes, x.rank())? };
    let mut dims = Vec::with_capacity(x.rank());
    for (i, &d) in x.dims().iter().enumerate() {
        if !axes.contains(&i) {
            dims.push(d);
        } else if keep_dims {
            dims.push(1);
        }
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

/// Memory facts of the tensor-program ops. Normalisations keep their input and
/// two f32 statistics per normalised row or group; max/min reductions keep input
/// and output (the positions of the extreme); gather keeps its indices;
/// predicates, shapes and constants have no gradient; reshaping and padding
/// need only shapes.
pub fn memory_facts(op: &Op, inputs: &[&Shape]) -> MemoryFacts {
    let in0 = inputs.first().copied();
    let all: Vec<usize> = (0..inputs.len()).collect();
    let saves = |v: Vec<usize>| MemoryFacts { saves_inputs: v, ..Default::default() };
    match op {
        Op::LayerNorm { axis, .. } => {
            let rows = in0.and_then(|s| s.axis(*axis).ok().map(|a| s.dims()[..a].iter().product::<u64>())).unwrap_or(0);
            MemoryFacts {
                saves_inputs: vec![0],
                saves_params: true,
                extra_saved: vec![ExtraSaved { what: "row statistics", elems: rows.saturating_mul(2), dtype: Some(DType::F32) }],
                ..Default::default()
            }
        }
        Op::GroupNorm { groups, .. } => {
            let n = in0.and_then(|s| s.dims().first().copied()).unwrap_or(0);
            let c = in0.and_then(|s| s.dims().get(1).copied()).unwrap_or(0);
            let g = groups.unwrap_or(c);
            MemoryFacts {
                saves_inputs: vec![0],
                saves_params: true,
                extra_saved: vec![ExtraSaved {
                    what: "group statistics",
                    elems: n.saturating_mul(g).saturating_mul(2),
                    dtype: Some(DType::F32),
                }],
                ..Default::default()
            }
        }
        Op::Reduce { kind, .. } => match kind {
            ReduceKind::Mean | ReduceKind::Sum => MemoryFacts::default(),
            ReduceKind::Max | ReduceKind::Min => MemoryFacts { saves_inputs: vec![0], saves_outputs: vec![0], ..Default::default() },
            _ => saves(vec![0]),
        },
        Op::Gather { .. } => saves(vec![1]),
        Op::Where => saves(vec![0]),
        Op::Binary(_) => saves(all),
        Op::Compare(_) | Op::ShapeOf | Op::Constant { .. } => MemoryFacts { no_grad: true, ..Default::default() },
        _ => MemoryFacts::default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reduce_keeps_or_drops_axes() {
        let x = Shape::new(vec![2, 3, 4]);
        assert_eq!(reduce_shape(&x, &[-1], true).unwrap(), Shape::new(vec![2, 3, 1]));
        assert_eq!(reduce_shape(&x, &[1], false).unwrap(), Shape::new(vec![2, 4]));
        assert_eq!(reduce_shape(&x, &[], false).unwrap(), Shape::scalar());
        assert!(reduce_shape(&x, &[3], false).is_err());
    }

    #[test]
    fn gather_and_squeeze() {
        let data = Shape::new(vec![10, 768]);
        let idx = Shape::new(vec![2, 5]);
        assert_eq!(gather_shape(&data, &idx, 0).unwrap(), Shape::new(vec![2, 5, 768]));
        assert_eq!(squeeze_shape(&Shape::new(vec![1, 3, 1]), &[0]).unwrap(), Shape::new(vec![3, 1]));
        assert!(squeeze_shape(&Shape::new(vec![2, 3]), &[0]).is_err());
        assert_eq!(unsqueeze_shape(&Shape::new(vec![3]), &[0, -1]).unwrap(), Shape::new(vec![1, 3, 1]));
    }
}
