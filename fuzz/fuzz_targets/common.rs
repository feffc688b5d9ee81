//! What every graph-producing target does with the graph it got: the memory
//! pass (both scenarios), the JSON report and the table, as `nnmem inspect`
//! would.

use nnmem::analysis::Analysed;
use nnmem::graph::Graph;
use nnmem::memory::{analyse, MemorySettings};
use nnmem::report::{self, json, table, Source};

pub fn exercise(graph: &Graph) {
    // As `analysis::run`: a graph whose figures could reach 2^64 is refused before the pass.
    if nnmem::memory::check_fits(graph, &MemorySettings::default()).is_err() {
        return;
    }
    let memory = analyse(graph, &MemorySettings::default());
    let a = Analysed { graph: graph.clone(), memory, notes: Vec::new() };
    let source = Source { path: "fuzz" };
    let _ = serde_json::to_vec(&json::inspect(&a, &source));
    let mut text = Vec::new();
    let _ = table::write_inspect(&mut text, &a, &source, table::Style::Text { color: false }, &table::TableOptions::default());
    let _ = report::activation_bytes(graph);
    let _ = report::input_bytes(graph);
    let _ = graph.param_totals();
}
