//! Folding: an ONNX export splits some framework ops into pointwise pieces
//! (SiLU = x·σ(x), GELU = x·½·(1+erf(x/√2))); profiles that fuse them count
//! the one op the framework ran. Which ops may be pieces is an op fact
//! (`ScheduleFacts::fusion`).

use crate::graph::{Graph, TensorId};

/// Folds ONNX decompositions of one framework op (SiLU = x·σ(x); GELU =
/// x·½·(1+erf(x/√2))): a binary pointwise node whose two data operands both
/// trace back, through chains of single-reader pointwise nodes, to the same
/// tensor x. Returns, per node, the node it was folded into, and per fused
/// node its root x.
pub(super) fn fold_decompositions(
    graph: &Graph,
    data_inputs: &[Vec<TensorId>],
    readers: &[Vec<usize>],
) -> (Vec<Option<usize>>, Vec<Option<TensorId>>) {
    let n = graph.nodes.len();
    let mut folded = vec![None; n];
    let mut root = vec![None; n];
    for (m, node) in graph.nodes.iter().enumerate() {
        let binary = node.op.schedule_facts().fusion.product();
        if !binary || data_inputs[m].len() != 2 {
            continue;
        }
        // Walk each operand back through single-reader one-data-input pointwise nodes.
        let trace = |mut t: TensorId| -> (TensorId, Vec<usize>) {
            let mut chain = Vec::new();
            let mut roots_seen = Vec::new();
            loop {
                roots_seen.push(t);
                let Some(p) = graph.tensor(t).producer else { break };
                let p = p.0;
                if folded[p].is_some()
                    || readers[t.0].len() != 1
                    || !graph.nodes[p].op.schedule_facts().fusion.pointwise()
                    || data_inputs[p].len() != 1
                    || chain.len() >= 8
                {
                    break;
                }
                chain.push(p);
                t = data_inputs[p][0];
            }
            (t, chain)
        };
        let (a, ca) = trace(data_inputs[m][0]);
        let (b, cb) = trace(data_inputs[m][1]);
        // Prefix of a chain may itself be x: try the shorter root against the other's path.
        let (x, chain) = if a == b {
            (a, [ca, cb].concat())
        } else if cb.is_empty() && ca.iter().any(|&p| data_inputs[p][0] == b) {
            let cut = ca.iter().position(|&p| data_inputs[p][0] == b).unwrap_or(0);
            (b, ca[..=cut].to_vec())
        } else if ca.is_empty() && cb.iter().any(|&p| data_inputs[p][0] == a) {
            let cut = cb.iter().position(|&p| data_inputs[p][0] == a).unwrap_or(0);
            (a, cb[..=cut].to_vec())
        } else {
            continue;
        };
        if chain.is_empty() {
            continue;
        }
        for p in chain {
            folded[p] = Some(m);
        }
        root[m] = Some(x);
    }
    (folded, root)
}
