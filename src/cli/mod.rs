//! The command line: clap definitions, turning flags into load options, and
//! running a subcommand. Only this module prints, and only `main` exits.

pub mod audit;
pub mod diff;
pub mod exit;
pub mod explain;
pub mod fit;
pub mod output;
pub mod progress;
pub mod sweep;

use std::io::Write;
use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand, ValueEnum};

use nnmem::load::{CaffePhase, DimBinding, InputSpec, LoadError, LoadOptions};
use nnmem::report::{self, Source};
use exit::ExitCode;


const INSPECT_EXAMPLES: &str = "\
Examples:
  nnmem inspect vgg19.prototxt --input data=1x3x512x512
  nnmem inspect resnet50.onnx --dim batch=8 --dim height=224 --dim width=224 --optimizer adam
  nnmem inspect vit.onnx --input 1x3x224x224 --depth 2
  nnmem inspect model.onnx --input 1x3x224x224 --json --assert 'training.peak < 8GiB'
  nnmem inspect decoder.onnx --scenario decode --dim past=1024 --assert 'decode.peak < 24GiB'
  nnmem inspect vgg19.prototxt --scenario style-transfer --format html -o report.html";

const TOP_EXAMPLES: &str = "\
Examples:
  nnmem inspect vgg19.prototxt --input data=1x3x512x512
  nnmem fit vgg19.prototxt --budget 8GiB --scenario style-transfer
  nnmem audit models/ --dim batch=1 --assert 'training.peak < 16GiB'
Each command's --help has more.

Exit codes: 0 success; 1 the analysis ran but a budget assertion failed; 2 nnmem could not run \
(bad arguments, unreadable or malformed model, or a budget on a figure that is incomplete).
Sizes in tables are binary: KiB = 1024 B, MiB = 2^20 B, GiB = 2^30 B. JSON byte counts are exact integers.";

/// Why does this network need so much memory, and will it fit?
///
/// nnmem reads an ONNX model or a Caffe prototxt, recovers every layer's real
/// tensor shapes, and reports parameters and memory.
#[derive(Parser, Debug)]
#[command(name = "nnmem", version, about, long_about, after_help = TOP_EXAMPLES)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Show every layer's output shape, parameters and memory.
    #[command(after_help = INSPECT_EXAMPLES)]
    Inspect(InspectArgs),
    /// Inspect every .onnx and .prototxt under a folder, in parallel, and summarise.
    Audit(audit::AuditArgs),
    /// Compare two models, or one model under two settings: params, peaks, and
    /// the layers whose memory changed most.
    Diff(diff::DiffArgs),
    /// The largest input size (or batch) whose predicted peak fits a memory budget.
    Fit(fit::FitArgs),
    /// Peaks and breakdowns over a list of input sizes or batches.
    Sweep(sweep::SweepArgs),
    /// From weights + activations to the real peak, step by step.
    Explain(explain::ExplainArgs),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    #[command(after_help = "Examples:
  nnmem completions bash > ~/.local/share/bash-completion/completions/nnmem
  nnmem completions zsh > ~/.zfunc/_nnmem")]
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff) to standard output.
    #[command(after_help = "Example:
  nnmem manpage > nnmem.1 && man ./nnmem.1")]
    Manpage,
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

    /// Bind a free (symbolic) dimension: an input's, e.g. --dim batch=8 --dim height=1024, or a
    /// count a Caffe layer sets at run time, e.g. --dim R=300 (region proposals).
    /// `sweep` also takes a list for one symbol: --dim seq=128,256,512.
    #[arg(long = "dim", value_name = "SYMBOL=N", value_parser = parse_dim)]
    pub dims: Vec<DimArg>,

    /// Caffe phase whose layers are built (include/exclude rules). Default: the
    /// file's `state { phase }`, else test.
    #[arg(long, value_enum)]
    pub phase: Option<PhaseArg>,

    /// Caffe: a .caffemodel whose blob shapes are checked against the prototxt.
    #[arg(long, value_name = "FILE")]
    pub weights: Option<PathBuf>,

    /// ONNX: count an embedding table and an output projection weight of the same dims (a note
    /// names them: the TorchScript exporter writes a tied embedding twice) as one weight —
    /// parameters, gradient and optimizer state once. Default: count what the file holds (an
    /// untied model such as Llama has the same two shapes).
    #[arg(long)]
    pub tie_embeddings: bool,
}

