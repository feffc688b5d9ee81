//! The one operator vocabulary. Every loader maps its layer or op types onto
//! `Op`; everything nnmem knows about an operator lives in its family file:
//! the shape rule, the weight blobs it stores, what its backward pass keeps,
//! its workspace, whether it may run in place, and its multiply-accumulates.
//!
//! Adding an op: a variant here, one arm in each `match` below, the rule in
//! its family file, and one entry per loader table.

pub mod conv;
pub mod dense;
pub mod detection;
pub mod elementwise;
pub mod layout;
pub mod loss;
pub mod norm;
pub mod pool;
pub mod recurrent;
pub mod resize;
pub mod tensor;
pub mod window;

use crate::tensor::{DType, Shape, ShapeError};

pub use conv::ConvParams;
pub use dense::{DenseParams, EmbedParams};
pub use detection::{DetectionOutputParams, PriorBoxParams, RoiPoolParams};
pub use elementwise::{Activation, EltwiseKind};
pub use layout::{CropParams, FlattenParams, ReshapeParams, SliceParams};
pub use norm::{LrnParams, ScaleParams};
pub use pool::{PoolMethod, PoolParams};
pub use recurrent::RecurrentParams;
pub use resize::{InterpParams, UpsampleParams};
pub use tensor::{BinaryKind, CompareKind, ReduceKind};
pub use window::{Rounding, Window};

#[derive(Clone, Debug, PartialEq)]
pub enum Op {
    /// Convolution (also grouped and depthwise).
    Conv(ConvParams),
    /// Transposed convolution.
    Deconv(ConvParams),
    Pool(PoolParams),
    /// Fully connected over the axes from `axis` on (Caffe InnerProduct, ONNX Gemm).
    Dense(DenseParams),
    /// Batched matrix product of two data inputs (ONNX MatMul).
    MatMul,
    Embed(EmbedParams),
    /// Same-shape pointwise function of one input.
    Activation(Activation),
    /// Parametric ReLU: learned slope per channel or one shared.
    PRelu { channel_shared: bool },
    Dropout { ratio: f32 },
    /// Pointwise combination of several inputs of the same shape (Caffe Eltwise).
    /// ONNX broadcasts operands numpy-style; Caffe requires equal shapes.
    Eltwise { kind: EltwiseKind, broadcast: bool },
    /// a·x + y with a per-channel `a` (SENet fork).
    Axpy,
    Softmax { axis: i64 },
    Lrn(LrnParams),
    /// Normalises with running statistics (Caffe BatchNorm: mean, variance, factor).
    BatchNorm { eps: f32, caffe_factor: bool },
    /// Caffe Scale: multiply by a learned or second-input scale, optional bias.
    Scale(ScaleParams),
    /// Caffe Bias: add a learned or second-input bias.
    Bias(ScaleParams),
    /// Fork BN layer: learned scale and shift per channel, optional running stats.
    BnFork { running_stats: bool },
    /// SSD Normalize: L2 across channels with a learned scale.
    Normalize { channel_shared: bool },
    Concat { axis: i64 },
    /// Every output is a copy (view) of the input.
    Split,
    Slice(SliceParams),
    Flatten(FlattenParams),
    Reshape(ReshapeParams),
    Crop(CropParams),
    Permute { order: Vec<usize> },
    ShuffleChannel { group: u64 },
    Tile { axis: i64, tiles: u64 },
    Reduction { axis: i64 },
    ArgMax { top_k: u64, out_max_val: bool, axis: Option<i64> },
    Upsample(UpsampleParams),
    Interp(InterpParams),
    PriorBox(PriorBoxParams),
    DetectionOutput(DetectionOutputParams),
    RoiPool(RoiPoolParams),
    /// Region proposals (py-faster-rcnn's Python ProposalLayer): (R, 5), R set at run time.
    Proposal,
    Recurrent(RecurrentParams),
    /// A loss: one scalar output.
    Loss { kind: String },
    Accuracy { top_k: u64 },
    /// Consumes its inputs, produces nothing.
    Silence,
    // ONNX tensor-program ops (family file tensor.rs).
    /// Normalises over the axes from `axis` on, learned scale and bias.
    LayerNorm { axis: i64, eps: f32 },
    /// Normalises per group of channels; `None` groups: one per channel (InstanceNorm).
    GroupNorm { groups: Option<u64>, eps: f32 },
    Reduce { kind: ReduceKind, axes: Vec<i64>, keep_dims: bool },
    /// Picks slices along `axis` by an index tensor (embedding lookups, token selection).
    Gather { axis: i64 },
    /// The input's shape as a 1-D integer tensor.
    ShapeOf,
    /// A value stored in the graph (`from_shape`: filled to a shape given at run time).
    Constant { from_shape: bool },
    /// Broadcasts the input to a shape given as a second input.
    Expand,
    Squeeze { axes: Vec<i64> },
    Unsqueeze { axes: Vec<i64> },
    /// ONNX Slice: starts/ends/axes/steps given as inputs.
    StridedSlice,
    Pad,
    /// Spatial resampling by scales or sizes (ONNX Resize, Upsample).
    Resize { mode: String },
    /// Element-wise predicate or logic (boolean output, no gradient).
    Compare(CompareKind),
    /// Element-wise choice between two inputs by a condition.
    Where,
    Binary(BinaryKind),
    /// A type nnmem has no rule for: outputs are unknown, the report says so.
    Unknown { type_name: String },
}

