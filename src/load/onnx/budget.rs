//! One resource budget for loading an ONNX model, counted before anything is
//! decoded.
//!
//! prost allocates as it decodes: a small file of millions of empty messages
//! (nodes in an `If` branch, `value_info` entries, opset imports, attribute
//! graphs) or of long strings becomes hundreds of megabytes. So the model is
//! first walked with the wire walker, following the reduced schema of `proto`
//! (every message the decoder keeps, at every depth: subgraphs of `If`, `Loop`
//! and `Scan`, attribute graphs and tensors), and what decoding would keep is
//! counted against the limits below. Nothing is allocated by the walk; payload
//! fields (weights) are stepped over, never read. A model over a limit is
//! refused with an error naming what is over; one under them decodes into at
//! most about `MAX_KEPT_BYTES` of messages.
//!
//! The walk is lenient about malformed wire data: it stops walking a message
//! where the data goes wrong, and the decoder that follows reports the error
//! with its own message. Nothing after that point is decoded either, so what
//! was counted bounds what is allocated.

use std::mem::size_of;

use super::proto::{
    AttributeProto, Dimension, GraphProto, NodeProto, OperatorSetIdProto, SparseTensorProto, StringStringEntryProto,
    TensorProto, ValueInfoProto,
};

/// Nodes, counted in every graph at every depth.
pub const MAX_NODES: u64 = 200_000;
/// Dims of one shape (a value's declared shape, a tensor's dims).
pub const MAX_RANK: u64 = 64;
/// Bytes of string attribute values (`s`, `strings`), all together.
pub const MAX_ATTRIBUTE_STRING_BYTES: u64 = 4 << 20;
/// One name or other string the decoder keeps (attribute values aside): names
/// are copied into the graph and every report.
pub const MAX_NAME_BYTES: u64 = 64 << 10;
/// Opset imports (real models have a handful).
pub const MAX_OPSET_IMPORTS: u64 = 1_000;
/// Estimated memory of every message and string the decoder keeps. A list
/// decoded inside a message grows by doubling, so it may take up to twice its
/// estimate: 40 MiB keeps the worst case under 100 MB in all.
pub const MAX_KEPT_BYTES: u64 = 40 << 20;

/// The messages of the reduced schema the walk follows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Model,
    Graph,
    Node,
    Attribute,
    Tensor,
    SparseTensor,
    StringEntry,
    ValueInfo,
    Type,
    TypeTensor,
    Shape,
    Dim,
    Opset,
    /// ModelProto.training_info and .functions: not decoded, walked only to
    /// find external-data references (nothing in them is charged).
    TrainingInfo,
    Function,
}

/// What one field of a message holds, as the decoder sees it.
#[derive(Clone, Copy, Debug)]
enum Slot {
    Message(Kind),
    /// A name or other string the decoder keeps.
    Str,
    /// A string attribute value (`s`, `strings`).
    AttrStr,
    /// Repeated int64 (8 bytes each kept).
    Ints,
    /// Repeated float (4 bytes each kept).
    Floats,
    /// Repeated int64 dims of a tensor: 8 bytes each and one rank each.
    Dims,
    /// TensorProto.data_location (1: external).
    DataLocation,
    /// A scalar, or a field the reduced schema does not declare (payloads): nothing kept.
    Skip,
}

