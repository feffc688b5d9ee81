//! Reviewed golden outputs: every layer's output shapes and parameter counts for
//! our Caffe fixtures. A rule change shows up as a snapshot diff to review with
//! `cargo insta review`; CI fails on any mismatch.

use std::path::Path;

use nnmem::load::{load, LoadOptions};

fn layers(fixture: &str) -> Vec<String> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/caffe").join(fixture);
    let g = load(&path, &LoadOptions::default()).unwrap();
    let counts = g.node_param_counts();
    g.nodes
        .iter()
        .zip(counts)
        .map(|(n, (learned, stats))| {
            let shapes: Vec<String> = n.outputs.iter().map(|&t| nnmem::report::shape_text(&g, t)).collect();
            format!("{:<14} {:<13} {:<22} params {learned} stats {stats}{}", n.name, n.op.name(), shapes.join(" "), if n.in_place { " in-place" } else { "" })
        })
        .collect()
}

#[test]
fn alexnet_grouped() {
    insta::assert_debug_snapshot!(layers("alexnet_grouped.prototxt"));
}

#[test]
fn small_resnet() {
    insta::assert_debug_snapshot!(layers("small_resnet.prototxt"));
}

#[test]
fn seed_cnn() {
    insta::assert_debug_snapshot!(layers("seed_cnn.prototxt"));
}
