//! `nnmem fit`: the largest input size (or batch) whose predicted peak fits a
//! memory budget, by exponential then binary search over the size (the peak
//! grows with the size, so no scan is needed). Also the probing helpers that
//! `sweep` shares: load the model at one input shape and take its peak.

use std::io::Write;

use anyhow::{bail, Context, Result};
use clap::{Args, ValueEnum};
use serde_json::json;

use super::exit::ExitCode;
use super::{load_model, MemoryArgs, ModelArgs};
use crate::load::InputSpec;
use crate::memory::{self, MemoryReport, MemorySettings};
use crate::units::{format_bytes, printable};

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Vary {
    /// The image side: height, with the width following --aspect.
    Resolution,
    /// The batch (first) dimension of every input.
    Batch,
}

impl Vary {
    pub fn as_str(self) -> &'static str {
        match self {
            Vary::Resolution => "resolution",
            Vary::Batch => "batch",
        }
    }
}

#[derive(Args, Debug)]
pub struct FitArgs {
    #[command(flatten)]
    pub model: ModelArgs,

    /// Memory available, e.g. 8GiB, 12GB (KB/MB/GB powers of 10, KiB/MiB/GiB of 2).
    #[arg(long, value_name = "SIZE", value_parser = crate::units::parse_bytes)]
    pub budget: u64,

    /// What to grow.
    #[arg(long, value_enum, default_value = "resolution")]
    pub vary: Vary,

    /// Width:height of the image when varying the resolution (default: the
    /// model's input); the height is the size searched.
    #[arg(long, value_name = "W:H", value_parser = super::parse_aspect)]
    pub aspect: Option<(u64, u64)>,

    /// Memory the runtime takes before the model (CUDA context, framework), left out of the budget.
    #[arg(long, value_name = "SIZE", default_value = "0", value_parser = crate::units::parse_bytes)]
    pub reserve: u64,

    /// Largest size (or batch) to consider.
    #[arg(long, value_name = "N", default_value_t = 1 << 16)]
    pub max: u64,

    /// Write JSON instead of text.
    #[arg(long)]
    pub json: bool,

    /// Print no warnings on standard error.
    #[arg(long, short = 'q')]
    pub quiet: bool,

    #[command(flatten)]
    pub memory: MemoryArgs,
}


/// The input being varied: its name and dims at the start, and the aspect.
#[derive(Clone, Debug)]
pub(crate) struct Base {
    pub name: String,
    pub dims: Vec<u64>,
    /// Width : height.
    pub aspect: (u64, u64),
}

impl Base {
    /// Loads the model as given and reads its first input's shape.
    pub(crate) fn new(args: &ModelArgs, settings: &MemorySettings, aspect: Option<(u64, u64)>) -> Result<Base> {
        let graph = load_model(args)?;
        if settings.scenarios.contains(&memory::Scenario::StyleTransfer) {
            memory::resolve_loss_layers(&graph, &settings.loss_layers).map_err(anyhow::Error::msg)?;
        }
        let Some(&t) = graph.inputs.first() else { bail!("the model declares no input to grow") };
        let tensor = graph.tensor(t);
        let Some(shape) = tensor.shape.as_ref() else {
            bail!(
                "input \"{}\" has no fixed shape: give the starting one with --input {}=NxCxHxW",
                tensor.name,
                tensor.name
            )
        };
        let dims = shape.dims().to_vec();
        let aspect = aspect.unwrap_or_else(|| {
            if dims.len() >= 4 {
                (dims[dims.len() - 1].max(1), dims[dims.len() - 2].max(1))
            } else {
                (1, 1)
            }
        });
        Ok(Base { name: tensor.name.clone(), dims, aspect })
    }

    /// The size this input has now.
    pub(crate) fn start(&self, vary: Vary) -> u64 {
        match vary {
            Vary::Batch => self.dims.first().copied().unwrap_or(1).max(1),
            Vary::Resolution => self.dims.get(self.dims.len().wrapping_sub(2)).copied().unwrap_or(1).max(1),
        }
    }

