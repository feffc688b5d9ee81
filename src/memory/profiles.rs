//! Backend profiles: what one framework really allocates around the operator
//! facts. A profile is plain data (switches and workspace rules), so another
//! backend (Caffe, torch-nn, cuDNN, tiny-dnn) is one more constructor here and
//! one more name in `Profile::NAMES`, not a change to the liveness engine.

use crate::ops::{Recurrence, RnnCell};

/// How a backend finds scratch memory for a convolution.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConvWorkspace {
    /// No scratch beyond the output.
    None,
    /// oneDNN through PyTorch on CPU (f32): the input is copied into a blocked
    /// layout (when it has more than 3 channels), the weights are reordered, the
    /// result is written blocked, the weight and blocked input are released,
    /// and the result is copied to a new plain output (every kernel size).
    /// Blocked copies pad channels to a multiple of `ONEDNN_CHANNEL_BLOCK`; a
    /// strided 1×1 kernel also gathers its input at the output positions first.
    /// Convolutions PyTorch keeps from oneDNN (`ConvSizes::runs_onednn`) run
    /// the native kernel: its unrolled input, the plain output, nothing else.
    OneDnnBlocked,
    /// An im2col column buffer for one image at a time, reused across the batch
    /// (Caffe): `C_in/groups × ∏k × ∏out_spatial` elements.
    Im2colPerImage,
    /// One column buffer per worker thread.
    Im2colPerThread,
    /// One column buffer for the whole net, the size of the largest
    /// convolution's (Caffe with a shared col buffer), resident all the time.
    SharedColumn,
    /// Every convolution module keeps its own column buffer (`finput`) for the
    /// whole run (Torch `nn.SpatialConvolutionMM`); with `backward_column` a
    /// second column-sized `fgradInput` for backward (the CPU THNN kernels;
    /// the CUDA kernels reuse `finput`).
    PerModuleColumns {
        /// A second column-sized buffer for backward.
        backward_column: bool,
    },
    /// cuDNN picks an algorithm whose workspace is at most `limit` bytes: the
    /// GEMM-based algorithms need at most the column buffer, so the workspace
    /// is min(column buffer for the batch, limit); nothing persists.
    CudnnCapped {
        /// The workspace cap, in bytes.
        limit: u64,
    },
    /// Direct convolution over a zero-padded copy of the input (forward) and
    /// of the input gradient (backward), per worker (tiny-dnn).
    PaddedCopies,
}

/// How a backend runs ONNX's LSTM, GRU and RNN (ops with `MemoryFacts::recurrence`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SequenceKernels {
    /// What the op facts say: the gates (and cell states) of every step
    /// kept, no scratch.
    AsOpsSay,
    /// PyTorch on CPU: an LSTM layer is one oneDNN call per direction
    /// (`mkldnn_rnn_layer`) keeping a workspace; GRU and RNN run their cell
    /// step by step and autograd keeps each step's tensors.
    PyTorchCpu,
}

/// A recurrent op's memory under a backend, bytes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SequenceCosts {
    /// Kept for backward besides the input (replaces the op's `extra_saved`).
    pub saved: u64,
    /// Whether backward keeps the op's output sequence Y.
    pub keeps_output: bool,
    /// Transient scratch of the forward step and of the backward step.
    pub forward: u64,
    /// The same for the backward step.
    pub backward: u64,
}

/// What a dropout layer keeps for its backward step.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DropoutMask {
    /// One byte per element: a boolean mask (PyTorch's fused `native_dropout`
    /// on CUDA).
    Bool,
    /// The noise tensor itself, in the compute dtype: PyTorch's CPU dropout
    /// draws `empty_like(x).bernoulli_(1 − p)`, divides it by 1 − p and
    /// multiplies it in, and the product keeps it for backward.
    Noise,
}

/// Which kernel runs `scaled_dot_product_attention` (`--attention`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AttentionKernel {
    /// The backend's fused kernel: no batch × heads × seq × seq tensor.
    Fused,
    /// The composition of products, softmax and dropout, as the ops say.
    Math,
}

impl AttentionKernel {
    /// The names `--attention` takes.
    pub const NAMES: &'static [&'static str] = &["fused", "math"];

    /// The name `--attention` and reports use.
    pub fn as_str(self) -> &'static str {
        match self {
            AttentionKernel::Fused => "fused",
            AttentionKernel::Math => "math",
        }
    }

    /// The kernel `--attention NAME` names.
    pub fn by_name(name: &str) -> Option<Self> {
        match name {
            "fused" => Some(AttentionKernel::Fused),
            "math" => Some(AttentionKernel::Math),
            _ => None,
        }
    }
}

/// How a backend runs `scaled_dot_product_attention`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AttentionBackend {
    /// The kernel SDPA calls run with.
    pub kernel: AttentionKernel,
    /// The fused kernel applies dropout itself (CUDA's flash and
    /// memory-efficient kernels); without it a call with dropout in training
    /// falls back to the math path (PyTorch on CPU).
    pub fused_dropout: bool,
    /// The fused kernel gives every thread blocked f32 scratch (PyTorch's CPU
    /// flash kernel; `Call::cpu_flash_scratch`).
    pub cpu_flash_scratch: bool,
    /// The math path's softmax is `_safe_softmax`: a one-byte "row is all
    /// −inf" test per score and one flag per row, freed as it returns.
    pub safe_softmax: bool,
}

