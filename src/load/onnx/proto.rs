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
use prost::Message;

/// ModelProto header: ir_version 1, producer_name 2, opset_import 8. The graph
/// (field 7) is not declared here: the loader splits it into its fields with
/// `fields` and decodes each piece, keeping the piece's bytes for tract.
// Fields named as onnx.proto names them; the doc above gives their numbers.
#[allow(missing_docs)]
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
// Fields named as onnx.proto names them; the doc above gives their numbers.
#[allow(missing_docs)]
#[derive(Clone, PartialEq, prost::Message)]
pub struct OperatorSetIdProto {
    #[prost(string, tag = "1")]
    pub domain: String,
    #[prost(int64, tag = "2")]
    pub version: i64,
}

/// GraphProto: node 1, name 2, initializer 5, input 11, output 12, value_info 13.
// Fields named as onnx.proto names them; the doc above gives their numbers.
#[allow(missing_docs)]
#[derive(Clone, PartialEq, prost::Message)]
pub struct GraphProto {
    #[prost(message, repeated, tag = "1")]
    pub node: Vec<NodeMsg>,
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

/// NodeProto as prost decodes it, every string owned: the nodes of subgraphs
/// (`GraphProto::node` inside an attribute), and what `NodeProto::decode` falls
/// back on. Fields as in `NodeProto`.
// Fields named as onnx.proto names them; `NodeProto`'s doc gives their numbers.
#[allow(missing_docs)]
#[derive(Clone, PartialEq, prost::Message)]
pub struct NodeMsg {
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

/// NodeProto: input 1, output 2, name 3, op_type 4, attribute 5, domain 7,
/// metadata_props 9 (what the exporter recorded about the node's origin).
/// A graph's nodes are the bulk of a model's strings, so their names borrow
/// the bytes they were decoded from (`decode`); `into_owned` detaches them.
// Fields named as onnx.proto names them; the doc above gives their numbers.
#[allow(missing_docs)]
#[derive(Clone, Debug, Default, PartialEq)]
pub struct NodeProto<'a> {
    pub input: Vec<Text<'a>>,
    pub output: Vec<Text<'a>>,
    pub name: Text<'a>,
    pub op_type: Text<'a>,
    pub attribute: Vec<AttributeProto>,
    pub domain: Text<'a>,
    pub metadata_props: Vec<StringStringEntryProto>,
}

impl<'a> NodeProto<'a> {
    /// Decodes a NodeProto from its bytes, with the result prost's `NodeMsg`
    /// gives (errors included). The common form — only length-delimited fields,
    /// valid UTF-8, no subgraph in an attribute — is read here with names
    /// borrowed from `bytes`; anything else is left to prost.
    pub fn decode(bytes: &'a [u8]) -> Result<Self, prost::DecodeError> {
        match Self::decode_plain(bytes) {
            Some(node) => Ok(node),
            None => NodeMsg::decode(bytes).map(NodeProto::from),
        }
    }

    /// The plain form, or `None` for anything `decode` leaves to prost.
    fn decode_plain(bytes: &'a [u8]) -> Option<Self> {
        // Each list gets its exact length up front: an attribute is 200 bytes,
        // and a list grown by pushes keeps room for four of them or more.
        let mut counts = [0usize; 10];
        for field in PlainFields::of(bytes) {
            let (number, _) = field?;
            if let Some(c) = counts.get_mut(usize::from(number)) {
                *c += 1;
            }
        }
        let mut node = NodeProto {
            input: Vec::with_capacity(counts[1]),
            output: Vec::with_capacity(counts[2]),
            attribute: Vec::with_capacity(counts[5]),
            metadata_props: Vec::with_capacity(counts[9]),
            ..NodeProto::default()
        };
        for field in PlainFields::of(bytes) {
            let (number, payload) = field?;
            let text = || std::str::from_utf8(payload).ok().map(|s| Text(std::borrow::Cow::Borrowed(s)));
            match number {
                1 => node.input.push(text()?),
                2 => node.output.push(text()?),
                3 => node.name = text()?,
                4 => node.op_type = text()?,
                5 => {
                    let a = AttributeProto::decode(payload).ok()?;
                    // Subgraphs nest: prost counts their depth from the node, so they stay with prost.
                    if a.g.is_some() || !a.graphs.is_empty() {
                        return None;
                    }
                    node.attribute.push(a);
                }
                7 => node.domain = text()?,
                9 => node.metadata_props.push(StringStringEntryProto::decode(payload).ok()?),
                // Fields nnmem does not read (doc_string 6, overload 8, ...), skipped as prost skips them.
                _ => {}
            }
        }
        Some(node)
    }

