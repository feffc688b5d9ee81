//! Ops that pick, place or find values by index: ONNX GatherElements,
//! GatherND, ScatterND / ScatterElements / Scatter, TopK, NonZero, Compress,
//! OneHot, Unique and NonMaxSuppression.
//!
//! Picking and placing are linear maps: backward needs the indices only
//! (TopK keeps its index output). Finding (NonZero, Compress, Unique,
//! NonMaxSuppression) sizes its output by the data: such outputs are sized at
//! run time, unless the input's value is known before the net runs (a
//! NonZero of a constant), in which case the count is exact.

use super::value::{arg, ints_arg, shape_arg, unknown_value, Input, Value};
use super::{known, no_grad, ConvGeometry, Family, MemoryFacts, OutShape, ParamSpec, ScheduleFacts};
use crate::tensor::{checked_product, DType, Shape, ShapeError};

/// The indexing family.
#[derive(Clone, Debug, PartialEq)]
pub enum IndexOp {
    /// `out[i][j]… = data[…index…]` along `axis`: the indices' shape.
    GatherElements {
        /// The axis.
        axis: i64,
    },
    /// Slices addressed by the last axis of the indices, after `batch_dims` batch axes.
    GatherNd {
        /// Leading axes shared by data and indices.
        batch_dims: u64,
    },
    /// Data with updates written at indices (ScatterND, ScatterElements, Scatter): data's shape.
    Scatter,
    /// The k largest (or smallest) along `axis`: values and int64 positions;
    /// k from input 1 (opset 10 on) or the attribute (`k`, opset 1).
    TopK {
        /// The axis.
        axis: i64,
        /// k from the attribute (`None`: input 1).
        k: Option<u64>,
    },
    /// Positions of the non-zero elements: `[rank, count]`, int64.
    NonZero,
    /// The slices along `axis` (flattened when `None`) where the condition (input 1) holds.
    Compress {
        /// The axis (`None`: flattened).
        axis: Option<i64>,
    },
    /// One-hot encoding: a new axis of extent `depth` (input 1) at `axis`.
    OneHot {
        /// Where the new axis goes.
        axis: i64,
    },
    /// Distinct values (and their positions, inverse map, counts).
    Unique,
    /// Selected boxes: `[count, 3]`, int64.
    NonMaxSuppression,
}

