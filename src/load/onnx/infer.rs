//! Shape inference through tract-onnx on a *weightless* copy of the graph.
//!
//! tract copies every initializer twice while it loads a model (1.3 GB for a
//! 550 MB VGG), and refuses a model whose external data file is absent. So tract
//! is handed a rewritten graph instead: every external initializer and every
//! large or exotic-typed one becomes a typed graph input of the same shape;
//! small internal constants (reshape targets, Shape/Gather/Concat chains, Resize
//! scales, BatchNorm vectors) stay as values because shapes can depend on them.
//! "Small" is judged by elements *and* by stored bytes (dims of [4] may sit on
//! 150 MiB of `raw_data`), within a total. A Constant node stored in more than
//! 1 MiB becomes a typed input of its value's shape; any other node that large,
//! or holding subgraphs when those hold more than 5,000 nodes in all, is a
//! stand-in whose outputs tract leaves unknown (a warning names them).
//! The copy is built from the byte slices the decoder found, decoded with
//! tract's own protobuf types, so no weight payload is ever read.
//!
//! Further rewrites keep tract's analysis going where it would stop:
//! * training-mode BatchNormalization (3 outputs) becomes its inference form; the
//!   statistics outputs are filled by rule afterwards (per channel);
//! * bf16 / float8 / 4-bit element types become f16 / i8 (same or larger storage)
//!   because tract rejects them at load; the loader reports the real dtype;
//! * `value_info` is not given to tract: an export's recorded shapes are for the
//!   export size and would contradict the size the user asks for.
//!
//! After `analyse(true)`, ops tract has no implementation for are patched by
//! simple rules (same shape as input 0, Upsample by scales) and analysis runs again.

use std::collections::{HashMap, HashSet};

use prost::Message;
use tract_onnx::pb;
use tract_onnx::prelude::*;
use tract_onnx::tract_hir::infer::{Factoid, GenericFactoid, InferenceModelExt, ShapeFactoid};

use super::proto::{self, elem};
use super::{Decoded, DimSpec, InputBinding, ValueFact, ValueShape};

/// Internal initializers with fewer elements than this stay real values in the
/// copy (feasibility note: 65,536 kept every torchvision model analysable).
const KEEP_BELOW_ELEMS: u64 = 65_536;

/// A tensor kept as a value must also be at most this large as stored: its
/// dims may claim 4 elements over 150 MiB of `raw_data`. Judged by payload
/// size, never by dims alone. (65,535 doubles stored unpacked take 640 KiB.)
const MAX_KEPT_TENSOR_BYTES: usize = 1 << 20;

/// All kept initializers together, smallest first (shape constants are tiny).
const MAX_KEPT_INITIALIZER_BYTES: usize = 16 << 20;

/// A node stored in more than this many bytes (a Constant's payload, a large
/// subgraph, long strings) is not given to tract: a Constant becomes a typed
/// input of its value's shape, any other node a stand-in whose outputs tract
/// leaves unknown.
const MAX_NODE_BYTES: usize = 1 << 20;

/// Nodes inside subgraphs (If/Loop/Scan bodies) tract is given at most; above,
/// nodes holding subgraphs are stand-ins (tract's model costs about 1.5 KB a
/// node, and nnmem counts control-flow outputs as run-time sized anyway).
const MAX_SUBGRAPH_NODES: u64 = 5_000;

/// All nodes given to tract together, as stored.
const MAX_NODE_BYTES_TOTAL: usize = 32 << 20;

/// ONNX op types tract lacks whose outputs have the shape and type of input 0.
const SAME_AS_INPUT: &[&str] = &[
    "Bernoulli",
    "CumProd",
    "ReverseSequence",
    "Shrink",
    "Swish",
    "BiasDropout",
    "FastGelu",
    "Gelu",
    "QuickGelu",
    "BiasGelu",
    "LpNormalization",
    "MeanVarianceNormalization",
    "Celu",
    "ThresholdedRelu",
    "Mish",
    "HardSwish",
];

/// What the analysis found, by ONNX value name.
pub struct Analysis {
    pub values: HashMap<String, ValueFact>,
    pub warnings: Vec<String>,
}

