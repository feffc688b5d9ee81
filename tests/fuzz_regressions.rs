//! Inputs the fuzz targets once crashed or hung on (tests/fuzz_regressions/),
//! each a mutation of one of our own fixtures, run through the real binary:
//! every scenario exits 0 or 2, without a panic, within the hostile bounds.
//!
//! - caffe_graph_stride_rank.prototxt (caffe_graph): an in-place layer with a
//!   second top of another rank gave the stride tracker strides of the wrong rank.
//! - onnx_graph_huge_axis.onnx (onnx_graph): a LayerNormalization axis near
//!   −2³⁸ made tract loop; now refused before any shape is computed (exit 2).
//! - onnx_graph_layernorm_axis.onnx (onnx_graph): an axis of −5 on a rank-3
//!   input made tract loop too; tract now sees LayerNormalization as an Identity.

#![cfg(unix)]

mod common;

use std::path::Path;

use common::within_bounds;

#[test]
fn fuzz_regressions_exit_cleanly() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz_regressions");
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let o = common::inspect_with(&path, &["--scenario", "all"], false);
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        assert!(o.code == 0 || o.code == 2, "{name}: exit {} {}", o.code, o.stderr);
        assert!(!o.stderr.contains("panicked"), "{name}: {}", o.stderr);
        within_bounds(&o, &name);
        n += 1;
    }
    assert!(n >= 3, "expected the regression inputs in {}", dir.display());
}

#[test]
fn an_axis_no_tensor_can_have_is_refused_by_name() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz_regressions/onnx_graph_huge_axis.onnx");
    let o = common::inspect_with(&path, &[], false);
    assert_eq!(o.code, 2, "{}", o.stderr);
    assert!(o.stderr.contains("/ln/LayerNormalization") && o.stderr.contains("outside any tensor's rank"), "{}", o.stderr);
}
