//! Values known before the net runs, and what a shape rule sees of one input.
//!
//! Shapes in exported graphs are often computed: `Shape → Gather → Unsqueeze →
//! Concat → Reshape`, `Range`, `ConstantOfShape`, comparisons and `Where` on
//! shape vectors. Shape rules therefore receive, besides each input's shape
//! and element type, its *value* when it is small and known (an integer
//! constant, a value computed by another op's value rule). A value is never
//! a guess: it is known exactly or absent.
//!
//! Values are bounded: no tensor of more than `MAX_VALUE_ELEMS` elements is
//! ever evaluated (so seq×seq masks of long contexts are never materialised).
//! Integers and booleans are held as `i64` (booleans 0/1), wrapped to their
//! element type's width after every operation; floating-point values as `f64`
//! rounded to their type's precision (f32 and f64 only: f16/bf16 values are
//! not evaluated).

use crate::tensor::{DType, Shape, ShapeError};

/// No value with more elements than this is evaluated or kept.
pub const MAX_VALUE_ELEMS: u64 = 4096;

/// The elements of a small tensor, in row-major order.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    /// Integer and boolean (0/1) elements.
    Int(Vec<i64>),
    /// Floating-point elements.
    Float(Vec<f64>),
}

impl Value {
    /// Number of elements.
    pub fn len(&self) -> usize {
        match self {
            Value::Int(v) => v.len(),
            Value::Float(v) => v.len(),
        }
    }

    /// Whether it has no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The integer elements (not floats: ONNX shape arguments are integers).
    pub fn ints(&self) -> Option<&[i64]> {
        match self {
            Value::Int(v) => Some(v),
            Value::Float(_) => None,
        }
    }

    /// Every element as f64 (integers converted).
    pub fn floats(&self) -> Vec<f64> {
        match self {
            Value::Int(v) => v.iter().map(|&x| x as f64).collect(),
            Value::Float(v) => v.clone(),
        }
    }

    /// The one element of a scalar or one-element tensor, as an integer.
    pub fn scalar_int(&self) -> Option<i64> {
        match self.ints()? {
            [x] => Some(*x),
            _ => None,
        }
    }

    /// The one element, as f64.
    pub fn scalar_f64(&self) -> Option<f64> {
        match self {
            Value::Int(v) if v.len() == 1 => Some(v[0] as f64),
            Value::Float(v) if v.len() == 1 => Some(v[0]),
            _ => None,
        }
    }

    /// Element `i` as a value of the same kind.
    fn pick(&self, idx: &[usize]) -> Value {
        match self {
            Value::Int(v) => Value::Int(idx.iter().map(|&i| v[i]).collect()),
            Value::Float(v) => Value::Float(idx.iter().map(|&i| v[i]).collect()),
        }
    }

    /// The elements at `idx`, in that order (gathers, slices, transposes, broadcasts).
    pub fn gather(&self, idx: &[usize]) -> Option<Value> {
        if idx.iter().any(|&i| i >= self.len()) {
            return None;
        }
        Some(self.pick(idx))
    }

    /// `n` copies of one element.
    pub fn splat(&self, n: usize) -> Option<Value> {
        if self.len() != 1 {
            return None;
        }
        Some(self.pick(&vec![0; n]))
    }

    /// Values of several tensors one after the other; all of one kind.
    pub fn concat<'a>(parts: impl IntoIterator<Item = &'a Value>) -> Option<Value> {
        let mut ints: Vec<i64> = Vec::new();
        let mut floats: Vec<f64> = Vec::new();
        let (mut any_int, mut any_float) = (false, false);
        for p in parts {
            match p {
                Value::Int(v) => {
                    any_int = true;
                    ints.extend_from_slice(v);
                }
                Value::Float(v) => {
                    any_float = true;
                    floats.extend_from_slice(v);
                }
            }
        }
        match (any_int, any_float) {
            (true, true) => None,
            (_, true) => Some(Value::Float(floats)),
            _ => Some(Value::Int(ints)),
        }
    }
}