/// Runs the whole tract analysis; a panic inside tract becomes an error message
/// (tract is not written for hostile input, and one bad model must not abort nnmem).
pub fn analyse(decoded: &Decoded<'_>, inputs: &[InputBinding]) -> Result<Analysis, String> {
    quiet_panics_in_tract();
    IN_TRACT.with(|f| f.set(true));
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| analyse_inner(decoded, inputs)));
    IN_TRACT.with(|f| f.set(false));
    match result {
        Ok(r) => r,
        Err(panic) => {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".into());
            Err(format!("tract's shape analysis crashed ({what})"))
        }
    }
}

thread_local! {
    /// Set while this thread runs tract, whose panics are caught and become a warning.
    static IN_TRACT: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Installs (once) a panic hook that stays silent for a panic inside tract on
/// this thread: it is caught and reported as a warning, so the default hook's
/// "thread 'main' panicked at …" (and backtrace) would only alarm the user.
/// Every other panic goes to the previous hook.
fn quiet_panics_in_tract() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !IN_TRACT.with(|f| f.get()) {
                previous(info);
            }
        }));
    });
}

fn analyse_inner(decoded: &Decoded<'_>, inputs: &[InputBinding]) -> Result<Analysis, String> {
    let mut warnings = Vec::new();
    let (proto, bn_training) = weightless_proto(decoded, inputs, &mut warnings)?;
    let framework = tract_onnx::onnx().with_ignore_value_info(true).with_ignore_output_shapes(true);
    // No model folder: nothing kept in the copy refers to external data, and tract
    // must never open a data file on nnmem's behalf.
    let parsed = framework.parse(&proto, None).map_err(|e| format!("tract could not build the graph: {e:#}"))?;
    let mut model = parsed.model;
    let outlets = parsed.outlets_by_name;

    if let Err(e) = model.analyse(true) {
        // Analysis failed somewhere; what it could solve is still in the facts.
        warnings.push(format!("shape analysis stopped at an operator: {}", first_line(&format!("{e:#}"))));
    }
    if patch_unimplemented(decoded, &mut model, &outlets) {
        let _ = model.analyse(true);
    }

    let input_symbols: HashSet<String> = inputs
        .iter()
        .flat_map(|b| b.dims.iter())
        .filter_map(|d| match d {
            DimSpec::Symbol(s) => Some(s.clone()),
            DimSpec::Value(_) => None,
        })
        .collect();

    let mut values = HashMap::with_capacity(outlets.len());
    for (name, outlet) in &outlets {
        let Ok(fact) = model.outlet_fact(*outlet) else { continue };
        values.insert(name.clone(), read_fact(fact, &input_symbols));
    }
    // Training BatchNormalization: the running statistics outputs are per channel.
    for (outputs, scale_name) in bn_training {
        let channels = match values.get(&scale_name).map(|v| &v.shape) {
            Some(ValueShape::Concrete(d)) if d.len() == 1 => d.first().copied(),
            _ => None,
        };
        for out in outputs {
            let shape = match channels {
                Some(c) => ValueShape::Concrete(vec![c]),
                None => ValueShape::Unknown,
            };
            values.insert(out, ValueFact { dtype: None, shape });
        }
    }
    Ok(Analysis { values, warnings })
}

fn first_line(s: &str) -> String {
    let line = s.lines().next().unwrap_or(s);
    line.chars().take(300).collect()
}

/// Converts one tract fact into nnmem's view: concrete, symbolic (free input
/// symbols only), run-time sized (symbols tract invented for data-dependent
/// extents) or unknown.
fn read_fact(fact: &InferenceFact, input_symbols: &HashSet<String>) -> ValueFact {
    let dtype = fact.datum_type.concretize().and_then(dtype_of_datum);
    let shape = match fact.shape.concretize() {
        None => ValueShape::Unknown,
        Some(dims) => {
            let concrete: Option<Vec<u64>> =
                dims.iter().map(|d| d.to_i64().ok().and_then(|v| u64::try_from(v).ok())).collect();
            match concrete {
                Some(c) => ValueShape::Concrete(c),
                None => {
                    let foreign = dims
                        .iter()
                        .flat_map(|d| d.symbols())
                        .any(|s| !input_symbols.contains(&format!("{s}")));
                    if foreign {
                        ValueShape::RunTime
                    } else {
                        ValueShape::Symbolic(dims.iter().map(|d| format!("{d}")).collect())
                    }
                }
            }
        }
    };
    ValueFact { dtype, shape }
}