    /// The node with every name owned (for a node decoded from bytes that do not outlive it).
    pub fn into_owned(self) -> NodeProto<'static> {
        let owned = |v: Vec<Text<'a>>| v.into_iter().map(Text::into_owned).collect();
        NodeProto {
            input: owned(self.input),
            output: owned(self.output),
            name: self.name.into_owned(),
            op_type: self.op_type.into_owned(),
            attribute: self.attribute,
            domain: self.domain.into_owned(),
            metadata_props: self.metadata_props,
        }
    }
}

/// The fields of a message in the plain form, in order: (field number,
/// payload). An item is `None` — and the walk is over — at anything else:
/// keys of fields 1-15 with wire type 2 are one byte; anything else goes to
/// prost.
struct PlainFields<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> PlainFields<'a> {
    fn of(bytes: &'a [u8]) -> Self {
        PlainFields { bytes, pos: 0 }
    }
}

impl<'a> Iterator for PlainFields<'a> {
    type Item = Option<(u8, &'a [u8])>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.pos >= self.bytes.len() {
            return None;
        }
        let field = (|| {
            let key = self.bytes[self.pos];
            if key & 0x80 != 0 || key & 7 != 2 || key >> 3 == 0 {
                return None;
            }
            self.pos += 1;
            let len = plain_length(self.bytes, &mut self.pos)?;
            let payload = self.bytes.get(self.pos..self.pos.checked_add(len)?)?;
            self.pos += len;
            Some((key >> 3, payload))
        })();
        if field.is_none() {
            self.pos = self.bytes.len();
        }
        Some(field)
    }
}

/// A length of at most 4 bytes of varint (lengths up to 256 MiB), else `None`.
fn plain_length(bytes: &[u8], pos: &mut usize) -> Option<usize> {
    let mut value = 0usize;
    for shift in [0, 7, 14, 21] {
        let byte = *bytes.get(*pos)?;
        *pos += 1;
        value |= usize::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Some(value);
        }
    }
    None
}

impl From<NodeMsg> for NodeProto<'static> {
    fn from(n: NodeMsg) -> Self {
        let texts = |v: Vec<String>| v.into_iter().map(Text::from).collect();
        NodeProto {
            input: texts(n.input),
            output: texts(n.output),
            name: n.name.into(),
            op_type: n.op_type.into(),
            attribute: n.attribute,
            domain: n.domain.into(),
            metadata_props: n.metadata_props,
        }
    }
}

/// A string of a decoded node: borrowed from the file's bytes, or owned.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Text<'a>(pub std::borrow::Cow<'a, str>);

impl<'a> Text<'a> {
    /// The string.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The same string, owned.
    pub fn into_owned(self) -> Text<'static> {
        Text(std::borrow::Cow::Owned(self.0.into_owned()))
    }
}

impl std::ops::Deref for Text<'_> {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Text<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl PartialEq<str> for Text<'_> {
    fn eq(&self, other: &str) -> bool {
        *self.0 == *other
    }
}

impl PartialEq<&str> for Text<'_> {
    fn eq(&self, other: &&str) -> bool {
        *self.0 == **other
    }
}

impl<'a> From<&'a str> for Text<'a> {
    fn from(s: &'a str) -> Self {
        Text(std::borrow::Cow::Borrowed(s))
    }
}

impl From<String> for Text<'static> {
    fn from(s: String) -> Self {
        Text(std::borrow::Cow::Owned(s))
    }
}

