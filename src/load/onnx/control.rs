//! `If` nodes whose condition is known before the net runs (a constant, or a
//! comparison of shapes the engine evaluated): the branch taken replaces the
//! node, so its ops are sized and counted like any other; an `Identity` per
//! output maps the branch's outputs to the node's. The loader then builds the
//! graph again (`mod.rs`), up to `MAX_ROUNDS` times for nested conditions.
//!
//! Not inlined (the node stays a run-time op): a branch that defines a name
//! the graph already has (ONNX names are single-assignment across scopes; a
//! file that breaks this is left alone), a branch with initializers inside a
//! node nnmem wrote itself (an inlined function's body), a branch whose
//! outputs do not match the node's. `Loop` and `Scan` are not unrolled.

use std::borrow::Cow;
use std::collections::HashSet;

use prost::Message;

use super::proto::{self, put_len_field, NodeProto, TensorProto, Wire};

/// Rebuild rounds at most (each can settle conditions that depend on the previous one's branches).
pub(super) const MAX_ROUNDS: usize = 8;

/// The branch taken by an `If` node of the decoded graph.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Decision {
    /// Index in the decoded node list.
    pub node: usize,
    pub then_branch: bool,
}

/// A branch's nodes, initializers and output names, as byte slices of `bytes`.
struct Branch<'b> {
    nodes: Vec<&'b [u8]>,
    initializers: Vec<&'b [u8]>,
    outputs: Vec<String>,
}

fn branch<'b>(node: &'b [u8], then_branch: bool) -> Option<Branch<'b>> {
    let attr = proto::attribute_bytes(node, if then_branch { "then_branch" } else { "else_branch" })?;
    let graph = proto::len_field(attr, 6)?;
    let mut b = Branch { nodes: Vec::new(), initializers: Vec::new(), outputs: Vec::new() };
    for f in proto::fields(graph).ok()? {
        if f.wire != Wire::Len {
            continue;
        }
        match f.number {
            1 => b.nodes.push(f.bytes),
            5 => b.initializers.push(f.bytes),
            // A sparse initializer or a graph input in a branch: not a plain branch.
            11 | 15 => return None,
            12 => b.outputs.push(String::from_utf8_lossy(proto::len_field(f.bytes, 1).unwrap_or_default()).into_owned()),
            _ => {}
        }
    }
    Some(b)
}

/// `Identity(from) → to`, encoded.
fn identity(from: &str, to: &str, name: &str) -> Vec<u8> {
    let mut n = Vec::new();
    put_len_field(&mut n, 1, from.as_bytes());
    put_len_field(&mut n, 2, to.as_bytes());
    put_len_field(&mut n, 3, name.as_bytes());
    put_len_field(&mut n, 4, b"Identity");
    n
}

/// Replaces each decided `If` by its branch. Returns how many were replaced.
pub(super) fn inline_branches<'a>(
    nodes: &mut Vec<(NodeProto<'a>, Cow<'a, [u8]>)>,
    initializers: &mut Vec<(TensorProto, &'a [u8])>,
    decisions: &[Decision],
) -> usize {
    let mut names: HashSet<String> = nodes.iter().flat_map(|(n, _)| n.output.iter().map(|o| o.to_string())).collect();
    names.extend(initializers.iter().map(|(t, _)| t.name.clone()));
    let mut replaced = 0;
    let mut out: Vec<(NodeProto<'a>, Cow<'a, [u8]>)> = Vec::with_capacity(nodes.len());
    for (i, (node, bytes)) in std::mem::take(nodes).into_iter().enumerate() {
        let Some(d) = decisions.iter().find(|d| d.node == i) else {
            out.push((node, bytes));
            continue;
        };
        match expand(&node, &bytes, d.then_branch, &mut names, initializers) {
            Some(body) => {
                replaced += 1;
                out.extend(body);
            }
            None => out.push((node, bytes)),
        }
    }
    *nodes = out;
    replaced
}

