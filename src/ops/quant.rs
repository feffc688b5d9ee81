//! Quantisation: ONNX's QuantizeLinear, DequantizeLinear and
//! DynamicQuantizeLinear, and ONNX Runtime's MatMulNBits (com.microsoft).
//!
//! QuantizeLinear and DequantizeLinear keep x's shape whatever the
//! granularity (per tensor, per axis, block-wise: only the scale's shape
//! differs). Element types: QuantizeLinear writes `output_dtype` when set,
//! else the zero point's type, else uint8; DequantizeLinear writes
//! `output_dtype` when set, else the scale's type. DynamicQuantizeLinear: y
//! (uint8, x's shape), its scale (f32 scalar) and zero point (uint8 scalar).
//! MatMulNBits: A [.., K] times the packed weight [N, K] → [.., N].
//!
//! The stored weights of a quantised graph (the integer tensor a
//! DequantizeLinear reads, MatMulNBits' packed blocks and zero points) are
//! parameters at their stored element size; the loader marks those input
//! positions (`TypeFacts::stored_weights`) and counts their parameters as the
//! logical weight's elements (src/load/onnx/quantised.rs).

use super::value::{shape_arg, Input};
use super::{no_grad, ConvGeometry, Family, MemoryFacts, OutShape, ParamSpec, ScheduleFacts};
use crate::tensor::{DType, Shape, ShapeError};

/// The quantisation family.
#[derive(Clone, Debug, PartialEq)]
pub enum QuantOp {
    /// QuantizeLinear; `output` from the `output_dtype` attribute.
    Quantize {
        /// The output type (`None`: from the zero point, else uint8).
        output: Option<DType>,
    },
    /// DequantizeLinear; `output` from the `output_dtype` attribute.
    Dequantize {
        /// The output type (`None`: the scale's).
        output: Option<DType>,
    },
    /// DynamicQuantizeLinear: y, y_scale, y_zero_point.
    DynamicQuantize,
    /// MatMulNBits: `k` input features, `n` output features.
    MatMulNBits {
        /// Input features K.
        k: u64,
        /// Output features N.
        n: u64,
    },
}

impl Family for QuantOp {
    fn name(&self) -> &'static str {
        match self {
            QuantOp::Quantize { .. } => "Quantize",
            QuantOp::Dequantize { .. } => "Dequantize",
            QuantOp::DynamicQuantize => "DynamicQuantize",
            QuantOp::MatMulNBits { .. } => "MatMulNBits",
        }
    }

    fn infer_shapes(&self, inputs: &[&Shape], n_outputs: usize) -> Result<Vec<OutShape>, ShapeError> {
        let x = super::first(inputs)?;
        match self {
            QuantOp::Quantize { .. } | QuantOp::Dequantize { .. } => super::known(x.clone(), n_outputs),
            QuantOp::DynamicQuantize => {
                if n_outputs > 3 {
                    return Err(ShapeError::new(format!("the node declares {n_outputs} outputs, at most 3")));
                }
                let mut outs = vec![OutShape::Known(x.clone())];
                outs.extend((1..n_outputs).map(|_| OutShape::Known(Shape::scalar())));
                Ok(outs)
            }
            QuantOp::MatMulNBits { k, n } => {
                let mut d = x.dims().to_vec();
                match d.last_mut() {
                    Some(last) if *last == *k => *last = *n,
                    _ => return Err(ShapeError::new(format!("input {x} does not end in K = {k}"))),
                }
                super::known(Shape(d), n_outputs)
            }
        }
    }

    fn has_weights(&self) -> bool {
        match self {
            QuantOp::MatMulNBits { .. } => true,
            QuantOp::Quantize { .. } | QuantOp::Dequantize { .. } | QuantOp::DynamicQuantize => false,
        }
    }

    /// ONNX weights are initializers, counted as stored; nothing is synthesised.
    fn param_specs(&self, _: &[&Shape]) -> Result<Vec<ParamSpec>, ShapeError> {
        Ok(Vec::new())
    }

    fn schedule_facts(&self) -> ScheduleFacts {
        ScheduleFacts::COMPUTES
    }

    /// (De)quantisation is an affine map per element: backward (a
    /// straight-through estimator in quantisation-aware training) needs no
    /// values. MatMulNBits: dA = dY·W needs only the resident weights.
    fn memory_facts(&self, inputs: &[&Shape], outputs: &[&Shape]) -> MemoryFacts {
        match self {
            QuantOp::Quantize { .. } | QuantOp::Dequantize { .. } => MemoryFacts::default(),
            QuantOp::DynamicQuantize => no_grad(),
            QuantOp::MatMulNBits { k, .. } => {
                let out = outputs.first().and_then(|s| s.elems()).unwrap_or(0);
                let _ = inputs;
                MemoryFacts { saves_params: true, macs: out.saturating_mul(*k), ..Default::default() }
            }
        }
    }

    fn conv_geometry(&self, _: Option<&Shape>, _: &[&Shape]) -> Option<ConvGeometry> {
        None
    }

    fn infer(&self, ins: &[Option<Input<'_>>], n_outputs: usize) -> Result<Vec<OutShape>, ShapeError> {
        let x = shape_arg(ins, 0, "data input")?;
        self.infer_shapes(&[x], n_outputs)
    }

    fn out_dtype(&self, ins: &[Option<Input<'_>>], index: usize) -> Option<DType> {
        let dtype_of = |i: usize| ins.get(i).copied().flatten().map(|x| x.dtype);
        match self {
            QuantOp::Quantize { output } => output.or_else(|| dtype_of(2)).or(Some(DType::U8)),
            QuantOp::Dequantize { output } => output.or_else(|| dtype_of(1)),
            QuantOp::DynamicQuantize => Some(if index == 1 { DType::F32 } else { DType::U8 }),
            QuantOp::MatMulNBits { .. } => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(d: &[u64]) -> Shape {
        Shape(d.to_vec())
    }

    #[test]
    fn dequantize_takes_the_scale_type_and_quantize_the_zero_point_type() {
        let (x, sc, zp) = (s(&[4, 8]), s(&[4, 2]), s(&[4, 2]));
        let ins = [
            Some(Input { shape: &x, dtype: DType::Packed4, value: None }),
            Some(Input { shape: &sc, dtype: DType::F16, value: None }),
            Some(Input { shape: &zp, dtype: DType::Packed4, value: None }),
        ];
        let dq = QuantOp::Dequantize { output: None };
        assert_eq!(dq.infer(&ins, 1).unwrap(), vec![OutShape::Known(s(&[4, 8]))]);
        assert_eq!(dq.out_dtype(&ins, 0), Some(DType::F16));
        assert_eq!(QuantOp::Dequantize { output: Some(DType::F32) }.out_dtype(&ins, 0), Some(DType::F32));
        assert_eq!(QuantOp::Quantize { output: None }.out_dtype(&ins, 0), Some(DType::Packed4));
        assert_eq!(QuantOp::Quantize { output: None }.out_dtype(&ins[..2], 0), Some(DType::U8));
    }

    #[test]
    fn matmul_nbits_maps_k_to_n() {
        let op = QuantOp::MatMulNBits { k: 64, n: 32 };
        assert_eq!(op.infer_shapes(&[&s(&[2, 5, 64])], 1).unwrap(), vec![OutShape::Known(s(&[2, 5, 32]))]);
        assert!(op.infer_shapes(&[&s(&[2, 5, 63])], 1).is_err());
        assert_eq!(op.memory_facts(&[&s(&[2, 5, 64])], &[&s(&[2, 5, 32])]).macs, 2 * 5 * 32 * 64);
    }
}
