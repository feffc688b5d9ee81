//! Same-shape ops: activations of one input, PReLU, dropout, softmax, and
//! combinations of several inputs (Caffe Eltwise and Axpy; ONNX Add, Mul, Sub,
//! Div, Max, Min, Pow, Mod, comparisons and Where), which broadcast numpy-style
//! in ONNX. What backward keeps differs and is why the variants are separate:
//! ReLU-like functions keep their output, products every operand, sums nothing,
//! comparisons have no gradient at all.

use super::dense::broadcast;
use super::{
    channels, first, known, no_grad, nth, saves_all, AttentionPart, ConvGeometry, ExtraSaved, Family, Fusion, MemoryFacts, OutShape,
    ParamSpec, SavedType, ScheduleFacts, Storage,
};
use crate::tensor::{Shape, ShapeError};

/// The elementwise family.
#[derive(Clone, Debug, PartialEq)]
pub enum ElementwiseOp {
    /// Same-shape pointwise function of one input.
    Activation(Activation),
    /// Parametric ReLU: learned slope per channel or one shared.
    PRelu { channel_shared: bool },
    Dropout { ratio: f32 },
    /// Pointwise combination of several inputs of the same shape (Caffe Eltwise).
    /// ONNX broadcasts operands numpy-style; Caffe requires equal shapes.
    Eltwise { kind: EltwiseKind, broadcast: bool },
    /// a·x + y with a per-channel `a` (SENet fork).
    Axpy,
    /// Normalised exponentials along `axis` (same shape; couples that axis).
    Softmax { axis: i64 },
    /// Element-wise predicate or logic (boolean output, no gradient).
    Compare(CompareKind),
    /// Element-wise choice between two inputs by a condition.
    Where,
    /// Broadcasting arithmetic that `EltwiseKind` does not cover.
    Binary(BinaryKind),
}

