//! What every graph-producing target does with the graph it got: the memory
//! pass (both scenarios) and the JSON report, as `nnmem inspect --json` would.

use nnmem::graph::Graph;
use nnmem::memory::{analyse, MemorySettings};
use nnmem::report::{self, json, Source};

pub fn exercise(graph: &Graph) {
    let memory = analyse(graph, &MemorySettings::default());
    let source = Source { path: "fuzz" };
    let mut rep = json::build(graph, &source);
    json::add_memory(&mut rep, &memory);
    let _ = serde_json::to_vec(&rep);
    let _ = report::activation_bytes(graph);
    let _ = report::input_bytes(graph);
    let _ = graph.param_totals();
}
