//! Every JSON nnmem writes (schema_version 2, documented in docs/json-report.md
//! and docs/report.schema.json): `inspect --json`, and the outputs of `fit`,
//! `sweep`, `diff`, `explain` and `audit`, each tagged with its `kind`.
//! These types are the compatibility promise: fields are added, never changed
//! without bumping `SCHEMA_VERSION`. Byte counts are exact integers.

use serde::ser::{SerializeMap, Serializer};
use serde::Serialize;
use serde_json::{Map, Value};

use super::{activation_bytes, input_bytes, Source};
use crate::analysis::{self, Analysed};
use crate::graph::{AttrValue, FreeSymbol, Graph, TensorKind, Unknown};
use crate::memory::{Breakdown, NodeMemory, ScenarioReport};

/// The JSON schema version: bumped when a field changes meaning or goes away.
pub const SCHEMA_VERSION: u32 = 2;

/// `inspect --json`.
#[derive(Serialize)]
pub struct JsonReport {
    /// `SCHEMA_VERSION`.
    pub schema_version: u32,
    /// Which output this is (`inspect`, `fit`, `sweep`, …).
    pub kind: &'static str,
    /// The program that wrote it.
    pub tool: Tool,
    /// The model file.
    pub model: Model,
    /// The graph inputs.
    pub inputs: Vec<Input>,
    /// Every tensor.
    pub tensors: Vec<Tensor>,
    /// Every node, in execution order.
    pub nodes: Vec<Node>,
    /// Model-wide totals.
    pub totals: Totals,
    /// Memory scenarios, in the order computed.
    #[serde(skip_serializing_if = "Named::is_empty")]
    pub scenarios: Named<ScenarioJson>,
    /// Choices nnmem made for the user that change the figures.
    pub notes: Vec<String>,
    /// What the loader or the memory pass could not do, as text.
    pub warnings: Vec<String>,
}

#[derive(Serialize)]
/// The program that wrote the report.
pub struct Tool {
    /// `nnmem`.
    pub name: &'static str,
    /// The crate version.
    pub version: &'static str,
}

#[derive(Serialize)]
/// The model file.
pub struct Model {
    /// The path as given.
    pub path: String,
    /// The file format (`caffe`, `onnx`).
    pub format: &'static str,
    /// The model's own name (ONNX graph name, Caffe `name:`).
    pub name: String,
}

#[derive(Serialize)]
/// One graph input.
pub struct Input {
    /// The input's name.
    pub name: String,
    /// Dims, null when any is unknown.
    pub shape: Option<Vec<u64>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    /// Per-dimension formulas where a dimension is free.
    pub symbolic_shape: Option<Vec<String>>,
    /// Element type.
    pub dtype: &'static str,
}

#[derive(Serialize)]
/// One tensor of the graph.
pub struct Tensor {
    /// The tensor's name.
    pub name: String,
    /// Dims, null when any is unknown.
    pub shape: Option<Vec<u64>>,
    /// Per-dimension formulas where a dimension was left free (ONNX).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub symbolic_shape: Option<Vec<String>>,
    /// Why `shape` is null: "no_rule", "run_time", "unstated" or "symbolic".
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unknown: Option<&'static str>,
    /// Element type.
    pub dtype: &'static str,
    /// Bytes, null when the shape is unknown.
    pub bytes: Option<u64>,
    /// `input`, `param`, `activation` or `constant`.
    pub kind: &'static str,
    /// Params only: learned (true) or running statistics (false).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trainable: Option<bool>,
    /// The node writing it (null: an input, weight or constant).
    pub producer: Option<String>,
}

