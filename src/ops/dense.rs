//! Fully connected layers and matrix products (Caffe InnerProduct, Embed;
//! ONNX Gemm, MatMul, Einsum, Det).
//!
//! Dense: the input is flattened from `axis` on, `K = ∏ shape[axis..]`, output
//! `shape[..axis] + [out]`; weights (out, K) or (K, out) when transposed, bias (out).
//! Einsum: every label's extent from the operands (equal wherever it
//! appears), `...` broadcast numpy-style; the output lists the labels after
//! `->`, or (implicit form) the labels used once, in alphabetical order,
//! after the broadcast `...` dims.

use super::value::{shape_arg, Input};
use super::{
    first, known, nth, overflow, saves_all, ConvGeometry, ExtraSaved, Family, Fusion, InputLayout, MemoryFacts, OutShape,
    ParamSpec, SavedType,
    ScheduleFacts,
};
use crate::tensor::{checked_product, Shape, ShapeError};

/// The dense family.
#[derive(Clone, Debug, PartialEq)]
pub enum DenseOp {
    /// Fully connected over the axes from `axis` on (Caffe InnerProduct, ONNX Gemm).
    Linear(DenseParams),
    /// Batched matrix product of two data inputs (ONNX MatMul).
    MatMul,
    /// A learned table looked up by index (Caffe Embed).
    Embed(EmbedParams),
    /// Einstein summation over the operands (ONNX Einsum), by its equation.
    Einsum {
        /// The equation, as the file states it.
        equation: String,
    },
    /// Determinants of the trailing square matrices (ONNX Det).
    Det,
    /// A fully connected layer whose logit for the label gets an angular
    /// margin (SphereFace's A-Softmax): input 1 is the label; weight (out, K),
    /// no bias; an optional second output holds the current λ, shape (1).
    MarginLinear(MarginParams),
}