/// What a shape rule sees of one input: its shape, element type, and its
/// value when that is small and known.
#[derive(Clone, Copy, Debug)]
pub struct Input<'a> {
    /// Its shape.
    pub shape: &'a Shape,
    /// Its element type.
    pub dtype: DType,
    /// Its elements, when small and known.
    pub value: Option<&'a Value>,
}

/// A node's inputs in operator order (weights included, as ONNX and the
/// frameworks list them); `None` is an optional input the node leaves out.
pub type Inputs<'a, 'b> = &'b [Option<Input<'a>>];

/// Input `i`, present, or an error naming what is missing.
pub fn arg<'a>(ins: &[Option<Input<'a>>], i: usize, what: &str) -> Result<Input<'a>, ShapeError> {
    ins.get(i)
        .copied()
        .flatten()
        .ok_or_else(|| ShapeError::new(format!("the op needs a {what} as input {}", i + 1)))
}

/// Whether input `i` is given.
pub fn present(ins: &[Option<Input<'_>>], i: usize) -> bool {
    matches!(ins.get(i), Some(Some(_)))
}

/// The shape of input `i`.
pub fn shape_arg<'a>(ins: &[Option<Input<'a>>], i: usize, what: &str) -> Result<&'a Shape, ShapeError> {
    Ok(arg(ins, i, what)?.shape)
}

/// The integer value of input `i`: `Ok(None)` when the input is left out, an
/// error when it is given but its value is not known before the net runs.
pub fn ints_arg(ins: &[Option<Input<'_>>], i: usize, what: &str) -> Result<Option<Vec<i64>>, ShapeError> {
    let Some(Some(x)) = ins.get(i) else { return Ok(None) };
    match x.value.and_then(Value::ints) {
        Some(v) => Ok(Some(v.to_vec())),
        None => Err(unknown_value(what)),
    }
}

/// The numeric value of input `i` as f64 (left out: `Ok(None)`).
pub fn floats_arg(ins: &[Option<Input<'_>>], i: usize, what: &str) -> Result<Option<Vec<f64>>, ShapeError> {
    let Some(Some(x)) = ins.get(i) else { return Ok(None) };
    match x.value {
        Some(v) => Ok(Some(v.floats())),
        None => Err(unknown_value(what)),
    }
}

/// The error of a rule whose output shape depends on a value not known
/// before the net runs.
pub fn unknown_value(what: &str) -> ShapeError {
    ShapeError::new(format!("the output shape depends on the {what}, whose value is not known before the net runs"))
}

/// Present inputs' shapes, in order, as the shape-only rules take them; an
/// input left out before a given one is an error (those rules are positional).
pub fn present_shapes<'a>(ins: &[Option<Input<'a>>]) -> Result<Vec<&'a Shape>, ShapeError> {
    let last = ins.iter().rposition(Option::is_some).map_or(0, |p| p + 1);
    ins[..last]
        .iter()
        .enumerate()
        .map(|(i, x)| x.map(|x| x.shape).ok_or_else(|| ShapeError::new(format!("input {} is left out", i + 1))))
        .collect()
}

/// Row-major strides of `dims`.
pub fn strides(dims: &[u64]) -> Vec<usize> {
    let mut s = vec![1usize; dims.len()];
    for i in (0..dims.len().saturating_sub(1)).rev() {
        s[i] = s[i + 1] * dims[i + 1] as usize;
    }
    s
}

/// For every element of `out` (row-major), the index of the element of an
/// input of shape `input` that numpy broadcasting reads. The caller bounds
/// `out` by `MAX_VALUE_ELEMS`.
pub fn broadcast_index(input: &[u64], out: &[u64]) -> Option<Vec<usize>> {
    if input.len() > out.len() {
        return None;
    }
    let lead = out.len() - input.len();
    if input.iter().zip(&out[lead..]).any(|(&i, &o)| i != 1 && i != o) {
        return None;
    }
    let total = crate::tensor::checked_product(out)? as usize;
    let in_strides = strides(input);
    let mut idx = Vec::with_capacity(total);
    let mut pos = vec![0u64; out.len()];
    for _ in 0..total {
        let mut off = 0usize;
        for (k, &d) in input.iter().enumerate() {
            if d != 1 {
                off += pos[lead + k] as usize * in_strides[k];
            }
        }
        idx.push(off);
        for a in (0..out.len()).rev() {
            pos[a] += 1;
            if pos[a] < out[a] {
                break;
            }
            pos[a] = 0;
        }
    }
    Some(idx)
}