#[derive(Serialize)]
/// One node (layer) of the graph.
pub struct Node {
    /// The node's name.
    pub name: String,
    /// The operator type as the format names it (Caffe V2 type, ONNX op_type).
    pub op: String,
    /// nnmem's operator concept (Conv, MaxPool, Dense, …).
    pub concept: String,
    /// Data input tensors.
    pub inputs: Vec<String>,
    /// Output tensors.
    pub outputs: Vec<String>,
    /// Weight tensors it reads.
    pub param_tensors: Vec<String>,
    /// `None` (null) when the node's weights have an unknown size.
    pub params: Option<u64>,
    /// Non-trainable elements of its weights (null when unsized).
    pub non_trainable: Option<u64>,
    /// Whether it writes over its input.
    pub in_place: bool,
    /// The attributes nnmem read, as the file states them.
    pub attrs: Map<String, Value>,
    /// Memory pass: bytes of the node's outputs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output_bytes: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    /// Inference figures.
    pub inference: Option<NodeFigures>,
    #[serde(skip_serializing_if = "Option::is_none")]
    /// Training figures.
    pub training: Option<NodeFigures>,
    #[serde(rename = "style-transfer", skip_serializing_if = "Option::is_none")]
    /// Style-transfer figures.
    pub style_transfer: Option<NodeFigures>,
    #[serde(skip_serializing_if = "Option::is_none")]
    /// Decode figures (one generation step: inference's).
    pub decode: Option<NodeFigures>,
}

/// One node's figures in one scenario.
#[derive(Serialize)]
pub struct NodeFigures {
    /// False when the scenario never runs the node (style transfer stops at the deepest loss).
    pub runs: bool,
    /// Bytes it keeps for backward.
    pub saved_bytes: u64,
    /// Transient forward scratch.
    pub workspace_bytes: u64,
    /// Total live bytes once it has run.
    pub live_bytes_after: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    /// Transient scratch of its backward step.
    pub backward_workspace_bytes: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    /// Total live bytes once its backward step has run.
    pub live_bytes_after_backward: Option<u64>,
}

#[derive(Serialize)]
/// Model-wide totals.
pub struct Totals {
    /// Learned elements; a lower bound when `params_complete` is false.
    pub params: u64,
    /// Non-trainable elements.
    pub non_trainable: u64,
    /// Bytes of all weights.
    pub param_bytes: u64,
    /// False when some layer's weights have an unknown size (`unsized_weight_nodes`).
    pub params_complete: bool,
    /// Nodes whose weights have an unknown size.
    pub unsized_weight_nodes: Vec<String>,
    /// Distinct activation storage, every activation alive at once (in-place outputs counted once).
    pub activation_bytes: u64,
    /// Bytes of the graph inputs.
    pub input_bytes: u64,
}

