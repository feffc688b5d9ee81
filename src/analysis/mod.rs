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
    pub graph: Graph,
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

/// Loads `path` with the scenario's defaults and runs the memory pass.
pub fn run(path: &Path, options: &LoadOptions, settings: &MemorySettings) -> Result<Analysed, LoadError> {
    let effective = scenario_options(options, settings);
    let graph = load::load(path, &effective)?;
    if settings.scenarios.contains(&Scenario::StyleTransfer) {
        memory::resolve_loss_layers(&graph, &settings.loss_layers).map_err(|message| LoadError::Usage { message })?;
    }
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
