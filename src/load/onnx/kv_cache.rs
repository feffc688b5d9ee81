//! A KV cache: a decoder exported for one generation step takes the past
//! keys and values as graph inputs and returns them with this step's appended
//! (`present`). Such an input is a float graph input that a `Concat` joins,
//! along some axis, with a tensor computed from the data, into a graph output.
//! The note says how many bytes the cache holds at the bound past length and
//! how many it grows per generated token: the inputs' bytes divided by their
//! extent along the concatenated axis (every layer, the whole batch).

use crate::graph::{AttrValue, Graph, TensorKind};
use crate::units::format_count;

/// Notes the cache (module doc) when the graph has one; returns (bytes now,
/// bytes per token) when every cache input is sized.
pub(super) fn note_kv_cache(g: &mut Graph) -> Option<(u64, u64)> {
    let mut past: Vec<(usize, usize)> = Vec::new(); // (input tensor, axis)
    let mut names: Vec<(String, String)> = Vec::new();
    for n in &g.nodes {
        if n.source_type != "Concat" || n.inputs.len() != 2 || n.outputs.len() != 1 || !g.outputs.contains(&n.outputs[0]) {
            continue;
        }
        let (x, new) = (g.tensor(n.inputs[0]), g.tensor(n.inputs[1]));
        if x.kind != TensorKind::Input || !x.dtype.is_float() || new.kind != TensorKind::Activation {
            continue;
        }
        let Some(&AttrValue::Int(axis)) = n.attrs.iter().find(|(k, _)| k == "axis").map(|(_, v)| v) else { continue };
        let Some(rank) = x.shape.as_ref().map(|s| s.rank()).or_else(|| new.shape.as_ref().map(|s| s.rank())) else { continue };
        let rank = rank as i64;
        let axis = if axis < 0 { axis + rank } else { axis };
        if !(0..rank).contains(&axis) {
            continue;
        }
        past.push((n.inputs[0].0, axis as usize));
        names.push((x.name.clone(), g.tensor(n.outputs[0]).name.clone()));
    }
    if past.is_empty() {
        return None;
    }
    let mut sized = Some((0u64, 0u64, 0u64));
    for &(t, axis) in &past {
        let x = &g.tensors[t];
        sized = match (sized, x.shape.as_ref(), x.bytes()) {
            (Some((now, per, len)), Some(s), Some(b)) if s.dims()[axis] > 0 => {
                Some((now.saturating_add(b), per.saturating_add(b / s.dims()[axis]), len.max(s.dims()[axis])))
            }
            _ => None,
        };
    }
    let first = &names[0];
    let what = format!(
        "KV cache: {} graph inputs (\"{}\", …) are joined with this step's keys/values into graph outputs (\"{}\", …)",
        past.len(),
        first.0,
        first.1
    );
    let tail = "the inference scenario is one generation step; `nnmem fit --vary SYMBOL` over the past length finds the longest context that fits";
    match sized {
        Some((now, per, len)) => {
            g.notes.push(format!(
                "{what}: {} B at past length {}, {} B more per generated token (every layer, the whole batch); {tail}",
                format_count(now),
                format_count(len),
                format_count(per)
            ));
            Some((now, per))
        }
        None => {
            g.notes.push(format!("{what}; bind the past length (--dim) to size it; {tail}"));
            None
        }
    }
}