#[derive(Args, Debug)]
pub struct InspectArgs {
    #[command(flatten)]
    pub model: ModelArgs,

    /// Output format: table (aligned text), json (docs/json-report.md), csv,
    /// markdown, or html (one self-contained page).
    #[arg(long, value_enum, default_value = "table")]
    pub format: Format,

    /// Same as --format json.
    #[arg(long, conflicts_with = "format")]
    pub json: bool,

    /// Fail (exit 1) unless the report satisfies this budget, e.g.
    /// 'training.peak < 8GiB', 'inference.workspace <= 512MiB', 'decode.peak < 24GiB', 'params < 25M'.
    /// KB/MB/GB are powers of 10, KiB/MiB/GiB powers of 2. Repeatable.
    #[arg(long = "assert", value_name = "GATE", value_parser = parse_gate)]
    pub gates: Vec<report::gate::Gate>,

    /// Colour in the table: auto (only on a terminal, and not when NO_COLOR is set), always, never.
    #[arg(long, value_enum, default_value = "auto")]
    pub color: ColorArg,

    /// Write the report to FILE (atomically) instead of standard output.
    #[arg(long, short = 'o', value_name = "FILE")]
    pub output: Option<PathBuf>,

    /// Table: every memory column of every scenario (saved, workspace, live
    /// after), no width limit. The default fits 100 columns with one memory column.
    #[arg(long)]
    pub wide: bool,

    /// Table: one row per module scope cut at depth N (ONNX node names
    /// `/layer1/layer1.0/conv1/Conv`, Caffe names `inception_3a/1x1`), params
    /// and outputs summed, the largest live total shown.
    #[arg(long, value_name = "N", conflicts_with = "group_by", value_parser = clap::value_parser!(u64).range(1..))]
    pub depth: Option<u64>,

    /// Table: one row per op type.
    #[arg(long, value_enum, value_name = "WHAT")]
    pub group_by: Option<GroupBy>,

    /// Table: also the nodes that only compute shapes or constants (Shape,
    /// Constant, Gather on shapes…), hidden by default.
    #[arg(long)]
    pub all_nodes: bool,

    /// Print no warnings on standard error.
    #[arg(long, short = 'q')]
    pub quiet: bool,

    #[command(flatten)]
    pub memory: MemoryArgs,
}

/// Memory-pass settings (docs/memory-model.md).
#[derive(Args, Debug, Clone)]
pub struct MemoryArgs {
    /// Which memory scenarios to compute.
    #[arg(long, value_enum, default_value = "all")]
    pub scenario: ScenarioArg,

    /// Optimizer whose state is kept: sgd, momentum, adam, adamw, lbfgs[:HISTORY]
    /// [default: sgd for training; lbfgs:100 for style-transfer, as the PyTorch
    /// neural-transfer tutorial and neural-style run it].
    #[arg(long, value_name = "NAME", value_parser = parse_optimizer)]
    pub optimizer: Option<nnmem::memory::Optimizer>,

    /// Element type of weights and activations: f32, f16, bf16 or f64.
    #[arg(long, value_name = "TYPE", default_value = "f32", value_parser = parse_dtype())]
    pub dtype: nnmem::graph::DType,

    /// Half-precision activations with f32 master weights, gradients and optimizer state.
    #[arg(long)]
    pub mixed_precision: bool,

    /// Backend whose allocation behaviour is modelled: pytorch (PyTorch eager on
    /// CPU, oneDNN), caffe (BVLC Caffe), torch-nn (Lua Torch nn, neural-style's
    /// default), cudnn (PyTorch on a CUDA GPU), tiny-dnn (per-worker copies).
    #[arg(long, value_name = "NAME", default_value = "pytorch", value_parser = parse_profile())]
    pub profile: nnmem::memory::Profile,

    /// Worker threads, for backends whose buffers are per worker (default 1;
    /// 8 for --profile tiny-dnn, its CNN_TASK_SIZE).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub threads: Option<u32>,

    /// Style transfer: layer or tensor names whose Gram matrices form the style
    /// loss (default relu1_1,relu2_1,relu3_1,relu4_1,relu5_1 where they exist).
    #[arg(long, value_name = "NAMES", value_delimiter = ',')]
    pub style_layers: Vec<String>,

    /// Style transfer: layer or tensor names of the content loss (default relu4_2 where it exists).
    #[arg(long, value_name = "NAMES", value_delimiter = ',')]
    pub content_layers: Vec<String>,

