//! Builds a graph forward, node by node, running each op's shape rule as the
//! node is added and creating the weight tensors its parameter rule names.
//!
//! Loaders whose format does not state shapes (Caffe) use this; a node whose
//! inputs are not all known gets unknown outputs, with the reason carried
//! forward, so one layer without a rule never hides the rest of the net.

use std::collections::HashMap;

use super::{AttrValue, DType, Graph, ModelFormat, Node, NodeId, Shape, ShapeError, Tensor, TensorId, TensorKind, Unknown};
use crate::ops::{Op, OutShape, ParamSpec, UnknownOp};

/// One node to add.
pub struct NodeSpec {
    /// The node's name.
    pub name: String,
    /// The operator as the file spells it.
    pub source_type: String,
    /// nnmem's operator.
    pub op: Op,
    /// Data inputs.
    pub inputs: Vec<TensorId>,
    /// Names for its outputs.
    pub output_names: Vec<String>,
    /// Whether it writes over its first input.
    pub in_place: bool,
    /// Per weight blob, in the op's order: a sharing key (Caffe `param { name }`).
    pub param_names: Vec<Option<String>>,
    /// Attributes as the file states them.
    pub attrs: Vec<(String, AttrValue)>,
}

/// Builds a `Graph` node by node, sizing each node's outputs and weights by its op's rules as it is added.
pub struct GraphBuilder {
    graph: Graph,
    /// Tensors whose shape depends on a run-time extent: their shape at every
    /// probe point (see `Probes`), so that later layers are sized by the same
    /// rules and keep the extents that do not depend on it.
    probed: HashMap<TensorId, Probed>,
    /// Run-time extents seen so far, in order of creation.
    symbols: Vec<RunTimeSymbol>,
    /// `--dim NAME=N` values; a run-time extent of that name takes the value.
    bindings: HashMap<String, u64>,
    /// Binding names that named a run-time extent.
    used_bindings: Vec<String>,
    /// Layers with weights whose input shape is unknown (one warning at the end).
    uncounted: Vec<NodeId>,
    /// Layers of a type without a rule (any weights they store are unknown).
    unknown_types: Vec<NodeId>,
    shared_params: HashMap<String, TensorId>,
    dtype: DType,
}

/// A tensor's shapes at the probe points. `opaque` marks a stand-in whose
/// run-time extent nnmem cannot follow (1 where the data decides): what is
/// computed from it stays `run_time`, its weights are still sized.
#[derive(Clone, Debug)]
struct Probed {
    shapes: Vec<Shape>,
    opaque: bool,
}

impl Probed {
    /// The shape at point `p`; a tensor made before a later symbol existed
    /// does not depend on it, so it has its base shape there.
    fn at(&self, p: usize) -> &Shape {
        self.shapes.get(p).unwrap_or(&self.shapes[0])
    }
}

/// A count set at run time, a free symbol until `--dim` binds it.
#[derive(Clone, Debug)]
struct RunTimeSymbol {
    name: String,
    set_by: String,
    uses: Vec<(String, usize)>,
}

/// The values run-time extents take while a shape formula is derived: every
/// symbol at `BASE` at point 0; symbol j at `PROBE[0]` at point 1 + 2j and at
/// `PROBE[1]` at point 2 + 2j. Primes, so that no rule divides them evenly by
/// accident; a dimension that moves with one symbol only, by the same step at
/// both probes, is `a·S + b`; anything else has no formula (`run_time`).
const BASE: u64 = 101;
const PROBE: [u64; 2] = [103, 107];

fn symbol_value(symbol: usize, point: usize) -> u64 {
    if point == 1 + 2 * symbol {
        PROBE[0]
    } else if point == 2 + 2 * symbol {
        PROBE[1]
    } else {
        BASE
    }
}

/// How one run-time extent of a node is given a value.
#[derive(Clone, Copy)]
enum Extent {
    Bound(u64),
    Symbol(usize),
    /// Past `MAX_SYMBOLS`: a stand-in 1, and what follows is `run_time`.
    Opaque,
}

impl Extent {
    fn at(self, point: usize) -> u64 {
        match self {
            Extent::Bound(v) => v,
            Extent::Symbol(j) => symbol_value(j, point),
            Extent::Opaque => 1,
        }
    }
}

