//! Reports: what nnmem found, rendered for people (`table`) and for programs
//! (`json`). A renderer takes the graph and the analyses and writes into any
//! `io::Write`; only `json.rs` knows the wire format.

pub mod escape;
pub mod gate;
pub mod html;
pub mod json;
pub mod table;

use crate::graph::{Graph, TensorKind, Unknown};

/// Where the report came from, for its header.
pub struct Source<'a> {
    pub path: &'a str,
}

/// Bytes of distinct activation storage: in-place outputs reuse their input's
/// storage and are not counted again (Caffe's own log counts them twice).
pub fn activation_bytes(graph: &Graph) -> u64 {
    let in_place_outputs: Vec<bool> = {
        let mut v = vec![false; graph.tensors.len()];
        for node in graph.nodes.iter().filter(|n| n.in_place) {
            if let Some(&out) = node.outputs.first() {
                v[out.0] = true;
            }
        }
        v
    };
    graph
        .tensors
        .iter()
        .enumerate()
        .filter(|(i, t)| t.kind == TensorKind::Activation && !in_place_outputs[*i])
        .map(|(_, t)| t.bytes().unwrap_or(0))
        .fold(0u64, u64::saturating_add)
}

/// Bytes of the graph inputs whose shapes are known.
pub fn input_bytes(graph: &Graph) -> u64 {
    graph.inputs.iter().map(|&t| graph.tensor(t).bytes().unwrap_or(0)).fold(0u64, u64::saturating_add)
}

/// A shape for display: `[1,64,112,112]`, the symbolic formula, or why it is unknown.
pub fn shape_text(graph: &Graph, t: crate::graph::TensorId) -> String {
    let tensor = graph.tensor(t);
    match (&tensor.shape, &tensor.unknown) {
        (Some(s), _) => s.to_string(),
        (None, Some(Unknown::Symbolic(dims))) => format!("[{}]", dims.join(",")),
        (None, Some(Unknown::RunTime)) => "run-time".to_string(),
        (None, Some(Unknown::Unstated)) => "unstated".to_string(),
        (None, _) => "unknown".to_string(),
    }
}
