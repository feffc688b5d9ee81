//! The intermediate graph every loader produces and every later pass reads.
//!
//! A `Graph` is a list of tensors and a list of nodes in execution order. Loaders
//! (Caffe, ONNX) fill it; the memory pass and the reports only read it. Nothing
//! here knows a file format: format names appear only as `Node::source_type`.

pub mod build;

// The value types live in the ground-floor `tensor` module (ops use them too);
// re-exported here so that `graph::Shape` keeps working.
pub use crate::tensor::{checked_product, DType, Shape, ShapeError};

use crate::ops::Op;
use std::sync::Arc;

/// Index into `Graph::tensors`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TensorId(pub usize);

/// Index into `Graph::nodes`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeId(pub usize);

/// The format family a graph came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ModelFormat {
    /// Caffe (prototxt, with or without a .caffemodel).
    Caffe,
    /// ONNX.
    Onnx,
}

impl ModelFormat {
    /// The name reports use.
    pub fn as_str(self) -> &'static str {
        match self {
            ModelFormat::Caffe => "caffe",
            ModelFormat::Onnx => "onnx",
        }
    }
}

/// What a tensor is in the graph.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TensorKind {
    /// A graph input (an image batch, labels).
    Input,
    /// Computed by a node.
    Activation,
    /// A stored weight blob. `Tensor::trainable` separates learned weights from
    /// running statistics.
    Param,
    /// A stored non-weight value (reshape targets, shape constants).
    Constant,
}

impl TensorKind {
    /// The name reports use.
    pub fn as_str(self) -> &'static str {
        match self {
            TensorKind::Input => "input",
            TensorKind::Activation => "activation",
            TensorKind::Param => "param",
            TensorKind::Constant => "constant",
        }
    }
}

/// Why a shape is missing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Unknown {
    /// Some producer upstream has no shape rule (named in a warning).
    NoRule,
    /// An input whose shape the file does not state (give it with --input).
    Unstated,
    /// The size depends on the data (detections, region proposals).
    RunTime,
    /// A dimension is a free symbol the user did not bind; the formula is kept.
    Symbolic(Vec<String>),
}

/// One tensor: its shape when known, type, kind and producer.
#[derive(Clone, Debug)]
pub struct Tensor {
    /// The name the file gives it.
    pub name: String,
    /// `None` when the shape is not known; `unknown` then says why.
    pub shape: Option<Shape>,
    /// Why the shape is unknown (`None` when known).
    pub unknown: Option<Unknown>,
    /// Element type.
    pub dtype: DType,
    /// Input, activation, weight or constant.
    pub kind: TensorKind,
    /// Only for `Param`: learned (true) or running statistics (false).
    pub trainable: bool,
    /// The node that writes it (`None`: inputs, weights, constants).
    pub producer: Option<NodeId>,
}

impl Tensor {
    /// Bytes of the tensor's storage, when its shape is known and fits in u64.
    pub fn bytes(&self) -> Option<u64> {
        self.dtype.bytes_for(self.shape.as_ref()?.elems()?)
    }

    /// Number of elements, when the shape is known and the product fits.
    pub fn elems(&self) -> Option<u64> {
        self.shape.as_ref()?.elems()
    }
}

/// A scalar or list attribute kept for the report (the op itself holds the
/// typed parameters).
#[derive(Clone, Debug, PartialEq)]
pub enum AttrValue {
    /// An integer.
    Int(i64),
    /// A float.
    Float(f64),
    /// A string.
    Str(String),
    /// A list of integers.
    Ints(Vec<i64>),
    /// A list of floats.
    Floats(Vec<f64>),
    /// A list of strings.
    Strs(Vec<String>),
}

/// One operator application (a Caffe layer, an ONNX node).
#[derive(Clone, Debug)]
pub struct Node {
    /// The node's name (made unique by the loader).
    pub name: String,
    /// The operator as the file spelled it ("Convolution", "CONVOLUTION", "Conv").
    pub source_type: String,
    /// nnmem's operator with its typed parameters.
    pub op: Op,
    /// Data inputs (activations, graph inputs, small constants), in order.
    pub inputs: Vec<TensorId>,
    /// Weight tensors this node reads. A tensor listed by several nodes is shared.
    pub params: Vec<TensorId>,
    /// Output tensors, in order.
    pub outputs: Vec<TensorId>,
    /// The node writes its output over its first input's storage (Caffe top == bottom).
    pub in_place: bool,
    /// Attributes as the file states them, for reports.
    pub attrs: Vec<(String, AttrValue)>,
    /// The module path of the framework code that made the node, outermost
    /// first (`["layer1", "layer1.0", "conv1"]`), as the loader read it from
    /// the file; empty when the file records none (Caffe, hand-made graphs).
    /// Shared: consecutive nodes of one module hold the same list.
    pub scope: Arc<[String]>,
    /// The framework function call the node was made from, when the file
    /// records it (PyTorch's dynamo exporter); `None` otherwise.
    pub call: Option<FrameworkCall>,
}

