//! The ground floor: concrete tensor shapes, element types and overflow-checked
//! arithmetic on them. Both `ops` (shape rules) and `graph` (tensors and nodes)
//! build on this module; it depends on nothing else in the crate.

use std::fmt;

/// A concrete shape: one non-negative extent per axis. A scalar has no axes.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Default)]
pub struct Shape(pub Vec<u64>);

impl Shape {
    /// A shape of these extents.
    pub fn new(dims: impl Into<Vec<u64>>) -> Self {
        Shape(dims.into())
    }

    /// The shape of a scalar (no axes).
    pub fn scalar() -> Self {
        Shape(Vec::new())
    }

    /// Number of axes.
    pub fn rank(&self) -> usize {
        self.0.len()
    }

    /// The extents, outermost first.
    pub fn dims(&self) -> &[u64] {
        &self.0
    }

    /// Number of elements, or `None` when the product overflows u64.
    pub fn elems(&self) -> Option<u64> {
        checked_product(&self.0)
    }

    /// Resolve a Caffe/ONNX style axis (negative counts from the end).
    pub fn axis(&self, axis: i64) -> Result<usize, ShapeError> {
        let rank = self.rank() as i64;
        let a = if axis < 0 { axis + rank } else { axis };
        if a < 0 || a >= rank.max(1) || (rank == 0) {
            return Err(ShapeError::new(format!("axis {axis} is out of range for a rank-{rank} input {self}")));
        }
        Ok(a as usize)
    }

    /// The extent of `axis`, or an error naming the shape.
    pub fn dim(&self, axis: usize) -> Result<u64, ShapeError> {
        self.0
            .get(axis)
            .copied()
            .ok_or_else(|| ShapeError::new(format!("input {self} has no axis {axis}")))
    }
}

impl fmt::Display for Shape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[")?;
        for (i, d) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{d}")?;
        }
        f.write_str("]")
    }
}

impl From<Vec<u64>> for Shape {
    fn from(v: Vec<u64>) -> Self {
        Shape(v)
    }
}

/// Product of dims, `None` on overflow. A zero dim makes it 0 whatever the
/// others are (an empty tensor is empty, not an overflow).
pub fn checked_product(dims: &[u64]) -> Option<u64> {
    if dims.contains(&0) {
        return Some(0);
    }
    dims.iter().try_fold(1u64, |acc, &d| acc.checked_mul(d))
}

/// Element types. Sizes are the storage sizes a framework uses for one element.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DType {
    /// 64-bit float.
    F64,
    /// 32-bit float.
    F32,
    /// 16-bit float (IEEE half).
    F16,
    /// bfloat16.
    BF16,
    /// Any 8-bit float format.
    F8,
    /// 64-bit signed integer.
    I64,
    /// 32-bit signed integer.
    I32,
    /// 16-bit signed integer.
    I16,
    /// 8-bit signed integer.
    I8,
    /// 8-bit unsigned integer.
    U8,
    /// 16-bit unsigned integer.
    U16,
    /// 32-bit unsigned integer.
    U32,
    /// 64-bit unsigned integer.
    U64,
    /// Boolean, one byte each.
    Bool,
    /// 4-bit types (int4, uint4, float4e2m1): two elements per byte.
    Packed4,
    /// 2-bit types (int2, uint2): four elements per byte.
    Packed2,
    /// Strings (sized as one pointer each).
    String,
}

impl DType {
    /// Bytes one element takes; sub-byte types round up to one byte here
    /// (`bytes_for` packs them).
    pub fn size_bytes(self) -> u64 {
        match self {
            DType::F64 | DType::I64 | DType::U64 => 8,
            DType::F32 | DType::I32 | DType::U32 => 4,
            DType::F16 | DType::BF16 | DType::I16 | DType::U16 => 2,
            DType::F8 | DType::I8 | DType::U8 | DType::Bool | DType::Packed4 | DType::Packed2 => 1,
            // Strings have no fixed size; count the pointer-sized handle.
            DType::String => 8,
        }
    }

    /// Bytes a tensor of `elems` elements takes: packed sub-byte types share
    /// bytes (two 4-bit or four 2-bit values per byte, rounded up per tensor).
    /// `None` when the product overflows u64.
    pub fn bytes_for(self, elems: u64) -> Option<u64> {
        match self {
            DType::Packed4 => Some(elems.div_ceil(2)),
            DType::Packed2 => Some(elems.div_ceil(4)),
            _ => elems.checked_mul(self.size_bytes()),
        }
    }

    /// Whether the type is floating point (what counts as a learned weight).
    pub fn is_float(self) -> bool {
        matches!(self, DType::F64 | DType::F32 | DType::F16 | DType::BF16 | DType::F8)
    }

    /// The short name reports use (`f32`, `bf16`, `4bit`, …).
    pub fn name(self) -> &'static str {
        match self {
            DType::F64 => "f64",
            DType::F32 => "f32",
            DType::F16 => "f16",
            DType::BF16 => "bf16",
            DType::F8 => "f8",
            DType::I64 => "i64",
            DType::I32 => "i32",
            DType::I16 => "i16",
            DType::I8 => "i8",
            DType::U8 => "u8",
            DType::U16 => "u16",
            DType::U32 => "u32",
            DType::U64 => "u64",
            DType::Bool => "bool",
            DType::Packed4 => "4bit",
            DType::Packed2 => "2bit",
            DType::String => "string",
        }
    }
}

/// A shape rule could not produce an output: the message says which rule and why.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ShapeError {
    /// What went wrong.
    pub message: String,
}

impl ShapeError {
    /// An error with this message.
    pub fn new(message: impl Into<String>) -> Self {
        ShapeError { message: message.into() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn product_overflow_is_none() {
        assert_eq!(checked_product(&[1 << 62, 4]), None);
        assert_eq!(checked_product(&[2, 3, 4]), Some(24));
        assert_eq!(checked_product(&[1 << 40, 1 << 40, 0]), Some(0));
        assert_eq!(checked_product(&[]), Some(1));
    }

    #[test]
    fn sub_byte_types_pack_per_tensor() {
        assert_eq!(DType::Packed4.bytes_for(7), Some(4));
        assert_eq!(DType::Packed4.bytes_for(8), Some(4));
        assert_eq!(DType::Packed2.bytes_for(9), Some(3));
        assert_eq!(DType::F8.bytes_for(9), Some(9));
        assert_eq!(DType::F32.bytes_for(u64::MAX), None);
        assert_eq!(DType::Packed4.bytes_for(u64::MAX), Some(u64::MAX / 2 + 1));
    }

    #[test]
    fn negative_axis_counts_from_end() {
        let s = Shape::new(vec![1, 3, 224, 224]);
        assert_eq!(s.axis(-1).unwrap(), 3);
        assert_eq!(s.axis(1).unwrap(), 1);
        assert!(s.axis(4).is_err());
        assert!(s.axis(-5).is_err());
    }
}