/// Entries by scenario name, in the order computed: a JSON object.
pub struct Named<T>(pub Vec<(&'static str, T)>);

impl<T> Default for Named<T> {
    fn default() -> Self {
        Named(Vec::new())
    }
}

impl<T> Named<T> {
    /// Whether there are no entries.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl<T: Serialize> Serialize for Named<T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(self.0.len()))?;
        for (k, v) in &self.0 {
            map.serialize_entry(k, v)?;
        }
        map.end()
    }
}

#[derive(Serialize)]
/// One scenario's figures.
pub struct ScenarioJson {
    /// Largest live total; a lower bound when `complete` is false.
    pub peak_bytes: u64,
    /// The node where the peak happens (null: a loss term or the optimizer step).
    pub peak_node: Option<String>,
    /// The phase of the peak step (`forward`, `loss`, `backward`, `step`).
    pub peak_phase: &'static str,
    /// What is live at the peak, by category.
    pub peak_breakdown: BreakdownJson,
    /// Whether every tensor and weight the scenario needs is sized.
    pub complete: bool,
    /// Tensors the scenario needs whose size is unknown (left out).
    pub unknown_tensors: usize,
    /// Nodes the scenario runs whose weights have an unknown size.
    pub unsized_weight_nodes: usize,
    /// Input dimensions and run-time counts nothing bound (bind with `--dim NAME=N`).
    pub free_symbols: Vec<FreeSymbolJson>,
    /// Inputs the file does not size (give with `--input NAME=DIMS`).
    pub unsized_inputs: Vec<String>,
    /// The naive sums.
    pub naive: NaiveJson,
    /// The settings used.
    pub settings: SettingsJson,
    /// The decode scenario only: the KV cache and the growth per token.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decode: Option<DecodeJson>,
}

#[derive(Serialize)]
/// The decode scenario's own figures (docs/memory-model.md, "KV-cache decoding").
pub struct DecodeJson {
    /// Graph inputs holding the cache.
    pub cache_inputs: usize,
    /// The bound past length (null: a cache input is unsized).
    pub past_length: Option<u64>,
    /// Bytes of the cache inputs at that length.
    pub cache_bytes: Option<u64>,
    /// Memory added per generated token: the cache's growth (every layer, the whole batch).
    pub cache_bytes_per_token: Option<u64>,
    /// How much the step's peak grows per token of past length: the peak at
    /// `past_length + 1` minus `peak_bytes` (null when it could not be evaluated).
    pub peak_bytes_per_token: Option<u64>,
    /// The step's peak at `past_length + 1`.
    pub next_peak_bytes: Option<u64>,
}

#[derive(Serialize)]
/// A dimension nothing binds yet.
pub struct FreeSymbolJson {
    /// The symbol.
    pub name: String,
    /// The input axes it sizes.
    pub uses: Vec<SymbolUse>,
    /// True for a `dim_param` the file names; false for a name nnmem gave an unnamed dimension.
    pub named_in_file: bool,
    /// A count set at run time: the layer that sets it (`uses` then names its tops).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub set_by: Option<String>,
    /// A count set at run time: bytes of the activations and inputs whose size
    /// is k·count, per unit of it (docs/memory-model.md, "Run-time counts").
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bytes_per_unit: Option<u64>,
}

#[derive(Serialize)]
/// Where a free symbol appears.
pub struct SymbolUse {
    /// The input.
    pub input: String,
    /// The axis (0-based).
    pub axis: usize,
}

impl From<&FreeSymbol> for FreeSymbolJson {
    fn from(s: &FreeSymbol) -> Self {
        FreeSymbolJson {
            name: s.name.clone(),
            uses: s.uses.iter().map(|(input, axis)| SymbolUse { input: input.clone(), axis: *axis }).collect(),
            named_in_file: s.named_in_file,
            set_by: s.set_by.clone(),
            bytes_per_unit: None,
        }
    }
}

/// Bytes at the peak by category (they sum to the peak).
pub struct BreakdownJson(pub Breakdown);

impl Serialize for BreakdownJson {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(8))?;
        for (c, b) in self.0.iter() {
            map.serialize_entry(c.as_str(), &b)?;
        }
        map.end()
    }
}

#[derive(Serialize)]
/// The sums simpler tools print, for reconciling with them.
pub struct NaiveJson {
    /// Every node's output, no reuse.
    pub activations_bytes: u64,
    /// Twice that ("×2 for backward").
    pub activations_x2_bytes: u64,
    /// Weights.
    pub weights_bytes: u64,
    /// Inputs.
    pub inputs_bytes: u64,
    /// weights + inputs + activations.
    pub inference_total_bytes: u64,
    /// weights + inputs + 2 × activations.
    pub training_total_bytes: u64,
}

#[derive(Serialize)]
/// The settings a scenario was computed with.
pub struct SettingsJson {
    /// The framework profile.
    pub profile: &'static str,
    /// Element type name (`f32`, `f16`, …).
    pub dtype: &'static str,
    /// Half-precision activations with f32 master weights.
    pub mixed_precision: bool,
    /// The optimizer (null for inference).
    pub optimizer: Option<String>,
    /// Worker threads.
    pub threads: u32,
    /// Style transfer: the style layers.
    pub style_layers: Option<Vec<String>>,
    /// Style transfer: the content layers.
    pub content_layers: Option<Vec<String>>,
    /// Style transfer: `in-net` or `after-forward`.
    pub loss_placement: Option<&'static str>,
    /// The attention kernel and how attention ran.
    pub attention: AttentionJson,
}