impl AttentionBackend {
    /// Frameworks without a fused kernel run attention as the ops say.
    pub const AS_WRITTEN: AttentionBackend =
        AttentionBackend { kernel: AttentionKernel::Math, fused_dropout: false, cpu_flash_scratch: false, safe_softmax: false };
}

/// A backend's allocation behaviour.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Profile {
    /// The name `--profile` takes.
    pub name: &'static str,
    /// Activations the framework's model code runs in place (`ReLU(inplace=True)`)
    /// reuse their input's storage when nothing else reads the input.
    pub in_place_activations: bool,
    /// Reshape-like ops (reshape, flatten, squeeze, permute, slicing, eval-mode
    /// dropout, identity) return views that share their input's storage.
    pub views_share_storage: bool,
    /// Views keep their input's strides (PyTorch): a reshape the strides
    /// cannot express copies, and kernels that need contiguous rows copy
    /// their input (schedule/layout.rs).
    pub views_keep_strides: bool,
    /// Fold the ONNX decompositions of one framework op back into it (SiLU as
    /// Sigmoid·Mul, GELU through Erf): the intermediate results never exist.
    pub fuse_pointwise_decompositions: bool,
    /// Max pooling writes its indices even when no backward will run (they are
    /// then freed as soon as the op returns).
    pub pool_indices_in_inference: bool,
    /// How convolutions get their scratch.
    pub conv_workspace: ConvWorkspace,
    /// How recurrent ops (ONNX LSTM, GRU, RNN) run.
    pub sequence_kernels: SequenceKernels,
    /// Convolution backward runs oneDNN's data pass, then its weights pass,
    /// each on blocked copies (transient; `onednn_backward_workspace`).
    pub conv_backward_blocked: bool,
    /// Batch-norm backward holds one input-sized temporary.
    pub norm_backward_temporary: bool,
    /// Gradient flowing into a tensor read by several ops is accumulated in place
    /// into the first gradient buffer; each later contribution is transient.
    pub accumulate_grads_in_place: bool,
    /// A tensor passed into a module call stays referenced by the caller until
    /// the call returns, and one a Python variable names until the variable is
    /// rebound or its function returns (eager Python frames). Module paths are
    /// `Node::scope` (the ONNX loader reads them from names such as
    /// `/encoder/layers/encoder_layer_0/mlp/mlp.0/MatMul`); source lines are
    /// `FrameworkCall::stack` (dynamo exports).
    pub module_scope_hold: bool,
    /// Every buffer lives for the whole run: modules (Torch nn) or blobs (Caffe)
    /// keep their output and gradient between iterations, so nothing is freed.
    pub persistent: bool,
    /// An in-place op's input gradient is its output gradient, overwritten
    /// (Caffe's shared diff of in-place tops, Torch's in-place ReLU).
    pub in_place_grads: bool,
    /// An addition's gradient for its one data operand is the incoming
    /// gradient itself (autograd's AddBackward returns it), not a new buffer.
    pub sum_grads_pass_through: bool,
    /// Layers the model file writes in place (Caffe top == bottom) share storage.
    /// False where activations are fused into the layer and keep both values.
    pub honours_in_place: bool,
    /// Dropout's saved mask.
    pub dropout_mask: DropoutMask,
    /// `scaled_dot_product_attention`'s kernel and its habits.
    pub attention: AttentionBackend,
    /// Bytes per max-pooling index (int64 in PyTorch and Torch, int32 in Caffe,
    /// size_t in tiny-dnn); 0 when backward recomputes the argmax (cuDNN).
    pub pool_index_bytes: u64,
    /// Activations, their gradients, weight gradients and scratch exist once
    /// per worker thread (tiny-dnn's CNN_TASK_SIZE copies).
    pub per_thread_copies: bool,
    /// `--threads` when not given.
    pub default_threads: u32,
    /// What the framework's process holds before any model (runtime,
    /// libraries), never part of the figures: measured bytes and where from.
    pub runtime_baseline: Option<RuntimeBaseline>,
}

/// A measured process baseline, stated beside the figures.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RuntimeBaseline {
    /// Bytes measured.
    pub bytes: u64,
    /// What they are and how they were measured.
    pub what: &'static str,
}

