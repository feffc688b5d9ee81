//! Float initializers that are constants, not learned weights. An exporter
//! stores every float tensor the same way: weights, and also what the model's
//! code computes from literals or buffers — an attention scale, an epsilon, a
//! fill value, rotary frequencies. The dynamo exporter lifts each of those
//! into an initializer (`val_61`, `unsqueeze_2`), so counting every float
//! initializer as a parameter adds them to the learned weights (issue 15: +69
//! on a Llama-2-7B graph) and gives them gradients in training.
//!
//! A float initializer is a constant when
//! - it has at most one element and every node reading it is pointwise
//!   arithmetic, a comparison, a selection or a broadcast (a scale, an
//!   epsilon, a fill value: no framework module stores a learned scalar
//!   that way — a learned scalar of a model's own code, such as ReZero's α,
//!   is the exception this rule misclassifies); or
//! - it never meets the data: no path from it reaches a node that reads the
//!   data. A path follows its value through layout ops (transposes, reshapes,
//!   a lookup, a resampling) and through computations whose other operands
//!   are stored values or computed from stored values alone — a
//!   weight-normalised or standardised weight (`g·v/‖v‖`, `(w − mean)/std`)
//!   still reaches the data, so it is learned; and through sums and
//!   selections (`Add`, `Sub`, `Where`), whatever the other operand: T5's
//!   relative-position bias plus a causal mask built from the sequence length
//!   is still the learned bias. A path ends at any other computation that
//!   combines it with a value computed from the input's shape: rotary
//!   frequencies multiplied by position ids (a `Range` over the sequence
//!   length), then cos and sin, are a constant (issue 15: the dynamo
//!   exporter's `unsqueeze_2`, Llama's `inv_freq`). An embedding table
//!   gathered by position ids is still learned: the lookup is a layout op.

use crate::graph::{Graph, TensorId, TensorKind};
use crate::ops::Produces;

/// Op types through which a weight reaches its use unchanged in value (views,
/// copies, lookups, casts).
const LAYOUT: &[&str] = &[
    "Transpose", "Reshape", "Unsqueeze", "Squeeze", "Flatten", "Expand", "Gather", "Slice", "Concat", "Split", "Cast",
    "Identity", "Tile", "Pad", "Resize", "Upsample",
];

/// Op types that carry an operand's value into their result whatever the
/// other operand is (a bias plus a mask is still the bias).
const ADDITIVE: &[&str] = &["Add", "Sub", "Where"];

/// Op types that read a one-element constant as a plain operand.
const SCALAR_USES: &[&str] = &[
    "Mul", "Div", "Add", "Sub", "Pow", "Max", "Min", "Where", "Equal", "Less", "Greater", "LessOrEqual",
    "GreaterOrEqual", "Expand", "Clip", "Sqrt", "Reciprocal", "Neg",
];

/// Marks the float initializers that are constants (module doc) as
/// `TensorKind::Constant` and moves them from their readers' `params` to
/// their `inputs`, in the file's order (`file_inputs(j)`: node `j`'s inputs as
/// the file lists them); returns how many.
pub(super) fn reclassify(g: &mut Graph, file_inputs: impl Fn(usize) -> Vec<TensorId>) -> usize {
    let data = data_tensors(g);
    let stored = stored_tensors(g);
    let mut readers: Vec<Vec<usize>> = vec![Vec::new(); g.tensors.len()];
    for (i, n) in g.nodes.iter().enumerate() {
        for t in n.inputs.iter().chain(n.params.iter()) {
            readers[t.0].push(i);
        }
    }
    let mut constants = Vec::new();
    for (t, tensor) in g.tensors.iter().enumerate() {
        if tensor.kind != TensorKind::Param || !tensor.trainable || !tensor.dtype.is_float() || readers[t].is_empty() {
            continue;
        }
        let scalar = tensor.elems().is_some_and(|e| e <= 1)
            && readers[t].iter().all(|&r| SCALAR_USES.contains(&g.nodes[r].source_type.as_str()));
        if scalar || !meets_data(g, &readers, &data, &stored, TensorId(t)) {
            constants.push(t);
        }
    }
    for &t in &constants {
        g.tensors[t].kind = TensorKind::Constant;
        g.tensors[t].trainable = false;
    }
    for j in 0..g.nodes.len() {
        if !g.nodes[j].params.iter().any(|p| constants.contains(&p.0)) {
            continue;
        }
        let params: Vec<TensorId> = g.nodes[j].params.iter().copied().filter(|p| !constants.contains(&p.0)).collect();
        let inputs: Vec<TensorId> = file_inputs(j).into_iter().filter(|t| !params.contains(t)).collect();
        g.nodes[j].inputs = inputs;
        g.nodes[j].params = params;
    }
    constants.len()
}