impl Family for IndexOp {
    fn name(&self) -> &'static str {
        match self {
            IndexOp::GatherElements { .. } => "GatherElements",
            IndexOp::GatherNd { .. } => "GatherND",
            IndexOp::Scatter => "Scatter",
            IndexOp::TopK { .. } => "TopK",
            IndexOp::NonZero => "NonZero",
            IndexOp::Compress { .. } => "Compress",
            IndexOp::OneHot { .. } => "OneHot",
            IndexOp::Unique => "Unique",
            IndexOp::NonMaxSuppression => "NonMaxSuppression",
        }
    }

    fn infer_shapes(&self, _: &[&Shape], _: usize) -> Result<Vec<OutShape>, ShapeError> {
        Err(ShapeError::new(format!("{}: the rule reads its inputs in operator order", self.name())))
    }

    fn has_weights(&self) -> bool {
        false
    }

    fn param_specs(&self, _: &[&Shape]) -> Result<Vec<ParamSpec>, ShapeError> {
        Ok(Vec::new())
    }

    fn schedule_facts(&self) -> ScheduleFacts {
        match self {
            IndexOp::GatherElements { .. }
            | IndexOp::GatherNd { .. }
            | IndexOp::Scatter
            | IndexOp::TopK { .. }
            | IndexOp::NonZero
            | IndexOp::Compress { .. }
            | IndexOp::OneHot { .. }
            | IndexOp::Unique
            | IndexOp::NonMaxSuppression => ScheduleFacts::COMPUTES,
        }
    }

    /// Gathers and scatters keep their indices (input 1), Compress its
    /// condition, TopK its positions output; the finders have no gradient.
    fn memory_facts(&self, _: &[&Shape], _: &[&Shape]) -> MemoryFacts {
        match self {
            IndexOp::GatherElements { .. } | IndexOp::GatherNd { .. } | IndexOp::Scatter | IndexOp::Compress { .. } => {
                MemoryFacts { saves_inputs: vec![1], ..Default::default() }
            }
            IndexOp::TopK { .. } => MemoryFacts { saves_outputs: vec![1], ..Default::default() },
            IndexOp::NonZero | IndexOp::OneHot { .. } | IndexOp::Unique | IndexOp::NonMaxSuppression => no_grad(),
        }
    }

    fn conv_geometry(&self, _: Option<&Shape>, _: &[&Shape]) -> Option<ConvGeometry> {
        None
    }

    fn infer(&self, ins: &[Option<Input<'_>>], n_outputs: usize) -> Result<Vec<OutShape>, ShapeError> {
        let x = || shape_arg(ins, 0, "data input");
        let run_time = |dims: Vec<u64>| Ok(vec![OutShape::RunTime(Shape(dims)); n_outputs.max(1)]);
        match self {
            IndexOp::GatherElements { axis } => {
                let (data, idx) = (x()?, shape_arg(ins, 1, "indices")?);
                data.axis(*axis)?;
                if data.rank() != idx.rank() {
                    return Err(ShapeError::new(format!("GatherElements: indices {idx} and data {data} differ in rank")));
                }
                known(idx.clone(), n_outputs)
            }
            IndexOp::GatherNd { batch_dims } => known(gather_nd_shape(x()?, shape_arg(ins, 1, "indices")?, *batch_dims)?, n_outputs),
            IndexOp::Scatter => known(x()?.clone(), n_outputs),
            IndexOp::TopK { axis, k } => {
                let x = x()?;
                let a = x.axis(*axis)?;
                let k = match k {
                    Some(k) => *k,
                    None => {
                        let v = ints_arg(ins, 1, "k")?.ok_or_else(|| ShapeError::new("TopK needs k"))?;
                        match v.as_slice() {
                            [k] if *k >= 0 => *k as u64,
                            _ => return Err(ShapeError::new(format!("TopK: k {v:?}"))),
                        }
                    }
                };
                if k > x.dims()[a] {
                    return Err(ShapeError::new(format!("TopK: k {k} exceeds the extent {} of axis {a}", x.dims()[a])));
                }
                let mut d = x.dims().to_vec();
                d[a] = k;
                known(Shape(d), n_outputs)
            }
            IndexOp::NonZero => {
                let x = arg(ins, 0, "data input")?;
                match x.value {
                    Some(v) => known(Shape::new(vec![x.shape.rank() as u64, count_nonzero(v)]), n_outputs),
                    None => run_time(vec![x.shape.rank() as u64, 1]),
                }
            }
            IndexOp::Compress { axis } => {
                let x = x()?;
                let cond = arg(ins, 1, "condition")?;
                let mut dims = match axis {
                    Some(_) => x.dims().to_vec(),
                    None => vec![checked_product(x.dims()).ok_or_else(|| super::overflow("flattened input"))?],
                };
                let a = match axis {
                    Some(a) => x.axis(*a)?,
                    None => 0,
                };
                match cond.value.and_then(Value::ints) {
                    Some(c) => {
                        if c.len() as u64 > dims[a] {
                            return Err(ShapeError::new("Compress: the condition is longer than the axis"));
                        }
                        dims[a] = c.iter().filter(|&&b| b != 0).count() as u64;
                        known(Shape(dims), n_outputs)
                    }
                    None => {
                        dims[a] = 1;
                        run_time(dims)
                    }
                }
            }
            IndexOp::OneHot { axis } => {
                let idx = x()?;
                let depth = arg(ins, 1, "depth")?;
                let d = depth.value.and_then(Value::scalar_f64).ok_or_else(|| unknown_value("depth"))?;
                // The specification casts to int64, its reference takes ⌈depth⌉: only whole depths are certain.
                if d.fract() != 0.0 || d < 0.0 || d > 1e18 {
                    return Err(ShapeError::new(format!("OneHot: depth {d}")));
                }
                let r = idx.rank() as i64;
                let a = if *axis < 0 { axis + r + 1 } else { *axis };
                if a < 0 || a > r {
                    return Err(ShapeError::new(format!("OneHot: axis {axis} out of range")));
                }
                let mut dims = idx.dims().to_vec();
                dims.insert(a as usize, d as u64);
                known(Shape(dims), n_outputs)
            }
            IndexOp::Unique => {
                x()?;
                run_time(vec![1])
            }
            IndexOp::NonMaxSuppression => run_time(vec![1, 3]),
        }
    }

    fn out_dtype(&self, ins: &[Option<Input<'_>>], index: usize) -> Option<DType> {
        match self {
            IndexOp::NonZero | IndexOp::NonMaxSuppression => Some(DType::I64),
            IndexOp::TopK { .. } | IndexOp::Unique if index > 0 => Some(DType::I64),
            IndexOp::OneHot { .. } => ins.get(2).copied().flatten().map(|v| v.dtype),
            IndexOp::GatherElements { .. }
            | IndexOp::GatherNd { .. }
            | IndexOp::Scatter
            | IndexOp::TopK { .. }
            | IndexOp::Compress { .. }
            | IndexOp::Unique => None,
        }
    }

    /// Gathers of known values, and the positions NonZero finds in one.
    fn eval(&self, ins: &[Option<Input<'_>>], outputs: &[&Shape]) -> Option<Vec<Value>> {
        let x = ins.first().copied().flatten()?;
        let v = match self {
            IndexOp::NonZero => {
                let d = x.shape.dims();
                let st = super::value::strides(d);
                let flags: Vec<bool> = match x.value? {
                    Value::Int(v) => v.iter().map(|&e| e != 0).collect(),
                    Value::Float(v) => v.iter().map(|&e| e != 0.0).collect(),
                };
                let hits: Vec<usize> = flags.iter().enumerate().filter(|(_, &f)| f).map(|(e, _)| e).collect();
                let mut out = Vec::with_capacity(hits.len() * d.len());
                for (a, &s) in st.iter().enumerate() {
                    out.extend(hits.iter().map(|&e| ((e / s) % d[a] as usize) as i64));
                }
                Value::Int(out)
            }
            IndexOp::GatherElements { axis } => {
                let idx = arg(ins, 1, "indices").ok()?;
                let (d, id) = (x.shape.dims(), idx.shape.dims());
                let a = x.shape.axis(*axis).ok()?;
                let (st, ist) = (super::value::strides(d), super::value::strides(id));
                let mut pos = Vec::with_capacity(outputs.first()?.elems()? as usize);
                for (e, &i) in idx.value?.ints()?.iter().enumerate() {
                    let i = if i < 0 { i + d[a] as i64 } else { i };
                    if i < 0 || i >= d[a] as i64 {
                        return None;
                    }
                    let mut off = 0;
                    for k in 0..id.len() {
                        let p = if k == a { i as usize } else { (e / ist[k]) % id[k] as usize };
                        off += p * st[k];
                    }
                    pos.push(off);
                }
                x.value?.gather(&pos)?
            }
            IndexOp::GatherNd { .. }
            | IndexOp::Scatter
            | IndexOp::TopK { .. }
            | IndexOp::Compress { .. }
            | IndexOp::OneHot { .. }
            | IndexOp::Unique
            | IndexOp::NonMaxSuppression => return None,
        };
        Some(vec![v])
    }
}

fn count_nonzero(v: &Value) -> u64 {
    match v {
        Value::Int(v) => v.iter().filter(|&&e| e != 0).count() as u64,
        Value::Float(v) => v.iter().filter(|&&e| e != 0.0).count() as u64,
    }
}

/// `indices.shape[..q−1] + data.shape[b + indices.shape[−1]..]`, the first `b`
/// axes of both being batch axes of equal extent.
pub fn gather_nd_shape(data: &Shape, idx: &Shape, b: u64) -> Result<Shape, ShapeError> {
    let (d, i) = (data.dims(), idx.dims());
    let b = b as usize;
    let last = *i.last().ok_or_else(|| ShapeError::new("GatherND: scalar indices"))? as usize;
    if b >= d.len().min(i.len()) || d[..b] != i[..b] || b + last > d.len() {
        return Err(ShapeError::new(format!("GatherND: indices {idx} do not address data {data} with {b} batch axes")));
    }
    let mut out = i[..i.len() - 1].to_vec();
    out.extend_from_slice(&d[b + last..]);
    Ok(Shape(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(d: &[u64]) -> Shape {
        Shape::new(d.to_vec())
    }

    fn input<'a>(shape: &'a Shape, dtype: DType, value: Option<&'a Value>) -> Option<Input<'a>> {
        Some(Input { shape, dtype, value })
    }

    #[test]
    fn gather_nd_examples_from_the_specification() {
        // Example 1: data [2,2], indices [2,2] → [2]; example 2: indices [2,1] → [2,2];
        // example 5 (batch_dims 1): data [2,2,2], indices [2,1] → [2,2].
        assert_eq!(gather_nd_shape(&s(&[2, 2]), &s(&[2, 2]), 0).unwrap(), s(&[2]));
        assert_eq!(gather_nd_shape(&s(&[2, 2]), &s(&[2, 1]), 0).unwrap(), s(&[2, 2]));
        assert_eq!(gather_nd_shape(&s(&[2, 2, 2]), &s(&[2, 1]), 1).unwrap(), s(&[2, 2]));
        assert!(gather_nd_shape(&s(&[2, 2]), &s(&[2, 3]), 0).is_err());
    }

    #[test]
    fn topk_and_onehot() {
        let x = s(&[3, 4]);
        let kshape = s(&[1]);
        let k = Value::Int(vec![3]);
        let ins = [input(&x, DType::F32, None), input(&kshape, DType::I64, Some(&k))];
        let op = IndexOp::TopK { axis: -1, k: None };
        assert_eq!(op.infer(&ins, 2).unwrap(), vec![OutShape::Known(s(&[3, 3])); 2]);
        assert_eq!((op.out_dtype(&ins, 0), op.out_dtype(&ins, 1)), (None, Some(DType::I64)));
        let too_many = Value::Int(vec![5]);
        assert!(op.infer(&[ins[0], input(&kshape, DType::I64, Some(&too_many))], 2).is_err());
        // OneHot: indices [2,3], depth 10, axis 1 → [2, 10, 3].
        let idx = s(&[2, 3]);
        let depth = Value::Float(vec![10.0]);
        let one = Shape::scalar();
        let vals = s(&[2]);
        let ins = [input(&idx, DType::I64, None), input(&one, DType::F32, Some(&depth)), input(&vals, DType::F32, None)];
        assert_eq!(IndexOp::OneHot { axis: 1 }.infer(&ins, 1).unwrap(), vec![OutShape::Known(s(&[2, 10, 3]))]);
        assert_eq!(IndexOp::OneHot { axis: -1 }.infer(&ins, 1).unwrap(), vec![OutShape::Known(s(&[2, 3, 10]))]);
    }

    #[test]
    fn nonzero_and_compress_are_exact_only_on_known_values() {
        let x = s(&[2, 2]);
        let v = Value::Int(vec![1, 0, 1, 1]);
        let known_ins = [input(&x, DType::Bool, Some(&v))];
        assert_eq!(IndexOp::NonZero.infer(&known_ins, 1).unwrap(), vec![OutShape::Known(s(&[2, 3]))]);
        assert_eq!(IndexOp::NonZero.eval(&known_ins, &[&s(&[2, 3])]), Some(vec![Value::Int(vec![0, 1, 1, 0, 0, 1])]));
        let unknown = [input(&x, DType::Bool, None)];
        assert!(matches!(IndexOp::NonZero.infer(&unknown, 1).unwrap()[0], OutShape::RunTime(_)));
        // Compress (the ONNX example): [3,2], condition [0,1,1] on axis 0 → [2,2].
        let data = s(&[3, 2]);
        let cs = s(&[3]);
        let cond = Value::Int(vec![0, 1, 1]);
        let ins = [input(&data, DType::F32, None), input(&cs, DType::Bool, Some(&cond))];
        assert_eq!(IndexOp::Compress { axis: Some(0) }.infer(&ins, 1).unwrap(), vec![OutShape::Known(s(&[2, 2]))]);
        assert_eq!(IndexOp::Compress { axis: None }.infer(&ins, 1).unwrap(), vec![OutShape::Known(s(&[2]))]);
        let ins = [input(&data, DType::F32, None), input(&cs, DType::Bool, None)];
        assert!(matches!(IndexOp::Compress { axis: Some(0) }.infer(&ins, 1).unwrap()[0], OutShape::RunTime(_)));
    }
}
