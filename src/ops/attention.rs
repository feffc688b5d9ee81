//! Fused attention and rotary embedding: ONNX's `Attention` (opset 23/24) and
//! `RotaryEmbedding`, and ONNX Runtime's contrib `GroupQueryAttention`,
//! `MultiHeadAttention` and `RotaryEmbedding` (domain com.microsoft).
//!
//! Shapes (B batch, Hq query heads, Hkv key/value heads, Sq query length, Skv
//! new key length, P past length, D key head size, Dv value head size):
//! * ONNX Attention, 4-D Q [B, Hq, Sq, D], K [B, Hkv, Skv, D], V [B, Hkv, Skv,
//!   Dv] → Y [B, Hq, Sq, Dv]; 3-D Q [B, Sq, Hq·D], K [B, Skv, Hkv·D], V [B,
//!   Skv, Hkv·Dv] with `q_num_heads`/`kv_num_heads` → Y [B, Sq, Hq·Dv].
//!   present_key/value [B, Hkv, P + Skv, D/Dv] (P from past_key, input 4),
//!   qk_matmul_output [B, Hq, Sq, P + Skv].
//! * GroupQueryAttention: query [B, S, Hq·D] (or packed Q, K, V: [B, S,
//!   (Hq + 2·Hkv)·D] with no key) → output [B, S, Hq·D]; present K/V [B, Hkv,
//!   T, D] with T = max(P, total_sequence_length) (input 6's value; unknown
//!   without it).
//! * MultiHeadAttention: query [B, Sq, Hq·D], key [B, Skv, Hq·D] or packed
//!   key/value [B, Skv, Hq, 2, D], value [B, Skv, Hq·Dv] → output [B, Sq,
//!   Hq·Dv]; packed Q, K, V [B, S, Hq, 3, D] → [B, S, Hq·D]; present K/V
//!   [B, Hq, P + Skv, D/Dv].
//! * RotaryEmbedding: the input's shape.
//!
//! Memory (docs/memory-model.md, "Fused attention"): these ops are one fused
//! kernel; backward keeps Q, K, V (and the mask, the past), the output and
//! one f32 log-sum-exp per query row (B·Hq·Sq), never a Sq×Skv tensor.

use super::value::{shape_arg, Input};
use super::{AttentionExtents, ConvGeometry, ExtraSaved, Family, MemoryFacts, OutShape, ParamSpec, SavedType, ScheduleFacts};
use crate::tensor::{Shape, ShapeError};

/// The attention family.
#[derive(Clone, Debug, PartialEq)]
pub enum AttentionOp {
    /// ONNX Attention; the head counts are attributes needed for 3-D inputs.
    Onnx {
        /// Query heads (`q_num_heads`).
        q_heads: Option<u64>,
        /// K/V heads (`kv_num_heads`).
        kv_heads: Option<u64>,
    },
    /// ORT GroupQueryAttention.
    GroupQuery {
        /// Query heads.
        heads: u64,
        /// K/V heads.
        kv_heads: u64,
    },
    /// ORT MultiHeadAttention.
    MultiHead {
        /// Heads.
        heads: u64,
    },
    /// Rotary position embedding (ONNX and ORT): the input's shape.
    Rotary,
}