/// The attention kernel and how the attention computations ran.
#[derive(Serialize)]
pub struct AttentionJson {
    /// `fused` or `math`: what `scaled_dot_product_attention` calls run with.
    pub kernel: &'static str,
    /// Attention computations run by the fused kernel.
    pub fused: usize,
    /// Those run as the composition (math path).
    pub math: usize,
    /// Attention a model writes out itself (not an SDPA call), run as written.
    pub as_written: usize,
}

fn unknown_name(u: &Unknown) -> &'static str {
    match u {
        Unknown::NoRule => "no_rule",
        Unknown::Unstated => "unstated",
        Unknown::RunTime => "run_time",
        Unknown::Symbolic(_) => "symbolic",
    }
}

fn symbolic(u: &Option<Unknown>) -> Option<Vec<String>> {
    match u {
        Some(Unknown::Symbolic(dims)) => Some(dims.clone()),
        _ => None,
    }
}

fn attr_json(v: &AttrValue) -> Value {
    match v {
        AttrValue::Int(i) => Value::from(*i),
        AttrValue::Float(f) => serde_json::Number::from_f64(*f).map(Value::Number).unwrap_or(Value::Null),
        AttrValue::Str(s) => Value::from(s.clone()),
        AttrValue::Ints(v) => Value::from(v.clone()),
        AttrValue::Floats(v) => {
            Value::Array(v.iter().map(|f| serde_json::Number::from_f64(*f).map(Value::Number).unwrap_or(Value::Null)).collect())
        }
        AttrValue::Strs(v) => Value::from(v.clone()),
    }
}

/// Build the JSON report of a graph (shapes and parameters; no memory).
pub fn build(graph: &Graph, source: &Source<'_>) -> JsonReport {
    let name_of = |t: crate::graph::TensorId| graph.tensor(t).name.clone();
    let per_node = graph.node_param_counts();
    let totals = graph.param_totals();
    let mut weights_unsized = vec![false; graph.nodes.len()];
    for n in &graph.uncounted_weights {
        weights_unsized[n.0] = true;
    }
    JsonReport {
        schema_version: SCHEMA_VERSION,
        kind: "inspect",
        tool: Tool { name: "nnmem", version: env!("CARGO_PKG_VERSION") },
        model: Model { path: source.path.to_string(), format: graph.format.as_str(), name: graph.name.clone() },
        inputs: graph
            .inputs
            .iter()
            .map(|&t| {
                let tensor = graph.tensor(t);
                Input {
                    name: tensor.name.clone(),
                    shape: tensor.shape.as_ref().map(|s| s.0.clone()),
                    symbolic_shape: symbolic(&tensor.unknown),
                    dtype: tensor.dtype.name(),
                }
            })
            .collect(),
        tensors: graph
            .tensors
            .iter()
            .map(|t| Tensor {
                name: t.name.clone(),
                shape: t.shape.as_ref().map(|s| s.0.clone()),
                symbolic_shape: symbolic(&t.unknown),
                unknown: t.unknown.as_ref().map(unknown_name),
                dtype: t.dtype.name(),
                bytes: t.bytes(),
                kind: t.kind.as_str(),
                trainable: (t.kind == TensorKind::Param).then_some(t.trainable),
                producer: t.producer.map(|n| graph.node(n).name.clone()),
            })
            .collect(),
        nodes: graph
            .nodes
            .iter()
            .zip(&per_node)
            .zip(&weights_unsized)
            .map(|((n, &(learned, stats)), &weights_unsized)| Node {
                name: n.name.clone(),
                op: n.source_type.clone(),
                concept: n.op.name().to_string(),
                inputs: n.inputs.iter().map(|&t| name_of(t)).collect(),
                outputs: n.outputs.iter().map(|&t| name_of(t)).collect(),
                param_tensors: n.params.iter().map(|&t| name_of(t)).collect(),
                params: (!weights_unsized).then_some(learned),
                non_trainable: (!weights_unsized).then_some(stats),
                in_place: n.in_place,
                attrs: n.attrs.iter().map(|(k, v)| (k.clone(), attr_json(v))).collect(),
                output_bytes: None,
                inference: None,
                training: None,
                style_transfer: None,
                decode: None,
            })
            .collect(),
        totals: Totals {
            params: totals.params,
            non_trainable: totals.non_trainable,
            param_bytes: totals.param_bytes,
            params_complete: graph.params_complete(),
            unsized_weight_nodes: graph.uncounted_weights.iter().map(|&n| graph.node(n).name.clone()).collect(),
            activation_bytes: activation_bytes(graph),
            input_bytes: input_bytes(graph),
        },
        scenarios: Named::default(),
        notes: Vec::new(),
        warnings: graph.warnings.clone(),
    }
}

