//! Builds a graph forward, node by node, running each op's shape rule as the
//! node is added and creating the weight tensors its parameter rule names.
//!
//! Loaders whose format does not state shapes (Caffe) use this; a node whose
//! inputs are not all known gets unknown outputs, with the reason carried
//! forward, so one layer without a rule never hides the rest of the net.

use std::collections::HashMap;

use super::{AttrValue, DType, Graph, ModelFormat, Node, NodeId, Shape, ShapeError, Tensor, TensorId, TensorKind, Unknown};
use crate::ops::{Op, OutShape, UnknownOp};

/// One node to add.
pub struct NodeSpec {
    pub name: String,
    pub source_type: String,
    pub op: Op,
    pub inputs: Vec<TensorId>,
    pub output_names: Vec<String>,
    pub in_place: bool,
    /// Per weight blob, in the op's order: a sharing key (Caffe `param { name }`).
    pub param_names: Vec<Option<String>>,
    pub attrs: Vec<(String, AttrValue)>,
}

pub struct GraphBuilder {
    graph: Graph,
    /// For tensors sized at run time: their shape with 1 for the data-dependent
    /// extent, used only to size later layers' weights.
    provisional: HashMap<TensorId, Shape>,
    /// Layers with weights whose input shape is unknown (one warning at the end).
    uncounted: Vec<NodeId>,
    shared_params: HashMap<String, TensorId>,
    dtype: DType,
}

impl GraphBuilder {
    pub fn new(name: impl Into<String>, format: ModelFormat, dtype: DType) -> Self {
        GraphBuilder { graph: Graph::new(name, format), provisional: HashMap::new(), uncounted: Vec::new(), shared_params: HashMap::new(), dtype }
    }

    pub fn graph(&self) -> &Graph {
        &self.graph
    }

    pub fn warn(&mut self, message: impl Into<String>) {
        self.graph.warn(message);
    }

    /// Records that `--batch` replaced an input's first dimension.
    pub fn note_batch_override(&mut self, o: super::BatchOverride) {
        self.graph.batch_overrides.push(o);
    }

    pub fn add_input(&mut self, name: &str, shape: Result<Shape, Unknown>) -> TensorId {
        let (shape, unknown) = split(shape);
        let id = self.graph.add_tensor(Tensor {
            name: name.to_string(),
            shape,
            unknown,
            dtype: self.dtype,
            kind: TensorKind::Input,
            trainable: false,
            producer: None,
        });
        self.graph.inputs.push(id);
        id
    }

