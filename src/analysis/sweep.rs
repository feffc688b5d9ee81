//! `sweep`: the peaks and breakdowns at a list of knob values (sizes,
//! batches, or any free symbol), each row reproducible with `inspect` and the
//! flags it carries. An incomplete row is an error, as in `fit`.

use std::path::Path;

use crate::load::LoadOptions;
use crate::memory::MemorySettings;

use super::fit::{probe, Axis, Probe, ProbeError};

/// One probe per value, in the order given; `each` runs after every row (a progress bar).
pub fn sweep(
    path: &Path,
    base: &LoadOptions,
    settings: &MemorySettings,
    axis: &Axis,
    values: &[u64],
    mut each: impl FnMut(),
) -> Result<Vec<Probe>, ProbeError> {
    let mut rows = Vec::with_capacity(values.len());
    for &v in values {
        rows.push(probe(path, base, settings, axis, v)?);
        each();
    }
    Ok(rows)
}
