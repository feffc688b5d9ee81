//! Backend profiles: what one framework really allocates around the operator
//! facts. A profile is plain data (switches and workspace rules), so another
//! backend (Caffe, torch-nn, cuDNN, tiny-dnn) is one more constructor here and
//! one more name in `Profile::NAMES`, not a change to the liveness engine.

/// How a backend finds scratch memory for a convolution.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConvWorkspace {
    /// No scratch beyond the output.
    None,
    /// oneDNN through PyTorch on CPU (f32): the input is copied into a blocked
    /// layout (when it has more than 3 channels), the weights are reordered, the
    /// result is written blocked and then copied to the plain output. A 3×3 (or
    /// larger) kernel releases the blocked input before the plain output is
    /// allocated; a 1×1 kernel still holds it then.
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
    PerModuleColumns { backward_column: bool },
    /// cuDNN picks an algorithm whose workspace is at most `limit` bytes: the
    /// GEMM-based algorithms need at most the column buffer, so the workspace
    /// is min(column buffer for the batch, limit); nothing persists.
    CudnnCapped { limit: u64 },
    /// Direct convolution over a zero-padded copy of the input (forward) and
    /// of the input gradient (backward), per worker (tiny-dnn).
    PaddedCopies,
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

/// A backend's allocation behaviour.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Profile {
    pub name: &'static str,
    /// Activations the framework's model code runs in place (`ReLU(inplace=True)`)
    /// reuse their input's storage when nothing else reads the input.
    pub in_place_activations: bool,
    /// Reshape-like ops (reshape, flatten, squeeze, permute, slicing, eval-mode
    /// dropout, identity) return views that share their input's storage.
    pub views_share_storage: bool,
    /// Fold the ONNX decompositions of one framework op back into it (SiLU as
    /// Sigmoid·Mul, GELU through Erf): the intermediate results never exist.
    pub fuse_pointwise_decompositions: bool,
    /// Max pooling writes its indices even when no backward will run (they are
    /// then freed as soon as the op returns).
    pub pool_indices_in_inference: bool,
    pub conv_workspace: ConvWorkspace,
    /// Convolution backward reorders the input and the output gradient into
    /// blocked layouts and the weights once (transient).
    pub conv_backward_blocked: bool,
    /// Batch-norm backward holds one input-sized temporary.
    pub norm_backward_temporary: bool,
    /// Gradient flowing into a tensor read by several ops is accumulated in place
    /// into the first gradient buffer; each later contribution is transient.
    pub accumulate_grads_in_place: bool,
    /// A tensor passed into a module call stays referenced by the caller until
    /// the call returns (eager Python frames). Module paths are `Node::scope`
    /// (the ONNX loader reads them from names such as
    /// `/encoder/layers/encoder_layer_0/mlp/mlp.0/MatMul`).
    pub module_scope_hold: bool,
    /// Every buffer lives for the whole run: modules (Torch nn) or blobs (Caffe)
    /// keep their output and gradient between iterations, so nothing is freed.
    pub persistent: bool,
    /// An in-place op's input gradient is its output gradient, overwritten
    /// (Caffe's shared diff of in-place tops, Torch's in-place ReLU).
    pub in_place_grads: bool,
    /// Layers the model file writes in place (Caffe top == bottom) share storage.
    /// False where activations are fused into the layer and keep both values.
    pub honours_in_place: bool,
    /// Dropout's saved mask.
    pub dropout_mask: DropoutMask,
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
    pub bytes: u64,
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
            fuse_pointwise_decompositions: true,
            pool_indices_in_inference: true,
            conv_workspace: ConvWorkspace::OneDnnBlocked,
            conv_backward_blocked: true,
            norm_backward_temporary: true,
            accumulate_grads_in_place: true,
            module_scope_hold: true,
            persistent: false,
            in_place_grads: false,
            honours_in_place: true,
            // CPU dropout keeps its f32 noise (docs/measurements: `aten::dropout`
            // allocates an input-sized `empty_strided` that lives to backward).
            dropout_mask: DropoutMask::Noise,
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
            fuse_pointwise_decompositions: false,
            pool_indices_in_inference: true,
            conv_workspace: ConvWorkspace::SharedColumn,
            conv_backward_blocked: false,
            norm_backward_temporary: false,
            accumulate_grads_in_place: false,
            module_scope_hold: false,
            persistent: true,
            in_place_grads: true,
            honours_in_place: true,
            dropout_mask: DropoutMask::Bool,
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
            conv_backward_blocked: false,
            norm_backward_temporary: false,
            module_scope_hold: false,
            fuse_pointwise_decompositions: false,
            persistent: true,
            in_place_grads: true,
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
            conv_backward_blocked: false,
            norm_backward_temporary: true,
            // CUDA runs the fused native_dropout: a boolean mask.
            dropout_mask: DropoutMask::Bool,
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
            fuse_pointwise_decompositions: false,
            pool_indices_in_inference: true,
            conv_workspace: ConvWorkspace::PaddedCopies,
            conv_backward_blocked: false,
            norm_backward_temporary: false,
            accumulate_grads_in_place: false,
            module_scope_hold: false,
            persistent: true,
            in_place_grads: false,
            honours_in_place: false,
            dropout_mask: DropoutMask::Bool,
            pool_index_bytes: 8,
            per_thread_copies: true,
            default_threads: 8,
            runtime_baseline: None,
        }
    }

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
    pub input: u64,
    pub output: u64,
    pub weight: u64,
    pub in_channels: u64,
    /// Kernel is 1 along every spatial axis.
    pub pointwise: bool,
    /// im2col column buffer for one image, bytes.
    pub column_per_image: u64,
    pub batch: u64,
    /// Input padded by the convolution's pads (bytes), for direct convolution.
    pub padded_input: u64,
}