/// Run-time counts followed by name; every rule after one runs once per probe
/// point (1 + 2 per symbol), so a file with thousands of proposal layers
/// cannot make loading quadratic. Real nets have one to three.
const MAX_SYMBOLS: usize = 16;

/// `a·S + b` from a dimension's values at the probe points, or the constant.
fn formula(values: &[u64], symbols: &[RunTimeSymbol]) -> Option<String> {
    let d0 = values[0];
    if values.iter().all(|&v| v == d0) {
        return Some(d0.to_string());
    }
    let at = |p: usize| values.get(p).copied().unwrap_or(d0);
    let varying: Vec<usize> = (0..symbols.len()).filter(|&j| at(1 + 2 * j) != d0 || at(2 + 2 * j) != d0).collect();
    let [j] = varying[..] else { return None };
    let (d0, d1, d2) = (d0 as i128, at(1 + 2 * j) as i128, at(2 + 2 * j) as i128);
    let (step1, step2) = (PROBE[0] as i128 - BASE as i128, PROBE[1] as i128 - BASE as i128);
    if (d1 - d0) % step1 != 0 {
        return None;
    }
    let a = (d1 - d0) / step1;
    if a <= 0 || d2 - d0 != a * step2 {
        return None;
    }
    let b = d0 - a * BASE as i128;
    let name = &symbols[j].name;
    let mut text = if a == 1 { name.clone() } else { format!("{a}*{name}") };
    if b != 0 {
        text.push_str(&format!("{b:+}"));
    }
    Some(text)
}

impl GraphBuilder {
    /// An empty builder; float tensors get `dtype`.
    pub fn new(name: impl Into<String>, format: ModelFormat, dtype: DType) -> Self {
        GraphBuilder {
            graph: Graph::new(name, format),
            probed: HashMap::new(),
            symbols: Vec::new(),
            bindings: HashMap::new(),
            used_bindings: Vec::new(),
            uncounted: Vec::new(),
            unknown_types: Vec::new(),
            shared_params: HashMap::new(),
            dtype,
        }
    }

    /// Values for run-time extents (`--dim R=300`): an extent of that name is
    /// then known.
    pub fn bind_dims(&mut self, bindings: impl IntoIterator<Item = (String, u64)>) {
        self.bindings.extend(bindings);
    }

    /// The bindings that named a run-time extent.
    pub fn used_bindings(&self) -> &[String] {
        &self.used_bindings
    }

    /// The graph so far.
    pub fn graph(&self) -> &Graph {
        &self.graph
    }

    /// Adds a warning to the graph.
    pub fn warn(&mut self, message: impl Into<String>) {
        self.graph.warn(message);
    }

    /// Adds a note (a choice made for the user) to the graph.
    pub fn note(&mut self, message: impl Into<String>) {
        self.graph.notes.push(message.into());
    }

    /// Records that `--batch` replaced an input's first dimension.
    pub fn note_batch_override(&mut self, o: super::BatchOverride) {
        self.graph.batch_overrides.push(o);
    }

    /// Adds a graph input of this shape, or unknown for this reason.
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

    /// An input known except along `axis`, a count the data decides (an
    /// annotated-data layer's boxes): a free symbol named after `symbol`, or
    /// the value `--dim` gives it. `set_by` names the layer.
    pub fn add_run_time_input(&mut self, name: &str, shape: Shape, axis: usize, symbol: &'static str, set_by: &str) -> TensorId {
        let id = TensorId(self.graph.tensors.len());
        let extent = self.extent_for(symbol, set_by);
        let shapes: Vec<Shape> = (0..self.n_points()).map(|p| with_extent(&shape, axis, extent.at(p))).collect();
        let result = match extent {
            Extent::Bound(_) => Ok(shapes[0].clone()),
            Extent::Opaque => {
                self.probed.insert(id, Probed { shapes: vec![shapes[0].clone()], opaque: true });
                Err(Unknown::RunTime)
            }
            Extent::Symbol(j) => {
                self.symbols[j].uses.push((name.to_string(), axis));
                self.probed.insert(id, Probed { shapes: shapes.clone(), opaque: false });
                Err(self.unknown_of(&shapes))
            }
        };
        self.add_input(name, result)
    }

    fn n_points(&self) -> usize {
        1 + 2 * self.symbols.len()
    }