fn dtype_of_datum(dt: DatumType) -> Option<crate::graph::DType> {
    use crate::graph::DType;
    Some(match dt {
        DatumType::Bool => DType::Bool,
        DatumType::U8 => DType::U8,
        DatumType::U16 => DType::U16,
        DatumType::U32 => DType::U32,
        DatumType::U64 => DType::U64,
        DatumType::I8 => DType::I8,
        DatumType::I16 => DType::I16,
        DatumType::I32 => DType::I32,
        DatumType::I64 => DType::I64,
        DatumType::F16 => DType::F16,
        DatumType::F32 => DType::F32,
        DatumType::F64 => DType::F64,
        DatumType::TDim => DType::I64,
        DatumType::String => DType::String,
        _ => return None,
    })
}

/// The element type tract is given for `t`: types it cannot load map to a type
/// of the same (or larger) storage.
fn tract_elem(t: i32) -> i32 {
    match t {
        elem::BFLOAT16 | 17..=20 | elem::FLOAT8E8M0 => elem::FLOAT16,
        elem::UINT4 | elem::INT4 | elem::FLOAT4E2M1 | elem::UINT2 | elem::INT2 => elem::INT8,
        elem::COMPLEX64 | elem::COMPLEX128 => elem::DOUBLE,
        other => other,
    }
}

fn tract_can_load(t: i32) -> bool {
    tract_elem(t) == t && !matches!(t, elem::STRING)
}

