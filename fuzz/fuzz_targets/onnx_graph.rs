//! ONNX bytes → decode → checks → tract shape inference → graph → memory pass
//! and reports.
//!
//! nnmem runs tract inside `catch_unwind` (tract is not written for hostile
//! input) and turns its panics into a warning. libFuzzer's panic hook would
//! abort on those contained panics, so this target lets a panic raised in a
//! third-party crate's source (tract and what it uses, e.g. ndarray) unwind to
//! nnmem's handler; a panic located in nnmem, in the standard library, or in
//! the crates nnmem itself calls (prost, serde_json) still aborts and is a
//! finding.
#![no_main]

#[path = "common.rs"]
mod common;

use std::path::Path;
use std::sync::Once;

use libfuzzer_sys::fuzz_target;
use nnmem::load::{onnx, LoadOptions};

static HOOK: Once = Once::new();

fn contain_tract_panics() {
    HOOK.call_once(|| {
        let abort_hook = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let third_party = info.location().is_some_and(|l| {
                let f = l.file();
                f.contains("/.cargo/registry/") && !f.contains("/prost-") && !f.contains("/serde_json-")
            });
            if !third_party {
                abort_hook(info);
            }
        }));
    });
}

fuzz_target!(|data: &[u8]| {
    contain_tract_panics();
    // A folder that does not exist: external-data checks must not find anything real.
    let path = Path::new("/nonexistent-nnmem-fuzz/model.onnx");
    if let Ok(graph) = onnx::load_onnx_bytes(path, data, &LoadOptions::default()) {
        common::exercise(&graph);
    }
});