impl Profile {
    /// Names accepted by `--profile`.
    pub const NAMES: &'static [&'static str] = &["pytorch", "caffe", "torch-nn", "cudnn", "tiny-dnn"];

    /// PyTorch eager on CPU with oneDNN (the default; validated against measured
    /// allocator traces, see docs/memory-model.md).
    pub fn pytorch() -> Self {
        Profile {
            name: "pytorch",
            in_place_activations: true,
            views_share_storage: true,
            views_keep_strides: true,
            fuse_pointwise_decompositions: true,
            pool_indices_in_inference: true,
            conv_workspace: ConvWorkspace::OneDnnBlocked,
            sequence_kernels: SequenceKernels::PyTorchCpu,
            conv_backward_blocked: true,
            norm_backward_temporary: true,
            accumulate_grads_in_place: true,
            module_scope_hold: true,
            persistent: false,
            in_place_grads: false,
            sum_grads_pass_through: true,
            honours_in_place: true,
            // CPU dropout keeps its f32 noise (docs/measurements: `aten::dropout`
            // allocates an input-sized `empty_strided` that lives to backward).
            dropout_mask: DropoutMask::Noise,
            // CPU PyTorch runs SDPA through `_scaled_dot_product_flash_attention_for_cpu`
            // unless dropout is on in training (docs/measurements).
            attention: AttentionBackend { kernel: AttentionKernel::Fused, fused_dropout: false, cpu_flash_scratch: true, safe_softmax: true },
            pool_index_bytes: 8,
            per_thread_copies: false,
            default_threads: 1,
            // RSS after `import torch, torchvision`: 902.7–906.9 MiB over the 45
            // style cases of docs/measurements/cpu_style.json (rss_runtime_bytes).
            runtime_baseline: Some(RuntimeBaseline {
                bytes: 903 << 20,
                what: "CPU PyTorch 2.15 with torchvision imported (process RSS, measured)",
            }),
        }
    }

    /// BVLC Caffe: every blob holds data (and, once backward ran, diff) from
    /// net setup to the end; in-place tops share both; one im2col buffer the
    /// size of the largest; int32 max-pool masks.
    pub fn caffe() -> Self {
        Profile {
            name: "caffe",
            in_place_activations: false,
            views_share_storage: true,
            views_keep_strides: false,
            fuse_pointwise_decompositions: false,
            pool_indices_in_inference: true,
            conv_workspace: ConvWorkspace::SharedColumn,
            sequence_kernels: SequenceKernels::AsOpsSay,
            conv_backward_blocked: false,
            norm_backward_temporary: false,
            accumulate_grads_in_place: false,
            module_scope_hold: false,
            persistent: true,
            in_place_grads: true,
            sum_grads_pass_through: false,
            honours_in_place: true,
            dropout_mask: DropoutMask::Bool,
            attention: AttentionBackend::AS_WRITTEN,
            pool_index_bytes: 4,
            per_thread_copies: false,
            default_threads: 1,
            runtime_baseline: None,
        }
    }

    /// Lua Torch `nn` (neural-style's default backend): every module keeps its
    /// `output` and `gradInput` between iterations; ReLU runs in place;
    /// `SpatialConvolutionMM` keeps `finput` and `fgradInput` per module.
    pub fn torch_nn() -> Self {
        Profile {
            name: "torch-nn",
            in_place_activations: true,
            conv_workspace: ConvWorkspace::PerModuleColumns { backward_column: false },
            sequence_kernels: SequenceKernels::AsOpsSay,
            conv_backward_blocked: false,
            norm_backward_temporary: false,
            module_scope_hold: false,
            fuse_pointwise_decompositions: false,
            views_keep_strides: false,
            persistent: true,
            in_place_grads: true,
            sum_grads_pass_through: false,
            attention: AttentionBackend::AS_WRITTEN,
            // Lua Torch's own process is not measured here.
            runtime_baseline: None,
            ..Self::pytorch()
        }
    }

    /// PyTorch eager on a CUDA GPU with cuDNN: the same lifetimes as the
    /// `pytorch` profile, no oneDNN reorders; each convolution's workspace is
    /// capped (cuDNN falls back to an algorithm that fits).
    pub fn cudnn() -> Self {
        Profile {
            name: "cudnn",
            conv_workspace: ConvWorkspace::CudnnCapped { limit: CUDNN_WORKSPACE_LIMIT },
            // cuDNN's RNN reserve space is not measured here.
            sequence_kernels: SequenceKernels::AsOpsSay,
            conv_backward_blocked: false,
            norm_backward_temporary: true,
            // CUDA runs the fused native_dropout: a boolean mask.
            dropout_mask: DropoutMask::Bool,
            // The flash and memory-efficient CUDA kernels apply dropout themselves.
            attention: AttentionBackend { kernel: AttentionKernel::Fused, fused_dropout: true, cpu_flash_scratch: false, safe_softmax: true },
            // The CUDA context and library handles are not measured here (issue: a GPU profile).
            runtime_baseline: None,
            ..Self::pytorch()
        }
    }

    /// tiny-dnn (tiny-cnn): each of CNN_TASK_SIZE workers has its own copy of
    /// every layer's output, pre-activation, delta and weight gradients, plus
    /// padded input copies for convolution; all kept for the run.
    pub fn tiny_dnn() -> Self {
        Profile {
            name: "tiny-dnn",
            in_place_activations: false,
            views_share_storage: true,
            views_keep_strides: false,
            fuse_pointwise_decompositions: false,
            pool_indices_in_inference: true,
            conv_workspace: ConvWorkspace::PaddedCopies,
            sequence_kernels: SequenceKernels::AsOpsSay,
            conv_backward_blocked: false,
            norm_backward_temporary: false,
            accumulate_grads_in_place: false,
            module_scope_hold: false,
            persistent: true,
            in_place_grads: false,
            sum_grads_pass_through: false,
            honours_in_place: false,
            dropout_mask: DropoutMask::Bool,
            attention: AttentionBackend::AS_WRITTEN,
            pool_index_bytes: 8,
            per_thread_copies: true,
            default_threads: 8,
            runtime_baseline: None,
        }
    }

    /// The profile `--profile NAME` names.
    pub fn by_name(name: &str) -> Option<Self> {
        // Exact names only: `torch` could mean PyTorch or Lua Torch (`torch-nn`).
        match name {
            "pytorch" => Some(Self::pytorch()),
            "caffe" => Some(Self::caffe()),
            "torch-nn" => Some(Self::torch_nn()),
            "cudnn" => Some(Self::cudnn()),
            "tiny-dnn" => Some(Self::tiny_dnn()),
            _ => None,
        }
    }
}

/// Workspace cap of the `cudnn` profile per convolution.
pub const CUDNN_WORKSPACE_LIMIT: u64 = 64 << 20;

impl Default for Profile {
    fn default() -> Self {
        Self::pytorch()
    }
}

