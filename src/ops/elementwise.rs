//! Same-shape ops: activations of one input, further pointwise math (trig,
//! rounding, tests for NaN), type casts, PReLU, dropout, softmax, triangular
//! masks, and combinations of several inputs (Caffe Eltwise and Axpy; ONNX
//! Add, Mul, Sub, Div, Max, Min, Mean, Pow, Mod, bit shifts and bitwise logic,
//! comparisons and Where), which broadcast numpy-style in ONNX. What backward
//! keeps differs and is why the variants are separate: ReLU-like functions
//! keep their output, products every operand, sums nothing, comparisons have
//! no gradient at all.
//!
//! The ops that shape arithmetic uses also have value rules (`eval`): integer
//! arithmetic wraps to the element type, `Div` on integers truncates toward
//! zero, `Mod` follows the sign of the divisor unless `fmod`, `Round` rounds
//! halves to even, as ONNX specifies.

use super::dense::broadcast;
use super::value::{self, arg, broadcast_map, Input, Value};
use super::{
    channels, first, known, no_grad, nth, saves_all, AttentionPart, ConvGeometry, ExtraSaved, Family, Fusion, MemoryFacts, OutShape,
    ParamSpec, SavedType, ScheduleFacts, Storage,
};
use crate::tensor::{DType, Shape, ShapeError};

