//! Values that are not data: a tensor's shape and element count, constants
//! stored in the graph, constants filled to a shape given as an input, number
//! ranges, identity matrices and random tensors of a stated shape (ONNX Shape,
//! Size, Constant, ConstantOfShape, Range, EyeLike, RandomNormal/Uniform).
//! They hold no activation memory and have no gradient. Their shapes often
//! depend on values (a Range's bounds, ConstantOfShape's shape vector), which
//! the rules read from their inputs' known values; each also has a value rule
//! so that shape arithmetic downstream can be followed.

use super::value::{arg, ints_arg, shape_arg, unknown_value, Input, Value, MAX_VALUE_ELEMS};
use super::{known, no_grad, nth, ConvGeometry, Family, MemoryFacts, OutShape, ParamSpec, Produces, ScheduleFacts};
use crate::tensor::{DType, Shape, ShapeError};

/// The constant family.
#[derive(Clone, Debug, PartialEq)]
pub enum ConstantOp {
    /// The input's dims `start..end` (negative counts from the end; `None`:
    /// to the end) as a 1-D integer tensor.
    ShapeOf {
        /// First dim.
        start: i64,
        /// End dim (exclusive; `None`: the last).
        end: Option<i64>,
    },
    /// The input's element count, an integer scalar.
    Size,
    /// A value stored in the graph (`None`: the file does not give one nnmem reads).
    Stored(Option<StoredValue>),
    /// A tensor of the shape given as input 0, every element `fill` (one element).
    Filled {
        /// The fill value.
        fill: Value,
        /// Its element type.
        dtype: DType,
    },
    /// `start, start + delta, …` below `limit`: inputs 0, 1, 2 (scalars).
    Range,
    /// An identity-like matrix of input 0's shape, of `dtype` (`None`: input 0's).
    EyeLike {
        /// The element type.
        dtype: Option<DType>,
    },
    /// Random values of a stated shape.
    Random {
        /// The stated shape.
        dims: Vec<u64>,
        /// The element type.
        dtype: DType,
    },
}

/// A constant's dims, element type and, when small, its elements.
#[derive(Clone, Debug, PartialEq)]
pub struct StoredValue {
    /// Dims.
    pub dims: Vec<u64>,
    /// Element type.
    pub dtype: DType,
    /// Elements, when small and read.
    pub value: Option<Value>,
}

