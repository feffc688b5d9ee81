//! A reduced ONNX protobuf schema, decoded with prost straight from a memory map.
//!
//! Only the fields nnmem reads are declared, with the field numbers published in
//! `onnx.proto`. Weight payloads (`float_data` 4, `int32_data` 5, `string_data` 6,
//! `int64_data` 7, `raw_data` 9, `double_data` 10, `uint64_data` 11) are *not*
//! declared: prost skips an undeclared length-delimited field by moving its cursor
//! past it, so the pages holding the weights of a 500 MB file are never touched.
//!
//! Besides the typed messages, this file has a tiny wire-format walker
//! (`fields`) that yields each top-level field of a message as a byte slice. The
//! tract bridge uses it to copy the pieces of a graph it keeps (nodes, small
//! constants) without decoding the whole file with tract's full schema.

use std::fmt;

/// ModelProto header: ir_version 1, producer_name 2, opset_import 8. The graph
/// (field 7) is not declared here: the loader splits it into its fields with
/// `fields` and decodes each piece, keeping the piece's bytes for tract.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ModelProto {
    #[prost(int64, tag = "1")]
    pub ir_version: i64,
    #[prost(string, tag = "2")]
    pub producer_name: String,
    #[prost(message, repeated, tag = "8")]
    pub opset_import: Vec<OperatorSetIdProto>,
}

/// OperatorSetIdProto: domain 1, version 2.
#[derive(Clone, PartialEq, prost::Message)]
pub struct OperatorSetIdProto {
    #[prost(string, tag = "1")]
    pub domain: String,
    #[prost(int64, tag = "2")]
    pub version: i64,
}

/// GraphProto: node 1, name 2, initializer 5, input 11, output 12, value_info 13.
#[derive(Clone, PartialEq, prost::Message)]
pub struct GraphProto {
    #[prost(message, repeated, tag = "1")]
    pub node: Vec<NodeProto>,
    #[prost(string, tag = "2")]
    pub name: String,
    #[prost(message, repeated, tag = "5")]
    pub initializer: Vec<TensorProto>,
    #[prost(message, repeated, tag = "11")]
    pub input: Vec<ValueInfoProto>,
    #[prost(message, repeated, tag = "12")]
    pub output: Vec<ValueInfoProto>,
    #[prost(message, repeated, tag = "13")]
    pub value_info: Vec<ValueInfoProto>,
}

/// NodeProto: input 1, output 2, name 3, op_type 4, attribute 5, domain 7,
/// metadata_props 9 (what the exporter recorded about the node's origin).
#[derive(Clone, PartialEq, prost::Message)]
pub struct NodeProto {
    #[prost(string, repeated, tag = "1")]
    pub input: Vec<String>,
    #[prost(string, repeated, tag = "2")]
    pub output: Vec<String>,
    #[prost(string, tag = "3")]
    pub name: String,
    #[prost(string, tag = "4")]
    pub op_type: String,
    #[prost(message, repeated, tag = "5")]
    pub attribute: Vec<AttributeProto>,
    #[prost(string, tag = "7")]
    pub domain: String,
    #[prost(message, repeated, tag = "9")]
    pub metadata_props: Vec<StringStringEntryProto>,
}

/// AttributeProto: name 1, f 2, i 3, s 4, t 5, g 6, floats 7, ints 8, strings 9,
/// tensors 10, graphs 11, type 20. A subgraph (`g`, `graphs`) is declared so that
/// its presence is seen (If/Loop/Scan); its own initializers' payloads stay
/// undeclared like everywhere else.
#[derive(Clone, PartialEq, prost::Message)]
pub struct AttributeProto {
    #[prost(string, tag = "1")]
    pub name: String,
    #[prost(float, tag = "2")]
    pub f: f32,
    #[prost(int64, tag = "3")]
    pub i: i64,
    #[prost(bytes = "vec", tag = "4")]
    pub s: Vec<u8>,
    #[prost(message, optional, tag = "5")]
    pub t: Option<TensorProto>,
    #[prost(message, optional, boxed, tag = "6")]
    pub g: Option<Box<GraphProto>>,
    #[prost(float, repeated, tag = "7")]
    pub floats: Vec<f32>,
    #[prost(int64, repeated, tag = "8")]
    pub ints: Vec<i64>,
    #[prost(bytes = "vec", repeated, tag = "9")]
    pub strings: Vec<Vec<u8>>,
    #[prost(message, repeated, tag = "10")]
    pub tensors: Vec<TensorProto>,
    #[prost(message, repeated, tag = "11")]
    pub graphs: Vec<GraphProto>,
    #[prost(int32, tag = "20")]
    pub r#type: i32,
}

