//! Losses and Accuracy: each reduces to a scalar. Accuracy may add a per-class top.

use super::{nth, OutShape};
use crate::graph::{Shape, ShapeError};

/// Accuracy: a scalar, plus a per-class vector (C) when the layer has a second top.
pub fn accuracy_shapes(inputs: &[&Shape], n_outputs: usize) -> Result<Vec<OutShape>, ShapeError> {
    let mut outs = vec![OutShape::Known(Shape::scalar())];
    if n_outputs > 1 {
        let scores = nth(inputs, 0, "score blob")?;
        outs.push(OutShape::Known(Shape(vec![scores.dim(1)?])));
    }
    Ok(outs)
}