/// AttributeProto: name 1, f 2, i 3, s 4, t 5, g 6, floats 7, ints 8, strings 9,
/// tensors 10, graphs 11, type 20. A subgraph (`g`, `graphs`) is declared so that
/// its presence is seen (If/Loop/Scan); its own initializers' payloads stay
/// undeclared like everywhere else.
// Fields named as onnx.proto names them; the doc above gives their numbers.
#[allow(missing_docs)]
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
    #[prost(message, optional, boxed, tag = "5")]
    pub t: Option<Box<TensorProto>>,
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
// Fields named as onnx.proto names them; the doc above gives their numbers.
#[allow(missing_docs)]
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
    /// Whether its data lives in an external file (`data_location` EXTERNAL).
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
// Fields named as onnx.proto names them; the doc above gives their numbers.
#[allow(missing_docs)]
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
// Fields named as onnx.proto names them; the doc above gives their numbers.
#[allow(missing_docs)]
#[derive(Clone, PartialEq, prost::Message)]
pub struct StringStringEntryProto {
    #[prost(string, tag = "1")]
    pub key: String,
    #[prost(string, tag = "2")]
    pub value: String,
}

/// ValueInfoProto: name 1, type 2.
// Fields named as onnx.proto names them; the doc above gives their numbers.
#[allow(missing_docs)]
#[derive(Clone, PartialEq, prost::Message)]
pub struct ValueInfoProto {
    #[prost(string, tag = "1")]
    pub name: String,
    #[prost(message, optional, tag = "2")]
    pub r#type: Option<TypeProto>,
}

/// TypeProto: tensor_type 1 (the other value kinds, sequences and maps, are not
/// declared: such a value simply has no tensor type).
// Fields named as onnx.proto names them; the doc above gives their numbers.
#[allow(missing_docs)]
#[derive(Clone, PartialEq, prost::Message)]
pub struct TypeProto {
    #[prost(message, optional, tag = "1")]
    pub tensor_type: Option<TypeTensor>,
}

/// TypeProto.Tensor: elem_type 1, shape 2.
// Fields named as onnx.proto names them; the doc above gives their numbers.
#[allow(missing_docs)]
#[derive(Clone, PartialEq, prost::Message)]
pub struct TypeTensor {
    #[prost(int32, tag = "1")]
    pub elem_type: i32,
    #[prost(message, optional, tag = "2")]
    pub shape: Option<TensorShapeProto>,
}

/// TensorShapeProto: dim 1.
// Fields named as onnx.proto names them; the doc above gives their numbers.
#[allow(missing_docs)]
#[derive(Clone, PartialEq, prost::Message)]
pub struct TensorShapeProto {
    #[prost(message, repeated, tag = "1")]
    pub dim: Vec<Dimension>,
}

/// TensorShapeProto.Dimension: dim_value 1, dim_param 2 (a oneof on the wire;
/// two optional fields decode the same bytes).
// Fields named as onnx.proto names them; the doc above gives their numbers.
#[allow(missing_docs)]
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
    /// A fixed size.
    Value(u64),
    /// A named symbol (`batch`, `s0`).
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
    /// The tensor element type number, when the value has a tensor type.
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
#[allow(missing_docs)] // named as onnx.proto's DataType enum names them
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
        elem::UINT4 | elem::INT4 | elem::FLOAT4E2M1 => DType::Packed4,
        elem::UINT2 | elem::INT2 => DType::Packed2,
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
    /// 0: a varint.
    Varint,
    /// 1: eight bytes.
    Fixed64,
    /// 2: length-delimited.
    Len,
    /// 5: four bytes.
    Fixed32,
}

/// One top-level field of a message: its number, wire type and its bytes (for
/// `Len` the payload without the length prefix; for the others the encoded value).
#[derive(Clone, Copy, Debug)]
pub struct Field<'a> {
    /// The field number.
    pub number: u32,
    /// Its wire type.
    pub wire: Wire,
    /// Its bytes.
    pub bytes: &'a [u8],
}

/// A malformed wire stream, with the byte offset where it went wrong.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WireError {
    /// Byte offset in the message.
    pub offset: usize,
    /// What is wrong there.
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

/// Iterator of `field_iter`: each field, or the first wire error.
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

/// The fields of a message one at a time, without collecting them; stops at
/// the first malformed one (`fields` reports it).
pub fn walk(buf: &[u8]) -> Walk<'_> {
    Walk { buf, pos: 0 }
}