/// An output shape, or a marker that it is fixed only when the net runs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OutShape {
    Known(Shape),
    /// Sized at run time. The shape given has 1 for the data-dependent
    /// extent, so later layers can still size their weights (which never depend on it).
    RunTime(Shape),
}

/// A weight blob a layer stores, named by its role ("weight", "bias", "mean").
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParamSpec {
    pub role: &'static str,
    pub shape: Shape,
    /// Learned (true) or running statistic (false).
    pub trainable: bool,
}

impl ParamSpec {
    pub fn learned(role: &'static str, dims: Vec<u64>) -> Self {
        ParamSpec { role, shape: Shape(dims), trainable: true }
    }
    pub fn statistic(role: &'static str, dims: Vec<u64>) -> Self {
        ParamSpec { role, shape: Shape(dims), trainable: false }
    }
}

/// A tensor an op keeps for its backward pass that is not one of its inputs,
/// outputs or weights (max-pool indices, dropout mask, normalisation statistics).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExtraSaved {
    pub what: &'static str,
    pub elems: u64,
    /// `None`: the compute dtype of the run.
    pub dtype: Option<DType>,
}

/// What one op costs in memory and compute beyond its output, for the shapes it
/// was given. Elements, not bytes: the memory pass applies the run's dtype.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MemoryFacts {
    /// Indices of data inputs whose values backward needs.
    pub saves_inputs: Vec<usize>,
    /// Indices of outputs whose values backward needs.
    pub saves_outputs: Vec<usize>,
    /// Whether backward needs the weights (always resident, listed for the report).
    pub saves_params: bool,
    pub extra_saved: Vec<ExtraSaved>,
    /// The op may overwrite its first input (when no one else reads it).
    pub in_place_ok: bool,
    /// Unrolled-input (im2col) column buffer, elements for one image.
    pub column_elems_per_image: u64,
    /// Multiply-accumulates of the forward pass (a FLOP count is about twice this).
    pub macs: u64,
    /// The op has no backward (losses' labels, shape-only ops still propagate).
    pub no_grad: bool,
}