    /// Style transfer: where the losses are computed. in-net: loss modules
    /// inserted after the tapped layers, as the PyTorch neural-transfer tutorial
    /// and neural-style do (each term's backward runs when backward reaches its
    /// layer); after-forward: the model returns its taps and the losses are
    /// computed afterwards. Default: after-forward when every loss layer is a
    /// graph output, else in-net.
    #[arg(long, value_enum, value_name = "WHERE")]
    pub loss_placement: Option<PlacementArg>,

    /// Kernel for scaled_dot_product_attention calls (found by their export
    /// spelling) and single attention nodes (ONNX Attention, com.microsoft
    /// GroupQueryAttention and MultiHeadAttention): fused keeps no seq×seq
    /// scores (PyTorch's flash kernels), math runs the products, softmax and
    /// dropout the ops spell (a single node: its scores and probabilities,
    /// f32). Default: the
    /// profile's (fused for pytorch and cudnn; pytorch on CPU still runs the
    /// math path for a call with dropout in training). Attention a model writes
    /// out itself always runs as written.
    #[arg(long, value_enum, value_name = "KERNEL")]
    pub attention: Option<AttentionArg>,
}

/// `--attention`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum AttentionArg {
    Fused,
    Math,
}

/// `--loss-placement`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum PlacementArg {
    InNet,
    AfterForward,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum ScenarioArg {
    Inference,
    Training,
    StyleTransfer,
    /// One generation step of a decoder with a KV cache (past keys/values as
    /// inputs) at the bound past length, with the memory added per generated
    /// token and the step peak's growth per token of past.
    Decode,
    /// Inference and training, and decode when the model has a KV cache.
    All,
}

impl MemoryArgs {
    pub fn settings(&self) -> nnmem::memory::MemorySettings {
        use nnmem::memory::Scenario;
        nnmem::memory::MemorySettings {
            scenarios: match self.scenario {
                ScenarioArg::Inference => vec![Scenario::Inference],
                ScenarioArg::Training => vec![Scenario::Training],
                ScenarioArg::StyleTransfer => vec![Scenario::StyleTransfer],
                ScenarioArg::Decode => vec![Scenario::Decode],
                ScenarioArg::All => vec![Scenario::Inference, Scenario::Training, Scenario::Decode],
            },
            decode_if_cached: matches!(self.scenario, ScenarioArg::All),
            optimizer: self.optimizer.unwrap_or(match self.scenario {
                ScenarioArg::StyleTransfer => nnmem::memory::Optimizer::Lbfgs { history: 100 },
                _ => nnmem::memory::Optimizer::Sgd,
            }),
            dtype: self.dtype,
            mixed_precision: self.mixed_precision,
            profile: {
                let mut p = self.profile.clone();
                if let Some(a) = self.attention {
                    p.attention.kernel = match a {
                        AttentionArg::Fused => nnmem::memory::AttentionKernel::Fused,
                        AttentionArg::Math => nnmem::memory::AttentionKernel::Math,
                    };
                }
                p
            },
            threads: self.threads.unwrap_or(self.profile.default_threads),
            loss_layers: nnmem::memory::LossLayers {
                style: self.style_layers.clone(),
                content: self.content_layers.clone(),
                placement: self.loss_placement.map(|p| match p {
                    PlacementArg::InNet => nnmem::memory::LossPlacement::InNet,
                    PlacementArg::AfterForward => nnmem::memory::LossPlacement::AfterForward,
                }),
            },
        }
    }
}

fn parse_optimizer(s: &str) -> Result<nnmem::memory::Optimizer, String> {
    nnmem::memory::Optimizer::parse(s)
        .ok_or_else(|| format!("unknown optimizer \"{s}\": use sgd, momentum, adam, adamw or lbfgs[:HISTORY]"))
}

/// `--dtype`: the four names, listed by `--help`.
fn parse_dtype() -> impl clap::builder::TypedValueParser<Value = nnmem::graph::DType> {
    use clap::builder::TypedValueParser;
    clap::builder::PossibleValuesParser::new(["f32", "f16", "bf16", "f64"])
        .map(|s| nnmem::memory::parse_dtype(&s).unwrap_or(nnmem::graph::DType::F32))
}

/// `--profile`: exactly the names in `Profile::NAMES`, listed by `--help`.
fn parse_profile() -> impl clap::builder::TypedValueParser<Value = nnmem::memory::Profile> {
    use clap::builder::TypedValueParser;
    clap::builder::PossibleValuesParser::new(nnmem::memory::Profile::NAMES)
        .map(|s| nnmem::memory::Profile::by_name(&s).unwrap_or_default())
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Table,
    Json,
    Csv,
    Markdown,
    Html,
}