impl Family for ElementwiseOp {
    fn name(&self) -> &'static str {
        match self {
            ElementwiseOp::Activation(a) => a.name(),
            ElementwiseOp::PRelu { .. } => "PRelu",
            ElementwiseOp::Dropout { .. } => "Dropout",
            ElementwiseOp::Eltwise { kind, .. } => kind.name(),
            ElementwiseOp::Axpy => "Axpy",
            ElementwiseOp::Softmax { .. } => "Softmax",
            ElementwiseOp::Compare(k) => k.name(),
            ElementwiseOp::Where => "Where",
            ElementwiseOp::Binary(k) => k.name(),
        }
    }

    fn infer_shapes(&self, inputs: &[&Shape], n_outputs: usize) -> Result<Vec<OutShape>, ShapeError> {
        let x = || nth(inputs, 0, "data input");
        let shape = match self {
            ElementwiseOp::Activation(_)
            | ElementwiseOp::PRelu { .. }
            | ElementwiseOp::Dropout { .. }
            | ElementwiseOp::Softmax { .. } => first(inputs)?.clone(),
            ElementwiseOp::Eltwise { broadcast, .. } => eltwise_shape(inputs, *broadcast)?,
            ElementwiseOp::Axpy => axpy_shape(inputs)?,
            ElementwiseOp::Compare(CompareKind::Not) => x()?.clone(),
            ElementwiseOp::Compare(_) | ElementwiseOp::Binary(_) => {
                Shape(broadcast(x()?.dims(), nth(inputs, 1, "second operand")?.dims())?)
            }
            ElementwiseOp::Where => {
                let ab = broadcast(nth(inputs, 1, "first choice")?.dims(), nth(inputs, 2, "second choice")?.dims())?;
                Shape(broadcast(x()?.dims(), &ab)?)
            }
        };
        known(shape, n_outputs)
    }

    fn has_weights(&self) -> bool {
        match self {
            ElementwiseOp::PRelu { .. } => true,
            ElementwiseOp::Activation(_)
            | ElementwiseOp::Dropout { .. }
            | ElementwiseOp::Eltwise { .. }
            | ElementwiseOp::Axpy
            | ElementwiseOp::Softmax { .. }
            | ElementwiseOp::Compare(_)
            | ElementwiseOp::Where
            | ElementwiseOp::Binary(_) => false,
        }
    }

    fn param_specs(&self, inputs: &[&Shape]) -> Result<Vec<ParamSpec>, ShapeError> {
        match self {
            ElementwiseOp::PRelu { channel_shared } => Ok(prelu_params(*channel_shared, first(inputs)?)),
            ElementwiseOp::Activation(_)
            | ElementwiseOp::Dropout { .. }
            | ElementwiseOp::Eltwise { .. }
            | ElementwiseOp::Axpy
            | ElementwiseOp::Softmax { .. }
            | ElementwiseOp::Compare(_)
            | ElementwiseOp::Where
            | ElementwiseOp::Binary(_) => Ok(Vec::new()),
        }
    }

    /// Identity (and Cast) is a view; dropout is one in evaluation. Activations
    /// and arithmetic may be links of a decomposed framework op.
    fn schedule_facts(&self) -> ScheduleFacts {
        let fusing = |fusion| ScheduleFacts { fusion, ..ScheduleFacts::COMPUTES };
        match self {
            ElementwiseOp::Activation(Activation::Identity) => ScheduleFacts { fusion: Fusion::Function, ..ScheduleFacts::VIEW },
            ElementwiseOp::Activation(_) => fusing(Fusion::Function),
            // p = 0: the identity in training too (PyTorch returns the input).
            ElementwiseOp::Dropout { ratio } if *ratio == 0.0 => ScheduleFacts::VIEW,
            ElementwiseOp::Dropout { .. } => {
                ScheduleFacts { storage: Storage::ViewInInference, attention: AttentionPart::Dropout, ..ScheduleFacts::COMPUTES }
            }
            ElementwiseOp::Eltwise { kind: EltwiseKind::Prod, .. } => {
                ScheduleFacts { fusion: Fusion::Product, attention: AttentionPart::Scale, ..ScheduleFacts::COMPUTES }
            }
            ElementwiseOp::Eltwise { kind: EltwiseKind::Div, .. } => {
                ScheduleFacts { fusion: Fusion::Arithmetic, attention: AttentionPart::Scale, ..ScheduleFacts::COMPUTES }
            }
            ElementwiseOp::Eltwise { kind: EltwiseKind::Sum, .. } => fusing(Fusion::Sum),
            ElementwiseOp::Eltwise { .. } | ElementwiseOp::Binary(_) => fusing(Fusion::Arithmetic),
            ElementwiseOp::Softmax { axis: -1 } => ScheduleFacts { attention: AttentionPart::Softmax, ..ScheduleFacts::COMPUTES },
            ElementwiseOp::PRelu { .. }
            | ElementwiseOp::Axpy
            | ElementwiseOp::Softmax { .. }
            | ElementwiseOp::Compare(_)
            | ElementwiseOp::Where => ScheduleFacts::COMPUTES,
        }
    }

    /// Where keeps its condition, Pow and Mod both operands; comparisons have no gradient.
    fn memory_facts(&self, inputs: &[&Shape], _: &[&Shape]) -> MemoryFacts {
        match self {
            ElementwiseOp::Activation(a) => activation_memory(*a),
            ElementwiseOp::PRelu { .. } => prelu_memory(),
            ElementwiseOp::Dropout { ratio } => dropout_memory(*ratio, inputs.first().copied()),
            ElementwiseOp::Eltwise { kind, .. } => eltwise_memory(*kind, inputs.len()),
            ElementwiseOp::Axpy => axpy_memory(inputs.len()),
            ElementwiseOp::Softmax { .. } => softmax_memory(),
            ElementwiseOp::Compare(_) => no_grad(),
            ElementwiseOp::Where => MemoryFacts { saves_inputs: vec![0], ..Default::default() },
            ElementwiseOp::Binary(_) => saves_all(inputs),
        }
    }

    fn conv_geometry(&self, _: Option<&Shape>, _: &[&Shape]) -> Option<ConvGeometry> {
        None
    }
}

/// Element-wise predicates and logic: boolean outputs, no gradient.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CompareKind {
    Equal,
    Less,
    LessOrEqual,
    Greater,
    GreaterOrEqual,
    And,
    Or,
    Xor,
    Not,
}

impl CompareKind {
    pub fn name(self) -> &'static str {
        match self {
            CompareKind::Equal => "Equal",
            CompareKind::Less => "Less",
            CompareKind::LessOrEqual => "LessOrEqual",
            CompareKind::Greater => "Greater",
            CompareKind::GreaterOrEqual => "GreaterOrEqual",
            CompareKind::And => "And",
            CompareKind::Or => "Or",
            CompareKind::Xor => "Xor",
            CompareKind::Not => "Not",
        }
    }
}

