//! The memory pass: per-node and peak memory of a built graph for inference
//! and for one training step, under a backend profile.
//!
//! `analyse` is the entry point. It does no IO and returns values, not errors:
//! tensors without a known shape count as zero bytes and are named in a
//! warning. The rules are documented for users in docs/memory-model.md.
//!
//! Inside: `schedule` decides when each storage is born and dies (views and
//! in-place ops share storage; saved tensors live until their backward step),
//! `liveness` replays that schedule and finds the peak, `profiles` holds what
//! a backend allocates beyond the op facts, `training` the optimizer state and
//! precision. What each op's backward keeps, and how its result is stored, the
//! pass asks the op (`Op::memory_facts`, `Op::schedule_facts` in `src/ops/`).

mod fits;
mod liveness;
pub mod profiles;
mod schedule;
pub mod training;

pub use fits::check_fits;
pub use profiles::{AttentionKernel, ConvWorkspace, DropoutMask, Profile};
pub use schedule::ResolvedLoss;
pub use training::{parse_dtype, Optimizer, Precision};

use crate::graph::{DType, Graph, Shape, TensorId};
use std::fmt;

/// The shapes of `tensors` into `into` (cleared first, so that one buffer
/// serves every node); whether every one is known.
pub(crate) fn known_shapes<'g>(graph: &'g Graph, tensors: &[TensorId], into: &mut Vec<&'g Shape>) -> bool {
    into.clear();
    into.extend(tensors.iter().filter_map(|&t| graph.tensor(t).shape.as_ref()));
    into.len() == tensors.len()
}

/// What to compute.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scenario {
    /// One forward pass without gradients.
    Inference,
    /// Forward keeping what backward needs, backward, optimizer step.
    Training,
    /// Gatys neural style: frozen weights, the input image optimized, losses
    /// on chosen feature maps (docs/style-transfer.md).
    StyleTransfer,
    /// One generation step of a decoder with a KV cache at the bound past
    /// length: inference's schedule, with the cache's size and its growth per
    /// generated token (`ScenarioReport::decode`).
    Decode,
}

impl Scenario {
    /// The name reports and `--scenario` use.
    pub fn as_str(self) -> &'static str {
        match self {
            Scenario::Inference => "inference",
            Scenario::Training => "training",
            Scenario::StyleTransfer => "style-transfer",
            Scenario::Decode => "decode",
        }
    }

    /// Every scenario, in the order `--scenario all` computes them.
    pub const ALL: [Scenario; 4] = [Scenario::Inference, Scenario::Training, Scenario::StyleTransfer, Scenario::Decode];

    /// Whether the scenario runs backward (gradients, saved tensors, an optimizer).
    pub fn trains(self) -> bool {
        match self {
            Scenario::Inference | Scenario::Decode => false,
            Scenario::Training | Scenario::StyleTransfer => true,
        }
    }
}

/// Where the bytes at a moment go.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Category {
    /// Stored weights (and running statistics).
    Weights,
    /// Gradients of the weights.
    WeightGrads,
    /// The optimizer's per-weight state (momentum, Adam moments, L-BFGS history).
    OptimizerState,
    /// Forward results still to be read.
    Activations,
    /// Tensors kept for the backward pass.
    SavedForBackward,
    /// Gradients flowing backward through the activations.
    ActivationGrads,
    /// Transient scratch of a kernel (im2col, reorders, per-thread buffers).
    Workspace,
    /// The graph inputs (the image batch; style transfer's optimised image).
    Inputs,
}

impl Category {
    /// Every category, in the order reports list them.
    pub const ALL: [Category; 8] = [
        Category::Weights,
        Category::WeightGrads,
        Category::OptimizerState,
        Category::Activations,
        Category::SavedForBackward,
        Category::ActivationGrads,
        Category::Workspace,
        Category::Inputs,
    ];

