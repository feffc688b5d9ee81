//! ONNX loader: the file is memory-mapped and decoded with nnmem's own reduced
//! protobuf schema (`proto`), which leaves weight payloads undecoded, so a
//! 500 MB model is inspected without reading its weights; external data files
//! are never opened. Shapes come from nnmem's own engine (`rules`: every node
//! through its op's rule, with the values of small tensors), and from tract-onnx
//! run on a weightless copy of the graph (`infer`, feature `tract`) only for the
//! nodes the engine cannot size; without that feature those stay unknown.
//!
//! Pipeline: `decode` (wire slices + reduced messages) → model-local functions
//! inlined (`functions`) → checks (names defined, no cycle, sane dims) → every
//! node mapped once by `map` (its `Op` and its type's facts) → initializers
//! classified (weights, statistics, constants) → `Graph` tensors and nodes in
//! execution order, module scopes read from the exporter's node names → shapes
//! (own engine, tract for what it leaves) → settled `If` nodes replaced by their
//! branch and the graph built again (`control`) → warnings.

pub mod budget;
mod check;
mod control;
pub mod external;
mod functions;
#[cfg(feature = "tract")]
mod infer;
mod map;
mod names;
pub mod proto;
mod constants;
mod dim_expr;
mod tied;
mod kv_cache;
mod quantised;
mod rules;
mod torch_meta;

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, HashSet};
use std::path::Path;
use std::sync::Arc;

use prost::Message;

use self::proto::{Dim, NodeProto, TensorProto, ValueInfoProto};
use super::{LoadError, LoadOptions, OnnxShapes};
use crate::graph::{DType, Graph, ModelFormat, Node, NodeId, Shape, Tensor, TensorId, TensorKind, Unknown};
use crate::ops::{Op, UnknownOp};

