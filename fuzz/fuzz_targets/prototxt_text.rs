//! The tolerant prototxt reader alone: any bytes give a tree or a positioned error.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Err(e) = nnmem::load::caffe::text::parse(data) {
        assert!(e.line >= 1 && e.column >= 1, "error position {}:{}", e.line, e.column);
    }
});