/// Whether the value of `w` reaches a node that reads data (module doc).
fn meets_data(g: &Graph, readers: &[Vec<usize>], data: &[bool], stored: &[bool], w: TensorId) -> bool {
    let mut stack = vec![w];
    let mut seen = vec![false; g.tensors.len()];
    while let Some(t) = stack.pop() {
        if std::mem::replace(&mut seen[t.0], true) {
            continue;
        }
        for &r in &readers[t.0] {
            let n = &g.nodes[r];
            if n.inputs.iter().any(|x| data[x.0]) {
                return true;
            }
            let follow = LAYOUT.contains(&n.source_type.as_str())
                || ADDITIVE.contains(&n.source_type.as_str())
                || n.inputs.iter().chain(n.params.iter()).all(|x| stored[x.0]);
            if follow {
                stack.extend(n.outputs.iter().copied());
            }
        }
    }
    false
}

/// Stored tensors (weights, constants) and what nodes compute from stored
/// tensors alone.
fn stored_tensors(g: &Graph) -> Vec<bool> {
    let mut stored: Vec<bool> = g.tensors.iter().map(|t| matches!(t.kind, TensorKind::Param | TensorKind::Constant) && t.producer.is_none()).collect();
    for n in &g.nodes {
        if n.inputs.iter().chain(n.params.iter()).all(|t| stored[t.0]) {
            for &o in &n.outputs {
                stored[o.0] = true;
            }
        }
    }
    stored
}

/// Graph inputs and what a node computes from at least one of them.
fn data_tensors(g: &Graph) -> Vec<bool> {
    let mut data: Vec<bool> = g.tensors.iter().map(|t| t.kind == TensorKind::Input).collect();
    for n in &g.nodes {
        if n.op.schedule_facts().produces == Produces::Data && n.inputs.iter().any(|t| data[t.0]) {
            for &o in &n.outputs {
                data[o.0] = true;
            }
        }
    }
    data
}

#[cfg(test)]
mod tests {
    use super::super::proto::{
        put_len_field, AttributeProto, Dimension, GraphProto, ModelProto, NodeMsg, OperatorSetIdProto, TensorProto,
        TensorShapeProto, TypeProto, TypeTensor, ValueInfoProto,
    };
    use crate::graph::{Graph, TensorKind};
    use crate::load::{load, LoadOptions};
    use prost::Message;

    fn node(op: &str, inputs: &[&str], output: &str, attribute: Vec<AttributeProto>) -> NodeMsg {
        NodeMsg {
            input: inputs.iter().map(|s| s.to_string()).collect(),
            output: vec![output.to_string()],
            name: output.to_string(),
            op_type: op.into(),
            attribute,
            ..Default::default()
        }
    }