/// What `--group-by` folds rows by.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum GroupBy {
    /// One row per op type.
    Type,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ColorArg {
    Auto,
    Always,
    Never,
}

impl ColorArg {
    /// Whether to colour standard output.
    pub fn enabled(self) -> bool {
        use std::io::IsTerminal;
        match self {
            ColorArg::Always => true,
            ColorArg::Never => false,
            ColorArg::Auto => std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()) && std::io::stdout().is_terminal(),
        }
    }
}

/// `W:H` with both sides whole numbers above 0 (fit and sweep's --aspect).
pub(crate) fn parse_aspect(s: &str) -> Result<(u64, u64), String> {
    let (w, h) = s.split_once(':').ok_or_else(|| format!("\"{s}\": expected W:H, e.g. 4:3"))?;
    match (w.trim().parse::<u64>(), h.trim().parse::<u64>()) {
        (Ok(w), Ok(h)) if w > 0 && h > 0 => Ok((w, h)),
        _ => Err(format!("\"{s}\": expected two whole numbers above 0, e.g. 4:3")),
    }
}

fn parse_gate(s: &str) -> Result<report::gate::Gate, String> {
    report::gate::Gate::parse(s)
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum PhaseArg {
    Test,
    Train,
}

fn parse_input(s: &str) -> Result<InputSpec, String> {
    InputSpec::parse(s)
}

/// `--dim NAME=N`, or `NAME=A,B,C` where a command sweeps the symbol.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DimArg {
    pub symbol: String,
    pub values: Vec<u64>,
}

fn parse_dim(s: &str) -> Result<DimArg, String> {
    let (symbol, list) = s.split_once('=').ok_or_else(|| format!("\"{s}\": expected SYMBOL=VALUE, e.g. batch=8"))?;
    let mut values = Vec::new();
    for part in list.split(',') {
        values.push(DimBinding::parse(&format!("{symbol}={part}"))?.value);
    }
    Ok(DimArg { symbol: symbol.trim().to_string(), values })
}

impl ModelArgs {
    /// The load options, every `--dim` a single value (`sweep` takes lists apart first).
    pub fn load_options(&self) -> Result<LoadOptions> {
        let mut dims = Vec::with_capacity(self.dims.len());
        for d in &self.dims {
            match d.values.as_slice() {
                [v] => dims.push(DimBinding { symbol: d.symbol.clone(), value: *v }),
                _ => anyhow::bail!("--dim {}: one value here (lists are for `nnmem sweep`)", d.symbol),
            }
        }
        Ok(LoadOptions {
            inputs: self.inputs.clone(),
            batch: self.batch,
            dims,
            phase: self.phase.map(|p| match p {
                PhaseArg::Test => CaffePhase::Test,
                PhaseArg::Train => CaffePhase::Train,
            }),
            weights: self.weights.clone(),
            onnx_shapes: Default::default(),
            lenient_inputs: false,
            tie_embeddings: self.tie_embeddings,
        })
    }
}

/// Run the parsed command line; the exit code tells how it went.
pub fn run(cli: Cli) -> Result<ExitCode> {
    match cli.command {
        Command::Inspect(args) => inspect(args),
        Command::Audit(args) => audit::run(args),
        Command::Diff(args) => diff::run(args),
        Command::Fit(args) => fit::run(args),
        Command::Sweep(args) => sweep::run(args),
        Command::Explain(args) => explain::run(args),
        Command::Completions { shell } => {
            let mut cmd = <Cli as clap::CommandFactory>::command();
            clap_complete::generate(shell, &mut cmd, "nnmem", &mut std::io::stdout());
            Ok(ExitCode::Success)
        }
        Command::Manpage => {
            let mut page = Vec::new();
            clap_mangen::Man::new(<Cli as clap::CommandFactory>::command()).render(&mut page).context("rendering the man page")?;
            output::emit(&page, None, &[])?;
            Ok(ExitCode::Success)
        }
    }
}

/// A load error for people: usage problems are not about the file, so they say so plainly.
pub(crate) fn load_error(e: LoadError) -> anyhow::Error {
    match e {
        LoadError::Usage { message } => anyhow::anyhow!(message),
        other => anyhow::Error::new(other),
    }
}