/// The decoded model: reduced messages, each with the bytes it was decoded
/// from (the tract bridge re-decodes those slices with tract's full schema).
pub(crate) struct Decoded<'a> {
    pub header: proto::ModelProto,
    pub graph_name: String,
    /// Nodes with their bytes: borrowed from the file, or written when a
    /// model-local function's body was inlined (`functions`).
    pub nodes: Vec<(NodeProto<'a>, std::borrow::Cow<'a, [u8]>)>,
    pub initializers: Vec<(TensorProto, &'a [u8])>,
    pub inputs: Vec<(ValueInfoProto, &'a [u8])>,
    pub outputs: Vec<(ValueInfoProto, &'a [u8])>,
    pub value_info: Vec<(ValueInfoProto, &'a [u8])>,
    pub sparse_initializers: Vec<proto::SparseTensorProto>,
    /// The dense tensor each usable sparse initializer stands for (`sparse_as_dense`).
    pub sparse_dense: Vec<TensorProto>,
    /// Sparse initializers without named values or dims (ignored, with a warning).
    pub sparse_unusable: usize,
    /// Nodes inside subgraphs (If/Loop/Scan bodies, attribute graphs), at every depth.
    pub subgraph_nodes: u64,
    /// Every external-data reference in the model, wherever its tensor sits.
    pub external: Vec<budget::External>,
    pub external_unlisted: u64,
}

/// One dim of a graph input as handed to shape inference.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum DimSpec {
    Value(u64),
    Symbol(String),
}

/// The dims a graph input gets: declared, overridden by `--input`, `--batch`, `--dim`.
#[derive(Clone, Debug)]
pub(crate) struct InputBinding {
    pub name: String,
    pub dims: Vec<DimSpec>,
}

/// What shape inference found for one value.
#[derive(Clone, Debug)]
pub(crate) struct ValueFact {
    pub dtype: Option<DType>,
    pub shape: ValueShape,
}

#[derive(Clone, Debug)]
pub(crate) enum ValueShape {
    Concrete(Vec<u64>),
    /// Formulas over the free input symbols, one per dim.
    Symbolic(Vec<String>),
    /// Depends on values only known when the model runs.
    RunTime,
    Unknown,
}

/// Graphs with more nodes than this (counted in every subgraph) are refused
/// (memory stays bounded); real exports, transformers included, have tens of
/// thousands at most. The other limits of a load are in `budget`.
pub const MAX_NODES: usize = budget::MAX_NODES as usize;

/// Elements of an initializer, `None` for a negative dim or an overflow.
pub(crate) fn elems_of(dims: &[i64]) -> Option<u64> {
    dims.iter().try_fold(1u64, |acc, &d| acc.checked_mul(u64::try_from(d).ok()?))
}

/// Loads an ONNX model file.
pub fn load_onnx(path: &Path, options: &LoadOptions) -> Result<Graph, LoadError> {
    let opened = crate::load::input::open_file(path)?;
    load_onnx_bytes(path, &opened.data()?, options)
}

/// Loads an ONNX model held in memory; `path` names it in messages and locates
/// its folder for external-data checks.
pub fn load_onnx_bytes(path: &Path, buf: &[u8], options: &LoadOptions) -> Result<Graph, LoadError> {
    if buf.is_empty() {
        return Err(LoadError::Format { path: path.to_path_buf(), message: "the file is empty, not an ONNX model".into() });
    }
    let format_err = |message| LoadError::Format { path: path.to_path_buf(), message };
    let mut decoded = decode(buf).map_err(format_err)?;
    functions::inline(&mut decoded.nodes, &functions::function_bytes(buf), MAX_NODES).map_err(format_err)?;
    // An `If` whose condition the shape engine settles is replaced by its
    // branch and the graph built again (`control`).
    let mut rounds = 0;
    loop {
        let settle = rounds < control::MAX_ROUNDS;
        let (g, decided) = build(path, &decoded, options, settle)?;
        if decided.is_empty() {
            return Ok(g);
        }
        rounds += 1;
        if control::inline_branches(&mut decoded.nodes, &mut decoded.initializers, &decided) == 0 {
            // Nothing could be inlined: build once more, sizing what follows the Ifs as usual.
            rounds = control::MAX_ROUNDS;
        }
        if decoded.nodes.len() > MAX_NODES {
            return Err(format_err(format!("the branches of its If nodes give more than {MAX_NODES} nodes")));
        }
    }
}

fn decode(buf: &[u8]) -> Result<Decoded<'_>, String> {
    // Count what decoding keeps, at every depth, before anything is decoded.
    let tally = budget::walk(buf)?;
    let mut graph_bytes = None;
    for f in proto::field_iter(buf) {
        let f = f.map_err(|e| format!("not a valid ONNX protobuf: {e}"))?;
        if f.number == 7 {
            if f.wire != proto::Wire::Len {
                return Err("ModelProto.graph (field 7) has the wrong wire type".into());
            }
            if graph_bytes.replace(f.bytes).is_some() {
                return Err("the model holds more than one graph (field 7 repeated)".into());
            }
        }
    }
    let header = proto::ModelProto::decode(buf).map_err(|e| format!("not a valid ONNX model: {e}"))?;
    let graph_bytes = graph_bytes.ok_or("the file holds no graph (ModelProto field 7): not an ONNX model")?;
    let top = tally.top;
    let mut d = Decoded {
        header,
        graph_name: String::new(),
        nodes: Vec::with_capacity(top.nodes),
        initializers: Vec::with_capacity(top.initializers),
        inputs: Vec::with_capacity(top.inputs),
        outputs: Vec::with_capacity(top.outputs),
        value_info: Vec::with_capacity(top.value_info),
        sparse_initializers: Vec::with_capacity(top.sparse_initializers),
        sparse_dense: Vec::new(),
        sparse_unusable: 0,
        subgraph_nodes: tally.nodes.saturating_sub(top.nodes as u64),
        external: tally.external,
        external_unlisted: tally.external_unlisted,
    };
    for f in proto::field_iter(graph_bytes) {
        let f = f.map_err(|e| format!("the graph is not valid protobuf: {e}"))?;
        let expect_len = matches!(f.number, 1 | 2 | 5 | 11 | 12 | 13 | 15);
        if expect_len && f.wire != proto::Wire::Len {
            return Err(format!("GraphProto field {} has the wrong wire type", f.number));
        }
        let err = |what: &str, e: prost::DecodeError| format!("graph {what}: {e}");
        match f.number {
            1 => d.nodes.push((NodeProto::decode(f.bytes).map_err(|e| err("node", e))?, std::borrow::Cow::Borrowed(f.bytes))),
            2 => d.graph_name = String::from_utf8_lossy(f.bytes).into_owned(),
            5 => d.initializers.push((TensorProto::decode(f.bytes).map_err(|e| err("initializer", e))?, f.bytes)),
            11 => d.inputs.push((ValueInfoProto::decode(f.bytes).map_err(|e| err("input", e))?, f.bytes)),
            12 => d.outputs.push((ValueInfoProto::decode(f.bytes).map_err(|e| err("output", e))?, f.bytes)),
            13 => d.value_info.push((ValueInfoProto::decode(f.bytes).map_err(|e| err("value_info", e))?, f.bytes)),
            15 => d.sparse_initializers.push(
                proto::SparseTensorProto::decode(f.bytes).map_err(|e| err("sparse_initializer", e))?,
            ),
            _ => {}
        }
    }
    (d.sparse_dense, d.sparse_unusable) = sparse_as_dense(&d.sparse_initializers);
    Ok(d)
}

/// The dense tensor each sparse initializer stands for (what a runtime holds
/// once it densifies it): dims from its `dims`, name, type and data location
/// from its `values`; and how many had no named values or no dims.
fn sparse_as_dense(sparse: &[proto::SparseTensorProto]) -> (Vec<TensorProto>, usize) {
    let mut dense = Vec::with_capacity(sparse.len());
    let mut unusable = 0;
    for s in sparse {
        match &s.values {
            Some(v) if !s.dims.is_empty() && !v.name.is_empty() => dense.push(TensorProto { dims: s.dims.clone(), ..v.clone() }),
            _ => unusable += 1,
        }
    }
    (dense, unusable)
}

/// How a node is named in messages.
fn node_location(n: &NodeProto, index: usize) -> String {
    if !n.name.is_empty() {
        format!("node \"{}\"", n.name)
    } else {
        format!("node #{index} ({})", n.op_type)
    }
}

fn model_err(path: &Path, location: String, message: String) -> LoadError {
    LoadError::Model { path: path.to_path_buf(), location, message }
}

/// The decoded model → a `Graph`: validation, initializer classification,
/// node creation, tallies, then shapes.
/// `settle`: report the `If` nodes whose condition is known (instead of
/// sizing what follows them through tract) so that the caller inlines them.
fn build(path: &Path, d: &Decoded<'_>, options: &LoadOptions, settle: bool) -> Result<(Graph, Vec<control::Decision>), LoadError> {
    let graph_name = if d.graph_name.is_empty() {
        path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default()
    } else {
        d.graph_name.clone()
    };
    let mut g = Graph::new(graph_name, ModelFormat::Onnx);
    g.nodes.reserve_exact(d.nodes.len());
    let values: usize = d.nodes.iter().map(|(n, _)| n.output.len()).sum();
    g.tensors.reserve_exact(values + d.initializers.len() + d.inputs.len());
    let opset = opset_of(d, &mut g);
    let inits = initializers(path, d, &mut g)?;
    // Graph inputs that are not initializers (IR < 4 lists initializers as inputs too).
    let real_inputs: Vec<&ValueInfoProto> =
        d.inputs.iter().map(|(v, _)| v).filter(|v| !inits.contains_key(v.name.as_str())).collect();
    let nodes: Vec<&NodeProto> = d.nodes.iter().map(|(n, _)| n).collect();
    let order = check_structure(path, &nodes, &inits, &real_inputs)?;
    check::axis_bounds(nodes.iter().copied()).map_err(|(location, message)| model_err(path, location, message))?;
    let scalars = map::scalar_floats(d.nodes.iter().map(|(n, b)| (n, b.as_ref())), &d.initializers);
    let ctx = map::MapCtx { opset, initializers: &inits, scalars: &scalars };
    let mut mapped: Vec<Option<map::Mapped>> =
        nodes.iter().zip(&d.nodes).map(|(n, (_, bytes))| Some(map::map_node(n, bytes, &ctx))).collect();
    let roles = InitializerRoles::classify(&nodes, &mapped, &inits);
    let bindings = bind_inputs(&real_inputs, options, &mut g)?;
    let mut init_bytes: names::NameMap<'_, &[u8]> = names::name_map(d.initializers.len());
    init_bytes.extend(d.initializers.iter().map(|(t, b)| (t.name.as_str(), &b[..])));

    let mut b = NodeAdder {
        g,
        ids: names::name_map(inits.len() + nodes.len() + nodes.len() / 4 + real_inputs.len()),
        inits: &inits,
        init_bytes: &init_bytes,
        roles,
        sources: Vec::with_capacity(order.len()),
        values: Vec::new(),
        unknown: UnknownTally::default(),
    };
    b.add_inputs(&real_inputs);
    for &i in &order {
        // Each node is mapped once, above; `order` visits it once.
        if let Some(m) = mapped[i].take() {
            b.add_node(i, nodes[i], m);
        }
    }
    // Every op moved into the graph: free the emptied slots before the shape rules run.
    drop(mapped);
    let NodeAdder { mut g, ids, sources, values, unknown, .. } = b;
    quantised::count_quantised(&mut g, &sources);
    unknown.warn(&mut g);
    mark_constants(&mut g);
    for (v, _) in &d.outputs {
        match ids.get(v.name.as_str()) {
            Some(&id) => g.outputs.push(id),
            None => g.warn(format!("graph output \"{}\" is not produced by any node", v.name)),
        }
    }
    let decided = fill_shapes(d, &bindings, options, settle, &sources, &values, &mut g);
    check::contradictions(&nodes, &order, &ids, &g).map_err(|(location, message)| model_err(path, location, message))?;
    check_byte_sizes(path, &g)?;
    constants::reclassify(&mut g, |j| nodes[order[j]].input.iter().filter_map(|x| ids.get(x.as_str()).copied()).collect());
    tied::tie_embeddings(&mut g, options.tie_embeddings);
    kv_cache::note_kv_cache(&mut g, |input, axis| {
        let v = real_inputs.iter().find(|v| v.name == input)?;
        match v.dims()?.get(axis)? {
            Dim::Param(p) => Some(p.clone()),
            Dim::Unknown => Some(unnamed_dim_symbol(input, axis)),
            Dim::Value(_) => None,
        }
    });
    note_missing_source_lines(d, &mut g);
    note_inference_batch_norm(&mut g);
    // Graph nodes are in execution order: node k is the file's node order[k].
    let decided = decided.into_iter().map(|(k, then_branch)| control::Decision { node: order[k], then_branch }).collect();
    Ok((g, decided))
}

/// PyTorch's TorchScript exporter (`torch.onnx.export(..., dynamo=False)`)
/// records module paths but no source lines, which the dynamo exporter keeps
/// per node: say so, since how long the model's Python variables keep tensors
/// is then unknown (docs/memory-model.md, "Python locals").
fn note_missing_source_lines(d: &Decoded<'_>, g: &mut Graph) {
    let from_pytorch = d.header.producer_name == "pytorch";
    let has_lines = g.nodes.iter().any(|n| n.call.as_ref().is_some_and(|c| !c.stack.is_empty()));
    if from_pytorch && !has_lines && !g.nodes.is_empty() {
        g.notes.push(
            "exported by PyTorch without source lines (the TorchScript exporter): tensors the model's Python code keeps \
             in variables after their last use are not visible, so eager PyTorch may hold more than this figure; the \
             dynamo exporter (torch.onnx.export(..., dynamo=True)) records the lines and nnmem reads them"
                .to_string(),
        );
    }
}

/// torch.export traces BatchNorm in its inference form even for a module in
/// train() mode, and the dynamo exporter then folds it into the convolution
/// before it: such a file has no BatchNorm to train. Say so, counting them.
fn note_inference_batch_norm(g: &mut Graph) {
    let folded = g
        .nodes
        .iter()
        .filter(|n| n.call.as_ref().is_some_and(|c| c.function == "aten._native_batch_norm_legit_no_training"))
        .count();
    if folded > 0 {
        g.notes.push(format!(
            "{folded} BatchNorm layer(s) were exported in their inference form (torch.export's \
             _native_batch_norm_legit_no_training, whatever mode the module was in), most folded into the convolution \
             before them: a training scenario of this file has no BatchNorm statistics or saved tensors; the \
             TorchScript exporter with training=TrainingMode.TRAINING writes a training graph"
        ));
    }
}

/// The default-domain opset the model imports (0 when none), with a warning
/// for opsets older than nnmem knows, and one for sparse initializers
/// (counted at their dense size).
fn opset_of(d: &Decoded<'_>, g: &mut Graph) -> i64 {
    let opset = d
        .header
        .opset_import
        .iter()
        .find(|o| o.domain.is_empty() || o.domain == "ai.onnx")
        .map(|o| o.version)
        .unwrap_or(0);
    if (1..7).contains(&opset) {
        g.warn(format!("opset {opset} is older than 7, the oldest nnmem knows; shapes may be wrong"));
    }
    if let Some(first) = d.sparse_dense.first() {
        g.warn(format!(
            "{} sparse initializer(s) (e.g. \"{}\") are counted at their dense size, as a runtime holds them once densified",
            d.sparse_dense.len(),
            first.name
        ));
    }
    for _ in 0..d.sparse_unusable {
        g.warn("a sparse initializer has no named values or no dims; it is ignored");
    }
    opset
}

/// Initializers by name (sparse ones at their dense shape), with checked dims;
/// every external-data location in the model is vetted (never opened) and
/// recorded as the graph's linked files.
fn initializers<'a>(path: &Path, d: &'a Decoded<'_>, g: &mut Graph) -> Result<names::NameMap<'a, &'a TensorProto>, LoadError> {
    let mut inits: names::NameMap<'a, &TensorProto> = names::name_map(d.initializers.len() + d.sparse_dense.len());
    // Sparse initializers count as initializers of their dense shape.
    for t in d.initializers.iter().map(|(t, _)| t).chain(&d.sparse_dense) {
        if t.name.is_empty() {
            g.warn("an initializer has no name; it is ignored");
            continue;
        }
        if let Some(bad) = t.dims.iter().find(|&&x| x < 0) {
            return Err(model_err(path, format!("initializer \"{}\"", t.name), format!("dimension {bad} is negative")));
        }
        // A weight whose size cannot be counted is refused, never counted as 0.
        let dtype = proto::dtype_of(t.data_type).unwrap_or(DType::F32);
        if elems_of(&t.dims).and_then(|e| e.checked_mul(dtype.size_bytes())).is_none() {
            return Err(model_err(
                path,
                format!("initializer \"{}\"", t.name),
                format!("dims {:?} of {} overflow 64 bits of bytes", t.dims, dtype.name()),
            ));
        }
        if inits.insert(&t.name, t).is_some() {
            g.warn(format!("initializer \"{}\" is defined twice; the last one is used", t.name));
        }
    }
    // `model.onnx` has the empty parent "": that is the current folder.
    let model_dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    // Every external reference, not only the top-level initializers': warned about, never opened.
    for w in external::check_locations(model_dir, &d.external, d.external_unlisted) {
        g.warn(w);
    }
    let mut linked: Vec<&str> = d.external.iter().filter_map(|e| e.location.as_deref()).collect();
    linked.sort_unstable();
    linked.dedup();
    g.linked_files = linked.into_iter().map(|loc| model_dir.join(loc)).collect();
    Ok(inits)
}