/// The whole `inspect --json` report of an analysis.
pub fn inspect(a: &Analysed, source: &Source<'_>) -> JsonReport {
    let mut report = build(&a.graph, source);
    for sc in &a.memory.scenarios {
        report.scenarios.0.push((sc.scenario.as_str(), scenario_json(&a.graph, sc)));
        for (node, nm) in report.nodes.iter_mut().zip(&sc.nodes) {
            node.output_bytes = Some(nm.output_bytes);
            let figures = node_figures(nm);
            match sc.scenario {
                crate::memory::Scenario::Inference => node.inference = Some(figures),
                crate::memory::Scenario::Training => node.training = Some(figures),
                crate::memory::Scenario::StyleTransfer => node.style_transfer = Some(figures),
                crate::memory::Scenario::Decode => node.decode = Some(figures),
            }
        }
    }
    report.notes = a.notes.clone();
    report.warnings.extend(a.memory.warnings.iter().cloned());
    report
}

fn node_figures(nm: &NodeMemory) -> NodeFigures {
    NodeFigures {
        runs: nm.runs,
        saved_bytes: nm.saved_bytes,
        workspace_bytes: nm.workspace_bytes,
        live_bytes_after: nm.live_bytes_after,
        backward_workspace_bytes: nm.live_bytes_after_backward.map(|_| nm.backward_workspace_bytes),
        live_bytes_after_backward: nm.live_bytes_after_backward,
    }
}

/// One scenario's figures and completeness.
pub fn scenario_json(graph: &Graph, sc: &ScenarioReport) -> ScenarioJson {
    let s = &sc.settings;
    ScenarioJson {
        peak_bytes: sc.peak_bytes,
        peak_node: sc.peak_node_name.clone(),
        peak_phase: sc.peak_phase.as_str(),
        peak_breakdown: BreakdownJson(sc.peak_breakdown),
        complete: sc.completeness.is_complete(),
        unknown_tensors: sc.completeness.unknown_tensors,
        unsized_weight_nodes: sc.completeness.unsized_weight_nodes,
        free_symbols: {
            let counts = analysis::run_time_counts(graph);
            graph
                .free_symbols
                .iter()
                .map(|s| FreeSymbolJson {
                    bytes_per_unit: counts.iter().find(|c| c.name == s.name).map(|c| c.bytes_per_unit),
                    ..FreeSymbolJson::from(s)
                })
                .collect()
        },
        unsized_inputs: graph.unsized_inputs().into_iter().map(|t| graph.tensor(t).name.clone()).collect(),
        naive: NaiveJson {
            activations_bytes: sc.naive.activations_bytes,
            activations_x2_bytes: sc.naive.activations_x2_bytes,
            weights_bytes: sc.naive.weights_bytes,
            inputs_bytes: sc.naive.inputs_bytes,
            inference_total_bytes: sc.naive.inference_total_bytes,
            training_total_bytes: sc.naive.training_total_bytes,
        },
        settings: SettingsJson {
            profile: s.profile,
            dtype: s.dtype.name(),
            mixed_precision: s.mixed_precision,
            optimizer: s.optimizer.map(|o| o.to_string()),
            threads: s.threads,
            style_layers: (!s.style_layers.is_empty()).then(|| s.style_layers.clone()),
            content_layers: (!s.content_layers.is_empty()).then(|| s.content_layers.clone()),
            loss_placement: s.loss_placement.map(|p| p.as_str()),
            attention: AttentionJson {
                kernel: s.attention.as_str(),
                fused: s.attention_calls.fused,
                math: s.attention_calls.math,
                as_written: s.attention_calls.as_written,
            },
        },
        decode: sc.decode.as_ref().map(|d| DecodeJson {
            cache_inputs: d.cache_inputs,
            past_length: d.cache.map(|c| c.past),
            cache_bytes: d.cache.map(|c| c.bytes),
            cache_bytes_per_token: d.cache.map(|c| c.bytes_per_token),
            peak_bytes_per_token: d.peak_growth.map(|g| g.bytes_per_token),
            next_peak_bytes: d.peak_growth.map(|g| g.next_peak_bytes),
        }),
    }
}

