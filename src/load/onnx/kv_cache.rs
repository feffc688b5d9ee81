//! A KV cache: a decoder exported for one generation step takes the past
//! keys and values as graph inputs and returns them with this step's appended
//! (`present`). Such an input is a float graph input that a `Concat` joins,
//! along some axis, with a tensor computed from the data, into a graph output.
//! The cache is kept on the graph (`Graph::kv_cache`, which `--scenario
//! decode` reads), and a note says how many bytes it holds at the bound past
//! length and how many it grows per generated token: the inputs' bytes
//! divided by their extent along the concatenated axis (every layer, the
//! whole batch).

use crate::graph::{AttrValue, Graph, KvCache, KvCacheInput, TensorKind, Unknown};
use crate::units::format_count;

/// Finds the cache (module doc) and notes it when the graph has one.
/// `symbol(input, axis)` is the file's name for that input dimension (`None`
/// when the file fixes it).
pub(super) fn note_kv_cache(g: &mut Graph, symbol: impl Fn(&str, usize) -> Option<String>) {
    let mut inputs: Vec<KvCacheInput> = Vec::new();
    for n in &g.nodes {
        if n.source_type != "Concat" || n.inputs.len() != 2 || n.outputs.len() != 1 || !g.outputs.contains(&n.outputs[0]) {
            continue;
        }
        let (x, new) = (g.tensor(n.inputs[0]), g.tensor(n.inputs[1]));
        if x.kind != TensorKind::Input || !x.dtype.is_float() || new.kind != TensorKind::Activation {
            continue;
        }
        let Some(&AttrValue::Int(axis)) = n.attrs.iter().find(|(k, _)| k == "axis").map(|(_, v)| v) else { continue };
        // The rank of a shape kept as a formula (the past length left free) counts too.
        let rank_of = |t: &crate::graph::Tensor| match (&t.shape, &t.unknown) {
            (Some(s), _) => Some(s.rank()),
            (None, Some(Unknown::Symbolic(dims))) => Some(dims.len()),
            _ => None,
        };
        let Some(rank) = rank_of(x).or_else(|| rank_of(new)) else { continue };
        let rank = rank as i64;
        let axis = if axis < 0 { axis + rank } else { axis };
        if !(0..rank).contains(&axis) {
            continue;
        }
        let axis = axis as usize;
        inputs.push(KvCacheInput { tensor: n.inputs[0], axis, symbol: symbol(&x.name, axis), present: n.outputs[0] });
    }
    if inputs.is_empty() {
        return;
    }
    let cache = KvCache { inputs };
    let (first, present) = (&cache.inputs[0], cache.inputs[0].present);
    let what = format!(
        "KV cache: {} graph inputs (\"{}\", …) are joined with this step's keys/values into graph outputs (\"{}\", …)",
        cache.inputs.len(),
        g.tensor(first.tensor).name,
        g.tensor(present).name
    );
    let tail = "the inference scenario is one generation step (`--scenario decode` adds the growth per token); `nnmem fit --vary SYMBOL` over the past length finds the longest context that fits";
    let note = match cache.size(g) {
        Some(s) => format!(
            "{what}: {} B at past length {}, {} B more per generated token (every layer, the whole batch); {tail}",
            format_count(s.bytes),
            format_count(s.past),
            format_count(s.bytes_per_token)
        ),
        None => format!("{what}; bind the past length (--dim) to size it; {tail}"),
    };
    g.notes.push(note);
    g.kv_cache = Some(cache);
}