fn slot(kind: Kind, number: u32) -> Slot {
    use Kind::*;
    use Slot::*;
    match (kind, number) {
        (Model, 2) => Str,
        (Model, 7) => Message(Graph),
        (Model, 8) => Message(Opset),
        (Model, 20) => Message(TrainingInfo),
        (Model, 25) => Message(Function),
        (TrainingInfo, 1 | 3) => Message(Graph),
        (Function, 7) => Message(Node),
        (Function, 11) => Message(Attribute),
        (Graph, 1) => Message(Node),
        (Graph, 2) => Str,
        (Graph, 5) => Message(Tensor),
        (Graph, 11 | 12 | 13) => Message(ValueInfo),
        (Graph, 15) => Message(SparseTensor),
        (Node, 1 | 2 | 3 | 4 | 7) => Str,
        (Node, 5) => Message(Attribute),
        (Attribute, 1) => Str,
        (Attribute, 4 | 9) => AttrStr,
        (Attribute, 5 | 10) => Message(Tensor),
        (Attribute, 6 | 11) => Message(Graph),
        (Attribute, 22 | 23) => Message(SparseTensor),
        (Attribute, 7) => Floats,
        (Attribute, 8) => Ints,
        (Tensor, 1) => Dims,
        (Tensor, 8) => Str,
        (Tensor, 13) => Message(StringEntry),
        (Tensor, 14) => DataLocation,
        (SparseTensor, 1 | 2) => Message(Tensor),
        (SparseTensor, 3) => Dims,
        (StringEntry, 1 | 2) => Str,
        (ValueInfo, 1) => Str,
        (ValueInfo, 2) => Message(Type),
        (Type, 1) => Message(TypeTensor),
        (TypeTensor, 2) => Message(Shape),
        (Shape, 1) => Message(Dim),
        (Dim, 2) => Str,
        (Opset, 1) => Str,
        _ => Skip,
    }
}

/// Memory one decoded message takes besides its strings and lists (a byte
/// slice of 16 is added where the decoder keeps the message's bytes too).
fn cost(kind: Kind) -> u64 {
    let bytes = match kind {
        Kind::Model => 0,
        Kind::Graph => size_of::<GraphProto>(),
        Kind::Node => size_of::<NodeProto>() + 16,
        Kind::Attribute => size_of::<AttributeProto>(),
        Kind::Tensor => size_of::<TensorProto>() + 16,
        Kind::SparseTensor => size_of::<SparseTensorProto>() + 16,
        Kind::StringEntry => size_of::<StringStringEntryProto>(),
        Kind::ValueInfo => size_of::<ValueInfoProto>() + 16,
        // Held inline by their parents.
        Kind::Type | Kind::TypeTensor | Kind::Shape => 0,
        Kind::Dim => size_of::<Dimension>(),
        Kind::Opset => size_of::<OperatorSetIdProto>(),
        Kind::TrainingInfo | Kind::Function => 0,
    };
    bytes as u64
}

/// Per string kept: its bytes plus the `String` itself.
const STRING_OVERHEAD: u64 = size_of::<String>() as u64;

/// What the walk counted.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Tally {
    pub nodes: u64,
    pub graphs: u64,
    pub attributes: u64,
    pub tensors: u64,
    pub value_infos: u64,
    pub opset_imports: u64,
    pub dims: u64,
    pub string_bytes: u64,
    pub attribute_string_bytes: u64,
    /// Estimated bytes of everything decoded.
    pub kept: u64,
    /// Fields of the top-level graph, to size its vectors exactly.
    pub top: TopCounts,
    /// Every external-data reference, wherever its tensor sits (initializers,
    /// Constant and other attribute tensors, sparse tensors, subgraphs,
    /// training graphs, functions), at most `MAX_EXTERNAL_LISTED`.
    pub external: Vec<External>,
    /// External tensors past that many, counted only.
    pub external_unlisted: u64,
}

/// Where an external tensor says its data is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct External {
    /// The tensor's name (may be empty: attribute tensors often are).
    pub tensor: String,
    /// The `location` entry; `None` when it has none.
    pub location: Option<String>,
}

/// External references kept for the checks (each is a warning at most).
pub const MAX_EXTERNAL_LISTED: usize = 10_000;

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TopCounts {
    pub nodes: usize,
    pub initializers: usize,
    pub sparse_initializers: usize,
    pub inputs: usize,
    pub outputs: usize,
    pub value_info: usize,
}

impl Tally {
    /// The largest contributor, for the message when the total is over.
    fn largest_part(&self) -> String {
        let parts = [
            (self.nodes * cost(Kind::Node), self.nodes, "nodes"),
            (self.graphs * cost(Kind::Graph), self.graphs, "graphs"),
            (self.attributes * cost(Kind::Attribute), self.attributes, "attributes"),
            (self.tensors * cost(Kind::Tensor), self.tensors, "tensors"),
            (self.value_infos * cost(Kind::ValueInfo), self.value_infos, "value entries (inputs, outputs, value_info)"),
            (self.opset_imports * cost(Kind::Opset), self.opset_imports, "opset imports"),
            (self.dims * cost(Kind::Dim), self.dims, "dims"),
            (self.string_bytes, self.string_bytes, "bytes of names and strings"),
        ];
        let (_, n, what) = parts.iter().max_by_key(|p| p.0).copied().unwrap_or((0, 0, "messages"));
        format!("{n} {what}")
    }
}

