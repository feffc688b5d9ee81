//! Caffe prototxt → graph: read the text tree, pick the layers of the chosen
//! phase, declare the inputs, and add every layer in file order through the
//! shape rules. All three syntaxes (V0 `layers { layer {…} }`, V1 `layers`,
//! V2 `layer`) are read the same way after one small normalisation.

mod caffemodel;
pub mod layers;
pub mod text;

use std::collections::HashMap;
use std::path::Path;

pub use caffemodel::{load_caffemodel, load_caffemodel_bytes};

use self::layers::{canonical_type, is_data_layer, layer_op, Block, FieldError, Params};
use self::text::{Field, Message};
use super::{CaffePhase, LoadError, LoadOptions};
use crate::graph::build::{GraphBuilder, NodeSpec};
use crate::graph::{checked_product, AttrValue, DType, Graph, ModelFormat, Shape, TensorId, Unknown};
use crate::ops::{Op, PoolMethod};

/// Prototxts larger than this are refused before reading (the largest real
/// one, Inception-ResNet-v2, is 236 KB).
pub const MAX_PROTOTXT_BYTES: u64 = 16 << 20;

pub fn load_prototxt(path: &Path, options: &LoadOptions) -> Result<Graph, LoadError> {
    let opened = crate::load::input::open_file(path)?;
    let bytes = opened.read_all(MAX_PROTOTXT_BYTES, "a prototxt")?;
    load_prototxt_bytes(path, &bytes, options)
}

/// Loads a prototxt held in memory; `path` names it in messages (and its stem
/// names the net when the file does not).
pub fn load_prototxt_bytes(path: &Path, bytes: &[u8], options: &LoadOptions) -> Result<Graph, LoadError> {
    let tree = text::parse(bytes).map_err(|e| LoadError::Syntax {
        path: path.to_path_buf(),
        line: e.line,
        column: e.column,
        message: e.message,
    })?;
    let fallback = path.file_stem().and_then(|s| s.to_str()).unwrap_or("net");
    let mut graph = NetBuilder::new(path, options).build(&tree, fallback)?;
    if let Some(weights) = &options.weights {
        check_weights(&mut graph, weights)?;
    }
    Ok(graph)
}

/// Compare every layer's weight blobs in a .caffemodel with the prototxt's;
/// each disagreement becomes a warning naming the layer and both shapes.
fn check_weights(graph: &mut Graph, weights: &Path) -> Result<(), LoadError> {
    let stored = caffemodel::caffemodel_blob_shapes(weights)?;
    let mut problems = Vec::new();
    // By name, so that nets of many layers are checked in linear time (the first node of a name, as before).
    let mut node_of: HashMap<&str, usize> = HashMap::with_capacity(graph.nodes.len());
    for (i, n) in graph.nodes.iter().enumerate() {
        node_of.entry(n.name.as_str()).or_insert(i);
    }
    let stored_names: std::collections::HashSet<&str> = stored.iter().map(|(l, _)| l.as_str()).collect();
    for (layer, blobs) in &stored {
        let Some(node) = node_of.get(layer.as_str()).and_then(|&i| graph.nodes.get(i)) else {
            if !blobs.is_empty() {
                problems.push(format!("weights: layer \"{layer}\" has {} blob(s) in {} but is not in the prototxt", blobs.len(), weights.display()));
            }
            continue;
        };
        let expected: Vec<Vec<u64>> =
            node.params.iter().map(|&p| graph.tensor(p).shape.as_ref().map(|s| s.0.clone()).unwrap_or_default()).collect();
        // Old caffemodels store 4-D (num, channels, height, width) blobs: compare element counts then.
        let same = |a: &Vec<u64>, b: &Vec<u64>| {
            a == b || (checked_product(a).is_some_and(|n| Some(n) == checked_product(b)) && (a.len() == 4 || b.len() == 4))
        };
        if expected.len() != blobs.len() || !expected.iter().zip(blobs).all(|(a, b)| same(a, b)) {
            problems.push(format!(
                "weights: layer \"{layer}\": the prototxt implies blobs {expected:?}, {} holds {blobs:?}",
                weights.display()
            ));
        }
    }
    for node in &graph.nodes {
        if !node.params.is_empty() && !stored_names.contains(node.name.as_str()) {
            problems.push(format!("weights: layer \"{}\" has no blobs in {}", node.name, weights.display()));
        }
    }
    graph.warnings.extend(problems);
    Ok(())
}