/// Broadcasting binary arithmetic that `EltwiseKind` does not cover.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BinaryKind {
    /// Backward needs both inputs (and the output).
    Pow,
    /// Integer-style remainder; gradient only through the dividend.
    Mod,
}

impl BinaryKind {
    pub fn name(self) -> &'static str {
        match self {
            BinaryKind::Pow => "Pow",
            BinaryKind::Mod => "Mod",
        }
    }
}

/// Same-shape functions of one input. Which value backward needs differs: see
/// `Activation::backward_uses_output`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Activation {
    Relu { negative_slope: f32 },
    Sigmoid,
    Tanh,
    AbsVal,
    Bnll,
    Exp,
    Log,
    Elu,
    Power,
    Threshold,
    Clip,
    Gelu,
    Silu,
    HardSigmoid,
    HardSwish,
    Softplus,
    Erf,
    Sqrt,
    Reciprocal,
    Neg,
    /// A value copy or cast (ONNX Identity, Cast): no compute, same shape.
    Identity,
}

impl Activation {
    pub fn name(self) -> &'static str {
        match self {
            Activation::Relu { negative_slope } if negative_slope != 0.0 => "LeakyReLU",
            Activation::Relu { .. } => "ReLU",
            Activation::Sigmoid => "Sigmoid",
            Activation::Tanh => "Tanh",
            Activation::AbsVal => "AbsVal",
            Activation::Bnll => "BNLL",
            Activation::Exp => "Exp",
            Activation::Log => "Log",
            Activation::Elu => "ELU",
            Activation::Power => "Power",
            Activation::Threshold => "Threshold",
            Activation::Clip => "Clip",
            Activation::Gelu => "GELU",
            Activation::Silu => "SiLU",
            Activation::HardSigmoid => "HardSigmoid",
            Activation::HardSwish => "HardSwish",
            Activation::Softplus => "Softplus",
            Activation::Erf => "Erf",
            Activation::Sqrt => "Sqrt",
            Activation::Reciprocal => "Reciprocal",
            Activation::Neg => "Neg",
            Activation::Identity => "Identity",
        }
    }

    /// Backward computes the gradient from the output (ReLU's mask, σ(1−σ),
    /// 1−tanh², eˣ, √x) rather than from the input. Not Clip: its mask is
    /// ambiguous at the bounds from the output alone, so frameworks (PyTorch's
    /// hardtanh) keep the input.
    pub fn backward_uses_output(self) -> bool {
        matches!(
            self,
            Activation::Relu { .. }
                | Activation::Sigmoid
                | Activation::Tanh
                | Activation::Exp
                | Activation::Sqrt
                | Activation::Reciprocal
                | Activation::Elu
        )
    }

    /// The gradient does not depend on any value (linear maps).
    pub fn backward_needs_nothing(self) -> bool {
        matches!(self, Activation::Neg | Activation::Identity)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EltwiseKind {
    Sum,
    Sub,
    Prod,
    Div,
    Max,
    Min,
}

impl EltwiseKind {
    pub fn name(self) -> &'static str {
        match self {
            EltwiseKind::Sum => "Add",
            EltwiseKind::Sub => "Sub",
            EltwiseKind::Prod => "Mul",
            EltwiseKind::Div => "Div",
            EltwiseKind::Max => "Max",
            EltwiseKind::Min => "Min",
        }
    }
}

/// All inputs share one shape (Caffe) or broadcast to one (ONNX).
pub fn eltwise_shape(inputs: &[&Shape], broadcasting: bool) -> Result<Shape, ShapeError> {
    let first = nth(inputs, 0, "first operand")?;
    let mut dims = first.dims().to_vec();
    for other in &inputs[1..] {
        if other.dims() == dims.as_slice() {
            continue;
        }
        if !broadcasting {
            return Err(ShapeError::new(format!(
                "Eltwise inputs must have identical shapes, got {first} and {other}"
            )));
        }
        dims = broadcast(&dims, other.dims())?;
    }
    Ok(Shape(dims))
}

/// Axpy(a, x, y) = a·x + y with a of shape (N, C, 1, 1): output has x's shape.
pub fn axpy_shape(inputs: &[&Shape]) -> Result<Shape, ShapeError> {
    let a = nth(inputs, 0, "per-channel scale")?;
    let x = nth(inputs, 1, "feature map")?;
    let y = nth(inputs, 2, "feature map to add")?;
    if x != y {
        return Err(ShapeError::new(format!("Axpy: x {x} and y {y} differ")));
    }
    if a.dims().get(..2) != x.dims().get(..2) {
        return Err(ShapeError::new(format!("Axpy: scale {a} does not match the channels of {x}")));
    }
    Ok(x.clone())
}

