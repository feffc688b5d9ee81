//! What each operator's backward pass keeps, framework-neutral, for the shapes
//! a node was given (temporary home: the facts move beside each op's shape
//! rule in `src/ops/` once that module settles; the memory pass only sees the
//! `MemoryFacts` value, so the move changes no caller).
//!
//! The rules follow the derivative formulas: a gradient that multiplies by the
//! input needs the input (convolution, linear, product), one that is a function
//! of the result needs the output (ReLU's mask, σ(1−σ), softmax), and linear maps
//! (add, concat, reshape) need nothing but shapes.

use crate::graph::{DType, Shape};
use crate::ops::{
    conv, dense, Activation, EltwiseKind, ExtraSaved, MemoryFacts, Op, PoolMethod, ReduceKind,
};

/// Memory facts of `op` for these input and output shapes.
pub(crate) fn facts(op: &Op, inputs: &[&Shape], outputs: &[&Shape]) -> MemoryFacts {
    let in0 = inputs.first().copied();
    let out0 = outputs.first().copied();
    let out_elems = out0.and_then(|s| s.elems()).unwrap_or(0);
    let in_elems = in0.and_then(|s| s.elems()).unwrap_or(0);
    let all_inputs: Vec<usize> = (0..inputs.len()).collect();
    let mut f = MemoryFacts::default();
    match op {
        Op::Conv(p) => {
            // dW = x ⋆ dy needs the input; dx = W ⋆ dy needs the weights.
            f.saves_inputs = vec![0];
            f.saves_params = true;
            if let (Some(i), Some(o)) = (in0, out0) {
                f.column_elems_per_image = conv::column_elems(p, i, o).unwrap_or(0);
                f.macs = conv::conv_macs(p, i, o).unwrap_or(0);
            }
        }
        Op::Deconv(p) => {
            f.saves_inputs = vec![0];
            f.saves_params = true;
            if let Some(i) = in0 {
                f.macs = conv::deconv_macs(p, i).unwrap_or(0);
                // The transposed convolution's column buffer spans the input
                // positions times the kernel times the output channels per group.
                let c_out = p.out_channels / p.groups(i.dims().get(1).copied().unwrap_or(1)).max(1);
                let spatial = i.dims().get(2..).map(|d| d.iter().product::<u64>()).unwrap_or(1);
                f.column_elems_per_image = c_out
                    .saturating_mul(p.window.kernel.iter().product::<u64>())
                    .saturating_mul(spatial);
            }
        }
        Op::Pool(p) => match p.method {
            PoolMethod::Max => {
                // Backward scatters into the argmax positions: PyTorch keeps
                // int64 indices per output element, plus the input for its shape.
                f.saves_inputs = vec![0];
                f.extra_saved.push(ExtraSaved { what: "max-pool indices", elems: out_elems, dtype: Some(DType::I64) });
            }
            PoolMethod::Average | PoolMethod::Stochastic => {
                // PyTorch's avg_pool backward takes the input tensor as argument.
                f.saves_inputs = vec![0];
            }
        },
        Op::Dense(p) => {
            f.saves_inputs = vec![0];
            f.saves_params = true;
            if let (Some(i), Some(o)) = (in0, out0) {
                f.macs = dense::dense_macs(p, i, o).unwrap_or(0);
            }
        }
        Op::MatMul => {
            f.saves_inputs = vec![0, 1];
            if let Some(o) = out0 {
                f.macs = dense::matmul_macs(inputs, o).unwrap_or(0);
            }
        }
        Op::Embed(_) => {
            f.saves_inputs = vec![0];
            f.saves_params = true;
        }
        Op::Activation(a) => {
            // Clip's mask is ambiguous at the bounds from the output alone, so
            // frameworks (PyTorch's hardtanh) keep the input.
            if *a == Activation::Clip {
                f.saves_inputs = vec![0];
            } else if a.backward_uses_output() {
                f.saves_outputs = vec![0];
            } else if !a.backward_needs_nothing() {
                f.saves_inputs = vec![0];
            }
            f.in_place_ok = matches!(
                a,
                Activation::Relu { .. }
                    | Activation::Clip
                    | Activation::Elu
                    | Activation::Threshold
                    | Activation::HardSigmoid
                    | Activation::HardSwish
            );
        }
        Op::PRelu { .. } => {
            f.saves_inputs = vec![0];
            f.saves_params = true;
        }
        Op::Dropout { .. } => {
            // The mask (one byte per element in PyTorch's native_dropout).
            f.extra_saved.push(ExtraSaved { what: "dropout mask", elems: in_elems, dtype: Some(DType::Bool) });
        }
        Op::Eltwise { kind, .. } => match kind {
            EltwiseKind::Sum | EltwiseKind::Sub => {}
            EltwiseKind::Prod | EltwiseKind::Div | EltwiseKind::Max | EltwiseKind::Min => {
                f.saves_inputs = all_inputs;
            }
        },
        Op::Axpy => f.saves_inputs = all_inputs,
        Op::Softmax { .. } => f.saves_outputs = vec![0],
        Op::Lrn(_) => {
            f.saves_inputs = vec![0];
            f.saves_outputs = vec![0];
            f.extra_saved.push(ExtraSaved { what: "LRN scale", elems: in_elems, dtype: None });
        }
        Op::BatchNorm { .. } | Op::BnFork { .. } => {
            // Input plus per-channel mean and inverse std of the batch.
            f.saves_inputs = vec![0];
            f.saves_params = true;
            let c = in0.and_then(|s| s.dims().get(1).copied()).unwrap_or(0);
            f.extra_saved.push(ExtraSaved { what: "batch statistics", elems: c.saturating_mul(2), dtype: Some(DType::F32) });
        }
        Op::LayerNorm { axis, .. } => {
            f.saves_inputs = vec![0];
            f.saves_params = true;
            let rows = in0
                .and_then(|s| s.axis(*axis).ok().map(|a| s.dims()[..a].iter().product::<u64>()))
                .unwrap_or(0);
            f.extra_saved.push(ExtraSaved { what: "row statistics", elems: rows.saturating_mul(2), dtype: Some(DType::F32) });
        }
        Op::GroupNorm { groups, .. } => {
            f.saves_inputs = vec![0];
            f.saves_params = true;
            let n = in0.and_then(|s| s.dims().first().copied()).unwrap_or(0);
            let c = in0.and_then(|s| s.dims().get(1).copied()).unwrap_or(0);
            let g = groups.unwrap_or(c);
            f.extra_saved.push(ExtraSaved { what: "group statistics", elems: n.saturating_mul(g).saturating_mul(2), dtype: Some(DType::F32) });
        }
        Op::Scale(_) => {
            f.saves_inputs = all_inputs;
            f.saves_params = true;
        }
        Op::Normalize { .. } => {
            f.saves_inputs = vec![0];
            f.saves_params = true;
            f.extra_saved.push(ExtraSaved { what: "norms", elems: in_elems, dtype: None });
        }
        Op::Reduction { .. } => f.saves_inputs = vec![0],
        Op::Reduce { kind, .. } => match kind {
            ReduceKind::Mean | ReduceKind::Sum => {}
            ReduceKind::Max | ReduceKind::Min => {
                f.saves_inputs = vec![0];
                f.saves_outputs = vec![0];
            }
            _ => f.saves_inputs = vec![0],
        },
        Op::RoiPool(_) => {
            f.saves_inputs = all_inputs;
            f.extra_saved.push(ExtraSaved { what: "argmax", elems: out_elems, dtype: Some(DType::I32) });
        }
        Op::Recurrent(_) => {
            // Every time step's gates are kept: about four hidden-sized vectors per output element.
            f.saves_inputs = vec![0];
            f.saves_params = true;
            f.extra_saved.push(ExtraSaved { what: "gates", elems: out_elems.saturating_mul(4), dtype: None });
        }
        Op::Loss { .. } => f.saves_inputs = all_inputs,
        Op::Gather { .. } => f.saves_inputs = vec![1],
        Op::Where => f.saves_inputs = vec![0],
        Op::Binary(_) => f.saves_inputs = all_inputs,
        Op::Unknown { .. } => f.saves_inputs = all_inputs,
        Op::Compare(_)
        | Op::ArgMax { .. }
        | Op::ShapeOf
        | Op::Constant { .. }
        | Op::PriorBox(_)
        | Op::DetectionOutput(_)
        | Op::Proposal
        | Op::Accuracy { .. }
        | Op::Silence => f.no_grad = true,
        // Linear maps and data movement: backward needs only shapes.
        Op::Bias(_)
        | Op::Concat { .. }
        | Op::Split
        | Op::Slice(_)
        | Op::Flatten(_)
        | Op::Reshape(_)
        | Op::Crop(_)
        | Op::Permute { .. }
        | Op::ShuffleChannel { .. }
        | Op::Tile { .. }
        | Op::Upsample(_)
        | Op::Interp(_)
        | Op::Resize { .. }
        | Op::Expand
        | Op::Squeeze { .. }
        | Op::Unsqueeze { .. }
        | Op::StridedSlice
        | Op::Pad => {}
    }
    f
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::{PoolParams, Rounding, Window};

    #[test]
    fn max_pool_keeps_int64_indices_per_output() {
        let p = PoolParams {
            method: PoolMethod::Max,
            window: Window::symmetric(vec![2, 2], vec![2, 2], vec![0, 0], vec![1, 1]),
            rounding: Rounding::Floor,
            global: false,
            clip_last_window: false,
        };
        let i = Shape::new(vec![1, 64, 112, 112]);
        let o = Shape::new(vec![1, 64, 56, 56]);
        let f = facts(&Op::Pool(p), &[&i], &[&o]);
        assert_eq!(f.saves_inputs, vec![0]);
        assert_eq!(f.extra_saved[0].elems, 64 * 56 * 56);
        assert_eq!(f.extra_saved[0].dtype, Some(DType::I64));
    }

    #[test]
    fn relu_keeps_its_output_and_may_run_in_place() {
        let s = Shape::new(vec![1, 8]);
        let f = facts(&Op::Activation(Activation::Relu { negative_slope: 0.0 }), &[&s], &[&s]);
        assert_eq!(f.saves_outputs, vec![0]);
        assert!(f.saves_inputs.is_empty());
        assert!(f.in_place_ok);
    }

    #[test]
    fn add_keeps_nothing() {
        let s = Shape::new(vec![1, 8]);
        let f = facts(&Op::Eltwise { kind: EltwiseKind::Sum, broadcast: false }, &[&s, &s], &[&s]);
        assert_eq!(f, MemoryFacts::default());
    }
}