/// One layer, whatever syntax declared it.
struct LayerRecord<'a> {
    name: String,
    spelled_type: String,
    bottoms: Vec<String>,
    tops: Vec<String>,
    /// Sharing keys of the weight blobs, in order (`param { name }`, V1 `param: "…"`).
    param_names: Vec<Option<String>>,
    /// Where the layer's parameters live (V0: the inner `layer`).
    params: &'a Message,
    /// The outer message (include/exclude rules live here).
    outer: &'a Message,
    v0: bool,
    line: usize,
}

fn records<'a>(net: &'a Message, path: &Path) -> Result<Vec<LayerRecord<'a>>, LoadError> {
    let v2 = net.all("layer").next();
    let v1 = net.all("layers").next();
    if let (Some(_), Some(f)) = (v2, v1) {
        return Err(LoadError::Syntax {
            path: path.to_path_buf(),
            line: f.line,
            column: f.column,
            message: "the file mixes `layer` (V2) and `layers` (V1) blocks; Caffe refuses such a net".into(),
        });
    }
    let mut out = Vec::new();
    for field in net.fields.iter().filter(|f| f.name == "layer" || f.name == "layers") {
        let Some(outer) = field.as_message() else {
            return Err(LoadError::Syntax {
                path: path.to_path_buf(),
                line: field.line,
                column: field.column,
                message: format!("expected a block after \"{}\"", field.name),
            });
        };
        // V0: `layers { layer { name type … } bottom top }`.
        let (inner, v0) = match outer.message("layer") {
            Some(inner) if field.name == "layers" => (inner, true),
            _ => (outer, false),
        };
        let param_names = inner
            .all("param")
            .chain(if v0 { outer.all("param") } else { inner.all("__none__") })
            .map(|f| match &f.value {
                text::Value::Message(m) => m.text("name").map(str::to_string),
                text::Value::Scalar { text, .. } => Some(text.clone()),
            })
            .collect();
        let strings = |m: &Message, n: &str| m.texts(n).map(str::to_string).collect::<Vec<_>>();
        out.push(LayerRecord {
            name: inner.text("name").unwrap_or_default().to_string(),
            spelled_type: inner.text("type").unwrap_or_default().to_string(),
            bottoms: strings(outer, "bottom"),
            tops: strings(outer, "top"),
            param_names,
            params: inner,
            outer,
            v0,
            line: field.line,
        });
    }
    Ok(out)
}

/// The net state that include/exclude rules test.
struct NetState {
    phase: &'static str,
    level: i64,
    /// A set: a state of many stages against many rules stays linear.
    stages: std::collections::HashSet<String>,
}

fn rule_matches(rule: &Message, state: &NetState) -> bool {
    if let Some(phase) = rule.text("phase") {
        let phase = match phase {
            "0" => "TRAIN",
            "1" => "TEST",
            p => p,
        };
        if phase != state.phase {
            return false;
        }
    }
    let level = |n: &str| rule.text(n).and_then(|t| t.parse::<i64>().ok());
    if level("min_level").is_some_and(|l| state.level < l) || level("max_level").is_some_and(|l| state.level > l) {
        return false;
    }
    rule.texts("stage").all(|s| state.stages.contains(s)) && rule.texts("not_stage").all(|s| !state.stages.contains(s))
}

