//! Probably tied embeddings. A language model that ties its output projection
//! to its input embedding holds one [V, D] weight; the TorchScript exporter
//! with constant folding (its default) writes it twice — the table that
//! `Gather` reads and a transposed copy that the head's `MatMul` reads — so
//! the file holds 2·V·D parameters where the framework holds V·D. The file
//! cannot say which it was (a weight's values are never read, and an untied
//! model such as Llama has the same two shapes), so nnmem counts what the
//! file holds, says which pair is probably one weight, and with
//! `--tie-embeddings` counts the pair as one: the head reads the table, so
//! the parameters, the resident weights, the gradient and the optimizer state
//! are the table's alone.
//!
//! A pair is a `Gather` whose table (input 0) is a learned rank-2 float
//! weight [V, D] and a later `MatMul` or `Gemm` whose weight, another tensor,
//! has the table's shape as the product uses it: [D, V] (`x·W`; `Gemm` without
//! `transB`) or [V, D] (`Gemm` with `transB`). Each head pairs with the first
//! such table; a table already shared by the head (training exports, dynamo
//! exports) is one tensor and needs nothing.

use crate::graph::{AttrValue, Graph, TensorId, TensorKind};

/// Finds the pairs (module doc), notes each, and with `tie` makes each head
/// read its table; returns the pairs (table, head weight).
pub(super) fn tie_embeddings(g: &mut Graph, tie: bool) -> Vec<(TensorId, TensorId)> {
    let learned_2d = |g: &Graph, t: TensorId| {
        let x = g.tensor(t);
        x.kind == TensorKind::Param && x.trainable && x.dtype.is_float() && x.shape.as_ref().is_some_and(|s| s.rank() == 2)
    };
    let dims = |g: &Graph, t: TensorId| g.tensor(t).shape.as_ref().map(|s| s.dims().to_vec()).unwrap_or_default();
    let mut tables: Vec<(usize, TensorId)> = Vec::new();
    let mut pairs: Vec<(TensorId, TensorId, usize)> = Vec::new();
    for (i, n) in g.nodes.iter().enumerate() {
        match n.source_type.as_str() {
            "Gather" => {
                if let Some(&t) = n.params.first().filter(|&&t| learned_2d(g, t)) {
                    tables.push((i, t));
                }
            }
            "MatMul" | "Gemm" => {
                let trans_b = n.attrs.iter().any(|(k, v)| k == "transB" && *v == AttrValue::Int(1));
                for &w in n.params.iter().filter(|&&w| learned_2d(g, w)) {
                    let wd = dims(g, w);
                    let found = tables.iter().find(|&&(_, t)| {
                        let td = dims(g, t);
                        t != w && if trans_b { wd == td } else { wd == [td[1], td[0]] }
                    });
                    if let Some(&(_, t)) = found {
                        if !pairs.iter().any(|&(_, h, _)| h == w) {
                            pairs.push((t, w, i));
                        }
                    }
                }
            }
            _ => {}
        }
    }
    for &(t, w, i) in &pairs {
        let (table, head) = (g.tensor(t), g.tensor(w));
        let (td, hd) = (dims(g, t), dims(g, w));
        let what = if tie {
            "counted as one weight (--tie-embeddings)".to_string()
        } else {
            format!("counted twice ({} parameters more than one table); --tie-embeddings counts them once", crate::units::format_count(td.iter().product::<u64>()))
        };
        let note = format!(
            "the embedding table \"{}\" {:?} and the weight \"{}\" {:?} of \"{}\" have the same dims: probably one tied weight in the framework (GPT-2, BERT and T5 tie them, Llama does not), {what}",
            table.name, td, head.name, hd, g.nodes[i].name
        );
        g.notes.push(note);
        if tie {
            for n in &mut g.nodes {
                for p in &mut n.params {
                    if *p == w {
                        *p = t;
                    }
                }
            }
        }
    }
    pairs.into_iter().map(|(t, w, _)| (t, w)).collect()
}
