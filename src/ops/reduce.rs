//! Reductions and scans along axes: Caffe's Reduction (every axis from `axis`
//! on) and ArgMax, ONNX's Reduce* over listed axes and CumSum, and a CTC
//! greedy decoder (the best class per time step, repeats and blanks removed).
//!
//! What backward keeps: sums and means nothing but shapes; max and min the
//! input and output (the positions of the extreme); products, norms and
//! log-sum-exp their input; ArgMax has no gradient; a cumulative sum is a
//! linear map whose gradient is the reverse cumulative sum: nothing.

use super::{
    first, known, no_grad, nth, resolve_axes, ConvGeometry, Family, MemoryFacts, OutShape, ParamSpec, ScheduleFacts,
};
use crate::tensor::{Shape, ShapeError};

/// The reduction family.
#[derive(Clone, Debug, PartialEq)]
pub enum ReduceOp {
    /// Caffe Reduction: reduces every axis from `axis` on.
    Reduction { axis: i64 },
    /// Caffe ArgMax (also ONNX ArgMax with an axis): indices of the `top_k` largest.
    ArgMax { top_k: u64, out_max_val: bool, axis: Option<i64> },
    /// ONNX Reduce*: the listed axes (none: all), kept as 1 or dropped.
    Axes { kind: ReduceKind, axes: Vec<i64>, keep_dims: bool },
    /// Running sum along an axis given as an input (ONNX CumSum): same shape.
    CumSum,
    /// CTC greedy decoding of (T, N, C) scores: the labels, padded, as
    /// (N, T, 1, 1); with a second input (the true labels), the accuracy as
    /// (1, 2, 1, 1). No gradient.
    CtcGreedyDecode,
}

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

impl Family for ReduceOp {
    fn name(&self) -> &'static str {
        match self {
            ReduceOp::Reduction { .. } => "Reduction",
            ReduceOp::ArgMax { .. } => "ArgMax",
            ReduceOp::Axes { kind, .. } => kind.name(),
            ReduceOp::CumSum => "CumSum",
            ReduceOp::CtcGreedyDecode => "CtcGreedyDecode",
        }
    }

    fn infer_shapes(&self, inputs: &[&Shape], n_outputs: usize) -> Result<Vec<OutShape>, ShapeError> {
        let shape = match self {
            ReduceOp::Reduction { axis } => reduction_shape(*axis, first(inputs)?)?,
            ReduceOp::ArgMax { top_k, out_max_val, axis } => argmax_shape(*top_k, *out_max_val, *axis, first(inputs)?)?,
            ReduceOp::Axes { axes, keep_dims, .. } => reduce_shape(nth(inputs, 0, "data input")?, axes, *keep_dims)?,
            ReduceOp::CumSum => nth(inputs, 0, "data input")?.clone(),
            ReduceOp::CtcGreedyDecode => ctc_decode_shape(inputs)?,
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
            ReduceOp::Reduction { .. }
            | ReduceOp::ArgMax { .. }
            | ReduceOp::Axes { .. }
            | ReduceOp::CumSum
            | ReduceOp::CtcGreedyDecode => ScheduleFacts::COMPUTES,
        }
    }

    /// Caffe's Reduction keeps its input (ASUMSQ and ASUM need it).
    fn memory_facts(&self, _: &[&Shape], outputs: &[&Shape]) -> MemoryFacts {
        let saves_input = MemoryFacts { saves_inputs: vec![0], ..Default::default() };
        match self {
            ReduceOp::Reduction { .. } => saves_input,
            ReduceOp::ArgMax { .. } | ReduceOp::CtcGreedyDecode => no_grad(),
            ReduceOp::Axes { kind, .. } => match kind {
                ReduceKind::Mean | ReduceKind::Sum => MemoryFacts::default(),
                ReduceKind::Max | ReduceKind::Min => {
                    MemoryFacts { saves_inputs: vec![0], saves_outputs: vec![0], ..Default::default() }
                }
                ReduceKind::Prod | ReduceKind::L1 | ReduceKind::L2 | ReduceKind::LogSumExp | ReduceKind::SumSquare => {
                    saves_input
                }
            },
            // One addition per element.
            ReduceOp::CumSum => MemoryFacts {
                macs: outputs.first().and_then(|s| s.elems()).unwrap_or(0),
                ..Default::default()
            },
        }
    }

    fn conv_geometry(&self, _: Option<&Shape>, _: &[&Shape]) -> Option<ConvGeometry> {
        None
    }
}