/// Every value assigned once, every node input defined somewhere, no cycle:
/// the nodes' execution order.
fn check_structure(
    path: &Path,
    nodes: &[&NodeProto],
    inits: &names::NameMap<'_, &TensorProto>,
    real_inputs: &[&ValueInfoProto],
) -> Result<Vec<usize>, LoadError> {
    let mut input_names: names::NameMap<'_, ()> = names::name_map(real_inputs.len());
    input_names.extend(real_inputs.iter().map(|v| (v.name.as_str(), ())));
    let mut producer: names::NameMap<'_, usize> = names::name_map(nodes.len() + nodes.len() / 4);
    for (i, n) in nodes.iter().enumerate() {
        for o in n.output.iter().filter(|o| !o.is_empty()) {
            if inits.contains_key(o.as_str()) || input_names.contains_key(o.as_str()) || producer.insert(o, i).is_some()
            {
                return Err(model_err(
                    path,
                    node_location(n, i),
                    format!("output \"{o}\" is already defined elsewhere (ONNX values are assigned once)"),
                ));
            }
        }
    }
    // Files are nearly always in execution order already: then that order is kept
    // without sorting (Kahn's algorithm below gives the same order).
    let mut sorted = true;
    for (i, n) in nodes.iter().enumerate() {
        for x in n.input.iter().filter(|x| !x.is_empty()) {
            let known = match producer.get(x.as_str()) {
                Some(&p) => {
                    sorted &= p < i;
                    true
                }
                None => inits.contains_key(x.as_str()) || input_names.contains_key(x.as_str()),
            };
            if !known {
                return Err(model_err(
                    path,
                    node_location(n, i),
                    format!("input \"{x}\" is not produced by any node and is neither an initializer nor a graph input"),
                ));
            }
        }
    }
    if sorted {
        return Ok((0..nodes.len()).collect());
    }
    execution_order(nodes, &producer).map_err(|i| {
        let n = nodes.get(i).copied();
        model_err(
            path,
            n.map(|n| node_location(n, i)).unwrap_or_default(),
            "is part of a cycle: its inputs depend on its own outputs".into(),
        )
    })
}

