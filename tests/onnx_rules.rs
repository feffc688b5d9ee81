//! nnmem's own ONNX shape engine against tract: wherever tract gives a
//! concrete shape, the own rules (alone, and combined with tract) give the
//! same shape and element type; graphs the own rules size completely never
//! run tract. Checked on the fixtures, on the shared corpus when ../shared
//! is present, and on the measured transformer and vision exports
//! (fixtures/measured, or $NNMEM_MEASURED_DIR) when present.

use std::path::{Path, PathBuf};

use nnmem::graph::{Graph, TensorKind};
use nnmem::load::{load, InputSpec, LoadOptions, OnnxShapes};

type Facts = Vec<(String, Option<Vec<u64>>, &'static str)>;

fn shapes(g: &Graph) -> Facts {
    g.tensors
        .iter()
        .filter(|t| t.kind == TensorKind::Activation)
        .map(|t| (t.name.clone(), t.shape.as_ref().map(|s| s.0.clone()), t.dtype.name()))
        .collect()
}

/// Where `reference` is concrete, `other` is the same shape and type.
/// Returns how many tensors `other` sizes that `reference` does not.
fn no_disagreement(path: &Path, what: &str, reference: &Facts, other: &Facts) -> usize {
    assert_eq!(reference.len(), other.len());
    let mut more = 0;
    for (r, o) in reference.iter().zip(other) {
        assert_eq!(r.0, o.0);
        match (&r.1, &o.1) {
            (Some(a), Some(b)) => {
                assert_eq!(a, b, "{}: {what}: tensor {} is {b:?}, tract says {a:?}", path.display(), r.0);
                assert_eq!(r.2, o.2, "{}: {what}: tensor {} is {}, tract says {}", path.display(), r.0, o.2, r.2);
            }
            (None, Some(_)) => more += 1,
            (Some(_), None) if what == "auto" => panic!("{}: tensor {} lost its tract shape", path.display(), r.0),
            _ => {}
        }
    }
    more
}

/// Loads with each engine; true when the own rules alone covered the model.
fn agree(path: &Path, inputs: &[InputSpec]) -> bool {
    agree_with(path, LoadOptions { inputs: inputs.to_vec(), ..LoadOptions::default() })
}

fn dims(list: &[&str]) -> Vec<nnmem::load::DimBinding> {
    list.iter().map(|d| nnmem::load::DimBinding::parse(d).unwrap()).collect()
}

fn agree_with(path: &Path, base: LoadOptions) -> bool {
    let auto = load(path, &base).unwrap_or_else(|e| panic!("{e}"));
    let tract = load(path, &LoadOptions { onnx_shapes: OnnxShapes::Tract, ..base.clone() }).unwrap();
    let own = load(path, &LoadOptions { onnx_shapes: OnnxShapes::Own, ..base }).unwrap();
    let reference = shapes(&tract);
    no_disagreement(path, "auto", &reference, &shapes(&auto));
    no_disagreement(path, "own", &reference, &shapes(&own));
    assert_eq!(auto.param_totals(), tract.param_totals(), "{}", path.display());
    !own.warnings.iter().any(|w| w.contains("do not cover"))
}

fn onnx_files(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|rd| rd.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    v.retain(|p| p.extension().is_some_and(|e| e == "onnx") && !p.file_name().unwrap().to_string_lossy().starts_with("hostile"));
    v.sort();
    v
}

fn file_name(p: &Path) -> String {
    p.file_name().unwrap().to_string_lossy().into_owned()
}

#[test]
fn fixtures_agree() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/onnx");
    let files = onnx_files(&dir);
    assert!(!files.is_empty(), "no ONNX fixtures under {}", dir.display());
    // As declared (free symbols stay tract's formulas), then with every symbol bound.
    for f in &files {
        agree(f, &[]);
    }
    let bound = dims(&["batch=2", "seq=8", "height=32", "width=32"]);
    let covered: Vec<String> = files
        .iter()
        .filter(|f| agree_with(f, LoadOptions { dims: bound.clone(), ..LoadOptions::default() }))
        .map(|f| file_name(f))
        .collect();
    // The comparison means something only when the own rules ran: the
    // fixtures whose ops are all in the vocabulary must take that path.
    for plain in ["shared_weight.onnx", "train_bn.onnx", "tiny_lm.onnx", "upsample.onnx", "conv_chain.onnx", "dynamic.onnx", "bf16.onnx"] {
        assert!(covered.iter().any(|c| c == plain), "{plain} should not need tract; covered: {covered:?}");
    }
}

#[test]
fn corpus_agrees_and_plain_cnns_skip_tract() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/corpus/onnx");
    let files = onnx_files(&dir);
    if files.is_empty() {
        eprintln!("SKIPPED corpus_agrees_and_plain_cnns_skip_tract: ../shared/corpus/onnx is absent");
        return;
    }
    let input = [InputSpec::parse("input=1x3x224x224").unwrap()];
    let mut covered = Vec::new();
    for f in &files {
        if agree(f, &input) {
            covered.push(file_name(f));
        }
    }
    eprintln!("own rules cover {} of {}: {covered:?}", covered.len(), files.len());
    assert_eq!(covered.len(), files.len(), "every corpus export should be sized by the own rules");
}

/// The measured exports (legacy and dynamo transformers with and without KV
/// cache, vision nets), bound to a batch of 2 and a sequence of 64.
#[test]
fn measured_exports_agree_and_skip_tract() {
    let dir = std::env::var_os("NNMEM_MEASURED_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/measured"));
    let files = onnx_files(&dir);
    if files.is_empty() {
        eprintln!("SKIPPED measured_exports_agree_and_skip_tract: no exports under {}", dir.display());
        return;
    }
    let dims = dims(&["batch=2", "seq=64", "dec_seq=16", "past=31", "height=96", "width=96", "frames=8", "height_blocks=6", "width_blocks=6"]);
    let mut not_covered = Vec::new();
    for f in &files {
        let base = LoadOptions { dims: dims.clone(), ..LoadOptions::default() };
        let tract = load(f, &LoadOptions { onnx_shapes: OnnxShapes::Tract, ..base.clone() }).unwrap();
        let own = load(f, &LoadOptions { onnx_shapes: OnnxShapes::Own, ..base.clone() }).unwrap();
        let auto = load(f, &base).unwrap();
        let reference = shapes(&tract);
        no_disagreement(f, "auto", &reference, &shapes(&auto));
        no_disagreement(f, "own", &reference, &shapes(&own));
        // Only an op outside the vocabulary (the recurrent nets' LSTM and GRU
        // today) may leave a node to tract, never a rule that gives up.
        let outside = own.warnings.iter().any(|w| w.contains("is not in nnmem's operator vocabulary"));
        if own.warnings.iter().any(|w| w.contains("do not cover")) && !outside {
            not_covered.push(file_name(f));
        }
    }
    assert!(not_covered.is_empty(), "own rules leave nodes of {not_covered:?} to tract");
}
