//! Analyses over a loaded model: the one entry point every subcommand uses
//! (`run`: load with the scenario's defaults, then the memory pass), and the
//! searches and comparisons built on it (`fit`, `sweep`, `diff`, `explain`,
//! `audit`). Each returns plain values; `report` renders them and `cli` only
//! parses flags and prints.

pub mod audit;
pub mod diff;
pub mod explain;
pub mod fit;
pub mod sweep;

use std::path::Path;

use crate::graph::Graph;
use crate::load::{self, LoadError, LoadOptions};
use crate::memory::{self, MemoryReport, MemorySettings, Scenario};

/// A model loaded and analysed as the user asked.
#[derive(Clone, Debug)]
pub struct Analysed {
    /// The model with every shape the loader recovered.
    pub graph: Graph,
    /// The memory pass's figures for every scenario asked for.
    pub memory: MemoryReport,
    /// Choices nnmem made for the user that change the figures (printed as
    /// notes, kept in JSON): e.g. the batch style transfer uses.
    pub notes: Vec<String>,
}

impl Analysed {
    /// Whether every computed scenario and the parameter totals are complete.
    pub fn complete(&self) -> bool {
        self.graph.params_complete() && self.memory.scenarios.iter().all(|s| s.completeness.is_complete())
    }
}

/// The load options a scenario implies: style transfer optimises one image,
/// so its batch is 1 unless `--batch` or `--input` says otherwise.
pub fn scenario_options(options: &LoadOptions, settings: &MemorySettings) -> LoadOptions {
    let mut o = options.clone();
    if settings.scenarios.contains(&Scenario::StyleTransfer) && o.batch.is_none() && o.inputs.is_empty() {
        o.batch = Some(1);
    }
    o
}

/// Loads `path` with the scenario's defaults and runs the memory pass. The
/// decode scenario's peak growth per token comes from a second evaluation one
/// token of past longer (`decode_growth`).
pub fn run(path: &Path, options: &LoadOptions, settings: &MemorySettings) -> Result<Analysed, LoadError> {
    let mut a = run_once(path, options, settings)?;
    if settings.scenarios.contains(&Scenario::Decode) {
        decode_growth(path, options, settings, &mut a);
    }
    Ok(a)
}

/// `run` without the decode scenario's second evaluation: the peaks alone
/// (what `fit` and `sweep` probe).
pub fn run_peaks(path: &Path, options: &LoadOptions, settings: &MemorySettings) -> Result<Analysed, LoadError> {
    run_once(path, options, settings)
}

fn run_once(path: &Path, options: &LoadOptions, settings: &MemorySettings) -> Result<Analysed, LoadError> {
    let effective = scenario_options(options, settings);
    let graph = load::load(path, &effective)?;
    if settings.scenarios.contains(&Scenario::StyleTransfer) {
        memory::resolve_loss_layers(&graph, &settings.loss_layers).map_err(|message| LoadError::Usage { message })?;
    }
    let mut decode_left_out = None;
    if settings.scenarios.contains(&Scenario::Decode) && graph.kv_cache.is_none() {
        if !settings.decode_if_cached {
            return Err(LoadError::Format {
                path: path.to_path_buf(),
                message: "--scenario decode needs a decoder exported with a KV cache (past keys and values as graph inputs that a \
                          Concat joins with the step's own into graph outputs); this model has none: use --scenario inference"
                    .into(),
            });
        }
        decode_left_out = Some(MemorySettings {
            scenarios: settings.scenarios.iter().copied().filter(|&s| s != Scenario::Decode).collect(),
            ..settings.clone()
        });
    }
    let settings = decode_left_out.as_ref().unwrap_or(settings);
    // A figure that could reach 2^64 is refused here, never printed saturated.
    memory::check_fits(&graph, settings).map_err(|message| LoadError::Format { path: path.to_path_buf(), message })?;
    let memory = memory::analyse(&graph, settings);
    let mut notes = graph.notes.clone();
    if effective.batch != options.batch {
        for o in graph.batch_overrides.iter().filter(|o| o.stated != Some(o.used)) {
            let stated = o.stated.map_or_else(|| "leaves it free".to_string(), |b| format!("says {b}"));
            notes.push(format!(
                "style transfer optimises one image: input \"{}\" has batch {} (the file {stated}); give --batch or --input to change it",
                o.input, o.used
            ));
        }
    }
    Ok(Analysed { graph, memory, notes })
}

