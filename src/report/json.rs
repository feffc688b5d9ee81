//! The JSON report (schema_version 1, documented in docs/json-report.md).
//! These types are the compatibility promise: fields are added, never changed
//! without bumping `SCHEMA_VERSION`. Byte counts are exact integers.

use serde::Serialize;
use serde_json::{Map, Value};

use super::{activation_bytes, input_bytes, Source};
use crate::graph::{AttrValue, Graph, TensorKind, Unknown};

pub const SCHEMA_VERSION: u32 = 1;

#[derive(Serialize)]
pub struct JsonReport {
    pub schema_version: u32,
    pub tool: Tool,
    pub model: Model,
    pub inputs: Vec<Input>,
    pub tensors: Vec<Tensor>,
    pub nodes: Vec<Node>,
    pub totals: Totals,
    /// Filled by analyses beyond shapes (memory scenarios), keyed by name.
    #[serde(skip_serializing_if = "Map::is_empty")]
    pub scenarios: Map<String, Value>,
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
    pub params: u64,
    pub non_trainable: u64,
    pub in_place: bool,
    pub attrs: Map<String, Value>,
    /// Per-node figures from analyses beyond shapes (memory), keyed by name.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

#[derive(Serialize)]
pub struct Totals {
    pub params: u64,
    pub non_trainable: u64,
    pub param_bytes: u64,
    /// Distinct activation storage, every activation alive at once (in-place outputs counted once).
    pub activation_bytes: u64,
    pub input_bytes: u64,
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

/// Build the JSON report of a graph.
pub fn build(graph: &Graph, source: &Source<'_>) -> JsonReport {
    let name_of = |t: crate::graph::TensorId| graph.tensor(t).name.clone();
    let per_node = graph.node_param_counts();
    let totals = graph.param_totals();
    JsonReport {
        schema_version: SCHEMA_VERSION,
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
            .map(|(n, &(learned, stats))| Node {
                name: n.name.clone(),
                op: n.source_type.clone(),
                concept: n.op.name().to_string(),
                inputs: n.inputs.iter().map(|&t| name_of(t)).collect(),
                outputs: n.outputs.iter().map(|&t| name_of(t)).collect(),
                param_tensors: n.params.iter().map(|&t| name_of(t)).collect(),
                params: learned,
                non_trainable: stats,
                in_place: n.in_place,
                attrs: n.attrs.iter().map(|(k, v)| (k.clone(), attr_json(v))).collect(),
                extra: Map::new(),
            })
            .collect(),
        totals: Totals {
            params: totals.params,
            non_trainable: totals.non_trainable,
            param_bytes: totals.param_bytes,
            activation_bytes: activation_bytes(graph),
            input_bytes: input_bytes(graph),
        },
        scenarios: Map::new(),
        warnings: graph.warnings.clone(),
    }
}

/// Adds the memory pass's results: per node `output_bytes`, and per scenario
/// `<scenario>.saved_bytes`, `.workspace_bytes`, `.live_bytes_after` (training
/// also `.backward_workspace_bytes`, `.live_bytes_after_backward`); and
/// `scenarios.<name>` with the peak, its breakdown, the naive sums and the settings.
pub fn add_memory(report: &mut JsonReport, memory: &crate::memory::MemoryReport) {
    use serde_json::json;
    for sc in &memory.scenarios {
        let name = sc.scenario.as_str();
        let breakdown: Map<String, Value> =
            sc.peak_breakdown.iter().map(|(c, b)| (c.as_str().to_string(), Value::from(b))).collect();
        let s = &sc.settings;
        report.scenarios.insert(
            name.to_string(),
            json!({
                "peak_bytes": sc.peak_bytes,
                "peak_node": sc.peak_node_name,
                "peak_phase": sc.peak_phase.as_str(),
                "peak_breakdown": breakdown,
                "naive": {
                    "activations_bytes": sc.naive.activations_bytes,
                    "activations_x2_bytes": sc.naive.activations_x2_bytes,
                    "weights_bytes": sc.naive.weights_bytes,
                    "inputs_bytes": sc.naive.inputs_bytes,
                    "inference_total_bytes": sc.naive.inference_total_bytes,
                    "training_total_bytes": sc.naive.training_total_bytes,
                },
                "settings": {
                    "profile": s.profile,
                    "dtype": s.dtype.name(),
                    "mixed_precision": s.mixed_precision,
                    "optimizer": s.optimizer.map(|o| o.to_string()),
                    "threads": s.threads,
                    "style_layers": (!s.style_layers.is_empty()).then_some(&s.style_layers),
                    "content_layers": (!s.content_layers.is_empty()).then_some(&s.content_layers),
                },
            }),
        );
        for (node, nm) in report.nodes.iter_mut().zip(&sc.nodes) {
            node.extra.insert("output_bytes".into(), Value::from(nm.output_bytes));
            let mut per = json!({
                "saved_bytes": nm.saved_bytes,
                "workspace_bytes": nm.workspace_bytes,
                "live_bytes_after": nm.live_bytes_after,
            });
            if let (Some(obj), Some(after)) = (per.as_object_mut(), nm.live_bytes_after_backward) {
                obj.insert("backward_workspace_bytes".into(), Value::from(nm.backward_workspace_bytes));
                obj.insert("live_bytes_after_backward".into(), Value::from(after));
            }
            node.extra.insert(name.to_string(), per);
        }
    }
    report.warnings.extend(memory.warnings.iter().cloned());
}