    /// A new run-time extent named after `letter` (`R`, then `R2`, …), or its bound value.
    fn extent_for(&mut self, letter: &str, set_by: &str) -> Extent {
        let taken = |n: &str| self.symbols.iter().any(|s| s.name == n) || self.used_bindings.iter().any(|b| b == n);
        let mut name = letter.to_string();
        let mut k = 2;
        while taken(&name) {
            name = format!("{letter}{k}");
            k += 1;
        }
        if let Some(&v) = self.bindings.get(&name) {
            self.used_bindings.push(name);
            return Extent::Bound(v);
        }
        if self.symbols.len() >= MAX_SYMBOLS {
            if self.symbols.len() == MAX_SYMBOLS && !self.graph.warnings.iter().any(|w| w.contains("run-time counts")) {
                self.graph.warn(format!(
                    "layer \"{set_by}\": more than {MAX_SYMBOLS} run-time counts; this one and later ones are not followed (what they size is run_time)"
                ));
            }
            return Extent::Opaque;
        }
        self.symbols.push(RunTimeSymbol { name, set_by: set_by.to_string(), uses: Vec::new() });
        Extent::Symbol(self.symbols.len() - 1)
    }

    /// Why a probed shape has no single value: its formula, or `RunTime`
    /// when some extent follows no formula.
    fn unknown_of(&self, shapes: &[Shape]) -> Unknown {
        let rank = shapes[0].rank();
        if shapes.iter().any(|s| s.rank() != rank) {
            return Unknown::RunTime;
        }
        let dims: Option<Vec<String>> = (0..rank)
            .map(|axis| formula(&shapes.iter().map(|s| s.dims()[axis]).collect::<Vec<_>>(), &self.symbols))
            .collect();
        dims.map_or(Unknown::RunTime, Unknown::Symbolic)
    }

    /// The shape of `t` at probe point `p`: its own when known, else its probed one.
    fn shape_at(&self, t: TensorId, p: usize) -> Option<&Shape> {
        self.graph.tensor(t).shape.as_ref().or_else(|| self.probed.get(&t).map(|s| s.at(p)))
    }