/// Loads and analyses the model as the flags say.
pub(crate) fn analyse(args: &ModelArgs, settings: &nnmem::memory::MemorySettings) -> Result<nnmem::analysis::Analysed> {
    nnmem::analysis::run(&args.model, &args.load_options()?, settings).map_err(load_error)
}

fn inspect(args: InspectArgs) -> Result<ExitCode> {
    let settings = args.memory.settings();
    for gate in &args.gates {
        if let Some(needed) = gate.subject.scenario() {
            if !settings.scenarios.contains(&needed) {
                anyhow::bail!("--assert '{}' needs the {} scenario, which --scenario leaves out", gate.text, needed.as_str());
            }
        }
    }
    let a = analyse(&args.model, &settings)?;
    if !args.quiet {
        print_warnings(&a.graph.warnings);
        print_warnings(&a.memory.warnings);
        print_notes(&a.notes);
    }
    let path = args.model.model.display().to_string();
    let source = Source { path: &path };
    let format = if args.json { Format::Json } else { args.format };
    let mut buffer = Vec::new();
    match format {
        Format::Json => {
            serde_json::to_writer_pretty(&mut buffer, &report::json::inspect(&a, &source)).context("serialising the JSON report")?;
            buffer.push(b'\n');
            buffer = report::escape::json(buffer);
        }
        Format::Table | Format::Markdown => {
            let style = if format == Format::Markdown {
                report::table::Style::Markdown
            } else {
                report::table::Style::Text { color: args.color.enabled() && args.output.is_none() }
            };
            let options = report::table::TableOptions {
                wide: args.wide,
                all_nodes: args.all_nodes,
                grouping: match (args.depth, args.group_by) {
                    (Some(d), _) => report::table::Grouping::Depth(usize::try_from(d).unwrap_or(usize::MAX)),
                    (None, Some(GroupBy::Type)) => report::table::Grouping::Type,
                    (None, None) => report::table::Grouping::Nodes,
                },
                ..Default::default()
            };
            report::table::write_inspect(&mut buffer, &a, &source, style, &options).context("rendering the table")?;
        }
        Format::Csv => report::table::write_csv(&mut buffer, &a.graph, &a.memory).context("rendering CSV")?,
        Format::Html => report::html::write(&mut buffer, &a, &source).context("rendering HTML")?,
    }
    // Every file read or named is an input: the model, its --weights, its external data.
    let inputs: Vec<&std::path::Path> = std::iter::once(args.model.model.as_path())
        .chain(args.model.weights.as_deref())
        .chain(a.graph.linked_files.iter().map(|p| p.as_path()))
        .collect();
    output::emit(&buffer, args.output.as_deref(), &inputs)?;
    let code = check_gates(&args.gates, &a);
    // The process ends here: freeing a 10,000-node graph piece by piece costs
    // more than a tenth of the whole run, and the OS takes the memory back anyway.
    drop(inputs);
    std::mem::forget(a);
    Ok(code)
}

/// Checks every gate, printing one line per failure; the exit code: 2 when a
/// figure could not be checked (incomplete or not computed), else 1 when one
/// failed, else 0.
pub(crate) fn check_gates(gates: &[report::gate::Gate], a: &nnmem::analysis::Analysed) -> ExitCode {
    use report::gate::GateFailure;
    let mut code = ExitCode::Success;
    for gate in gates {
        match gate.evaluate(a) {
            Ok(()) => {}
            Err(GateFailure::Failed(reason)) => {
                eprintln!("nnmem: {reason}");
                if code == ExitCode::Success {
                    code = ExitCode::AssertionFailed;
                }
            }
            Err(GateFailure::Unavailable(reason)) => {
                eprintln!("nnmem: error: {}", nnmem::units::printable(&reason));
                code = ExitCode::Error;
            }
        }
    }
    code
}

/// Notes on stderr: choices nnmem made that change the figures.
pub(crate) fn print_notes(notes: &[String]) {
    let stderr = std::io::stderr();
    let mut err = stderr.lock();
    for n in notes {
        let _ = writeln!(err, "nnmem: note: {}", nnmem::units::printable(n));
    }
}

/// Warnings on stderr, names escaped for the terminal; the one place every subcommand prints them.
pub(crate) fn print_warnings(warnings: &[String]) {
    let stderr = std::io::stderr();
    let mut err = stderr.lock();
    for w in warnings {
        let _ = writeln!(err, "nnmem: warning: {}", nnmem::units::printable(w));
    }
}