/// Iterator of `walk`.
pub struct Walk<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Iterator for Walk<'a> {
    type Item = Field<'a>;

    fn next(&mut self) -> Option<Field<'a>> {
        if self.pos >= self.buf.len() {
            return None;
        }
        let start = self.pos;
        let key = read_varint(self.buf, &mut self.pos).ok()?;
        let number = u32::try_from(key >> 3).ok().filter(|&n| n != 0)?;
        let (wire, bytes) = match key & 7 {
            0 => {
                let s = self.pos;
                read_varint(self.buf, &mut self.pos).ok()?;
                (Wire::Varint, &self.buf[s..self.pos])
            }
            1 => (Wire::Fixed64, take(self.buf, &mut self.pos, 8).ok()?),
            2 => {
                let len = usize::try_from(read_varint(self.buf, &mut self.pos).ok()?).ok()?;
                (Wire::Len, take(self.buf, &mut self.pos, len).ok()?)
            }
            5 => (Wire::Fixed32, take(self.buf, &mut self.pos, 4).ok()?),
            _ => {
                self.pos = start.max(self.buf.len());
                return None;
            }
        };
        Some(Field { number, wire, bytes })
    }
}

/// The first length-delimited field `number` of a message.
pub fn len_field(msg: &[u8], number: u32) -> Option<&[u8]> {
    walk(msg).find(|f| f.number == number && f.wire == Wire::Len).map(|f| f.bytes)
}

/// The bytes of a node's attribute `name` (an AttributeProto), when present.
pub fn attribute_bytes<'a>(node: &'a [u8], name: &str) -> Option<&'a [u8]> {
    walk(node).filter(|f| f.number == 5 && f.wire == Wire::Len).map(|f| f.bytes).find(|a| len_field(a, 1) == Some(name.as_bytes()))
}

/// Decodes one varint from a field's bytes (a `Varint` field's value).
fn varint_value(bytes: &[u8]) -> Option<u64> {
    let mut pos = 0;
    read_varint(bytes, &mut pos).ok()
}

/// Varints of a packed (`Len`) or single (`Varint`) repeated field, at most
/// `limit` in all in `out` (`None` past it: the caller wants an exact count).
fn varints(f: &Field<'_>, out: &mut Vec<u64>, limit: usize) -> Option<()> {
    match f.wire {
        Wire::Varint => out.push(varint_value(f.bytes)?),
        Wire::Len => {
            let mut pos = 0;
            while pos < f.bytes.len() {
                if out.len() >= limit {
                    return None;
                }
                out.push(read_varint(f.bytes, &mut pos).ok()?);
            }
        }
        _ => return None,
    }
    (out.len() <= limit).then_some(())
}

/// Fixed-width little-endian words of a packed (`Len`) or single field, at
/// most `limit` in all in `out`; nothing is decoded from a field that holds more.
fn fixed(f: &Field<'_>, width: usize, out: &mut Vec<u64>, limit: usize) -> Option<()> {
    if f.bytes.len() % width != 0 || out.len() + f.bytes.len() / width > limit {
        return None;
    }
    for chunk in f.bytes.chunks(width) {
        let mut w = [0u8; 8];
        w[..width].copy_from_slice(chunk);
        out.push(u64::from_le_bytes(w));
    }
    Some(())
}