/// Builds the weightless ModelProto; also returns, for every training-mode
/// BatchNormalization, its statistics outputs and the name of its scale input.
/// What is not given to tract, and why, goes to `warnings`.
fn weightless_proto(
    decoded: &Decoded<'_>,
    inputs: &[InputBinding],
    warnings: &mut Vec<String>,
) -> Result<(pb::ModelProto, Vec<(Vec<String>, String)>), String> {
    let dec = |what: &str, e: prost::DecodeError| format!("{what}: {e}");
    let mut graph = pb::GraphProto { name: decoded.graph_name.clone(), ..Default::default() };

    // Initializers: keep small internal ones whose type tract loads (judged by
    // their stored size too), smallest first within a total; the rest become facts.
    let mut candidates: Vec<usize> = Vec::new();
    let mut as_fact = HashSet::new();
    let fact = |t: &proto::TensorProto, graph: &mut pb::GraphProto, as_fact: &mut HashSet<String>| {
        as_fact.insert(t.name.clone());
        let elems = super::elems_of(&t.dims);
        graph.input.push(fact_input(&t.name, tract_elem(t.data_type), &t.dims, elems.is_some()));
    };
    for (i, (t, bytes)) in decoded.initializers.iter().enumerate() {
        let elems = super::elems_of(&t.dims);
        let small = elems.is_some_and(|e| e < KEEP_BELOW_ELEMS) && bytes.len() <= MAX_KEPT_TENSOR_BYTES;
        if !t.is_external() && tract_can_load(t.data_type) && small {
            candidates.push(i);
        } else {
            fact(t, &mut graph, &mut as_fact);
        }
    }
    candidates.sort_by_key(|&i| decoded.initializers[i].1.len());
    let mut kept_bytes = 0usize;
    for i in candidates {
        let (t, bytes) = &decoded.initializers[i];
        kept_bytes += bytes.len();
        if kept_bytes <= MAX_KEPT_INITIALIZER_BYTES {
            graph.initializer.push(pb::TensorProto::decode(*bytes).map_err(|e| dec("initializer", e))?);
        } else {
            fact(t, &mut graph, &mut as_fact);
        }
    }
    // Sparse initializers: typed inputs of their dense shape.
    for t in &decoded.sparse_dense {
        fact(t, &mut graph, &mut as_fact);
    }
    // Declared inputs, with the dims the user bound.
    let bound: HashMap<&str, &InputBinding> = inputs.iter().map(|b| (b.name.as_str(), b)).collect();
    for (vi, bytes) in &decoded.inputs {
        if as_fact.contains(vi.name.as_str()) {
            continue; // an initializer also listed as input (IR < 4): already a fact
        }
        let mut v = pb::ValueInfoProto::decode(*bytes).map_err(|e| dec("graph input", e))?;
        map_value_info_type(&mut v);
        if let Some(b) = bound.get(vi.name.as_str()) {
            set_dims(&mut v, &b.dims);
        }
        graph.input.push(v);
    }
    for (_, bytes) in &decoded.outputs {
        let mut v = pb::ValueInfoProto::decode(*bytes).map_err(|e| dec("graph output", e))?;
        map_value_info_type(&mut v);
        graph.output.push(v);
    }
    let mut bn_training = Vec::new();
    let subgraphs_too_large = decoded.subgraph_nodes > MAX_SUBGRAPH_NODES;
    let mut stand_ins: Vec<&str> = Vec::new();
    let mut node_bytes = 0usize;
    for (node, bytes) in &decoded.nodes {
        let holds_graph = node.attribute.iter().any(|a| a.g.is_some() || !a.graphs.is_empty());
        if bytes.len() > MAX_NODE_BYTES || (holds_graph && subgraphs_too_large) {
            if node.op_type == "Constant" && bytes.len() > MAX_NODE_BYTES {
                // Its value's shape and type are in the header nnmem decoded; the payload stays unread.
                if let (Some(out), Some((dims, elem))) = (node.output.first(), constant_shape(node)) {
                    let sane = super::elems_of(&dims).is_some();
                    graph.input.push(fact_input(out, tract_elem(elem), &dims, sane));
                    continue;
                }
            }
            stand_ins.push(if node.name.is_empty() { node.op_type.as_str() } else { node.name.as_str() });
            // Typed (tract needs a type; f32 as for any unknown value), with no shape.
            for out in node.output.iter().filter(|o| !o.is_empty()) {
                graph.input.push(fact_input(out, elem::FLOAT, &[], false));
            }
            continue;
        }
        node_bytes += bytes.len();
        if node_bytes > MAX_NODE_BYTES_TOTAL {
            return Err(format!(
                "the graph's nodes take more than {} MiB as stored; tract is not run on graphs this large",
                MAX_NODE_BYTES_TOTAL >> 20
            ));
        }
        let mut n = pb::NodeProto::decode(&bytes[..]).map_err(|e| dec("node", e))?;
        if n.op_type == "BatchNormalization" && n.output.len() > 1 {
            // Inference form for tract; the extra outputs are filled by rule.
            let extra: Vec<String> = n.output.drain(1..).filter(|s| !s.is_empty()).collect();
            n.attribute.retain(|a| a.name != "training_mode");
            bn_training.push((extra, node.input.get(1).map(|x| x.to_string()).unwrap_or_default()));
        }
        if n.op_type == "LayerNormalization" && n.domain.is_empty() {
            // tract's LayerNormalization rules loop for minutes on an axis
            // outside the input's rank (found by fuzzing). Output 0 has the
            // input's shape, which an Identity gives tract; the statistics
            // outputs stay unknown to tract (nnmem's own rule sizes them).
            for out in n.output.drain(1..).filter(|s| !s.is_empty()) {
                graph.input.push(fact_input(&out, elem::FLOAT, &[], false));
            }
            n.op_type = "Identity".into();
            n.input.truncate(1);
            n.attribute.clear();
        }
        if n.op_type == "ConstantOfShape" && !n.attribute.iter().any(|a| a.name == "value") {
            // The spec's default is one f32 zero; tract's is f64. Say it.
            n.attribute.push(pb::AttributeProto {
                name: "value".into(),
                r#type: pb::attribute_proto::AttributeType::Tensor as i32,
                t: Some(pb::TensorProto { dims: vec![1], data_type: elem::FLOAT, float_data: vec![0.0], ..Default::default() }),
                ..Default::default()
            });
        }
        for a in &mut n.attribute {
            if n.op_type == "Cast" && a.name == "to" {
                a.i = i64::from(tract_elem(a.i as i32));
            }
            if let Some(t) = &mut a.t {
                t.data_type = tract_elem(t.data_type);
            }
        }
        graph.node.push(n);
    }
    if let Some(first) = stand_ins.first() {
        let why = if subgraphs_too_large {
            format!(
                "they are stored in more than {} MiB, or hold subgraphs of {} nodes in all (more than {MAX_SUBGRAPH_NODES})",
                MAX_NODE_BYTES >> 20,
                decoded.subgraph_nodes
            )
        } else {
            format!("they are stored in more than {} MiB each", MAX_NODE_BYTES >> 20)
        };
        warnings.push(format!(
            "{} node(s), first \"{first}\", are not given to tract's shape analysis ({why}); their outputs' shapes are unknown",
            stand_ins.len()
        ));
    }
    let opset_import = decoded
        .header
        .opset_import
        .iter()
        .map(|o| pb::OperatorSetIdProto { domain: o.domain.clone(), version: o.version })
        .collect();
    let model = pb::ModelProto {
        ir_version: decoded.header.ir_version,
        opset_import,
        graph: Some(graph),
        ..Default::default()
    };
    Ok((model, bn_training))
}

