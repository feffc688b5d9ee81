//! `fit`: the largest input size, batch or symbol value whose predicted peak
//! fits a memory budget, by exponential then binary search (the peak grows with
//! the size, so no scan is needed). Also the probe `sweep` shares: load the
//! model with one value of the knob and take its peak.
//!
//! A probe whose figures are incomplete (a free symbol, an unsized input, an
//! op without a shape rule) stops the search with an error: a lower bound
//! must never be taken for a size that fits.

use std::path::Path;

use crate::graph::{Graph, Unknown};
use crate::load::{DimBinding, InputSpec, LoadOptions};
use crate::memory::MemorySettings;

use super::Analysed;

/// What to grow.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Knob {
    /// The image height of one input (`None`: the first), the width following
    /// the aspect (`None`: the input's own, else square).
    Resolution {
        /// The input whose height grows (`None`: the first image input).
        input: Option<String>,
        /// Width : height (`None`: the input's own, else square).
        aspect: Option<(u64, u64)>,
    },
    /// The first dimension of every input.
    Batch,
    /// A free symbol of the model (a sequence or KV-cache length, `batch`).
    Symbol(String),
}

impl Knob {
    /// `resolution`, `batch`, or any other word as a symbol name.
    pub fn parse(text: &str) -> Knob {
        match text {
            "resolution" => Knob::Resolution { input: None, aspect: None },
            "batch" => Knob::Batch,
            other => Knob::Symbol(other.to_string()),
        }
    }

    /// The knob's name as the command line spells it (`resolution`, `batch`, a symbol).
    pub fn label(&self) -> String {
        match self {
            Knob::Resolution { .. } => "resolution".into(),
            Knob::Batch => "batch".into(),
            Knob::Symbol(s) => s.clone(),
        }
    }
}

/// Why a probe gave no figure.
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    /// The model cannot take this size (a kernel larger than its input, …).
    #[error("{0}")]
    Load(#[from] crate::load::LoadError),
    /// The figures would be a lower bound: the search cannot use them.
    #[error("at {knob} = {size} the figures are incomplete: {why}")]
    Incomplete {
        /// The knob's name.
        knob: String,
        /// Its value in that probe.
        size: u64,
        /// What is left unsized, and how to bind it.
        why: String,
    },
    /// The knob does not fit the model (no such symbol, no spatial axes, …).
    #[error("{0}")]
    Knob(String),
}

/// The knob resolved against the model: what one value of it sets.
#[derive(Clone, Debug)]
pub struct Axis {
    /// What is grown.
    pub knob: Knob,
    kind: AxisKind,
    /// The size the model has now (where the search starts).
    pub start: u64,
}

#[derive(Clone, Debug)]
enum AxisKind {
    /// Set the whole shape of one input: `dims` with height and width replaced.
    Input { name: String, dims: Vec<u64>, aspect: (u64, u64), resolution: bool },
    /// `--batch N`.
    BatchFlag,
    /// `--dim NAME=N`.
    Symbol(String),
}

/// The start height for an input whose height and width are free symbols.
pub const SYMBOLIC_RESOLUTION_START: u64 = 224;