/// The load options that lengthen every KV-cache input of `graph` (loaded
/// with `options`) by one token: an `--input` given for it grows on its cache
/// axis; else the symbol the file names that axis with is bound one higher
/// (every input it sizes follows, as the file relates them); else (a length
/// the file fixes) the input gets an `--input` of its shape one longer.
pub fn one_token_longer(graph: &Graph, options: &LoadOptions) -> Option<LoadOptions> {
    let cache = graph.kv_cache.as_ref()?;
    let mut o = options.clone();
    for i in &cache.inputs {
        let t = graph.tensor(i.tensor);
        let dims = t.shape.as_ref()?.dims().to_vec();
        let next = dims.get(i.axis)?.checked_add(1)?;
        if let Some(spec) = o.inputs.iter_mut().find(|s| s.name.as_deref() == Some(t.name.as_str())) {
            *spec.dims.get_mut(i.axis)? = next;
            continue;
        }
        match &i.symbol {
            Some(sym) => {
                o.dims.retain(|b| &b.symbol != sym);
                o.dims.push(load::DimBinding { symbol: sym.clone(), value: next });
            }
            None => {
                let mut d = dims;
                d[i.axis] = next;
                o.inputs.push(load::InputSpec { name: Some(t.name.clone()), dims: d });
            }
        }
    }
    Some(o)
}

/// The decode scenario's peak growth per token of past length: the step
/// evaluated again one token longer (`one_token_longer`), its peak minus this
/// one. Left out, with a warning, when that evaluation fails or is incomplete.
fn decode_growth(path: &Path, options: &LoadOptions, settings: &MemorySettings, a: &mut Analysed) {
    let Some(k) = a.memory.scenarios.iter().position(|s| s.scenario == Scenario::Decode) else { return };
    let Some(cache) = a.graph.kv_cache.as_ref().and_then(|c| c.size(&a.graph)) else { return };
    if !a.memory.scenarios[k].completeness.is_complete() {
        return;
    }
    let step = MemorySettings { scenarios: vec![Scenario::Inference], ..settings.clone() };
    let next = one_token_longer(&a.graph, options)
        .ok_or_else(|| "a cache input's shape cannot be lengthened".to_string())
        .and_then(|o| run_once(path, &o, &step).map_err(|e| e.to_string()))
        .and_then(|b| {
            let grown = b.graph.kv_cache.as_ref().and_then(|c| c.size(&b.graph)).map(|c| c.past);
            match b.memory.scenarios.first() {
                Some(r) if r.completeness.is_complete() && grown == Some(cache.past + 1) => Ok(r.peak_bytes),
                _ => Err(format!("at past length {} the figures are incomplete", cache.past + 1)),
            }
        });
    let sc = &mut a.memory.scenarios[k];
    match next {
        Ok(next_peak) => {
            if let Some(d) = sc.decode.as_mut() {
                d.peak_growth =
                    Some(memory::PeakGrowth { bytes_per_token: next_peak.saturating_sub(sc.peak_bytes), next_peak_bytes: next_peak });
            }
        }
        Err(why) => a.memory.warnings.push(format!(
            "decode: the step one token longer (past length {}) could not be evaluated, so the peak's growth per token is left out: {why}",
            cache.past + 1
        )),
    }
}

/// The flags that would bind what the graph leaves free: `--dim NAME=N` per
/// free symbol, `--input NAME=DIMS` per input the file does not size.
pub fn missing_bindings(graph: &Graph) -> Vec<String> {
    let mut flags: Vec<String> = graph.free_symbols.iter().map(|s| format!("--dim {}=N", s.name)).collect();
    for t in graph.unsized_inputs() {
        flags.push(format!("--input {}=DIMS", graph.tensor(t).name));
    }
    flags
}

/// A count set at run time and the storage that grows with it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunTimeCount {
    /// The count's name (a layer's top, or the symbol given to it).
    pub name: String,
    /// The layer that sets it.
    pub set_by: String,
    /// Bytes of the activations and inputs whose size is k·count, per unit
    /// of the count (in-place outputs counted once, as in `activation_bytes`).
    pub bytes_per_unit: u64,
    /// How many such tensors.
    pub tensors: usize,
}

/// Elements per unit of `symbol` of a shape formula whose dimensions are
/// numbers except one that is `symbol` or `k*symbol`; `None` otherwise.
fn elems_per_unit(dims: &[String], symbol: &str) -> Option<u64> {
    let mut per = 1u64;
    let mut seen = false;
    for d in dims {
        if let Ok(v) = d.parse::<u64>() {
            per = per.checked_mul(v)?;
            continue;
        }
        let k = match d.strip_suffix(symbol) {
            Some("") => 1,
            Some(coef) => coef.strip_suffix('*')?.parse::<u64>().ok()?,
            None => return None,
        };
        if std::mem::replace(&mut seen, true) {
            return None;
        }
        per = per.checked_mul(k)?;
    }
    seen.then_some(per)
}