impl Family for AttentionOp {
    fn name(&self) -> &'static str {
        match self {
            AttentionOp::Onnx { .. } => "Attention",
            AttentionOp::GroupQuery { .. } => "GroupQueryAttention",
            AttentionOp::MultiHead { .. } => "MultiHeadAttention",
            AttentionOp::Rotary => "RotaryEmbedding",
        }
    }

    /// Without the operator-order inputs only the rotary rule applies.
    fn infer_shapes(&self, inputs: &[&Shape], n_outputs: usize) -> Result<Vec<OutShape>, ShapeError> {
        match self {
            AttentionOp::Rotary => super::known(super::first(inputs)?.clone(), n_outputs),
            AttentionOp::Onnx { .. } | AttentionOp::GroupQuery { .. } | AttentionOp::MultiHead { .. } => {
                Err(ShapeError::new("attention needs its inputs in operator order"))
            }
        }
    }

    fn has_weights(&self) -> bool {
        false
    }

    fn param_specs(&self, _: &[&Shape]) -> Result<Vec<ParamSpec>, ShapeError> {
        Ok(Vec::new())
    }

    fn schedule_facts(&self) -> ScheduleFacts {
        ScheduleFacts::COMPUTES
    }

    /// Fused attention keeps its data inputs, its output and one f32
    /// log-sum-exp per query row; rotary embedding's backward is the inverse
    /// rotation, which needs only the cos/sin tables (inputs 1 and 2 when
    /// they are data; nothing of x).
    fn memory_facts(&self, inputs: &[&Shape], outputs: &[&Shape]) -> MemoryFacts {
        match self {
            AttentionOp::Rotary => MemoryFacts { saves_inputs: (1..inputs.len().min(3)).collect(), ..Default::default() },
            AttentionOp::Onnx { .. } | AttentionOp::GroupQuery { .. } | AttentionOp::MultiHead { .. } => {
                // With a past, the keys attended are the present K's (past + new).
                let geo = outputs.first().and_then(|y| self.geometry(inputs, y)).map(|g| match outputs.get(1).map(|p| p.dims()) {
                    Some([_, _, total, _]) => Geometry { kv_len: *total, ..g },
                    _ => g,
                });
                let (rows, macs) = geo.as_ref().map_or((0, 0), |g| {
                    let rows = g.batch.saturating_mul(g.q_heads).saturating_mul(g.q_len);
                    (rows, rows.saturating_mul(g.kv_len).saturating_mul(g.d.saturating_add(g.dv)))
                });
                MemoryFacts {
                    saves_inputs: (0..inputs.len()).collect(),
                    saves_outputs: vec![0],
                    extra_saved: vec![ExtraSaved { what: "log-sum-exp per query row", elems: rows, dtype: SavedType::Fixed(crate::tensor::DType::F32) }],
                    macs,
                    fused_attention: geo.map(|g| AttentionExtents {
                        batch_heads: g.batch.saturating_mul(g.q_heads),
                        q_len: g.q_len,
                        kv_len: g.kv_len,
                        head_qk: g.d,
                        head_v: g.dv,
                    }),
                    ..Default::default()
                }
            }
        }
    }

    fn conv_geometry(&self, _: Option<&Shape>, _: &[&Shape]) -> Option<ConvGeometry> {
        None
    }

    fn infer(&self, ins: &[Option<Input<'_>>], n_outputs: usize) -> Result<Vec<OutShape>, ShapeError> {
        let q = shape_arg(ins, 0, "query")?;
        let shape = |i: usize| ins.get(i).copied().flatten().map(|x| x.shape);
        let outs: Vec<Shape> = match self {
            AttentionOp::Rotary => vec![q.clone()],
            AttentionOp::Onnx { q_heads, kv_heads } => onnx_attention(q, shape(1), shape(2), shape(4), *q_heads, *kv_heads)?,
            AttentionOp::GroupQuery { heads, kv_heads } => {
                let total = ins.get(6).copied().flatten().and_then(|x| x.value).and_then(|v| v.scalar_int());
                group_query(q, shape(1), shape(3), total, *heads, *kv_heads, n_outputs)?
            }
            AttentionOp::MultiHead { heads } => multi_head(q, shape(1), shape(2), shape(6), *heads)?,
        };
        if n_outputs > outs.len() {
            return Err(ShapeError::new(format!("the node declares {n_outputs} outputs; the rule sizes {}", outs.len())));
        }
        Ok(outs.into_iter().take(n_outputs.max(1)).map(OutShape::Known).collect())
    }
}

/// What the memory facts count, read back from the input and output shapes.
struct Geometry {
    batch: u64,
    q_heads: u64,
    q_len: u64,
    kv_len: u64,
    d: u64,
    dv: u64,
}