/// Dims and element type of a Constant's value, from the decoded header.
fn constant_shape(node: &proto::NodeProto) -> Option<(Vec<i64>, i32)> {
    node.attribute.iter().find_map(|a| match a.name.as_str() {
        "value" => a.t.as_ref().map(|t| (t.dims.clone(), t.data_type)),
        "value_floats" => Some((vec![a.floats.len() as i64], elem::FLOAT)),
        "value_ints" => Some((vec![a.ints.len() as i64], elem::INT64)),
        "value_strings" => Some((vec![a.strings.len() as i64], elem::STRING)),
        _ => None,
    })
}

/// A typed graph input standing in for an initializer. An initializer whose
/// element count overflows gets an unknown shape (tract's dim arithmetic is not
/// made for 2^62-sized extents).
fn fact_input(name: &str, elem_type: i32, dims: &[i64], sane: bool) -> pb::ValueInfoProto {
    use pb::tensor_shape_proto::{dimension::Value, Dimension};
    let shape = sane.then(|| pb::TensorShapeProto {
        dim: dims.iter().map(|&d| Dimension { value: Some(Value::DimValue(d)), ..Default::default() }).collect(),
    });
    pb::ValueInfoProto {
        name: name.to_string(),
        r#type: Some(pb::TypeProto {
            value: Some(pb::type_proto::Value::TensorType(pb::type_proto::Tensor { elem_type, shape })),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn map_value_info_type(v: &mut pb::ValueInfoProto) {
    use pb::tensor_shape_proto::dimension::Value;
    if let Some(pb::TypeProto { value: Some(pb::type_proto::Value::TensorType(t)), .. }) = &mut v.r#type {
        t.elem_type = tract_elem(t.elem_type);
        for d in t.shape.iter_mut().flat_map(|s| s.dim.iter_mut()) {
            if let Some(Value::DimParam(p)) = &mut d.value {
                *p = tract_symbol(p);
            }
        }
    }
}

/// A dim's symbol as tract may be given it. tract parses a `dim_param` as an
/// expression with a recursive parser: a deeply nested one (`-(-(-(…` ten
/// thousand deep) overflowed the stack. Short, shallow text passes as it is;
/// anything else becomes a plain name of its own (the same text, the same name).
fn tract_symbol(p: &str) -> String {
    let mut depth = 0usize;
    let mut deepest = 0usize;
    let mut run = 0usize;
    let mut longest_run = 0usize;
    for c in p.chars() {
        match c {
            '(' => depth += 1,
            ')' => depth = depth.saturating_sub(1),
            _ => {}
        }
        deepest = deepest.max(depth);
        run = if c.is_alphanumeric() || c == '_' { 0 } else { run + 1 };
        longest_run = longest_run.max(run);
    }
    if p.len() <= 256 && deepest <= 8 && longest_run <= 8 {
        return p.to_string();
    }
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    p.hash(&mut h);
    format!("nnmem_dim_{:016x}", h.finish())
}

fn set_dims(v: &mut pb::ValueInfoProto, dims: &[DimSpec]) {
    use pb::tensor_shape_proto::{dimension::Value, Dimension};
    let shape = pb::TensorShapeProto {
        dim: dims
            .iter()
            .map(|d| Dimension {
                value: Some(match d {
                    // Values above i64::MAX were refused when the binding was made.
                    DimSpec::Value(v) => Value::DimValue(i64::try_from(*v).unwrap_or(i64::MAX)),
                    DimSpec::Symbol(s) => Value::DimParam(tract_symbol(s)),
                }),
                ..Default::default()
            })
            .collect(),
    };
    match &mut v.r#type {
        Some(pb::TypeProto { value: Some(pb::type_proto::Value::TensorType(t)), .. }) => t.shape = Some(shape),
        _ => {
            // No declared type: assume f32 (image inputs) so the user's dims are still used.
            v.r#type = Some(pb::TypeProto {
                value: Some(pb::type_proto::Value::TensorType(pb::type_proto::Tensor {
                    elem_type: elem::FLOAT,
                    shape: Some(shape),
                })),
                ..Default::default()
            });
        }
    }
}