/// How each initializer is used, by name: a running statistic only when every
/// reader uses it as one (BatchNormalization's mean or variance; an exporter
/// that deduplicates equal tensors may feed one to an Identity as well; that
/// reader makes it count as an ordinary parameter, as manifest.json does). A
/// float initializer read only as an operator argument (a dropout ratio,
/// resize scales) is a constant, not a weight.
struct InitializerRoles<'a> {
    stats_only: names::NameMap<'a, bool>,
    argument_only: names::NameMap<'a, bool>,
    /// Read by some node at a stored-weight position (`TypeFacts::stored_weights`).
    stored_weight: names::NameMap<'a, bool>,
}

impl<'a> InitializerRoles<'a> {
    fn classify(nodes: &[&'a NodeProto], mapped: &[Option<map::Mapped>], inits: &names::NameMap<'_, &TensorProto>) -> Self {
        let mut roles = InitializerRoles {
            stats_only: names::name_map(inits.len()),
            argument_only: names::name_map(inits.len()),
            stored_weight: names::name_map(0),
        };
        for (n, m) in nodes.iter().zip(mapped) {
            let Some(facts) = m.as_ref().map(|m| m.facts) else { continue };
            for (k, x) in n.input.iter().enumerate() {
                if inits.contains_key(x.as_str()) {
                    let e = roles.stats_only.entry(x.as_str()).or_insert(true);
                    *e = *e && facts.statistics.contains(&k);
                    let e = roles.argument_only.entry(x.as_str()).or_insert(true);
                    *e = *e && facts.arguments_from.is_some_and(|from| k >= from);
                    if facts.stored_weights.contains(&k) {
                        roles.stored_weight.insert(x.as_str(), true);
                    }
                }
            }
        }
        roles
    }

    /// The tensor for initializer `t`.
    fn tensor(&self, t: &TensorProto) -> Tensor {
        let stats = self.stats_only.get(t.name.as_str()).copied().unwrap_or(false);
        let argument = self.argument_only.get(t.name.as_str()).copied().unwrap_or(false);
        let stored = self.stored_weight.contains_key(t.name.as_str());
        initializer_tensor(t, stats, argument, stored)
    }
}

/// Op types outside the vocabulary: (type, node count, first node), in order
/// of first appearance, indexed by type so that many distinct types stay linear.
#[derive(Default)]
struct UnknownTally {
    types: Vec<(String, usize, String)>,
    index: HashMap<String, usize>,
}

impl UnknownTally {
    fn count(&mut self, type_name: &str, node: &str) {
        match self.index.get(type_name).and_then(|&k| self.types.get_mut(k)) {
            Some(entry) => entry.1 += 1,
            None => {
                self.index.insert(type_name.to_string(), self.types.len());
                self.types.push((type_name.to_string(), 1, node.to_string()));
            }
        }
    }

    /// One warning per type.
    fn warn(self, g: &mut Graph) {
        for (t, count, first) in self.types {
            g.warn(format!(
                "op \"{t}\" ({count} node(s), first \"{first}\") is not in nnmem's operator vocabulary; only its outputs are counted (no workspace or saved tensors)"
            ));
        }
    }
}

/// Adds tensors and nodes to the graph: graph inputs first, then initializers
/// and values as nodes reach them.
struct NodeAdder<'a> {
    g: Graph,
    /// Tensor of every value name met so far.
    ids: names::NameMap<'a, TensorId>,
    inits: &'a names::NameMap<'a, &'a TensorProto>,
    /// The stored bytes of every initializer, by name.
    init_bytes: &'a names::NameMap<'a, &'a [u8]>,
    roles: InitializerRoles<'a>,
    /// Per graph node: its type's facts and its inputs and outputs by position.
    sources: Vec<rules::NodeSource>,
    /// Known values of small constant initializers (never of weights).
    values: Vec<(TensorId, crate::ops::Value)>,
    unknown: UnknownTally,
}