    /// The name reports and gates use.
    pub fn as_str(self) -> &'static str {
        match self {
            Category::Weights => "weights",
            Category::WeightGrads => "weight_grads",
            Category::OptimizerState => "optimizer_state",
            Category::Activations => "activations",
            Category::SavedForBackward => "saved_for_backward",
            Category::ActivationGrads => "activation_grads",
            Category::Workspace => "workspace",
            Category::Inputs => "inputs",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// Bytes per category at one moment. Arithmetic saturates: a sum that does not
/// fit in 64 bits is not a real machine anyway.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Breakdown([u64; 8]);

impl Breakdown {
    /// Bytes of one category.
    pub fn get(&self, c: Category) -> u64 {
        self.0[c.index()]
    }

    /// Adds bytes to a category.
    pub fn add(&mut self, c: Category, bytes: u64) {
        let v = &mut self.0[c.index()];
        *v = v.saturating_add(bytes);
    }

    /// Removes bytes from a category (not below zero).
    pub fn sub(&mut self, c: Category, bytes: u64) {
        let v = &mut self.0[c.index()];
        *v = v.saturating_sub(bytes);
    }

    pub(crate) fn move_bytes(&mut self, from: Category, to: Category, bytes: u64) {
        self.sub(from, bytes);
        self.add(to, bytes);
    }

    /// Bytes of every category together.
    pub fn total(&self) -> u64 {
        self.0.iter().fold(0u64, |a, &b| a.saturating_add(b))
    }

    /// (category, bytes) for every category, in `Category::ALL` order.
    pub fn iter(&self) -> impl Iterator<Item = (Category, u64)> + '_ {
        Category::ALL.iter().map(move |&c| (c, self.get(c)))
    }
}

/// The step of the schedule.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// A node's forward step.
    Forward,
    /// After forward, the loss's gradient is created.
    Loss,
    /// A node's backward step.
    Backward,
    /// The optimizer step after backward.
    Step,
}

impl Phase {
    /// The name reports use.
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Forward => "forward",
            Phase::Loss => "loss",
            Phase::Backward => "backward",
            Phase::Step => "step",
        }
    }
}

impl fmt::Display for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The loss layers of the style-transfer scenario, by layer (node) or tensor
/// name. Empty lists take the neural-style defaults that exist in the graph.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LossLayers {
    /// Style loss layers.
    pub style: Vec<String>,
    /// Content loss layers.
    pub content: Vec<String>,
    /// `None`: decided from the graph (see `resolve_loss_layers`).
    pub placement: Option<LossPlacement>,
}

/// Where style transfer's losses are computed, which decides when backward
/// reaches them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum LossPlacement {
    /// Loss modules inside the net, right after each tapped layer (the PyTorch
    /// neural-transfer tutorial, neural-style): each term's backward runs when
    /// backward reaches its layer.
    #[default]
    InNet,
    /// The model returns its taps and the losses are computed after the forward
    /// pass: every term's backward runs before any layer's.
    AfterForward,
}

impl LossPlacement {
    /// The name `--loss-placement` and reports use.
    pub fn as_str(self) -> &'static str {
        match self {
            LossPlacement::InNet => "in-net",
            LossPlacement::AfterForward => "after-forward",
        }
    }
}

/// neural-style's default loss layers (VGG-19 names).
pub const DEFAULT_STYLE_LAYERS: [&str; 5] = ["relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1"];
/// neural-style's default content layer.
pub const DEFAULT_CONTENT_LAYERS: [&str; 1] = ["relu4_2"];

/// The tensor a loss layer name stands for: the first output of the node of
/// that name (a Caffe layer, even in place), else the tensor of that name (an
/// ONNX output such as `relu1_1`).
fn find_loss_tensor(graph: &Graph, name: &str) -> Option<TensorId> {
    if let Some(n) = graph.nodes.iter().find(|n| n.name == name) {
        if let Some(&t) = n.outputs.first() {
            return Some(t);
        }
    }
    graph.tensors.iter().position(|t| t.name == name).map(TensorId)
}

/// Resolves the loss layers. Names given explicitly must exist (the error
/// names the missing ones); empty lists take the defaults that exist, and when
/// none does, the graph outputs become content layers.
pub fn resolve_loss_layers(graph: &Graph, layers: &LossLayers) -> Result<ResolvedLoss, String> {
    let mut missing = Vec::new();
    let mut pick = |given: &[String], defaults: &[&str]| -> Vec<(String, TensorId)> {
        if given.is_empty() {
            defaults
                .iter()
                .filter_map(|n| find_loss_tensor(graph, n).map(|t| (n.to_string(), t)))
                .collect()
        } else {
            given
                .iter()
                .filter_map(|n| match find_loss_tensor(graph, n) {
                    Some(t) => Some((n.clone(), t)),
                    None => {
                        missing.push(n.clone());
                        None
                    }
                })
                .collect()
        }
    };
    let style = pick(&layers.style, &DEFAULT_STYLE_LAYERS);
    let mut content = pick(&layers.content, &DEFAULT_CONTENT_LAYERS);
    if !missing.is_empty() {
        return Err(format!(
            "style transfer: no layer or tensor named {} in the graph",
            missing.iter().map(|m| format!("\"{m}\"")).collect::<Vec<_>>().join(", ")
        ));
    }
    if style.is_empty() && content.is_empty() {
        content = graph.outputs.iter().map(|&t| (graph.tensor(t).name.clone(), t)).collect();
    }
    // A model that returns every tapped tensor as an output is run whole and
    // its losses computed afterwards; taps inside a net are where the loss
    // modules are inserted.
    let placement = layers.placement.unwrap_or_else(|| {
        let all_outputs = style.iter().chain(content.iter()).all(|(_, t)| graph.outputs.contains(t));
        if all_outputs {
            LossPlacement::AfterForward
        } else {
            LossPlacement::InNet
        }
    });
    Ok(ResolvedLoss { style, content, placement })
}

