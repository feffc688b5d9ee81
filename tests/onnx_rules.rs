//! nnmem's own ONNX shape rules agree with tract on every model they accept:
//! the fixtures, and the shared corpus when ../shared is present.

use std::path::{Path, PathBuf};

use nnmem::graph::{Graph, TensorKind};
use nnmem::load::{load, InputSpec, LoadOptions, OnnxShapes};

fn shapes(g: &Graph) -> Vec<(String, Option<Vec<u64>>, &'static str)> {
    g.tensors
        .iter()
        .filter(|t| t.kind == TensorKind::Activation)
        .map(|t| (t.name.clone(), t.shape.as_ref().map(|s| s.0.clone()), t.dtype.name()))
        .collect()
}

/// Loads with each engine; true when the own rules alone covered the model.
fn agree(path: &Path, inputs: &[InputSpec]) -> bool {
    let base = LoadOptions { inputs: inputs.to_vec(), ..LoadOptions::default() };
    let auto = load(path, &base).unwrap_or_else(|e| panic!("{e}"));
    let tract = load(path, &LoadOptions { onnx_shapes: OnnxShapes::Tract, ..base.clone() }).unwrap();
    let own = load(path, &LoadOptions { onnx_shapes: OnnxShapes::Own, ..base }).unwrap();
    assert_eq!(shapes(&auto), shapes(&tract), "{}", path.display());
    assert_eq!(auto.param_totals(), tract.param_totals());
    let covered = !own.warnings.iter().any(|w| w.contains("do not cover"));
    if covered {
        assert_eq!(shapes(&own), shapes(&tract), "{}", path.display());
    }
    covered
}

fn onnx_files(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|rd| rd.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    v.retain(|p| p.extension().is_some_and(|e| e == "onnx") && !p.file_name().unwrap().to_string_lossy().starts_with("hostile"));
    v.sort();
    v
}

#[test]
fn fixtures_agree() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/onnx");
    let files = onnx_files(&dir);
    assert!(!files.is_empty(), "no ONNX fixtures under {}", dir.display());
    let covered: Vec<String> = files
        .iter()
        .filter(|f| agree(f, &[]))
        .map(|f| f.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    // The comparison means something only when the own rules ran: the plain
    // fixtures with sized inputs must take that path.
    for plain in ["shared_weight.onnx", "train_bn.onnx"] {
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
            covered.push(f.file_name().unwrap().to_string_lossy().into_owned());
        }
    }
    eprintln!("own rules cover {} of {}: {covered:?}", covered.len(), files.len());
    for plain in ["vgg16.ext.onnx", "resnet50.ext.onnx", "densenet121.train.ext.onnx", "squeezenet1_1.ext.onnx"] {
        assert!(covered.iter().any(|c| c == plain), "{plain} should not need tract; covered: {covered:?}");
    }
}