impl Profile {
    /// Transient bytes a forward convolution holds on top of its input and its
    /// (already counted) output at the op's worst moment.
    pub fn conv_forward_workspace(&self, s: &ConvSizes, threads: u32) -> u64 {
        match self.conv_workspace {
            ConvWorkspace::None => 0,
            ConvWorkspace::OneDnnBlocked => {
                // Blocked input copy only when the channels fill a block (the
                // 3-channel image is consumed as is).
                let in_blk = if s.in_channels > 3 { s.input } else { 0 };
                let out_blk = s.output;
                if s.pointwise {
                    // All of in_blk, reordered weight, out_blk coexist with the plain output.
                    in_blk.saturating_add(s.weight).saturating_add(out_blk)
                } else {
                    // Peak is in + max(in_blk + w + out_blk, out_blk + out); the
                    // plain output is counted by the caller, so subtract it.
                    in_blk.saturating_add(s.weight).saturating_add(out_blk).saturating_sub(s.output).max(out_blk)
                }
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

    /// Scratch the whole net shares, resident from the start: the largest column buffer.
    pub fn shared_workspace(&self, largest_column_per_image: u64) -> u64 {
        match self.conv_workspace {
            ConvWorkspace::SharedColumn => largest_column_per_image,
            _ => 0,
        }
    }

    /// Transient bytes of a convolution's backward step beyond the gradients it returns.
    pub fn conv_backward_workspace(&self, s: &ConvSizes, threads: u32) -> u64 {
        if self.conv_backward_blocked {
            // Blocked copies of the input and of the output gradient, and the weights.
            s.input.saturating_add(s.output).saturating_add(s.weight)
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

    #[test]
    fn onednn_3x3_conv_peaks_on_blocked_copies() {
        // VGG conv1_2 at 224: in = out = 12,845,056 B, w = 147,456 B.
        // Peak above the input: max(in_blk + w + out_blk, out_blk + out) = 25,837,568,
        // i.e. 12,992,512 beyond the plain output.
        let s = ConvSizes { input: 12_845_056, output: 12_845_056, weight: 147_456, in_channels: 64, ..Default::default() };
        assert_eq!(Profile::pytorch().conv_forward_workspace(&s, 1), 12_992_512);
    }

    #[test]
    fn image_conv_has_no_blocked_input() {
        let s = ConvSizes { input: 602_112, output: 3_211_264, weight: 37_632, in_channels: 3, ..Default::default() };
        assert_eq!(Profile::pytorch().conv_forward_workspace(&s, 1), 3_211_264);
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
