//! Reductions and scans along axes: Caffe's Reduction (every axis from `axis`
//! on) and ArgMax, ONNX's Reduce* over listed axes, ArgMax/ArgMin and CumSum,
//! and a CTC greedy decoder (the best class per time step, repeats and blanks removed).
//!
//! What backward keeps: sums and means nothing but shapes; max and min the
//! input and output (the positions of the extreme); products, norms and
//! log-sums their input; ArgMax has no gradient; a cumulative sum is a
//! linear map whose gradient is the reverse cumulative sum: nothing.
//!
//! ONNX moved Reduce*'s axes from an attribute to input 1 (ReduceSum at opset
//! 13, the others at 18), with `noop_with_empty_axes`; the rule takes input 1's
//! value when the input is given. Sum, product, min, max and mean have value
//! rules (shape arithmetic multiplies extents with ReduceProd).

use super::value::{ints_arg, shape_arg, Input, Value};
use super::{
    first, known, no_grad, nth, resolve_axes, ConvGeometry, Family, MemoryFacts, OutShape, ParamSpec, ScheduleFacts,
};
use crate::tensor::{DType, Shape, ShapeError};

/// The reduction family.
#[derive(Clone, Debug, PartialEq)]
pub enum ReduceOp {
    /// Caffe Reduction: reduces every axis from `axis` on.
    Reduction {
        /// The first axis reduced.
        axis: i64,
    },
    /// Caffe ArgMax (also ONNX ArgMax with an axis): indices of the `top_k` largest.
    ArgMax {
        /// How many of the largest.
        top_k: u64,
        /// Also output their values.
        out_max_val: bool,
        /// The axis (`None`: over everything but the batch).
        axis: Option<i64>,
    },
    /// ONNX Reduce*: the listed axes (attribute, or input 1 when given; none:
    /// all, or none at all with `noop_with_empty_axes`), kept as 1 or dropped.
    Axes {
        /// The reduction.
        kind: ReduceKind,
        /// The axes reduced.
        axes: Vec<i64>,
        /// Reduced axes kept with extent 1.
        keep_dims: bool,
        /// No axes means no reduction (opset 18).
        noop_with_empty_axes: bool,
    },
    /// Running sum along an axis given as an input (ONNX CumSum): same shape.
    CumSum,
    /// ONNX ArgMax / ArgMin: int64 positions along `axis`, kept as 1 or dropped.
    ArgExtreme {
        /// ArgMax (else ArgMin).
        max: bool,
        /// The axis.
        axis: i64,
        /// The axis kept with extent 1.
        keep_dims: bool,
    },
    /// CTC greedy decoding of (T, N, C) scores: the labels, padded, as
    /// (N, T, 1, 1); with a second input (the true labels), the accuracy as
    /// (1, 2, 1, 1). No gradient.
    CtcGreedyDecode,
}

/// How ONNX Reduce* combines elements.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReduceKind {
    /// ReduceMean.
    Mean,
    /// ReduceSum.
    Sum,
    /// ReduceMax.
    Max,
    /// ReduceMin.
    Min,
    /// ReduceProd.
    Prod,
    /// ReduceL1.
    L1,
    /// ReduceL2.
    L2,
    /// ReduceLogSumExp.
    LogSumExp,
    /// ReduceSumSquare.
    SumSquare,
    /// ReduceLogSum.
    LogSum,
}