// ---- fit and sweep ----

/// One probe of `fit` or `sweep`.
#[derive(Serialize)]
pub struct ProbeJson {
    /// The knob's value.
    pub size: u64,
    /// The `--input` value that reproduces the probe (null when a flag other than `--input` does).
    pub input: Option<String>,
    /// The exact flags that reproduce the probe with `inspect` and the same settings.
    pub flags: Vec<String>,
    /// The peak, in bytes (a lower bound unless complete).
    pub peak_bytes: u64,
    /// The scenario with the largest peak.
    pub scenario: &'static str,
}

impl From<&analysis::fit::Probe> for ProbeJson {
    fn from(p: &analysis::fit::Probe) -> Self {
        ProbeJson {
            size: p.size,
            input: p.input().map(str::to_string),
            flags: p.flags.clone(),
            peak_bytes: p.peak_bytes,
            scenario: p.scenario,
        }
    }
}

/// `fit --json`.
#[derive(Serialize)]
pub struct FitJson {
    /// `SCHEMA_VERSION`.
    pub schema_version: u32,
    /// Which output this is (`inspect`, `fit`, `sweep`, …).
    pub kind: &'static str,
    /// The model file as given.
    pub model: String,
    /// The budget.
    pub budget_bytes: u64,
    /// Memory left out of the budget for the runtime.
    pub reserve_bytes: u64,
    /// The knob varied (`resolution`, `batch`, a symbol).
    pub vary: String,
    /// The framework profile the figures follow.
    pub profile: &'static str,
    /// The scenarios whose peaks must fit.
    pub scenarios: Vec<&'static str>,
    /// Style transfer: where the losses are computed (`in-net`, `after-forward`).
    pub loss_placement: Option<&'static str>,
    /// The largest size that fits (null: none tried).
    pub fits: Option<ProbeJson>,
    /// The next size, which does not fit.
    pub next: Option<ProbeJson>,
    /// How many sizes were analysed.
    pub probes: usize,
    /// Choices nnmem made for the user that change the figures.
    pub notes: Vec<String>,
}

/// One scenario of a sweep row.
#[derive(Serialize)]
pub struct SweepScenarioJson {
    /// The peak.
    pub peak_bytes: u64,
    /// The node where the peak happens (null: a loss term or the optimizer step).
    pub peak_node: Option<String>,
    /// The phase of the peak step (`forward`, `loss`, `backward`, `step`).
    pub peak_phase: &'static str,
    /// What is live at the peak, by category.
    pub peak_breakdown: BreakdownJson,
}

#[derive(Serialize)]
/// One size of a sweep.
pub struct SweepRowJson {
    #[serde(flatten)]
    /// The size and its flags.
    pub probe: ProbeJson,
    /// Each scenario's peak.
    pub scenarios: Named<SweepScenarioJson>,
}

