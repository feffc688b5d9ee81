//! The up-front check that the memory pass cannot overflow (`check_fits`).
//!
//! The pass adds and multiplies with saturating arithmetic; this check runs
//! before it and proves from the graph and the settings that no figure can
//! reach 2^64, so no peak or breakdown is ever a silently saturated 2^64 − 1.

use super::{resolve_loss_layers, ConvWorkspace, MemorySettings, Precision, Scenario};
use crate::graph::{DType, Graph};

/// Proves, before the pass runs, that no figure it computes can reach 2^64:
/// the pass's sums saturate, and this makes saturation unreachable, so a peak
/// is never silently 2^64 − 1. The bound is loose on purpose: every tensor's
/// elements at the largest element size the settings give it, plus every
/// node's scratch (column buffers, padded inputs where the profile copies them,
/// extra saved tensors, style Gram matrices), times the most copies a scenario keeps
/// of one storage (10, plus the optimizer's state copies), times the worker
/// threads of a profile that copies per thread. `Err` names what does not fit
/// (a tensor whose own size overflows, or the total).
pub fn check_fits(graph: &Graph, settings: &MemorySettings) -> Result<(), String> {
    let prec = Precision::new(settings.dtype, settings.mixed_precision);
    let widest = |dt: DType| if dt.is_float() { dt.size_bytes().max(prec.compute).max(prec.master) } else { dt.size_bytes() };
    let mut total: u64 = 0;
    // What optimizer state is kept for: weights, and the image in style transfer.
    let mut optimized: u64 = 0;
    let mut largest: Option<(u64, &crate::graph::Tensor)> = None;
    for t in &graph.tensors {
        let Some(shape) = &t.shape else { continue };
        let bytes = shape.elems().and_then(|e| e.checked_mul(widest(t.dtype)));
        let Some(bytes) = bytes.filter(|_| t.bytes().is_some()) else {
            return Err(format!("tensor \"{}\" {shape} of {}: its byte size overflows 64 bits", t.name, t.dtype.name()));
        };
        total = total.checked_add(bytes).ok_or_else(|| {
            format!("the model's tensors add up to more than 2^64 bytes (at tensor \"{}\" {shape} of {})", t.name, t.dtype.name())
        })?;
        let style = settings.scenarios.contains(&Scenario::StyleTransfer);
        if t.kind == crate::graph::TensorKind::Param || (style && t.kind == crate::graph::TensorKind::Input) {
            optimized = optimized.saturating_add(bytes); // ≤ total, which did not overflow
        }
        if largest.is_none_or(|(b, _)| bytes > b) {
            largest = Some((bytes, t));
        }
    }
    // Scratch the schedule derives from the shapes (facts), checked here, not saturated.
    let mut scratch: u64 = 0;
    let overflow = |what: &str| format!("{what} overflows 64 bits");
    let (mut ins, mut outs) = (Vec::new(), Vec::new());
    for node in &graph.nodes {
        if !super::known_shapes(graph, &node.inputs, &mut ins) || !super::known_shapes(graph, &node.outputs, &mut outs) {
            continue;
        }
        let f = node.op.memory_facts(&ins, &outs);
        // Per image: a profile that holds one per worker is covered by `threads` below.
        let mut elems = f.column_elems_per_image;
        for e in &f.extra_saved {
            elems = elems.checked_add(e.elems).ok_or_else(|| overflow(&format!("node \"{}\": what it saves", node.name)))?;
        }
        if settings.profile.conv_workspace == ConvWorkspace::PaddedCopies {
            let weights: Vec<&crate::graph::Shape> = node.params.iter().filter_map(|&w| graph.tensor(w).shape.as_ref()).collect();
            if let Some(geo) = node.op.conv_geometry(ins.first().copied(), &weights) {
                // Saturated at 2^64 − 1 where it overflows: then the sum below fails.
                elems = elems.checked_add(geo.padded_input_elems).ok_or_else(|| overflow(&format!("node \"{}\": its padded input", node.name)))?;
            }
        }
        scratch = elems.checked_mul(8).and_then(|b| scratch.checked_add(b)).ok_or_else(|| overflow("the nodes' scratch"))?;
    }
    if settings.scenarios.contains(&Scenario::StyleTransfer) {
        let loss = resolve_loss_layers(graph, &settings.loss_layers).unwrap_or_default();
        // Style layers hold a Gram matrix (C × C per image); content targets are tensor-sized (counted above).
        for (name, t) in &loss.style {
            let d = graph.tensor(*t).shape.as_ref().map(|s| s.dims().to_vec()).unwrap_or_default();
            let (n, c) = (d.first().copied().unwrap_or(1), d.get(1).copied().unwrap_or(1));
            let gram = n.checked_mul(c).and_then(|v| v.checked_mul(c)).and_then(|v| v.checked_mul(8));
            scratch = gram.and_then(|g| scratch.checked_add(g)).ok_or_else(|| overflow(&format!("the Gram matrix at {name}")))?;
        }
    }
    const COPIES: u64 = 10;
    let trains = settings.scenarios.iter().any(|s| s.trains());
    let state = if trains { settings.optimizer.state_copies() } else { 0 };
    let per_thread = settings.profile.per_thread_copies || settings.profile.conv_workspace == ConvWorkspace::Im2colPerThread;
    let threads = if per_thread { u64::from(settings.threads.max(1)) } else { 1 };
    let bound = total
        .checked_add(scratch)
        .and_then(|b| b.checked_mul(COPIES))
        .and_then(|b| b.checked_add(optimized.checked_mul(state)?))
        .and_then(|b| b.checked_mul(threads));
    if bound.is_none() {
        let biggest = largest.map(|(b, t)| format!("; the largest tensor is \"{}\" of {b} bytes", t.name)).unwrap_or_default();
        return Err(format!(
            "the memory figures could overflow 64 bits: tensors of {total} bytes and scratch of {scratch} bytes kept up to \
             {COPIES} times, {optimized} bytes of weights and inputs with {state} optimizer state copies ({}){}{biggest}",
            settings.optimizer,
            if threads > 1 { format!(", by {threads} worker threads") } else { String::new() },
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::{ModelFormat, Shape, Tensor, TensorKind};
    use crate::memory::Optimizer;

    fn graph_of(tensors: &[(&str, Vec<u64>, TensorKind)]) -> Graph {
        let mut g = Graph::new("g", ModelFormat::Onnx);
        for (name, dims, kind) in tensors {
            g.add_tensor(Tensor {
                name: name.to_string(),
                shape: Some(Shape(dims.clone())),
                unknown: None,
                dtype: DType::F32,
                kind: *kind,
                trainable: *kind == TensorKind::Param,
                producer: None,
            });
        }
        g
    }

    #[test]
    fn a_tensor_whose_bytes_overflow_is_named() {
        let g = graph_of(&[("w", vec![1 << 31, 1 << 31], TensorKind::Param)]);
        let e = check_fits(&g, &MemorySettings::default()).unwrap_err();
        assert!(e.contains("tensor \"w\" [2147483648,2147483648] of f32: its byte size overflows 64 bits"), "{e}");
    }

    #[test]
    fn a_total_past_2_64_is_refused_and_a_large_one_is_not() {
        // Two tensors of 2^63 bytes: each fits, the peak (both live) would be 2^64.
        let g = graph_of(&[("x", vec![1 << 61], TensorKind::Input), ("y", vec![1 << 61], TensorKind::Activation)]);
        assert!(check_fits(&g, &MemorySettings::default()).unwrap_err().contains("add up to more than 2^64 bytes"));
        // 4 TiB tensors are fine, with any optimizer that keeps a sane number of copies.
        let g = graph_of(&[("x", vec![1 << 40], TensorKind::Input), ("w", vec![1 << 40], TensorKind::Param)]);
        let mut s = MemorySettings { optimizer: Optimizer::Adam, ..Default::default() };
        assert_eq!(check_fits(&g, &s), Ok(()));
        // An L-BFGS history of 4e9 copies of 4 TiB of weights does not fit.
        s.optimizer = Optimizer::Lbfgs { history: 4_000_000_000 };
        assert!(check_fits(&g, &s).unwrap_err().contains("optimizer state copies"));
        // Inference keeps no optimizer state.
        s.scenarios = vec![Scenario::Inference];
        assert_eq!(check_fits(&g, &s), Ok(()));
    }
}
