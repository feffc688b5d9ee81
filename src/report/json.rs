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

pub const SCHEMA_VERSION: u32 = 2;

/// `inspect --json`.
#[derive(Serialize)]
pub struct JsonReport {
    pub schema_version: u32,
    pub kind: &'static str,
    pub tool: Tool,
    pub model: Model,
    pub inputs: Vec<Input>,
    pub tensors: Vec<Tensor>,
    pub nodes: Vec<Node>,
    pub totals: Totals,
    /// Memory scenarios, in the order computed.
    #[serde(skip_serializing_if = "Named::is_empty")]
    pub scenarios: Named<ScenarioJson>,
    /// Choices nnmem made for the user that change the figures.
    pub notes: Vec<String>,
    pub warnings: Vec<String>,
}

#[derive(Serialize)]
pub struct Tool {
    pub name: &'static str,
    pub version: &'static str,
}

#[derive(Serialize)]
pub struct Model {
    pub path: String,
    pub format: &'static str,
    pub name: String,
}

#[derive(Serialize)]
pub struct Input {
    pub name: String,
    pub shape: Option<Vec<u64>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub symbolic_shape: Option<Vec<String>>,
    pub dtype: &'static str,
}

#[derive(Serialize)]
pub struct Tensor {
    pub name: String,
    pub shape: Option<Vec<u64>>,
    /// Per-dimension formulas where a dimension was left free (ONNX).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub symbolic_shape: Option<Vec<String>>,
    /// Why `shape` is null: "no_rule", "run_time", "unstated" or "symbolic".
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unknown: Option<&'static str>,
    pub dtype: &'static str,
    pub bytes: Option<u64>,
    pub kind: &'static str,
    /// Params only: learned (true) or running statistics (false).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trainable: Option<bool>,
    pub producer: Option<String>,
}

#[derive(Serialize)]
pub struct Node {
    pub name: String,
    /// The operator type as the format names it (Caffe V2 type, ONNX op_type).
    pub op: String,
    /// nnmem's operator concept (Conv, MaxPool, Dense, …).
    pub concept: String,
    pub inputs: Vec<String>,
    pub outputs: Vec<String>,
    pub param_tensors: Vec<String>,
    /// `None` (null) when the node's weights have an unknown size.
    pub params: Option<u64>,
    pub non_trainable: Option<u64>,
    pub in_place: bool,
    pub attrs: Map<String, Value>,
    /// Memory pass: bytes of the node's outputs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output_bytes: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub inference: Option<NodeFigures>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub training: Option<NodeFigures>,
    #[serde(rename = "style-transfer", skip_serializing_if = "Option::is_none")]
    pub style_transfer: Option<NodeFigures>,
}

/// One node's figures in one scenario.
#[derive(Serialize)]
pub struct NodeFigures {
    /// False when the scenario never runs the node (style transfer stops at the deepest loss).
    pub runs: bool,
    pub saved_bytes: u64,
    pub workspace_bytes: u64,
    pub live_bytes_after: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backward_workspace_bytes: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub live_bytes_after_backward: Option<u64>,
}

