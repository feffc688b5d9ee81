//! Recurrent layers: Caffe's unrolled LSTM and RNN, a single-layer LSTM that
//! stores its weights as W_ih, W_hh and one bias (`RecurrentParams`), and
//! ONNX's LSTM, GRU and RNN over a whole sequence (`SequenceParams`).
//!
//! Caffe inputs: x (T, N, …), cont (T, N), optionally a static input (N, …).
//! Output: (T, N, H) with H = num_output; `expose_hidden` adds the final
//! states as (1, N, H) tops.
//!
//! ONNX: X (T, N, I), or (N, T, I) with `layout` 1; weights W (D, G·H, I),
//! R (D, G·H, H), B (D, 2·G·H) with G gates (LSTM 4, GRU 3, RNN 1) and D
//! directions (2 when bidirectional). Outputs Y (T, D, N, H) — (N, T, D, H)
//! with layout 1 —, the last hidden state Y_h (D, N, H) — (N, D, H) — and,
//! for the LSTM, the last cell state Y_c shaped as Y_h.

use super::{nth, overflow, ConvGeometry, ExtraSaved, Family, MemoryFacts, OutShape, ParamSpec, SavedType, ScheduleFacts};
use super::value::Input;
use crate::tensor::{checked_product, Shape, ShapeError};

/// Which recurrent layer of Caffe.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RecurrentKind {
    /// Caffe LSTM: W_xc (4H, I), b_c (4H), W_hc (4H, H); gates i, f, o, g.
    Lstm,
    /// Caffe RNN (tanh cell).
    Rnn,
    /// An LSTM over x (T, N, I) with blobs W_ih (4H, I), W_hh (4H, H), b (4H)
    /// and gates in the order i, f, o, g (the caffe_ocr fork's `Lstm`); the
    /// continuation input is optional.
    LstmIhHh,
}

/// Caffe LSTM / RNN parameters.
#[derive(Clone, Debug, PartialEq)]
pub struct RecurrentParams {
    /// Which layer.
    pub kind: RecurrentKind,
    /// Hidden units H.
    pub num_output: u64,
    /// Whether the last hidden state is an output.
    pub expose_hidden: bool,
}

impl RecurrentParams {
    /// The report name.
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

/// Caffe LSTM/RNN: (T, N, H) from x (T, N, …), plus the hidden state when exposed.
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

/// Caffe LSTM/RNN weights from the input width and H.
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

/// The cell an ONNX recurrent op runs at every step.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RnnCell {
    /// Four gates and a cell state.
    Lstm,
    /// Three gates.
    Gru,
    /// One activation.
    Rnn,
}

impl RnnCell {
    /// Gates per hidden unit: the rows of W and R are G·H.
    pub fn gates(self) -> u64 {
        match self {
            RnnCell::Lstm => 4,
            RnnCell::Gru => 3,
            RnnCell::Rnn => 1,
        }
    }

    /// Outputs the op declares at most: Y, Y_h and (LSTM) Y_c.
    pub fn max_outputs(self) -> usize {
        match self {
            RnnCell::Lstm => 3,
            RnnCell::Gru | RnnCell::Rnn => 2,
        }
    }
}

/// ONNX LSTM, GRU or RNN over a whole sequence.
#[derive(Clone, Debug, PartialEq)]
pub struct SequenceParams {
    /// LSTM, GRU or RNN.
    pub cell: RnnCell,
    /// `hidden_size`.
    pub hidden: u64,
    /// 1, or 2 when bidirectional.
    pub directions: u64,
    /// `layout` 1: batch first (X is N×T×I, Y is N×T×D×H).
    pub batch_first: bool,
}

/// What a backend's recurrent-kernel rules read about one sequence op
/// (`MemoryFacts::recurrence`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Recurrence {
    /// The cell (None only in a default value).
    pub cell: Option<RnnCell>,
    /// Hidden units H.
    pub hidden: u64,
    /// Directions (1 or 2).
    pub directions: u64,
    /// Time steps and batch.
    pub steps: u64,
    /// Batch rows.
    pub batch: u64,
    /// Width of each step's input.
    pub input_width: u64,
}

impl Recurrence {
    /// Steps × batch.
    pub fn steps_x_batch(&self) -> u64 {
        self.steps.saturating_mul(self.batch)
    }