/// The nodes replacing one `If`, or `None` when it is left alone.
fn expand<'a>(
    node: &NodeProto,
    bytes: &Cow<'a, [u8]>,
    then_branch: bool,
    names: &mut HashSet<String>,
    initializers: &mut Vec<(TensorProto, &'a [u8])>,
) -> Option<Vec<(NodeProto<'a>, Cow<'a, [u8]>)>> {
    // Slices of the file when the node is; copies (and no initializers) when nnmem wrote it.
    let (node_bytes, init_bytes, outputs): (Vec<Cow<'a, [u8]>>, Vec<&'a [u8]>, Vec<String>) = match bytes {
        Cow::Borrowed(whole) => {
            let b = branch(whole, then_branch)?;
            (b.nodes.into_iter().map(Cow::Borrowed).collect(), b.initializers, b.outputs)
        }
        Cow::Owned(v) => {
            let b = branch(v, then_branch)?;
            if !b.initializers.is_empty() {
                return None;
            }
            (b.nodes.iter().map(|n| Cow::Owned(n.to_vec())).collect(), Vec::new(), b.outputs)
        }
    };
    if outputs.len() != node.output.len() {
        return None;
    }
    let decoded: Vec<NodeProto<'static>> =
        node_bytes.iter().map(|n| NodeProto::decode(&n[..]).ok().map(NodeProto::into_owned)).collect::<Option<_>>()?;
    let inits: Vec<TensorProto> = init_bytes.iter().map(|t| TensorProto::decode(*t).ok()).collect::<Option<_>>()?;
    // Single assignment: nothing the branch defines may exist already.
    let defined: Vec<String> =
        decoded.iter().flat_map(|n| n.output.iter().map(|o| o.as_str())).chain(inits.iter().map(|t| t.name.as_str())).filter(|s| !s.is_empty()).map(String::from).collect();
    if defined.iter().any(|n| names.contains(n)) {
        return None;
    }
    names.extend(defined);
    initializers.extend(inits.into_iter().zip(init_bytes));
    let mut body: Vec<(NodeProto<'a>, Cow<'a, [u8]>)> = decoded.into_iter().zip(node_bytes).collect();
    for (k, (from, to)) in outputs.iter().zip(&node.output).enumerate() {
        if to.is_empty() {
            continue;
        }
        let label = if node.name.is_empty() { format!("If::{to}") } else { format!("{}::output{k}", node.name) };
        let n = identity(from, to, &label);
        body.push((NodeProto::decode(&n[..]).ok()?.into_owned(), Cow::Owned(n)));
    }
    Some(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node_bytes(op: &str, inputs: &[&str], outputs: &[&str]) -> Vec<u8> {
        let mut n = Vec::new();
        for i in inputs {
            put_len_field(&mut n, 1, i.as_bytes());
        }
        for o in outputs {
            put_len_field(&mut n, 2, o.as_bytes());
        }
        put_len_field(&mut n, 4, op.as_bytes());
        n
    }

    fn graph_attr(name: &str, nodes: &[Vec<u8>], output: &str) -> Vec<u8> {
        let mut g = Vec::new();
        for n in nodes {
            put_len_field(&mut g, 1, n);
        }
        let mut vi = Vec::new();
        put_len_field(&mut vi, 1, output.as_bytes());
        put_len_field(&mut g, 12, &vi);
        let mut a = Vec::new();
        put_len_field(&mut a, 1, name.as_bytes());
        put_len_field(&mut a, 6, &g);
        a
    }

    #[test]
    fn the_taken_branch_replaces_the_node() {
        let mut if_node = node_bytes("If", &["cond"], &["y"]);
        put_len_field(&mut if_node, 5, &graph_attr("then_branch", &[node_bytes("Relu", &["x"], &["t"])], "t"));
        put_len_field(&mut if_node, 5, &graph_attr("else_branch", &[node_bytes("Neg", &["x"], &["e"])], "e"));
        let mut nodes: Vec<(NodeProto, Cow<'_, [u8]>)> = vec![(NodeProto::decode(&if_node[..]).unwrap(), Cow::Borrowed(&if_node[..]))];
        let mut inits = Vec::new();
        assert_eq!(inline_branches(&mut nodes, &mut inits, &[Decision { node: 0, then_branch: false }]), 1);
        let texts = |v: &[crate::load::onnx::proto::Text<'_>]| v.iter().map(|x| x.to_string()).collect::<Vec<String>>();
        let ops: Vec<(&str, Vec<String>, Vec<String>)> = nodes.iter().map(|(n, _)| (n.op_type.as_str(), texts(&n.input), texts(&n.output))).collect();
        assert_eq!(ops[0], ("Neg", vec!["x".to_string()], vec!["e".to_string()]));
        assert_eq!(ops[1], ("Identity", vec!["e".to_string()], vec!["y".to_string()]));
        // A branch redefining an existing name is left alone.
        let mut clash = node_bytes("If", &["cond"], &["y"]);
        put_len_field(&mut clash, 5, &graph_attr("then_branch", &[node_bytes("Relu", &["x"], &["y"])], "y"));
        let mut nodes: Vec<(NodeProto, Cow<'_, [u8]>)> = vec![(NodeProto::decode(&clash[..]).unwrap(), Cow::Borrowed(&clash[..]))];
        assert_eq!(inline_branches(&mut nodes, &mut inits, &[Decision { node: 0, then_branch: true }]), 0);
        assert_eq!(nodes[0].0.op_type, "If");
    }
}