impl Axis {
    /// Resolves `knob` on the model loaded with `options` (the scenario's
    /// defaults applied by the caller).
    pub fn resolve(graph: &Graph, options: &LoadOptions, knob: &Knob) -> Result<Axis, ProbeError> {
        let bound = |name: &str| options.dims.iter().find(|b| b.symbol == name).map(|b| b.value);
        let input_dims = |name: &str| -> Result<(Vec<Option<u64>>, Vec<String>), ProbeError> {
            let t = graph
                .inputs
                .iter()
                .map(|&t| graph.tensor(t))
                .find(|t| t.name == name)
                .ok_or_else(|| ProbeError::Knob(format!("the model has no input named \"{name}\"")))?;
            match (&t.shape, &t.unknown) {
                (Some(s), _) => Ok((s.dims().iter().map(|&d| Some(d)).collect(), Vec::new())),
                (None, Some(Unknown::Symbolic(dims))) => {
                    let vals = dims.iter().map(|d| d.parse::<u64>().ok().or_else(|| bound(d))).collect();
                    Ok((vals, dims.clone()))
                }
                _ => Err(ProbeError::Knob(format!(
                    "input \"{name}\" has no stated shape: give the starting one with --input {name}=DIMS"
                ))),
            }
        };
        let first_input = || {
            graph
                .inputs
                .first()
                .map(|&t| graph.tensor(t).name.clone())
                .ok_or_else(|| ProbeError::Knob("the model declares no input to grow".into()))
        };
        match knob {
            Knob::Symbol(name) => {
                if !graph.free_symbols.iter().any(|s| &s.name == name) {
                    let free: Vec<&str> = graph.free_symbols.iter().map(|s| s.name.as_str()).collect();
                    return Err(ProbeError::Knob(format!(
                        "no free symbol named \"{name}\" (free symbols: {}; or vary resolution or batch)",
                        if free.is_empty() { "none".to_string() } else { free.join(", ") }
                    )));
                }
                Ok(Axis { knob: knob.clone(), kind: AxisKind::Symbol(name.clone()), start: 1 })
            }
            Knob::Batch => {
                let name = first_input()?;
                let (dims, _) = input_dims(&name)?;
                match dims.iter().copied().collect::<Option<Vec<u64>>>() {
                    Some(d) if !d.is_empty() => {
                        let start = d[0].max(1);
                        Ok(Axis {
                            knob: knob.clone(),
                            kind: AxisKind::Input { name, dims: d, aspect: (1, 1), resolution: false },
                            start,
                        })
                    }
                    Some(_) => Err(ProbeError::Knob(format!("input \"{name}\" is a scalar: no batch to vary"))),
                    None => Ok(Axis { knob: knob.clone(), kind: AxisKind::BatchFlag, start: options.batch.unwrap_or(1) }),
                }
            }
            Knob::Resolution { input, aspect } => {
                let name = match input {
                    Some(n) => n.clone(),
                    None => first_input()?,
                };
                let (mut dims, symbols) = input_dims(&name)?;
                let n = dims.len();
                if n < 3 {
                    return Err(ProbeError::Knob(format!(
                        "input \"{name}\" has {n} dimension(s), no spatial axes to grow: vary batch or a symbol"
                    )));
                }
                if let (Some(b), Some(first)) = (options.batch, dims.first_mut()) {
                    *first = Some(b);
                }
                let (h, w) = (dims[n - 2], dims[n - 1]);
                // The other dims must be known: a free batch is not the resolution's to choose.
                for (axis, d) in dims.iter().enumerate().take(n - 2) {
                    if d.is_none() {
                        let sym = symbols.get(axis).cloned().unwrap_or_default();
                        return Err(ProbeError::Knob(format!(
                            "input \"{name}\" has the free dimension \"{sym}\" besides height and width: bind it with --dim {sym}=N{}",
                            if axis == 0 { " or --batch N" } else { "" }
                        )));
                    }
                }
                let aspect = aspect.unwrap_or(match (h, w) {
                    (Some(h), Some(w)) => (w.max(1), h.max(1)),
                    _ => (1, 1),
                });
                let start = h.unwrap_or(SYMBOLIC_RESOLUTION_START).max(1);
                let dims: Vec<u64> = dims.into_iter().map(|d| d.unwrap_or(1)).collect();
                Ok(Axis { knob: knob.clone(), kind: AxisKind::Input { name, dims, aspect, resolution: true }, start })
            }
        }
    }

    /// The load options at `size`, and the flags that reproduce them.
    pub fn options_at(&self, base: &LoadOptions, size: u64) -> Result<(LoadOptions, Vec<String>), ProbeError> {
        let mut o = base.clone();
        let flags = match &self.kind {
            AxisKind::Input { name, dims, aspect, resolution } => {
                let mut d = dims.clone();
                let n = d.len();
                if *resolution {
                    let (w, h) = *aspect;
                    d[n - 2] = size;
                    d[n - 1] = size.checked_mul(w).map(|x| x.div_ceil(h)).unwrap_or(u64::MAX).max(1);
                } else {
                    d[0] = size;
                }
                o.inputs.retain(|s| s.name.as_deref().is_some_and(|x| x != name));
                o.inputs.insert(0, InputSpec { name: Some(name.clone()), dims: d.clone() });
                if !*resolution && o.batch.is_some() {
                    o.batch = Some(size);
                }
                let text = d.iter().map(|x| x.to_string()).collect::<Vec<_>>().join("x");
                vec!["--input".to_string(), format!("{name}={text}")]
            }
            AxisKind::BatchFlag => {
                o.batch = Some(size);
                vec!["--batch".to_string(), size.to_string()]
            }
            AxisKind::Symbol(name) => {
                o.dims.retain(|b| &b.symbol != name);
                o.dims.push(DimBinding { symbol: name.clone(), value: size });
                vec!["--dim".to_string(), format!("{name}={size}")]
            }
        };
        Ok((o, flags))
    }
}

/// One probe: the flags that reproduce it, the peak, and the whole analysis.
#[derive(Clone, Debug)]
pub struct Probe {
    /// The knob's value in this probe.
    pub size: u64,
    /// `--input NAME=DIMS` / `--batch N` / `--dim NAME=N`, as two words.
    pub flags: Vec<String>,
    /// The largest peak over the scenarios computed, and that scenario.
    pub peak_bytes: u64,
    /// The scenario with that peak.
    pub scenario: &'static str,
    /// The whole analysis at this size.
    pub analysed: Analysed,
}