/// Caffe's rule: with include rules, keep if any matches; else drop if any exclude matches.
fn layer_included(outer: &Message, state: &NetState) -> bool {
    let includes: Vec<&Message> = outer.messages("include").collect();
    if !includes.is_empty() {
        return includes.iter().any(|r| rule_matches(r, state));
    }
    !outer.messages("exclude").any(|r| rule_matches(r, state))
}

struct NetBuilder<'p> {
    path: &'p Path,
    options: &'p LoadOptions,
    builder: GraphBuilder,
    /// Blob name → the tensor that currently holds it.
    blobs: HashMap<String, TensorId>,
    /// Inputs whose shape the user set with --input, by name.
    used_overrides: Vec<bool>,
    /// Blobs only layers of another phase or stage produce.
    excluded_tops: std::collections::HashSet<String>,
}

impl<'p> NetBuilder<'p> {
    fn new(path: &'p Path, options: &'p LoadOptions) -> Self {
        NetBuilder {
            path,
            options,
            builder: GraphBuilder::new("", ModelFormat::Caffe, DType::F32),
            blobs: HashMap::new(),
            used_overrides: vec![false; options.inputs.len()],
            excluded_tops: Default::default(),
        }
    }

    fn model_error(&self, layer: &LayerRecord<'_>, message: impl Into<String>) -> LoadError {
        LoadError::Model { path: self.path.to_path_buf(), location: layer_location(layer), message: message.into() }
    }

    fn field_error(&self, layer: &LayerRecord<'_>, e: FieldError) -> LoadError {
        if e.line == 0 {
            self.model_error(layer, e.message)
        } else {
            LoadError::Syntax {
                path: self.path.to_path_buf(),
                line: e.line,
                column: e.column,
                message: format!("{} (in {})", e.message, layer_location(layer)),
            }
        }
    }

    fn build(mut self, net: &Message, fallback_name: &str) -> Result<Graph, LoadError> {
        let name = net.text("name").filter(|n| !n.is_empty()).unwrap_or(fallback_name).to_string();
        self.builder = GraphBuilder::new(name, ModelFormat::Caffe, DType::F32);
        self.builder.bind_dims(self.options.dims.iter().map(|b| (b.symbol.clone(), b.value)));

        let state_msg = net.message("state");
        let file_phase = state_msg.and_then(|s| s.text("phase"));
        let state = NetState {
            phase: match (self.options.phase, file_phase) {
                (Some(CaffePhase::Train), _) => "TRAIN",
                (Some(CaffePhase::Test), _) => "TEST",
                (None, Some("TRAIN" | "0")) => "TRAIN",
                (None, _) => "TEST",
            },
            level: state_msg.and_then(|s| s.text("level")).and_then(|l| l.parse().ok()).unwrap_or(0),
            stages: state_msg.map(|s| s.texts("stage").map(str::to_string).collect()).unwrap_or_default(),
        };

        self.declare_net_inputs(net)?;
        let layers = records(net, self.path)?;
        let (included, excluded): (Vec<&LayerRecord<'_>>, Vec<&LayerRecord<'_>>) =
            layers.iter().partition(|l| layer_included(l.outer, &state));
        self.excluded_tops = excluded.iter().flat_map(|l| l.tops.iter().cloned()).collect();
        for layer in included {
            self.add_layer(layer)?;
        }
        for (i, used) in self.used_overrides.iter().enumerate() {
            if !used && !self.options.lenient_inputs {
                let spec = &self.options.inputs[i];
                let inputs: Vec<String> =
                    self.builder.graph().inputs.iter().map(|&t| self.builder.graph().tensor(t).name.clone()).collect();
                return Err(LoadError::Usage {
                    message: format!(
                        "--input {}: the model has no input of that name (its inputs: {})",
                        spec.name.as_deref().unwrap_or("?"),
                        if inputs.is_empty() { "none".to_string() } else { inputs.join(", ") }
                    ),
                });
            }
        }
        for b in &self.options.dims {
            if !self.builder.used_bindings().contains(&b.symbol) {
                self.builder.warn(format!(
                    "--dim {}={}: no count set at run time is named \"{}\" (a Caffe net's free dimensions are the run-time counts it reports, e.g. R)",
                    b.symbol, b.value, b.symbol
                ));
            }
        }
        Ok(self.builder.finish())
    }