    /// The dims at `size`: the batch, or height = size and width = ⌈size·W/H⌉.
    pub(crate) fn dims_at(&self, vary: Vary, size: u64) -> Result<Vec<u64>> {
        let mut d = self.dims.clone();
        match vary {
            Vary::Batch => {
                if d.is_empty() {
                    bail!("input \"{}\" is a scalar: no batch to vary", self.name);
                }
                d[0] = size;
            }
            Vary::Resolution => {
                if d.len() < 3 {
                    bail!("input \"{}\" {:?} has no spatial axes to grow: use --vary batch", self.name, self.dims);
                }
                let n = d.len();
                let (w, h) = self.aspect;
                d[n - 2] = size;
                d[n - 1] = size.saturating_mul(w).div_ceil(h).max(1);
            }
        }
        Ok(d)
    }
}

/// One probe: the input string that reproduces it and the peak.
#[derive(Clone, Debug)]
pub(crate) struct Probe {
    pub size: u64,
    pub input: String,
    /// The largest peak over the scenarios computed.
    pub peak_bytes: u64,
    pub scenario: &'static str,
    pub report: MemoryReport,
}

/// Loads the model with the varied input at `size` and runs the memory pass.
pub(crate) fn probe(args: &ModelArgs, settings: &MemorySettings, base: &Base, vary: Vary, size: u64) -> Result<Probe> {
    let dims = base.dims_at(vary, size)?;
    let mut a = args.clone();
    let spec = InputSpec { name: Some(base.name.clone()), dims: dims.clone() };
    a.inputs.retain(|s| s.name.as_deref().is_some_and(|n| n != base.name));
    a.inputs.insert(0, spec);
    if vary == Vary::Batch && a.batch.is_some() {
        a.batch = Some(size);
    }
    let graph = load_model(&a)?;
    super::check_fits(&a, &graph, settings)?;
    let report = memory::analyse(&graph, settings);
    let (peak_bytes, scenario) = report
        .scenarios
        .iter()
        .map(|s| (s.peak_bytes, s.scenario.as_str()))
        .max_by_key(|p| p.0)
        .unwrap_or((0, "none"));
    let input = format!("{}={}", base.name, dims.iter().map(|d| d.to_string()).collect::<Vec<_>>().join("x"));
    Ok(Probe { size, input, peak_bytes, scenario, report })
}

/// The outcome of the search.
pub(crate) struct FitResult {
    pub fits: Option<Probe>,
    pub next: Option<Probe>,
    pub probes: usize,
}

/// Largest size in [1, max] with `peak + reserve <= budget`, assuming the peak
/// grows with the size; sizes the model cannot take count as not fitting.
pub(crate) fn search(
    args: &ModelArgs,
    settings: &MemorySettings,
    base: &Base,
    vary: Vary,
    budget: u64,
    reserve: u64,
    max: u64,
) -> Result<FitResult> {
    let mut probes = 0usize;
    let mut run = |size: u64| -> Option<Probe> {
        probes += 1;
        probe(args, settings, base, vary, size).ok()
    };
    let fits = |p: &Option<Probe>| p.as_ref().is_some_and(|p| p.peak_bytes.saturating_add(reserve) <= budget);
    let max = max.max(1);
    let start = base.start(vary).clamp(1, max);
    // Bracket: lo fits (or is None), hi does not (or is None = above max).
    let (mut lo, mut hi): (Option<Probe>, Option<Probe>);
    let first = run(start);
    if fits(&first) {
        lo = first;
        hi = None;
        let mut s = start;
        while s < max {
            s = s.saturating_mul(2).min(max);
            let p = run(s);
            if fits(&p) {
                lo = p;
            } else {
                hi = p.or_else(|| Some(Probe { size: s, input: String::new(), peak_bytes: u64::MAX, scenario: "none", report: MemoryReport::default() }));
                break;
            }
        }
    } else {
        hi = first.or_else(|| Some(Probe { size: start, input: String::new(), peak_bytes: u64::MAX, scenario: "none", report: MemoryReport::default() }));
        lo = None;
        let mut s = start;
        while s > 1 {
            s /= 2;
            let p = run(s);
            if fits(&p) {
                lo = p;
                break;
            }
            if p.is_some() {
                hi = p;
            } else {
                // The model cannot take this size; nothing smaller will do better.
                break;
            }
        }
    }
    // Binary search between the bracket.
    if let (Some(l), Some(h)) = (lo.as_ref(), hi.as_ref()) {
        let (mut a, mut b) = (l.size, h.size);
        let mut best_lo = lo.clone();
        let mut best_hi = hi.clone();
        while b - a > 1 {
            let m = a + (b - a) / 2;
            let p = run(m);
            if fits(&p) {
                a = m;
                best_lo = p;
            } else {
                b = m;
                best_hi = p.or_else(|| Some(Probe { size: m, input: String::new(), peak_bytes: u64::MAX, scenario: "none", report: MemoryReport::default() }));
            }
        }
        lo = best_lo;
        hi = best_hi;
    }
    // `next` is a real probe one step above (or the smallest size tried).
    let next = match (&lo, &hi) {
        (Some(l), _) if l.size >= max => None,
        (Some(l), Some(h)) if h.size == l.size + 1 && !h.input.is_empty() => Some(h.clone()),
        (Some(l), _) => run(l.size + 1),
        (None, Some(h)) if !h.input.is_empty() => Some(h.clone()),
        (None, _) => None,
    };
    Ok(FitResult { fits: lo, next, probes })
}