impl Op {
    /// The short concept name used in reports.
    pub fn name(&self) -> &str {
        match self {
            Op::Conv(_) => "Conv",
            Op::Deconv(_) => "Deconv",
            Op::Pool(p) => match p.method {
                PoolMethod::Max => "MaxPool",
                PoolMethod::Average => "AvgPool",
                PoolMethod::Stochastic => "StochasticPool",
            },
            Op::Dense(_) => "Dense",
            Op::MatMul => "MatMul",
            Op::Embed(_) => "Embed",
            Op::Activation(a) => a.name(),
            Op::PRelu { .. } => "PRelu",
            Op::Dropout { .. } => "Dropout",
            Op::Eltwise { kind, .. } => kind.name(),
            Op::Axpy => "Axpy",
            Op::Softmax { .. } => "Softmax",
            Op::Lrn(_) => "LRN",
            Op::BatchNorm { .. } => "BatchNorm",
            Op::Scale(_) => "Scale",
            Op::Bias(_) => "Bias",
            Op::BnFork { .. } => "BN",
            Op::Normalize { .. } => "Normalize",
            Op::Concat { .. } => "Concat",
            Op::Split => "Split",
            Op::Slice(_) => "Slice",
            Op::Flatten(_) => "Flatten",
            Op::Reshape(_) => "Reshape",
            Op::Crop(_) => "Crop",
            Op::Permute { .. } => "Permute",
            Op::ShuffleChannel { .. } => "ShuffleChannel",
            Op::Tile { .. } => "Tile",
            Op::Reduction { .. } => "Reduction",
            Op::ArgMax { .. } => "ArgMax",
            Op::Upsample(_) => "Upsample",
            Op::Interp(_) => "Interp",
            Op::PriorBox(_) => "PriorBox",
            Op::DetectionOutput(_) => "DetectionOutput",
            Op::RoiPool(_) => "RoiPool",
            Op::Proposal => "Proposal",
            Op::Recurrent(r) => r.kind_name(),
            Op::Loss { .. } => "Loss",
            Op::Accuracy { .. } => "Accuracy",
            Op::Silence => "Silence",
            Op::LayerNorm { .. }
            | Op::GroupNorm { .. }
            | Op::Reduce { .. }
            | Op::Gather { .. }
            | Op::ShapeOf
            | Op::Constant { .. }
            | Op::Expand
            | Op::Squeeze { .. }
            | Op::Unsqueeze { .. }
            | Op::StridedSlice
            | Op::Pad
            | Op::Resize { .. }
            | Op::Compare(_)
            | Op::Where
            | Op::Binary(_) => tensor::name(self),
            Op::Unknown { .. } => "Unknown",
        }
    }

