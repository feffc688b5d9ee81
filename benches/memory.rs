//! Memory-pass time on DenseNet-121 (the 434-node ONNX export in ../shared):
//! both scenarios on an already-shaped graph, and load + shapes + both
//! scenarios end to end. Target (issue 4): shapes + both scenarios well under 5 ms.
//! Run: `cargo bench --bench memory`.

use std::path::Path;

use criterion::{criterion_group, criterion_main, Criterion};
use nnmem::load::{load, InputSpec, LoadOptions};
use nnmem::memory::{analyse, MemorySettings};

fn bench_densenet(c: &mut Criterion) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let path = root.join("../shared/corpus/onnx/densenet121.ext.onnx");
    if !path.exists() {
        eprintln!("SKIPPED bench_densenet: ../shared is absent, nothing to benchmark");
        return;
    }
    let options = LoadOptions {
        inputs: vec![InputSpec::parse("input=1x3x224x224").expect("a valid input spec")],
        ..LoadOptions::default()
    };
    let graph = load(&path, &options).expect("DenseNet-121 loads");
    eprintln!("densenet121: {} nodes", graph.nodes.len());
    let settings = MemorySettings::default();
    c.bench_function("memory both scenarios densenet121", |b| b.iter(|| analyse(&graph, &settings)));
    c.bench_function("load+shapes+memory densenet121", |b| {
        b.iter(|| {
            let g = load(&path, &options).expect("DenseNet-121 loads");
            analyse(&g, &settings)
        })
    });
}

criterion_group!(benches, bench_densenet);
criterion_main!(benches);