impl Family for DenseOp {
    fn name(&self) -> &'static str {
        match self {
            DenseOp::Linear(_) => "Dense",
            DenseOp::MatMul => "MatMul",
            DenseOp::Embed(_) => "Embed",
            DenseOp::Einsum { .. } => "Einsum",
            DenseOp::Det => "Det",
            DenseOp::MarginLinear(_) => "MarginDense",
        }
    }

    fn infer_shapes(&self, inputs: &[&Shape], n_outputs: usize) -> Result<Vec<OutShape>, ShapeError> {
        let shape = match self {
            DenseOp::Linear(p) => dense_shape(p, first(inputs)?)?,
            DenseOp::MatMul => matmul_shape(inputs)?,
            DenseOp::Embed(p) => embed_shape(p, first(inputs)?)?,
            DenseOp::Einsum { equation } => einsum(equation, inputs)?.0,
            DenseOp::Det => det_shape(first(inputs)?)?,
            DenseOp::MarginLinear(p) => {
                let mut outs = vec![OutShape::Known(dense_shape(&p.linear, first(inputs)?)?)];
                if n_outputs > 2 {
                    return Err(ShapeError::new("a margin layer writes at most 2 tops (logits, λ)"));
                }
                if n_outputs == 2 {
                    outs.push(OutShape::Known(Shape(vec![1])));
                }
                return Ok(outs);
            }
        };
        known(shape, n_outputs)
    }

    fn has_weights(&self) -> bool {
        match self {
            DenseOp::Linear(_) | DenseOp::Embed(_) | DenseOp::MarginLinear(_) => true,
            DenseOp::MatMul | DenseOp::Einsum { .. } | DenseOp::Det => false,
        }
    }

    fn param_specs(&self, inputs: &[&Shape]) -> Result<Vec<ParamSpec>, ShapeError> {
        match self {
            DenseOp::Linear(p) => dense_params(p, first(inputs)?),
            DenseOp::MatMul | DenseOp::Einsum { .. } | DenseOp::Det => Ok(Vec::new()),
            DenseOp::Embed(p) => Ok(embed_params(p)),
            DenseOp::MarginLinear(p) => dense_params(&p.linear, first(inputs)?),
        }
    }

    /// A MatMul, or a linear layer without a bias of its own (an ONNX MatMul
    /// by a stored weight), may be the product of a linear layer whose bias
    /// add follows.
    fn schedule_facts(&self) -> ScheduleFacts {
        match self {
            DenseOp::MatMul => ScheduleFacts { fusion: Fusion::MatrixProduct, ..ScheduleFacts::COMPUTES },
            DenseOp::Linear(p) if !p.bias => ScheduleFacts { fusion: Fusion::MatrixProduct, ..ScheduleFacts::COMPUTES },
            DenseOp::Linear(_) | DenseOp::Embed(_) | DenseOp::MarginLinear(_) | DenseOp::Einsum { .. } | DenseOp::Det => {
                ScheduleFacts::COMPUTES
            }
        }
    }

    fn memory_facts(&self, inputs: &[&Shape], outputs: &[&Shape]) -> MemoryFacts {
        let out0 = outputs.first().copied();
        match self {
            DenseOp::Linear(p) => dense_memory(p, inputs.first().copied(), out0),
            DenseOp::MatMul => matmul_memory(inputs, out0),
            DenseOp::Embed(_) => embed_memory(),
            // Each operand's gradient is a product of the others.
            DenseOp::Einsum { equation } => MemoryFacts {
                macs: einsum(equation, inputs).map(|(_, m)| m).unwrap_or(0),
                ..saves_all(inputs)
            },
            // d det(X) = det(X)·X⁻ᵀ: the input and the output.
            DenseOp::Det => MemoryFacts { saves_inputs: vec![0], saves_outputs: vec![0], ..Default::default() },
            DenseOp::MarginLinear(p) => margin_memory(p, inputs.first().copied(), out0),
        }
    }

    fn conv_geometry(&self, _: Option<&Shape>, _: &[&Shape]) -> Option<ConvGeometry> {
        None
    }

    /// ONNX Gemm (A, B, C) and MatMul by a weight (A, B): the output width
    /// and the inner size come from B's dims, which must agree with A.
    fn infer(&self, ins: &[Option<Input<'_>>], n_outputs: usize) -> Result<Vec<OutShape>, ShapeError> {
        let DenseOp::Linear(p) = self else {
            return self.infer_shapes(&super::value::present_shapes(ins)?, n_outputs);
        };
        let x = shape_arg(ins, 0, "data input")?;
        let mut p = p.clone();
        if let Some(b) = ins.get(1).copied().flatten() {
            let [r, c] = b.shape.dims() else { return Err(ShapeError::new(format!("weight {} is not 2-D", b.shape))) };
            let (k, n) = if p.transpose { (*r, *c) } else { (*c, *r) };
            if dense_fan_in(&p, x)? != k || (p.out_features != 0 && p.out_features != n) {
                return Err(ShapeError::new(format!("weight {} does not fit input {x}", b.shape)));
            }
            p.out_features = n;
        }
        if p.out_features == 0 {
            return Err(ShapeError::new("the weight's dims are not known"));
        }
        known(dense_shape(&p, x)?, n_outputs)
    }
}

/// `[*, M, M]` → `[*]`.
pub fn det_shape(x: &Shape) -> Result<Shape, ShapeError> {
    let d = x.dims();
    match d {
        [lead @ .., m, n] if m == n => Ok(Shape(lead.to_vec())),
        _ => Err(ShapeError::new(format!("Det needs square trailing matrices, got {x}"))),
    }
}