/// How to run the pass.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MemorySettings {
    /// The scenarios to compute.
    pub scenarios: Vec<Scenario>,
    /// Training's optimizer (its state per weight).
    pub optimizer: Optimizer,
    /// Element type of float tensors (weights and activations).
    pub dtype: DType,
    /// Half-precision activations and compute copies, f32 master weights,
    /// gradients of weights and optimizer state.
    pub mixed_precision: bool,
    /// The framework whose allocation rules apply.
    pub profile: Profile,
    /// Worker threads, for profiles whose buffers are per worker.
    pub threads: u32,
    /// Style transfer's loss layers.
    pub loss_layers: LossLayers,
    /// `Scenario::Decode` is computed only for a graph with a KV cache and
    /// left out otherwise (`--scenario all`); false: asking decode of a graph
    /// without one is an error (`analysis::run`).
    pub decode_if_cached: bool,
}

impl Default for MemorySettings {
    fn default() -> Self {
        MemorySettings {
            scenarios: vec![Scenario::Inference, Scenario::Training],
            optimizer: Optimizer::Sgd,
            dtype: DType::F32,
            mixed_precision: false,
            profile: Profile::pytorch(),
            threads: 1,
            loss_layers: LossLayers::default(),
            decode_if_cached: false,
        }
    }
}

/// One node's memory in one scenario.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NodeMemory {
    /// Bytes of its outputs (in-place and view outputs included, though they reuse storage).
    pub output_bytes: u64,
    /// Training: bytes of the tensors it keeps for backward (shared storages counted per node).
    pub saved_bytes: u64,
    /// Transient forward scratch (conv reorders, im2col, unused pool indices).
    pub workspace_bytes: u64,
    /// Total live bytes (weights and inputs included) once the node has run.
    pub live_bytes_after: u64,
    /// Training: transient scratch of its backward step.
    pub backward_workspace_bytes: u64,
    /// Training: total live bytes once its backward step has run.
    pub live_bytes_after_backward: Option<u64>,
    /// False when the scenario never runs the node (style transfer stops at
    /// the deepest loss layer); its figures are then zero.
    pub runs: bool,
    /// False for nodes that only compute shapes or constants (no activation
    /// memory; tables hide them unless asked).
    pub computes_data: bool,
}

/// What a scenario's figures leave out. A figure with anything left out is a
/// lower bound, never to be read (or gated) as the answer.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Completeness {
    /// Tensors the scenario needs whose size is unknown (counted as 0 bytes).
    pub unknown_tensors: usize,
    /// Nodes the scenario runs whose weights have an unknown size.
    pub unsized_weight_nodes: usize,
}

impl Completeness {
    /// Whether nothing is left out.
    pub fn is_complete(&self) -> bool {
        self.unknown_tensors == 0 && self.unsized_weight_nodes == 0
    }
}

/// The sums simpler tools print, to reconcile with them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NaiveSums {
    /// Every node's output, no reuse, in-place outputs counted again.
    pub activations_bytes: u64,
    /// "×2 for backward": twice the above.
    pub activations_x2_bytes: u64,
    /// Every weight.
    pub weights_bytes: u64,
    /// Every graph input.
    pub inputs_bytes: u64,
    /// weights + inputs + activations.
    pub inference_total_bytes: u64,
    /// weights + inputs + 2 × activations.
    pub training_total_bytes: u64,
}