    /// Gate rows of W and R: G·H.
    pub fn gate_width(&self) -> u64 {
        self.cell.map_or(0, RnnCell::gates).saturating_mul(self.hidden)
    }

    /// Elements of W and R for one direction: G·H·(I + H).
    pub fn weight_elems(&self) -> u64 {
        self.gate_width().saturating_mul(self.input_width.saturating_add(self.hidden))
    }
}

impl Family for SequenceParams {
    fn name(&self) -> &'static str {
        match self.cell {
            RnnCell::Lstm => "LSTM",
            RnnCell::Gru => "GRU",
            RnnCell::Rnn => "RNN",
        }
    }

    fn infer_shapes(&self, inputs: &[&Shape], n_outputs: usize) -> Result<Vec<OutShape>, ShapeError> {
        sequence_shapes(self, nth(inputs, 0, "sequence")?, n_outputs)
    }

    /// Only X matters, and the optional inputs (sequence_lens, initial
    /// states, peepholes) may be left out anywhere after it.
    fn infer(&self, inputs: &[Option<Input<'_>>], n_outputs: usize) -> Result<Vec<OutShape>, ShapeError> {
        let x = inputs.first().copied().flatten().ok_or_else(|| ShapeError::new("an ONNX recurrent op needs its sequence input X"))?;
        sequence_shapes(self, x.shape, n_outputs)
    }

    fn has_weights(&self) -> bool {
        true
    }

    fn param_specs(&self, inputs: &[&Shape]) -> Result<Vec<ParamSpec>, ShapeError> {
        sequence_params(self, nth(inputs, 0, "sequence")?)
    }

    fn schedule_facts(&self) -> ScheduleFacts {
        ScheduleFacts::COMPUTES
    }

    fn memory_facts(&self, inputs: &[&Shape], _: &[&Shape]) -> MemoryFacts {
        sequence_memory(self, inputs.first().copied())
    }

    fn conv_geometry(&self, _: Option<&Shape>, _: &[&Shape]) -> Option<ConvGeometry> {
        None
    }
}

/// (T, N, I) from X, whichever its layout.
fn steps_batch_width(p: &SequenceParams, x: &Shape) -> Result<(u64, u64, u64), ShapeError> {
    match (x.dims(), p.batch_first) {
        ([t, n, i], false) => Ok((*t, *n, *i)),
        ([n, t, i], true) => Ok((*t, *n, *i)),
        _ => Err(ShapeError::new(format!("expected a 3-D sequence, got {x}"))),
    }
}

/// Y, Y_h and (LSTM) Y_c, as many as the node declares.
pub fn sequence_shapes(p: &SequenceParams, x: &Shape, n_outputs: usize) -> Result<Vec<OutShape>, ShapeError> {
    let (t, n, _) = steps_batch_width(p, x)?;
    if n_outputs > p.cell.max_outputs() {
        return Err(ShapeError::new(format!("an ONNX {} has at most {} outputs", p.name(), p.cell.max_outputs())));
    }
    let (d, h) = (p.directions, p.hidden);
    let (y, state) = if p.batch_first { (vec![n, t, d, h], vec![n, d, h]) } else { (vec![t, d, n, h], vec![d, n, h]) };
    let mut outs = vec![OutShape::Known(Shape(y))];
    for _ in 1..n_outputs.max(1) {
        outs.push(OutShape::Known(Shape(state.clone())));
    }
    Ok(outs)
}

/// W (D, G·H, I), R (D, G·H, H) and B (D, 2·G·H).
pub fn sequence_params(p: &SequenceParams, x: &Shape) -> Result<Vec<ParamSpec>, ShapeError> {
    let (_, _, i) = steps_batch_width(p, x)?;
    let gh = p.cell.gates().checked_mul(p.hidden).ok_or_else(|| overflow("gate width"))?;
    let bias = gh.checked_mul(2).ok_or_else(|| overflow("bias width"))?;
    Ok(vec![
        ParamSpec::learned("W", vec![p.directions, gh, i]),
        ParamSpec::learned("R", vec![p.directions, gh, p.hidden]),
        ParamSpec::learned("B", vec![p.directions, bias]),
    ])
}