/// The output shape of an Einsum and its multiply-accumulates (the product
/// of every label's extent and the broadcast `...` dims).
pub fn einsum(equation: &str, inputs: &[&Shape]) -> Result<(Shape, u64), ShapeError> {
    let bad = |why: &str| ShapeError::new(format!("Einsum \"{equation}\": {why}"));
    let eq: String = equation.chars().filter(|c| !c.is_whitespace()).collect();
    let (lhs, rhs) = match eq.split_once("->") {
        Some((l, r)) => (l, Some(r)),
        None => (eq.as_str(), None),
    };
    let terms: Vec<&str> = lhs.split(',').collect();
    if terms.len() != inputs.len() {
        return Err(bad(&format!("{} operands for {} inputs", terms.len(), inputs.len())));
    }
    let mut extent: std::collections::BTreeMap<char, u64> = std::collections::BTreeMap::new();
    let mut count: std::collections::BTreeMap<char, usize> = std::collections::BTreeMap::new();
    let mut ellipsis: Vec<u64> = Vec::new();
    let mut any_ellipsis = false;
    for (term, shape) in terms.iter().zip(inputs) {
        let (head, tail, has_ell) = match term.split_once("...") {
            Some((h, t)) => (h, t, true),
            None => (*term, "", false),
        };
        let labels: Vec<char> = head.chars().chain(tail.chars()).collect();
        if labels.iter().any(|c| !c.is_ascii_alphabetic()) {
            return Err(bad("labels must be letters"));
        }
        let d = shape.dims();
        let n_ell = d.len().checked_sub(labels.len()).filter(|&n| has_ell || n == 0).ok_or_else(|| bad("rank differs from the labels"))?;
        let hl = head.chars().count();
        let ell_dims = &d[hl..hl + n_ell];
        if has_ell {
            any_ellipsis = true;
            ellipsis = broadcast(&ellipsis, ell_dims)?;
        }
        for (i, c) in labels.iter().enumerate() {
            let dim = if i < hl { d[i] } else { d[i + n_ell] };
            match extent.get(c) {
                Some(&e) if e != dim => return Err(bad(&format!("label {c} is {e} and {dim}"))),
                _ => {
                    extent.insert(*c, dim);
                }
            }
            *count.entry(*c).or_insert(0) += 1;
        }
    }
    let mut out = Vec::new();
    match rhs {
        Some(r) => {
            let (head, tail, has_ell) = match r.split_once("...") {
                Some((h, t)) => (h, t, true),
                None => (r, "", false),
            };
            for c in head.chars() {
                out.push(*extent.get(&c).ok_or_else(|| bad(&format!("output label {c} is not an input label")))?);
            }
            if has_ell {
                out.extend_from_slice(&ellipsis);
            } else if ellipsis.iter().any(|&e| e != 1) {
                return Err(bad("the output drops broadcast dims"));
            }
            for c in tail.chars() {
                out.push(*extent.get(&c).ok_or_else(|| bad(&format!("output label {c} is not an input label")))?);
            }
        }
        None => {
            if any_ellipsis {
                out.extend_from_slice(&ellipsis);
            }
            out.extend(extent.iter().filter(|(c, _)| count[*c] == 1).map(|(_, &e)| e));
        }
    }
    let macs = extent.values().chain(ellipsis.iter()).try_fold(1u64, |a, &e| a.checked_mul(e)).unwrap_or(u64::MAX);
    Ok((Shape(out), macs))
}

/// A fully connected layer's parameters (Caffe InnerProduct, ONNX Gemm).
#[derive(Clone, Debug, PartialEq)]
pub struct DenseParams {
    /// Output features.
    pub out_features: u64,
    /// Axes from `axis` on are flattened into the input width.
    pub axis: i64,
    /// Whether it learns a bias.
    pub bias: bool,
    /// Weights stored as (K, out) instead of (out, K).
    pub transpose: bool,
}

/// Caffe MarginInnerProduct's parameters (SphereFace).
#[derive(Clone, Debug, PartialEq)]
pub struct MarginParams {
    /// The product itself (never a bias).
    pub linear: DenseParams,
    /// The margin m: 1 (SINGLE) to 4 (QUADRUPLE).
    pub margin: u64,
}