/// The elementwise family.
#[derive(Clone, Debug, PartialEq)]
pub enum ElementwiseOp {
    /// Same-shape pointwise function of one input.
    Activation(Activation),
    /// Parametric ReLU: learned slope per channel or one shared.
    PRelu {
        /// Whether one slope is shared by every channel.
        channel_shared: bool,
    },
    /// Dropout: zeroes elements with probability `ratio` in training, the identity in inference.
    Dropout {
        /// The drop probability.
        ratio: f32,
    },
    /// Pointwise combination of several inputs of the same shape (Caffe Eltwise).
    /// ONNX broadcasts operands numpy-style; Caffe requires equal shapes.
    Eltwise {
        /// How the operands combine.
        kind: EltwiseKind,
        /// Whether operands broadcast (ONNX) rather than match (Caffe).
        broadcast: bool,
    },
    /// a·x + y with a per-channel `a` (SENet fork).
    Axpy,
    /// Normalised exponentials along `axis` (same shape; couples that axis).
    Softmax {
        /// The normalised axis.
        axis: i64,
    },
    /// Element-wise predicate or logic (boolean output, no gradient).
    Compare(CompareKind),
    /// Element-wise choice between two inputs by a condition.
    Where,
    /// Broadcasting arithmetic that `EltwiseKind` does not cover.
    Binary(BinaryKind),
    /// Same-shape pointwise math beyond the activations (`UnaryKind`).
    Unary(UnaryKind),
    /// A conversion to `to` (`None`: to input 1's type, ONNX CastLike); same shape.
    Cast {
        /// The target type.
        to: Option<DType>,
    },
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
            ElementwiseOp::Unary(k) => k.name(),
            ElementwiseOp::Cast { .. } => "Cast",
        }
    }

    fn infer_shapes(&self, inputs: &[&Shape], n_outputs: usize) -> Result<Vec<OutShape>, ShapeError> {
        let x = || nth(inputs, 0, "data input");
        let shape = match self {
            ElementwiseOp::Activation(_)
            | ElementwiseOp::PRelu { .. }
            | ElementwiseOp::Dropout { .. }
            | ElementwiseOp::Softmax { .. }
            | ElementwiseOp::Unary(_)
            | ElementwiseOp::Cast { .. } => first(inputs)?.clone(),
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
            | ElementwiseOp::Binary(_)
            | ElementwiseOp::Unary(_)
            | ElementwiseOp::Cast { .. } => false,
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
            | ElementwiseOp::Binary(_)
            | ElementwiseOp::Unary(_)
            | ElementwiseOp::Cast { .. } => Ok(Vec::new()),
        }
    }

    /// Identity and Cast are views (a cast to the type a value already has is
    /// a no-op in the frameworks); dropout is one in evaluation. Activations
    /// and arithmetic may be links of a decomposed framework op.
    fn schedule_facts(&self) -> ScheduleFacts {
        let fusing = |fusion| ScheduleFacts { fusion, ..ScheduleFacts::COMPUTES };
        match self {
            ElementwiseOp::Activation(Activation::Identity) | ElementwiseOp::Cast { .. } => {
                ScheduleFacts { fusion: Fusion::Function, ..ScheduleFacts::VIEW }
            }
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
            | ElementwiseOp::Where
            | ElementwiseOp::Unary(_) => ScheduleFacts::COMPUTES,
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
            ElementwiseOp::Binary(k) => match k {
                BinaryKind::Pow | BinaryKind::Mod { .. } | BinaryKind::SwiGlu => saves_all(inputs),
                BinaryKind::BitShift { .. } | BinaryKind::BitAnd | BinaryKind::BitOr | BinaryKind::BitXor => no_grad(),
            },
            ElementwiseOp::Unary(k) => k.memory(),
            ElementwiseOp::Cast { .. } => MemoryFacts::default(),
        }
    }

    fn conv_geometry(&self, _: Option<&Shape>, _: &[&Shape]) -> Option<ConvGeometry> {
        None
    }

    /// Optional inputs after the data (Clip's bounds, Dropout's ratio,
    /// Trilu's k) may be left out; the shape is input 0's or the broadcast.
    fn infer(&self, ins: &[Option<Input<'_>>], n_outputs: usize) -> Result<Vec<OutShape>, ShapeError> {
        let x = || arg(ins, 0, "data input").map(|x| x.shape.clone());
        let shape = match self {
            ElementwiseOp::Activation(_)
            | ElementwiseOp::Dropout { .. }
            | ElementwiseOp::Softmax { .. }
            | ElementwiseOp::Unary(_)
            | ElementwiseOp::Cast { .. }
            | ElementwiseOp::Compare(CompareKind::Not) => x()?,
            // The slope broadcasts to x (unidirectionally).
            ElementwiseOp::PRelu { .. } => {
                let x = x()?;
                if let Some(slope) = ins.get(1).copied().flatten() {
                    if broadcast(x.dims(), slope.shape.dims())? != x.dims() {
                        return Err(ShapeError::new(format!("PRelu: slope {} does not broadcast to {x}", slope.shape)));
                    }
                }
                x
            }
            // No broadcasting: both operands have one shape.
            ElementwiseOp::Binary(BinaryKind::SwiGlu) => {
                let (a, b) = (x()?, arg(ins, 1, "second operand")?.shape.clone());
                if a != b {
                    return Err(ShapeError::new(format!("SwiGLU: operands {a} and {b} differ")));
                }
                a
            }
            ElementwiseOp::Eltwise { .. } | ElementwiseOp::Compare(_) | ElementwiseOp::Binary(_) | ElementwiseOp::Where => {
                let shapes = value::present_shapes(ins)?;
                let min = match self {
                    ElementwiseOp::Where => 3,
                    ElementwiseOp::Eltwise { .. } => 1,
                    _ => 2,
                };
                if shapes.len() < min {
                    return Err(ShapeError::new(format!("{} needs {min} inputs", self.name())));
                }
                eltwise_shape(&shapes, true)?
            }
            ElementwiseOp::Axpy => return self.infer_shapes(&value::present_shapes(ins)?, n_outputs),
        };
        known(shape, n_outputs)
    }

    fn out_dtype(&self, ins: &[Option<Input<'_>>], index: usize) -> Option<DType> {
        match self {
            ElementwiseOp::Compare(_) => Some(DType::Bool),
            ElementwiseOp::Dropout { .. } if index == 1 => Some(DType::Bool),
            ElementwiseOp::Unary(UnaryKind::IsNaN | UnaryKind::IsInf) => Some(DType::Bool),
            ElementwiseOp::Unary(UnaryKind::Random { dtype }) => *dtype,
            ElementwiseOp::Unary(UnaryKind::BitCast { to }) => Some(*to),
            ElementwiseOp::Cast { to: Some(t) } => Some(*t),
            ElementwiseOp::Cast { to: None } => ins.get(1).copied().flatten().map(|x| x.dtype),
            ElementwiseOp::Where => ins.get(1).copied().flatten().map(|x| x.dtype),
            ElementwiseOp::Activation(_)
            | ElementwiseOp::PRelu { .. }
            | ElementwiseOp::Dropout { .. }
            | ElementwiseOp::Eltwise { .. }
            | ElementwiseOp::Axpy
            | ElementwiseOp::Softmax { .. }
            | ElementwiseOp::Binary(_)
            | ElementwiseOp::Unary(_) => None,
        }
    }

    fn eval(&self, ins: &[Option<Input<'_>>], outputs: &[&Shape]) -> Option<Vec<Value>> {
        let out = *outputs.first()?;
        let x = ins.first().copied().flatten()?;
        let out_dtype = self.out_dtype(ins, 0).unwrap_or(x.dtype);
        let all: Vec<(&Value, &Shape)> = ins.iter().map(|i| i.and_then(|i| Some((i.value?, i.shape)))).collect::<Option<_>>()?;
        let unary = |fi: &dyn Fn(i64) -> Option<i64>, ff: &dyn Fn(f64) -> Option<f64>| {
            broadcast_map(&all[..1], out, out_dtype, |a| fi(a[0]), |a| ff(a[0]))
        };
        let binary = |fi: &dyn Fn(i64, i64) -> Option<i64>, ff: &dyn Fn(f64, f64) -> Option<f64>| {
            broadcast_map(all.get(..2)?, out, out_dtype, |a| fi(a[0], a[1]), |a| ff(a[0], a[1]))
        };
        let v = match self {
            ElementwiseOp::Activation(a) => match a {
                Activation::Identity => x.value?.clone(),
                Activation::Neg => unary(&|i| i.checked_neg(), &|f| Some(-f))?,
                Activation::AbsVal => unary(&|i| i.checked_abs(), &|f| Some(f.abs()))?,
                Activation::Relu { negative_slope } if *negative_slope == 0.0 => unary(&|i| Some(i.max(0)), &|f| Some(f.max(0.0)))?,
                Activation::Sqrt => unary(&|_| None, &|f| Some(f.sqrt()))?,
                Activation::Reciprocal => unary(&|_| None, &|f| Some(1.0 / f))?,
                _ => return None,
            },
            ElementwiseOp::Cast { .. } => value::cast(x.value?, out_dtype)?,
            ElementwiseOp::Unary(k) => k.eval(&all, ins, out, out_dtype)?,
            ElementwiseOp::Eltwise { kind, .. } => eltwise_value(*kind, &all, out, out_dtype)?,
            ElementwiseOp::Binary(k) => match k {
                BinaryKind::Pow => binary(&|a, b| u32::try_from(b).ok().and_then(|b| a.checked_pow(b)), &|a, b| Some(a.powf(b)))?,
                BinaryKind::Mod { fmod: false } => binary(&|a, b| a.checked_rem_euclid(b).map(|r| if r != 0 && b < 0 { r + b } else { r }), &|a, b| {
                    let r = a % b;
                    Some(if r != 0.0 && (r < 0.0) != (b < 0.0) { r + b } else { r })
                })?,
                BinaryKind::Mod { fmod: true } => binary(&|a, b| a.checked_rem(b), &|a, b| Some(a % b))?,
                BinaryKind::BitShift { left } => {
                    let left = *left;
                    binary(&move |a, b| u32::try_from(b).ok().filter(|&b| b < 64).map(|b| if left { a << b } else { ((a as u64) >> b) as i64 }), &|_, _| None)?
                }
                BinaryKind::BitAnd => binary(&|a, b| Some(a & b), &|_, _| None)?,
                BinaryKind::BitOr => binary(&|a, b| Some(a | b), &|_, _| None)?,
                BinaryKind::BitXor => binary(&|a, b| Some(a ^ b), &|_, _| None)?,
                BinaryKind::SwiGlu => return None,
            },
            ElementwiseOp::Compare(k) => compare_value(*k, &all, out)?,
            ElementwiseOp::Where => {
                let (c, a, b) = (all.first()?, all.get(1)?, all.get(2)?);
                let cond = c.0.ints()?;
                let (mc, ma, mb) = (
                    value::broadcast_index(c.1.dims(), out.dims())?,
                    value::broadcast_index(a.1.dims(), out.dims())?,
                    value::broadcast_index(b.1.dims(), out.dims())?,
                );
                match (a.0, b.0) {
                    (Value::Int(x), Value::Int(y)) => {
                        Value::Int((0..mc.len()).map(|e| if cond[mc[e]] != 0 { x[ma[e]] } else { y[mb[e]] }).collect())
                    }
                    (Value::Float(x), Value::Float(y)) => {
                        Value::Float((0..mc.len()).map(|e| if cond[mc[e]] != 0 { x[ma[e]] } else { y[mb[e]] }).collect())
                    }
                    _ => return None,
                }
            }
            ElementwiseOp::PRelu { .. } | ElementwiseOp::Dropout { .. } | ElementwiseOp::Axpy | ElementwiseOp::Softmax { .. } => {
                return None
            }
        };
        Some(vec![v])
    }
}

/// Values of the n-ary arithmetic (Add, Sub, Mul, Div, Max, Min, Mean).
fn eltwise_value(kind: EltwiseKind, all: &[(&Value, &Shape)], out: &Shape, dtype: DType) -> Option<Value> {
    if all.len() < 2 && !matches!(kind, EltwiseKind::Sum | EltwiseKind::Max | EltwiseKind::Min | EltwiseKind::Mean) {
        return None;
    }
    let n = all.len() as f64;
    match kind {
        EltwiseKind::Sum => broadcast_map(all, out, dtype, |a| a.iter().try_fold(0i64, |s, &x| s.checked_add(x)), |a| Some(a.iter().sum())),
        EltwiseKind::Sub => broadcast_map(all, out, dtype, |a| a[0].checked_sub(a[1]), |a| Some(a[0] - a[1])),
        EltwiseKind::Prod => broadcast_map(all, out, dtype, |a| a.iter().try_fold(1i64, |s, &x| s.checked_mul(x)), |a| Some(a.iter().product())),
        // Integer division truncates toward zero (C, and the ONNX reference's cast back).
        EltwiseKind::Div => broadcast_map(all, out, dtype, |a| a[0].checked_div(a[1]), |a| Some(a[0] / a[1])),
        EltwiseKind::Max => broadcast_map(all, out, dtype, |a| a.iter().copied().max(), |a| {
            if a.iter().any(|x| x.is_nan()) { None } else { a.iter().copied().reduce(f64::max) }
        }),
        EltwiseKind::Min => broadcast_map(all, out, dtype, |a| a.iter().copied().min(), |a| {
            if a.iter().any(|x| x.is_nan()) { None } else { a.iter().copied().reduce(f64::min) }
        }),
        EltwiseKind::Mean => broadcast_map(all, out, dtype, |_| None, |a| Some(a.iter().sum::<f64>() / n)),
    }
}

/// Values of a comparison or logical op (0/1).
fn compare_value(k: CompareKind, all: &[(&Value, &Shape)], out: &Shape) -> Option<Value> {
    let b = |x: bool| i64::from(x);
    let bd = DType::Bool;
    match k {
        CompareKind::Not => broadcast_map(all.get(..1)?, out, bd, |a| Some(b(a[0] == 0)), |_| None),
        CompareKind::Equal => broadcast_map(all.get(..2)?, out, bd, |a| Some(b(a[0] == a[1])), |a| Some(b(a[0] == a[1]) as f64)),
        CompareKind::Less => broadcast_map(all.get(..2)?, out, bd, |a| Some(b(a[0] < a[1])), |a| Some(b(a[0] < a[1]) as f64)),
        CompareKind::LessOrEqual => broadcast_map(all.get(..2)?, out, bd, |a| Some(b(a[0] <= a[1])), |a| Some(b(a[0] <= a[1]) as f64)),
        CompareKind::Greater => broadcast_map(all.get(..2)?, out, bd, |a| Some(b(a[0] > a[1])), |a| Some(b(a[0] > a[1]) as f64)),
        CompareKind::GreaterOrEqual => broadcast_map(all.get(..2)?, out, bd, |a| Some(b(a[0] >= a[1])), |a| Some(b(a[0] >= a[1]) as f64)),
        CompareKind::And => broadcast_map(all.get(..2)?, out, bd, |a| Some(b(a[0] != 0 && a[1] != 0)), |_| None),
        CompareKind::Or => broadcast_map(all.get(..2)?, out, bd, |a| Some(b(a[0] != 0 || a[1] != 0)), |_| None),
        CompareKind::Xor => broadcast_map(all.get(..2)?, out, bd, |a| Some(b((a[0] != 0) != (a[1] != 0))), |_| None),
    }
}

/// Pointwise math of one input besides the activations: what backward keeps
/// follows each derivative.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum UnaryKind {
    /// Largest integer not above x.
    Floor,
    /// Smallest integer not below x.
    Ceil,
    /// Halves round to even.
    Round,
    /// −1, 0 or 1 by the sign of x.
    Sign,
    /// cos x.
    Cos,
    /// sin x.
    Sin,
    /// tan x.
    Tan,
    /// arccos x.
    Acos,
    /// arcsin x.
    Asin,
    /// arctan x.
    Atan,
    /// sinh x.
    Sinh,
    /// cosh x.
    Cosh,
    /// arsinh x.
    Asinh,
    /// arcosh x.
    Acosh,
    /// artanh x.
    Atanh,
    /// Whether x is NaN (boolean).
    IsNaN,
    /// Whether x is ±∞ (boolean).
    IsInf,
    /// Bitwise complement of an integer.
    BitwiseNot,
    /// x / (1 + |x|).
    Softsign,
    /// x · tanh(softplus(x)).
    Mish,
    /// x where x > alpha, else 0.
    ThresholdedRelu,
    /// Soft or hard shrinkage towards zero by lambda.
    Shrink,
    /// The upper (or lower) triangle of the last two axes, the rest zero; the
    /// diagonal offset k is an optional input.
    Trilu {
        /// The upper triangle (else the lower).
        upper: bool,
    },
    /// One-hot of the maximum along an axis.
    Hardmax,
    /// Lp normalisation along an axis.
    LpNorm,
    /// Mean/variance normalisation over axes.
    MeanVarianceNorm,
    /// Random values shaped like the input (RandomNormalLike, RandomUniformLike,
    /// Bernoulli), of `dtype` (`None`: the input's).
    Random {
        /// The output type.
        dtype: Option<DType>,
    },
    /// The same bits read as another type of the same width (ONNX BitCast).
    BitCast {
        /// The type the bits are read as.
        to: DType,
    },
}

impl UnaryKind {
    /// The op's name in reports (the ONNX spelling).
    pub fn name(self) -> &'static str {
        match self {
            UnaryKind::Floor => "Floor",
            UnaryKind::Ceil => "Ceil",
            UnaryKind::Round => "Round",
            UnaryKind::Sign => "Sign",
            UnaryKind::Cos => "Cos",
            UnaryKind::Sin => "Sin",
            UnaryKind::Tan => "Tan",
            UnaryKind::Acos => "Acos",
            UnaryKind::Asin => "Asin",
            UnaryKind::Atan => "Atan",
            UnaryKind::Sinh => "Sinh",
            UnaryKind::Cosh => "Cosh",
            UnaryKind::Asinh => "Asinh",
            UnaryKind::Acosh => "Acosh",
            UnaryKind::Atanh => "Atanh",
            UnaryKind::IsNaN => "IsNaN",
            UnaryKind::IsInf => "IsInf",
            UnaryKind::BitwiseNot => "BitwiseNot",
            UnaryKind::Softsign => "Softsign",
            UnaryKind::Mish => "Mish",
            UnaryKind::ThresholdedRelu => "ThresholdedRelu",
            UnaryKind::Shrink => "Shrink",
            UnaryKind::Trilu { .. } => "Trilu",
            UnaryKind::Hardmax => "Hardmax",
            UnaryKind::LpNorm => "LpNorm",
            UnaryKind::MeanVarianceNorm => "MeanVarianceNorm",
            UnaryKind::Random { .. } => "Random",
            UnaryKind::BitCast { .. } => "BitCast",
        }
    }

    /// Derivative-based: rounding and sign have a zero derivative (nothing
    /// kept); trigonometric and hyperbolic functions and the smooth
    /// activations need their input, tan its output (1 + tan²); a triangular
    /// mask is linear; tests, bitwise ops, hardmax and random draws have no
    /// gradient; normalisations keep their input (and Lp its output, the norm).
    pub fn memory(self) -> MemoryFacts {
        let input = MemoryFacts { saves_inputs: vec![0], ..Default::default() };
        match self {
            UnaryKind::Floor | UnaryKind::Ceil | UnaryKind::Round | UnaryKind::Sign | UnaryKind::Trilu { .. } => {
                MemoryFacts::default()
            }
            UnaryKind::Tan => MemoryFacts { saves_outputs: vec![0], ..Default::default() },
            UnaryKind::Cos
            | UnaryKind::Sin
            | UnaryKind::Acos
            | UnaryKind::Asin
            | UnaryKind::Atan
            | UnaryKind::Sinh
            | UnaryKind::Cosh
            | UnaryKind::Asinh
            | UnaryKind::Acosh
            | UnaryKind::Atanh
            | UnaryKind::Softsign
            | UnaryKind::Mish
            | UnaryKind::ThresholdedRelu
            | UnaryKind::Shrink
            | UnaryKind::MeanVarianceNorm => input,
            UnaryKind::LpNorm => MemoryFacts { saves_inputs: vec![0], saves_outputs: vec![0], ..Default::default() },
            UnaryKind::IsNaN
            | UnaryKind::IsInf
            | UnaryKind::BitwiseNot
            | UnaryKind::Hardmax
            | UnaryKind::Random { .. }
            | UnaryKind::BitCast { .. } => no_grad(),
        }
    }

    fn eval(self, all: &[(&Value, &Shape)], ins: &[Option<Input<'_>>], out: &Shape, dtype: DType) -> Option<Value> {
        let one = all.get(..1)?;
        let f = |fi: fn(i64) -> Option<i64>, ff: fn(f64) -> Option<f64>| broadcast_map(one, out, dtype, |a| fi(a[0]), |a| ff(a[0]));
        match self {
            UnaryKind::Floor => f(Some, |x| Some(x.floor())),
            UnaryKind::Ceil => f(Some, |x| Some(x.ceil())),
            UnaryKind::Round => f(Some, |x| Some(x.round_ties_even())),
            UnaryKind::Sign => f(|x| Some(x.signum()), |x| Some(if x > 0.0 { 1.0 } else if x < 0.0 { -1.0 } else { x })),
            UnaryKind::IsNaN => broadcast_map(one, out, DType::Bool, |_| Some(0), |a| Some(f64::from(u8::from(a[0].is_nan())))),
            UnaryKind::IsInf => broadcast_map(one, out, DType::Bool, |_| Some(0), |a| Some(f64::from(u8::from(a[0].is_infinite())))),
            UnaryKind::BitwiseNot => f(|x| Some(!x), |_| None),
            UnaryKind::Trilu { upper } => trilu_value(upper, all.first()?, ins, out),
            _ => None,
        }
    }
}

/// Trilu on a known value: keeps `j − i ≥ k` (upper) or `j − i ≤ k` (lower)
/// in the last two axes.
fn trilu_value(upper: bool, x: &(&Value, &Shape), ins: &[Option<Input<'_>>], out: &Shape) -> Option<Value> {
    let k = match ins.get(1).copied().flatten() {
        Some(k) => k.value?.scalar_int()?,
        None => 0,
    };
    let d = x.1.dims();
    if d.len() < 2 || x.1 != out {
        return None;
    }
    let (rows, cols) = (d[d.len() - 2] as i64, d[d.len() - 1] as i64);
    let keep = |e: usize| {
        let e = e as i64;
        let (i, j) = ((e / cols) % rows, e % cols);
        if upper { j - i >= k } else { j - i <= k }
    };
    match x.0 {
        Value::Int(v) => Some(Value::Int(v.iter().enumerate().map(|(e, &a)| if keep(e) { a } else { 0 }).collect())),
        Value::Float(v) => Some(Value::Float(v.iter().enumerate().map(|(e, &a)| if keep(e) { a } else { 0.0 }).collect())),
    }
}

/// Element-wise predicates and logic: boolean outputs, no gradient.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CompareKind {
    /// a = b.
    Equal,
    /// a < b.
    Less,
    /// a ≤ b.
    LessOrEqual,
    /// a > b.
    Greater,
    /// a ≥ b.
    GreaterOrEqual,
    /// Logical and.
    And,
    /// Logical or.
    Or,
    /// Logical exclusive or.
    Xor,
    /// Logical not (one operand).
    Not,
}

impl CompareKind {
    /// The op's name in reports (the ONNX spelling).
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
    /// Remainder: the sign of the divisor, or of the dividend with `fmod`;
    /// gradient only through the dividend.
    Mod {
        /// C's fmod (the dividend's sign) rather than Python's modulo.
        fmod: bool,
    },
    /// Integer shifts (no gradient).
    BitShift {
        /// Shift left (else right).
        left: bool,
    },
    /// Bitwise and.
    BitAnd,
    /// Bitwise or.
    BitOr,
    /// Bitwise exclusive or.
    BitXor,
    /// Swish(a)·b of two operands of one shape (ONNX SwiGLU).
    SwiGlu,
}

impl BinaryKind {
    /// The op's name in reports (the ONNX spelling).
    pub fn name(self) -> &'static str {
        match self {
            BinaryKind::Pow => "Pow",
            BinaryKind::Mod { .. } => "Mod",
            BinaryKind::BitShift { .. } => "BitShift",
            BinaryKind::BitAnd => "BitwiseAnd",
            BinaryKind::BitOr => "BitwiseOr",
            BinaryKind::BitXor => "BitwiseXor",
            BinaryKind::SwiGlu => "SwiGLU",
        }
    }
}