impl<'a> NodeAdder<'a> {
    fn add_inputs(&mut self, real_inputs: &[&'a ValueInfoProto]) {
        for v in real_inputs {
            let dtype = v.elem_type().and_then(proto::dtype_of).unwrap_or(DType::F32);
            let id = self.g.add_tensor(Tensor {
                name: v.name.clone(),
                shape: None,
                unknown: Some(Unknown::NoRule),
                dtype,
                kind: TensorKind::Input,
                trainable: false,
                producer: None,
            });
            self.ids.insert(&v.name, id);
            self.g.inputs.push(id);
        }
    }

    /// Node `i` of the file: weights go to `params` (once each), other inputs
    /// to `inputs`; its outputs are new activation tensors.
    fn add_node(&mut self, i: usize, n: &'a NodeProto, m: map::Mapped) {
        let mut inputs = Vec::new();
        let mut params: Vec<TensorId> = Vec::new();
        let mut param_set: HashSet<TensorId> = HashSet::new();
        let mut positional = Vec::with_capacity(n.input.len());
        for x in &n.input {
            if x.is_empty() {
                positional.push(None);
                continue;
            }
            let id = match self.ids.get(x.as_str()) {
                Some(&id) => id,
                None => match self.inits.get(x.as_str()) {
                    Some(t) => {
                        let tensor = self.roles.tensor(t);
                        let constant = tensor.kind == TensorKind::Constant;
                        let id = self.g.add_tensor(tensor);
                        self.ids.insert(x, id);
                        // Small constants' values (shape arguments); weights are never read.
                        if constant {
                            let value = self
                                .init_bytes
                                .get(x.as_str())
                                .and_then(|b| proto::tensor_elements(b, crate::ops::MAX_VALUE_ELEMS));
                            if let Some(v) = value {
                                self.values.push((id, v));
                            }
                        }
                        id
                    }
                    // Checked before: every input is an initializer, an input or produced earlier.
                    None => {
                        positional.push(None);
                        continue;
                    }
                },
            };
            positional.push(Some(id));
            if self.g.tensors[id.0].kind == TensorKind::Param {
                // A set once there are many, so that a node reading 100,000 weights stays linear.
                let new = if params.len() < 16 { !params.contains(&id) } else {
                    if param_set.is_empty() {
                        param_set.extend(params.iter().copied());
                    }
                    param_set.insert(id)
                };
                if new {
                    params.push(id);
                }
            } else {
                inputs.push(id);
            }
        }
        let node_id = NodeId(self.g.nodes.len());
        let mut outputs = Vec::new();
        let mut positional_out = Vec::with_capacity(n.output.len());
        for o in &n.output {
            if o.is_empty() {
                positional_out.push(None);
                continue;
            }
            let id = self.g.add_tensor(Tensor {
                name: o.to_string(),
                shape: None,
                unknown: Some(Unknown::NoRule),
                dtype: DType::F32,
                kind: TensorKind::Activation,
                trainable: false,
                producer: Some(node_id),
            });
            self.ids.insert(o, id);
            outputs.push(id);
            positional_out.push(Some(id));
        }
        let name = if !n.name.is_empty() {
            n.name.to_string()
        } else {
            n.output.iter().find(|o| !o.is_empty()).map_or_else(|| format!("{}_{i}", n.op_type), |o| o.to_string())
        };
        // The dynamo exporter records the module path in the node's metadata;
        // the TorchScript exporter writes it into the name.
        let previous = self.g.nodes.last().map(|p| &p.scope);
        let scope = match torch_meta::module_scope(&n.metadata_props) {
            Some(parts) => shared_scope(parts.iter().map(String::as_str), previous),
            None => module_scope(&name, previous),
        };
        let previous_stack = self.g.nodes.last().and_then(|p| p.call.as_ref()).map(|c| &c.stack);
        let call = torch_meta::framework_call(&n.metadata_props, previous_stack);
        if let Op::Unknown(UnknownOp { type_name }) = &m.op {
            self.unknown.count(type_name, &name);
        }
        self.sources.push(rules::NodeSource { facts: m.facts, inputs: positional, outputs: positional_out });
        self.g.nodes.push(Node {
            name,
            source_type: n.op_type.to_string(),
            op: m.op,
            inputs,
            params,
            outputs,
            in_place: false,
            attrs: m.attrs,
            scope,
            call,
        });
    }
}

/// Node outputs that carry no data (a ConstantOfShape, a transposed weight,
/// a shape vector) are constants, not activations (`Graph::data_tensors`).
fn mark_constants(g: &mut Graph) {
    let data = g.data_tensors();
    for (t, is_data) in g.tensors.iter_mut().zip(data) {
        if t.kind == TensorKind::Activation && !is_data {
            t.kind = TensorKind::Constant;
        }
    }
}

/// A value whose byte size overflows u64 cannot be counted: refuse it (as the
/// Caffe loader does) rather than report it as zero bytes.
fn check_byte_sizes(path: &Path, g: &Graph) -> Result<(), LoadError> {
    let Some(t) = g.tensors.iter().find(|t| {
        (matches!(t.kind, TensorKind::Input | TensorKind::Activation) || t.producer.is_some()) && t.shape.is_some() && t.bytes().is_none()
    }) else {
        return Ok(());
    };
    let location = match t.producer {
        Some(n) => format!("node \"{}\" output \"{}\"", g.nodes[n.0].name, t.name),
        None => format!("input \"{}\"", t.name),
    };
    let shape = t.shape.as_ref().map(|s| s.to_string()).unwrap_or_default();
    Err(model_err(path, location, format!("shape {shape} of {} overflows 64 bits of bytes", t.dtype.name())))
}

/// The module path in a PyTorch exporter's node name: `/layer1/layer1.0/conv1/Conv`
/// is `["layer1", "layer1.0", "conv1"]`, `/Conv` the root (empty). Names
/// without a leading `/` carry no path; exporters give them to some constants
/// (`Constant_803`), which belong to the module around them: the previous
/// node's (`previous`).
fn module_scope(name: &str, previous: Option<&Arc<[String]>>) -> Arc<[String]> {
    match name.strip_prefix('/') {
        Some(path) => {
            // The last part is the node's own name.
            let parts = path.rsplit_once('/').map(|(scope, _)| scope.split('/'));
            shared_scope(parts.into_iter().flatten(), previous)
        }
        None => previous.cloned().unwrap_or_default(),
    }
}

/// The module path `parts` as a shared list: the previous node's when equal
/// (consecutive nodes of one module then hold one list), a new one otherwise.
fn shared_scope<'s>(parts: impl Iterator<Item = &'s str> + Clone, previous: Option<&Arc<[String]>>) -> Arc<[String]> {
    match previous {
        Some(p) if parts.clone().eq(p.iter().map(String::as_str)) => Arc::clone(p),
        _ => parts.map(str::to_string).collect(),
    }
}