/// An error of the walk: what is over, and where when known.
fn over(what: String) -> String {
    format!("{what}; nnmem refuses models this large (docs/security.md)")
}

/// prost's recursion limit: a message nested deeper makes the decode fail
/// there, so nothing below it is ever allocated and the walk need not go on.
const DECODER_DEPTH_LIMIT: u32 = 100;

struct Frame<'a> {
    kind: Kind,
    buf: &'a [u8],
    pos: usize,
    /// Nesting depth as the decoder counts it (the top-level graph's fields are decoded one by one, from 0).
    depth: u32,
    /// Dims seen in this message (a tensor's dims, a shape's dim entries).
    rank: u64,
    /// Whether this is the model's top-level graph.
    top: bool,
    /// Inside a part of the model that is not decoded (training info, functions).
    free: bool,
    /// A tensor: whether data_location is EXTERNAL, and its `location` entry.
    external: bool,
    location: Option<&'a [u8]>,
}

/// Walks a serialized ModelProto and counts what decoding it would keep;
/// `Err` names the first limit it goes over.
pub fn walk(model: &[u8]) -> Result<Tally, String> {
    let mut t = Tally::default();
    let mut stack = vec![Frame {
        kind: Kind::Model,
        buf: model,
        pos: 0,
        depth: 0,
        rank: 0,
        top: false,
        free: false,
        external: false,
        location: None,
    }];
    while let Some(frame) = stack.last_mut() {
        if frame.pos >= frame.buf.len() {
            if frame.kind == Kind::Tensor && frame.external {
                if t.external.len() < MAX_EXTERNAL_LISTED {
                    let tensor = name_of(Kind::Tensor, frame.buf).unwrap_or_default();
                    let location = frame.location.map(|l| String::from_utf8_lossy(l).into_owned());
                    t.external.push(External { tensor, location });
                } else {
                    t.external_unlisted += 1;
                }
            }
            stack.pop();
            continue;
        }
        let Some((number, wire, payload, next)) = next_field(frame.buf, frame.pos) else {
            // Malformed from here on: the decoder reports it; nothing past it is decoded.
            frame.pos = frame.buf.len();
            continue;
        };
        frame.pos = next;
        let kind = frame.kind;
        let depth = frame.depth;
        let free = frame.free;
        let parent_top = kind == Kind::Graph && frame.top;
        let s = slot(kind, number);
        let elems = match (s, wire) {
            (Slot::Ints | Slot::Dims, Wire::Len) => payload.iter().filter(|&&b| b < 0x80).count() as u64,
            (Slot::Floats, Wire::Len) => (payload.len() / 4) as u64,
            (Slot::Ints | Slot::Dims, Wire::Varint) | (Slot::Floats, Wire::Fixed32) => 1,
            _ => 0,
        };
        if free {
            // Not decoded: nothing is charged; only tensors are looked into.
            match s {
                Slot::DataLocation => frame.external = varint(payload, &mut 0) == Some(1),
                Slot::Message(Kind::StringEntry) if wire == Wire::Len => frame.location = frame.location.or(location_entry(payload)),
                Slot::Message(child) if wire == Wire::Len && child != Kind::StringEntry => {
                    stack.push(Frame { kind: child, buf: payload, pos: 0, depth: 0, rank: 0, top: false, free, external: false, location: None });
                }
                _ => {}
            }
            continue;
        }
        match s {
            Slot::DataLocation => frame.external = varint(payload, &mut 0) == Some(1),
            Slot::Ints => t.kept += 8 * elems,
            Slot::Floats => t.kept += 4 * elems,
            Slot::Dims => {
                t.kept += 8 * elems;
                t.dims += elems;
                frame.rank += elems;
                if frame.rank > MAX_RANK {
                    return Err(over(format!("{} has more than {MAX_RANK} dims", describe(kind, frame.buf))));
                }
            }
            Slot::Str | Slot::AttrStr if wire == Wire::Len => {
                let n = payload.len() as u64;
                if matches!(s, Slot::Str) && n > MAX_NAME_BYTES {
                    let at = stack.iter().rev().find(|f| matches!(f.kind, Kind::Node | Kind::Tensor | Kind::ValueInfo));
                    let at = at.map(|f| format!("{}: ", describe(f.kind, f.buf))).unwrap_or_default();
                    return Err(over(format!("{at}a name or string of {n} bytes, more than nnmem's limit of {MAX_NAME_BYTES}")));
                }
                t.kept += n + STRING_OVERHEAD;
                t.string_bytes += n;
                if matches!(s, Slot::AttrStr) {
                    t.attribute_string_bytes += n;
                    if t.attribute_string_bytes > MAX_ATTRIBUTE_STRING_BYTES {
                        return Err(over(format!(
                            "{}: string attribute values add up to more than {MAX_ATTRIBUTE_STRING_BYTES} bytes",
                            describe_node(&stack)
                        )));
                    }
                }
            }
            Slot::Message(child) if wire == Wire::Len && depth <= DECODER_DEPTH_LIMIT => {
                t.kept += cost(child);
                match child {
                    Kind::Node => t.nodes += 1,
                    Kind::Graph => t.graphs += 1,
                    Kind::Attribute => t.attributes += 1,
                    Kind::Tensor | Kind::SparseTensor => t.tensors += 1,
                    Kind::ValueInfo => t.value_infos += 1,
                    Kind::Opset => {
                        t.opset_imports += 1;
                        if t.opset_imports > MAX_OPSET_IMPORTS {
                            return Err(over(format!("the model has more than {MAX_OPSET_IMPORTS} opset imports")));
                        }
                    }
                    Kind::Dim => {
                        t.dims += 1;
                        frame.rank += 1;
                        if frame.rank > MAX_RANK {
                            let shape_of = stack.iter().rev().find(|f| f.kind == Kind::ValueInfo).map(|f| describe(f.kind, f.buf));
                            return Err(over(format!(
                                "{} has a shape of more than {MAX_RANK} dims",
                                shape_of.unwrap_or_else(|| "a value".into())
                            )));
                        }
                    }
                    _ => {}
                }
                if parent_top {
                    let c = &mut t.top;
                    match number {
                        1 => c.nodes += 1,
                        5 => c.initializers += 1,
                        11 => c.inputs += 1,
                        12 => c.outputs += 1,
                        13 => c.value_info += 1,
                        15 => c.sparse_initializers += 1,
                        _ => {}
                    }
                }
                if t.nodes > MAX_NODES {
                    return Err(over(format!(
                        "the model has more than nnmem's limit of {MAX_NODES} nodes (counted in every subgraph)"
                    )));
                }
                if child == Kind::StringEntry {
                    frame.location = frame.location.or(location_entry(payload));
                }
                let top = kind == Kind::Model && child == Kind::Graph;
                // The model and its graph are split by the wire walker; what they hold is decoded from depth 0.
                let depth = if kind == Kind::Model || parent_top { 0 } else { depth + 1 };
                let free = matches!(child, Kind::TrainingInfo | Kind::Function);
                stack.push(Frame { kind: child, buf: payload, pos: 0, depth, rank: 0, top, free, external: false, location: None });
            }
            _ => {}
        }
        if t.kept > MAX_KEPT_BYTES {
            return Err(over(format!(
                "decoding the model would keep more than {} MiB of names, shapes and attributes (so far {})",
                MAX_KEPT_BYTES >> 20,
                t.largest_part()
            )));
        }
    }
    Ok(t)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Wire {
    Varint,
    Fixed64,
    Len,
    Fixed32,
}

/// The field at `pos`: number, wire type, payload (for `Len`; the encoded
/// value otherwise) and the position after it. `None` when malformed.
fn next_field(buf: &[u8], pos: usize) -> Option<(u32, Wire, &[u8], usize)> {
    let mut p = pos;
    let key = varint(buf, &mut p)?;
    let number = u32::try_from(key >> 3).ok().filter(|&n| n > 0)?;
    let start = p;
    let wire = match key & 7 {
        0 => {
            varint(buf, &mut p)?;
            Wire::Varint
        }
        1 => {
            p = p.checked_add(8).filter(|&e| e <= buf.len())?;
            Wire::Fixed64
        }
        2 => {
            let len = usize::try_from(varint(buf, &mut p)?).ok()?;
            let s = p;
            p = p.checked_add(len).filter(|&e| e <= buf.len())?;
            return Some((number, Wire::Len, &buf[s..p], p));
        }
        5 => {
            p = p.checked_add(4).filter(|&e| e <= buf.len())?;
            Wire::Fixed32
        }
        _ => return None,
    };
    Some((number, wire, &buf[start..p], p))
}

fn varint(buf: &[u8], pos: &mut usize) -> Option<u64> {
    let mut value = 0u64;
    for shift in (0..64).step_by(7) {
        let byte = *buf.get(*pos)?;
        *pos += 1;
        value |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Some(value);
        }
    }
    None
}