/// The settings a scenario was computed with, echoed in reports.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SettingsUsed {
    /// The profile's name.
    pub profile: &'static str,
    /// Element type of float tensors.
    pub dtype: DType,
    /// Whether mixed precision was used.
    pub mixed_precision: bool,
    /// `None` for inference.
    pub optimizer: Option<Optimizer>,
    /// Worker threads.
    pub threads: u32,
    /// Style transfer: the style and content layers used (names as given).
    pub style_layers: Vec<String>,
    /// Style transfer: the content layers used.
    pub content_layers: Vec<String>,
    /// Style transfer: where the losses were computed.
    pub loss_placement: Option<LossPlacement>,
    /// The profile's process baseline, stated beside the figures.
    pub runtime_baseline: Option<profiles::RuntimeBaseline>,
    /// The kernel `scaled_dot_product_attention` calls run with, and how the
    /// attention computations found ran in this scenario.
    pub attention: AttentionKernel,
    /// How many attention computations ran fused, as math, or as written.
    pub attention_calls: AttentionCalls,
}

/// How many attention computations ran each way (docs/memory-model.md, "Attention").
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AttentionCalls {
    /// `scaled_dot_product_attention` calls run by the fused kernel.
    pub fused: usize,
    /// Calls run by the math path (`--attention math`, or dropout the fused kernel cannot apply).
    pub math: usize,
    /// Attention the model's code writes out, run as the ops say.
    pub as_written: usize,
}

/// One step of the schedule: a node's forward or backward step, a loss
/// term, or the optimizer step.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TimelineStep {
    /// Index into `Graph::nodes`; `None` for a loss term or the optimizer step.
    pub node: Option<usize>,
    /// What the step is when it is not a node (`backward of the style loss at relu1_1`, `optimizer step`).
    pub label: Option<String>,
    /// Which part of the schedule the step belongs to.
    pub phase: Phase,
    /// Live bytes by category once the step has run.
    pub breakdown: Breakdown,
    /// Live bytes at the step's own high point (its outputs and workspace
    /// allocated, nothing freed yet): the peak is the largest of these.
    pub during: Breakdown,
}

/// The decode scenario's own figures (docs/memory-model.md, "KV-cache decoding").
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DecodeFigures {
    /// How many graph inputs hold the cache.
    pub cache_inputs: usize,
    /// The cache at the bound past length (`None`: a cache input is unsized).
    pub cache: Option<crate::graph::KvCacheSize>,
    /// How much the step's peak grows per token of past length (filled by
    /// `analysis::run`, which evaluates the step again one token longer).
    pub peak_growth: Option<PeakGrowth>,
}

/// The step peak's growth with the past length.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PeakGrowth {
    /// Peak at past length `past + 1` minus the peak at `past`.
    pub bytes_per_token: u64,
    /// The peak at `past + 1`.
    pub next_peak_bytes: u64,
}

/// One scenario's figures: the peak, where and of what, per node and over time.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScenarioReport {
    /// The scenario.
    pub scenario: Scenario,
    /// The most bytes live at once.
    pub peak_bytes: u64,
    /// Index into `Graph::nodes` of the step where the peak happens (`None`: loss or optimizer step).
    pub peak_node: Option<usize>,
    /// That node's name.
    pub peak_node_name: Option<String>,
    /// The phase of the peak step.
    pub peak_phase: Phase,
    /// What is live at the peak, by category.
    pub peak_breakdown: Breakdown,
    /// Whether every figure is complete, or a lower bound.
    pub completeness: Completeness,
    /// The naive sums, for comparison.
    pub naive: NaiveSums,
    /// The settings used.
    pub settings: SettingsUsed,
    /// Per node, in `Graph::nodes` order.
    pub nodes: Vec<NodeMemory>,
    /// Live bytes by category after every forward step, then every backward
    /// step, in execution order (nodes that do not run are left out).
    pub timeline: Vec<TimelineStep>,
    /// The decode scenario: the cache and the growth per token.
    pub decode: Option<DecodeFigures>,
}

/// Every scenario computed, and what the pass could not do.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MemoryReport {
    /// One report per scenario, in the order asked.
    pub scenarios: Vec<ScenarioReport>,
    /// Problems met by the pass (a loss layer that does not exist, …).
    pub warnings: Vec<String>,
}

impl MemoryReport {
    /// The report of one scenario, if computed.
    pub fn scenario(&self, s: Scenario) -> Option<&ScenarioReport> {
        self.scenarios.iter().find(|r| r.scenario == s)
    }
}