impl AttentionOp {
    fn geometry(&self, inputs: &[&Shape], y: &Shape) -> Option<Geometry> {
        let q = inputs.first()?;
        let heads = match self {
            AttentionOp::Onnx { q_heads, .. } => {
                if q.rank() == 4 {
                    q.dims()[1]
                } else {
                    (*q_heads)?
                }
            }
            AttentionOp::GroupQuery { heads, .. } | AttentionOp::MultiHead { heads } => *heads,
            AttentionOp::Rotary => return None,
        };
        let (batch, q_len, dv) = match y.dims() {
            [b, _, s, dv] => (*b, *s, *dv),
            [b, s, h] => (*b, *s, h / heads.max(1)),
            _ => return None,
        };
        let d = match q.dims() {
            [_, _, _, d] => *d,
            [_, _, h] => h / heads.max(1),
            [_, _, _, _, d] => *d,
            _ => return None,
        };
        // The key length: K's axis (rank 4: 2, rank 3: 1) plus a past's when given.
        let kv_len = inputs.get(1).map_or(q_len, |k| match k.dims() {
            [_, _, s, _] => *s,
            [_, s, ..] => *s,
            _ => q_len,
        });
        Some(Geometry { batch, q_heads: heads, q_len, kv_len, d, dv })
    }
}

fn split(hidden: u64, heads: u64, what: &str) -> Result<u64, ShapeError> {
    if heads == 0 || !hidden.is_multiple_of(heads) {
        return Err(ShapeError::new(format!("{what} {hidden} is not a multiple of {heads} heads")));
    }
    Ok(hidden / heads)
}

fn need<'a>(s: Option<&'a Shape>, what: &str) -> Result<&'a Shape, ShapeError> {
    s.ok_or_else(|| ShapeError::new(format!("the {what} is not given")))
}

fn rank(s: &Shape, r: usize, what: &str) -> Result<(), ShapeError> {
    if s.rank() != r {
        return Err(ShapeError::new(format!("the {what} {s} is not of rank {r}")));
    }
    Ok(())
}

/// ONNX Attention: Y, present_key, present_value, qk_matmul_output.
fn onnx_attention(
    q: &Shape,
    k: Option<&Shape>,
    v: Option<&Shape>,
    past: Option<&Shape>,
    q_heads: Option<u64>,
    kv_heads: Option<u64>,
) -> Result<Vec<Shape>, ShapeError> {
    let (k, v) = (need(k, "key")?, need(v, "value")?);
    let (b, hq, sq, hkv, skv, d, dv, y) = match q.rank() {
        4 => {
            rank(k, 4, "key")?;
            rank(v, 4, "value")?;
            let qd = q.dims();
            let (hkv, skv, d, dv) = (k.dims()[1], k.dims()[2], k.dims()[3], v.dims()[3]);
            (qd[0], qd[1], qd[2], hkv, skv, d, dv, Shape(vec![qd[0], qd[1], qd[2], dv]))
        }
        3 => {
            rank(k, 3, "key")?;
            rank(v, 3, "value")?;
            let (Some(hq), Some(hkv)) = (q_heads, kv_heads) else {
                return Err(ShapeError::new("3-D attention inputs need q_num_heads and kv_num_heads"));
            };
            let qd = q.dims();
            let d = split(k.dims()[2], hkv, "the key's hidden size")?;
            let dv = split(v.dims()[2], hkv, "the value's hidden size")?;
            split(qd[2], hq, "the query's hidden size")?;
            let y = Shape(vec![qd[0], qd[1], hq.checked_mul(dv).ok_or_else(|| super::overflow("the output"))?]);
            (qd[0], hq, qd[1], hkv, k.dims()[1], d, dv, y)
        }
        _ => return Err(ShapeError::new(format!("the query {q} is neither 3-D nor 4-D"))),
    };
    let p = match past {
        Some(pk) => {
            rank(pk, 4, "past key")?;
            pk.dims()[2]
        }
        None => 0,
    };
    let total = p.checked_add(skv).ok_or_else(|| super::overflow("the key length"))?;
    Ok(vec![y, Shape(vec![b, hkv, total, d]), Shape(vec![b, hkv, total, dv]), Shape(vec![b, hq, sq, total])])
}