/// Every count a layer sets at run time (a free symbol with `set_by`) and the
/// bytes per unit of it: the memory the report can give "per proposal" until
/// `--dim` binds the count.
pub fn run_time_counts(graph: &Graph) -> Vec<RunTimeCount> {
    let mut in_place_out = vec![false; graph.tensors.len()];
    for n in graph.nodes.iter().filter(|n| n.in_place) {
        if let Some(&o) = n.outputs.first() {
            in_place_out[o.0] = true;
        }
    }
    graph
        .free_symbols
        .iter()
        .filter_map(|s| {
            let set_by = s.set_by.clone()?;
            let (mut bytes, mut tensors) = (0u64, 0usize);
            for (i, t) in graph.tensors.iter().enumerate() {
                let data = matches!(t.kind, crate::graph::TensorKind::Activation | crate::graph::TensorKind::Input);
                if let (true, false, Some(crate::graph::Unknown::Symbolic(dims))) = (data, in_place_out[i], &t.unknown) {
                    if let Some(e) = elems_per_unit(dims, &s.name) {
                        bytes = bytes.saturating_add(e.saturating_mul(t.dtype.size_bytes()));
                        tensors += 1;
                    }
                }
            }
            Some(RunTimeCount { name: s.name.clone(), set_by, bytes_per_unit: bytes, tensors })
        })
        .collect()
}

/// Why a figure is incomplete and how to complete it, in one sentence; `None`
/// for a complete scenario.
pub fn incompleteness(graph: &Graph, report: &memory::ScenarioReport) -> Option<String> {
    let c = report.completeness;
    if c.is_complete() {
        return None;
    }
    let mut parts = Vec::new();
    if c.unknown_tensors > 0 {
        parts.push(format!("{} tensor(s) of unknown size", c.unknown_tensors));
    }
    if c.unsized_weight_nodes > 0 {
        parts.push(format!("the weights of {} layer(s) of unknown size", c.unsized_weight_nodes));
    }
    let bind = missing_bindings(graph);
    let how = if bind.is_empty() {
        "an op without a shape rule or a run-time size is upstream (see the warnings)".to_string()
    } else {
        format!("bind them with {}", bind.join(" "))
    };
    Some(format!("{} are left out; {how}", parts.join(" and ")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(rel: &str) -> std::path::PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures").join(rel)
    }

    #[test]
    fn style_transfer_takes_batch_one_and_says_why() {
        let settings = MemorySettings { scenarios: vec![Scenario::StyleTransfer], ..Default::default() };
        let mut options = LoadOptions::default();
        options.inputs = Vec::new();
        let a = run(&fixture("caffe/vgg19_neural_style_v2.prototxt"), &options, &settings).unwrap();
        let input = a.graph.tensor(a.graph.inputs[0]);
        assert_eq!(input.shape.as_ref().unwrap().dims()[0], 1);
        // The fixture states batch 1 already: nothing to note.
        assert!(a.notes.is_empty(), "{:?}", a.notes);
        // An explicit --batch wins.
        options.batch = Some(3);
        let a = run(&fixture("caffe/vgg19_neural_style_v2.prototxt"), &options, &settings).unwrap();
        assert_eq!(a.graph.tensor(a.graph.inputs[0]).shape.as_ref().unwrap().dims()[0], 3);
        assert!(a.notes.is_empty());
    }

    #[test]
    fn storage_per_unit_of_a_run_time_count() {
        let f = |d: &[&str]| elems_per_unit(&d.iter().map(|s| s.to_string()).collect::<Vec<_>>(), "R");
        assert_eq!(f(&["R", "512", "7", "7"]), Some(512 * 49));
        assert_eq!(f(&["4*R", "5"]), Some(20));
        assert_eq!(f(&["R+1", "5"]), None);
        assert_eq!(f(&["R", "R"]), None);
        assert_eq!(f(&["R2", "5"]), None);
        assert_eq!(f(&["1", "5"]), None);
        let a = run(&fixture("caffe/forks/frcnn_roi_test.prototxt"), &LoadOptions::default(), &MemorySettings::default()).unwrap();
        let counts = run_time_counts(&a.graph);
        assert_eq!(counts.len(), 1);
        // rois 5, roi_pool 144, fc6 32 (relu6, drop6 in place), fc7 32, cls_score 3,
        // bbox_pred 12, cls_prob 3: 231 floats per proposal.
        assert_eq!((counts[0].name.as_str(), counts[0].set_by.as_str()), ("R", "proposal"));
        assert_eq!(counts[0].bytes_per_unit, 231 * 4);
    }

    #[test]
    fn free_symbols_name_their_flags() {
        let a = run(&fixture("onnx/dynamic.onnx"), &LoadOptions::default(), &MemorySettings::default()).unwrap();
        assert!(!a.graph.free_symbols.is_empty());
        assert!(!a.complete());
        let flags = missing_bindings(&a.graph);
        assert!(flags.iter().all(|f| f.starts_with("--dim ")), "{flags:?}");
        let why = incompleteness(&a.graph, &a.memory.scenarios[0]).unwrap();
        assert!(why.contains("--dim"), "{why}");
    }
}