/// `sweep --json`.
#[derive(Serialize)]
pub struct SweepJson {
    /// `SCHEMA_VERSION`.
    pub schema_version: u32,
    /// Which output this is (`inspect`, `fit`, `sweep`, …).
    pub kind: &'static str,
    /// The model file as given.
    pub model: String,
    /// The knob varied (`resolution`, `batch`, a symbol).
    pub vary: String,
    /// The framework profile the figures follow.
    pub profile: &'static str,
    /// One row per size.
    pub rows: Vec<SweepRowJson>,
}

/// A sweep row from one probe: its flags and every scenario's peak.
pub fn sweep_row(p: &analysis::fit::Probe) -> SweepRowJson {
    SweepRowJson {
        probe: ProbeJson::from(p),
        scenarios: Named(
            p.analysed
                .memory
                .scenarios
                .iter()
                .map(|s| {
                    (
                        s.scenario.as_str(),
                        SweepScenarioJson {
                            peak_bytes: s.peak_bytes,
                            peak_node: s.peak_node_name.clone(),
                            peak_phase: s.peak_phase.as_str(),
                            peak_breakdown: BreakdownJson(s.peak_breakdown),
                        },
                    )
                })
                .collect(),
        ),
    }
}

// ---- diff ----

#[derive(Serialize)]
/// One figure on both sides.
pub struct DiffFigureJson {
    /// The figure (`training.peak`, `params`, …).
    pub name: String,
    /// The first side's figure (null: not computed there).
    pub a: Option<u64>,
    /// The second side's figure (null: not computed there).
    pub b: Option<u64>,
    /// Both sides' figures are complete (not lower bounds).
    pub complete: bool,
}

#[derive(Serialize)]
/// One layer's bytes on both sides.
pub struct DiffLayerJson {
    /// The layer.
    pub layer: String,
    /// Its bytes on the first side.
    pub a_bytes: Option<u64>,
    /// Its bytes on the second side.
    pub b_bytes: Option<u64>,
}

/// `diff --json`.
#[derive(Serialize)]
pub struct DiffJson {
    /// `SCHEMA_VERSION`.
    pub schema_version: u32,
    /// Which output this is (`inspect`, `fit`, `sweep`, …).
    pub kind: &'static str,
    /// The first side, as given.
    pub a: String,
    /// The second side, as given.
    pub b: String,
    /// Every figure side by side.
    pub figures: Vec<DiffFigureJson>,
    /// The scenario whose per-layer figures `layers` compares.
    pub layer_scenario: Option<&'static str>,
    /// The layers that changed most.
    pub layers: Vec<DiffLayerJson>,
    /// The `--assert` gates that failed or could not be checked, one line each.
    pub gate_failures: Vec<String>,
}

/// `diff --json` from the two sides' names and the comparison.
pub fn diff(a: &str, b: &str, d: &analysis::diff::DiffResult, gate_failures: Vec<String>) -> DiffJson {
    DiffJson {
        schema_version: SCHEMA_VERSION,
        kind: "diff",
        a: a.to_string(),
        b: b.to_string(),
        figures: d
            .figures
            .iter()
            .map(|f| DiffFigureJson { name: f.subject.to_string(), a: f.a, b: f.b, complete: f.complete })
            .collect(),
        layer_scenario: d.layer_scenario.map(|s| s.as_str()),
        layers: d
            .layers
            .iter()
            .map(|l| DiffLayerJson { layer: l.layer.clone(), a_bytes: l.a_bytes, b_bytes: l.b_bytes })
            .collect(),
        gate_failures,
    }
}

// ---- explain ----

#[derive(Serialize)]
/// One step of `explain`.
pub struct ExplainStepJson {
    /// What the step adds.
    pub step: String,
    /// The rule behind it.
    pub why: String,
    /// Bytes the step adds (negative: removes).
    pub bytes: i64,
    /// The running total after it.
    pub total_bytes: u64,
}