impl MarginParams {
    /// Output-sized buffers the layer keeps: sign(cos θ) and cos θ, then for
    /// m = 2 cos²θ, for m = 3 two more signs, cos²θ and cos³θ, for m = 4 two
    /// signs and cos²θ, cos³θ, cos⁴θ (margin_inner_product_layer.cpp Reshape).
    pub fn output_sized_buffers(&self) -> u64 {
        match self.margin {
            0 | 1 => 2,
            2 => 3,
            3 => 6,
            _ => 7,
        }
    }
}

/// Caffe Embed's parameters.
#[derive(Clone, Debug, PartialEq)]
pub struct EmbedParams {
    /// Output width.
    pub out_features: u64,
    /// Table rows (input_dim).
    pub vocabulary: u64,
    /// Whether it learns a bias.
    pub bias: bool,
}

/// Flattened input width K.
pub fn dense_fan_in(p: &DenseParams, input: &Shape) -> Result<u64, ShapeError> {
    let axis = input.axis(p.axis)?;
    checked_product(&input.dims()[axis..]).ok_or_else(|| overflow("flattened input"))
}

/// Dense: the axes before `axis`, then `out_features`.
pub fn dense_shape(p: &DenseParams, input: &Shape) -> Result<Shape, ShapeError> {
    let axis = input.axis(p.axis)?;
    let mut dims = input.dims()[..axis].to_vec();
    dims.push(p.out_features);
    Ok(Shape(dims))
}

/// Dense's weight (out, K) or (K, out), and bias (out).
pub fn dense_params(p: &DenseParams, input: &Shape) -> Result<Vec<ParamSpec>, ShapeError> {
    let k = dense_fan_in(p, input)?;
    let weight = if p.transpose { vec![k, p.out_features] } else { vec![p.out_features, k] };
    let mut specs = vec![ParamSpec::learned("weight", weight)];
    if p.bias {
        specs.push(ParamSpec::learned("bias", vec![p.out_features]));
    }
    Ok(specs)
}

/// Every output element is a K-long dot product.
pub fn dense_macs(p: &DenseParams, input: &Shape, output: &Shape) -> Option<u64> {
    output.elems()?.checked_mul(dense_fan_in(p, input).ok()?)
}

/// numpy-style matmul: the last two axes multiply, the leading ones broadcast.
pub fn matmul_shape(inputs: &[&Shape]) -> Result<Shape, ShapeError> {
    let a = nth(inputs, 0, "left matrix")?;
    let b = nth(inputs, 1, "right matrix")?;
    if a.rank() == 0 || b.rank() == 0 {
        return Err(ShapeError::new("matmul of a scalar"));
    }
    let (a_dims, a_vec) = if a.rank() == 1 { (vec![1, a.dims()[0]], true) } else { (a.dims().to_vec(), false) };
    let (b_dims, b_vec) = if b.rank() == 1 { (vec![b.dims()[0], 1], true) } else { (b.dims().to_vec(), false) };
    let (m, ka) = (a_dims[a_dims.len() - 2], a_dims[a_dims.len() - 1]);
    let (kb, n) = (b_dims[b_dims.len() - 2], b_dims[b_dims.len() - 1]);
    if ka != kb {
        return Err(ShapeError::new(format!("matmul of {a} and {b}: inner dimensions {ka} and {kb} differ")));
    }
    let mut dims = broadcast(&a_dims[..a_dims.len() - 2], &b_dims[..b_dims.len() - 2])
        .map_err(|e| ShapeError::new(format!("matmul of {a} and {b}: {}", e.message)))?;
    if !a_vec {
        dims.push(m);
    }
    if !b_vec {
        dims.push(n);
    }
    Ok(Shape(dims))
}