/// A Param (floating point: what `file_params` counts) or a Constant tensor
/// for an initializer.
fn initializer_tensor(t: &TensorProto, stats_only: bool, argument_only: bool, stored_weight: bool) -> Tensor {
    // A quantised graph's integer weights are parameters at their stored size.
    let is_float = (proto::is_float_elem(t.data_type) && !argument_only) || stored_weight;
    Tensor {
        name: t.name.clone(),
        // Negative dims were refused before; an overflowing product keeps its dims.
        shape: Some(Shape(t.dims.iter().map(|&x| x.max(0) as u64).collect())),
        unknown: None,
        dtype: proto::dtype_of(t.data_type).unwrap_or(DType::F32),
        kind: if is_float { TensorKind::Param } else { TensorKind::Constant },
        trainable: is_float && !stats_only,
        producer: None,
    }
}

/// Kahn's algorithm, taking the lowest file index first so a well-ordered file
/// keeps its order. `Err(i)`: node `i` is on a cycle.
fn execution_order(nodes: &[&NodeProto], producer: &names::NameMap<'_, usize>) -> Result<Vec<usize>, usize> {
    let mut indegree = vec![0usize; nodes.len()];
    let mut users: Vec<Vec<usize>> = vec![Vec::new(); nodes.len()];
    for (i, n) in nodes.iter().enumerate() {
        let mut deps: Vec<usize> =
            n.input.iter().filter_map(|x| producer.get(x.as_str()).copied()).collect();
        deps.sort_unstable();
        deps.dedup();
        for p in deps {
            if p == i {
                return Err(i);
            }
            indegree[i] += 1;
            users[p].push(i);
        }
    }
    let mut ready: BinaryHeap<Reverse<usize>> =
        indegree.iter().enumerate().filter(|(_, &d)| d == 0).map(|(i, _)| Reverse(i)).collect();
    let mut order = Vec::with_capacity(nodes.len());
    while let Some(Reverse(i)) = ready.pop() {
        order.push(i);
        for &u in &users[i] {
            indegree[u] -= 1;
            if indegree[u] == 0 {
                ready.push(Reverse(u));
            }
        }
    }
    if order.len() < nodes.len() {
        let stuck = indegree.iter().position(|&d| d > 0).unwrap_or(0);
        return Err(stuck);
    }
    Ok(order)
}

/// A symbol name for an input dim the file leaves unnamed.
fn unnamed_dim_symbol(input: &str, axis: usize) -> String {
    let clean: String = input.chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '_' }).collect();
    format!("{clean}_d{axis}")
}

/// Applies `--input`, `--batch` and `--dim` to the declared graph inputs.
fn bind_inputs(
    real_inputs: &[&ValueInfoProto],
    options: &LoadOptions,
    g: &mut Graph,
) -> Result<Vec<InputBinding>, LoadError> {
    let names = || real_inputs.iter().map(|v| v.name.as_str()).collect::<Vec<_>>().join(", ");
    let mut specs: HashMap<&str, &[u64]> = HashMap::new();
    for spec in &options.inputs {
        let target = match &spec.name {
            Some(n) => match real_inputs.iter().find(|v| &v.name == n) {
                Some(v) => v,
                None if options.lenient_inputs => continue,
                None => {
                    return Err(LoadError::Usage {
                        message: format!("--input {n}=…: the model has no input named \"{n}\" (its inputs: {})", names()),
                    })
                }
            },
            None if real_inputs.len() == 1 && options.inputs.len() == 1 => &real_inputs[0],
            None if options.lenient_inputs => continue,
            None => {
                return Err(LoadError::Usage {
                    message: format!(
                        "--input without a name needs a model with exactly one input; name it (NAME=1x3x224x224); inputs: {}",
                        names()
                    ),
                })
            }
        };
        if let Some(&too_big) = spec.dims.iter().find(|&&d| d > i64::MAX as u64) {
            return Err(LoadError::Usage { message: format!("--input {}: dimension {too_big} is too large", target.name) });
        }
        if let Some(declared) = target.dims() {
            if declared.len() != spec.dims.len() {
                let shown = declared.iter().map(|d| d.to_string()).collect::<Vec<_>>().join(",");
                return Err(LoadError::Usage {
                    message: format!(
                        "--input {}: {} dims given, but the model declares rank {} ([{shown}])",
                        target.name,
                        spec.dims.len(),
                        declared.len()
                    ),
                });
            }
        }
        specs.insert(target.name.as_str(), &spec.dims);
    }
    let dim_values: HashMap<&str, u64> = options.dims.iter().map(|b| (b.symbol.as_str(), b.value)).collect();
    let mut used_symbols = HashSet::new();
    let mut bindings = Vec::new();
    let mut free: Vec<crate::graph::FreeSymbol> = Vec::new();
    let mut free_index: HashMap<String, usize> = HashMap::new();
    for v in real_inputs {
        let mut dims: Vec<DimSpec> = match (specs.get(v.name.as_str()), v.dims()) {
            (Some(spec), _) => spec.iter().map(|&d| DimSpec::Value(d)).collect(),
            (None, Some(declared)) => declared
                .iter()
                .enumerate()
                .map(|(axis, d)| match d {
                    Dim::Value(x) => DimSpec::Value(*x),
                    Dim::Param(p) => {
                        used_symbols.insert(p.clone());
                        // `16*height_blocks`: --dim binds the symbols it reads.
                        let read = dim_expr::symbols(p).unwrap_or_default();
                        used_symbols.extend(read.iter().map(|s| s.to_string()));
                        let value = dim_values.get(p.as_str()).copied().or_else(|| {
                            (!read.is_empty()).then(|| dim_expr::evaluate(p, |s| dim_values.get(s).copied())).flatten()
                        });
                        match value {
                            Some(x) => DimSpec::Value(x),
                            None => DimSpec::Symbol(p.clone()),
                        }
                    }
                    Dim::Unknown => DimSpec::Symbol(unnamed_dim_symbol(&v.name, axis)),
                })
                .collect(),
            (None, None) => {
                g.warn(format!("graph input \"{}\" declares no shape; give it with --input", v.name));
                continue;
            }
        };
        if let (Some(b), Some(first)) = (options.batch, dims.first_mut()) {
            if !specs.contains_key(v.name.as_str()) {
                let stated = match v.dims().and_then(|d| d.first().cloned()) {
                    Some(Dim::Value(x)) => Some(x),
                    _ => None,
                };
                g.batch_overrides.push(crate::graph::BatchOverride { input: v.name.clone(), stated, used: b });
            }
            *first = DimSpec::Value(b);
        }
        let declared_dims = v.dims();
        for (axis, d) in dims.iter().enumerate() {
            if let DimSpec::Symbol(name) = d {
                match free_index.get(name.as_str()).and_then(|&k| free.get_mut(k)) {
                    Some(f) => f.uses.push((v.name.clone(), axis)),
                    None => {
                        free_index.insert(name.clone(), free.len());
                        free.push(crate::graph::FreeSymbol {
                        name: name.clone(),
                        uses: vec![(v.name.clone(), axis)],
                        named_in_file: matches!(declared_dims.as_ref().and_then(|ds| ds.get(axis)), Some(Dim::Param(_))),
                        set_by: None,
                        })
                    }
                }
            }
        }
        bindings.push(InputBinding { name: v.name.clone(), dims });
    }
    g.free_symbols = free;
    for b in &options.dims {
        if !used_symbols.contains(&b.symbol) {
            g.warn(format!("--dim {}={}: no input dimension is named \"{}\"", b.symbol, b.value, b.symbol));
        }
    }
    Ok(bindings)
}