/// The elements of a TensorProto held in the file (not external), when it
/// has at most `cap` elements of a type whose values nnmem evaluates
/// (integers, booleans, f32, f64). Reads the payload: the caller decides
/// which tensors are worth it (small constants and shape arguments, never
/// weights). A payload that holds more elements than the dims say is not read.
pub fn tensor_elements(tensor: &[u8], cap: u64) -> Option<crate::ops::Value> {
    use crate::ops::Value;
    let mut dims = Vec::with_capacity(4);
    let mut data_type = 0i32;
    for f in walk(tensor) {
        match f.number {
            1 => varints(&f, &mut dims, 64)?,
            2 => data_type = i32::try_from(varint_value(f.bytes)?).ok()?,
            14 if varint_value(f.bytes)? == 1 => return None,
            _ => {}
        }
    }
    let n = dims.iter().try_fold(1u64, |a, &d| a.checked_mul(d))?;
    if n > cap {
        return None;
    }
    let n = n as usize;
    let raw = walk(tensor).find(|f| f.number == 9 && f.wire == Wire::Len).map(|f| f.bytes);
    let words = |width: usize, field: u32, varint: bool| -> Option<Vec<u64>> {
        let mut out = Vec::with_capacity(n);
        match raw {
            Some(r) => fixed(&Field { number: 9, wire: Wire::Len, bytes: r }, width, &mut out, n)?,
            None => {
                for f in walk(tensor).filter(|f| f.number == field) {
                    if varint {
                        varints(&f, &mut out, n)?;
                    } else {
                        fixed(&f, width, &mut out, n)?;
                    }
                }
            }
        }
        (out.len() == n).then_some(out)
    };
    let value = match data_type {
        elem::FLOAT => Value::Float(words(4, 4, false)?.into_iter().map(|w| f64::from(f32::from_bits(w as u32))).collect()),
        elem::DOUBLE => Value::Float(words(8, 10, false)?.into_iter().map(f64::from_bits).collect()),
        elem::INT64 => Value::Int(words(8, 7, true)?.into_iter().map(|w| w as i64).collect()),
        elem::UINT64 | elem::UINT32 => {
            let width = if data_type == elem::UINT64 { 8 } else { 4 };
            let w = words(width, 11, true)?;
            Value::Int(w.into_iter().map(|x| i64::try_from(x).ok()).collect::<Option<_>>()?)
        }
        elem::INT32 | elem::INT16 | elem::INT8 | elem::UINT16 | elem::UINT8 | elem::BOOL => {
            let width = match data_type {
                elem::INT32 => 4,
                elem::INT16 | elem::UINT16 => 2,
                _ => 1,
            };
            let w = words(width, 5, true)?;
            // Raw words are little-endian of the type's width; int32_data holds
            // each value as a (sign-extended) varint.
            Value::Int(
                w.into_iter()
                    .map(|x| match data_type {
                        elem::INT32 => x as u32 as i32 as i64,
                        elem::INT16 => x as u16 as i16 as i64,
                        elem::INT8 => x as u8 as i8 as i64,
                        elem::UINT16 => x as u16 as i64,
                        elem::UINT8 => x as u8 as i64,
                        _ => i64::from(x != 0),
                    })
                    .collect(),
            )
        }
        _ => return None,
    };
    Some(value)
}

/// Appends a length-delimited field (key + length + payload) to `out`.
pub fn put_len_field(out: &mut Vec<u8>, number: u32, payload: &[u8]) {
    put_varint(out, (u64::from(number) << 3) | 2);
    put_varint(out, payload.len() as u64);
    out.extend_from_slice(payload);
}

