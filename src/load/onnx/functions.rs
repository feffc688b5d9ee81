//! Model-local functions (ModelProto field 25, `FunctionProto`), inlined:
//! every node that calls one (same domain, name and overload) is replaced by
//! the function's body, its formal inputs and outputs renamed to the call's
//! values, its other values prefixed with the call's name (`call::value`),
//! and attribute references (`ref_attr_name`) bound to the call's attributes
//! or the function's defaults. Calls inside bodies are inlined too, up to
//! `MAX_DEPTH` levels. The rewrite works on the nodes' bytes (fields copied,
//! renamed ones re-encoded), so attribute tensors keep their payloads.
//!
//! Limits: a body is mapped with the model's default-domain opset, not the
//! function's own `opset_import`; subgraphs inside a body (If/Loop branches)
//! are copied as they are, without renaming the body values they refer to.

use std::borrow::Cow;
use std::collections::HashMap;


use super::proto::{self, put_len_field, NodeProto, Wire};

/// Calls nested deeper than this are left as calls (unknown ops).
const MAX_DEPTH: usize = 16;

/// One function, read from its bytes.
struct Function<'a> {
    name: String,
    domain: String,
    overload: String,
    inputs: Vec<String>,
    outputs: Vec<String>,
    /// Body nodes, as stored.
    nodes: Vec<&'a [u8]>,
    /// Default attribute values (`attribute_proto`), by name.
    defaults: HashMap<String, &'a [u8]>,
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn parse_function(bytes: &[u8]) -> Option<Function<'_>> {
    let mut f = Function {
        name: String::new(),
        domain: String::new(),
        overload: String::new(),
        inputs: Vec::new(),
        outputs: Vec::new(),
        nodes: Vec::new(),
        defaults: HashMap::new(),
    };
    for field in proto::fields(bytes).ok()? {
        if field.wire != Wire::Len {
            continue;
        }
        match field.number {
            1 => f.name = text(field.bytes),
            4 => f.inputs.push(text(field.bytes)),
            5 => f.outputs.push(text(field.bytes)),
            7 => f.nodes.push(field.bytes),
            10 => f.domain = text(field.bytes),
            11 => {
                let name = proto::len_field(field.bytes, 1).map(text).unwrap_or_default();
                f.defaults.insert(name, field.bytes);
            }
            13 => f.overload = text(field.bytes),
            _ => {}
        }
    }
    Some(f)
}

/// The ModelProto's functions (field 25), as byte slices.
pub(super) fn function_bytes(model: &[u8]) -> Vec<&[u8]> {
    proto::fields(model)
        .map(|fs| fs.into_iter().filter(|f| f.number == 25 && f.wire == Wire::Len).map(|f| f.bytes).collect())
        .unwrap_or_default()
}

/// A node's overload (NodeProto field 8).
fn overload_of(node: &[u8]) -> String {
    proto::len_field(node, 8).map(text).unwrap_or_default()
}

