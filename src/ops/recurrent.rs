//! Caffe's unrolled recurrent layers LSTM and RNN.
//!
//! Inputs: x (T, N, …), cont (T, N), optionally a static input (N, …).
//! Output: (T, N, H) with H = num_output; `expose_hidden` adds the final
//! states as (1, N, H) tops.

use super::{nth, overflow, ConvGeometry, ExtraSaved, Family, MemoryFacts, OutShape, ParamSpec, SavedType, ScheduleFacts};
use crate::tensor::{checked_product, Shape, ShapeError};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RecurrentKind {
    Lstm,
    Rnn,
}

#[derive(Clone, Debug, PartialEq)]
pub struct RecurrentParams {
    pub kind: RecurrentKind,
    pub num_output: u64,
    pub expose_hidden: bool,
}

impl RecurrentParams {
    pub fn kind_name(&self) -> &'static str {
        match self.kind {
            RecurrentKind::Lstm => "LSTM",
            RecurrentKind::Rnn => "RNN",
        }
    }
}

/// The recurrent family: one operator, its cell kind a parameter.
impl Family for RecurrentParams {
    fn name(&self) -> &'static str {
        self.kind_name()
    }

    fn infer_shapes(&self, inputs: &[&Shape], n_outputs: usize) -> Result<Vec<OutShape>, ShapeError> {
        recurrent_shapes(self, inputs, n_outputs)
    }

    fn has_weights(&self) -> bool {
        true
    }

    fn param_specs(&self, inputs: &[&Shape]) -> Result<Vec<ParamSpec>, ShapeError> {
        recurrent_params(self, inputs)
    }

    fn schedule_facts(&self) -> ScheduleFacts {
        ScheduleFacts::COMPUTES
    }

    fn memory_facts(&self, _: &[&Shape], outputs: &[&Shape]) -> MemoryFacts {
        recurrent_memory(outputs.first().copied())
    }

    fn conv_geometry(&self, _: Option<&Shape>, _: &[&Shape]) -> Option<ConvGeometry> {
        None
    }
}

pub fn recurrent_shapes(p: &RecurrentParams, inputs: &[&Shape], n_outputs: usize) -> Result<Vec<OutShape>, ShapeError> {
    let x = nth(inputs, 0, "sequence")?;
    let (t, n) = match x.dims() {
        [t, n, ..] => (*t, *n),
        _ => return Err(ShapeError::new(format!("expected a T×N×… sequence, got {x}"))),
    };
    let mut outs = vec![OutShape::Known(Shape(vec![t, n, p.num_output]))];
    for _ in 1..n_outputs {
        outs.push(OutShape::Known(Shape(vec![1, n, p.num_output])));
    }
    Ok(outs)
}

pub fn recurrent_params(p: &RecurrentParams, inputs: &[&Shape]) -> Result<Vec<ParamSpec>, ShapeError> {
    let x = nth(inputs, 0, "sequence")?;
    let d = checked_product(x.dims().get(2..).unwrap_or(&[])).ok_or_else(|| overflow("input width"))?;
    let h = p.num_output;
    let gates = match p.kind {
        RecurrentKind::Lstm => h.checked_mul(4).ok_or_else(|| overflow("gate width"))?,
        RecurrentKind::Rnn => h,
    };
    let mut specs = vec![
        ParamSpec::learned("w_input", vec![gates, d]),
        ParamSpec::learned("b_input", vec![gates]),
    ];
    if let Some(s) = inputs.get(2) {
        let ds = checked_product(s.dims().get(1..).unwrap_or(&[])).ok_or_else(|| overflow("static width"))?;
        specs.push(ParamSpec::learned("w_static", vec![gates, ds]));
    }
    specs.push(ParamSpec::learned("w_hidden", vec![gates, h]));
    if p.kind == RecurrentKind::Rnn {
        // Caffe's RNN also maps the hidden state to its output: W_ho and b_o.
        specs.push(ParamSpec::learned("w_output", vec![h, h]));
        specs.push(ParamSpec::learned("b_output", vec![h]));
    }
    Ok(specs)
}

/// Memory facts of a recurrent layer: every time step's gates are kept, about
/// four hidden-sized vectors per output element.
pub fn recurrent_memory(output: Option<&Shape>) -> MemoryFacts {
    let elems = output.and_then(|s| s.elems()).unwrap_or(0);
    MemoryFacts {
        saves_inputs: vec![0],
        saves_params: true,
        extra_saved: vec![ExtraSaved { what: "gates", elems: elems.saturating_mul(4), dtype: SavedType::Compute }],
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lstm_weights_are_four_gates() {
        // D = 1000, H = 1000: 4000·1000 + 4000 + 4000·1000 = 8,004,000.
        let p = RecurrentParams { kind: RecurrentKind::Lstm, num_output: 1000, expose_hidden: false };
        let x = Shape::new(vec![20, 10, 1000]);
        let cont = Shape::new(vec![20, 10]);
        let n: u64 = recurrent_params(&p, &[&x, &cont]).unwrap().iter().map(|s| s.shape.elems().unwrap()).sum();
        assert_eq!(n, 8_004_000);
        assert_eq!(recurrent_shapes(&p, &[&x, &cont], 1).unwrap()[0], OutShape::Known(Shape::new(vec![20, 10, 1000])));
    }
}