#[derive(Serialize)]
pub struct Totals {
    /// Learned elements; a lower bound when `params_complete` is false.
    pub params: u64,
    pub non_trainable: u64,
    pub param_bytes: u64,
    /// False when some layer's weights have an unknown size (`unsized_weight_nodes`).
    pub params_complete: bool,
    pub unsized_weight_nodes: Vec<String>,
    /// Distinct activation storage, every activation alive at once (in-place outputs counted once).
    pub activation_bytes: u64,
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
pub struct ScenarioJson {
    /// Largest live total; a lower bound when `complete` is false.
    pub peak_bytes: u64,
    pub peak_node: Option<String>,
    pub peak_phase: &'static str,
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
    pub naive: NaiveJson,
    pub settings: SettingsJson,
}

#[derive(Serialize)]
pub struct FreeSymbolJson {
    pub name: String,
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
pub struct SymbolUse {
    pub input: String,
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
pub struct NaiveJson {
    pub activations_bytes: u64,
    pub activations_x2_bytes: u64,
    pub weights_bytes: u64,
    pub inputs_bytes: u64,
    pub inference_total_bytes: u64,
    pub training_total_bytes: u64,
}

#[derive(Serialize)]
pub struct SettingsJson {
    pub profile: &'static str,
    pub dtype: &'static str,
    pub mixed_precision: bool,
    pub optimizer: Option<String>,
    pub threads: u32,
    pub style_layers: Option<Vec<String>>,
    pub content_layers: Option<Vec<String>>,
    /// Style transfer: `in-net` or `after-forward`.
    pub loss_placement: Option<&'static str>,
    pub attention: AttentionJson,
}

/// The attention kernel and how the attention computations ran.
#[derive(Serialize)]
pub struct AttentionJson {
    /// `fused` or `math`: what `scaled_dot_product_attention` calls run with.
    pub kernel: &'static str,
    pub fused: usize,
    pub math: usize,
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
    }
}

// ---- fit and sweep ----

/// One probe of `fit` or `sweep`.
#[derive(Serialize)]
pub struct ProbeJson {
    pub size: u64,
    /// The `--input` value that reproduces the probe (null when a flag other than `--input` does).
    pub input: Option<String>,
    /// The exact flags that reproduce the probe with `inspect` and the same settings.
    pub flags: Vec<String>,
    pub peak_bytes: u64,
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
    pub schema_version: u32,
    pub kind: &'static str,
    pub model: String,
    pub budget_bytes: u64,
    pub reserve_bytes: u64,
    pub vary: String,
    pub profile: &'static str,
    pub scenarios: Vec<&'static str>,
    /// Style transfer: where the losses are computed (`in-net`, `after-forward`).
    pub loss_placement: Option<&'static str>,
    pub fits: Option<ProbeJson>,
    pub next: Option<ProbeJson>,
    pub probes: usize,
    pub notes: Vec<String>,
}

/// One scenario of a sweep row.
#[derive(Serialize)]
pub struct SweepScenarioJson {
    pub peak_bytes: u64,
    pub peak_node: Option<String>,
    pub peak_phase: &'static str,
    pub peak_breakdown: BreakdownJson,
}

#[derive(Serialize)]
pub struct SweepRowJson {
    #[serde(flatten)]
    pub probe: ProbeJson,
    pub scenarios: Named<SweepScenarioJson>,
}

/// `sweep --json`.
#[derive(Serialize)]
pub struct SweepJson {
    pub schema_version: u32,
    pub kind: &'static str,
    pub model: String,
    pub vary: String,
    pub profile: &'static str,
    pub rows: Vec<SweepRowJson>,
}

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
pub struct DiffFigureJson {
    pub name: String,
    pub a: Option<u64>,
    pub b: Option<u64>,
    /// Both sides' figures are complete (not lower bounds).
    pub complete: bool,
}

#[derive(Serialize)]
pub struct DiffLayerJson {
    pub layer: String,
    pub a_bytes: Option<u64>,
    pub b_bytes: Option<u64>,
}

/// `diff --json`.
#[derive(Serialize)]
pub struct DiffJson {
    pub schema_version: u32,
    pub kind: &'static str,
    pub a: String,
    pub b: String,
    pub figures: Vec<DiffFigureJson>,
    /// The scenario whose per-layer figures `layers` compares.
    pub layer_scenario: Option<&'static str>,
    pub layers: Vec<DiffLayerJson>,
    pub gate_failures: Vec<String>,
}

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
pub struct ExplainStepJson {
    pub step: String,
    pub why: String,
    /// Bytes the step adds (negative: removes).
    pub bytes: i64,
    pub total_bytes: u64,
}

/// `explain --json`.
#[derive(Serialize)]
pub struct ExplainJson {
    pub schema_version: u32,
    pub kind: &'static str,
    pub model: String,
    pub scenario: &'static str,
    pub profile: &'static str,
    pub threads: u32,
    pub dtype: &'static str,
    pub steps: Vec<ExplainStepJson>,
    pub peak_bytes: u64,
    pub peak_node: Option<String>,
    pub peak_phase: &'static str,
    /// False when the peak is a lower bound.
    pub complete: bool,
}

// ---- audit ----

/// One scenario of an audited model.
#[derive(Serialize)]
pub struct AuditScenarioJson {
    pub peak_bytes: u64,
    pub complete: bool,
}

/// One line of `audit --json` per model.
#[derive(Serialize)]
pub struct AuditModelJson {
    pub schema_version: u32,
    pub kind: &'static str,
    pub model: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub format: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub params: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub params_complete: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scenarios: Option<Named<AuditScenarioJson>>,
    pub notes: Vec<String>,
    pub warnings: Vec<String>,
    pub gate_failures: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The last line of `audit --json`.
#[derive(Serialize)]
pub struct AuditSummaryJson {
    pub schema_version: u32,
    pub kind: &'static str,
    pub models: usize,
    pub failed: usize,
    pub incomplete: usize,
    pub gate_failures: usize,
    pub seconds: f64,
}

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