/// Computes every requested scenario for a built graph.
pub fn analyse(graph: &Graph, settings: &MemorySettings) -> MemoryReport {
    let prec = Precision::new(settings.dtype, settings.mixed_precision);
    let mut report = MemoryReport::default();
    for &scenario in &settings.scenarios {
        if scenario == Scenario::Decode {
            let Some(cache) = &graph.kv_cache else {
                report.warnings.push("decode: the graph has no KV cache (past keys and values as graph inputs); nothing to decode".into());
                continue;
            };
            // One generation step is inference's schedule; reuse it when computed.
            let step = match report.scenario(Scenario::Inference) {
                Some(r) => r.clone(),
                None => {
                    let s = MemorySettings { scenarios: vec![Scenario::Inference], ..settings.clone() };
                    match analyse(graph, &s).scenarios.pop() {
                        Some(r) => r,
                        None => continue,
                    }
                }
            };
            report.scenarios.push(ScenarioReport {
                scenario,
                decode: Some(DecodeFigures { cache_inputs: cache.inputs.len(), cache: cache.size(graph), peak_growth: None }),
                ..step
            });
            continue;
        }
        let training = scenario.trains();
        let loss = if scenario == Scenario::StyleTransfer {
            match resolve_loss_layers(graph, &settings.loss_layers) {
                Ok(l) => l,
                Err(e) => {
                    report.warnings.push(e);
                    resolve_loss_layers(graph, &LossLayers::default()).unwrap_or_default()
                }
            }
        } else {
            ResolvedLoss::default()
        };
        let mode = match scenario {
            // Decode is handled above: one step is inference's schedule.
            Scenario::Inference | Scenario::Decode => schedule::Mode::Inference,
            Scenario::Training => schedule::Mode::Training,
            Scenario::StyleTransfer => schedule::Mode::Style(&loss),
        };
        let sched = schedule::Schedule::build(graph, &settings.profile, &prec, mode, settings.threads);
        let state = match scenario {
            Scenario::Inference | Scenario::Decode => 0,
            Scenario::Training => sched.trainable_master_bytes.saturating_mul(settings.optimizer.state_copies()),
            // The image is the parameter: its state is image-sized vectors.
            Scenario::StyleTransfer => sched.optimized_input_bytes.saturating_mul(settings.optimizer.state_copies()),
        };
        let out = liveness::replay(&sched, scenario, state);
        let activations = sched.nodes.iter().fold(0u64, |a, n| a.saturating_add(n.output_bytes));
        let naive = NaiveSums {
            activations_bytes: activations,
            activations_x2_bytes: activations.saturating_mul(2),
            weights_bytes: sched.weight_bytes,
            inputs_bytes: sched.input_bytes,
            inference_total_bytes: sched.weight_bytes.saturating_add(sched.input_bytes).saturating_add(activations),
            training_total_bytes: sched
                .weight_bytes
                .saturating_add(sched.input_bytes)
                .saturating_add(activations.saturating_mul(2)),
        };
        if sched.unknown_tensors > 0 && !report.warnings.iter().any(|w| w.starts_with("memory: ")) {
            report.warnings.push(format!(
                "memory: {} tensor(s) without a known shape are left out of the estimate",
                sched.unknown_tensors
            ));
        }
        report.scenarios.push(ScenarioReport {
            scenario,
            peak_bytes: out.peak_bytes,
            peak_node: out.peak_node,
            peak_node_name: out.peak_label.or_else(|| out.peak_node.map(|i| graph.nodes[i].name.clone())),
            peak_phase: out.peak_phase,
            peak_breakdown: out.peak_breakdown,
            completeness: Completeness {
                unknown_tensors: sched.unknown_tensors,
                unsized_weight_nodes: graph.uncounted_weights.iter().filter(|n| sched.nodes[n.0].runs).count(),
            },
            naive,
            settings: SettingsUsed {
                profile: settings.profile.name,
                dtype: settings.dtype,
                mixed_precision: settings.mixed_precision,
                optimizer: training.then_some(settings.optimizer),
                threads: settings.threads,
                style_layers: loss.style.iter().map(|(n, _)| n.clone()).collect(),
                content_layers: loss.content.iter().map(|(n, _)| n.clone()).collect(),
                loss_placement: (scenario == Scenario::StyleTransfer).then_some(loss.placement),
                runtime_baseline: settings.profile.runtime_baseline,
                attention: settings.profile.attention.kernel,
                attention_calls: sched.attention_calls,
            },
            nodes: out.nodes,
            timeline: out.timeline,
            decode: None,
        });
    }
    report
}