    /// Add a node; its outputs get shapes when every input has one.
    /// A shape rule that rejects its inputs is an error for the caller to locate.
    pub fn add_node(&mut self, spec: NodeSpec) -> Result<Vec<TensorId>, ShapeError> {
        let node_id = NodeId(self.graph.nodes.len());
        let mut runtime_input = false;
        let input_shapes: Option<Vec<&Shape>> = spec
            .inputs
            .iter()
            .map(|&t| {
                self.graph.tensor(t).shape.as_ref().or_else(|| {
                    let p = self.provisional.get(&t);
                    runtime_input |= p.is_some();
                    p
                })
            })
            .collect();
        let n_outputs = spec.output_names.len();

        let mut provisional_outputs: Vec<Option<Shape>> = vec![None; n_outputs];
        let (outputs, params): (Vec<Result<Shape, Unknown>>, Vec<_>) = match (&spec.op, input_shapes) {
            (Op::Unknown(UnknownOp { type_name }), _) => {
                self.graph.warn(format!(
                    "layer \"{}\": no shape rule for type \"{type_name}\"; its outputs are unknown",
                    spec.name
                ));
                (vec![Err(Unknown::NoRule); n_outputs], Vec::new())
            }
            (op, Some(shapes)) => {
                let inferred = op.infer_shapes(&shapes, n_outputs).and_then(|o| Ok((o, op.param_specs(&shapes)?)));
                let (outs, params) = match inferred {
                    Ok(v) => v,
                    // A rule that rejects a stand-in extent of 1 is not the file's fault.
                    Err(_) if runtime_input => (Vec::new(), Vec::new()),
                    Err(e) => return Err(e),
                };
                let size = self.dtype.size_bytes();
                if let Some(OutShape::Known(big)) =
                    outs.iter().find(|o| matches!(o, OutShape::Known(s) if s.elems().and_then(|e| e.checked_mul(size)).is_none()))
                {
                    return Err(ShapeError::new(format!("the output {big} overflows 64 bits of bytes")));
                }
                let outs = (0..n_outputs)
                    .map(|i| match outs.get(i) {
                        Some(OutShape::Known(s)) if !runtime_input => Ok(s.clone()),
                        Some(OutShape::Known(s) | OutShape::RunTime(s)) => {
                            provisional_outputs[i] = Some(s.clone());
                            Err(Unknown::RunTime)
                        }
                        None if runtime_input => Err(Unknown::RunTime),
                        None => Err(Unknown::NoRule),
                    })
                    .collect();
                (outs, params)
            }
            (_, None) => {
                // Carry the first reason forward: run-time sizes stay run-time.
                let reason = spec
                    .inputs
                    .iter()
                    .find_map(|&t| self.graph.tensor(t).unknown.clone())
                    .unwrap_or(Unknown::NoRule);
                if spec.op.has_weights() {
                    self.uncounted.push(node_id);
                }
                (vec![Err(reason); n_outputs], Vec::new())
            }
        };

        let mut param_ids = Vec::with_capacity(params.len());
        for (i, p) in params.into_iter().enumerate() {
            let key = spec.param_names.get(i).cloned().flatten().filter(|k| !k.is_empty());
            if let Some(existing) = key.as_ref().and_then(|k| self.shared_params.get(k)) {
                let existing = *existing;
                if self.graph.tensor(existing).shape.as_ref() != Some(&p.shape) {
                    self.graph.warn(format!(
                        "layer \"{}\": shared weight \"{}\" has shape {} here but {} where it was first used",
                        spec.name,
                        key.as_deref().unwrap_or_default(),
                        p.shape,
                        self.graph.tensor(existing).shape.as_ref().map(|s| s.to_string()).unwrap_or_default()
                    ));
                }
                param_ids.push(existing);
                continue;
            }
            let id = self.graph.add_tensor(Tensor {
                name: key.clone().unwrap_or_else(|| format!("{}/{}", spec.name, p.role)),
                shape: Some(p.shape),
                unknown: None,
                dtype: self.dtype,
                kind: TensorKind::Param,
                trainable: p.trainable,
                producer: None,
            });
            if let Some(k) = key {
                self.shared_params.insert(k, id);
            }
            param_ids.push(id);
        }

        let mut output_ids = Vec::with_capacity(n_outputs);
        for ((name, shape), provisional) in spec.output_names.iter().zip(outputs).zip(provisional_outputs) {
            let (shape, unknown) = split(shape);
            if let Some(p) = provisional {
                self.provisional.insert(TensorId(self.graph.tensors.len()), p);
            }
            output_ids.push(self.graph.add_tensor(Tensor {
                name: name.clone(),
                shape,
                unknown,
                dtype: self.dtype,
                kind: TensorKind::Activation,
                trainable: false,
                producer: Some(node_id),
            }));
        }
        self.graph.nodes.push(Node {
            name: spec.name,
            source_type: spec.source_type,
            op: spec.op,
            inputs: spec.inputs,
            params: param_ids,
            outputs: output_ids.clone(),
            in_place: spec.in_place,
            attrs: spec.attrs,
            scope: Vec::new(),
            call: None,
        });
        Ok(output_ids)
    }

