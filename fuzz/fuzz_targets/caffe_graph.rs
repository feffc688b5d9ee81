//! Prototxt → graph with shapes → memory pass and reports, in both phases.
#![no_main]

#[path = "common.rs"]
mod common;

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use nnmem::load::{caffe, CaffePhase, LoadOptions};

fuzz_target!(|data: &[u8]| {
    for phase in [CaffePhase::Test, CaffePhase::Train] {
        let options = LoadOptions { phase: Some(phase), ..Default::default() };
        if let Ok(graph) = caffe::load_prototxt_bytes(Path::new("fuzz.prototxt"), data, &options) {
            common::exercise(&graph);
        }
    }
});
