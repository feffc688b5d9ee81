//! Training-only settings: the optimizer's persistent state and the precision
//! of weights, activations and master copies.

use crate::graph::DType;
use std::fmt;

/// The optimizer, for the state it keeps per trainable weight element.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Optimizer {
    /// Plain SGD: no state.
    Sgd,
    /// SGD with momentum: one velocity buffer.
    Momentum,
    /// Adam: first and second moments.
    Adam,
    /// AdamW: the same two moments (decay is applied to the weights).
    AdamW,
    /// L-BFGS with `history` correction pairs: two flat vectors per pair, plus
    /// five more at a step's peak (see `state_copies`).
    Lbfgs {
        /// Correction pairs kept.
        history: u32,
    },
}

impl Optimizer {
    /// Parses `sgd`, `momentum`, `adam`, `adamw`, `lbfgs` or `lbfgs:HISTORY`.
    pub fn parse(s: &str) -> Option<Self> {
        let lower = s.trim().to_ascii_lowercase();
        let (name, arg) = match lower.split_once(':') {
            Some((n, a)) => (n, Some(a)),
            None => (lower.as_str(), None),
        };
        match (name, arg) {
            ("sgd", None) => Some(Optimizer::Sgd),
            ("momentum", None) => Some(Optimizer::Momentum),
            ("adam", None) => Some(Optimizer::Adam),
            ("adamw", None) => Some(Optimizer::AdamW),
            // PyTorch's default history_size.
            ("lbfgs", None) => Some(Optimizer::Lbfgs { history: 100 }),
            ("lbfgs", Some(h)) => h.parse().ok().map(|history| Optimizer::Lbfgs { history }),
            _ => None,
        }
    }

    /// State tensors per trainable weight element.
    pub fn state_copies(self) -> u64 {
        match self {
            Optimizer::Sgd => 0,
            Optimizer::Momentum => 1,
            Optimizer::Adam | Optimizer::AdamW => 2,
            // H direction and H step vectors, and five more at a step's peak:
            // PyTorch's optim.LBFGS keeps d and prev_flat_grad between calls and
            // holds the flat gradient, y and s of the skipped update and the
            // two-loop buffer q while it evaluates; Lua optim.lbfgs preallocates
            // H+1 direction and H+1 step buffers and keeps tmp1, d and g_old.
            Optimizer::Lbfgs { history } => u64::from(history).saturating_mul(2).saturating_add(5),
        }
    }
}

impl fmt::Display for Optimizer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Optimizer::Sgd => f.write_str("sgd"),
            Optimizer::Momentum => f.write_str("momentum"),
            Optimizer::Adam => f.write_str("adam"),
            Optimizer::AdamW => f.write_str("adamw"),
            Optimizer::Lbfgs { history } => write!(f, "lbfgs:{history}"),
        }
    }
}

/// Parses `f32`, `f16`, `bf16` or `f64` for `--dtype`.
pub fn parse_dtype(s: &str) -> Option<DType> {
    match s.trim().to_ascii_lowercase().as_str() {
        "f32" => Some(DType::F32),
        "f16" => Some(DType::F16),
        "bf16" => Some(DType::BF16),
        "f64" => Some(DType::F64),
        _ => None,
    }
}

/// Element sizes the run uses for each kind of float tensor.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Precision {
    /// Activations, activation gradients, compute copies of weights.
    pub compute: u64,
    /// Stored weights, weight gradients and optimizer state.
    pub master: u64,
    /// Mixed precision keeps a half-precision compute copy of every weight beside the master.
    pub weight_copy: bool,
}

impl Precision {
    /// The precision of a run in `dtype`, mixed or not.
    pub fn new(dtype: DType, mixed: bool) -> Self {
        if mixed {
            // Autocast: half compute, f32 master weights, gradients and state.
            let half = if dtype == DType::BF16 { DType::BF16 } else { DType::F16 };
            Precision { compute: half.size_bytes(), master: 4, weight_copy: true }
        } else {
            Precision { compute: dtype.size_bytes(), master: dtype.size_bytes(), weight_copy: false }
        }
    }

    /// Bytes of a tensor of `dtype` with `elems` elements computed in this precision:
    /// float tensors take the compute size, integer tensors keep their own.
    pub fn activation_bytes(&self, dtype: DType, elems: u64) -> u64 {
        if dtype.is_float() {
            elems.saturating_mul(self.compute)
        } else {
            dtype.bytes_for(elems).unwrap_or(u64::MAX)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn optimizers_parse_with_history() {
        assert_eq!(Optimizer::parse("adamw"), Some(Optimizer::AdamW));
        assert_eq!(Optimizer::parse("lbfgs:10"), Some(Optimizer::Lbfgs { history: 10 }));
        assert_eq!(Optimizer::parse("lbfgs:x"), None);
        assert_eq!(Optimizer::Lbfgs { history: 10 }.state_copies(), 25);
        assert_eq!(Optimizer::Adam.state_copies(), 2);
    }

    #[test]
    fn mixed_precision_halves_activations_only() {
        let p = Precision::new(DType::F32, true);
        assert_eq!(p.activation_bytes(DType::F32, 10), 20);
        assert_eq!(p.activation_bytes(DType::I64, 10), 80);
        assert_eq!(p.master, 4);
    }
}