/// The value of a StringStringEntryProto whose key is `location`.
fn location_entry(entry: &[u8]) -> Option<&[u8]> {
    let (mut key, mut value, mut pos) = (None, None, 0);
    while pos < entry.len() {
        let (number, wire, payload, next) = next_field(entry, pos)?;
        match (number, wire) {
            (1, Wire::Len) => key = Some(payload),
            (2, Wire::Len) => value = Some(payload),
            _ => {}
        }
        pos = next;
    }
    (key == Some(b"location".as_slice())).then_some(value.unwrap_or(b""))
}

/// The name field of a message, read from its bytes (for messages only).
fn name_of(kind: Kind, buf: &[u8]) -> Option<String> {
    let wanted = match kind {
        Kind::Node => 3,
        Kind::Tensor => 8,
        Kind::ValueInfo => 1,
        _ => return None,
    };
    let mut pos = 0;
    while pos < buf.len() {
        let (number, wire, payload, next) = next_field(buf, pos)?;
        if number == wanted && wire == Wire::Len {
            let name = String::from_utf8_lossy(payload);
            return Some(name.chars().take(200).collect());
        }
        pos = next;
    }
    None
}

fn describe(kind: Kind, buf: &[u8]) -> String {
    let what = match kind {
        Kind::Tensor => "tensor",
        Kind::SparseTensor => "sparse tensor",
        Kind::ValueInfo => "value",
        Kind::Node => "node",
        _ => "a message",
    };
    match name_of(kind, buf) {
        Some(n) if !n.is_empty() => format!("{what} \"{n}\""),
        _ => format!("an unnamed {what}"),
    }
}