    /// `input` + `input_dim` (four per input) or `input_shape` (one per input).
    fn declare_net_inputs(&mut self, net: &Message) -> Result<(), LoadError> {
        let names: Vec<&Field> = net.all("input").collect();
        if names.is_empty() {
            return Ok(());
        }
        let shapes: Vec<&Message> = net.messages("input_shape").collect();
        let dims = Block { msg: net }.u64s("input_dim").map_err(|e| LoadError::Syntax {
            path: self.path.to_path_buf(),
            line: e.line,
            column: e.column,
            message: e.message,
        })?;
        for (k, field) in names.iter().enumerate() {
            let name = field.as_text().unwrap_or_default();
            let stated = if let Some(shape) = shapes.get(k) {
                Block { msg: shape }.u64s("dim").map_err(|e| LoadError::Syntax {
                    path: self.path.to_path_buf(),
                    line: e.line,
                    column: e.column,
                    message: e.message,
                })?
            } else {
                dims.get(4 * k..4 * k + 4).map(<[u64]>::to_vec).unwrap_or_default()
            };
            let shape = if stated.is_empty() { Err(Unknown::Unstated) } else { Ok(Shape(stated)) };
            self.add_input(name, shape.map_or_else(DataTop::Unsized, DataTop::Sized), None)?;
        }
        Ok(())
    }

    /// Declare an input, applying --input and --batch. `source` is the data
    /// layer whose top it is (its name and type), for the messages.
    fn add_input(&mut self, name: &str, stated: DataTop, source: Option<(&str, &str)>) -> Result<(), LoadError> {
        let first_input = self.builder.graph().inputs.is_empty();
        let override_idx = self.options.inputs.iter().enumerate().position(|(i, spec)| {
            !self.used_overrides[i]
                && match &spec.name {
                    Some(n) => n == name,
                    // An unnamed --input sets the first input the net declares.
                    None => first_input,
                }
        });
        let mut shape = match (override_idx, stated) {
            (Some(i), stated) => {
                self.used_overrides[i] = true;
                let given = Shape(self.options.inputs[i].dims.clone());
                if let Some((layer, kind)) = source {
                    let file = match &stated {
                        DataTop::Sized(s) => format!("the file states {s}"),
                        DataTop::RunTime { .. } => "sized at run time".to_string(),
                        DataTop::Unsized(_) => "the file does not size it".to_string(),
                    };
                    self.builder.note(format!("--input {name}={}: sets top \"{name}\" of layer \"{layer}\" ({kind}; {file})", dims_text(&given)));
                }
                Ok(given)
            }
            (None, DataTop::Sized(s)) => Ok(s),
            (None, DataTop::Unsized(why)) => Err(why),
            (None, DataTop::RunTime { shape, axis, symbol }) => {
                let id = self.builder.add_run_time_input(name, shape, axis, symbol, source.map_or(name, |(layer, _)| layer));
                self.blobs.insert(name.to_string(), id);
                return Ok(());
            }
        };
        if let (Some(batch), Ok(s)) = (self.options.batch, shape.as_mut()) {
            if let Some(first) = s.0.first_mut() {
                let stated = std::mem::replace(first, batch);
                if override_idx.is_none() {
                    self.builder.note_batch_override(crate::graph::BatchOverride {
                        input: name.to_string(),
                        stated: Some(stated),
                        used: batch,
                    });
                }
            }
        }
        if let Ok(s) = &shape {
            if s.elems().and_then(|e| e.checked_mul(4)).is_none() {
                return Err(LoadError::Model {
                    path: self.path.to_path_buf(),
                    location: format!("input \"{name}\""),
                    message: format!("shape {s} overflows 64 bits of bytes"),
                });
            }
            if s.0.contains(&0) {
                return Err(LoadError::Model {
                    path: self.path.to_path_buf(),
                    location: format!("input \"{name}\""),
                    message: format!("shape {s} has a zero dimension"),
                });
            }
        }
        if shape.is_err() {
            // Say which layer when nnmem does not know its type (snapshots keep the
            // message of known data layers).
            let of = source
                .filter(|(_, kind)| !is_data_layer(canonical_type(kind)) && !kind.starts_with("Python"))
                .map(|(layer, kind)| format!(" (a top of layer \"{layer}\", type {kind}, which nnmem reads as a data source)"))
                .unwrap_or_default();
            self.builder.warn(format!(
                "input \"{name}\": the file does not state its shape{of}; give it with --input {name}=NxCxHxW"
            ));
        }
        let id = self.builder.add_input(name, shape);
        self.blobs.insert(name.to_string(), id);
        Ok(())
    }

