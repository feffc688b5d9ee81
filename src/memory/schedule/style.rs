//! Style transfer's loss terms: a style layer keeps its Gram matrix (N·C² per
//! layer) for the loss's backward and has a C² target Gram; a content layer
//! has an F-sized target feature map. The image is what is optimized.

use super::dataflow::Dataflow;
use super::LossTerm;

/// The style phase's result (empty outside style transfer).
pub(super) struct StyleLoss {
    /// The loss terms in forward order: style layers, then content layers.
    pub terms: Vec<LossTerm>,
    /// Resident targets: Gram matrices and content feature maps.
    pub target_bytes: u64,
    /// The optimized inputs (the image), master precision.
    pub optimized_input_bytes: u64,
}

/// `grad_of`: per tensor, the index of its gradient buffer (the gradient phase's).
pub(super) fn plan(df: &Dataflow<'_>, grad_of: &[Option<usize>], storage_of: &[Option<usize>]) -> StyleLoss {
    let mut out = StyleLoss { terms: Vec::new(), target_bytes: 0, optimized_input_bytes: 0 };
    let Some(l) = df.style else { return out };
    let (graph, prec) = (df.graph, df.prec);
    for (k, (name, t)) in l.style.iter().chain(l.content.iter()).enumerate() {
        let is_style = k < l.style.len();
        let (n, c) = graph
            .tensor(*t)
            .shape
            .as_ref()
            .map(|s| (s.dims().first().copied().unwrap_or(1), s.dims().get(1).copied().unwrap_or(1)))
            .unwrap_or((1, 1));
        let gram = n.saturating_mul(c).saturating_mul(c).saturating_mul(prec.compute);
        if is_style {
            out.target_bytes = out.target_bytes.saturating_add(c.saturating_mul(c).saturating_mul(prec.compute));
        } else {
            out.target_bytes = out.target_bytes.saturating_add(df.bytes[t.0]);
        }
        let feature_bytes = df.worker(df.bytes[t.0], df.batch_of(*t));
        let at_node = if df.in_net { graph.tensor(*t).producer.map(|p| p.0).filter(|&p| !df.skipped[p]) } else { None };
        out.terms.push(LossTerm {
            label: format!("backward of the {} loss at {name}", if is_style { "style" } else { "content" }),
            // The gradient buffer of F, when F needs one.
            grad: if df.requires_grad[t.0] { grad_of[t.0] } else { None },
            feature_bytes,
            gram_bytes: if is_style { gram } else { 0 },
            at_node,
            // mse_loss over the Gram (style) or over F (content).
            criterion_bytes: if at_node.is_some() { if is_style { gram } else { feature_bytes } } else { 0 },
            storage: storage_of[t.0],
        });
    }
    for &t in &graph.inputs {
        if df.data[t.0] {
            let master = graph.tensor(t).elems().unwrap_or(0).saturating_mul(prec.master);
            out.optimized_input_bytes = out.optimized_input_bytes.saturating_add(master);
        }
    }
    out
}