/// Replaces every call of a model-local function by its body. Returns the
/// number of calls inlined; `Err` when the result would exceed `max_nodes`.
pub(super) fn inline<'a>(
    nodes: &mut Vec<(NodeProto<'a>, Cow<'a, [u8]>)>,
    functions: &[&'a [u8]],
    max_nodes: usize,
) -> Result<usize, String> {
    let funcs: Vec<Function<'a>> = functions.iter().filter_map(|b| parse_function(b)).collect();
    if funcs.is_empty() {
        return Ok(0);
    }
    let index: HashMap<(&str, &str, &str), usize> =
        funcs.iter().enumerate().map(|(i, f)| ((f.domain.as_str(), f.name.as_str(), f.overload.as_str()), i)).collect();
    // Count first, so that a file whose calls expand past the budget is refused
    // before any body is written.
    let callee = |bytes: &[u8], n: &NodeProto| index.get(&(n.domain.as_str(), n.op_type.as_str(), overload_of(bytes).as_str())).copied();
    let bodies: Vec<Vec<(NodeProto<'a>, &[u8])>> = funcs
        .iter()
        .map(|f| f.nodes.iter().filter_map(|b| NodeProto::decode(*b).ok().map(|n| (n, *b))).collect())
        .collect();
    let mut memo: HashMap<(usize, usize), u64> = HashMap::new();
    let mut total = 0u64;
    for (n, bytes) in nodes.iter() {
        total = total.saturating_add(match callee(bytes, n) {
            Some(fi) => expanded_size(fi, 0, &bodies, &callee, &mut memo),
            None => 1,
        });
    }
    if total > max_nodes as u64 {
        return Err(format!("inlining the model's functions gives {total} nodes, more than {max_nodes}"));
    }
    let mut inliner = Inliner { funcs: &funcs, index, calls: 0, labels: HashMap::new(), max_nodes, out: Vec::with_capacity(nodes.len()) };
    for (node, bytes) in std::mem::take(nodes) {
        inliner.visit(node, bytes, 0)?;
    }
    *nodes = inliner.out;
    Ok(inliner.calls)
}

/// Nodes a call of function `fi` at nesting `depth` expands to (as `Inliner::visit`
/// does: a call at `MAX_DEPTH` or deeper stays one node).
fn expanded_size(
    fi: usize,
    depth: usize,
    bodies: &[Vec<(NodeProto, &[u8])>],
    callee: &dyn Fn(&[u8], &NodeProto) -> Option<usize>,
    memo: &mut HashMap<(usize, usize), u64>,
) -> u64 {
    if depth >= MAX_DEPTH {
        return 1;
    }
    if let Some(&n) = memo.get(&(fi, depth)) {
        return n;
    }
    let mut n = 0u64;
    for (node, bytes) in &bodies[fi] {
        n = n.saturating_add(match callee(bytes, node) {
            Some(g) => expanded_size(g, depth + 1, bodies, callee, memo),
            None => 1,
        });
    }
    memo.insert((fi, depth), n);
    n
}

struct Inliner<'f, 'a> {
    funcs: &'f [Function<'a>],
    index: HashMap<(&'f str, &'f str, &'f str), usize>,
    calls: usize,
    /// Call labels handed out, so that two calls never share a prefix.
    labels: HashMap<String, usize>,
    max_nodes: usize,
    out: Vec<(NodeProto<'a>, Cow<'a, [u8]>)>,
}

impl<'a> Inliner<'_, 'a> {
    fn visit(&mut self, node: NodeProto<'a>, bytes: Cow<'a, [u8]>, depth: usize) -> Result<(), String> {
        let overload = overload_of(&bytes);
        let key = (node.domain.as_str(), node.op_type.as_str(), overload.as_str());
        let found = self.index.get(&key).copied();
        match found {
            Some(fi) if depth < MAX_DEPTH => self.expand(&node, &bytes, fi, depth),
            _ => {
                if self.out.len() >= self.max_nodes {
                    return Err(format!("inlining the model's functions gives more than {} nodes", self.max_nodes));
                }
                self.out.push((node, bytes));
                Ok(())
            }
        }
    }

    fn label(&mut self, call: &NodeProto) -> String {
        let base = if call.name.is_empty() { call.op_type.to_string() } else { call.name.to_string() };
        let n = self.labels.entry(base.clone()).or_insert(0);
        *n += 1;
        if *n == 1 {
            base
        } else {
            format!("{base}#{n}")
        }
    }

    fn expand(&mut self, call: &NodeProto, call_bytes: &[u8], fi: usize, depth: usize) -> Result<(), String> {
        self.calls += 1;
        let f = &self.funcs[fi];
        let label = self.label(call);
        let mut rename: HashMap<&str, String> = HashMap::new();
        for (k, formal) in f.inputs.iter().enumerate() {
            rename.insert(formal.as_str(), call.input.get(k).map(|t| t.to_string()).unwrap_or_default());
        }
        for (k, formal) in f.outputs.iter().enumerate() {
            rename.insert(formal.as_str(), call.output.get(k).map(|t| t.to_string()).unwrap_or_default());
        }
        let name_of = |v: &str| -> String {
            if v.is_empty() {
                return String::new();
            }
            rename.get(v).cloned().unwrap_or_else(|| format!("{label}::{v}"))
        };
        let caller_attrs: HashMap<String, &[u8]> = proto::fields(call_bytes)
            .map(|fs| {
                fs.into_iter()
                    .filter(|x| x.number == 5 && x.wire == Wire::Len)
                    .map(|x| (proto::len_field(x.bytes, 1).map(text).unwrap_or_default(), x.bytes))
                    .collect()
            })
            .unwrap_or_default();
        let mut body = Vec::with_capacity(f.nodes.len());
        for nb in &f.nodes {
            let rewritten = rewrite_node(nb, &name_of, &label, &caller_attrs, &f.defaults)
                .ok_or_else(|| format!("function \"{}\" has a node that is not valid protobuf", f.name))?;
            let decoded = NodeProto::decode(&rewritten[..]).map_err(|e| format!("function \"{}\": {e}", f.name))?.into_owned();
            body.push((decoded, Cow::Owned(rewritten)));
        }
        for (n, b) in body {
            self.visit(n, b, depth + 1)?;
        }
        Ok(())
    }
}