/// ORT GroupQueryAttention: output, present_key, present_value.
fn group_query(
    q: &Shape,
    key: Option<&Shape>,
    past: Option<&Shape>,
    total: Option<i64>,
    heads: u64,
    kv_heads: u64,
    n_outputs: usize,
) -> Result<Vec<Shape>, ShapeError> {
    rank(q, 3, "query")?;
    let [b, s, h] = [q.dims()[0], q.dims()[1], q.dims()[2]];
    let d = match key {
        Some(_) => split(h, heads, "the query's hidden size")?,
        None => split(h, heads.saturating_add(kv_heads.saturating_mul(2)), "the packed Q, K, V hidden size")?,
    };
    let mut outs = vec![Shape(vec![b, s, heads.saturating_mul(d)])];
    if n_outputs > 1 {
        let p = past.map(|pk| pk.dims().get(2).copied().unwrap_or(0)).unwrap_or(0);
        let Some(total) = total.and_then(|t| u64::try_from(t).ok()) else {
            return Err(ShapeError::new("the present K/V length needs the value of total_sequence_length"));
        };
        let t = p.max(total);
        outs.push(Shape(vec![b, kv_heads, t, d]));
        outs.push(Shape(vec![b, kv_heads, t, d]));
    }
    Ok(outs)
}

