//! Losses, Accuracy and Silence: the ends of a training net. A loss reduces to
//! a scalar; Accuracy may add a per-class top; Silence consumes its inputs.

use super::{known, no_grad, nth, saves_all, ConvGeometry, Family, MemoryFacts, OutShape, ParamSpec, ScheduleFacts};
use crate::tensor::{Shape, ShapeError};

/// The loss family.
#[derive(Clone, Debug, PartialEq)]
pub enum LossOp {
    /// A loss: one scalar output; `kind` is the file's type name.
    Loss {
        /// The file's type name.
        kind: String,
    },
    /// Caffe's Accuracy layer: the share of labels among the top k scores.
    Accuracy {
        /// k.
        top_k: u64,
    },
    /// Consumes its inputs, produces nothing.
    Silence,
}

impl Family for LossOp {
    fn name(&self) -> &'static str {
        match self {
            LossOp::Loss { .. } => "Loss",
            LossOp::Accuracy { .. } => "Accuracy",
            LossOp::Silence => "Silence",
        }
    }

    fn infer_shapes(&self, inputs: &[&Shape], n_outputs: usize) -> Result<Vec<OutShape>, ShapeError> {
        match self {
            LossOp::Loss { .. } => known(Shape::scalar(), n_outputs),
            LossOp::Accuracy { .. } => accuracy_shapes(inputs, n_outputs),
            LossOp::Silence => Ok(Vec::new()),
        }
    }

    fn has_weights(&self) -> bool {
        false
    }

    fn param_specs(&self, _: &[&Shape]) -> Result<Vec<ParamSpec>, ShapeError> {
        Ok(Vec::new())
    }

    fn schedule_facts(&self) -> ScheduleFacts {
        match self {
            LossOp::Loss { .. } | LossOp::Accuracy { .. } | LossOp::Silence => ScheduleFacts::COMPUTES,
        }
    }

    /// A loss keeps its operands (prediction and label); accuracy and silence
    /// have no gradient.
    fn memory_facts(&self, inputs: &[&Shape], _: &[&Shape]) -> MemoryFacts {
        match self {
            LossOp::Loss { .. } => saves_all(inputs),
            LossOp::Accuracy { .. } | LossOp::Silence => no_grad(),
        }
    }

    fn conv_geometry(&self, _: Option<&Shape>, _: &[&Shape]) -> Option<ConvGeometry> {
        None
    }
}

/// Accuracy: a scalar, plus a per-class vector (C) when the layer has a second top.
pub fn accuracy_shapes(inputs: &[&Shape], n_outputs: usize) -> Result<Vec<OutShape>, ShapeError> {
    let mut outs = vec![OutShape::Known(Shape::scalar())];
    if n_outputs > 1 {
        let scores = nth(inputs, 0, "score blob")?;
        outs.push(OutShape::Known(Shape(vec![scores.dim(1)?])));
    }
    Ok(outs)
}