/// One framework function call, as an exporter recorded it: every node the
/// call was expanded into carries the same `id`. Arguments are kept as the
/// exporter wrote them (`%transpose`, `None`, `0.1`, `True`); what they mean is
/// for the rules that read them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FrameworkCall {
    /// The function without its namespace prefix and overload:
    /// `aten.scaled_dot_product_attention`.
    pub function: String,
    /// The call's name in the traced program (unique per call).
    pub id: String,
    /// Positional arguments.
    pub args: Vec<String>,
    /// Keyword arguments, in order.
    pub kwargs: Vec<(String, String)>,
    /// The source lines the call was traced under, outermost frame first: the
    /// root module's `forward`, then one frame per module call (frame `d`
    /// belongs to the module `Node::scope[..d]`). Empty when the file records
    /// none. Shared: consecutive nodes of one statement hold the same list.
    pub stack: Arc<[SourceLine]>,
}

/// One frame of the Python call stack an exporter recorded for a node.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SourceLine {
    /// `file:line`, which tells statements apart.
    pub location: String,
    /// The statement's (first) line of code, trimmed: `x = self.up(x)`.
    pub code: String,
}

impl FrameworkCall {
    /// The keyword argument `name`, else the argument at `position`.
    pub fn arg(&self, position: usize, name: &str) -> Option<&str> {
        self.kwargs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .or_else(|| self.args.get(position).map(String::as_str))
    }
}

/// The intermediate graph every loader builds and the memory pass reads.
#[derive(Clone, Debug)]
pub struct Graph {
    /// The model's name (ONNX graph name, Caffe `name:`).
    pub name: String,
    /// The format family it came from.
    pub format: ModelFormat,
    /// Every tensor; `TensorId` indexes it.
    pub tensors: Vec<Tensor>,
    /// Nodes in execution order: every input is produced before it is read.
    pub nodes: Vec<Node>,
    /// Graph inputs, in the file's order.
    pub inputs: Vec<TensorId>,
    /// Graph outputs (ONNX outputs; Caffe tops nothing reads).
    pub outputs: Vec<TensorId>,
    /// What the loader could not do, one line each (repeats counted).
    pub warnings: Vec<String>,
    /// Each distinct warning's index in `warnings` and how often it was given,
    /// so that a million identical warnings are one line with a count.
    warning_repeats: std::collections::HashMap<String, (usize, u64)>,
    /// What the loader did at the user's request that changes the figures
    /// (an `--input` that replaced a data layer's top), printed as notes.
    pub notes: Vec<String>,
    /// Files the model names but nnmem never opens (ONNX external data), so
    /// that nothing is ever written over them.
    pub linked_files: Vec<std::path::PathBuf>,
    /// Input dimensions the file leaves free and the user did not bind.
    pub free_symbols: Vec<FreeSymbol>,
    /// Nodes with weights whose size is unknown (their input shape is), so the
    /// parameter totals are a lower bound.
    pub uncounted_weights: Vec<NodeId>,
    /// Inputs whose first dimension `--batch` (or a scenario's default) replaced.
    pub batch_overrides: Vec<BatchOverride>,
    /// A decoder's KV cache, when the loader found one (ONNX, `src/load/onnx/kv_cache.rs`).
    pub kv_cache: Option<KvCache>,
    /// The parts of quantised weights whose parameter count is not their
    /// stored element count (ONNX, `src/load/onnx/quantised.rs`): MatMulNBits'
    /// packed blocks count the logical weight's N×K elements, the scales and
    /// zero points of a stored quantised weight none. Their bytes count as
    /// stored; none of them gets a gradient (`Graph::gets_gradient`).
    pub quantised_params: std::collections::HashMap<TensorId, u64>,
}

/// A decoder's KV cache: graph inputs holding the past keys and values that
/// the step joins with its own into graph outputs (docs/memory-model.md,
/// "KV-cache decoding").
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KvCache {
    /// Every cache input, in graph order.
    pub inputs: Vec<KvCacheInput>,
}

/// One cache input.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KvCacheInput {
    /// The graph input (the past keys or values of one layer).
    pub tensor: TensorId,
    /// The axis the past length runs along (the `Concat`'s).
    pub axis: usize,
    /// The file's name for that length: the input's `dim_param` on the axis,
    /// or the name nnmem gives an unnamed dimension; `None` when the file
    /// fixes the length.
    pub symbol: Option<String>,
    /// The graph output that returns it with this step's appended.
    pub present: TensorId,
}