/// Sizes a convolution workspace rule needs, in bytes (run dtype applied).
#[derive(Clone, Copy, Debug, Default)]
pub struct ConvSizes {
    /// The input.
    pub input: u64,
    /// The output.
    pub output: u64,
    /// The weights.
    pub weight: u64,
    /// Input channels.
    pub in_channels: u64,
    /// Kernel is 1 along every spatial axis.
    pub pointwise: bool,
    /// im2col column buffer for one image, bytes.
    pub column_per_image: u64,
    /// Images in the batch.
    pub batch: u64,
    /// Input padded by the convolution's pads (bytes), for direct convolution.
    pub padded_input: u64,
    /// Bytes per element of the run.
    pub elem_bytes: u64,
    /// Output channels.
    pub out_channels: u64,
    /// Groups.
    pub groups: u64,
    /// Elements of one image's output spatial axes.
    pub out_spatial: u64,
    /// N·C·H·W of the input (N·C·T·H for 3-D, N·C·1·L for 1-D): what
    /// PyTorch's backend choice reads.
    pub lead4_elems: u64,
    /// Both of the kernel's last two extents exceed 3.
    pub large_kernel: bool,
    /// Some stride exceeds 1.
    pub strided: bool,
    /// 1×1 kernel, stride 1, no padding: the unrolled input is the input.
    pub unit_window: bool,
    /// The input is stored channels-last (N, spatial…, C).
    pub channels_last: bool,
    /// The weights get no gradient (style transfer): backward runs the data
    /// pass alone.
    pub frozen_weights: bool,
    /// The input gets no gradient (the image under a first convolution in
    /// training): backward runs the weights pass alone.
    pub input_no_grad: bool,
}

/// oneDNN's blocked layouts hold channels in blocks of this many (f32 with
/// AVX-512, the measured CPU): a copy of a tensor with C channels has
/// ⌈C/16⌉·16 of them. ShuffleNetV2's first convolution (3→24 at 448 px)
/// writes a 6,422,528 B blocked output for a 4,816,896 B plain one; its
/// 58-channel maps get 64-channel copies (200,704 B for 181,888 B).
pub const ONEDNN_CHANNEL_BLOCK: u64 = 16;

/// PyTorch hands an f32 convolution to oneDNN only above this many input
/// elements N·C·H·W (N·C·T·H for 3-D), unless it is grouped, has a kernel
/// larger than 3 in both of its last two extents, or a batch above 1
/// (`ConvParams::use_mkldnn`, aten/src/ATen/native/Convolution.cpp: "for
/// some case, native is faster"); below it the native kernel runs.
pub const ONEDNN_MIN_INPUT_ELEMS: u64 = 20_480;

/// oneDNN's depthwise convolution backward over a channels-last input holds
/// a scratch of this many times its weight bytes: measured in every one of
/// ConvNeXt-T's 18 depthwise 7×7 convolutions (96 to 768 channels) at 224 and
/// 512 px alike, 2 threads (4,816,896 B for the 18,816 B weight of 96
/// channels; 38,535,168 B for 768) — the training peak at 224 px.
pub const ONEDNN_DEPTHWISE_CHANNELS_LAST_BACKWARD_SCRATCH: u64 = 256;

/// Bytes of a copy of `bytes` (a tensor with `c` channels) in a blocked
/// layout: channels rounded up to the block.
fn channel_blocked(bytes: u64, c: u64) -> u64 {
    if c == 0 {
        return bytes;
    }
    let padded = c.div_ceil(ONEDNN_CHANNEL_BLOCK).saturating_mul(ONEDNN_CHANNEL_BLOCK);
    (bytes / c).saturating_mul(padded)
}

/// oneDNN's LSTM training workspace (f32) per layer and direction, bytes per
/// hidden unit: for each step and batch row, and once. Measured at hidden 512
/// (docs/measurements/cpu_recurrent.json, lstm_lm): 8,048,640 B at 256 steps ×
/// batch and 32,034,816 B at 1,024 — 31,232 B per step·row and 53,248 B, i.e.
/// 61·H and 104·H; the proportionality to H is assumed (one hidden size measured).
const ONEDNN_LSTM_WORKSPACE_PER_STEP_ROW: u64 = 61;
const ONEDNN_LSTM_WORKSPACE_ONCE: u64 = 104;

/// PyTorch on CPU, per layer (the ONNX op is one layer) and direction, one
/// direction after the other.
fn pytorch_cpu_sequence(r: &Recurrence, elem: u64) -> SequenceCosts {
    let tn = r.steps_x_batch();
    let d = r.directions.max(1);
    // The input projections of every step at once: T·N·G·H.
    let gates_all_steps = tn.saturating_mul(r.gate_width()).saturating_mul(elem);
    match r.cell {
        Some(RnnCell::Lstm) => {
            // mkldnn_rnn_layer: W and R reordered, the gate scratch; backward
            // reorders them again and fills diff-weight buffers of their size.
            let weights = r.weight_elems().saturating_mul(elem);
            let workspace = tn
                .saturating_mul(ONEDNN_LSTM_WORKSPACE_PER_STEP_ROW)
                .saturating_add(ONEDNN_LSTM_WORKSPACE_ONCE)
                .saturating_mul(r.hidden)
                .saturating_mul(elem)
                / 4;
            SequenceCosts {
                saved: workspace.saturating_mul(d),
                keeps_output: true,
                forward: weights.saturating_add(gates_all_steps),
                backward: weights.saturating_mul(2).saturating_add(gates_all_steps),
            }
        }
        Some(RnnCell::Gru) => SequenceCosts {
            // Per step autograd keeps the hidden projection (3H) and four
            // H-sized tensors of the cell: 28,672 B per step at batch 2,
            // hidden 512 (gru_lm, 5 storages per step and layer).
            saved: tn.saturating_mul(7).saturating_mul(r.hidden).saturating_mul(elem).saturating_mul(d),
            keeps_output: false,
            forward: gates_all_steps,
            backward: gates_all_steps,
        },
        // tanh(x W + h R + b) per step: the activation's output is kept.
        Some(RnnCell::Rnn) => SequenceCosts {
            saved: tn.saturating_mul(r.hidden).saturating_mul(elem).saturating_mul(d),
            keeps_output: false,
            forward: gates_all_steps,
            backward: gates_all_steps,
        },
        None => SequenceCosts::default(),
    }
}

