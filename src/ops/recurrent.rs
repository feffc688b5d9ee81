//! Caffe's unrolled recurrent layers LSTM and RNN, and a single-layer LSTM
//! that stores its weights as W_ih, W_hh and one bias.
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
    /// An LSTM over x (T, N, I) with blobs W_ih (4H, I), W_hh (4H, H), b (4H)
    /// and gates in the order i, f, o, g (the caffe_ocr fork's `Lstm`); the
    /// continuation input is optional.
    LstmIhHh,
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
            RecurrentKind::Lstm | RecurrentKind::LstmIhHh => "LSTM",
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
        match self.kind {
            RecurrentKind::Lstm | RecurrentKind::Rnn => recurrent_memory(outputs.first().copied()),
            RecurrentKind::LstmIhHh => lstm_ih_hh_memory(outputs.first().copied()),
        }
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
    if p.kind == RecurrentKind::LstmIhHh {
        // The input width is axis 2 of a T×N×I sequence.
        let [_, _, i] = x.dims() else {
            return Err(ShapeError::new(format!("expected a T×N×I sequence, got {x}")));
        };
        let gates = p.num_output.checked_mul(4).ok_or_else(|| overflow("gate width"))?;
        return Ok(vec![
            ParamSpec::learned("w_ih", vec![gates, *i]),
            ParamSpec::learned("w_hh", vec![gates, p.num_output]),
            ParamSpec::learned("bias", vec![gates]),
        ]);
    }
    let d = checked_product(x.dims().get(2..).unwrap_or(&[])).ok_or_else(|| overflow("input width"))?;
    let h = p.num_output;
    let gates = match p.kind {
        RecurrentKind::Lstm | RecurrentKind::LstmIhHh => h.checked_mul(4).ok_or_else(|| overflow("gate width"))?,
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

/// Memory facts of the W_ih/W_hh LSTM: the input, the pre-activation and
/// activated gates (T, N, 4H) each, and the cell states (T, N, H).
pub fn lstm_ih_hh_memory(output: Option<&Shape>) -> MemoryFacts {
    let elems = output.and_then(|s| s.elems()).unwrap_or(0);
    MemoryFacts {
        saves_inputs: vec![0],
        saves_params: true,
        extra_saved: vec![
            ExtraSaved { what: "gates before and after activation", elems: elems.saturating_mul(8), dtype: SavedType::Compute },
            ExtraSaved { what: "cell states", elems, dtype: SavedType::Compute },
        ],
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ih_hh_lstm_stores_three_blobs() {
        // caffe_ocr: I = 384, H = 256 → 4·256·(384 + 256 + 1) = 656,384.
        let p = RecurrentParams { kind: RecurrentKind::LstmIhHh, num_output: 256, expose_hidden: false };
        let x = Shape::new(vec![35, 1, 384]);
        let specs = recurrent_params(&p, &[&x]).unwrap();
        let shapes: Vec<Vec<u64>> = specs.iter().map(|s| s.shape.dims().to_vec()).collect();
        assert_eq!(shapes, vec![vec![1024, 384], vec![1024, 256], vec![1024]]);
        assert_eq!(specs.iter().map(|s| s.shape.elems().unwrap()).sum::<u64>(), 656_384);
        assert_eq!(recurrent_shapes(&p, &[&x], 1).unwrap()[0], OutShape::Known(Shape::new(vec![35, 1, 256])));
    }

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