/// numpy broadcasting of two dim lists.
pub fn broadcast(a: &[u64], b: &[u64]) -> Result<Vec<u64>, ShapeError> {
    let rank = a.len().max(b.len());
    let at = |v: &[u64], i: usize| if i + v.len() >= rank { v[i + v.len() - rank] } else { 1 };
    (0..rank)
        .map(|i| match (at(a, i), at(b, i)) {
            (x, y) if x == y => Ok(x),
            (1, y) => Ok(y),
            (x, 1) => Ok(x),
            (x, y) => Err(ShapeError::new(format!("extents {x} and {y} do not broadcast"))),
        })
        .collect()
}

/// MACs of a matrix product: output elements × the inner extent.
pub fn matmul_macs(inputs: &[&Shape], output: &Shape) -> Option<u64> {
    let a = inputs.first()?;
    output.elems()?.checked_mul(*a.dims().last()?)
}

/// Embed: the input's shape, then `out_features`.
pub fn embed_shape(p: &EmbedParams, input: &Shape) -> Result<Shape, ShapeError> {
    let mut dims = input.dims().to_vec();
    dims.push(p.out_features);
    Ok(Shape(dims))
}

/// Embed's table (vocabulary, out) and bias (out).
pub fn embed_params(p: &EmbedParams) -> Vec<ParamSpec> {
    let mut specs = vec![ParamSpec::learned("weight", vec![p.vocabulary, p.out_features])];
    if p.bias {
        specs.push(ParamSpec::learned("bias", vec![p.out_features]));
    }
    specs
}

/// Memory facts of a fully connected layer: dW = dyᵀ·x needs the input.
pub fn dense_memory(p: &DenseParams, input: Option<&Shape>, output: Option<&Shape>) -> MemoryFacts {
    let mut f = MemoryFacts { saves_inputs: vec![0], saves_params: true, ..Default::default() };
    if let (Some(i), Some(o)) = (input, output) {
        f.macs = dense_macs(p, i, o).unwrap_or(0);
    }
    f
}

/// Memory facts of a margin layer: a dense layer's, plus its output-sized
/// buffers and the norm of each input row, and the label.
pub fn margin_memory(p: &MarginParams, input: Option<&Shape>, output: Option<&Shape>) -> MemoryFacts {
    let mut f = dense_memory(&p.linear, input, output);
    f.saves_inputs = vec![0, 1];
    let out = output.and_then(|s| s.elems()).unwrap_or(0);
    let rows = match (input, output) {
        (Some(i), Some(o)) => i.axis(p.linear.axis).ok().and_then(|a| checked_product(&o.dims()[..a.min(o.rank())])).unwrap_or(0),
        _ => 0,
    };
    f.extra_saved = vec![
        ExtraSaved { what: "cos θ, signs and powers", elems: out.saturating_mul(p.output_sized_buffers()), dtype: SavedType::Compute },
        ExtraSaved { what: "input row norms", elems: rows, dtype: SavedType::Compute },
    ];
    f
}

/// Memory facts of a product of two data inputs: each gradient needs the other operand.
pub fn matmul_memory(inputs: &[&Shape], output: Option<&Shape>) -> MemoryFacts {
    // dA = dY·Bᵀ needs B, dB = Aᵀ·dY needs A.
    // By a weight, an input of rank > 2 is multiplied as rows of its last axis.
    let mut f = MemoryFacts {
        saves_inputs: vec![0, 1],
        saves_for_other_operands: true,
        input_layout: InputLayout::Rows,
        ..Default::default()
    };
    if let Some(o) = output {
        f.macs = matmul_macs(inputs, o).unwrap_or(0);
    }
    f
}