/// oneDNN's backward-weights kernel splits its work over the batch and
/// spatial positions (each extra thread then sums into a private copy of the
/// weight gradient) when both activations it reads exceed this many times the
/// blocked weights; otherwise it splits over channel blocks and needs no copy.
/// Measured with 2 threads (probes of single convolutions, docs/memory-model.md):
/// copies at ratios 10.9 to 21.8 and up, none at 6.25 and below.
pub const ONEDNN_BACKWARD_WEIGHTS_SPLIT_RATIO: u64 = 8;

/// Transient bytes of a oneDNN convolution backward beyond the gradients it
/// returns (input, weight and bias gradients, counted by the caller), at the
/// worst of its moments. PyTorch runs the data pass, then the weights pass:
/// - data: the output gradient and the weights reordered, the blocked input
///   gradient (a strided 1×1 kernel gathers into one more of its size), then
///   the plain input gradient while the blocked one is alive;
/// - weights: the output gradient and the input reordered again (the 3-channel
///   image is read as it is; a strided 1×1 kernel gathers its strided input
///   positions), the blocked weight gradient and, when the work is split over
///   positions, one more copy of it for the second thread; those are freed,
///   then the plain weight gradient is allocated beside the blocked one.
/// Padded channels (blocks of 16) on every blocked copy. Bias gradients
/// (C_out elements) are left out. With frozen weights only the data pass
/// runs; for an input without gradient, only the weights pass.
fn onednn_backward_workspace(s: &ConvSizes) -> u64 {
    let blocked_in = s.in_channels > 3;
    let in_blk = channel_blocked(s.input, s.in_channels);
    let gout_blk = channel_blocked(s.output, s.out_channels);
    let mut w_blk = channel_blocked(s.weight, s.out_channels);
    // The data pass pads the weights' input channels even for a 3-channel
    // input (its blocked input gradient has 16); the weights pass does not.
    let w_blk_data = if s.groups == 1 { channel_blocked(w_blk, s.in_channels) } else { w_blk };
    if s.groups == 1 && blocked_in {
        w_blk = w_blk_data;
    }
    let gathered = if s.pointwise && s.strided {
        let c = s.in_channels.div_ceil(ONEDNN_CHANNEL_BLOCK).saturating_mul(ONEDNN_CHANNEL_BLOCK);
        c.saturating_mul(s.out_spatial).saturating_mul(s.batch.max(1)).saturating_mul(s.elem_bytes)
    } else {
        0
    };
    let data_scratch = if s.pointwise && s.strided { in_blk } else { 0 };
    // The weights pass reads the gathered input when there is one.
    let src_read = if gathered > 0 { gathered } else if blocked_in { in_blk } else { s.input };
    let split_copy = if s.groups == 1 && src_read.min(gout_blk) > w_blk.saturating_mul(ONEDNN_BACKWARD_WEIGHTS_SPLIT_RATIO) {
        w_blk
    } else {
        0
    };
    let weight_grad = if s.frozen_weights { 0 } else { s.weight };
    let returned = s.input.saturating_add(weight_grad);
    let data = if s.input_no_grad {
        0
    } else {
        let first = gout_blk.saturating_add(w_blk_data).saturating_add(in_blk).saturating_add(data_scratch).saturating_sub(returned);
        first.max(in_blk.saturating_sub(weight_grad))
    };
    if s.frozen_weights {
        return data;
    }
    let reads = gout_blk
        .saturating_add(if blocked_in { in_blk } else { 0 })
        .saturating_add(gathered)
        .saturating_add(w_blk)
        .saturating_add(split_copy)
        .saturating_sub(s.weight);
    data.max(reads).max(w_blk)
}

impl ConvSizes {
    /// PyTorch's choice for an f32 CPU convolution (`ConvParams::use_mkldnn`
    /// with more than one thread, PyTorch's default on a multi-core CPU):
    /// oneDNN for grouped convolutions, kernels larger than 3×3, batches
    /// above 1 and inputs above `ONEDNN_MIN_INPUT_ELEMS`; else the native kernel.
    pub fn runs_onednn(&self) -> bool {
        self.groups > 1 || self.large_kernel || self.batch > 1 || self.lead4_elems > ONEDNN_MIN_INPUT_ELEMS
    }
}