/// A body node's bytes with its values renamed, its name prefixed and its
/// attribute references bound (dropped when neither the call nor the
/// function gives the attribute).
fn rewrite_node(
    node: &[u8],
    name_of: &dyn Fn(&str) -> String,
    label: &str,
    caller: &HashMap<String, &[u8]>,
    defaults: &HashMap<String, &[u8]>,
) -> Option<Vec<u8>> {
    let fields = proto::fields(node).ok()?;
    let mut out = Vec::with_capacity(node.len() + 64);
    let mut inputs = Vec::new();
    let mut outputs = Vec::new();
    let mut name = String::new();
    let mut attrs: Vec<Vec<u8>> = Vec::new();
    let mut op_type = String::new();
    for f in &fields {
        match (f.number, f.wire) {
            (1, Wire::Len) => inputs.push(name_of(&text(f.bytes))),
            (2, Wire::Len) => outputs.push(name_of(&text(f.bytes))),
            (3, Wire::Len) => name = text(f.bytes),
            (4, Wire::Len) => {
                op_type = text(f.bytes);
                put_len_field(&mut out, 4, f.bytes);
            }
            (5, Wire::Len) => {
                let reference = proto::len_field(f.bytes, 21).map(text);
                match reference {
                    None => attrs.push(f.bytes.to_vec()),
                    Some(r) => {
                        let own_name = proto::len_field(f.bytes, 1).map(text).unwrap_or_default();
                        if let Some(src) = caller.get(&r).or_else(|| defaults.get(&r)) {
                            attrs.push(renamed_attribute(src, &own_name)?);
                        }
                    }
                }
            }
            _ => copy_field(&mut out, f)?,
        }
    }
    for i in &inputs {
        put_len_field(&mut out, 1, i.as_bytes());
    }
    for o in &outputs {
        put_len_field(&mut out, 2, o.as_bytes());
    }
    let local = if name.is_empty() { op_type } else { name };
    put_len_field(&mut out, 3, format!("{label}::{local}").as_bytes());
    for a in &attrs {
        put_len_field(&mut out, 5, a);
    }
    Some(out)
}

/// An AttributeProto's bytes with its name (field 1) replaced.
fn renamed_attribute(attr: &[u8], name: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(attr.len() + name.len());
    put_len_field(&mut out, 1, name.as_bytes());
    for f in proto::fields(attr).ok()? {
        if f.number != 1 {
            copy_field(&mut out, &f)?;
        }
    }
    Some(out)
}

