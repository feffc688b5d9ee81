//! Losses and Accuracy: each reduces to a scalar. Accuracy may add a per-class top.

use super::{nth, MemoryFacts, Op, OutShape};
use crate::tensor::{Shape, ShapeError};

/// Accuracy: a scalar, plus a per-class vector (C) when the layer has a second top.
pub fn accuracy_shapes(inputs: &[&Shape], n_outputs: usize) -> Result<Vec<OutShape>, ShapeError> {
    let mut outs = vec![OutShape::Known(Shape::scalar())];
    if n_outputs > 1 {
        let scores = nth(inputs, 0, "score blob")?;
        outs.push(OutShape::Known(Shape(vec![scores.dim(1)?])));
    }
    Ok(outs)
}

/// Memory facts of losses and their companions: a loss keeps its operands
/// (prediction and label); accuracy and silence have no gradient.
pub fn loss_memory(op: &Op, n_inputs: usize) -> MemoryFacts {
    match op {
        Op::Loss { .. } => MemoryFacts { saves_inputs: (0..n_inputs).collect(), ..Default::default() },
        _ => MemoryFacts { no_grad: true, ..Default::default() },
    }
}