fn describe_node(stack: &[Frame<'_>]) -> String {
    stack
        .iter()
        .rev()
        .find(|f| f.kind == Kind::Node)
        .map(|f| describe(f.kind, f.buf))
        .unwrap_or_else(|| "a node".into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load::onnx::proto::{put_len_field, put_varint};

    fn model_with_graph(graph: &[u8]) -> Vec<u8> {
        let mut m = vec![0x08, 0x08];
        put_len_field(&mut m, 7, graph);
        m
    }

    #[test]
    fn counts_nodes_at_every_depth() {
        // A node whose attribute holds a graph of three empty nodes.
        let mut inner = Vec::new();
        for _ in 0..3 {
            put_len_field(&mut inner, 1, &[]);
        }
        let mut attr = Vec::new();
        put_len_field(&mut attr, 1, b"then_branch");
        put_len_field(&mut attr, 6, &inner);
        let mut node = Vec::new();
        put_len_field(&mut node, 4, b"If");
        put_len_field(&mut node, 5, &attr);
        let mut graph = Vec::new();
        put_len_field(&mut graph, 1, &node);
        let t = walk(&model_with_graph(&graph)).unwrap();
        assert_eq!((t.nodes, t.graphs, t.attributes, t.top.nodes), (4, 2, 1, 1));
        assert_eq!(t.string_bytes, 2 + 11);
    }

    #[test]
    fn rank_is_capped_packed_or_not() {
        let mut dims = Vec::new();
        for _ in 0..65 {
            put_varint(&mut dims, 1);
        }
        let mut tensor = Vec::new();
        put_len_field(&mut tensor, 1, &dims);
        put_len_field(&mut tensor, 8, b"w");
        let mut graph = Vec::new();
        put_len_field(&mut graph, 5, &tensor);
        let e = walk(&model_with_graph(&graph)).unwrap_err();
        assert!(e.contains("tensor \"w\" has more than 64 dims"), "{e}");
        // 64 unpacked dims are fine.
        let mut tensor = Vec::new();
        for _ in 0..64 {
            tensor.extend_from_slice(&[0x08, 0x01]);
        }
        let mut graph = Vec::new();
        put_len_field(&mut graph, 5, &tensor);
        assert_eq!(walk(&model_with_graph(&graph)).unwrap().dims, 64);
    }

    #[test]
    fn payloads_are_not_counted() {
        // 1 MiB of raw_data (field 9) in an initializer costs nothing but the header.
        let mut tensor = Vec::new();
        put_len_field(&mut tensor, 9, &vec![0u8; 1 << 20]);
        let mut graph = Vec::new();
        put_len_field(&mut graph, 5, &tensor);
        let t = walk(&model_with_graph(&graph)).unwrap();
        assert_eq!(t.kept, cost(Kind::Graph) + cost(Kind::Tensor));
    }

    #[test]
    fn the_total_is_capped_and_names_the_largest_part() {
        let graph: Vec<u8> = [0x6a, 0x00].repeat(2_000_000); // empty value_info entries
        let e = walk(&model_with_graph(&graph)).unwrap_err();
        assert!(e.contains("more than 40 MiB") && e.contains("value entries"), "{e}");
    }

    #[test]
    fn external_references_are_found_everywhere() {
        let entry = |loc: &str| {
            let mut e = Vec::new();
            put_len_field(&mut e, 1, b"location");
            put_len_field(&mut e, 2, loc.as_bytes());
            e
        };
        let tensor = |name: &str, loc: &str| {
            let mut t = Vec::new();
            put_len_field(&mut t, 8, name.as_bytes());
            put_len_field(&mut t, 13, &entry(loc));
            t.extend_from_slice(&[0x70, 0x01]); // data_location = EXTERNAL
            t
        };
        // A Constant's attribute tensor, and an initializer of an If branch.
        let mut attr = Vec::new();
        put_len_field(&mut attr, 1, b"value");
        put_len_field(&mut attr, 5, &tensor("", "/etc/passwd"));
        let mut branch = Vec::new();
        put_len_field(&mut branch, 5, &tensor("bw", "../secret"));
        let mut attr2 = Vec::new();
        put_len_field(&mut attr2, 6, &branch);
        let mut node = Vec::new();
        put_len_field(&mut node, 5, &attr);
        put_len_field(&mut node, 5, &attr2);
        let mut graph = Vec::new();
        put_len_field(&mut graph, 1, &node);
        let mut model = model_with_graph(&graph);
        // A training graph (not decoded) with one more.
        let mut training_graph = Vec::new();
        put_len_field(&mut training_graph, 5, &tensor("tw", "/dev/zero"));
        let mut info = Vec::new();
        put_len_field(&mut info, 1, &training_graph);
        put_len_field(&mut model, 20, &info);
        let t = walk(&model).unwrap();
        let found: Vec<(&str, Option<&str>)> = t.external.iter().map(|e| (e.tensor.as_str(), e.location.as_deref())).collect();
        assert_eq!(found, [("", Some("/etc/passwd")), ("bw", Some("../secret")), ("tw", Some("/dev/zero"))]);
        // The training graph is not charged.
        assert_eq!(t.tensors, 2);
    }

    #[test]
    fn malformed_data_stops_the_walk_quietly() {
        // A length past the end: the decoder reports it.
        assert!(walk(&[0x08, 0x08, 0x3a, 0x7f, 0x00]).is_ok());
    }
}
