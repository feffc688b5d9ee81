//! The op facts the memory pass reads. Everything per operator lives beside
//! its shape rule (`Op::memory_facts` in `src/ops/`); this wrapper is the one
//! place the pass asks, so folding rules in `schedule` stay separate from them.

use crate::graph::Shape;
use crate::ops::{MemoryFacts, Op};

/// Memory facts of `op` for these input and output shapes.
pub(crate) fn facts(op: &Op, inputs: &[&Shape], outputs: &[&Shape]) -> MemoryFacts {
    op.memory_facts(inputs, outputs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::DType;
    use crate::ops::{Activation, EltwiseKind, PoolMethod};
    use crate::ops::{PoolParams, Rounding, Window};

    #[test]
    fn max_pool_keeps_int64_indices_per_output() {
        let p = PoolParams {
            method: PoolMethod::Max,
            window: Window::symmetric(vec![2, 2], vec![2, 2], vec![0, 0], vec![1, 1]),
            rounding: Rounding::Floor,
            global: false,
            clip_last_window: false,
        };
        let i = Shape::new(vec![1, 64, 112, 112]);
        let o = Shape::new(vec![1, 64, 56, 56]);
        let f = facts(&Op::Pool(p), &[&i], &[&o]);
        assert_eq!(f.saves_inputs, vec![0]);
        assert_eq!(f.extra_saved[0].elems, 64 * 56 * 56);
        assert_eq!(f.extra_saved[0].dtype, Some(DType::I64));
    }

    #[test]
    fn relu_keeps_its_output_and_may_run_in_place() {
        let s = Shape::new(vec![1, 8]);
        let f = facts(&Op::Activation(Activation::Relu { negative_slope: 0.0 }), &[&s], &[&s]);
        assert_eq!(f.saves_outputs, vec![0]);
        assert!(f.saves_inputs.is_empty());
        assert!(f.in_place_ok);
    }

    #[test]
    fn add_keeps_nothing() {
        let s = Shape::new(vec![1, 8]);
        let f = facts(&Op::Eltwise { kind: EltwiseKind::Sum, broadcast: false }, &[&s, &s], &[&s]);
        assert_eq!(f, MemoryFacts::default());
    }

    #[test]
    fn clip_keeps_its_input_and_says_so() {
        let s = Shape::new(vec![1, 8]);
        let f = facts(&Op::Activation(Activation::Clip), &[&s], &[&s]);
        assert_eq!(f.saves_inputs, vec![0]);
        assert!(f.saves_outputs.is_empty());
        assert!(!Activation::Clip.backward_uses_output());
        assert!(f.in_place_ok);
    }
}