/// TensorProto header only: dims 1, data_type 2, name 8, external_data 13,
/// data_location 14. The payload fields are deliberately absent (see the module doc).
#[derive(Clone, PartialEq, prost::Message)]
pub struct TensorProto {
    #[prost(int64, repeated, tag = "1")]
    pub dims: Vec<i64>,
    #[prost(int32, tag = "2")]
    pub data_type: i32,
    #[prost(string, tag = "8")]
    pub name: String,
    #[prost(message, repeated, tag = "13")]
    pub external_data: Vec<StringStringEntryProto>,
    /// 0 DEFAULT (inside the file), 1 EXTERNAL.
    #[prost(int32, tag = "14")]
    pub data_location: i32,
}

impl TensorProto {
    pub fn is_external(&self) -> bool {
        self.data_location == 1
    }

    /// The `location` entry of an external tensor.
    pub fn external_location(&self) -> Option<&str> {
        self.external_data.iter().find(|e| e.key == "location").map(|e| e.value.as_str())
    }
}

/// SparseTensorProto: values 1 (a tensor named like the sparse tensor, holding
/// its non-zero values), indices 2, dims 3 (the dense shape).
#[derive(Clone, PartialEq, prost::Message)]
pub struct SparseTensorProto {
    #[prost(message, optional, tag = "1")]
    pub values: Option<TensorProto>,
    #[prost(message, optional, tag = "2")]
    pub indices: Option<TensorProto>,
    #[prost(int64, repeated, tag = "3")]
    pub dims: Vec<i64>,
}

/// StringStringEntryProto: key 1, value 2.
#[derive(Clone, PartialEq, prost::Message)]
pub struct StringStringEntryProto {
    #[prost(string, tag = "1")]
    pub key: String,
    #[prost(string, tag = "2")]
    pub value: String,
}

/// ValueInfoProto: name 1, type 2.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ValueInfoProto {
    #[prost(string, tag = "1")]
    pub name: String,
    #[prost(message, optional, tag = "2")]
    pub r#type: Option<TypeProto>,
}

/// TypeProto: tensor_type 1 (the other value kinds, sequences and maps, are not
/// declared: such a value simply has no tensor type).
#[derive(Clone, PartialEq, prost::Message)]
pub struct TypeProto {
    #[prost(message, optional, tag = "1")]
    pub tensor_type: Option<TypeTensor>,
}

/// TypeProto.Tensor: elem_type 1, shape 2.
#[derive(Clone, PartialEq, prost::Message)]
pub struct TypeTensor {
    #[prost(int32, tag = "1")]
    pub elem_type: i32,
    #[prost(message, optional, tag = "2")]
    pub shape: Option<TensorShapeProto>,
}

/// TensorShapeProto: dim 1.
#[derive(Clone, PartialEq, prost::Message)]
pub struct TensorShapeProto {
    #[prost(message, repeated, tag = "1")]
    pub dim: Vec<Dimension>,
}

/// TensorShapeProto.Dimension: dim_value 1, dim_param 2 (a oneof on the wire;
/// two optional fields decode the same bytes).
#[derive(Clone, PartialEq, prost::Message)]
pub struct Dimension {
    #[prost(int64, optional, tag = "1")]
    pub dim_value: Option<i64>,
    #[prost(string, optional, tag = "2")]
    pub dim_param: Option<String>,
}

/// One declared dimension of a value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Dim {
    Value(u64),
    Param(String),
    /// Neither a value nor a name (or a negative value).
    Unknown,
}

impl fmt::Display for Dim {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Dim::Value(v) => write!(f, "{v}"),
            Dim::Param(p) => f.write_str(p),
            Dim::Unknown => f.write_str("?"),
        }
    }
}

impl ValueInfoProto {
    pub fn elem_type(&self) -> Option<i32> {
        self.r#type.as_ref()?.tensor_type.as_ref().map(|t| t.elem_type)
    }