impl ReduceKind {
    /// The ONNX op's name.
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
            ReduceKind::LogSum => "ReduceLogSum",
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
            ReduceOp::ArgExtreme { max: true, .. } => "ArgMax",
            ReduceOp::ArgExtreme { max: false, .. } => "ArgMin",
            ReduceOp::CtcGreedyDecode => "CtcGreedyDecode",
        }
    }

    fn infer_shapes(&self, inputs: &[&Shape], n_outputs: usize) -> Result<Vec<OutShape>, ShapeError> {
        let shape = match self {
            ReduceOp::Reduction { axis } => reduction_shape(*axis, first(inputs)?)?,
            ReduceOp::ArgMax { top_k, out_max_val, axis } => argmax_shape(*top_k, *out_max_val, *axis, first(inputs)?)?,
            ReduceOp::Axes { axes, keep_dims, noop_with_empty_axes, .. } => {
                let x = nth(inputs, 0, "data input")?;
                if axes.is_empty() && *noop_with_empty_axes {
                    x.clone()
                } else {
                    reduce_shape(x, axes, *keep_dims)?
                }
            }
            ReduceOp::CumSum => nth(inputs, 0, "data input")?.clone(),
            ReduceOp::ArgExtreme { axis, keep_dims, .. } => reduce_shape(first(inputs)?, &[*axis], *keep_dims)?,
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
            | ReduceOp::ArgExtreme { .. }
            | ReduceOp::CtcGreedyDecode => ScheduleFacts::COMPUTES,
        }
    }

    /// Caffe's Reduction keeps its input (ASUMSQ and ASUM need it).
    fn memory_facts(&self, _: &[&Shape], outputs: &[&Shape]) -> MemoryFacts {
        let saves_input = MemoryFacts { saves_inputs: vec![0], ..Default::default() };
        match self {
            ReduceOp::Reduction { .. } => saves_input,
            ReduceOp::ArgMax { .. } | ReduceOp::ArgExtreme { .. } | ReduceOp::CtcGreedyDecode => no_grad(),
            ReduceOp::Axes { kind, .. } => match kind {
                ReduceKind::Mean | ReduceKind::Sum => MemoryFacts::default(),
                ReduceKind::Max | ReduceKind::Min => {
                    MemoryFacts { saves_inputs: vec![0], saves_outputs: vec![0], ..Default::default() }
                }
                ReduceKind::Prod
                | ReduceKind::L1
                | ReduceKind::L2
                | ReduceKind::LogSumExp
                | ReduceKind::SumSquare
                | ReduceKind::LogSum => saves_input,
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

    fn infer(&self, ins: &[Option<Input<'_>>], n_outputs: usize) -> Result<Vec<OutShape>, ShapeError> {
        match self {
            ReduceOp::Axes { axes, keep_dims, noop_with_empty_axes, .. } => {
                let x = shape_arg(ins, 0, "data input")?;
                let axes = ints_arg(ins, 1, "axes")?.unwrap_or_else(|| axes.clone());
                let shape = if axes.is_empty() && *noop_with_empty_axes { x.clone() } else { reduce_shape(x, &axes, *keep_dims)? };
                known(shape, n_outputs)
            }
            ReduceOp::CumSum => known(shape_arg(ins, 0, "data input")?.clone(), n_outputs),
            ReduceOp::Reduction { .. } | ReduceOp::ArgMax { .. } | ReduceOp::ArgExtreme { .. } | ReduceOp::CtcGreedyDecode => {
                self.infer_shapes(&super::value::present_shapes(ins)?, n_outputs)
            }
        }
    }

    fn out_dtype(&self, _: &[Option<Input<'_>>], _: usize) -> Option<DType> {
        match self {
            ReduceOp::ArgExtreme { .. } => Some(DType::I64),
            ReduceOp::Reduction { .. } | ReduceOp::ArgMax { .. } | ReduceOp::Axes { .. } | ReduceOp::CumSum | ReduceOp::CtcGreedyDecode => None,
        }
    }

    /// Sum, product, min, max and mean of known values.
    fn eval(&self, ins: &[Option<Input<'_>>], outputs: &[&Shape]) -> Option<Vec<Value>> {
        let ReduceOp::Axes { kind, axes, noop_with_empty_axes, .. } = self else { return None };
        let x = ins.first().copied().flatten()?;
        let v = x.value?;
        let axes = ints_arg(ins, 1, "axes").ok()?.unwrap_or_else(|| axes.clone());
        if axes.is_empty() && *noop_with_empty_axes {
            return Some(vec![v.clone()]);
        }
        let d = x.shape.dims();
        let axes = if axes.is_empty() { (0..d.len()).collect() } else { resolve_axes(&axes, d.len()).ok()? };
        // Group the input positions by their output position.
        let out_len = outputs.first()?.elems()? as usize;
        let st = super::value::strides(d);
        let kept: Vec<usize> = (0..d.len()).filter(|a| !axes.contains(a)).collect();
        let kept_dims: Vec<u64> = kept.iter().map(|&a| d[a]).collect();
        let kst = super::value::strides(&kept_dims);
        let mut groups: Vec<Vec<usize>> = vec![Vec::new(); out_len];
        let total = x.shape.elems()? as usize;
        for e in 0..total {
            let mut o = 0;
            for (k, &a) in kept.iter().enumerate() {
                o += (e / st[a]) % d[a] as usize * kst[k];
            }
            groups.get_mut(o)?.push(e);
        }
        let out_dtype = x.dtype;
        let value = match v {
            Value::Int(iv) => {
                let r: Option<Vec<i64>> = groups
                    .iter()
                    .map(|g| {
                        let mut it = g.iter().map(|&e| iv[e]);
                        let r = match kind {
                            ReduceKind::Sum => it.try_fold(0i64, |a, b| a.checked_add(b)),
                            ReduceKind::Prod => it.try_fold(1i64, |a, b| a.checked_mul(b)),
                            ReduceKind::Max => it.max(),
                            ReduceKind::Min => it.min(),
                            _ => None,
                        }?;
                        super::value::wrap_int(r, out_dtype)
                    })
                    .collect();
                Value::Int(r?)
            }
            Value::Float(fv) => {
                let r: Option<Vec<f64>> = groups
                    .iter()
                    .map(|g| {
                        let it = g.iter().map(|&e| fv[e]);
                        let r = match kind {
                            ReduceKind::Sum => Some(it.sum()),
                            ReduceKind::Prod => Some(it.product()),
                            ReduceKind::Max => it.reduce(f64::max),
                            ReduceKind::Min => it.reduce(f64::min),
                            ReduceKind::Mean if !g.is_empty() => Some(it.sum::<f64>() / g.len() as f64),
                            _ => None,
                        }?;
                        super::value::round_float(r, out_dtype)
                    })
                    .collect();
                Value::Float(r?)
            }
        };
        Some(vec![value])
    }
}

/// Caffe Reduction: the axes before `axis` remain.
pub fn reduction_shape(axis: i64, input: &Shape) -> Result<Shape, ShapeError> {
    let axis = if input.rank() == 0 { 0 } else { input.axis(axis)? };
    Ok(Shape(input.dims()[..axis].to_vec()))
}

/// ArgMax: `top_k` along the axis, or (N, 1 or 2, top_k) over everything.
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


/// ONNX Reduce*: the listed axes (none: all) dropped or kept as 1.
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
    fn reduce_axes_from_input_and_noop() {
        let x = s(&[3, 2, 2]);
        let ax_shape = s(&[1]);
        let ax = Value::Int(vec![1]);
        let op = ReduceOp::Axes { kind: ReduceKind::Sum, axes: vec![], keep_dims: true, noop_with_empty_axes: false };
        let ins = [Some(Input { shape: &x, dtype: DType::F32, value: None }), Some(Input { shape: &ax_shape, dtype: DType::I64, value: Some(&ax) })];
        // ONNX test_reduce_sum_keepdims_example: [3,2,2] over axis 1 → [3,1,2].
        assert_eq!(op.infer(&ins, 1).unwrap(), vec![OutShape::Known(s(&[3, 1, 2]))]);
        let unknown = [ins[0], Some(Input { shape: &ax_shape, dtype: DType::I64, value: None })];
        assert!(op.infer(&unknown, 1).is_err());
        let empty = s(&[0]);
        let none = Value::Int(vec![]);
        let noop = ReduceOp::Axes { kind: ReduceKind::Sum, axes: vec![], keep_dims: true, noop_with_empty_axes: true };
        let ins_empty = [ins[0], Some(Input { shape: &empty, dtype: DType::I64, value: Some(&none) })];
        assert_eq!(noop.infer(&ins_empty, 1).unwrap(), vec![OutShape::Known(x.clone())]);
        assert_eq!(op.infer(&ins_empty, 1).unwrap(), vec![OutShape::Known(s(&[1, 1, 1]))]);
    }

    #[test]
    fn reduce_prod_value_multiplies_extents() {
        let x = s(&[2, 3]);
        let v = Value::Int(vec![1, 2, 3, 4, 5, 6]);
        let op = ReduceOp::Axes { kind: ReduceKind::Prod, axes: vec![1], keep_dims: false, noop_with_empty_axes: false };
        let ins = [Some(Input { shape: &x, dtype: DType::I64, value: Some(&v) })];
        assert_eq!(op.eval(&ins, &[&s(&[2])]), Some(vec![Value::Int(vec![6, 120])]));
        let all = ReduceOp::Axes { kind: ReduceKind::Sum, axes: vec![], keep_dims: false, noop_with_empty_axes: false };
        assert_eq!(all.eval(&ins, &[&Shape::scalar()]), Some(vec![Value::Int(vec![21])]));
    }

    #[test]
    fn argmax_keeps_or_drops_its_axis() {
        let x = s(&[2, 3, 4]);
        let ins = [Some(Input { shape: &x, dtype: DType::F32, value: None })];
        let op = ReduceOp::ArgExtreme { max: true, axis: 1, keep_dims: false };
        assert_eq!(op.infer(&ins, 1).unwrap(), vec![OutShape::Known(s(&[2, 4]))]);
        assert_eq!(op.out_dtype(&ins, 0), Some(DType::I64));
        let op = ReduceOp::ArgExtreme { max: false, axis: -1, keep_dims: true };
        assert_eq!(op.infer(&ins, 1).unwrap(), vec![OutShape::Known(s(&[2, 3, 1]))]);
    }

    #[test]
    fn caffe_reduction_and_argmax() {
        assert_eq!(reduction_shape(1, &s(&[2, 4, 5])).unwrap(), s(&[2]));
        assert_eq!(argmax_shape(5, false, Some(1), &s(&[2, 1000])).unwrap(), s(&[2, 5]));
        assert_eq!(argmax_shape(1, true, None, &s(&[2, 1000])).unwrap(), s(&[2, 2, 1]));
    }
}
