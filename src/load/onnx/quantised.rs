//! Parameter counts of quantised weights (docs/memory-model.md, "Quantised
//! weights"). A quantised weight is stored as integers with its scales and
//! zero points; its bytes are what the file stores, but its parameters are
//! the logical weight's elements: MatMulNBits (com.microsoft) packs the
//! [N, K] weight into `[N, K/block, block·bits/8]` bytes, so its packed
//! blocks count N×K; a weight a DequantizeLinear reads counts its own
//! elements (ONNX shapes of int4/uint4 tensors are logical already, two per
//! byte only in `DType::bytes_for`); the scales and zero points of either
//! count none. `Graph::quantised_params` records the counts that differ from
//! the stored elements; those tensors and every integer weight get no
//! gradient (`Graph::gets_gradient`).

use super::rules::NodeSource;
use crate::graph::{Graph, TensorId, TensorKind};
use crate::ops::{Op, QuantOp};

/// Fills `g.quantised_params` from the MatMulNBits and weight-reading
/// DequantizeLinear nodes; `sources[j]` has node j's inputs by position.
pub(super) fn count_quantised(g: &mut Graph, sources: &[NodeSource]) {
    let mut counts: Vec<(TensorId, u64)> = Vec::new();
    for (n, src) in g.nodes.iter().zip(sources) {
        let at = |k: usize| src.inputs.get(k).copied().flatten().filter(|&t| g.tensor(t).kind == TensorKind::Param);
        match &n.op {
            // Inputs: A, B (packed blocks), scales, zero points, g_idx, bias.
            Op::Quant(QuantOp::MatMulNBits { k, n: outputs }) => {
                if let Some(b) = at(1) {
                    counts.push((b, outputs.saturating_mul(*k)));
                }
                counts.extend([at(2), at(3)].into_iter().flatten().map(|t| (t, 0)));
            }
            // Inputs: x, scale, zero point; x a stored weight.
            Op::Quant(QuantOp::Dequantize { .. }) if at(0).is_some() => {
                counts.extend([at(1), at(2)].into_iter().flatten().map(|t| (t, 0)));
            }
            _ => {}
        }
    }
    g.quantised_params.extend(counts);
}
