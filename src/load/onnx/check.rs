//! Contradictions between a node's attributes, its weights and its inputs,
//! checked once shapes are known: a model that states two different sizes for
//! one thing is refused (naming the node and both values), never given a shape
//! from one of them.
//!
//! - Conv / ConvTranspose: `kernel_shape` against the weight's spatial dims;
//!   the input's channels against the weight's (times `group`), the ranks.
//! - Gemm: the inner size of A and B, after `transA` / `transB`.
//! - MatMul: the inner dims (numpy rules: the last of A, the one before last of B).
//!
//! Before any shape is computed, `axis_bounds` refuses an `axis` or `axes`
//! attribute that no tensor can have (beyond ±`MAX_AXIS`), at every depth:
//! such a value is never a valid model, and tract, given one, can loop for a
//! time that grows with it (a LayerNormalization axis near −2⁶³, found by
//! fuzzing).

use super::proto::{AttributeProto, NodeProto};
use crate::graph::{Graph, TensorId};

/// The largest |axis| any attribute may name: a tensor has at most
/// `budget::MAX_RANK` dims, and an Unsqueeze adds at most as many as it lists.
pub(super) const MAX_AXIS: i64 = 2 * super::budget::MAX_RANK as i64;

/// `Err((location, message))` for the first node, at any depth (subgraphs
/// in attributes included), with an `axis`/`axes` attribute beyond ±`MAX_AXIS`.
pub(super) fn axis_bounds<'a, 'b: 'a>(nodes: impl IntoIterator<Item = &'a NodeProto<'b>>) -> Result<(), (String, String)> {
    fn attribute(a: &AttributeProto) -> Option<i64> {
        let bad = |v: &i64| !(-MAX_AXIS..=MAX_AXIS).contains(v);
        if a.name == "axis" || a.name == "axes" {
            if let Some(v) = std::iter::once(&a.i).chain(&a.ints).find(|v| bad(v)) {
                return Some(*v);
            }
        }
        // Subgraphs: decoding already capped their depth (the load budget).
        let graphs = a.g.iter().map(|g| &**g).chain(&a.graphs);
        graphs.flat_map(|g| &g.node).find_map(|n| n.attribute.iter().find_map(|a| attribute(a)))
    }
    for (i, n) in nodes.into_iter().enumerate() {
        if let Some(v) = n.attribute.iter().find_map(attribute) {
            return Err((
                super::node_location(n, i),
                format!("an axis attribute of {v} (or one in its subgraphs) is outside any tensor's rank (at most ±{MAX_AXIS})"),
            ));
        }
    }
    Ok(())
}

/// `Err((location, message))` for the first contradiction, in execution order.
pub(super) fn contradictions(
    nodes: &[&NodeProto],
    order: &[usize],
    ids: &super::names::NameMap<'_, TensorId>,
    g: &Graph,
) -> Result<(), (String, String)> {
    for &i in order {
        let n = nodes[i];
        let dims = |k: usize| -> Option<(&str, &[u64])> {
            let name = n.input.get(k).filter(|s| !s.is_empty())?;
            let shape = g.tensor(*ids.get(name.as_str())?).shape.as_ref()?;
            Some((name.as_str(), shape.dims()))
        };
        let int = |name: &str, default: i64| n.attribute.iter().find(|a| a.name == name).map_or(default, |a| a.i);
        let fail = |message: String| Err((super::node_location(n, i), message));
        match n.op_type.as_str() {
            "Conv" | "ConvTranspose" => {
                let Some((w_name, w)) = dims(1) else { continue };
                if let Some(k) = n.attribute.iter().find(|a| a.name == "kernel_shape").map(|a| &a.ints) {
                    let kernel: Vec<u64> = k.iter().map(|&v| v.max(0) as u64).collect();
                    if w.get(2..) != Some(kernel.as_slice()) {
                        return fail(format!(
                            "kernel_shape {} contradicts the weight \"{w_name}\" {} (kernel {})",
                            list(&kernel),
                            list(w),
                            list(w.get(2..).unwrap_or(&[]))
                        ));
                    }
                }
                let Some((x_name, x)) = dims(0) else { continue };
                if x.len() != w.len() {
                    return fail(format!("input \"{x_name}\" {} has rank {}, the weight \"{w_name}\" {} rank {}", list(x), x.len(), list(w), w.len()));
                }
                let group = int("group", 1).max(1) as u64;
                let (channels, from_weight) = match n.op_type.as_str() {
                    "Conv" => (x.get(1).copied(), w.get(1).and_then(|c| c.checked_mul(group))),
                    _ => (x.get(1).copied(), w.first().copied()),
                };
                if let (Some(c), Some(expected)) = (channels, from_weight) {
                    if c != expected {
                        return fail(format!(
                            "input \"{x_name}\" {} has {c} channels, but the weight \"{w_name}\" {} with group {group} takes {expected}",
                            list(x),
                            list(w)
                        ));
                    }
                }
            }
            "Gemm" => {
                let (Some((a_name, a)), Some((b_name, b))) = (dims(0), dims(1)) else { continue };
                if a.len() != 2 || b.len() != 2 {
                    continue;
                }
                let (trans_a, trans_b) = (int("transA", 0) != 0, int("transB", 0) != 0);
                let ka = if trans_a { a[0] } else { a[1] };
                let kb = if trans_b { b[1] } else { b[0] };
                if ka != kb {
                    return fail(format!(
                        "inner sizes differ: A \"{a_name}\" {} gives {ka} (transA = {}), B \"{b_name}\" {} gives {kb} (transB = {})",
                        list(a),
                        u8::from(trans_a),
                        list(b),
                        u8::from(trans_b)
                    ));
                }
            }
            "MatMul" => {
                let (Some((a_name, a)), Some((b_name, b))) = (dims(0), dims(1)) else { continue };
                let ka = a.last().copied();
                let kb = if b.len() >= 2 { b.get(b.len() - 2).copied() } else { b.first().copied() };
                if let (Some(ka), Some(kb)) = (ka, kb) {
                    if ka != kb {
                        return fail(format!(
                            "inner dimensions differ: A \"{a_name}\" {} has {ka}, B \"{b_name}\" {} has {kb}",
                            list(a),
                            list(b)
                        ));
                    }
                }
            }
            _ => {}
        }
    }
    Ok(())
}

fn list(dims: &[u64]) -> String {
    format!("[{}]", dims.iter().map(|d| d.to_string()).collect::<Vec<_>>().join(","))
}