/// Appends `v` as a protobuf varint (7 bits a byte, low bits first).
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

    /// `NodeProto::decode` gives what prost gives, names borrowed on the plain form.
    #[test]
    fn node_decode_matches_prost() {
        let attr = AttributeProto { name: "axis".into(), i: 1, r#type: 2, ..Default::default() };
        let msg = NodeMsg {
            input: vec!["x".into(), String::new(), "w".into()],
            output: vec!["y".into()],
            name: "/layer/MatMul".into(),
            op_type: "MatMul".into(),
            attribute: vec![attr.clone()],
            domain: "ai.onnx".into(),
            metadata_props: vec![StringStringEntryProto { key: "k".into(), value: "v".into() }],
        };
        let mut bytes = msg.encode_to_vec();
        put_len_field(&mut bytes, 6, b"a doc string, skipped");
        let node = NodeProto::decode(&bytes).unwrap();
        assert_eq!(node, NodeProto::from(NodeMsg::decode(&bytes[..]).unwrap()));
        assert!(matches!(node.name.0, std::borrow::Cow::Borrowed(_)));
        // Left to prost: a varint field (doc_string's neighbour numbers are free), a repeated
        // scalar name (the last wins), a subgraph, bytes that are not UTF-8, a truncated field.
        let mut varint = bytes.clone();
        varint.extend([0x50, 0x07]); // field 10, varint 7: unknown, skipped
        let mut twice = bytes.clone();
        put_len_field(&mut twice, 3, b"second");
        let graph = AttributeProto { name: "then_branch".into(), g: Some(Box::default()), r#type: 5, ..Default::default() };
        let with_graph = NodeMsg { attribute: vec![graph], ..msg.clone() }.encode_to_vec();
        for b in [&varint, &twice, &with_graph] {
            assert_eq!(NodeProto::decode(b).unwrap(), NodeProto::from(NodeMsg::decode(&b[..]).unwrap()));
        }
        assert_eq!(NodeProto::decode(&twice).unwrap().name, "second");
        let mut bad = Vec::new();
        put_len_field(&mut bad, 4, &[0xff, 0xfe]);
        assert_eq!(NodeProto::decode(&bad).unwrap_err().to_string(), NodeMsg::decode(&bad[..]).unwrap_err().to_string());
        let truncated = &bytes[..bytes.len() - 3];
        assert_eq!(NodeProto::decode(truncated).unwrap_err().to_string(), NodeMsg::decode(truncated).unwrap_err().to_string());
    }

    #[test]
    fn a_nan_attribute_reads_as_prost_reads_it() {
        // Found by fuzzing onnx_decode: the two readers agreed, but a NaN in
        // an attribute's floats is never == itself, so the check compares
        // what they print.
        let input: &[u8] = &[
            48, 113, 48, 113, 42, 61, 61, 61, 61, 61, 61, 61, 1, 13, 61, 61, 61, 61, 61, 61, 61, 61, 255, 255, 255, 255,
            61, 61, 61, 61, 61, 61, 61, 61, 61, 61, 90, 0, 90, 0, 90, 0, 90, 0, 90, 0, 90, 0, 90, 0, 189, 61, 61, 61, 61,
            61, 61, 61, 61, 96, 96, 96, 96, 96, 96, 96, 0,
        ];
        let hand = NodeProto::decode(input).map_err(|e| e.to_string());
        let by_prost = NodeMsg::decode(input).map(NodeProto::from).map_err(|e| e.to_string());
        assert_eq!(format!("{hand:?}"), format!("{by_prost:?}"));
        assert!(format!("{hand:?}").contains("NaN"));
    }

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
    fn small_tensor_payloads_are_read() {
        use crate::ops::Value;
        // int64 [3] = {2, -1, 7} in int64_data (packed), and as raw_data.
        let mut t = Vec::new();
        put_len_field(&mut t, 1, &[3]);
        t.extend_from_slice(&[0x10, 7]); // INT64
        let mut packed = Vec::new();
        for v in [2i64, -1, 7] {
            put_varint(&mut packed, v as u64);
        }
        put_len_field(&mut t, 7, &packed);
        assert_eq!(tensor_elements(&t, 16), Some(Value::Int(vec![2, -1, 7])));
        assert_eq!(tensor_elements(&t, 2), None);
        let mut r = Vec::new();
        put_len_field(&mut r, 1, &[2]);
        r.extend_from_slice(&[0x10, 1]); // FLOAT
        let raw: Vec<u8> = [1.5f32, -2.0].iter().flat_map(|f| f.to_le_bytes()).collect();
        put_len_field(&mut r, 9, &raw);
        assert_eq!(tensor_elements(&r, 16), Some(Value::Float(vec![1.5, -2.0])));
        // A scalar int32 held as a sign-extended varint.
        let mut sc = Vec::new();
        sc.extend_from_slice(&[0x10, 6]); // INT32
        let mut one = Vec::new();
        put_varint(&mut one, (-3i64) as u64);
        put_len_field(&mut sc, 5, &one);
        assert_eq!(tensor_elements(&sc, 16), Some(Value::Int(vec![-3])));
        // Wrong element count: nothing.
        let mut bad = Vec::new();
        put_len_field(&mut bad, 1, &[4]);
        bad.extend_from_slice(&[0x10, 7]);
        put_len_field(&mut bad, 7, &packed);
        assert_eq!(tensor_elements(&bad, 16), None);
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