    /// Declared dims, `None` when the rank is not declared.
    pub fn dims(&self) -> Option<Vec<Dim>> {
        let shape = self.r#type.as_ref()?.tensor_type.as_ref()?.shape.as_ref()?;
        Some(
            shape
                .dim
                .iter()
                .map(|d| match (&d.dim_value, &d.dim_param) {
                    (Some(v), _) if *v >= 0 => Dim::Value(*v as u64),
                    (_, Some(p)) if !p.is_empty() => Dim::Param(p.clone()),
                    _ => Dim::Unknown,
                })
                .collect(),
        )
    }
}

/// TensorProto.DataType numbers.
pub mod elem {
    pub const FLOAT: i32 = 1;
    pub const UINT8: i32 = 2;
    pub const INT8: i32 = 3;
    pub const UINT16: i32 = 4;
    pub const INT16: i32 = 5;
    pub const INT32: i32 = 6;
    pub const INT64: i32 = 7;
    pub const STRING: i32 = 8;
    pub const BOOL: i32 = 9;
    pub const FLOAT16: i32 = 10;
    pub const DOUBLE: i32 = 11;
    pub const UINT32: i32 = 12;
    pub const UINT64: i32 = 13;
    pub const COMPLEX64: i32 = 14;
    pub const COMPLEX128: i32 = 15;
    pub const BFLOAT16: i32 = 16;
    pub const FLOAT8E4M3FN: i32 = 17;
    pub const FLOAT8E5M2FNUZ: i32 = 20;
    pub const UINT4: i32 = 21;
    pub const INT4: i32 = 22;
    pub const FLOAT4E2M1: i32 = 23;
    pub const FLOAT8E8M0: i32 = 24;
    pub const UINT2: i32 = 25;
    pub const INT2: i32 = 26;
}

/// nnmem's dtype for an ONNX element type; `None` for numbers ONNX does not define.
pub fn dtype_of(elem_type: i32) -> Option<crate::graph::DType> {
    use crate::graph::DType;
    Some(match elem_type {
        elem::FLOAT => DType::F32,
        elem::UINT8 => DType::U8,
        elem::INT8 => DType::I8,
        elem::UINT16 => DType::U16,
        elem::INT16 => DType::I16,
        elem::INT32 => DType::I32,
        elem::INT64 => DType::I64,
        elem::STRING => DType::String,
        elem::BOOL => DType::Bool,
        elem::FLOAT16 => DType::F16,
        elem::DOUBLE => DType::F64,
        elem::UINT32 => DType::U32,
        elem::UINT64 => DType::U64,
        // Complex numbers are two floats; report them by their storage size.
        elem::COMPLEX64 => DType::F64,
        elem::COMPLEX128 => DType::F64,
        elem::BFLOAT16 => DType::BF16,
        17..=20 | elem::FLOAT8E8M0 => DType::F8,
        elem::UINT4 | elem::INT4 | elem::FLOAT4E2M1 | elem::UINT2 | elem::INT2 => DType::Packed4,
        _ => return None,
    })
}

/// Floating-point element types (what `file_params` counts as parameters).
pub fn is_float_elem(elem_type: i32) -> bool {
    matches!(elem_type, elem::FLOAT | elem::FLOAT16 | elem::DOUBLE | elem::BFLOAT16 | 17..=20 | 23 | 24)
}

/// Protobuf wire types.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Wire {
    Varint,
    Fixed64,
    Len,
    Fixed32,
}

/// One top-level field of a message: its number, wire type and its bytes (for
/// `Len` the payload without the length prefix; for the others the encoded value).
#[derive(Clone, Copy, Debug)]
pub struct Field<'a> {
    pub number: u32,
    pub wire: Wire,
    pub bytes: &'a [u8],
}

/// A malformed wire stream, with the byte offset where it went wrong.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WireError {
    pub offset: usize,
    pub message: &'static str,
}

impl fmt::Display for WireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} at byte {}", self.message, self.offset)
    }
}

/// Splits a message into its top-level fields without decoding them.
/// Every length is checked against the buffer, so nothing is allocated from a
/// length the file states.
pub fn fields(buf: &[u8]) -> Result<Vec<Field<'_>>, WireError> {
    field_iter(buf).collect()
}

