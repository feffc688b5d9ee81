//! Load-and-shape time for prototxts: the largest corpus net (Inception-ResNet-v2,
//! 236 KB, 987 layers) when ../shared is present, and our own VGG-19 fixture.
//! Run: `cargo bench --bench load`.

use std::path::Path;

use criterion::{criterion_group, criterion_main, Criterion};
use nnmem::load::{load, LoadOptions};

fn bench_prototxt(c: &mut Criterion) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut cases = vec![("vgg19_fixture", root.join("fixtures/caffe/vgg19_neural_style_v2.prototxt"))];
    let corpus = root.join("../shared/corpus/caffe/inception_resnet_v2_deploy.prototxt");
    if corpus.exists() {
        cases.push(("inception_resnet_v2", corpus));
    } else {
        eprintln!("../shared is absent: benchmarking the fixture only");
    }
    let options = LoadOptions::default();
    for (name, path) in cases {
        c.bench_function(&format!("load+shape {name}"), |b| {
            b.iter(|| load(&path, &options).expect("the benchmark model loads"))
        });
    }
}

criterion_group!(benches, bench_prototxt);
criterion_main!(benches);