    /// Add a node; its outputs get shapes when every input has one.
    /// A shape rule that rejects its inputs is an error for the caller to locate.
    pub fn add_node(&mut self, spec: NodeSpec) -> Result<Vec<TensorId>, ShapeError> {
        let node_id = NodeId(self.graph.nodes.len());
        let n_outputs = spec.output_names.len();
        let probed_input = spec.inputs.iter().any(|t| self.probed.contains_key(t));
        let opaque_input = spec.inputs.iter().any(|t| self.probed.get(t).is_some_and(|p| p.opaque));
        let sized = spec.inputs.iter().all(|&t| self.shape_at(t, 0).is_some());

        let mut probed_outputs: Vec<Option<Probed>> = vec![None; n_outputs];
        // (output, symbol, axis) of each run-time extent the node creates.
        let mut uses: Vec<(usize, usize, usize)> = Vec::new();
        let (outputs, params): (Vec<Result<Shape, Unknown>>, Vec<ParamSpec>) = match &spec.op {
            Op::Unknown(UnknownOp { type_name }) => {
                self.graph.warn(format!(
                    "layer \"{}\": no shape rule for type \"{type_name}\"; its outputs and any weights it stores are unknown",
                    spec.name
                ));
                self.unknown_types.push(node_id);
                (vec![Err(Unknown::NoRule); n_outputs], Vec::new())
            }
            op if sized => match self.infer_probed(op, &spec, n_outputs)? {
                Some(Inferred { outputs, params, weights_vary, uses: new_uses }) => {
                    uses = new_uses;
                    if weights_vary && op.has_weights() {
                        self.uncounted.push(node_id);
                    }
                    let mut results = Vec::with_capacity(n_outputs);
                    for (i, out) in outputs.into_iter().enumerate() {
                        results.push(match out {
                            OutputShapes::Known(s) if !opaque_input => Ok(s),
                            OutputShapes::Known(s) => {
                                probed_outputs[i] = Some(Probed { shapes: vec![s], opaque: true });
                                Err(Unknown::RunTime)
                            }
                            OutputShapes::Probed(p) => {
                                let why = if p.opaque { Unknown::RunTime } else { self.unknown_of(&p.shapes) };
                                probed_outputs[i] = Some(p);
                                Err(why)
                            }
                            OutputShapes::Missing if probed_input => Err(Unknown::RunTime),
                            OutputShapes::Missing => Err(Unknown::NoRule),
                        });
                    }
                    (results, params)
                }
                // A rule that rejects a stand-in extent is not the file's fault.
                None => {
                    if op.has_weights() {
                        self.uncounted.push(node_id);
                    }
                    (vec![Err(Unknown::RunTime); n_outputs], Vec::new())
                }
            },
            op => {
                // Carry the first reason forward: run-time sizes stay run-time.
                let reason = spec
                    .inputs
                    .iter()
                    .find_map(|&t| self.graph.tensor(t).unknown.clone())
                    .unwrap_or(Unknown::NoRule);
                if op.has_weights() {
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
        for ((name, shape), probed) in spec.output_names.iter().zip(outputs).zip(probed_outputs) {
            let (shape, unknown) = split(shape);
            let id = TensorId(self.graph.tensors.len());
            if let Some(p) = probed {
                self.probed.insert(id, p);
            }
            for &(_, j, axis) in uses.iter().filter(|u| u.0 == output_ids.len()) {
                self.symbols[j].uses.push((name.clone(), axis));
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
            scope: Default::default(),
            call: None,
        });
        Ok(output_ids)
    }

    /// The op's rules at input probe point `p`.
    fn eval(&self, op: &Op, inputs: &[TensorId], n_outputs: usize, p: usize) -> Result<(Vec<OutShape>, Vec<ParamSpec>), ShapeError> {
        let shapes: Vec<&Shape> = inputs.iter().filter_map(|&t| self.shape_at(t, p)).collect();
        let outs = op.infer_shapes(&shapes, n_outputs)?;
        let params = op.param_specs(&shapes)?;
        Ok((outs, params))
    }

    /// Runs the op's rules once, or, when an input or an output depends on a
    /// run-time extent, at every probe point. `Ok(None)`: a rule rejected a
    /// probed input (a stand-in value, not the file's fault).
    fn infer_probed(&mut self, op: &Op, spec: &NodeSpec, n_outputs: usize) -> Result<Option<Inferred>, ShapeError> {
        let probed_input = spec.inputs.iter().any(|t| self.probed.contains_key(t));
        let (outs0, params0) = match self.eval(op, &spec.inputs, n_outputs, 0) {
            Ok(v) => v,
            Err(_) if probed_input => return Ok(None),
            Err(e) => return Err(e),
        };
        let size = self.dtype.size_bytes();
        if let Some(OutShape::Known(big)) =
            outs0.iter().find(|o| matches!(o, OutShape::Known(s) if s.elems().and_then(|e| e.checked_mul(size)).is_none()))
        {
            if probed_input {
                return Ok(None);
            }
            return Err(ShapeError::new(format!("the output {big} overflows 64 bits of bytes")));
        }
        // One extent per letter per node: a proposal layer's rois and scores share R.
        let mut extents: Vec<(&'static str, Extent)> = Vec::new();
        for o in &outs0 {
            if let OutShape::RunTimeExtent { symbol, .. } = o {
                if !extents.iter().any(|(l, _)| l == symbol) {
                    let e = self.extent_for(symbol, &spec.name);
                    extents.push((symbol, e));
                }
            }
        }
        let new_symbol = extents.iter().any(|(_, e)| matches!(e, Extent::Symbol(_)));
        let n_points = if probed_input || new_symbol { self.n_points() } else { 1 };
        let mut per_point = vec![outs0];
        let mut weights_vary = false;
        for p in 1..n_points {
            match self.eval(op, &spec.inputs, n_outputs, p) {
                Ok((outs, params)) => {
                    weights_vary |= params != params0;
                    per_point.push(outs);
                }
                Err(_) => return Ok(None),
            }
        }
        let extent_of = |letter: &str| extents.iter().find(|(l, _)| *l == letter).map(|(_, e)| *e);
        let mut outputs = Vec::with_capacity(n_outputs);
        let mut uses = Vec::new();
        for i in 0..n_outputs {
            let mut shapes = Vec::with_capacity(n_points);
            let (mut opaque, mut missing) = (false, false);
            for (p, outs) in per_point.iter().enumerate() {
                match outs.get(i) {
                    Some(OutShape::Known(s)) => shapes.push(s.clone()),
                    Some(OutShape::RunTime(s)) => {
                        opaque = true;
                        shapes.push(s.clone());
                    }
                    Some(OutShape::RunTimeExtent { shape, axis, symbol }) => {
                        // An extent the rule gave at point 0 has a symbol; one it did not is opaque.
                        let e = extent_of(symbol).unwrap_or(Extent::Opaque);
                        match (p, e) {
                            (0, Extent::Symbol(j)) => uses.push((i, j, *axis)),
                            (_, Extent::Opaque) => opaque = true,
                            _ => {}
                        }
                        shapes.push(with_extent(shape, *axis, e.at(p)));
                    }
                    None => missing = true,
                }
            }
            outputs.push(if missing {
                OutputShapes::Missing
            } else if opaque {
                OutputShapes::Probed(Probed { shapes, opaque: true })
            } else if shapes.iter().all(|s| s == &shapes[0]) {
                OutputShapes::Known(shapes.swap_remove(0))
            } else {
                OutputShapes::Probed(Probed { shapes, opaque: false })
            });
        }
        let params = if weights_vary { Vec::new() } else { params0 };
        Ok(Some(Inferred { outputs, params, weights_vary, uses }))
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
        // A type without a rule may store weights: the totals are a lower bound.
        let mut uncounted = std::mem::take(&mut self.uncounted);
        uncounted.append(&mut self.unknown_types);
        uncounted.sort_unstable();
        self.graph.uncounted_weights = uncounted;
        self.graph.free_symbols.extend(self.symbols.drain(..).map(|s| super::FreeSymbol {
            name: s.name,
            uses: s.uses,
            named_in_file: false,
            set_by: Some(s.set_by),
        }));
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

/// What the rules gave one output over the probe points.
enum OutputShapes {
    /// The same shape at every point.
    Known(Shape),
    Probed(Probed),
    /// The rule gave no shape for this output.
    Missing,
}

struct Inferred {
    outputs: Vec<OutputShapes>,
    params: Vec<ParamSpec>,
    /// The weights' shapes depend on a run-time extent: they are not counted.
    weights_vary: bool,
    /// (output, symbol, axis) of each run-time extent the node creates.
    uses: Vec<(usize, usize, usize)>,
}

fn with_extent(shape: &Shape, axis: usize, value: u64) -> Shape {
    let mut s = shape.clone();
    if let Some(d) = s.0.get_mut(axis) {
        *d = value;
    }
    s
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
        Op::Conv(ConvOp::Forward(Box::new(ConvParams {
            out_channels: out,
            window: Window::symmetric(vec![3, 3], vec![1, 1], vec![1, 1], vec![1, 1]),
            group: 1,
            depthwise: false,
            bias: true,
            axis: 1,
            output_pad: vec![],
        })))
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
        // A type without a rule may store weights: the totals are a lower bound.
        assert!(!g.params_complete());
        assert_eq!(g.uncounted_weights, vec![NodeId(0), NodeId(1)]);
    }

    fn dense(out: u64, axis: i64) -> Op {
        Op::Dense(crate::ops::DenseOp::Linear(crate::ops::DenseParams { out_features: out, axis, bias: true, transpose: false }))
    }

    /// features → proposals [R,5] → RoI pooling [R,C,3,3] → fc: the fc's weights do
    /// not depend on R and are counted; its output keeps R as a symbol.
    fn proposal_net(b: &mut GraphBuilder) -> (TensorId, TensorId, TensorId) {
        use crate::ops::{DetectionOp, RoiPoolParams};
        let x = b.add_input("x", Ok(Shape::new(vec![1, 4, 8, 8])));
        let rois = b.add_node(spec("proposal", Op::Detection(DetectionOp::Proposal), vec![x], vec![])).unwrap()[0];
        let pool = Op::Detection(DetectionOp::RoiPool(RoiPoolParams { pooled_h: 3, pooled_w: 3 }));
        let pooled = b.add_node(spec("roi_pool", pool, vec![x, rois], vec![])).unwrap()[0];
        let fc = b.add_node(spec("fc", dense(10, 1), vec![pooled], vec![])).unwrap()[0];
        (rois, pooled, fc)
    }

    #[test]
    fn run_time_rows_keep_the_known_extents_and_the_weights() {
        let mut b = GraphBuilder::new("t", ModelFormat::Caffe, DType::F32);
        let (rois, pooled, fc) = proposal_net(&mut b);
        let g = b.finish();
        let sym = |t: TensorId| g.tensor(t).unknown.clone();
        assert_eq!(sym(rois), Some(Unknown::Symbolic(vec!["R".into(), "5".into()])));
        assert_eq!(sym(pooled), Some(Unknown::Symbolic(vec!["R".into(), "4".into(), "3".into(), "3".into()])));
        assert_eq!(sym(fc), Some(Unknown::Symbolic(vec!["R".into(), "10".into()])));
        // K = 4·3·3 = 36: 36·10 + 10.
        assert_eq!(g.param_totals().params, 370);
        assert!(g.params_complete());
        assert_eq!(g.free_symbols.len(), 1);
        assert_eq!(g.free_symbols[0].name, "R");
        assert_eq!(g.free_symbols[0].set_by.as_deref(), Some("proposal"));
        assert_eq!(g.free_symbols[0].uses, vec![("proposal".to_string(), 0)]);
    }

    #[test]
    fn a_bound_run_time_count_makes_shapes_concrete() {
        let mut b = GraphBuilder::new("t", ModelFormat::Caffe, DType::F32);
        b.bind_dims([("R".to_string(), 300)]);
        let (rois, _, fc) = proposal_net(&mut b);
        assert_eq!(b.used_bindings(), ["R".to_string()]);
        let g = b.finish();
        assert_eq!(g.tensor(rois).shape, Some(Shape::new(vec![300, 5])));
        assert_eq!(g.tensor(fc).shape, Some(Shape::new(vec![300, 10])));
        assert!(g.free_symbols.is_empty());
    }

    #[test]
    fn weights_that_depend_on_a_run_time_count_are_not_counted() {
        let mut b = GraphBuilder::new("t", ModelFormat::Caffe, DType::F32);
        let (rois, _, _) = proposal_net(&mut b);
        // A fully connected layer over axis 0 has K = 5·R: never silently 5.
        let bad = b.add_node(spec("fc_over_rows", dense(2, 0), vec![rois], vec![])).unwrap()[0];
        let g = b.finish();
        assert_eq!(g.param_totals().params, 370);
        assert!(!g.params_complete());
        assert_eq!(g.tensor(bad).shape, Some(Shape::new(vec![2])));
    }

    #[test]
    fn run_time_counts_are_followed_up_to_a_cap() {
        use crate::ops::DetectionOp;
        let mut b = GraphBuilder::new("t", ModelFormat::Caffe, DType::F32);
        let x = b.add_input("x", Ok(Shape::new(vec![1, 4, 8, 8])));
        let mut last = x;
        for i in 0..MAX_SYMBOLS + 4 {
            last = b.add_node(spec(&format!("p{i}"), Op::Detection(DetectionOp::Proposal), vec![x], vec![])).unwrap()[0];
        }
        let fc = b.add_node(spec("fc", dense(3, 1), vec![last], vec![])).unwrap()[0];
        let g = b.finish();
        assert_eq!(g.free_symbols.len(), MAX_SYMBOLS);
        assert_eq!(g.free_symbols[1].name, "R2");
        // Past the cap: run_time, never a silent 1; weights still sized (K = 5).
        assert_eq!(g.tensor(last).unknown, Some(Unknown::RunTime));
        assert_eq!(g.tensor(fc).unknown, Some(Unknown::RunTime));
        assert_eq!(g.param_totals().params, 18);
        assert!(g.warnings.iter().any(|w| w.contains("run-time counts")), "{:?}", g.warnings);
    }

    #[test]
    fn formulas_are_affine_in_one_symbol() {
        let syms = vec![RunTimeSymbol { name: "R".into(), set_by: "p".into(), uses: vec![] }];
        let at = |f: &dyn Fn(u64) -> u64| (0..3).map(|p| f(symbol_value(0, p))).collect::<Vec<_>>();
        assert_eq!(formula(&at(&|r| r), &syms).as_deref(), Some("R"));
        assert_eq!(formula(&at(&|r| 4 * r + 1), &syms).as_deref(), Some("4*R+1"));
        assert_eq!(formula(&at(&|r| 2 * r - 1), &syms).as_deref(), Some("2*R-1"));
        assert_eq!(formula(&at(&|_| 7), &syms).as_deref(), Some("7"));
        assert_eq!(formula(&at(&|r| r * r), &syms), None);
        assert_eq!(formula(&at(&|r| r / 2), &syms), None);
    }
}