/// Gives ops tract has no implementation for an output fact by rule. Returns
/// whether anything was set (then analysis must run again).
fn patch_unimplemented(decoded: &Decoded<'_>, model: &mut InferenceModel, outlets: &HashMap<String, OutletId>) -> bool {
    let mut changed = false;
    for (node, _) in &decoded.nodes {
        let Some(first_out) = node.output.first().and_then(|o| outlets.get(o.as_str())) else { continue };
        let tract_node = model.node(first_out.node);
        if !tract_node.op.name().starts_with("Unimplemented") {
            continue;
        }
        let op_type = node.op_type.as_str();
        let input0 = tract_node.inputs.first().and_then(|i| model.outlet_fact(*i).ok()).cloned();
        let fact = match (op_type, input0) {
            (t, Some(x)) if SAME_AS_INPUT.contains(&t) => Some(x.without_value()),
            ("Upsample", Some(x)) => upsample_fact(node, model, &tract_node.inputs, &x),
            _ => None,
        };
        // Without a rule the outputs stay unknown; the loader names such nodes
        // once, together with every other node whose output shape is missing.
        if let Some(f) = fact {
            if model.set_outlet_fact(*first_out, f).is_ok() {
                changed = true;
            }
        }
    }
    changed
}

/// Upsample (opset 7–9, removed in 10): each dim times its scale; scales come
/// from the attribute (opset 7–8) or the constant second input (opset 9).
fn upsample_fact(
    node: &proto::NodeProto,
    model: &InferenceModel,
    tract_inputs: &[OutletId],
    x: &InferenceFact,
) -> Option<InferenceFact> {
    let scales: Vec<f32> = match node.attribute.iter().find(|a| a.name == "scales") {
        Some(a) => a.floats.clone(),
        None => {
            let value = model.outlet_fact(*tract_inputs.get(1)?).ok()?.value.concretize()?;
            let cast = value.cast_to::<f32>().ok()?;
            cast.to_plain_array_view::<f32>().ok()?.iter().copied().collect()
        }
    };
    let dims = x.shape.concretize()?;
    if dims.len() != scales.len() {
        return None;
    }
    let out: Vec<GenericFactoid<TDim>> = dims
        .iter()
        .zip(&scales)
        .map(|(d, &s)| {
            if s.fract() == 0.0 && s >= 0.0 {
                GenericFactoid::Only(d.clone() * (s as i64))
            } else {
                match d.to_i64() {
                    Ok(v) => GenericFactoid::Only(TDim::from((v as f64 * f64::from(s)).floor() as i64)),
                    Err(_) => GenericFactoid::Any,
                }
            }
        })
        .collect();
    let mut fact = InferenceFact::default().with_shape(ShapeFactoid::closed(out.into_iter().collect()));
    if let Some(dt) = x.datum_type.concretize() {
        fact = fact.with_datum_type(dt);
    }
    Some(fact)
}

#[cfg(test)]
mod tests {
    use super::tract_symbol;

    #[test]
    fn deep_or_long_dims_reach_tract_as_plain_names() {
        assert_eq!(tract_symbol("batch"), "batch");
        assert_eq!(tract_symbol("(s0 + 1) // 2"), "(s0 + 1) // 2");
        let deep = format!("{}s{}", "-(".repeat(10_000), ")".repeat(10_000));
        let named = tract_symbol(&deep);
        assert!(named.starts_with("nnmem_dim_") && named.len() == "nnmem_dim_".len() + 16, "{named}");
        assert_eq!(tract_symbol(&deep), named);
        assert_ne!(tract_symbol(&"x".repeat(300)), tract_symbol(&"y".repeat(300)));
    }
}