/// Sets every tensor's shape (or why it is unknown) and dtype. `sources`
/// holds each node's facts and positional inputs, in graph order.
fn fill_shapes(
    d: &Decoded<'_>,
    bindings: &[InputBinding],
    options: &LoadOptions,
    settle: bool,
    sources: &[rules::NodeSource],
    values: &[(TensorId, crate::ops::Value)],
    g: &mut Graph,
) -> Vec<(usize, bool)> {
    let (analysis, decided) = analyse_shapes(d, bindings, options, settle, sources, values, g);
    set_input_shapes(bindings, g);
    set_output_shapes(d, analysis, sources, g);
    decided
}

/// Every node output's shape and type: nnmem's own engine first (`rules`);
/// tract only when the engine leaves some node unsized, and then tract's
/// answer only for the nodes the own rules cannot size.
fn analyse_shapes(
    d: &Decoded<'_>,
    bindings: &[InputBinding],
    options: &LoadOptions,
    settle: bool,
    sources: &[rules::NodeSource],
    values: &[(TensorId, crate::ops::Value)],
    g: &mut Graph,
) -> (Vec<Option<ValueFact>>, Vec<(usize, bool)>) {
    let by_name: HashMap<&str, TensorId> = g.inputs.iter().map(|&t| (g.tensors[t.0].name.as_str(), t)).collect();
    let bound: Vec<(TensorId, Vec<u64>)> = bindings
        .iter()
        .filter_map(|b| {
            let dims: Option<Vec<u64>> = b.dims.iter().map(|x| if let DimSpec::Value(v) = x { Some(*v) } else { None }).collect();
            Some((*by_name.get(b.name.as_str())?, dims?))
        })
        .collect();
    if options.onnx_shapes == OnnxShapes::Tract {
        let facts = tract_facts(d, bindings, g).map(|t| by_tensor(d, g, &t)).unwrap_or_else(|| vec![None; g.tensors.len()]);
        return (facts, Vec::new());
    }
    let own = rules::run(g, sources, &bound, values, None);
    // Settled conditions: the loader inlines their branches and builds again.
    if settle && !own.decided.is_empty() {
        return (own.facts, own.decided);
    }
    if own.complete() {
        return (own.facts, Vec::new());
    }
    if options.onnx_shapes == OnnxShapes::Own {
        g.warn("nnmem's own ONNX shape rules do not cover this graph (and tract was not asked)");
        return (own.facts, Vec::new());
    }
    match tract_facts(d, bindings, g) {
        Some(t) => {
            let t = by_tensor(d, g, &t);
            let fallback = |id: TensorId| t.get(id.0).cloned().flatten();
            (rules::run(g, sources, &bound, values, Some(&fallback)).facts, Vec::new())
        }
        None => (own.facts, Vec::new()),
    }
}

/// tract's by-name analysis indexed by tensor. tract is given f16 for bf16 and
/// float8 (it cannot load them): when one of those is the model's only narrow
/// float type (no real f16), tract's f16 is mapped back to it.
fn by_tensor(d: &Decoded<'_>, g: &Graph, named: &HashMap<String, ValueFact>) -> Vec<Option<ValueFact>> {
    let declared = d.inputs.iter().chain(&d.value_info).chain(&d.outputs).filter_map(|(v, _)| v.elem_type());
    let types: HashSet<i32> = declared.chain(d.initializers.iter().map(|(t, _)| t.data_type)).collect();
    let f8 = types.iter().any(|&t| matches!(t, 17..=20 | proto::elem::FLOAT8E8M0));
    let narrow = match (types.contains(&proto::elem::FLOAT16), types.contains(&proto::elem::BFLOAT16), f8) {
        (false, true, false) => Some(DType::BF16),
        (false, false, true) => Some(DType::F8),
        _ => None,
    };
    g.tensors
        .iter()
        .map(|t| {
            let mut f = named.get(&t.name).filter(|_| t.producer.is_some()).cloned()?;
            if let (Some(DType::F16), Some(n)) = (f.dtype, narrow) {
                f.dtype = Some(n);
            }
            Some(f)
        })
        .collect()
}

