//! Using nnmem as a library: load a model, run the memory pass, print each
//! scenario's peak with the node where it happens and what is live there.
//!
//! ```text
//! cargo run --release --example peak -- fixtures/caffe/vgg19_neural_style_v2.prototxt 1x3x224x224
//! ```
//!
//! The first argument is a model file (ONNX or Caffe prototxt); the optional
//! second one binds its input's shape, as `--input` does on the command line.

use std::path::PathBuf;
use std::process::ExitCode;

use nnmem::load::{self, InputSpec, LoadOptions};
use nnmem::memory::{self, MemorySettings};
use nnmem::units::format_bytes;

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let Some(model) = args.next().map(PathBuf::from) else {
        eprintln!("usage: peak MODEL [INPUT_SHAPE, e.g. 1x3x224x224]");
        return ExitCode::from(2);
    };
    let mut options = LoadOptions::default();
    if let Some(shape) = args.next() {
        match InputSpec::parse(&shape) {
            Ok(spec) => options.inputs.push(spec),
            Err(e) => {
                eprintln!("{e}");
                return ExitCode::from(2);
            }
        }
    }

    // The loader recovers every tensor's shape; it knows nothing of memory.
    let graph = match load::load(&model, &options) {
        Ok(g) => g,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    // Defaults: inference and training (SGD), f32, the `pytorch` profile.
    let report = memory::analyse(&graph, &MemorySettings::default());

    for warning in graph.warnings.iter().chain(&report.warnings) {
        eprintln!("warning: {warning}");
    }
    for s in &report.scenarios {
        // An incomplete figure is a lower bound: some tensor's size is unknown.
        let bound = if s.completeness.is_complete() { "" } else { "≥ " };
        let at = s.peak_node_name.as_deref().unwrap_or("(loss or optimizer step)");
        println!("{} peak: {bound}{} at {at} ({})", s.scenario.as_str(), format_bytes(s.peak_bytes), s.peak_phase.as_str());
        for (category, bytes) in s.peak_breakdown.iter().filter(|&(_, b)| b > 0) {
            println!("  {:<22} {}", category.as_str(), format_bytes(bytes));
        }
    }
    ExitCode::SUCCESS
}