/// An integer wrapped to the width of `dtype` (two's complement, as a cast
/// in C and numpy does), `None` for types whose values are not integers held
/// in an i64 (u64 above i64::MAX, floats, strings).
pub fn wrap_int(x: i64, dtype: DType) -> Option<i64> {
    Some(match dtype {
        DType::I64 => x,
        DType::I32 => x as i32 as i64,
        DType::I16 => x as i16 as i64,
        DType::I8 => x as i8 as i64,
        DType::U32 => x as u32 as i64,
        DType::U16 => x as u16 as i64,
        DType::U8 => x as u8 as i64,
        DType::U64 if x >= 0 => x,
        DType::Bool => i64::from(x != 0),
        _ => return None,
    })
}

/// A float rounded to the precision of `dtype` (f32 or f64); `None` for the
/// float types whose rounding is not modelled.
pub fn round_float(x: f64, dtype: DType) -> Option<f64> {
    match dtype {
        DType::F64 => Some(x),
        DType::F32 => Some(x as f32 as f64),
        _ => None,
    }
}

/// Whether values of this element type are evaluated.
pub fn evaluable(dtype: DType) -> bool {
    matches!(
        dtype,
        DType::I64 | DType::I32 | DType::I16 | DType::I8 | DType::U32 | DType::U16 | DType::U8 | DType::Bool | DType::F32 | DType::F64
    )
}

/// A value converted to `dtype` as ONNX Cast does: integers wrap to the
/// target width, floats truncate toward zero (NaN or infinite to an integer:
/// not evaluated), anything non-zero is `true`.
pub fn cast(v: &Value, to: DType) -> Option<Value> {
    if !evaluable(to) {
        return None;
    }
    if to.is_float() {
        return v.floats().into_iter().map(|x| round_float(x, to)).collect::<Option<Vec<f64>>>().map(Value::Float);
    }
    let ints: Option<Vec<i64>> = match v {
        Value::Int(x) => x.iter().map(|&i| wrap_int(i, to)).collect(),
        Value::Float(x) => x
            .iter()
            .map(|&f| {
                if to == DType::Bool {
                    return Some(i64::from(f != 0.0));
                }
                if !f.is_finite() || f.trunc() < i64::MIN as f64 || f.trunc() >= i64::MAX as f64 {
                    return None;
                }
                wrap_int(f.trunc() as i64, to)
            })
            .collect(),
    };
    ints.map(Value::Int)
}