fn probe_json(p: &Probe) -> serde_json::Value {
    json!({ "input": p.input, "size": p.size, "peak_bytes": p.peak_bytes, "scenario": p.scenario })
}

pub fn run(args: FitArgs) -> Result<ExitCode> {
    let settings = args.memory.settings();
    if args.reserve >= args.budget {
        bail!("--reserve {} leaves nothing of --budget {}", format_bytes(args.reserve), format_bytes(args.budget));
    }
    let base = Base::new(&args.model, &settings, args.aspect)?;
    let result = search(&args.model, &settings, &base, args.vary, args.budget, args.reserve, args.max)?;
    if !args.quiet {
        if let Some(p) = result.fits.as_ref().or(result.next.as_ref()) {
            super::print_warnings(&p.report.warnings);
        }
    }
    let mut out = Vec::new();
    if args.json {
        let value = json!({
            "model": args.model.model.display().to_string(),
            "budget_bytes": args.budget,
            "reserve_bytes": args.reserve,
            "vary": args.vary.as_str(),
            "profile": settings.profile.name,
            "scenarios": settings.scenarios.iter().map(|s| s.as_str()).collect::<Vec<_>>(),
            "fits": result.fits.as_ref().map(probe_json),
            "next": result.next.as_ref().map(probe_json),
            "probes": result.probes,
        });
        serde_json::to_writer_pretty(&mut out, &value).context("serialising JSON")?;
        out.push(b'\n');
        out = crate::report::escape::json(out);
    } else {
        let scen: Vec<&str> = settings.scenarios.iter().map(|s| s.as_str()).collect();
        writeln!(
            out,
            "budget {} ({} bytes){}; {} peak, profile {}",
            format_bytes(args.budget),
            args.budget,
            if args.reserve > 0 { format!(" less {} reserved", format_bytes(args.reserve)) } else { String::new() },
            scen.join("/"),
            settings.profile.name
        )?;
        match &result.fits {
            Some(p) => writeln!(out, "fits:      --input {}  peak {} ({} bytes, {})", printable(&p.input), format_bytes(p.peak_bytes), p.peak_bytes, p.scenario)?,
            None => writeln!(out, "fits:      nothing: even the smallest {} tried does not fit", args.vary.as_str())?,
        }
        if let Some(p) = &result.next {
            writeln!(out, "next step: --input {}  peak {} ({} bytes, {}): does not fit", printable(&p.input), format_bytes(p.peak_bytes), p.peak_bytes, p.scenario)?;
        } else if result.fits.is_some() {
            writeln!(out, "next step: none below --max {}", args.max)?;
        }
        writeln!(out, "({} probes)", result.probes)?;
    }
    std::io::stdout().write_all(&out).context("writing to standard output")?;
    Ok(ExitCode::Success)
}
