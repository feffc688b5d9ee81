//! Resident weights: every weight tensor once, at master precision (plus a
//! compute copy in mixed precision); non-float weights at their own size.

use super::dataflow::Dataflow;

pub(super) struct Weights {
    /// Bytes of resident weights (incl. compute copies).
    pub weight_bytes: u64,
    /// Bytes of the trainable weights' master copy (what optimizer state mirrors).
    pub trainable_master_bytes: u64,
}

pub(super) fn resident(df: &Dataflow<'_>) -> Weights {
    let (graph, prec) = (df.graph, df.prec);
    let mut w = Weights { weight_bytes: 0, trainable_master_bytes: 0 };
    let mut seen = vec![false; graph.tensors.len()];
    for (i, nd) in graph.nodes.iter().enumerate() {
        // Style transfer loads only the layers up to the deepest loss.
        if df.skipped[i] {
            continue;
        }
        for &p in &nd.params {
            if std::mem::replace(&mut seen[p.0], true) {
                continue;
            }
            let t = graph.tensor(p);
            let e = t.elems().unwrap_or(0);
            let master = if t.dtype.is_float() { e.saturating_mul(prec.master) } else { t.bytes().unwrap_or(0) };
            w.weight_bytes = w.weight_bytes.saturating_add(master);
            if prec.weight_copy && t.dtype.is_float() {
                w.weight_bytes = w.weight_bytes.saturating_add(e.saturating_mul(prec.compute));
            }
            if graph.gets_gradient(p) {
                w.trainable_master_bytes = w.trainable_master_bytes.saturating_add(master);
            }
        }
    }
    w
}