impl Profile {
    /// Transient bytes a forward convolution holds on top of its input and its
    /// (already counted) output at the op's worst moment.
    pub fn conv_forward_workspace(&self, s: &ConvSizes, threads: u32) -> u64 {
        match self.conv_workspace {
            ConvWorkspace::None => 0,
            ConvWorkspace::OneDnnBlocked if !s.runs_onednn() => {
                // The native kernel writes the plain output directly; it
                // unrolls the input for the whole batch first unless the
                // window is 1×1 with stride 1 and no padding (R3D-18's vol2col
                // buffer at 8 frames: 43,352,064 B for 128 channels, 3×3×3, 4×28×28).
                if s.unit_window {
                    0
                } else {
                    s.column_per_image.saturating_mul(s.batch.max(1))
                }
            }
            // oneDNN reads and writes channels-last tensors as they are: only
            // the weights are reordered (ConvNeXt's convolutions: the output
            // written in place, one weight-sized reorder).
            ConvWorkspace::OneDnnBlocked if s.channels_last => channel_blocked(s.weight, s.out_channels),
            ConvWorkspace::OneDnnBlocked => {
                // Blocked input copy only when the channels fill a block (the
                // 3-channel image is consumed as is); every blocked copy has its
                // channels padded to the block.
                let blocked_in = s.in_channels > 3;
                let in_blk = if blocked_in { channel_blocked(s.input, s.in_channels) } else { 0 };
                let out_blk = channel_blocked(s.output, s.out_channels);
                let mut weight = channel_blocked(s.weight, s.out_channels);
                if s.groups == 1 && blocked_in {
                    weight = channel_blocked(weight, s.in_channels);
                }
                // A strided 1×1 kernel first gathers the strided input
                // positions (oneDNN's reduce-to-unit-stride scratch), twice
                // C_in × the output positions, alive with the blocked input.
                let reduced = if s.pointwise && s.strided {
                    let c = s.in_channels.div_ceil(ONEDNN_CHANNEL_BLOCK).saturating_mul(ONEDNN_CHANNEL_BLOCK);
                    c.saturating_mul(s.out_spatial).saturating_mul(s.batch.max(1)).saturating_mul(s.elem_bytes).saturating_mul(2)
                } else {
                    0
                };
                // The weight and the blocked input are freed before the plain
                // output is allocated, whatever the kernel: the op peaks at
                // in + max(reduced + in_blk + w + out_blk, out_blk + out); the
                // plain output is counted by the caller, so subtract it.
                let before = reduced.saturating_add(in_blk).saturating_add(weight).saturating_add(out_blk);
                before.saturating_sub(s.output).max(out_blk)
            }
            ConvWorkspace::Im2colPerImage => s.column_per_image,
            ConvWorkspace::Im2colPerThread => {
                s.column_per_image.saturating_mul(u64::from(threads.max(1)).min(s.batch.max(1)))
            }
            // Counted once for the net (`shared_workspace`).
            ConvWorkspace::SharedColumn => 0,
            // One image at a time through the module's own buffer.
            ConvWorkspace::PerModuleColumns { .. } => s.column_per_image,
            ConvWorkspace::CudnnCapped { limit } => {
                if s.pointwise {
                    0
                } else {
                    // Transformed output and filter (the trace of VGG's 3×3
                    // convolutions on an H200), never more than the column
                    // buffer a GEMM algorithm would take, and capped.
                    s.output.saturating_add(s.weight).min(s.column_per_image.saturating_mul(s.batch.max(1))).min(limit)
                }
            }
            // Per worker copies are applied by the caller.
            ConvWorkspace::PaddedCopies => s.padded_input,
        }
    }

    /// What a recurrent op keeps and its scratch under this backend, for
    /// `elem` bytes per element; `None`: the op facts hold.
    pub fn sequence_costs(&self, r: &Recurrence, elem: u64) -> Option<SequenceCosts> {
        match self.sequence_kernels {
            SequenceKernels::AsOpsSay => None,
            SequenceKernels::PyTorchCpu => Some(pytorch_cpu_sequence(r, elem)),
        }
    }

    /// Scratch the whole net shares, resident from the start: the largest column buffer.
    pub fn shared_workspace(&self, largest_column_per_image: u64) -> u64 {
        match self.conv_workspace {
            ConvWorkspace::SharedColumn => largest_column_per_image,
            _ => 0,
        }
    }