    /// Finish: the outputs are the tensors no node reads.
    pub fn finish(mut self) -> Graph {
        if let Some(&first) = self.uncounted.first() {
            let n = self.uncounted.len();
            let first = self.graph.node(first).name.clone();
            self.graph.warn(format!(
                "{n} layer{} with weights ha{} an unknown input shape, so {} parameters are not counted (first: \"{first}\")",
                if n == 1 { "" } else { "s" },
                if n == 1 { "s" } else { "ve" },
                if n == 1 { "its" } else { "their" },
            ));
        }
        self.graph.uncounted_weights = std::mem::take(&mut self.uncounted);
        let consumers = self.graph.consumers();
        let mut replaced = vec![false; self.graph.tensors.len()];
        for node in &self.graph.nodes {
            if node.in_place {
                if let Some(&first) = node.inputs.first() {
                    replaced[first.0] = true;
                }
            }
        }
        self.graph.outputs = self
            .graph
            .tensors
            .iter()
            .enumerate()
            .filter(|(i, t)| t.kind == TensorKind::Activation && consumers[*i].is_empty() && !replaced[*i])
            .map(|(i, _)| TensorId(i))
            .collect();
        self.graph
    }
}

fn split(shape: Result<Shape, Unknown>) -> (Option<Shape>, Option<Unknown>) {
    match shape {
        Ok(s) => (Some(s), None),
        Err(u) => (None, Some(u)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::{ConvOp, ConvParams, Window};

    fn conv(out: u64) -> Op {
        Op::Conv(ConvOp::Forward(ConvParams {
            out_channels: out,
            window: Window::symmetric(vec![3, 3], vec![1, 1], vec![1, 1], vec![1, 1]),
            group: 1,
            depthwise: false,
            bias: true,
            axis: 1,
            output_pad: vec![],
        }))
    }

    fn spec(name: &str, op: Op, inputs: Vec<TensorId>, shared: Vec<Option<String>>) -> NodeSpec {
        NodeSpec {
            name: name.into(),
            source_type: "Convolution".into(),
            op,
            inputs,
            output_names: vec![name.into()],
            in_place: false,
            param_names: shared,
            attrs: vec![],
        }
    }

    #[test]
    fn shared_weights_are_one_tensor() {
        let mut b = GraphBuilder::new("t", ModelFormat::Caffe, DType::F32);
        let x = b.add_input("x", Ok(Shape::new(vec![1, 4, 8, 8])));
        let y = b.add_input("y", Ok(Shape::new(vec![1, 4, 8, 8])));
        let names = vec![Some("w".to_string()), Some("b".to_string())];
        b.add_node(spec("c1", conv(4), vec![x], names.clone())).unwrap();
        b.add_node(spec("c2", conv(4), vec![y], names)).unwrap();
        let g = b.finish();
        // 4·4·9 + 4 = 148, counted once.
        assert_eq!(g.param_totals().params, 148);
        assert_eq!(g.nodes[0].params, g.nodes[1].params);
        assert_eq!(g.node_param_counts(), vec![(148, 0), (0, 0)]);
    }

    #[test]
    fn unknown_op_poisons_only_its_descendants() {
        let mut b = GraphBuilder::new("t", ModelFormat::Caffe, DType::F32);
        let x = b.add_input("x", Ok(Shape::new(vec![1, 4, 8, 8])));
        let u = b.add_node(spec("u", Op::Unknown(UnknownOp { type_name: "Magic".into() }), vec![x], vec![])).unwrap();
        let after = b.add_node(spec("after", conv(4), u, vec![])).unwrap();
        let side = b.add_node(spec("side", conv(8), vec![x], vec![])).unwrap();
        let g = b.finish();
        assert_eq!(g.tensor(after[0]).unknown, Some(Unknown::NoRule));
        assert_eq!(g.tensor(side[0]).shape, Some(Shape::new(vec![1, 8, 8, 8])));
        assert_eq!(g.warnings.len(), 2, "{:?}", g.warnings);
        assert_eq!(g.outputs, vec![after[0], side[0]]);
    }
}