/// One slope per channel, or one for all.
pub fn prelu_params(channel_shared: bool, input: &Shape) -> Vec<ParamSpec> {
    let n = if channel_shared { 1 } else { channels(input).unwrap_or(1) };
    vec![ParamSpec::learned("slope", vec![n])]
}

/// Memory facts of an activation: it keeps whichever value its derivative is a
/// function of, and the ReLU-like ones may overwrite their input.
pub fn activation_memory(a: Activation) -> MemoryFacts {
    let mut f = MemoryFacts::default();
    if a.backward_uses_output() {
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
    f
}

/// Memory facts of PReLU: the slope's gradient and the mask need the input.
pub fn prelu_memory() -> MemoryFacts {
    MemoryFacts { saves_inputs: vec![0], saves_params: true, ..Default::default() }
}

/// Memory facts of dropout: one mask element per input element, in the
/// backend's mask type (a boolean, or the scaled noise itself); none for p = 0.
pub fn dropout_memory(ratio: f32, input: Option<&Shape>) -> MemoryFacts {
    if ratio == 0.0 {
        // The identity: no mask is drawn.
        return MemoryFacts::default();
    }
    let elems = input.and_then(|s| s.elems()).unwrap_or(0);
    MemoryFacts {
        extra_saved: vec![ExtraSaved { what: "dropout mask", elems, dtype: SavedType::DropoutMask }],
        ..Default::default()
    }
}

/// Memory facts of a pointwise combination: sums need nothing, products,
/// quotients and max/min every operand.
pub fn eltwise_memory(kind: EltwiseKind, n_inputs: usize) -> MemoryFacts {
    match kind {
        EltwiseKind::Sum | EltwiseKind::Sub => MemoryFacts::default(),
        // d(a·b)/da = b: each operand is kept for the others' gradients.
        EltwiseKind::Prod => MemoryFacts { saves_inputs: (0..n_inputs).collect(), saves_for_other_operands: true, ..Default::default() },
        EltwiseKind::Div | EltwiseKind::Max | EltwiseKind::Min => {
            MemoryFacts { saves_inputs: (0..n_inputs).collect(), ..Default::default() }
        }
    }
}

/// Memory facts of a·x + y: both products need their operands.
pub fn axpy_memory(n_inputs: usize) -> MemoryFacts {
    MemoryFacts { saves_inputs: (0..n_inputs).collect(), ..Default::default() }
}

/// Memory facts of softmax: its Jacobian is a function of the output.
pub fn softmax_memory() -> MemoryFacts {
    MemoryFacts { saves_outputs: vec![0], ..Default::default() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dropout_keeps_a_mask_unless_its_ratio_is_zero() {
        let x = Shape::new(vec![2, 8]);
        let d = ElementwiseOp::Dropout { ratio: 0.1 };
        assert_eq!(d.schedule_facts().storage, Storage::ViewInInference);
        let f = d.memory_facts(&[&x], &[&x]);
        assert_eq!((f.extra_saved[0].elems, f.extra_saved[0].dtype), (16, SavedType::DropoutMask));
        // p = 0 is the identity, in training too.
        let z = ElementwiseOp::Dropout { ratio: 0.0 };
        assert_eq!(z.schedule_facts().storage, Storage::View);
        assert!(z.memory_facts(&[&x], &[&x]).extra_saved.is_empty());
    }

    #[test]
    fn caffe_eltwise_rejects_mismatch_onnx_broadcasts() {
        let a = Shape::new(vec![1, 64, 8, 8]);
        let b = Shape::new(vec![1, 64, 1, 1]);
        assert!(eltwise_shape(&[&a, &b], false).is_err());
        assert_eq!(eltwise_shape(&[&a, &b], true).unwrap(), a);
    }

    #[test]
    fn axpy_takes_x_shape() {
        let a = Shape::new(vec![1, 64, 1, 1]);
        let x = Shape::new(vec![1, 64, 8, 8]);
        assert_eq!(axpy_shape(&[&a, &x, &x]).unwrap(), x);
    }

    #[test]
    fn prelu_slope_per_channel() {
        let s = Shape::new(vec![1, 16, 4, 4]);
        assert_eq!(prelu_params(false, &s)[0].shape.dims(), &[16]);
        assert_eq!(prelu_params(true, &s)[0].shape.dims(), &[1]);
    }
}