    /// Output shapes from input shapes. `n_outputs` is how many outputs the
    /// node declares (some ops have optional outputs).
    pub fn infer_shapes(&self, inputs: &[&Shape], n_outputs: usize) -> Result<Vec<OutShape>, ShapeError> {
        let known = |s: Shape| Ok(vec![OutShape::Known(s); n_outputs.max(1)]);
        match self {
            Op::Conv(p) => known(conv::conv_shape(p, first(inputs)?)?),
            Op::Deconv(p) => known(conv::deconv_shape(p, first(inputs)?)?),
            Op::Pool(p) => known(pool::pool_shape(p, first(inputs)?)?),
            Op::Dense(p) => known(dense::dense_shape(p, first(inputs)?)?),
            Op::MatMul => known(dense::matmul_shape(inputs)?),
            Op::Embed(p) => known(dense::embed_shape(p, first(inputs)?)?),
            Op::Activation(_)
            | Op::PRelu { .. }
            | Op::Dropout { .. }
            | Op::Softmax { .. }
            | Op::Lrn(_)
            | Op::BatchNorm { .. }
            | Op::BnFork { .. }
            | Op::Normalize { .. }
            | Op::Split => known(first(inputs)?.clone()),
            Op::ShuffleChannel { group } => known(layout::shuffle_shape(*group, first(inputs)?)?),
            Op::Scale(p) | Op::Bias(p) => known(norm::scale_shape(p, inputs)?),
            Op::Eltwise { broadcast, .. } => known(elementwise::eltwise_shape(inputs, *broadcast)?),
            Op::Axpy => known(elementwise::axpy_shape(inputs)?),
            Op::Concat { axis } => known(layout::concat_shape(*axis, inputs)?),
            Op::Slice(p) => layout::slice_shapes(p, first(inputs)?, n_outputs),
            Op::Flatten(p) => known(layout::flatten_shape(p, first(inputs)?)?),
            Op::Reshape(p) => known(layout::reshape_shape(p, first(inputs)?)?),
            Op::Crop(p) => known(layout::crop_shape(p, inputs)?),
            Op::Permute { order } => known(layout::permute_shape(order, first(inputs)?)?),
            Op::Tile { axis, tiles } => known(layout::tile_shape(*axis, *tiles, first(inputs)?)?),
            Op::Reduction { axis } => known(layout::reduction_shape(*axis, first(inputs)?)?),
            Op::ArgMax { top_k, out_max_val, axis } => {
                known(layout::argmax_shape(*top_k, *out_max_val, *axis, first(inputs)?)?)
            }
            Op::Upsample(p) => known(resize::upsample_shape(p, first(inputs)?)?),
            Op::Interp(p) => known(resize::interp_shape(p, inputs)?),
            Op::PriorBox(p) => known(detection::prior_box_shape(p, inputs)?),
            Op::DetectionOutput(_) => Ok(vec![OutShape::RunTime(Shape(vec![1, 1, 1, 7])); n_outputs.max(1)]),
            Op::RoiPool(p) => known(detection::roi_pool_shape(p, inputs)?),
            Op::Proposal => Ok(vec![OutShape::RunTime(Shape(vec![1, 5])); n_outputs.max(1)]),
            Op::Recurrent(p) => recurrent::recurrent_shapes(p, inputs, n_outputs),
            Op::Loss { .. } => known(Shape::scalar()),
            Op::Accuracy { .. } => loss::accuracy_shapes(inputs, n_outputs),
            Op::Silence => Ok(Vec::new()),
            Op::LayerNorm { .. }
            | Op::GroupNorm { .. }
            | Op::Reduce { .. }
            | Op::Gather { .. }
            | Op::ShapeOf
            | Op::Constant { .. }
            | Op::Expand
            | Op::Squeeze { .. }
            | Op::Unsqueeze { .. }
            | Op::StridedSlice
            | Op::Pad
            | Op::Resize { .. }
            | Op::Compare(_)
            | Op::Where
            | Op::Binary(_) => tensor::infer_shapes(self, inputs, n_outputs),
            Op::Unknown { type_name } => {
                Err(ShapeError::new(format!("no shape rule for type \"{type_name}\"")))
            }
        }
    }

    /// The weight blobs the layer stores, as the framework stores them.
    pub fn param_specs(&self, inputs: &[&Shape]) -> Result<Vec<ParamSpec>, ShapeError> {
        match self {
            Op::Conv(p) => conv::conv_params(p, first(inputs)?),
            Op::Deconv(p) => conv::deconv_params(p, first(inputs)?),
            Op::Dense(p) => dense::dense_params(p, first(inputs)?),
            Op::Embed(p) => Ok(dense::embed_params(p)),
            Op::PRelu { channel_shared } => Ok(elementwise::prelu_params(*channel_shared, first(inputs)?)),
            Op::BatchNorm { caffe_factor, .. } => norm::batch_norm_params(*caffe_factor, first(inputs)?),
            Op::Scale(p) => norm::scale_params(p, inputs, true),
            Op::Bias(p) => norm::scale_params(p, inputs, false),
            Op::BnFork { running_stats } => norm::bn_fork_params(*running_stats, first(inputs)?),
            Op::Normalize { channel_shared } => norm::normalize_params(*channel_shared, first(inputs)?),
            Op::Recurrent(p) => recurrent::recurrent_params(p, inputs),
            Op::LayerNorm { .. } | Op::GroupNorm { .. } => tensor::param_specs(self, inputs),
            _ => Ok(Vec::new()),
        }
    }
}