    fn add_layer(&mut self, layer: &LayerRecord<'_>) -> Result<(), LoadError> {
        let canonical = canonical_type(&layer.spelled_type).to_string();
        if layer.spelled_type.is_empty() {
            return Err(self.model_error(layer, "the layer has no type"));
        }
        let params = Params::new(layer.params, layer.v0);
        // A layer with no bottoms is a source of the net: a data layer, a
        // Python data layer, or a type nnmem does not know (its tops are
        // inputs that --input sizes). Not BVLC's Parameter, which stores a weight.
        let unknown_source = layer.bottoms.is_empty()
            && (canonical == "Python"
                || canonical != "Parameter" && matches!(layer_op(&canonical, &params, 0, layer.tops.len()), Ok(Op::Unknown(_))));
        if is_data_layer(&canonical) || unknown_source {
            let tops = data_layer_shapes(&canonical, &params, layer.tops.len()).map_err(|e| self.field_error(layer, e))?;
            let kind = if canonical == "Python" {
                format!("Python {}", params.block("python_param").msg.text("layer").unwrap_or_default())
            } else {
                layer.spelled_type.clone()
            };
            let name = if layer.name.is_empty() { layer.tops.first().cloned().unwrap_or_default() } else { layer.name.clone() };
            for (top, shape) in layer.tops.iter().zip(tops) {
                self.add_input(top, shape, Some((&name, &kind)))?;
            }
            return Ok(());
        }

        let mut inputs = Vec::with_capacity(layer.bottoms.len());
        for bottom in &layer.bottoms {
            // A blob no included layer produces, that the user sized with
            // --input (a data layer of another stage), becomes an input.
            let user_sized = self.options.inputs.iter().enumerate().any(|(i, s)| {
                !self.used_overrides[i] && s.name.as_deref() == Some(bottom.as_str())
            });
            if !self.blobs.contains_key(bottom) && user_sized {
                self.add_input(bottom, DataTop::Unsized(Unknown::Unstated), None)?;
            } else if !self.blobs.contains_key(bottom) && self.excluded_tops.contains(bottom) {
                // Caffe would stop here; a report is more useful: say which
                // blob only another phase or stage produces, and go on.
                self.builder.warn(format!(
                    "blob \"{bottom}\" is produced only by layers of another phase or stage (see --phase); treating it as an input"
                ));
                self.add_input(bottom, DataTop::Unsized(Unknown::Unstated), None)?;
            }
            match self.blobs.get(bottom) {
                Some(&id) => inputs.push(id),
                None => {
                    return Err(self.model_error(
                        layer,
                        format!("bottom \"{bottom}\" is not produced by any earlier layer or input"),
                    ))
                }
            }
        }
        let op = match canonical.as_str() {
            "UNPOOLING" | "Unpooling" => layers::unpooling_op(&params, inputs.len(), self.paired_pool_input(&inputs)),
            _ => layer_op(&canonical, &params, inputs.len(), layer.tops.len()),
        }
        .map_err(|e| self.field_error(layer, e))?;
        let in_place = !layer.tops.is_empty() && layer.bottoms.first() == layer.tops.first();
        let name = if layer.name.is_empty() {
            layer.tops.first().cloned().unwrap_or_else(|| format!("{canonical}@{}", layer.line))
        } else {
            layer.name.clone()
        };
        let spec = NodeSpec {
            name,
            source_type: canonical.clone(),
            op,
            inputs,
            output_names: layer.tops.clone(),
            in_place,
            param_names: layer.param_names.clone(),
            attrs: attrs_of(layer.params, layer.v0),
        };
        let outputs = self.builder.add_node(spec).map_err(|e| self.model_error(layer, e.message))?;
        for (top, id) in layer.tops.iter().zip(outputs) {
            self.blobs.insert(top.clone(), id);
        }
        Ok(())
    }
}