/// The cache's size at the bound past length.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KvCacheSize {
    /// The past length (the largest extent along the cache axes).
    pub past: u64,
    /// Bytes of every cache input.
    pub bytes: u64,
    /// Bytes more per generated token: each input's bytes divided by its
    /// extent along the cache axis, summed.
    pub bytes_per_token: u64,
}

impl KvCache {
    /// The cache's size, when every input is sized and the past is not empty.
    pub fn size(&self, g: &Graph) -> Option<KvCacheSize> {
        let mut size = KvCacheSize { past: 0, bytes: 0, bytes_per_token: 0 };
        for i in &self.inputs {
            let t = g.tensor(i.tensor);
            let extent = *t.shape.as_ref()?.dims().get(i.axis)?;
            if extent == 0 {
                return None;
            }
            let b = t.bytes()?;
            size.past = size.past.max(extent);
            size.bytes = size.bytes.saturating_add(b);
            size.bytes_per_token = size.bytes_per_token.saturating_add(b / extent);
        }
        Some(size)
    }
}

/// A dimension that the file leaves free and that nothing bound: a graph
/// input's (an ONNX `dim_param` such as `batch`, or a dimension with neither
/// value nor name), or a count a layer sets at run time (the region proposals
/// a Caffe proposal layer keeps, named `R`). Every shape computed from it
/// stays symbolic until `--dim NAME=N` binds it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FreeSymbol {
    /// The symbol's name.
    pub name: String,
    /// Where it appears: (input name, axis); for a run-time count, the tops
    /// of the layer that sets it.
    pub uses: Vec<(String, usize)>,
    /// True for a name the file gives; false for a name nnmem made up for an
    /// unnamed dimension (`INPUT_dAXIS`) or a run-time count.
    pub named_in_file: bool,
    /// The layer that sets the count at run time; `None` for an input dimension.
    pub set_by: Option<String>,
}

/// The first dimension of an input, as the file states it and as used.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BatchOverride {
    /// The input's name.
    pub input: String,
    /// The file's value (`None`: the file gives a symbol or nothing).
    pub stated: Option<u64>,
    /// The value used.
    pub used: u64,
}

/// Parameter totals over the whole graph, shared tensors counted once.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ParamTotals {
    /// Learned elements.
    pub params: u64,
    /// Non-trainable elements (running statistics).
    pub non_trainable: u64,
    /// Bytes of all weights.
    pub param_bytes: u64,
}

impl Graph {
    /// Which tensors carry data through the network: graph inputs, whatever a
    /// node computes from at least one of them, and what a node computes (not a
    /// view) from a learned weight — eager code runs it on every call (T5's
    /// relative-position bias is a lookup in a weight at indices made from the
    /// sequence length: a new tensor per call). Values computed only from
    /// constants (a shape, a mask from a shape) and views of weights (a
    /// transposed weight) are constant-folded or views in a framework and hold no
    /// activation memory; nor do the outputs of ops that produce shapes or
    /// constants (`Produces::ShapeOrConstant`).
    pub fn data_tensors(&self) -> Vec<bool> {
        let mut data: Vec<bool> = self.tensors.iter().map(|t| t.kind == TensorKind::Input).collect();
        // Learned float weights and views of them. A quantised (integer)
        // weight is dequantised inside the kernel that reads it (a runtime's
        // QDQ fusion), so its float form (made with float scales) stays a
        // constant.
        let mut weight: Vec<bool> =
            self.tensors.iter().map(|t| t.kind == TensorKind::Param && t.trainable && t.dtype.is_float()).collect();
        for node in &self.nodes {
            let facts = node.op.schedule_facts();
            if facts.produces != crate::ops::Produces::Data {
                continue;
            }
            let from_data = node.inputs.iter().any(|t| data[t.0]);
            let dequantises = node
            .inputs
            .iter()
            .chain(&node.params)
            .any(|t| self.tensor(*t).kind == TensorKind::Param && !self.tensor(*t).dtype.is_float());
        let from_weight = !dequantises && node.inputs.iter().chain(&node.params).any(|t| weight[t.0]);
            let allocates = facts.storage == crate::ops::Storage::Allocates;
            for &o in &node.outputs {
                if self.tensor(o).kind != TensorKind::Activation {
                    continue;
                }
                if from_data || (from_weight && allocates) {
                    data[o.0] = true;
                } else if from_weight {
                    weight[o.0] = true;
                }
            }
        }
        data
    }

    /// An empty graph.
    pub fn new(name: impl Into<String>, format: ModelFormat) -> Self {
        Graph {
            name: name.into(),
            format,
            tensors: Vec::new(),
            nodes: Vec::new(),
            inputs: Vec::new(),
            outputs: Vec::new(),
            warnings: Vec::new(),
            warning_repeats: std::collections::HashMap::new(),
            notes: Vec::new(),
            linked_files: Vec::new(),
            free_symbols: Vec::new(),
            uncounted_weights: Vec::new(),
            batch_overrides: Vec::new(),
            kv_cache: None,
            quantised_params: std::collections::HashMap::new(),
        }
    }