/// Memory facts of a sequence op: backward needs the input (for dW), the
/// outputs of every step and, per step, the gates (and the LSTM's cell
/// state): G·H (+ H) elements per step, batch and direction, as a framework
/// keeps them when nothing more is known. What a backend really keeps (a
/// oneDNN workspace, per-step tensors) is its rule on `recurrence`.
pub fn sequence_memory(p: &SequenceParams, x: Option<&Shape>) -> MemoryFacts {
    let (t, n, i) = x.and_then(|x| steps_batch_width(p, x).ok()).unwrap_or((0, 0, 0));
    let r = Recurrence { cell: Some(p.cell), hidden: p.hidden, directions: p.directions, steps: t, batch: n, input_width: i };
    let cell_state = if p.cell == RnnCell::Lstm { p.hidden } else { 0 };
    let per_step = r.gate_width().saturating_add(cell_state);
    let elems = r.steps_x_batch().saturating_mul(per_step).saturating_mul(p.directions);
    let macs = r.steps_x_batch().saturating_mul(r.weight_elems()).saturating_mul(p.directions);
    MemoryFacts {
        saves_inputs: vec![0],
        saves_outputs: vec![0],
        saves_params: true,
        extra_saved: vec![ExtraSaved { what: "gates and cell states of every step", elems, dtype: SavedType::Compute }],
        macs,
        recurrence: Some(r),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seq(cell: RnnCell, hidden: u64, directions: u64, batch_first: bool) -> SequenceParams {
        SequenceParams { cell, hidden, directions, batch_first }
    }

    #[test]
    fn sequence_outputs_in_both_layouts_and_directions() {
        let x = Shape::new(vec![128, 2, 256]);
        let lstm = seq(RnnCell::Lstm, 512, 1, false);
        let outs = sequence_shapes(&lstm, &x, 3).unwrap();
        assert_eq!(outs[0], OutShape::Known(Shape::new(vec![128, 1, 2, 512])));
        assert_eq!(outs[1], OutShape::Known(Shape::new(vec![1, 2, 512])));
        assert_eq!(outs[2], outs[1]);
        // Bidirectional GRU, batch first: X (N, T, I) = (2, 128, 256).
        let gru = seq(RnnCell::Gru, 64, 2, true);
        let outs = sequence_shapes(&gru, &Shape::new(vec![2, 128, 256]), 2).unwrap();
        assert_eq!(outs[0], OutShape::Known(Shape::new(vec![2, 128, 2, 64])));
        assert_eq!(outs[1], OutShape::Known(Shape::new(vec![2, 2, 64])));
        // A GRU has no cell state; a 2-D X is not a sequence.
        assert!(sequence_shapes(&gru, &x, 3).is_err());
        assert!(sequence_shapes(&lstm, &Shape::new(vec![128, 256]), 1).is_err());
    }

    #[test]
    fn sequence_weights_and_what_backward_keeps() {
        // LSTM 256 → 512: W 2048×256, R 2048×512, B 4096 (PyTorch's nn.LSTM layer 1).
        let lstm = seq(RnnCell::Lstm, 512, 1, false);
        let x = Shape::new(vec![128, 2, 256]);
        let dims: Vec<Vec<u64>> = sequence_params(&lstm, &x).unwrap().iter().map(|s| s.shape.dims().to_vec()).collect();
        assert_eq!(dims, vec![vec![1, 2048, 256], vec![1, 2048, 512], vec![1, 4096]]);
        let f = sequence_memory(&lstm, Some(&x));
        // 256 steps·batch × (4·512 gates + 512 cell state).
        assert_eq!(f.extra_saved[0].elems, 256 * (2048 + 512));
        assert_eq!((f.saves_inputs.clone(), f.saves_outputs.clone()), (vec![0], vec![0]));
        let r = f.recurrence.unwrap();
        assert_eq!((r.steps_x_batch(), r.gate_width(), r.weight_elems()), (256, 2048, 2048 * 768));
        // An RNN cell has one gate; two directions double what is kept.
        let rnn = sequence_memory(&seq(RnnCell::Rnn, 100, 2, false), Some(&Shape::new(vec![10, 3, 50])));
        assert_eq!(rnn.extra_saved[0].elems, 30 * 100 * 2);
    }

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