impl Family for ConstantOp {
    fn name(&self) -> &'static str {
        match self {
            ConstantOp::ShapeOf { .. } => "Shape",
            ConstantOp::Size => "Size",
            ConstantOp::Stored(_) => "Constant",
            ConstantOp::Filled { .. } => "ConstantOfShape",
            ConstantOp::Range => "Range",
            ConstantOp::EyeLike { .. } => "EyeLike",
            ConstantOp::Random { .. } => "Random",
        }
    }

    fn infer_shapes(&self, inputs: &[&Shape], n_outputs: usize) -> Result<Vec<OutShape>, ShapeError> {
        match self {
            ConstantOp::ShapeOf { start, end } => {
                let (a, b) = shape_range(nth(inputs, 0, "data input")?.rank(), *start, *end);
                known(Shape::new(vec![b.saturating_sub(a) as u64]), n_outputs)
            }
            ConstantOp::Size => known(Shape::scalar(), n_outputs),
            ConstantOp::Stored(Some(s)) => known(Shape::new(s.dims.clone()), n_outputs),
            ConstantOp::EyeLike { .. } => known(nth(inputs, 0, "data input")?.clone(), n_outputs),
            ConstantOp::Random { dims, .. } => known(Shape::new(dims.clone()), n_outputs),
            ConstantOp::Stored(None) | ConstantOp::Filled { .. } | ConstantOp::Range => {
                Err(ShapeError::new(format!("{}: the output shape depends on input values", self.name())))
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
            ConstantOp::ShapeOf { .. }
            | ConstantOp::Size
            | ConstantOp::Stored(_)
            | ConstantOp::Filled { .. }
            | ConstantOp::Range
            | ConstantOp::EyeLike { .. }
            | ConstantOp::Random { .. } => ScheduleFacts { produces: Produces::ShapeOrConstant, ..ScheduleFacts::COMPUTES },
        }
    }

    fn memory_facts(&self, _: &[&Shape], _: &[&Shape]) -> MemoryFacts {
        match self {
            ConstantOp::ShapeOf { .. }
            | ConstantOp::Size
            | ConstantOp::Stored(_)
            | ConstantOp::Filled { .. }
            | ConstantOp::Range
            | ConstantOp::EyeLike { .. }
            | ConstantOp::Random { .. } => no_grad(),
        }
    }

    fn conv_geometry(&self, _: Option<&Shape>, _: &[&Shape]) -> Option<ConvGeometry> {
        None
    }

    fn infer(&self, ins: &[Option<Input<'_>>], n_outputs: usize) -> Result<Vec<OutShape>, ShapeError> {
        match self {
            ConstantOp::Filled { .. } => {
                let dims = ints_arg(ins, 0, "shape to fill")?.ok_or_else(|| ShapeError::new("ConstantOfShape needs a shape input"))?;
                if shape_arg(ins, 0, "shape to fill")?.rank() != 1 {
                    return Err(ShapeError::new("ConstantOfShape: the shape input is not 1-D"));
                }
                let dims = dims
                    .iter()
                    .map(|&d| u64::try_from(d).map_err(|_| ShapeError::new(format!("ConstantOfShape: negative extent {d}"))))
                    .collect::<Result<Vec<u64>, _>>()?;
                known(Shape(dims), n_outputs)
            }
            ConstantOp::Range => known(Shape::new(vec![range_len(ins)?]), n_outputs),
            ConstantOp::ShapeOf { .. }
            | ConstantOp::Size
            | ConstantOp::Stored(_)
            | ConstantOp::EyeLike { .. }
            | ConstantOp::Random { .. } => {
                let shapes: Vec<&Shape> = ins.iter().flatten().map(|x| x.shape).collect();
                self.infer_shapes(&shapes, n_outputs)
            }
        }
    }

    fn out_dtype(&self, ins: &[Option<Input<'_>>], _: usize) -> Option<DType> {
        match self {
            ConstantOp::ShapeOf { .. } | ConstantOp::Size => Some(DType::I64),
            ConstantOp::Stored(s) => s.as_ref().map(|s| s.dtype),
            ConstantOp::Filled { dtype, .. } => Some(*dtype),
            ConstantOp::Range => None,
            ConstantOp::EyeLike { dtype } => dtype.or_else(|| ins.first().copied().flatten().map(|x| x.dtype)),
            ConstantOp::Random { dtype, .. } => Some(*dtype),
        }
    }

    fn eval(&self, ins: &[Option<Input<'_>>], outputs: &[&Shape]) -> Option<Vec<Value>> {
        let out = outputs.first()?;
        let v = match self {
            ConstantOp::ShapeOf { start, end } => {
                let x = arg(ins, 0, "data input").ok()?.shape;
                let (a, b) = shape_range(x.rank(), *start, *end);
                Value::Int(x.dims()[a..b.max(a)].iter().map(|&d| i64::try_from(d).ok()).collect::<Option<_>>()?)
            }
            ConstantOp::Size => Value::Int(vec![i64::try_from(arg(ins, 0, "data input").ok()?.shape.elems()?).ok()?]),
            ConstantOp::Stored(s) => s.as_ref()?.value.clone()?,
            ConstantOp::Filled { fill, .. } => fill.splat(usize::try_from(out.elems()?).ok()?)?,
            ConstantOp::Range => range_value(ins, out.elems()?)?,
            ConstantOp::EyeLike { .. } | ConstantOp::Random { .. } => return None,
        };
        Some(vec![v])
    }
}

/// ONNX Shape's `start`/`end` (opset 15): negative values count from the
/// end, both clamp to `[0, rank]`.
fn shape_range(rank: usize, start: i64, end: Option<i64>) -> (usize, usize) {
    let r = rank as i64;
    let clamp = |v: i64| (if v < 0 { v + r } else { v }).clamp(0, r) as usize;
    (clamp(start), end.map_or(rank, clamp))
}

/// The three scalars of a Range: integers when the type is an integer type.
enum RangeArgs {
    Int(i64, i64, i64),
    Float(f64, f64, f64, DType),
}

fn range_args(ins: &[Option<Input<'_>>]) -> Result<RangeArgs, ShapeError> {
    let names = ["start", "limit", "delta"];
    let mut xs = Vec::with_capacity(3);
    for (i, what) in names.iter().enumerate() {
        let x = arg(ins, i, what)?;
        if x.shape.elems() != Some(1) {
            return Err(ShapeError::new(format!("Range: {what} is not a scalar")));
        }
        xs.push(x);
    }
    let dtype = xs[0].dtype;
    let vals: Vec<&Value> = xs.iter().zip(names).map(|(x, w)| x.value.ok_or_else(|| unknown_value(w))).collect::<Result<_, _>>()?;
    if dtype.is_float() {
        let f: Vec<f64> = vals.iter().map(|v| v.scalar_f64().ok_or_else(|| ShapeError::new("Range: a bound is not a number"))).collect::<Result<_, _>>()?;
        return Ok(RangeArgs::Float(f[0], f[1], f[2], dtype));
    }
    let i: Vec<i64> =
        vals.iter().map(|v| v.scalar_int().ok_or_else(|| ShapeError::new("Range: a bound is not an integer"))).collect::<Result<_, _>>()?;
    Ok(RangeArgs::Int(i[0], i[1], i[2]))
}

/// `max(ceil((limit − start) / delta), 0)` elements. For float types the
/// quotient is taken both in f64 and rounded to the type; when the two
/// ceilings differ the count is not certain and the rule does not apply.
fn range_len(ins: &[Option<Input<'_>>]) -> Result<u64, ShapeError> {
    match range_args(ins)? {
        RangeArgs::Int(start, limit, delta) => {
            if delta == 0 {
                return Err(ShapeError::new("Range: delta is 0"));
            }
            let span = i128::from(limit) - i128::from(start);
            let d = i128::from(delta);
            let n = if (span > 0) == (d > 0) && span != 0 { (span + d - d.signum()) / d } else { 0 };
            u64::try_from(n.max(0)).map_err(|_| ShapeError::new("Range: too many elements"))
        }
        RangeArgs::Float(start, limit, delta, dtype) => {
            if delta == 0.0 || !(start.is_finite() && limit.is_finite() && delta.is_finite()) {
                return Err(ShapeError::new("Range: delta is 0 or a bound is not finite"));
            }
            let q64 = (limit - start) / delta;
            let q_typed = match dtype {
                DType::F32 => (((limit - start) as f32) / delta as f32) as f64,
                _ => q64,
            };
            let (a, b) = (q64.ceil().max(0.0), q_typed.ceil().max(0.0));
            if a != b || a > u64::MAX as f64 / 2.0 {
                return Err(ShapeError::new("Range: the element count depends on the rounding of the bounds"));
            }
            Ok(a as u64)
        }
    }
}

fn range_value(ins: &[Option<Input<'_>>], n: u64) -> Option<Value> {
    if n > MAX_VALUE_ELEMS {
        return None;
    }
    match range_args(ins).ok()? {
        RangeArgs::Int(start, _, delta) => {
            let dtype = arg(ins, 0, "start").ok()?.dtype;
            let v: Option<Vec<i64>> =
                (0..n as i64).map(|i| super::value::wrap_int(start.checked_add(i.checked_mul(delta)?)?, dtype)).collect();
            v.map(Value::Int)
        }
        RangeArgs::Float(start, _, delta, dtype) => {
            let v: Option<Vec<f64>> = (0..n).map(|i| super::value::round_float(start + i as f64 * delta, dtype)).collect();
            v.map(Value::Float)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(d: &[u64]) -> Shape {
        Shape::new(d.to_vec())
    }

    fn scalar<'a>(v: &'a Value, dtype: DType, shape: &'a Shape) -> Option<Input<'a>> {
        Some(Input { shape, dtype, value: Some(v) })
    }

    #[test]
    fn shape_with_start_and_end() {
        // ONNX Shape-15 examples: [2,3,4] start=-1 → [4]; start=1,end=2 → [3].
        let x = s(&[2, 3, 4]);
        let ins = [Some(Input { shape: &x, dtype: DType::F32, value: None })];
        let op = ConstantOp::ShapeOf { start: -1, end: None };
        assert_eq!(op.infer(&ins, 1).unwrap(), vec![OutShape::Known(s(&[1]))]);
        assert_eq!(op.eval(&ins, &[&s(&[1])]), Some(vec![Value::Int(vec![4])]));
        let op = ConstantOp::ShapeOf { start: 1, end: Some(2) };
        assert_eq!(op.eval(&ins, &[&s(&[1])]), Some(vec![Value::Int(vec![3])]));
        let op = ConstantOp::ShapeOf { start: 5, end: Some(-10) };
        assert_eq!(op.infer(&ins, 1).unwrap(), vec![OutShape::Known(s(&[0]))]);
        assert_eq!(op.out_dtype(&ins, 0), Some(DType::I64));
    }

    #[test]
    fn range_counts_like_onnx() {
        let one = Shape::scalar();
        let run = |a: Value, b: Value, c: Value, dt: DType| {
            let ins = [scalar(&a, dt, &one), scalar(&b, dt, &one), scalar(&c, dt, &one)];
            let out = ConstantOp::Range.infer(&ins, 1).map(|o| o[0].clone());
            let val = out.as_ref().ok().and_then(|o| match o {
                OutShape::Known(s) => ConstantOp::Range.eval(&ins, &[s]),
                OutShape::RunTime(_) | OutShape::RunTimeExtent { .. } => None,
            });
            (out, val)
        };
        // ONNX examples: Range(3, 9, 3) = [3, 6]; Range(10, 4, -2) = [10, 8, 6].
        let (o, v) = run(Value::Int(vec![3]), Value::Int(vec![9]), Value::Int(vec![3]), DType::I64);
        assert_eq!(o.unwrap(), OutShape::Known(s(&[2])));
        assert_eq!(v, Some(vec![Value::Int(vec![3, 6])]));
        let (o, v) = run(Value::Int(vec![10]), Value::Int(vec![4]), Value::Int(vec![-2]), DType::I32);
        assert_eq!(o.unwrap(), OutShape::Known(s(&[3])));
        assert_eq!(v, Some(vec![Value::Int(vec![10, 8, 6])]));
        let (o, _) = run(Value::Int(vec![5]), Value::Int(vec![1]), Value::Int(vec![2]), DType::I64);
        assert_eq!(o.unwrap(), OutShape::Known(s(&[0])));
        let (o, _) = run(Value::Float(vec![1.0]), Value::Float(vec![5.0]), Value::Float(vec![2.0]), DType::F32);
        assert_eq!(o.unwrap(), OutShape::Known(s(&[2])));
        assert!(run(Value::Int(vec![1]), Value::Int(vec![5]), Value::Int(vec![0]), DType::I64).0.is_err());
    }

    #[test]
    fn constant_of_shape_reads_the_shape_value() {
        let shape = s(&[3]);
        let dims = Value::Int(vec![2, 0, 4]);
        let ins = [Some(Input { shape: &shape, dtype: DType::I64, value: Some(&dims) })];
        let op = ConstantOp::Filled { fill: Value::Int(vec![1]), dtype: DType::I32 };
        assert_eq!(op.infer(&ins, 1).unwrap(), vec![OutShape::Known(s(&[2, 0, 4]))]);
        assert_eq!(op.out_dtype(&ins, 0), Some(DType::I32));
        assert_eq!(op.eval(&ins, &[&s(&[2, 0, 4])]), Some(vec![Value::Int(vec![])]));
        let unknown = [Some(Input { shape: &shape, dtype: DType::I64, value: None })];
        assert!(op.infer(&unknown, 1).is_err());
        assert_eq!(op.schedule_facts().produces, Produces::ShapeOrConstant);
    }
}
