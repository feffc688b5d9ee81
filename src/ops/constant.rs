//! Values that are not data: a tensor's shape, constants stored in the graph,
//! and constants filled to a shape given at run time (ONNX Shape, Constant,
//! ConstantOfShape). They hold no activation memory and have no gradient;
//! the ONNX loader takes their shapes (which depend on values) from tract or
//! from the stored value's dims.

use super::{known, no_grad, nth, ConvGeometry, Family, MemoryFacts, OutShape, ParamSpec, Produces, ScheduleFacts};
use crate::tensor::{Shape, ShapeError};

/// The constant family.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ConstantOp {
    /// The input's shape as a 1-D integer tensor.
    ShapeOf,
    /// A value stored in the graph.
    Stored,
    /// A value filled to a shape given at run time.
    Filled,
}

impl Family for ConstantOp {
    fn name(&self) -> &'static str {
        match self {
            ConstantOp::ShapeOf => "Shape",
            ConstantOp::Stored => "Constant",
            ConstantOp::Filled => "ConstantOfShape",
        }
    }

    fn infer_shapes(&self, inputs: &[&Shape], n_outputs: usize) -> Result<Vec<OutShape>, ShapeError> {
        match self {
            ConstantOp::ShapeOf => known(Shape::new(vec![nth(inputs, 0, "data input")?.rank() as u64]), n_outputs),
            ConstantOp::Stored | ConstantOp::Filled => Err(ShapeError::new(format!(
                "{}: the output shape depends on input values (taken from the ONNX shape analysis)",
                self.name()
            ))),
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
            ConstantOp::ShapeOf | ConstantOp::Stored | ConstantOp::Filled => {
                ScheduleFacts { produces: Produces::ShapeOrConstant, ..ScheduleFacts::COMPUTES }
            }
        }
    }

    fn memory_facts(&self, _: &[&Shape], _: &[&Shape]) -> MemoryFacts {
        match self {
            ConstantOp::ShapeOf | ConstantOp::Stored | ConstantOp::Filled => no_grad(),
        }
    }

    fn conv_geometry(&self, _: Option<&Shape>, _: &[&Shape]) -> Option<ConvGeometry> {
        None
    }
}