    fn int_attr(name: &str, i: i64) -> AttributeProto {
        AttributeProto { name: name.into(), i, r#type: 2, ..Default::default() }
    }

    fn value(name: &str, elem_type: i32, dims: &[i64]) -> ValueInfoProto {
        let dim = dims.iter().map(|&d| Dimension { dim_value: Some(d), dim_param: None }).collect();
        ValueInfoProto {
            name: name.into(),
            r#type: Some(TypeProto {
                tensor_type: Some(TypeTensor { elem_type, shape: Some(TensorShapeProto { dim }) }),
            }),
        }
    }

    fn init(name: &str, data_type: i32, dims: &[i64]) -> TensorProto {
        TensorProto { dims: dims.to_vec(), data_type, name: name.into(), ..Default::default() }
    }

    /// Loads a graph with these inputs, initializers and nodes (the last node's output is the graph output).
    fn graph(inputs: Vec<ValueInfoProto>, initializer: Vec<TensorProto>, nodes: Vec<NodeMsg>) -> Graph {
        let out = nodes.last().unwrap().output[0].clone();
        let g = GraphProto { node: nodes, name: "g".into(), initializer, input: inputs, output: vec![value(&out, 1, &[])], value_info: vec![] };
        let mut bytes = ModelProto {
            ir_version: 8,
            producer_name: "constants-test".into(),
            opset_import: vec![OperatorSetIdProto { domain: String::new(), version: 17 }],
        }
        .encode_to_vec();
        put_len_field(&mut bytes, 7, &g.encode_to_vec());
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.onnx");
        std::fs::write(&path, bytes).unwrap();
        load(&path, &LoadOptions::default()).unwrap()
    }

    fn kind(g: &Graph, name: &str) -> TensorKind {
        g.tensors.iter().find(|t| t.name == name).unwrap().kind
    }

    #[test]
    fn scalars_of_arithmetic_are_constants_and_other_scalars_stay_weights() {
        // x·scale (one element, read by Mul) is a constant; PReLU's one slope is learned.
        let g = graph(
            vec![value("x", 1, &[2, 4, 3])],
            vec![init("scale", 1, &[]), init("slope", 1, &[1]), init("bias", 1, &[3])],
            vec![
                node("Mul", &["x", "scale"], "scaled", vec![]),
                node("Add", &["scaled", "bias"], "biased", vec![]),
                node("PRelu", &["biased", "slope"], "y", vec![]),
            ],
        );
        assert_eq!(kind(&g, "scale"), TensorKind::Constant);
        assert_eq!(kind(&g, "slope"), TensorKind::Param);
        assert_eq!(kind(&g, "bias"), TensorKind::Param);
        assert_eq!(g.param_totals().params, 4);
        // The constant is the Mul's data operand now, not its weight.
        let mul = g.nodes.iter().find(|n| n.name == "scaled").unwrap();
        assert!(mul.params.is_empty());
        assert_eq!(mul.inputs.len(), 2);
    }

    #[test]
    fn values_that_never_meet_the_data_are_constants() {
        // Rotary frequencies: inv_freq × (positions from the input's shape),
        // cos, then × x. The table gathered by the input ids, and a position
        // table gathered by stored position ids then added, are learned.
        let g = graph(
            vec![value("x", 1, &[2, 4, 3]), value("ids", 7, &[2, 4])],
            vec![init("inv_freq", 1, &[3]), init("table", 1, &[10, 3]), init("pos_table", 1, &[8, 3]), init("pos_ids", 7, &[4])],
            vec![
                node("Shape", &["x"], "shape", vec![]),
                node("Cast", &["shape"], "positions", vec![int_attr("to", 1)]),
                node("Mul", &["inv_freq", "positions"], "freqs", vec![]),
                node("Cos", &["freqs"], "cos", vec![]),
                node("Mul", &["x", "cos"], "rotated", vec![]),
                node("Gather", &["table", "ids"], "emb", vec![]),
                node("Gather", &["pos_table", "pos_ids"], "pos", vec![]),
                node("Add", &["emb", "pos"], "embedded", vec![]),
                node("Add", &["rotated", "embedded"], "y", vec![]),
            ],
        );
        assert_eq!(kind(&g, "inv_freq"), TensorKind::Constant);
        assert_eq!(kind(&g, "table"), TensorKind::Param);
        assert_eq!(kind(&g, "pos_table"), TensorKind::Param);
        assert_eq!(g.param_totals().params, 30 + 24);
    }

    #[test]
    fn a_bias_plus_a_mask_from_the_shape_is_learned() {
        // T5: a bias table gathered by buckets from the sequence length, plus a
        // mask from the same, then added to the scores.
        let g = graph(
            vec![value("x", 1, &[2, 4, 3])],
            vec![init("bias_table", 1, &[3, 3])],
            vec![
                node("Shape", &["x"], "shape", vec![]),
                node("Gather", &["bias_table", "shape"], "bias", vec![]),
                node("Cast", &["shape"], "mask", vec![int_attr("to", 1)]),
                node("Add", &["bias", "mask"], "masked", vec![]),
                node("Add", &["x", "masked"], "y", vec![]),
            ],
        );
        assert_eq!(kind(&g, "bias_table"), TensorKind::Param);
    }

    #[test]
    fn weights_transformed_by_stored_values_alone_are_learned() {
        // A standardised weight, (w − mean(w)) · g, still reaches the data.
        let g = graph(
            vec![value("x", 1, &[2, 4, 3])],
            vec![init("w", 1, &[4, 3]), init("g", 1, &[4, 1])],
            vec![
                node("ReduceMean", &["w"], "mean", vec![int_attr("keepdims", 1)]),
                node("Sub", &["w", "mean"], "centred", vec![]),
                node("Mul", &["centred", "g"], "standardised", vec![]),
                node("Mul", &["x", "standardised"], "y", vec![]),
            ],
        );
        assert_eq!(kind(&g, "w"), TensorKind::Param);
        assert_eq!(kind(&g, "g"), TensorKind::Param);
        assert_eq!(g.param_totals().params, 16);
    }
}