impl NetBuilder<'_> {
    /// The height and width of the blob read by the max pooling that wrote
    /// an unpooling's mask (its second bottom), when known.
    fn paired_pool_input(&self, inputs: &[TensorId]) -> Option<(u64, u64)> {
        let g = self.builder.graph();
        let producer = g.tensor(*inputs.get(1)?).producer?;
        let node = g.node(producer);
        if !matches!(&node.op, Op::Pool(p) if p.method == PoolMethod::Max) {
            return None;
        }
        match g.tensor(*node.inputs.first()?).shape.as_ref()?.dims() {
            [.., h, w] => Some((*h, *w)),
            _ => None,
        }
    }
}

fn layer_location(layer: &LayerRecord<'_>) -> String {
    format!("layer \"{}\" (type {}, line {})", layer.name, layer.spelled_type, layer.line)
}

/// What a data layer's file says about one of its tops.
enum DataTop {
    Sized(Shape),
    /// Not sized by the file (`Unstated`).
    Unsized(Unknown),
    /// Known except along `axis`, a count set per batch at run time.
    RunTime { shape: Shape, axis: usize, symbol: &'static str },
}

fn dims_text(s: &Shape) -> String {
    s.dims().iter().map(|d| d.to_string()).collect::<Vec<_>>().join("x")
}

/// Shapes of a data layer's tops from what the file states; `Unstated` where it does not.
fn data_layer_shapes(canonical: &str, p: &Params<'_>, n_tops: usize) -> Result<Vec<DataTop>, FieldError> {
    let mut out: Vec<Result<Shape, Unknown>> = data_layer_sizes(canonical, p, n_tops)?;
    let mut tops: Vec<DataTop> = out.drain(..).map(|s| s.map_or_else(DataTop::Unsized, DataTop::Sized)).collect();
    // SSD's annotated data: every box of the batch, one row each of [item,
    // label, instance, xmin, ymin, xmax, ymax, difficult] (annotated_data_layer.cpp:78-96).
    if canonical == "AnnotatedData" && n_tops > 1 {
        tops[1] = DataTop::RunTime { shape: Shape(vec![1, 1, 1, 8]), axis: 2, symbol: "G" };
    }
    Ok(tops)
}

fn data_layer_sizes(canonical: &str, p: &Params<'_>, n_tops: usize) -> Result<Vec<Result<Shape, Unknown>>, FieldError> {
    let shape_of = |m: &Message| -> Result<Shape, FieldError> { Ok(Shape(Block { msg: m }.u64s("dim")?)) };
    let mut out: Vec<Result<Shape, Unknown>> = vec![Err(Unknown::Unstated); n_tops];
    let crop = p.block("transform_param").opt_u64("crop_size")?;
    let label = |batch: Option<u64>| batch.map(|n| Shape(vec![n])).ok_or(Unknown::Unstated);
    match canonical {
        "Input" => {
            let shapes: Vec<&Message> = p.block("input_param").msg.messages("shape").collect();
            for (i, slot) in out.iter_mut().enumerate() {
                if let Some(s) = shapes.get(i).or(if shapes.len() == 1 { shapes.first() } else { None }) {
                    *slot = Ok(shape_of(s)?);
                }
            }
        }
        "DummyData" => {
            let b = p.block("dummy_data_param");
            let shapes: Vec<&Message> = b.msg.messages("shape").collect();
            let legacy = [b.u64s("num")?, b.u64s("channels")?, b.u64s("height")?, b.u64s("width")?];
            for (i, slot) in out.iter_mut().enumerate() {
                if let Some(s) = shapes.get(i).or(if shapes.len() == 1 { shapes.first() } else { None }) {
                    *slot = Ok(shape_of(s)?);
                } else if legacy.iter().all(|v| !v.is_empty()) {
                    let pick = |v: &Vec<u64>| v.get(i).or(v.first()).copied().unwrap_or(1);
                    *slot = Ok(Shape(legacy.iter().map(pick).collect()));
                }
            }
        }
        "MemoryData" => {
            let b = p.block("memory_data_param");
            let n = b.opt_u64("batch_size")?;
            if let (Some(n), Some(c), Some(h), Some(w)) = (n, b.opt_u64("channels")?, b.opt_u64("height")?, b.opt_u64("width")?) {
                out[0] = Ok(Shape(vec![n, c, h, w]));
            }
            if n_tops > 1 {
                out[1] = label(n);
            }
        }
        "ImageData" | "DenseImageData" | "ImageLabelmapData" => {
            let b = p.block(if canonical == "DenseImageData" { "dense_image_data_param" } else { "image_data_param" });
            let n = b.opt_u64("batch_size")?;
            let c = if b.bool_or("is_color", true)? { 3 } else { 1 };
            let hw = match (crop, b.opt_u64("new_height")?, b.opt_u64("new_width")?) {
                (Some(cs), _, _) if cs > 0 => Some((cs, cs)),
                (_, Some(h), Some(w)) if h > 0 && w > 0 => Some((h, w)),
                _ => None,
            };
            if let (Some(n), Some((h, w))) = (n, hw) {
                out[0] = Ok(Shape(vec![n, c, h, w]));
                if n_tops > 1 {
                    // Segmentation labels are per pixel; classification labels per image.
                    out[1] = Ok(if canonical == "ImageData" { Shape(vec![n]) } else { Shape(vec![n, 1, h, w]) });
                }
            } else if n_tops > 1 && canonical == "ImageData" {
                out[1] = label(n);
            }
        }
        "WindowData" => {
            let b = p.block("window_data_param");
            let n = b.opt_u64("batch_size")?;
            let crop = crop.or(b.opt_u64("crop_size")?);
            if let (Some(n), Some(cs)) = (n, crop) {
                out[0] = Ok(Shape(vec![n, 3, cs, cs]));
            }
            if n_tops > 1 {
                out[1] = label(n);
            }
        }
        // C3D v1.1: (batch, 3, new_length, crop, crop), crop from transform_param
        // or new_height × new_width; label (batch) or (batch, num_of_labels).
        "VideoData" => {
            let b = p.block("video_data_param");
            let n = b.u64_or("batch_size", 1)?;
            let hw = match (crop, b.u64_or("new_height", 0)?, b.u64_or("new_width", 0)?) {
                (Some(cs), _, _) if cs > 0 => Some((cs, cs)),
                (_, h, w) if h > 0 && w > 0 => Some((h, w)),
                _ => None,
            };
            if let (Some(l), Some((h, w))) = (b.opt_u64("new_length")?.filter(|&l| l > 0), hw) {
                out[0] = Ok(Shape(vec![n, 3, l, h, w]));
            }
            if n_tops > 1 {
                out[1] = Ok(if b.bool_or("use_multiple_label", false)? {
                    Shape(vec![n, b.u64_or("num_of_labels", 1)?])
                } else {
                    Shape(vec![n])
                });
            }
        }
        // C3D v1.0 reads image_data_param: crop_size there, label (batch, 1, 1, 1, 1).
        "VIDEO_DATA" => {
            let b = p.block("image_data_param");
            let n = b.opt_u64("batch_size")?;
            let hw = match (b.opt_u64("crop_size")?.or(crop), b.u64_or("new_height", 0)?, b.u64_or("new_width", 0)?) {
                (Some(cs), _, _) if cs > 0 => Some((cs, cs)),
                (_, h, w) if h > 0 && w > 0 => Some((h, w)),
                _ => None,
            };
            if let (Some(n), Some(l), Some((h, w))) = (n, b.opt_u64("new_length")?.filter(|&l| l > 0), hw) {
                out[0] = Ok(Shape(vec![n, 3, l, h, w]));
            }
            if let (Some(n), true) = (n, n_tops > 1) {
                out[1] = Ok(Shape(vec![n, 1, 1, 1, 1]));
            }
        }
        "Data" | "AnnotatedData" => {
            // Channels and image size live in the database: only the label is known.
            let n = p.block("data_param").opt_u64("batch_size")?;
            if n_tops > 1 {
                out[1] = label(n);
            }
        }
        _ => {}
    }
    Ok(out)
}

/// The scalar settings of the layer's `*_param` blocks, for the report.
fn attrs_of(layer: &Message, v0: bool) -> Vec<(String, AttrValue)> {
    let mut attrs: Vec<(String, AttrValue)> = Vec::new();
    let mut push = |name: &str, text: &str| {
        let value = if let Ok(i) = text.parse::<i64>() {
            AttrValue::Int(i)
        } else if let Ok(f) = text.parse::<f64>() {
            AttrValue::Float(f)
        } else {
            AttrValue::Str(text.to_string())
        };
        match attrs.iter_mut().find(|(n, _)| n == name) {
            Some((_, existing)) => {
                let merged = match (std::mem::replace(existing, AttrValue::Int(0)), value) {
                    (AttrValue::Int(a), AttrValue::Int(b)) => AttrValue::Ints(vec![a, b]),
                    (AttrValue::Ints(mut v), AttrValue::Int(b)) => {
                        v.push(b);
                        AttrValue::Ints(v)
                    }
                    (AttrValue::Float(a), AttrValue::Float(b)) => AttrValue::Floats(vec![a, b]),
                    (AttrValue::Floats(mut v), AttrValue::Float(b)) => {
                        v.push(b);
                        AttrValue::Floats(v)
                    }
                    (AttrValue::Strs(mut v), AttrValue::Str(b)) => {
                        v.push(b);
                        AttrValue::Strs(v)
                    }
                    (AttrValue::Str(a), AttrValue::Str(b)) => AttrValue::Strs(vec![a, b]),
                    (_, b) => b,
                };
                *existing = merged;
            }
            None => attrs.push((name.to_string(), value)),
        }
    };
    let skip = ["name", "type", "bottom", "top", "blobs_lr", "weight_decay"];
    if v0 {
        for f in &layer.fields {
            if let (Some(t), false) = (f.as_text(), skip.contains(&f.name.as_str())) {
                push(&f.name, t);
            }
        }
        return attrs;
    }
    for block in layer.fields.iter().filter(|f| f.name.ends_with("_param") && f.name != "transform_param") {
        if let Some(m) = block.as_message() {
            for f in &m.fields {
                match (&f.value, f.name.as_str()) {
                    (text::Value::Scalar { text, .. }, n) if n != "engine" => push(n, text),
                    (text::Value::Message(inner), "shape") => {
                        for d in inner.texts("dim") {
                            push("shape", d);
                        }
                    }
                    _ => {}
                }
            }
        }
    }
    attrs
}
