//! `nnmem fit`: flags and printing; the search is `analysis::fit`.

use std::io::Write;

use anyhow::{bail, Context, Result};
use clap::Args;

use super::exit::ExitCode;
use super::{MemoryArgs, ModelArgs};
use nnmem::analysis::fit::{self, Axis, FitRequest, Knob};
use nnmem::report::json::{FitJson, ProbeJson, SCHEMA_VERSION};
use nnmem::units::format_bytes;

#[derive(Args, Debug)]
#[command(after_help = "Examples:
  nnmem fit vgg19.prototxt --budget 8GiB --scenario style-transfer
  nnmem fit resnet50.onnx --budget 16GiB --vary batch --dim height=224 --dim width=224
  nnmem fit gpt.onnx --budget 24GiB --vary seq --dim batch=1
  nnmem fit decoder.onnx --budget 24GiB --scenario decode --vary past --dim batch=1")]
pub struct FitArgs {
    #[command(flatten)]
    pub model: ModelArgs,

    /// Memory available, e.g. 8GiB, 12GB (KB/MB/GB powers of 10, KiB/MiB/GiB of 2).
    #[arg(long, value_name = "SIZE", value_parser = nnmem::units::parse_bytes)]
    pub budget: u64,

    /// What to grow: `resolution` (image height, width following --aspect),
    /// `batch`, or the name of any free symbol of the model (e.g. a sequence length).
    #[arg(long, value_name = "WHAT", default_value = "resolution")]
    pub vary: String,

    /// Width:height of the image when varying the resolution (default: the
    /// model's input); the height is the size searched.
    #[arg(long, value_name = "W:H", value_parser = super::parse_aspect)]
    pub aspect: Option<(u64, u64)>,

    /// Memory the runtime takes before the model (CUDA context, framework), left out of the budget.
    #[arg(long, value_name = "SIZE", default_value = "0", value_parser = nnmem::units::parse_bytes)]
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

/// The knob of `--vary` (and `--aspect`), resolved on the model as loaded with the flags.
pub(crate) fn axis(model: &ModelArgs, settings: &nnmem::memory::MemorySettings, knob: Knob) -> Result<(Axis, nnmem::load::LoadOptions, Vec<String>)> {
    let base = model.load_options()?;
    let first = super::analyse(model, settings)?;
    let options = nnmem::analysis::scenario_options(&base, settings);
    let axis = Axis::resolve(&first.graph, &options, &knob)?;
    Ok((axis, base, first.notes))
}

pub fn run(args: FitArgs) -> Result<ExitCode> {
    let settings = args.memory.settings();
    if args.reserve >= args.budget {
        bail!("--reserve {} leaves nothing of --budget {}", format_bytes(args.reserve), format_bytes(args.budget));
    }
    let knob = match Knob::parse(&args.vary) {
        Knob::Resolution { .. } => Knob::Resolution { input: None, aspect: args.aspect },
        k => k,
    };
    let (axis, base, notes) = axis(&args.model, &settings, knob)?;
    let req = FitRequest { budget: args.budget, reserve: args.reserve, max: args.max };
    let result = fit::fit(&args.model.model, &base, &settings, &axis, &req)?;
    let placement = result
        .fits
        .as_ref()
        .or(result.next.as_ref())
        .and_then(|p| p.analysed.memory.scenarios.iter().find_map(|s| s.settings.loss_placement))
        .map(|p| p.as_str());
    if !args.quiet {
        if let Some(p) = result.fits.as_ref().or(result.next.as_ref()) {
            super::print_warnings(&p.analysed.graph.warnings);
            super::print_warnings(&p.analysed.memory.warnings);
        }
        super::print_notes(&notes);
    }
    let mut out = Vec::new();
    if args.json {
        let value = FitJson {
            schema_version: SCHEMA_VERSION,
            kind: "fit",
            model: args.model.model.display().to_string(),
            budget_bytes: args.budget,
            reserve_bytes: args.reserve,
            vary: axis.knob.label(),
            profile: settings.profile.name,
            scenarios: settings.scenarios.iter().map(|s| s.as_str()).collect(),
            loss_placement: placement,
            fits: result.fits.as_ref().map(ProbeJson::from),
            next: result.next.as_ref().map(ProbeJson::from),
            probes: result.probes,
            notes,
        };
        serde_json::to_writer_pretty(&mut out, &value).context("serialising JSON")?;
        out.push(b'\n');
        out = nnmem::report::escape::json(out);
    } else {
        let scen: Vec<&str> = settings.scenarios.iter().map(|s| s.as_str()).collect();
        writeln!(
            out,
            "budget {} ({} bytes){}; {} peak, profile {}{}, varying {}",
            format_bytes(args.budget),
            args.budget,
            if args.reserve > 0 { format!(" less {} reserved", format_bytes(args.reserve)) } else { String::new() },
            scen.join("/"),
            settings.profile.name,
            placement.map(|p| format!(", losses {p}")).unwrap_or_default(),
            axis.knob.label()
        )?;
        match &result.fits {
            Some(p) => writeln!(out, "fits:      {}  peak {} ({} bytes, {})", nnmem::units::printable(&p.flags.join(" ")), format_bytes(p.peak_bytes), p.peak_bytes, p.scenario)?,
            None => writeln!(out, "fits:      nothing: even the smallest {} tried does not fit", axis.knob.label())?,
        }
        if let Some(p) = &result.next {
            writeln!(out, "next step: {}  peak {} ({} bytes, {}): does not fit", nnmem::units::printable(&p.flags.join(" ")), format_bytes(p.peak_bytes), p.peak_bytes, p.scenario)?;
        } else if result.fits.is_some() {
            writeln!(out, "next step: none below --max {}", args.max)?;
        }
        writeln!(out, "({} probes)", result.probes)?;
        if let Some(b) = settings.profile.runtime_baseline {
            writeln!(
                out,
                "the runtime itself takes about {} more ({}), in no figure above: --reserve {}MiB counts it",
                format_bytes(b.bytes),
                b.what,
                b.bytes >> 20
            )?;
        }
    }
    std::io::stdout().write_all(&out).context("writing to standard output")?;
    Ok(ExitCode::Success)
}