pub fn reduction_shape(axis: i64, input: &Shape) -> Result<Shape, ShapeError> {
    let axis = if input.rank() == 0 { 0 } else { input.axis(axis)? };
    Ok(Shape(input.dims()[..axis].to_vec()))
}

pub fn argmax_shape(top_k: u64, out_max_val: bool, axis: Option<i64>, input: &Shape) -> Result<Shape, ShapeError> {
    match axis {
        Some(axis) => {
            let axis = input.axis(axis)?;
            let mut dims = input.dims().to_vec();
            dims[axis] = top_k;
            Ok(Shape(dims))
        }
        None => Ok(Shape(vec![input.dim(0)?, if out_max_val { 2 } else { 1 }, top_k])),
    }
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

/// (T, N, C) scores → (N, T, 1, 1) labels; with the true labels as a second
/// input, (1, 2, 1, 1) (sequence and character accuracy).
pub fn ctc_decode_shape(inputs: &[&Shape]) -> Result<Shape, ShapeError> {
    let scores = first(inputs)?;
    let [t, n, _] = scores.dims() else {
        return Err(ShapeError::new(format!("CTC decoding needs T×N×C scores, got {scores}")));
    };
    Ok(Shape(if inputs.len() > 1 { vec![1, 2, 1, 1] } else { vec![*n, *t, 1, 1] }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(d: &[u64]) -> Shape {
        Shape::new(d.to_vec())
    }

    #[test]
    fn ctc_greedy_decoder_writes_one_label_per_step() {
        let scores = Shape::new(vec![35, 2, 5990]);
        assert_eq!(ctc_decode_shape(&[&scores]).unwrap().dims(), &[2, 35, 1, 1]);
        assert_eq!(ctc_decode_shape(&[&scores, &Shape::new(vec![2, 20])]).unwrap().dims(), &[1, 2, 1, 1]);
    }

    #[test]
    fn reduce_keeps_or_drops_axes() {
        let x = s(&[2, 3, 4]);
        assert_eq!(reduce_shape(&x, &[-1], true).unwrap(), s(&[2, 3, 1]));
        assert_eq!(reduce_shape(&x, &[1], false).unwrap(), s(&[2, 4]));
        assert_eq!(reduce_shape(&x, &[], false).unwrap(), Shape::scalar());
        assert!(reduce_shape(&x, &[3], false).is_err());
    }

    #[test]
    fn cumsum_keeps_the_shape_and_saves_nothing() {
        let op = ReduceOp::CumSum;
        let x = s(&[2, 3, 5]);
        let axis = Shape::scalar();
        assert_eq!(op.infer_shapes(&[&x, &axis], 1).unwrap(), vec![OutShape::Known(x.clone())]);
        assert!(op.infer_shapes(&[], 1).is_err());
        let f = op.memory_facts(&[&x, &axis], &[&x]);
        assert!(f.saves_inputs.is_empty() && f.saves_outputs.is_empty() && f.extra_saved.is_empty());
        assert!(!f.no_grad);
        assert_eq!(f.macs, 30);
        assert!(!op.has_weights() && op.param_specs(&[&x, &axis]).unwrap().is_empty());
        assert_eq!(op.schedule_facts(), ScheduleFacts::COMPUTES);
        assert_eq!(op.name(), "CumSum");
    }

    #[test]
    fn caffe_reduction_and_argmax() {
        assert_eq!(reduction_shape(1, &s(&[2, 4, 5])).unwrap(), s(&[2]));
        assert_eq!(argmax_shape(5, false, Some(1), &s(&[2, 1000])).unwrap(), s(&[2, 5]));
        assert_eq!(argmax_shape(1, true, None, &s(&[2, 1000])).unwrap(), s(&[2, 2, 1]));
    }
}