/// ORT MultiHeadAttention: output, present_key, present_value.
fn multi_head(q: &Shape, key: Option<&Shape>, value: Option<&Shape>, past: Option<&Shape>, heads: u64) -> Result<Vec<Shape>, ShapeError> {
    let qd = q.dims();
    let (b, sq) = match qd {
        [b, s, ..] => (*b, *s),
        _ => return Err(ShapeError::new(format!("the query {q} has rank below 3"))),
    };
    // (Skv, D, Dv) of the new keys and values.
    let (skv, d, dv) = match (qd.len(), key.map(Shape::dims), value.map(Shape::dims)) {
        // Packed Q, K, V: [B, S, N, 3, D].
        (5, None, _) => (sq, qd[4], qd[4]),
        (3, Some([_, skv, n, 2, d]), None) if *n == heads => (*skv, *d, *d),
        (3, Some([_, skv, hk]), Some([_, _, hv])) => (*skv, split(*hk, heads, "the key's hidden size")?, split(*hv, heads, "the value's hidden size")?),
        // Keys and values already split into heads (cross attention's cache): [B, N, Skv, D].
        (3, Some([_, n, skv, d]), Some([_, _, _, dv])) if *n == heads => (*skv, *d, *dv),
        _ => return Err(ShapeError::new("a query/key/value layout the rule does not model")),
    };
    if qd.len() == 3 {
        split(qd[2], heads, "the query's hidden size")?;
    }
    let p = past.map(|pk| pk.dims().get(2).copied().unwrap_or(0)).unwrap_or(0);
    let t = p.checked_add(skv).ok_or_else(|| super::overflow("the key length"))?;
    Ok(vec![Shape(vec![b, sq, heads.saturating_mul(dv)]), Shape(vec![b, heads, t, d]), Shape(vec![b, heads, t, dv])])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tensor::DType;

    fn s(d: &[u64]) -> Shape {
        Shape(d.to_vec())
    }

    fn run(op: &AttentionOp, shapes: &[Option<Shape>], n: usize) -> Vec<Shape> {
        let ins: Vec<Option<Input<'_>>> =
            shapes.iter().map(|x| x.as_ref().map(|shape| Input { shape, dtype: DType::F32, value: None })).collect();
        op.infer(&ins, n).unwrap().into_iter().map(|o| match o {
            OutShape::Known(s) => s,
            other => panic!("{other:?}"),
        }).collect()
    }

    #[test]
    fn onnx_attention_4d_with_past_and_gqa() {
        let op = AttentionOp::Onnx { q_heads: None, kv_heads: None };
        let outs = run(&op, &[Some(s(&[2, 8, 5, 64])), Some(s(&[2, 2, 5, 64])), Some(s(&[2, 2, 5, 32])), None, Some(s(&[2, 2, 7, 64])), Some(s(&[2, 2, 7, 32]))], 4);
        assert_eq!(outs, vec![s(&[2, 8, 5, 32]), s(&[2, 2, 12, 64]), s(&[2, 2, 12, 32]), s(&[2, 8, 5, 12])]);
    }

    #[test]
    fn onnx_attention_3d_needs_heads() {
        let op = AttentionOp::Onnx { q_heads: Some(4), kv_heads: Some(2) };
        let outs = run(&op, &[Some(s(&[1, 6, 32])), Some(s(&[1, 9, 16])), Some(s(&[1, 9, 24]))], 1);
        assert_eq!(outs, vec![s(&[1, 6, 48])]);
        let ins = [s(&[1, 6, 32]), s(&[1, 9, 16]), s(&[1, 9, 24])];
        let ins: Vec<Option<Input<'_>>> = ins.iter().map(|shape| Some(Input { shape, dtype: DType::F32, value: None })).collect();
        assert!(AttentionOp::Onnx { q_heads: None, kv_heads: None }.infer(&ins, 1).is_err());
    }

    #[test]
    fn fused_attention_keeps_no_seq_by_seq_tensor() {
        let op = AttentionOp::Onnx { q_heads: None, kv_heads: None };
        let (q, k, v, y) = (s(&[1, 32, 4096, 128]), s(&[1, 32, 4096, 128]), s(&[1, 32, 4096, 128]), s(&[1, 32, 4096, 128]));
        let f = op.memory_facts(&[&q, &k, &v], &[&y]);
        assert_eq!(f.saves_inputs, vec![0, 1, 2]);
        assert_eq!(f.saves_outputs, vec![0]);
        assert_eq!(f.extra_saved.len(), 1);
        assert_eq!(f.extra_saved[0].elems, 32 * 4096, "one log-sum-exp per query row");
        assert_eq!(f.macs, 32 * 4096 * 4096 * 256);
        assert_eq!(
            f.fused_attention,
            Some(AttentionExtents { batch_heads: 32, q_len: 4096, kv_len: 4096, head_qk: 128, head_v: 128 })
        );
        // One new token over a past of 4,095: the present K holds 4,096 keys.
        let (q1, k1, y1) = (s(&[1, 32, 1, 128]), s(&[1, 32, 1, 128]), s(&[1, 32, 1, 128]));
        let present = s(&[1, 32, 4096, 128]);
        let f = op.memory_facts(&[&q1, &k1, &k1], &[&y1, &present, &present]);
        assert_eq!(f.fused_attention.map(|e| (e.q_len, e.kv_len)), Some((1, 4096)));
        assert_eq!(f.macs, 32 * 4096 * 256);
    }

    #[test]
    fn contrib_attention_shapes() {
        let gqa = AttentionOp::GroupQuery { heads: 8, kv_heads: 2 };
        let shape = s(&[]);
        let total = crate::ops::Value::Int(vec![10]);
        let q = s(&[1, 3, 8 * 16]);
        let k = s(&[1, 3, 2 * 16]);
        let pk = s(&[1, 2, 7, 16]);
        let ins = vec![
            Some(Input { shape: &q, dtype: DType::F32, value: None }),
            Some(Input { shape: &k, dtype: DType::F32, value: None }),
            Some(Input { shape: &k, dtype: DType::F32, value: None }),
            Some(Input { shape: &pk, dtype: DType::F32, value: None }),
            Some(Input { shape: &pk, dtype: DType::F32, value: None }),
            None,
            Some(Input { shape: &shape, dtype: DType::I32, value: Some(&total) }),
        ];
        let outs = gqa.infer(&ins, 3).unwrap();
        assert_eq!(outs[0], OutShape::Known(s(&[1, 3, 128])));
        assert_eq!(outs[1], OutShape::Known(s(&[1, 2, 10, 16])));
        let mha = AttentionOp::MultiHead { heads: 4 };
        let outs = run(&mha, &[Some(s(&[2, 5, 64])), Some(s(&[2, 7, 64])), Some(s(&[2, 7, 32]))], 1);
        assert_eq!(outs, vec![s(&[2, 5, 32])]);
        let outs = run(&mha, &[Some(s(&[2, 5, 4, 3, 16]))], 1);
        assert_eq!(outs, vec![s(&[2, 5, 64])]);
    }
}