/// Same-shape functions of one input. Which value backward needs differs: see
/// `Activation::backward_uses_output`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Activation {
    /// max(x, 0), or a leaky slope below zero.
    Relu {
        /// Slope for x < 0 (0: plain ReLU; Caffe's negative_slope, LeakyRelu's alpha).
        negative_slope: f32,
    },
    /// 1 / (1 + e^−x).
    Sigmoid,
    /// tanh x.
    Tanh,
    /// The absolute value (Caffe AbsVal, ONNX Abs).
    AbsVal,
    /// log(1 + e^x) (Caffe BNLL).
    Bnll,
    /// e^x.
    Exp,
    /// ln x.
    Log,
    /// x for x > 0, alpha·(e^x − 1) else (also SELU, CELU).
    Elu,
    /// (shift + scale·x)^power (Caffe Power).
    Power,
    /// 1 where x > threshold, else 0 (Caffe Threshold).
    Threshold,
    /// x clamped to [min, max] (ReLU6 too).
    Clip,
    /// x·Φ(x), exact or tanh-approximated.
    Gelu,
    /// x·sigmoid(x) (Swish).
    Silu,
    /// clamp(alpha·x + beta, 0, 1).
    HardSigmoid,
    /// x · hard-sigmoid(x).
    HardSwish,
    /// log(1 + e^x).
    Softplus,
    /// The error function.
    Erf,
    /// √x.
    Sqrt,
    /// 1 / x.
    Reciprocal,
    /// −x.
    Neg,
    /// A value copy or cast (ONNX Identity, Cast): no compute, same shape.
    Identity,
}

impl Activation {
    /// The op's name in reports (Caffe's or ONNX's spelling).
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

/// How Eltwise combines its operands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EltwiseKind {
    /// Their sum.
    Sum,
    /// Their difference (first minus the others).
    Sub,
    /// Their product.
    Prod,
    /// Their quotient.
    Div,
    /// Their maximum.
    Max,
    /// Their minimum.
    Min,
    /// The mean of the operands (ONNX Mean).
    Mean,
}

impl EltwiseKind {
    /// The name reports use for the combination.
    pub fn name(self) -> &'static str {
        match self {
            EltwiseKind::Sum => "Add",
            EltwiseKind::Sub => "Sub",
            EltwiseKind::Prod => "Mul",
            EltwiseKind::Div => "Div",
            EltwiseKind::Max => "Max",
            EltwiseKind::Min => "Min",
            EltwiseKind::Mean => "Mean",
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
        EltwiseKind::Sum | EltwiseKind::Sub | EltwiseKind::Mean => MemoryFacts::default(),
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