/// `explain --json`.
#[derive(Serialize)]
pub struct ExplainJson {
    /// `SCHEMA_VERSION`.
    pub schema_version: u32,
    /// Which output this is (`inspect`, `fit`, `sweep`, …).
    pub kind: &'static str,
    /// The model file as given.
    pub model: String,
    /// The scenario explained.
    pub scenario: &'static str,
    /// The framework profile the figures follow.
    pub profile: &'static str,
    /// Worker threads.
    pub threads: u32,
    /// Element type.
    pub dtype: &'static str,
    /// The steps, in order; they sum to the peak.
    pub steps: Vec<ExplainStepJson>,
    /// The peak, in bytes (a lower bound unless complete).
    pub peak_bytes: u64,
    /// The node where the peak happens (null: a loss term or the optimizer step).
    pub peak_node: Option<String>,
    /// The phase of the peak step (`forward`, `loss`, `backward`, `step`).
    pub peak_phase: &'static str,
    /// False when the peak is a lower bound.
    pub complete: bool,
}

// ---- audit ----

/// One scenario of an audited model.
#[derive(Serialize)]
pub struct AuditScenarioJson {
    /// The peak.
    pub peak_bytes: u64,
    /// Whether every figure is complete (else a lower bound).
    pub complete: bool,
}

/// One line of `audit --json` per model.
#[derive(Serialize)]
pub struct AuditModelJson {
    /// `SCHEMA_VERSION`.
    pub schema_version: u32,
    /// Which output this is (`inspect`, `fit`, `sweep`, …).
    pub kind: &'static str,
    /// The model file as given.
    pub model: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    /// The file format (`caffe`, `onnx`).
    pub format: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    /// Learned elements (null: unknown).
    pub params: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    /// Whether every weight is sized.
    pub params_complete: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    /// Each scenario's peak.
    pub scenarios: Option<Named<AuditScenarioJson>>,
    /// Choices nnmem made for the user that change the figures.
    pub notes: Vec<String>,
    /// What the loader or the memory pass could not do, as text.
    pub warnings: Vec<String>,
    /// The `--assert` gates that failed or could not be checked, one line each.
    pub gate_failures: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    /// Why the model could not be loaded.
    pub error: Option<String>,
}

/// The last line of `audit --json`.
#[derive(Serialize)]
pub struct AuditSummaryJson {
    /// `SCHEMA_VERSION`.
    pub schema_version: u32,
    /// Which output this is (`inspect`, `fit`, `sweep`, …).
    pub kind: &'static str,
    /// Models audited.
    pub models: usize,
    /// Models that could not be loaded.
    pub failed: usize,
    /// Models with an incomplete figure.
    pub incomplete: usize,
    /// Gate failures over all models.
    pub gate_failures: usize,
    /// Wall time.
    pub seconds: f64,
}

/// One model's `audit --json` line.
pub fn audit_model(model: String, row: &analysis::audit::AuditRow) -> AuditModelJson {
    let gate_failures = row
        .gate_failures
        .iter()
        .map(|f| match f {
            super::gate::GateFailure::Failed(s) | super::gate::GateFailure::Unavailable(s) => s.clone(),
        })
        .collect();
    match &row.outcome {
        Ok(a) => AuditModelJson {
            schema_version: SCHEMA_VERSION,
            kind: "audit-model",
            model,
            format: Some(a.graph.format.as_str()),
            params: Some(a.graph.param_totals().params),
            params_complete: Some(a.graph.params_complete()),
            scenarios: Some(Named(
                a.memory
                    .scenarios
                    .iter()
                    .map(|s| {
                        (s.scenario.as_str(), AuditScenarioJson { peak_bytes: s.peak_bytes, complete: s.completeness.is_complete() })
                    })
                    .collect(),
            )),
            notes: a.notes.clone(),
            warnings: a.graph.warnings.iter().chain(&a.memory.warnings).cloned().collect(),
            gate_failures,
            error: None,
        },
        Err(e) => AuditModelJson {
            schema_version: SCHEMA_VERSION,
            kind: "audit-model",
            model,
            format: None,
            params: None,
            params_complete: None,
            scenarios: None,
            notes: Vec::new(),
            warnings: Vec::new(),
            gate_failures,
            error: Some(e.clone()),
        },
    }
}