impl Probe {
    /// The `--input` value, when the probe sets an input's shape.
    pub fn input(&self) -> Option<&str> {
        (self.flags.first().map(String::as_str) == Some("--input")).then(|| self.flags[1].as_str())
    }
}

/// Loads the model with the knob at `size` and runs the memory pass.
pub fn probe(path: &Path, base: &LoadOptions, settings: &MemorySettings, axis: &Axis, size: u64) -> Result<Probe, ProbeError> {
    let (options, flags) = axis.options_at(base, size)?;
    let analysed = super::run_peaks(path, &options, settings)?;
    if let Some(s) = analysed.memory.scenarios.iter().find(|s| !s.completeness.is_complete()) {
        let why = super::incompleteness(&analysed.graph, s).unwrap_or_default();
        return Err(ProbeError::Incomplete { knob: axis.knob.label(), size, why });
    }
    // Decode's peak is inference's: named decode only when inference is not computed.
    let has_inference = analysed.memory.scenario(crate::memory::Scenario::Inference).is_some();
    let (peak_bytes, scenario) = analysed
        .memory
        .scenarios
        .iter()
        .filter(|s| !(has_inference && s.scenario == crate::memory::Scenario::Decode))
        .map(|s| (s.peak_bytes, s.scenario.as_str()))
        .max_by_key(|p| p.0)
        .unwrap_or((0, "none"));
    Ok(Probe { size, flags, peak_bytes, scenario, analysed })
}

/// What `fit` asks.
#[derive(Clone, Debug)]
pub struct FitRequest {
    /// The memory available, in bytes.
    pub budget: u64,
    /// Memory the runtime takes before the model, left out of the budget.
    pub reserve: u64,
    /// Largest value to consider.
    pub max: u64,
}

/// The outcome of the search.
#[derive(Clone, Debug)]
pub struct FitResult {
    /// The largest value that fits (`None`: not even the smallest tried).
    pub fits: Option<Probe>,
    /// The value one above it, which does not fit (`None`: `max` fits, or the model cannot take it).
    pub next: Option<Probe>,
    /// How many sizes were analysed.
    pub probes: usize,
}

/// Largest size in [1, max] with `peak + reserve <= budget`, assuming the peak
/// grows with the size. Sizes the model cannot take count as not fitting; an
/// incomplete probe is an error.
pub fn fit(path: &Path, base: &LoadOptions, settings: &MemorySettings, axis: &Axis, req: &FitRequest) -> Result<FitResult, ProbeError> {
    let mut probes = 0usize;
    let mut run = |size: u64| -> Result<Option<Probe>, ProbeError> {
        probes += 1;
        match probe(path, base, settings, axis, size) {
            Ok(p) => Ok(Some(p)),
            Err(ProbeError::Load(_)) => Ok(None),
            Err(e) => Err(e),
        }
    };
    let fits = |p: &Option<Probe>| p.as_ref().is_some_and(|p| p.peak_bytes.saturating_add(req.reserve) <= req.budget);
    let max = req.max.max(1);
    let start = axis.start.clamp(1, max);
    // Bracket: `lo` fits (or is None); `hi` is the smallest size known not to
    // fit, with its probe when the model could take it.
    let mut lo: Option<Probe> = None;
    let mut hi: Option<(u64, Option<Probe>)> = None;
    let first = run(start)?;
    if fits(&first) {
        lo = first;
        let mut s = start;
        while s < max {
            s = s.saturating_mul(2).min(max);
            let p = run(s)?;
            if fits(&p) {
                lo = p;
            } else {
                hi = Some((s, p));
                break;
            }
        }
    } else {
        let mut s = start;
        let could_take = first.is_some();
        hi = Some((start, first));
        if could_take {
            while s > 1 {
                s /= 2;
                let p = run(s)?;
                if fits(&p) {
                    lo = p;
                    break;
                }
                match p {
                    Some(p) => hi = Some((s, Some(p))),
                    // The model cannot take this size; nothing smaller will do better.
                    None => break,
                }
            }
        }
    }
    if let (Some(l), Some((h, _))) = (lo.as_ref(), hi.as_ref()) {
        let (mut a, mut b) = (l.size, *h);
        while b - a > 1 {
            let m = a + (b - a) / 2;
            let p = run(m)?;
            if fits(&p) {
                a = m;
                lo = p;
            } else {
                b = m;
                hi = Some((m, p));
            }
        }
    }
    // `next` is a real probe one step above.
    let next = match (&lo, hi) {
        (Some(l), _) if l.size >= max => None,
        (Some(l), Some((h, Some(p)))) if h == l.size + 1 => Some(p),
        (Some(l), _) => run(l.size + 1)?,
        (None, Some((_, p))) => p,
        (None, None) => None,
    };
    Ok(FitResult { fits: lo, next, probes })
}
