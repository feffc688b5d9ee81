//! The command line: clap definitions, turning flags into load options, and
//! running a subcommand. Only this module prints, and only `main` exits.

pub mod exit;
pub mod output;

use std::io::Write;
use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::load::{self, DimBinding, InputSpec, LoadError, LoadOptions, Phase};
use crate::report::{self, Source};
use exit::ExitCode;

const AFTER_HELP: &str = "\
Exit codes: 0 success; 1 the analysis ran but a budget assertion failed; 2 nnmem could not run \
(bad arguments, unreadable or malformed model).
Sizes in tables are binary: KiB = 1024 B, MiB = 2^20 B, GiB = 2^30 B. JSON byte counts are exact integers.";

/// Why does this network need so much memory, and will it fit?
///
/// nnmem reads an ONNX model or a Caffe prototxt, recovers every layer's real
/// tensor shapes, and reports parameters and memory.
#[derive(Parser, Debug)]
#[command(name = "nnmem", version, about, long_about, after_help = AFTER_HELP)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Show every layer's output shape, parameters and memory.
    Inspect(InspectArgs),
}

#[derive(Args, Debug, Clone)]
pub struct ModelArgs {
    /// The model: a Caffe .prototxt, an .onnx file, or a .caffemodel.
    pub model: PathBuf,

    /// Set or override an input's shape: NAME=DIMS (e.g. data=1x3x512x512), or
    /// just DIMS for the first input. Repeat for several inputs.
    #[arg(long = "input", short = 'i', value_name = "[NAME=]DIMS", value_parser = parse_input)]
    pub inputs: Vec<InputSpec>,

    /// Replace the batch (first) dimension of every input.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub batch: Option<u64>,

    /// Bind a symbolic ONNX dimension, e.g. --dim batch=8 --dim height=1024.
    #[arg(long = "dim", value_name = "SYMBOL=N", value_parser = parse_dim)]
    pub dims: Vec<DimBinding>,

    /// Caffe phase whose layers are built (include/exclude rules). Default: the
    /// file's `state { phase }`, else test.
    #[arg(long, value_enum)]
    pub phase: Option<PhaseArg>,

    /// Caffe: a .caffemodel whose blob shapes are checked against the prototxt.
    #[arg(long, value_name = "FILE")]
    pub weights: Option<PathBuf>,
}

#[derive(Args, Debug)]
pub struct InspectArgs {
    #[command(flatten)]
    pub model: ModelArgs,

    /// Write the JSON report (schema in docs/json-report.md) instead of the table.
    #[arg(long)]
    pub json: bool,

    /// Write the report to FILE (atomically) instead of standard output.
    #[arg(long, short = 'o', value_name = "FILE")]
    pub output: Option<PathBuf>,

    /// Print no warnings on standard error.
    #[arg(long, short = 'q')]
    pub quiet: bool,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum PhaseArg {
    Test,
    Train,
}

fn parse_input(s: &str) -> Result<InputSpec, String> {
    InputSpec::parse(s)
}

fn parse_dim(s: &str) -> Result<DimBinding, String> {
    DimBinding::parse(s)
}

impl ModelArgs {
    pub fn load_options(&self) -> LoadOptions {
        LoadOptions {
            inputs: self.inputs.clone(),
            batch: self.batch,
            dims: self.dims.clone(),
            phase: self.phase.map(|p| match p {
                PhaseArg::Test => Phase::Test,
                PhaseArg::Train => Phase::Train,
            }),
            weights: self.weights.clone(),
        }
    }
}

/// Run the parsed command line; the exit code tells how it went.
pub fn run(cli: Cli) -> Result<ExitCode> {
    match cli.command {
        Command::Inspect(args) => inspect(args),
    }
}

fn load_model(args: &ModelArgs) -> Result<crate::graph::Graph> {
    load::load(&args.model, &args.load_options()).map_err(|e| match e {
        // Usage problems are not about the file: say so plainly.
        LoadError::Usage { message } => anyhow::anyhow!(message),
        other => anyhow::Error::new(other),
    })
}

fn inspect(args: InspectArgs) -> Result<ExitCode> {
    let graph = load_model(&args.model)?;
    if !args.quiet {
        print_warnings(&graph.warnings);
    }
    let path = args.model.model.display().to_string();
    let source = Source { path: &path };
    let mut buffer = Vec::new();
    if args.json {
        let report = report::json::build(&graph, &source);
        serde_json::to_writer_pretty(&mut buffer, &report).context("serialising the JSON report")?;
        buffer.push(b'\n');
    } else {
        report::table::write(&mut buffer, &graph, &source, &[]).context("rendering the table")?;
    }
    output::emit(&buffer, args.output.as_deref(), &[args.model.model.as_path()])?;
    Ok(ExitCode::Success)
}

fn print_warnings(warnings: &[String]) {
    let stderr = std::io::stderr();
    let mut err = stderr.lock();
    for w in warnings {
        let _ = writeln!(err, "nnmem: warning: {w}");
    }
}