    /// The tensor `id` names.
    pub fn tensor(&self, id: TensorId) -> &Tensor {
        &self.tensors[id.0]
    }

    /// The node `id` names.
    pub fn node(&self, id: NodeId) -> &Node {
        &self.nodes[id.0]
    }

    /// Appends a tensor and returns its id.
    pub fn add_tensor(&mut self, tensor: Tensor) -> TensorId {
        self.tensors.push(tensor);
        TensorId(self.tensors.len() - 1)
    }

    /// Adds a warning; one given again is not repeated but counted: the
    /// first one then ends with `(×N)`.
    pub fn warn(&mut self, message: impl Into<String>) {
        let message = message.into();
        match self.warning_repeats.get_mut(&message) {
            Some((index, count)) => {
                *count += 1;
                if let Some(w) = self.warnings.get_mut(*index) {
                    *w = format!("{message} (\u{d7}{count})");
                }
            }
            None => {
                self.warning_repeats.insert(message.clone(), (self.warnings.len(), 1));
                self.warnings.push(message);
            }
        }
    }

    /// Every weight tensor once, with the index of the first node that reads it
    /// (a weight shared by several nodes belongs to its first user).
    fn first_param_uses(&self) -> Vec<(usize, TensorId)> {
        let mut seen = vec![false; self.tensors.len()];
        let mut uses = Vec::new();
        for (i, node) in self.nodes.iter().enumerate() {
            for &p in &node.params {
                if !std::mem::replace(&mut seen[p.0], true) {
                    uses.push((i, p));
                }
            }
        }
        uses
    }

    /// A weight's parameter elements: its elements, or for a part of a
    /// quantised weight what `quantised_params` says (`None`: unsized).
    pub fn param_elems(&self, id: TensorId) -> Option<u64> {
        match self.quantised_params.get(&id) {
            Some(&e) => Some(e),
            None => self.tensor(id).elems(),
        }
    }

    /// Whether training gives weight `id` a gradient (and optimizer state):
    /// a learned float weight that is not part of a quantised one. Integer
    /// weights cannot be trained by autograd, and a quantised weight's scales
    /// and zero points describe a frozen weight (docs/memory-model.md).
    pub fn gets_gradient(&self, id: TensorId) -> bool {
        let t = self.tensor(id);
        t.kind == TensorKind::Param && t.trainable && t.dtype.is_float() && !self.quantised_params.contains_key(&id)
    }

    /// Per node: (learned, statistics) elements of the weights it is the first to read.
    pub fn node_param_counts(&self) -> Vec<(u64, u64)> {
        let mut counts = vec![(0u64, 0u64); self.nodes.len()];
        for (i, p) in self.first_param_uses() {
            let t = self.tensor(p);
            let slot = if t.trainable { &mut counts[i].0 } else { &mut counts[i].1 };
            *slot = slot.saturating_add(self.param_elems(p).unwrap_or(0));
        }
        counts
    }

    /// Totals over every weight tensor some node reads, each counted once.
    pub fn param_totals(&self) -> ParamTotals {
        let mut totals = ParamTotals::default();
        for (_, p) in self.first_param_uses() {
            let t = self.tensor(p);
            let slot = if t.trainable { &mut totals.params } else { &mut totals.non_trainable };
            *slot = slot.saturating_add(self.param_elems(p).unwrap_or(0));
            totals.param_bytes = totals.param_bytes.saturating_add(t.bytes().unwrap_or(0));
        }
        totals
    }

    /// Graph inputs whose shape the file does not state and nobody gave.
    pub fn unsized_inputs(&self) -> Vec<TensorId> {
        self.inputs.iter().copied().filter(|&t| self.tensor(t).unknown == Some(Unknown::Unstated)).collect()
    }

    /// Whether every weight is sized, so the parameter totals are exact.
    pub fn params_complete(&self) -> bool {
        self.uncounted_weights.is_empty()
    }

    /// Consumers of every tensor, in execution order.
    pub fn consumers(&self) -> Vec<Vec<NodeId>> {
        let mut users = vec![Vec::new(); self.tensors.len()];
        for (i, node) in self.nodes.iter().enumerate() {
            for &t in &node.inputs {
                if users[t.0].last() != Some(&NodeId(i)) {
                    users[t.0].push(NodeId(i));
                }
            }
        }
        users
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_warnings_are_counted_once() {
        let mut g = Graph::new("g", ModelFormat::Onnx);
        for _ in 0..1000 {
            g.warn("an initializer has no name; it is ignored");
        }
        g.warn("something else");
        g.warn("an initializer has no name; it is ignored");
        assert_eq!(g.warnings, ["an initializer has no name; it is ignored (\u{d7}1001)", "something else"]);
    }
}