/// tract's analysis of the whole graph, by value name (warnings go to the graph).
#[cfg(feature = "tract")]
fn tract_facts(d: &Decoded<'_>, bindings: &[InputBinding], g: &mut Graph) -> Option<HashMap<String, ValueFact>> {
    match infer::analyse(d, bindings) {
        Ok(a) => {
            for w in a.warnings {
                g.warn(w);
            }
            Some(a.values)
        }
        Err(e) => {
            g.warn(format!("shape analysis failed ({e}); only declared shapes are known"));
            None
        }
    }
}

#[cfg(not(feature = "tract"))]
fn tract_facts(_: &Decoded<'_>, _: &[InputBinding], g: &mut Graph) -> Option<HashMap<String, ValueFact>> {
    g.warn("nnmem was built without the `tract` feature: shapes its own rules cannot size stay unknown");
    None
}

/// The graph inputs' shapes as bound (`--input`, `--batch`, `--dim`, or declared).
fn set_input_shapes(bindings: &[InputBinding], g: &mut Graph) {
    // By name, so that many inputs cost linear time (the first of a repeated name wins, as before).
    let mut input_index: HashMap<String, usize> = HashMap::with_capacity(g.inputs.len());
    for (i, t) in g.tensors.iter().enumerate().filter(|(_, t)| t.kind == TensorKind::Input) {
        input_index.entry(t.name.clone()).or_insert(i);
    }
    for b in bindings {
        let Some(t) = input_index.get(&b.name).and_then(|&i| g.tensors.get_mut(i)) else { continue };
        let concrete: Option<Vec<u64>> =
            b.dims.iter().map(|x| if let DimSpec::Value(v) = x { Some(*v) } else { None }).collect();
        match concrete {
            Some(c) => {
                t.shape = Some(Shape(c));
                t.unknown = None;
            }
            None => {
                t.shape = None;
                t.unknown = Some(Unknown::Symbolic(
                    b.dims
                        .iter()
                        .map(|x| match x {
                            DimSpec::Value(v) => v.to_string(),
                            DimSpec::Symbol(s) => s.clone(),
                        })
                        .collect(),
                ));
            }
        }
    }
}

/// Every node output's shape and type from the analysis, else from the
/// shapes an export recorded (value_info), else why it is unknown; one
/// warning names the nodes whose outputs are unknown though their inputs are not.
fn set_output_shapes(d: &Decoded<'_>, mut analysis: Vec<Option<ValueFact>>, sources: &[rules::NodeSource], g: &mut Graph) {
    // Shapes an export recorded (value_info), used where the analysis has none.
    let declared: HashMap<&str, (Vec<u64>, i32)> = d
        .value_info
        .iter()
        .filter_map(|(v, _)| {
            let dims = v.dims()?;
            let c: Option<Vec<u64>> = dims.iter().map(|x| if let Dim::Value(v) = x { Some(*v) } else { None }).collect();
            Some((v.name.as_str(), (c?, v.elem_type().unwrap_or(0))))
        })
        .collect();
    let mut rootless = Vec::new();
    for ni in 0..g.nodes.len() {
        let data_dependent = sources[ni].facts.run_time;
        let input_runtime = g.nodes[ni].inputs.iter().any(|&x| g.tensors[x.0].unknown == Some(Unknown::RunTime));
        let inputs_known = g.nodes[ni].inputs.iter().all(|&x| g.tensors[x.0].shape.is_some());
        let first_dtype = g.nodes[ni].inputs.first().map(|&x| g.tensors[x.0].dtype);
        for oi in 0..g.nodes[ni].outputs.len() {
            let id = g.nodes[ni].outputs[oi];
            let fact = analysis.get_mut(id.0).and_then(Option::take);
            let decl = declared.get(g.tensors[id.0].name.as_str());
            let t = &mut g.tensors[id.0];
            t.dtype = match (fact.as_ref().and_then(|f| f.dtype), decl.and_then(|(_, e)| proto::dtype_of(*e))) {
                (Some(dt), _) => dt,
                (None, Some(dt)) => dt,
                (None, None) => first_dtype.unwrap_or(DType::F32),
            };
            let shape = fact.map(|f| f.shape).unwrap_or(ValueShape::Unknown);
            (t.shape, t.unknown) = match shape {
                ValueShape::Concrete(c) => (Some(Shape(c)), None),
                ValueShape::Symbolic(s) => (None, Some(Unknown::Symbolic(s))),
                ValueShape::RunTime => (None, Some(Unknown::RunTime)),
                ValueShape::Unknown => match decl {
                    Some((c, _)) => (Some(Shape(c.clone())), None),
                    None => {
                        let run_time = data_dependent || input_runtime;
                        if inputs_known && !run_time && oi == 0 {
                            rootless.push(ni);
                        }
                        (None, Some(if run_time { Unknown::RunTime } else { Unknown::NoRule }))
                    }
                },
            };
        }
    }
    if !rootless.is_empty() {
        let shown: Vec<String> = rootless
            .iter()
            .take(5)
            .map(|&ni| format!("\"{}\" ({})", g.nodes[ni].name, g.nodes[ni].source_type))
            .collect();
        let more = if rootless.len() > 5 { format!(" and {} more", rootless.len() - 5) } else { String::new() };
        g.warn(format!(
            "no shape rule for {}{more}: the output shape is unknown, and so is everything computed from it",
            shown.join(", ")
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn module_scopes_from_exporter_names() {
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Arc<[String]>>();
        assert_eq!(module_scope("/layer1/layer1.0/conv1/Conv", None), s(&["layer1", "layer1.0", "conv1"]));
        assert_eq!(module_scope("/Conv", Some(&s(&["a"]))), s(&[]));
        assert_eq!(module_scope("//Conv", None), s(&[""]));
        // No path: the module around it.
        assert_eq!(module_scope("Constant_803", Some(&s(&["features", "features.3"]))), s(&["features", "features.3"]));
        assert_eq!(module_scope("conv1", None), s(&[]));
        // The same path as the previous node's: that node's list, shared.
        let previous = s(&["layers", "layers.0"]);
        assert!(Arc::ptr_eq(&module_scope("/layers/layers.0/MatMul", Some(&previous)), &previous));
        assert!(!Arc::ptr_eq(&module_scope("/layers/layers.1/MatMul", Some(&previous)), &previous));
    }
}