impl Op {
    /// What the op keeps for backward, its workspace, whether it may run in
    /// place and its MACs, for these shapes (framework-neutral; backend
    /// specifics live in `memory::profiles`). The rules follow the derivative
    /// formulas: a gradient that multiplies by the input needs the input
    /// (convolution, linear, product), one that is a function of the result
    /// needs the output (ReLU's mask, σ(1−σ), softmax), and linear maps (add,
    /// concat, reshape) need nothing but shapes.
    pub fn memory_facts(&self, inputs: &[&Shape], outputs: &[&Shape]) -> MemoryFacts {
        let in0 = inputs.first().copied();
        let out0 = outputs.first().copied();
        let n = inputs.len();
        match self {
            Op::Conv(p) => conv::conv_memory(p, in0, out0),
            Op::Deconv(p) => conv::deconv_memory(p, in0),
            Op::Pool(p) => pool::pool_memory(p, out0),
            Op::Dense(p) => dense::dense_memory(p, in0, out0),
            Op::MatMul => dense::matmul_memory(inputs, out0),
            Op::Embed(_) => dense::embed_memory(),
            Op::Activation(a) => elementwise::activation_memory(*a),
            Op::PRelu { .. } => elementwise::prelu_memory(),
            Op::Dropout { .. } => elementwise::dropout_memory(in0),
            Op::Eltwise { kind, .. } => elementwise::eltwise_memory(*kind, n),
            Op::Axpy => elementwise::axpy_memory(n),
            Op::Softmax { .. } => elementwise::softmax_memory(),
            Op::Lrn(_) => norm::lrn_memory(in0),
            Op::BatchNorm { .. } | Op::BnFork { .. } => norm::batch_norm_memory(in0),
            Op::Scale(_) => norm::scale_memory(n),
            Op::Bias(_) => norm::bias_memory(),
            Op::Normalize { .. } => norm::normalize_memory(in0),
            Op::Concat { .. }
            | Op::Split
            | Op::Slice(_)
            | Op::Flatten(_)
            | Op::Reshape(_)
            | Op::Crop(_)
            | Op::Permute { .. }
            | Op::ShuffleChannel { .. }
            | Op::Tile { .. }
            | Op::Reduction { .. }
            | Op::ArgMax { .. } => layout::layout_memory(self),
            Op::Upsample(_) | Op::Interp(_) => resize::resize_memory(),
            Op::PriorBox(_) | Op::DetectionOutput(_) | Op::RoiPool(_) | Op::Proposal => {
                detection::detection_memory(self, n, out0)
            }
            Op::Recurrent(_) => recurrent::recurrent_memory(out0),
            Op::Loss { .. } | Op::Accuracy { .. } | Op::Silence => loss::loss_memory(self, n),
            Op::LayerNorm { .. }
            | Op::GroupNorm { .. }
            | Op::Reduce { .. }
            | Op::Gather { .. }
            | Op::ShapeOf
            | Op::Constant { .. }
            | Op::Expand
            | Op::Squeeze { .. }
            | Op::Unsqueeze { .. }
            | Op::StridedSlice
            | Op::Pad
            | Op::Resize { .. }
            | Op::Compare(_)
            | Op::Where
            | Op::Binary(_) => tensor::memory_facts(self, inputs),
            // Nothing is known: assume backward needs every input.
            Op::Unknown { .. } => MemoryFacts { saves_inputs: (0..n).collect(), ..Default::default() },
        }
    }
}

fn first<'a>(inputs: &[&'a Shape]) -> Result<&'a Shape, ShapeError> {
    inputs.first().copied().ok_or_else(|| ShapeError::new("the layer has no input"))
}

/// The `i`-th input, or an error naming what is missing.
fn nth<'a>(inputs: &[&'a Shape], i: usize, what: &str) -> Result<&'a Shape, ShapeError> {
    inputs
        .get(i)
        .copied()
        .ok_or_else(|| ShapeError::new(format!("the layer needs a {what} as input {}", i + 1)))
}

/// Channels of an N-C-… blob (axis 1), or an error.
fn channels(shape: &Shape) -> Result<u64, ShapeError> {
    shape.dim(1).map_err(|_| ShapeError::new(format!("input {shape} has no channel axis")))
}

fn overflow(what: &str) -> ShapeError {
    ShapeError::new(format!("{what} overflows 64 bits"))
}