/// Memory facts of an embedding lookup: the indices pick the rows to update.
pub fn embed_memory() -> MemoryFacts {
    MemoryFacts { saves_inputs: vec![0], saves_params: true, ..Default::default() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vgg_fc6_flattens_from_axis_one() {
        let p = DenseParams { out_features: 4096, axis: 1, bias: true, transpose: false };
        let input = Shape::new(vec![1, 512, 7, 7]);
        assert_eq!(dense_shape(&p, &input).unwrap().dims(), &[1, 4096]);
        let n: u64 = dense_params(&p, &input).unwrap().iter().map(|s| s.shape.elems().unwrap()).sum();
        assert_eq!(n, 102_764_544);
    }

    #[test]
    fn margin_layer_is_a_dense_layer_without_bias_and_a_lambda_top() {
        let p = MarginParams { linear: DenseParams { out_features: 10572, axis: 1, bias: false, transpose: false }, margin: 4 };
        let op = DenseOp::MarginLinear(p.clone());
        let (x, label) = (Shape::new(vec![256, 512]), Shape::new(vec![256]));
        let outs = op.infer_shapes(&[&x, &label], 2).unwrap();
        assert_eq!(outs, vec![OutShape::Known(Shape::new(vec![256, 10572])), OutShape::Known(Shape::new(vec![1]))]);
        let w = op.param_specs(&[&x, &label]).unwrap();
        assert_eq!((w.len(), w[0].shape.elems()), (1, Some(5_412_864)));
        let f = op.memory_facts(&[&x, &label], &[&Shape::new(vec![256, 10572])]);
        assert_eq!(f.extra_saved[0].elems, 7 * 256 * 10572);
        assert_eq!(f.extra_saved[1].elems, 256);
    }

    #[test]
    fn matmul_broadcasts_batch_axes() {
        let a = Shape::new(vec![2, 1, 4, 8]);
        let b = Shape::new(vec![3, 8, 5]);
        assert_eq!(matmul_shape(&[&a, &b]).unwrap().dims(), &[2, 3, 4, 5]);
        let v = Shape::new(vec![8]);
        assert_eq!(matmul_shape(&[&a, &v]).unwrap().dims(), &[2, 1, 4]);
        assert!(matmul_shape(&[&a, &Shape::new(vec![7, 5])]).is_err());
    }

    #[test]
    fn einsum_shapes_from_the_onnx_tests() {
        let s = |d: &[u64]| Shape::new(d.to_vec());
        // test_einsum_batch_matmul: bij,bjk->bik.
        assert_eq!(einsum("bij, bjk -> bik", &[&s(&[5, 2, 3]), &s(&[5, 3, 4])]).unwrap().0, s(&[5, 2, 4]));
        // The implicit output lists the labels alphabetically: "ji" on [3, 4] is [4, 3].
        assert_eq!(einsum("ji", &[&s(&[3, 4])]).unwrap().0, s(&[4, 3]));
        assert_eq!(einsum("ij->ji", &[&s(&[3, 4])]).unwrap().0, s(&[4, 3]));
        // test_einsum_sum: ij->i.
        assert_eq!(einsum("ij->i", &[&s(&[3, 4])]).unwrap().0, s(&[3]));
        // test_einsum_inner_prod: i,i (implicit: scalar).
        assert_eq!(einsum("i,i", &[&s(&[5]), &s(&[5])]).unwrap().0, Shape::scalar());
        // test_einsum_batch_diagonal: ...ii ->...i.
        assert_eq!(einsum("...ii ->...i", &[&s(&[3, 5, 5])]).unwrap().0, s(&[3, 5]));
        assert_eq!(einsum("ij,jk", &[&s(&[2, 3]), &s(&[3, 4])]).unwrap(), (s(&[2, 4]), 24));
        assert!(einsum("ij,jk->ik", &[&s(&[2, 3]), &s(&[4, 5])]).is_err());
    }

    #[test]
    fn embed_appends_features() {
        let p = EmbedParams { out_features: 1000, vocabulary: 8801, bias: false };
        assert_eq!(embed_shape(&p, &Shape::new(vec![20, 10])).unwrap().dims(), &[20, 10, 1000]);
        assert_eq!(embed_params(&p)[0].shape.elems(), Some(8_801_000));
    }
}