/// The top-level fields of a message one by one (nothing is collected: a
/// message of millions of fields costs no memory to walk).
pub fn field_iter(buf: &[u8]) -> FieldIter<'_> {
    FieldIter { buf, pos: 0, failed: false }
}

pub struct FieldIter<'a> {
    buf: &'a [u8],
    pos: usize,
    failed: bool,
}

impl<'a> Iterator for FieldIter<'a> {
    type Item = Result<Field<'a>, WireError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.pos >= self.buf.len() {
            return None;
        }
        let r = next_field(self.buf, &mut self.pos);
        self.failed = r.is_err();
        Some(r)
    }
}

fn next_field<'a>(buf: &'a [u8], pos: &mut usize) -> Result<Field<'a>, WireError> {
    let start = *pos;
    let key = read_varint(buf, pos)?;
    let number = u32::try_from(key >> 3).map_err(|_| WireError { offset: start, message: "field number out of range" })?;
    if number == 0 {
        return Err(WireError { offset: start, message: "field number 0" });
    }
    let (wire, bytes) = match key & 7 {
        0 => {
            let s = *pos;
            read_varint(buf, pos)?;
            (Wire::Varint, &buf[s..*pos])
        }
        1 => (Wire::Fixed64, take(buf, pos, 8)?),
        2 => {
            let len = read_varint(buf, pos)?;
            let len = usize::try_from(len).map_err(|_| WireError { offset: *pos, message: "length too large" })?;
            (Wire::Len, take(buf, pos, len)?)
        }
        5 => (Wire::Fixed32, take(buf, pos, 4)?),
        _ => return Err(WireError { offset: start, message: "unsupported wire type (groups or invalid)" }),
    };
    Ok(Field { number, wire, bytes })
}

fn take<'a>(buf: &'a [u8], pos: &mut usize, len: usize) -> Result<&'a [u8], WireError> {
    let end = pos.checked_add(len).filter(|&e| e <= buf.len()).ok_or(WireError {
        offset: *pos,
        message: "field runs past the end of the data (truncated file?)",
    })?;
    let s = &buf[*pos..end];
    *pos = end;
    Ok(s)
}

fn read_varint(buf: &[u8], pos: &mut usize) -> Result<u64, WireError> {
    let start = *pos;
    let mut value = 0u64;
    for shift in (0..64).step_by(7) {
        let byte = *buf.get(*pos).ok_or(WireError { offset: start, message: "varint runs past the end of the data" })?;
        *pos += 1;
        value |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Ok(value);
        }
    }
    Err(WireError { offset: start, message: "varint longer than 10 bytes" })
}

/// Appends a length-delimited field (key + length + payload) to `out`.
pub fn put_len_field(out: &mut Vec<u8>, number: u32, payload: &[u8]) {
    put_varint(out, (u64::from(number) << 3) | 2);
    put_varint(out, payload.len() as u64);
    out.extend_from_slice(payload);
}

pub fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8 & 0x7f) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message;

    #[test]
    fn payload_fields_are_skipped() {
        // A TensorProto with dims [2,3], FLOAT, name "w" and 24 bytes of raw_data (field 9).
        let mut buf = Vec::new();
        put_len_field(&mut buf, 1, &[2, 3]); // packed dims
        buf.extend_from_slice(&[0x10, 1]); // data_type = 1
        put_len_field(&mut buf, 8, b"w");
        put_len_field(&mut buf, 9, &[0u8; 24]);
        let t = TensorProto::decode(&buf[..]).unwrap();
        assert_eq!(t.dims, vec![2, 3]);
        assert_eq!(t.name, "w");
        assert_eq!(t.data_type, 1);
    }

    #[test]
    fn wire_walker_checks_lengths() {
        let mut buf = Vec::new();
        put_len_field(&mut buf, 7, b"abc");
        assert_eq!(fields(&buf).unwrap().len(), 1);
        // Truncated payload.
        assert!(fields(&buf[..buf.len() - 1]).is_err());
        // A length of 2^62.
        let mut huge = vec![0x3a];
        put_varint(&mut huge, 1 << 62);
        assert!(fields(&huge).is_err());
        // Group wire types are refused.
        assert!(fields(&[0x0b]).is_err());
    }
}