    /// Transient bytes of a convolution's backward step beyond the gradients it returns.
    pub fn conv_backward_workspace(&self, s: &ConvSizes, threads: u32) -> u64 {
        if self.conv_workspace == ConvWorkspace::OneDnnBlocked && !s.runs_onednn() {
            // The native kernel unrolls again for each gradient, one column
            // buffer at a time (R3D-18 at 8 frames: the input gradient, then
            // 43,352,064 B of columns, freed, the weight gradient, 43,352,064 B again).
            if s.unit_window {
                0
            } else {
                s.column_per_image.saturating_mul(s.batch.max(1))
            }
        } else if self.conv_workspace == ConvWorkspace::OneDnnBlocked && s.channels_last && s.groups > 1 && s.groups == s.in_channels {
            // oneDNN's depthwise backward over a channels-last input: a
            // scratch of 256 × its weight, whatever the spatial size.
            s.weight.saturating_mul(ONEDNN_DEPTHWISE_CHANNELS_LAST_BACKWARD_SCRATCH)
        } else if self.conv_backward_blocked {
            onednn_backward_workspace(s)
        } else {
            match self.conv_workspace {
                ConvWorkspace::Im2colPerImage
                | ConvWorkspace::Im2colPerThread
                | ConvWorkspace::PerModuleColumns { backward_column: true }
                | ConvWorkspace::CudnnCapped { .. }
                | ConvWorkspace::PaddedCopies => self.conv_forward_workspace(s, threads),
                _ => 0,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 2-D f32 convolution of batch 1 from these channels and extents.
    fn conv(c_in: u64, hw_in: u64, c_out: u64, hw_out: u64) -> ConvSizes {
        ConvSizes {
            input: 4 * c_in * hw_in * hw_in,
            output: 4 * c_out * hw_out * hw_out,
            in_channels: c_in,
            out_channels: c_out,
            groups: 1,
            batch: 1,
            elem_bytes: 4,
            out_spatial: hw_out * hw_out,
            lead4_elems: c_in * hw_in * hw_in,
            ..Default::default()
        }
    }

    #[test]
    fn onednn_3x3_conv_peaks_on_blocked_copies() {
        // VGG conv1_2 at 224: in = out = 12,845,056 B, w = 147,456 B.
        // Peak above the input: max(in_blk + w + out_blk, out_blk + out) = 25,837,568,
        // i.e. 12,992,512 beyond the plain output.
        let s = ConvSizes { weight: 147_456, ..conv(64, 224, 64, 224) };
        assert_eq!(Profile::pytorch().conv_forward_workspace(&s, 1), 12_992_512);
    }

    #[test]
    fn image_conv_has_no_blocked_input() {
        let s = ConvSizes { weight: 37_632, ..conv(3, 224, 64, 112) };
        assert_eq!(Profile::pytorch().conv_forward_workspace(&s, 1), 3_211_264);
    }

    #[test]
    fn pointwise_conv_frees_its_blocked_input_first() {
        // ResNeXt-50 layer1.1.conv3 (1×1, 128→256 at 56²), measured: +1,605,632 (in_blk),
        // +131,072 (w), +3,211,264 (out_blk), −w, −in_blk, +3,211,264 (out), −out_blk.
        // Above the input: max(4,947,968, 6,422,528) = out_blk + out.
        let s = ConvSizes { weight: 131_072, pointwise: true, unit_window: true, ..conv(128, 56, 256, 56) };
        assert_eq!(Profile::pytorch().conv_forward_workspace(&s, 1), 3_211_264);
    }

    #[test]
    fn strided_pointwise_conv_gathers_its_input() {
        // ResNeXt-50 layer2.0.downsample.0 (1×1 stride 2, 256→512, 56²→28²), measured:
        // +1,605,760 (the gathered input: 2 × 256 × 28² f32, + 128 B), +3,211,264 (in_blk),
        // +524,288 (w), +1,605,632 (out_blk); ResNet-50's inference peak is there too.
        let s = ConvSizes { weight: 524_288, pointwise: true, strided: true, ..conv(256, 56, 512, 28) };
        let ws = Profile::pytorch().conv_forward_workspace(&s, 1);
        assert_eq!(ws + s.output, 1_605_632 + 3_211_264 + 524_288 + 1_605_632);
    }

    #[test]
    fn blocked_copies_pad_channels_to_sixteen() {
        // ShuffleNetV2 conv1 (3→24, 3×3 s2, 448 → 224): blocked output 6,422,528 B
        // (32 channels) for a 4,816,896 B plain one; weight 32×3×9 f32 = 3,456 B.
        // The op peaks when out_blk and the plain output coexist: 6,422,528 B of scratch
        // (the measured inference peak, 11,239,424 B, is there).
        let s = ConvSizes { weight: 2_592, strided: true, ..conv(3, 448, 24, 224) };
        assert_eq!(Profile::pytorch().conv_forward_workspace(&s, 1), 6_422_528);
        // Before the plain output exists: weight and out_blk, both padded.
        let small_out = ConvSizes { output: 0, ..s };
        assert_eq!(Profile::pytorch().conv_forward_workspace(&small_out, 1), 3_456);
        assert_eq!(channel_blocked(181_888, 58), 200_704);
    }

    #[test]
    fn small_convolutions_run_the_native_kernel() {
        // ShuffleNetV2 stage4 (1×1, 232 channels at 7²: 11,368 input elements):
        // the output is written directly, nothing else.
        let s = ConvSizes { weight: 215_296, pointwise: true, unit_window: true, ..conv(232, 7, 232, 7) };
        assert!(!s.runs_onednn());
        assert_eq!(Profile::pytorch().conv_forward_workspace(&s, 1), 0);
        // R3D-18 at 8 frames, layer2 (3×3×3, 128 channels, 4×28×28: N·C·T·H = 14,336):
        // the vol2col buffer 128·27 × 4·28·28 f32 = 43,352,064 B is the inference peak.
        let s = ConvSizes {
            column_per_image: 4 * 128 * 27 * 4 * 28 * 28,
            lead4_elems: 128 * 4 * 28,
            ..conv(128, 28, 128, 28)
        };
        assert!(!s.runs_onednn());
        assert_eq!(Profile::pytorch().conv_forward_workspace(&s, 1), 43_352_064);
        // The same layer at 16 frames (N·C·T·H = 28,672), grouped or batched ones: oneDNN.
        assert!(ConvSizes { lead4_elems: 128 * 8 * 28, ..s }.runs_onednn());
        assert!(ConvSizes { groups: 2, ..s }.runs_onednn());
        assert!(ConvSizes { batch: 2, ..s }.runs_onednn());
        assert!(ConvSizes { large_kernel: true, ..s }.runs_onednn());
        // Its backward holds one column buffer beside the gradients.
        assert_eq!(Profile::pytorch().conv_backward_workspace(&s, 1), 43_352_064);
    }

    #[test]
    fn onednn_conv_backward_peaks_at_its_worst_moment() {
        let p = Profile::pytorch();
        // SqueezeNet 1.1 classifier.1 (1×1, 512→1000 at 13²), measured: the
        // data pass, then the weights pass ends with the plain weight gradient
        // (2,048,000 B) allocated beside the blocked one, padded to 1008 output
        // channels: 1008·512·4 = 2,064,384 B beyond the gradients (the profiler
        // shows 2,068,384 with a 4,000 B bias temporary, left out).
        let s = ConvSizes { weight: 2_048_000, pointwise: true, unit_window: true, ..conv(512, 13, 1000, 13) };
        assert_eq!(p.conv_backward_workspace(&s, 1), 2_064_384);
        // 1×1, 64→256 at 40²: the weights pass holds the blocked output
        // gradient and input (1,638,400 + 409,600 B, measured exactly); at 56²
        // the work is split over positions and a second blocked weight gradient
        // joins them (3,211,264 + 802,816 + 65,536; measured 4,087,936 with an
        // 8,320 B reduction scratch).
        let s = ConvSizes { weight: 65_536, pointwise: true, unit_window: true, ..conv(64, 40, 256, 40) };
        assert_eq!(p.conv_backward_workspace(&s, 1), 2_048_000);
        let s = ConvSizes { weight: 65_536, pointwise: true, unit_window: true, ..conv(64, 56, 256, 56) };
        assert_eq!(p.conv_backward_workspace(&s, 1), 4_079_616);
        // 3×3, 40→24 at 28²: every copy padded (48 and 32 channels), the
        // weight in both: 100,352 + 150,528 + 55,296 − 34,560 (measured 271,872).
        let s = ConvSizes { weight: 34_560, ..conv(40, 28, 24, 28) };
        assert_eq!(p.conv_backward_workspace(&s, 1), 271_616);
        // Frozen weights (style transfer): the data pass alone, output
        // gradient and weights reordered and the blocked input gradient, less
        // the input gradient returned: 3×3, 64→64 at 64², measured 1,196,032.
        let s = ConvSizes { weight: 147_456, frozen_weights: true, ..conv(64, 64, 64, 64) };
        assert_eq!(p.conv_backward_workspace(&s, 1), 1_196_032);
        // A 3-channel input that needs its gradient (style transfer's first
        // convolution, 3→64 at 128²): the data pass still makes a 16-channel
        // blocked input gradient and pads the weights to 64·16·9·4; measured
        // 4,194,304 + 36,864 + 1,048,576 − 196,608, exact.
        let s = ConvSizes { weight: 6_912, frozen_weights: true, ..conv(3, 128, 64, 128) };
        assert_eq!(p.conv_backward_workspace(&s, 1), 5_083_136);
        // 3→6 at 256² in training: with an input gradient the data pass is the
        // worst moment (4,194,304 + 9,216 + 4,194,304 live, measured); for the
        // image, which gets none, only the weights pass runs: the blocked output
        // gradient, the weights (16·3·9·4) and the split copy, less the weight
        // gradient (measured 4,205,688 with its 8,576 B reduction scratch).
        let s = ConvSizes { weight: 648, ..conv(3, 256, 6, 256) };
        assert_eq!(p.conv_backward_workspace(&s, 1), 8_397_824 - 786_432 - 648);
        let s = ConvSizes { input_no_grad: true, ..s };
        assert_eq!(p.conv_backward_workspace(&s, 1), 4_194_304 + 1_728 + 1_728 - 648);
    }

    #[test]
    fn pytorch_cpu_recurrent_kernels() {
        use crate::ops::{Recurrence, RnnCell};
        // lstm_lm layer 2 (512 → 512) at batch 2 × 128 steps: the measured
        // oneDNN workspace 8,048,640 B; at 2 × 512, 32,034,816 B.
        let lstm = |steps| Recurrence { cell: Some(RnnCell::Lstm), hidden: 512, directions: 1, steps, batch: 2, input_width: 512 };
        let p = Profile::pytorch();
        let c = p.sequence_costs(&lstm(128), 4).unwrap();
        assert_eq!(c.saved, 8_048_640);
        assert_eq!(p.sequence_costs(&lstm(512), 4).unwrap().saved, 32_034_816);
        // W and R reordered (2048 × 1024 f32) and the gates of 256 steps·rows.
        assert_eq!(c.forward, 2048 * 1024 * 4 + 256 * 2048 * 4);
        assert_eq!(c.backward, 2 * 2048 * 1024 * 4 + 256 * 2048 * 4);
        assert!(c.keeps_output);
        // GRU: 5 tensors per step, 28,672 B at batch 2, hidden 512; the output stack is not kept.
        let gru = Recurrence { cell: Some(RnnCell::Gru), ..lstm(1) };
        let g = p.sequence_costs(&gru, 4).unwrap();
        assert_eq!((g.saved, g.keeps_output), (28_672, false));
        // Two directions keep twice as much; other backends keep what the op facts say.
        assert_eq!(p.sequence_costs(&Recurrence { directions: 2, ..gru }, 4).unwrap().saved, 2 * 28_672);
        for other in [Profile::caffe(), Profile::torch_nn(), Profile::cudnn(), Profile::tiny_dnn()] {
            assert_eq!(other.sequence_costs(&gru, 4), None);
        }
    }

    #[test]
    fn unknown_profile_is_none() {
        for n in Profile::NAMES {
            assert_eq!(Profile::by_name(n).map(|p| p.name), Some(*n));
        }
        assert!(Profile::by_name("nope").is_none());
        // No hidden aliases: `torch` is ambiguous (PyTorch or Lua Torch).
        assert!(Profile::by_name("torch").is_none());
    }
}
