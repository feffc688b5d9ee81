//! Losses, Accuracy and Silence: the ends of a training net. A loss reduces to
//! a scalar; Accuracy may add a per-class top; Silence consumes its inputs.
//! ONNX's class losses (NegativeLogLikelihoodLoss, SoftmaxCrossEntropyLoss)
//! reduce to a scalar or, with `reduction="none"`, keep one loss per sample
//! and position: the scores' shape without the class axis 1.

use super::{
    first, known, no_grad, nth, saves_all, ConvGeometry, ExtraSaved, Family, MemoryFacts, OutShape, ParamSpec, SavedType,
    ScheduleFacts,
};
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
    /// ONNX NegativeLogLikelihoodLoss (`softmax` false: the input is already
    /// log-probabilities) or SoftmaxCrossEntropyLoss (`softmax` true; an
    /// optional second output holds the log-probabilities): inputs scores
    /// `[N, C, d…]`, target `[N, d…]`, optional class weights `[C]`.
    ClassLoss {
        /// Softmax first (SoftmaxCrossEntropyLoss).
        softmax: bool,
        /// No reduction: one loss per element.
        reduction_none: bool,
    },
}

impl Family for LossOp {
    fn name(&self) -> &'static str {
        match self {
            LossOp::Loss { .. } => "Loss",
            LossOp::Accuracy { .. } => "Accuracy",
            LossOp::Silence => "Silence",
            LossOp::ClassLoss { softmax: false, .. } => "NLLLoss",
            LossOp::ClassLoss { softmax: true, .. } => "CrossEntropyLoss",
        }
    }

    fn infer_shapes(&self, inputs: &[&Shape], n_outputs: usize) -> Result<Vec<OutShape>, ShapeError> {
        match self {
            LossOp::Loss { .. } => known(Shape::scalar(), n_outputs),
            LossOp::Accuracy { .. } => accuracy_shapes(inputs, n_outputs),
            LossOp::Silence => Ok(Vec::new()),
            LossOp::ClassLoss { softmax, reduction_none } => class_loss_shapes(*softmax, *reduction_none, inputs, n_outputs),
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
            LossOp::Loss { .. } | LossOp::Accuracy { .. } | LossOp::Silence | LossOp::ClassLoss { .. } => {
                ScheduleFacts::COMPUTES
            }
        }
    }

    /// A loss keeps its operands (prediction and label); accuracy and silence
    /// have no gradient. The class losses: d/dx of NLL is −w[t]/norm at the
    /// target's position, so backward keeps the target and the class weights,
    /// not the scores; cross-entropy's gradient is softmax(x) − onehot(t), so
    /// it also keeps the log-probabilities (its second output when declared,
    /// else one scores-sized tensor of its own).
    fn memory_facts(&self, inputs: &[&Shape], outputs: &[&Shape]) -> MemoryFacts {
        match self {
            LossOp::Loss { .. } => saves_all(inputs),
            LossOp::ClassLoss { softmax, .. } => {
                let mut f = MemoryFacts { saves_inputs: (1..inputs.len()).collect(), ..Default::default() };
                if *softmax {
                    if outputs.len() > 1 {
                        f.saves_outputs = vec![1];
                    } else {
                        let elems = inputs.first().and_then(|s| s.elems()).unwrap_or(0);
                        f.extra_saved.push(ExtraSaved { what: "log-probabilities", elems, dtype: SavedType::Compute });
                    }
                }
                f
            }
            LossOp::Accuracy { .. } | LossOp::Silence => no_grad(),
        }
    }

    fn conv_geometry(&self, _: Option<&Shape>, _: &[&Shape]) -> Option<ConvGeometry> {
        None
    }
}

/// The class losses: one loss per sample and position (the scores' shape
/// without axis 1) with `reduction="none"`, else a scalar; cross-entropy's
/// optional log-probabilities have the scores' shape.
fn class_loss_shapes(softmax: bool, none: bool, inputs: &[&Shape], n_outputs: usize) -> Result<Vec<OutShape>, ShapeError> {
    let scores = first(inputs)?;
    if scores.rank() < 2 {
        return Err(ShapeError::new(format!("the scores {scores} need a class axis 1 (rank 2 or more)")));
    }
    let loss = if none {
        let mut d = scores.dims().to_vec();
        d.remove(1);
        Shape(d)
    } else {
        Shape::scalar()
    };
    let mut outs = vec![OutShape::Known(loss)];
    match (softmax, n_outputs) {
        (_, 0 | 1) => {}
        (true, 2) => outs.push(OutShape::Known(scores.clone())),
        _ => return Err(ShapeError::new(format!("the loss declares {n_outputs} outputs"))),
    }
    Ok(outs)
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
