//! Binary .caffemodel → weights graph → memory pass and reports.
#![no_main]

#[path = "common.rs"]
mod common;

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use nnmem::load::{caffe, LoadOptions};

fuzz_target!(|data: &[u8]| {
    if let Ok(graph) = caffe::load_caffemodel_bytes(Path::new("fuzz.caffemodel"), data, &LoadOptions::default()) {
        common::exercise(&graph);
    }
});