/// Elementwise combination of broadcast inputs into `out_dtype`: by the
/// integer function when every input is an integer, else by the float
/// function on every input as f64 (a float result for an integer or boolean
/// output must be a whole number: comparisons give 0 or 1). `None` from
/// either function: not evaluated.
pub fn broadcast_map(
    ins: &[(&Value, &Shape)],
    out: &Shape,
    out_dtype: DType,
    int_op: impl Fn(&[i64]) -> Option<i64>,
    float_op: impl Fn(&[f64]) -> Option<f64>,
) -> Option<Value> {
    let n = out.elems()?;
    if n > MAX_VALUE_ELEMS || !evaluable(out_dtype) {
        return None;
    }
    let maps: Vec<Vec<usize>> = ins.iter().map(|(_, s)| broadcast_index(s.dims(), out.dims())).collect::<Option<_>>()?;
    if let Some(vals) = ins.iter().map(|(v, _)| v.ints()).collect::<Option<Vec<&[i64]>>>() {
        let mut args = vec![0i64; ins.len()];
        let mut ints = Vec::with_capacity(n as usize);
        for e in 0..n as usize {
            for (k, m) in maps.iter().enumerate() {
                args[k] = *vals[k].get(m[e])?;
            }
            ints.push(int_op(&args)?);
        }
        return if out_dtype.is_float() {
            cast(&Value::Int(ints), out_dtype)
        } else {
            ints.into_iter().map(|x| wrap_int(x, out_dtype)).collect::<Option<Vec<i64>>>().map(Value::Int)
        };
    }
    let vals: Vec<Vec<f64>> = ins.iter().map(|(v, _)| v.floats()).collect();
    let mut args = vec![0f64; ins.len()];
    let mut res = Vec::with_capacity(n as usize);
    for e in 0..n as usize {
        for (k, m) in maps.iter().enumerate() {
            args[k] = *vals[k].get(m[e])?;
        }
        res.push(float_op(&args)?);
    }
    if out_dtype.is_float() {
        return res.into_iter().map(|x| round_float(x, out_dtype)).collect::<Option<Vec<f64>>>().map(Value::Float);
    }
    res.into_iter()
        .map(|x| if x.fract() == 0.0 && x.abs() < 9.0e15 { wrap_int(x as i64, out_dtype) } else { None })
        .collect::<Option<Vec<i64>>>()
        .map(Value::Int)
}

/// Row-major positions of the elements of a slice: per axis, the input
/// positions taken, in order.
pub fn select_index(dims: &[u64], per_axis: &[Vec<u64>]) -> Option<Vec<usize>> {
    let st = strides(dims);
    let mut idx = vec![0usize];
    for (a, picks) in per_axis.iter().enumerate() {
        let mut next = Vec::with_capacity(idx.len() * picks.len());
        for &base in &idx {
            for &p in picks {
                next.push(base + p as usize * st.get(a)?);
            }
        }
        idx = next;
        if idx.len() as u64 > MAX_VALUE_ELEMS {
            return None;
        }
    }
    Some(idx)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(d: &[u64]) -> Shape {
        Shape::new(d.to_vec())
    }

    #[test]
    fn broadcasting_reads_the_right_elements() {
        assert_eq!(broadcast_index(&[3], &[2, 3]).unwrap(), vec![0, 1, 2, 0, 1, 2]);
        assert_eq!(broadcast_index(&[2, 1], &[2, 3]).unwrap(), vec![0, 0, 0, 1, 1, 1]);
        assert_eq!(broadcast_index(&[], &[2]).unwrap(), vec![0, 0]);
        assert!(broadcast_index(&[4], &[2, 3]).is_none());
    }

    #[test]
    fn integer_arithmetic_wraps_to_the_type() {
        let a = Value::Int(vec![i32::MAX as i64]);
        let one = Value::Int(vec![1]);
        let v = broadcast_map(&[(&a, &s(&[1])), (&one, &s(&[]))], &s(&[1]), DType::I32, |x| x[0].checked_add(x[1]), |_| None);
        assert_eq!(v, Some(Value::Int(vec![i32::MIN as i64])));
    }

    #[test]
    fn casts_follow_onnx() {
        assert_eq!(cast(&Value::Float(vec![2.7, -2.7]), DType::I64), Some(Value::Int(vec![2, -2])));
        assert_eq!(cast(&Value::Int(vec![300]), DType::U8), Some(Value::Int(vec![44])));
        assert_eq!(cast(&Value::Int(vec![0, 5]), DType::Bool), Some(Value::Int(vec![0, 1])));
        assert_eq!(cast(&Value::Float(vec![f64::NAN]), DType::I64), None);
        assert_eq!(cast(&Value::Int(vec![3]), DType::F16), None);
        assert_eq!(cast(&Value::Float(vec![0.1]), DType::F32), Some(Value::Float(vec![0.1f32 as f64])));
    }

    #[test]
    fn selection_of_slices() {
        // [[0,1,2],[3,4,5]]: rows {1}, columns {2,0} → [5, 3]
        assert_eq!(select_index(&[2, 3], &[vec![1], vec![2, 0]]).unwrap(), vec![5, 3]);
    }
}