/// Re-encodes one field as it was.
fn copy_field(out: &mut Vec<u8>, f: &proto::Field<'_>) -> Option<()> {
    let wire = match f.wire {
        Wire::Varint => 0,
        Wire::Fixed64 => 1,
        Wire::Len => 2,
        Wire::Fixed32 => 5,
    };
    proto::put_varint(out, (u64::from(f.number) << 3) | wire);
    if f.wire == Wire::Len {
        proto::put_varint(out, f.bytes.len() as u64);
    }
    out.extend_from_slice(f.bytes);
    Some(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(op: &str, domain: &str, inputs: &[&str], outputs: &[&str], attrs: &[Vec<u8>]) -> Vec<u8> {
        let mut n = Vec::new();
        for i in inputs {
            put_len_field(&mut n, 1, i.as_bytes());
        }
        for o in outputs {
            put_len_field(&mut n, 2, o.as_bytes());
        }
        put_len_field(&mut n, 4, op.as_bytes());
        for a in attrs {
            put_len_field(&mut n, 5, a);
        }
        if !domain.is_empty() {
            put_len_field(&mut n, 7, domain.as_bytes());
        }
        n
    }

    fn int_attr(name: &str, v: u64) -> Vec<u8> {
        let mut a = Vec::new();
        put_len_field(&mut a, 1, name.as_bytes());
        proto::put_varint(&mut a, 3 << 3);
        proto::put_varint(&mut a, v);
        a
    }

    fn ref_attr(name: &str, reference: &str) -> Vec<u8> {
        let mut a = Vec::new();
        put_len_field(&mut a, 1, name.as_bytes());
        put_len_field(&mut a, 21, reference.as_bytes());
        a
    }

    /// f(x) = Softmax(Relu(x), axis = @ax) in domain "local".
    fn function() -> Vec<u8> {
        let mut f = Vec::new();
        put_len_field(&mut f, 1, b"relu_softmax");
        put_len_field(&mut f, 4, b"x");
        put_len_field(&mut f, 5, b"y");
        put_len_field(&mut f, 6, b"ax");
        put_len_field(&mut f, 7, &node("Relu", "", &["x"], &["r"], &[]));
        put_len_field(&mut f, 7, &node("Softmax", "", &["r"], &["y"], &[ref_attr("axis", "ax")]));
        put_len_field(&mut f, 10, b"local");
        f
    }

    #[test]
    fn calls_are_replaced_by_renamed_bodies() {
        let call = node("relu_softmax", "local", &["in"], &["out"], &[int_attr("ax", 1)]);
        let other = node("relu_softmax", "local", &["out"], &["out2"], &[]);
        let mut nodes: Vec<(NodeProto, Cow<'_, [u8]>)> = [call, other]
            .into_iter()
            .map(|b| (NodeProto::decode(&b[..]).unwrap().into_owned(), Cow::Owned(b)))
            .collect();
        let f = function();
        assert_eq!(inline(&mut nodes, &[&f], 100).unwrap(), 2);
        let texts = |v: &[crate::load::onnx::proto::Text<'_>]| v.iter().map(|x| x.to_string()).collect::<Vec<String>>();
        let got: Vec<(String, Vec<String>, Vec<String>)> =
            nodes.iter().map(|(n, _)| (n.op_type.to_string(), texts(&n.input), texts(&n.output))).collect();
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        assert_eq!(got[0], ("Relu".into(), s(&["in"]), s(&["relu_softmax::r"])));
        assert_eq!(got[1], ("Softmax".into(), s(&["relu_softmax::r"]), s(&["out"])));
        // The second call gets its own prefix.
        assert_eq!(got[2].2, s(&["relu_softmax#2::r"]));
        // The reference is bound to the call's attribute (axis = 1) or dropped.
        let axis = nodes[1].0.attribute.iter().find(|a| a.name == "axis").map(|a| a.i);
        assert_eq!(axis, Some(1));
        assert!(nodes[3].0.attribute.is_empty());
        // Nothing left to inline: the same four nodes.
        assert_eq!(inline(&mut nodes.clone(), &[&f], 4), Ok(0));
    }

    #[test]
    fn the_node_budget_holds() {
        let call = node("relu_softmax", "local", &["in"], &["out"], &[]);
        let mut nodes: Vec<(NodeProto, Cow<'_, [u8]>)> = vec![(NodeProto::decode(&call[..]).unwrap().into_owned(), Cow::Owned(call))];
        let f = function();
        assert!(inline(&mut nodes, &[&f], 1).is_err());
    }
}
