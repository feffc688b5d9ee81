//! nnmem: why does this network need so much memory, and will it fit?
//!
//! The pipeline: `load` reads a model file into a `graph::Graph` with every
//! tensor's real shape (per-operator knowledge in `ops`); `memory` annotates the
//! graph for inference and training; `analysis` builds the subcommands'
//! questions on it (fit, sweep, diff, explain, audit); `report` renders the result.

pub mod analysis;
pub mod graph;
pub mod load;
pub mod memory;
pub mod ops;
pub mod report;
pub mod tensor;
pub mod units;
