//! The one operator vocabulary. Every loader maps its layer or op types onto
//! `Op`; everything nnmem knows about an operator lives in its family file:
//! the shape rule, the weight blobs it stores, what its backward pass keeps,
//! its workspace, how the framework stores and fuses its result, and its
//! multiply-accumulates.
//!
//! `Op` is a two-level enum: one variant per family (`Op::Layout(LayoutOp)`),
//! one variant per operator inside the family. Each family implements
//! `Family` with exhaustive matches over its own variants (no fallback arm),
//! so an operator that misses a rule or a fact does not compile. `Op` itself
//! dispatches in exactly one `match` (`Op::family`).
//!
//! Adding an op: a variant in its family's enum and one arm in each of that
//! family's `Family` methods (the compiler lists them), then the loader
//! mapping and a test (docs/ARCHITECTURE.md, "Adding an op").

pub mod attention;
pub mod constant;
pub mod conv;
pub mod dense;
pub mod detection;
pub mod elementwise;
pub mod index;
pub mod layout;
pub mod loss;
pub mod norm;
pub mod pool;
pub mod quant;
pub mod recurrent;
pub mod reduce;
pub mod resize;
pub mod value;
pub mod window;

use crate::tensor::{DType, Shape, ShapeError};

pub use attention::AttentionOp;
pub use constant::{ConstantOp, StoredValue};
pub use conv::{ConvOp, ConvParams};
pub use dense::{DenseOp, DenseParams, EmbedParams, MarginParams};
pub use detection::{DetectionOp, DetectionOutputParams, PriorBoxParams, RoiPoolParams};
pub use elementwise::{Activation, BinaryKind, CompareKind, EltwiseKind, ElementwiseOp, UnaryKind};
pub use index::IndexOp;
pub use layout::{CropParams, FlattenParams, LayoutOp, ReshapeParams, SliceAttrs, SliceParams};
pub use loss::LossOp;
pub use norm::{LrnParams, NormOp, ScaleParams};
pub use pool::{PoolMethod, PoolParams};
pub use quant::QuantOp;
pub use recurrent::{RecurrentKind, RecurrentParams, Recurrence, RnnCell, SequenceParams};
pub use reduce::{ReduceKind, ReduceOp};
pub use resize::{AspectPolicy, InterpParams, ResizeOp, ScaledParams, UnpoolParams, UnpoolSize, UpsampleParams};
pub use value::{Input, Value, MAX_VALUE_ELEMS};
pub use window::{AutoPad, Rounding, Window};

/// nnmem's operator vocabulary: one variant per family, each holding its typed parameters.
#[derive(Clone, Debug, PartialEq)]
pub enum Op {
    /// Convolution and transposed convolution (conv.rs).
    Conv(ConvOp),
    /// Max, average and stochastic pooling, windowed or global (pool.rs).
    Pool(Box<PoolParams>),
    /// Fully connected layers, matrix products, embeddings (dense.rs).
    Dense(DenseOp),
    /// Same-shape functions of one or several inputs: activations, dropout,
    /// arithmetic, comparisons, softmax (elementwise.rs).
    Elementwise(ElementwiseOp),
    /// Normalisations and per-channel affine layers (norm.rs).
    Norm(NormOp),
    /// Moving values without arithmetic: concat, slice, reshape, permute, gather, pad (layout.rs).
    Layout(LayoutOp),
    /// Picking, placing and finding values by index: gathers, scatters, top-k, non-zero (index.rs).
    Index(IndexOp),
    /// Reductions and scans along axes (reduce.rs).
    Reduce(ReduceOp),
    /// Spatial resampling (resize.rs).
    Resize(Box<ResizeOp>),
    /// Prior boxes, detection output, RoI pooling, proposals (detection.rs).
    Detection(DetectionOp),
    /// Caffe's unrolled LSTM and RNN (recurrent.rs).
    Recurrent(RecurrentParams),
    /// ONNX's LSTM, GRU and RNN over a whole sequence (recurrent.rs).
    Sequence(SequenceParams),
    /// Losses, accuracy, silence: the ends of a training net (loss.rs).
    Loss(LossOp),
    /// Values that are not data: shapes and stored constants (constant.rs).
    Constant(ConstantOp),
    /// Fused attention and rotary embedding (attention.rs).
    Attention(AttentionOp),
    /// Quantisation and quantised matrix products (quant.rs).
    Quant(QuantOp),
    /// A type nnmem has no rule for: outputs are unknown, the report says so.
    Unknown(UnknownOp),
}

/// An operator outside the vocabulary, by the name the file gave it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnknownOp {
    /// The op type as the file names it (`domain:Type` outside the default domain).
    pub type_name: String,
}

/// An output shape, or a marker that it is fixed only when the net runs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OutShape {
    /// Known.
    Known(Shape),
    /// Sized at run time. The shape given has 1 for the data-dependent
    /// extent, so later layers can still size their weights (which never depend on it).
    RunTime(Shape),
    /// Known except along `axis`, a count the data decides (the region
    /// proposals a layer keeps after NMS, the detections, the boxes of a
    /// batch). `shape` holds 1 there. `symbol` is the capital letter that
    /// names what is counted (`R` regions, `S` sampled regions, `D`
    /// detections, `G` ground-truth boxes); the graph builder turns it into
    /// a free symbol the report shows and `--dim` binds.
    RunTimeExtent {
        /// The shape, 1 along `axis`.
        shape: Shape,
        /// The data-dependent axis.
        axis: usize,
        /// The letter naming the count.
        symbol: &'static str,
    },
}

/// A weight blob a layer stores, named by its role ("weight", "bias", "mean").
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParamSpec {
    /// Its role (`weight`, `bias`, `mean`, …).
    pub role: &'static str,
    /// Its shape.
    pub shape: Shape,
    /// Learned (true) or running statistic (false).
    pub trainable: bool,
}

impl ParamSpec {
    /// A learned weight blob.
    pub fn learned(role: &'static str, dims: Vec<u64>) -> Self {
        ParamSpec { role, shape: Shape(dims), trainable: true }
    }
    /// A running statistic (not trained).
    pub fn statistic(role: &'static str, dims: Vec<u64>) -> Self {
        ParamSpec { role, shape: Shape(dims), trainable: false }
    }
}

/// The element type of a tensor an op keeps for backward.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SavedType {
    /// The compute dtype of the run.
    Compute,
    /// A fixed type whatever the run (masks, argmax positions, f32 statistics).
    Fixed(DType),
    /// Max-pooling positions, in the backend's index type (`Profile::pool_index_bytes`);
    /// some backends write them even when no backward runs.
    PoolIndex,
    /// Dropout's mask, as the backend keeps it (`Profile::dropout_mask`): a
    /// boolean per element, or the scaled noise in the compute dtype.
    DropoutMask,
}

/// A tensor an op keeps for its backward pass that is not one of its inputs,
/// outputs or weights (max-pool indices, dropout mask, normalisation statistics).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExtraSaved {
    /// What it is (for reports).
    pub what: &'static str,
    /// Its elements.
    pub elems: u64,
    /// Its element type.
    pub dtype: SavedType,
}

/// What one op costs in memory and compute beyond its output, for the shapes it
/// was given. Elements, not bytes: the memory pass applies the run's dtype.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MemoryFacts {
    /// Indices of data inputs whose values backward needs.
    pub saves_inputs: Vec<usize>,
    /// Each saved input serves only the other operands' gradients (a product:
    /// d(a·b)/da = b), so it is kept only when another operand or a trainable
    /// weight of the node needs a gradient (autograd saves conditionally).
    pub saves_for_other_operands: bool,
    /// Indices of outputs whose values backward needs.
    pub saves_outputs: Vec<usize>,
    /// Whether backward needs the weights (always resident, listed for the report).
    pub saves_params: bool,
    /// Tensors kept for backward besides inputs, outputs and weights.
    pub extra_saved: Vec<ExtraSaved>,
    /// The op may overwrite its first input (when no one else reads it).
    pub in_place_ok: bool,
    /// Unrolled-input (im2col) column buffer, elements for one image.
    pub column_elems_per_image: u64,
    /// Multiply-accumulates of the forward pass (a FLOP count is about twice this).
    pub macs: u64,
    /// The op has no backward (losses' labels, shape-only ops still propagate).
    pub no_grad: bool,
    /// A recurrent op over a sequence: what backends' recurrent-kernel rules
    /// read (their workspaces and what they keep instead of `extra_saved`).
    pub recurrence: Option<Recurrence>,
    /// A view whose output axis i is input axis `perm[i]` (a transpose).
    pub view_permutation: Option<Vec<usize>>,
    /// The memory layout the op's kernel needs of its first input.
    pub input_layout: InputLayout,
    /// The op is a whole attention computation in one node (ONNX Attention,
    /// ORT's GroupQueryAttention, MultiHeadAttention): the extents of the
    /// score matrix its fused kernel never makes, for a backend that runs
    /// the math path instead (the memory pass's `--attention math`).
    pub fused_attention: Option<AttentionExtents>,
}

/// The extents of one attention computation's scores: batch × query heads,
/// query rows, key columns; head sizes of Q·Kᵀ and of V.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AttentionExtents {
    /// Batch × query heads.
    pub batch_heads: u64,
    /// Query rows.
    pub q_len: u64,
    /// Key columns (the past included).
    pub kv_len: u64,
    /// Head size of Q and K.
    pub head_qk: u64,
    /// Head size of V.
    pub head_v: u64,
}

/// What an op's kernel needs of the layout of its first input (frameworks
/// whose views keep strides copy an input that does not fit).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum InputLayout {
    /// Any strides.
    #[default]
    Any,
    /// Contiguous (layer normalisation's kernel).
    Contiguous,
    /// Viewable as rows of its last axis: a matrix product by a weight
    /// flattens the leading axes of an input of rank above 2.
    Rows,
}

/// Whether an op's outputs are data computed from its inputs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Produces {
    /// Values computed from the inputs (an activation when an input is data).
    Data,
    /// A shape or a stored constant: never activation memory, whatever it reads.
    ShapeOrConstant,
}

/// Where the framework puts an op's result.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Storage {
    /// New storage for every output.
    Allocates,
    /// A view of input 0 (reshape, slice, identity): no new storage, in
    /// profiles whose views share storage.
    View,
    /// A view only in inference, where the op is the identity (dropout).
    ViewInInference,
    /// A reshape: a view of input 0 when its strides allow one (PyTorch's
    /// `reshape`), a copy when the input is broadcast (an expanded axis merged
    /// with another one, as grouped-query attention's K/V expansion does).
    Reshape,
}

impl Storage {
    /// May share its input's storage.
    pub fn view_like(self) -> bool {
        match self {
            Storage::View | Storage::Reshape => true,
            Storage::Allocates | Storage::ViewInInference => false,
        }
    }
}

/// How an op may be folded with its neighbours when an exporter split one
/// framework op into several nodes (profiles with `fuse_pointwise_decompositions`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fusion {
    /// Never folded.
    None,
    /// A pointwise function of one value (σ, erf, …): a link of a decomposition chain.
    Function,
    /// Pointwise arithmetic on operands (subtract, divide, power …): a link
    /// of a chain, or an epilogue (GELU's ½) when exactly one operand is data.
    Arithmetic,
    /// Addition: as `Arithmetic`, and the bias add of a linear layer when its
    /// other operand is a weight and its data operand a `MatrixProduct`'s result.
    Sum,
    /// A pointwise product: as `Arithmetic`, and the root of a decomposition
    /// x·f(x) (SiLU = x·σ(x), GELU = x·Φ(x)).
    Product,
    /// A matrix product (MatMul): never a link; a bias add that follows it is
    /// part of the same framework op (`nn.Linear` on a 3-D input is one
    /// `addmm` writing one tensor).
    MatrixProduct,
}

impl Fusion {
    /// May be a link of a decomposition chain.
    pub fn pointwise(self) -> bool {
        match self {
            Fusion::None | Fusion::MatrixProduct => false,
            Fusion::Function | Fusion::Arithmetic | Fusion::Sum | Fusion::Product => true,
        }
    }

    /// May update its data operand where it lies when the other operands are constants.
    pub fn epilogue(self) -> bool {
        match self {
            Fusion::None | Fusion::Function | Fusion::MatrixProduct => false,
            Fusion::Arithmetic | Fusion::Sum | Fusion::Product => true,
        }
    }

    /// May close a decomposition x·f(x).
    pub fn product(self) -> bool {
        self == Fusion::Product
    }

    /// May be the bias add of a linear layer (its other operand a weight).
    pub fn bias_add(self) -> bool {
        self == Fusion::Sum
    }

    /// A matrix product a bias add may complete (`addmm`).
    pub fn takes_bias(self) -> bool {
        self == Fusion::MatrixProduct
    }
}

/// Shape-independent facts the memory schedule needs about an op. There is no
/// default: every operator states each one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ScheduleFacts {
    /// Whether it computes data or only shapes/constants.
    pub produces: Produces,
    /// Whether its output is new storage, a view, or in place.
    pub storage: Storage,
    /// Its role in decompositions and epilogues.
    pub fusion: Fusion,
    /// Backward holds one input-sized temporary (batch, layer and group
    /// normalisation), in profiles with `norm_backward_temporary`.
    pub backward_input_temporary: bool,
    /// The part the op may play in attention written out as ops (scores =
    /// Q·Kᵀ, scaled, masked, softmax, dropout, ·V), which the memory pass
    /// recognises to apply the backend's attention kernel.
    pub attention: AttentionPart,
}

/// A piece of attention spelled as separate ops. The matrix products are
/// `Fusion::MatrixProduct`, the mask add `Fusion::Sum`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AttentionPart {
    /// No part of attention.
    None,
    /// Multiplies or divides its one data operand by constants (a scale).
    Scale,
    /// Softmax over the last axis.
    Softmax,
    /// Dropout with a ratio above 0.
    Dropout,
}

impl ScheduleFacts {
    /// Computes data into new storage; not fusable; no backward temporary.
    pub const COMPUTES: ScheduleFacts = ScheduleFacts {
        produces: Produces::Data,
        storage: Storage::Allocates,
        fusion: Fusion::None,
        backward_input_temporary: false,
        attention: AttentionPart::None,
    };
    /// A view of input 0.
    pub const VIEW: ScheduleFacts = ScheduleFacts { storage: Storage::View, ..ScheduleFacts::COMPUTES };
}

/// What a backend's convolution workspace rules read about one convolution,
/// from whatever of its input is known (unknown parts count 0, batch 1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConvGeometry {
    /// Elements of the input with its spatial padding added (N·C·∏(x + pads)).
    pub padded_input_elems: u64,
    /// Extent of the input's axis 1.
    pub in_channels: u64,
    /// Every kernel extent is 1.
    pub pointwise_kernel: bool,
    /// Elements of the weight tensors of rank > 1 (the filters, not the bias).
    pub weight_elems: u64,
    /// Extent of the input's axis 0.
    pub batch: u64,
    /// Output channels and groups (the group count for this input).
    pub out_channels: u64,
    /// The group count for this input.
    pub groups: u64,
    /// Elements of the output's spatial axes, one image.
    pub out_spatial_elems: u64,
    /// Product of the input's first four extents as a framework that views a
    /// 1-D convolution as 2-D sees them: N·C·H·W, N·C·T·H (3-D), N·C·1·L (1-D).
    pub lead4_elems: u64,
    /// Both of the kernel's last two extents exceed 3.
    pub large_kernel: bool,
    /// Some stride exceeds 1.
    pub strided: bool,
    /// Some dilation exceeds 1.
    pub dilated: bool,
    /// Every kernel extent and stride is 1 and nothing is padded: the
    /// unrolled input is the input itself.
    pub unit_window: bool,
    /// A transposed convolution.
    pub transposed: bool,
}

/// What every operator family answers. Implementations match their own
/// variants exhaustively, never with a fallback arm.
trait Family {
    /// The short concept name used in reports.
    fn name(&self) -> &'static str;
    /// Output shapes from input shapes; `n_outputs` is how many outputs the node declares.
    fn infer_shapes(&self, inputs: &[&Shape], n_outputs: usize) -> Result<Vec<OutShape>, ShapeError>;
    /// Whether the op may store weights (some forms take them as inputs instead).
    fn has_weights(&self) -> bool;
    /// The weight blobs the layer stores, as the framework stores them.
    fn param_specs(&self, inputs: &[&Shape]) -> Result<Vec<ParamSpec>, ShapeError>;
    /// Storage, fusion and data facts that hold for any shape.
    fn schedule_facts(&self) -> ScheduleFacts;
    /// Saved tensors, in-place, column buffer, MACs for these shapes.
    fn memory_facts(&self, inputs: &[&Shape], outputs: &[&Shape]) -> MemoryFacts;
    /// Convolutions only: the workspace geometry.
    fn conv_geometry(&self, input: Option<&Shape>, weights: &[&Shape]) -> Option<ConvGeometry>;

    /// Output shapes from the node's inputs in operator order (weights
    /// included; `None` for an optional input left out), with their element
    /// types and, when small and known, their values. Families whose ops read
    /// values or weights' dims override this; the default runs
    /// `infer_shapes` on the shapes of the inputs given.
    fn infer(&self, inputs: &[Option<Input<'_>>], n_outputs: usize) -> Result<Vec<OutShape>, ShapeError> {
        self.infer_shapes(&value::present_shapes(inputs)?, n_outputs)
    }

    /// The element type of output `index`; `None`: that of input 0.
    fn out_dtype(&self, _inputs: &[Option<Input<'_>>], _index: usize) -> Option<DType> {
        None
    }

    /// The output values, for ops that compute small tensors (shape
    /// arithmetic) whose inputs' values are known; `None` when not evaluated.
    /// Called only when every output has at most `MAX_VALUE_ELEMS` elements.
    fn eval(&self, _inputs: &[Option<Input<'_>>], _outputs: &[&Shape]) -> Option<Vec<Value>> {
        None
    }
}

impl Op {
    /// The one dispatching `match`.
    fn family(&self) -> &dyn Family {
        match self {
            Op::Conv(f) => f,
            Op::Pool(f) => &**f,
            Op::Dense(f) => f,
            Op::Elementwise(f) => f,
            Op::Norm(f) => f,
            Op::Layout(f) => f,
            Op::Index(f) => f,
            Op::Reduce(f) => f,
            Op::Resize(f) => &**f,
            Op::Detection(f) => f,
            Op::Recurrent(f) => f,
            Op::Sequence(f) => f,
            Op::Loss(f) => f,
            Op::Constant(f) => f,
            Op::Attention(f) => f,
            Op::Quant(f) => f,
            Op::Unknown(f) => f,
        }
    }

    /// The short concept name used in reports.
    pub fn name(&self) -> &'static str {
        self.family().name()
    }

    /// Output shapes from input shapes. `n_outputs` is how many outputs the
    /// node declares (some ops have optional outputs).
    pub fn infer_shapes(&self, inputs: &[&Shape], n_outputs: usize) -> Result<Vec<OutShape>, ShapeError> {
        self.family().infer_shapes(inputs, n_outputs)
    }

    /// Whether the op may store weights (a Caffe Scale by a second input
    /// stores none, but the layer type has them).
    pub fn has_weights(&self) -> bool {
        self.family().has_weights()
    }

    /// The weight blobs the layer stores, as the framework stores them.
    pub fn param_specs(&self, inputs: &[&Shape]) -> Result<Vec<ParamSpec>, ShapeError> {
        self.family().param_specs(inputs)
    }

    /// How the framework stores and fuses the op's result, and whether it is
    /// data at all; independent of shapes.
    pub fn schedule_facts(&self) -> ScheduleFacts {
        self.family().schedule_facts()
    }

    /// What the op keeps for backward, its column buffer, whether it may run in
    /// place and its MACs, for these shapes (framework-neutral; backend
    /// specifics live in `memory::profiles`). The rules follow the derivative
    /// formulas: a gradient that multiplies by the input needs the input
    /// (convolution, linear, product), one that is a function of the result
    /// needs the output (ReLU's mask, σ(1−σ), softmax), and linear maps (add,
    /// concat, reshape) need nothing but shapes.
    pub fn memory_facts(&self, inputs: &[&Shape], outputs: &[&Shape]) -> MemoryFacts {
        self.family().memory_facts(inputs, outputs)
    }

    /// Convolutions: what the backends' workspace rules read, from the first
    /// input's shape when known and the weights' shapes. `None` for other ops.
    pub fn conv_geometry(&self, input: Option<&Shape>, weights: &[&Shape]) -> Option<ConvGeometry> {
        self.family().conv_geometry(input, weights)
    }

    /// Output shapes from the inputs in operator order (weights included),
    /// their element types and small known values (`value` module). An error
    /// says why the rule does not apply; the shape is then not known.
    pub fn infer(&self, inputs: &[Option<Input<'_>>], n_outputs: usize) -> Result<Vec<OutShape>, ShapeError> {
        self.family().infer(inputs, n_outputs)
    }

    /// The element type of output `index` (`None`: input 0's).
    pub fn out_dtype(&self, inputs: &[Option<Input<'_>>], index: usize) -> Option<DType> {
        self.family().out_dtype(inputs, index)
    }

    /// The output values when the op computes small tensors from known values.
    pub fn eval(&self, inputs: &[Option<Input<'_>>], outputs: &[&Shape]) -> Option<Vec<Value>> {
        self.family().eval(inputs, outputs)
    }
}

impl Family for UnknownOp {
    fn name(&self) -> &'static str {
        "Unknown"
    }
    fn infer_shapes(&self, _: &[&Shape], _: usize) -> Result<Vec<OutShape>, ShapeError> {
        Err(ShapeError::new(format!("no shape rule for type \"{}\"", self.type_name)))
    }
    fn has_weights(&self) -> bool {
        false
    }
    fn param_specs(&self, _: &[&Shape]) -> Result<Vec<ParamSpec>, ShapeError> {
        Ok(Vec::new())
    }
    fn schedule_facts(&self) -> ScheduleFacts {
        ScheduleFacts::COMPUTES
    }
    /// Nothing is known: assume backward needs every input.
    fn memory_facts(&self, inputs: &[&Shape], _: &[&Shape]) -> MemoryFacts {
        MemoryFacts { saves_inputs: (0..inputs.len()).collect(), ..Default::default() }
    }
    fn conv_geometry(&self, _: Option<&Shape>, _: &[&Shape]) -> Option<ConvGeometry> {
        None
    }
}

/// The same known shape for every declared output (at least one).
fn known(shape: Shape, n_outputs: usize) -> Result<Vec<OutShape>, ShapeError> {
    Ok(vec![OutShape::Known(shape); n_outputs.max(1)])
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

/// Axes listed by an op, resolved against `rank` (negative counts from the end),
/// sorted and without repeats.
fn resolve_axes(axes: &[i64], rank: usize) -> Result<Vec<usize>, ShapeError> {
    let mut out = Vec::with_capacity(axes.len().min(rank));
    for &a in axes {
        let r = if a < 0 { a.checked_add(rank as i64) } else { Some(a) };
        match r {
            Some(r) if r >= 0 && (r as usize) < rank => out.push(r as usize),
            _ => return Err(ShapeError::new(format!("axis {a} is out of range for rank {rank}"))),
        }
    }
    out.sort_unstable();
    out.dedup();
    Ok(out)
}

/// Backward keeps every input (a product of data inputs, a loss).
fn saves_all(inputs: &[&Shape]) -> MemoryFacts {
    MemoryFacts { saves_inputs: (0..inputs.len()).collect(), ..Default::default() }
}

/// No gradient flows through the op.
fn no_grad() -> MemoryFacts {
    MemoryFacts { no_grad: true, ..Default::default() }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(d: &[u64]) -> Shape {
        Shape::new(d.to_vec())
    }

    #[test]
    fn max_pool_keeps_backend_indices_per_output() {
        let p = PoolParams {
            method: PoolMethod::Max,
            window: Window::symmetric(vec![2, 2], vec![2, 2], vec![0, 0], vec![1, 1]),
            rounding: Rounding::Floor,
            global: false,
            clip_last_window: false,
        };
        let f = Op::Pool(Box::new(p)).memory_facts(&[&s(&[1, 64, 112, 112])], &[&s(&[1, 64, 56, 56])]);
        assert_eq!(f.saves_inputs, vec![0]);
        assert_eq!(f.extra_saved[0].elems, 64 * 56 * 56);
        assert_eq!(f.extra_saved[0].dtype, SavedType::PoolIndex);
    }

    #[test]
    fn relu_keeps_its_output_and_may_run_in_place() {
        let x = s(&[1, 8]);
        let f = Op::Elementwise(ElementwiseOp::Activation(Activation::Relu { negative_slope: 0.0 })).memory_facts(&[&x], &[&x]);
        assert_eq!(f.saves_outputs, vec![0]);
        assert!(f.saves_inputs.is_empty());
        assert!(f.in_place_ok);
    }

    #[test]
    fn add_keeps_nothing() {
        let x = s(&[1, 8]);
        let f = Op::Elementwise(ElementwiseOp::Eltwise { kind: EltwiseKind::Sum, broadcast: false }).memory_facts(&[&x, &x], &[&x]);
        assert_eq!(f, MemoryFacts::default());
    }

    #[test]
    fn clip_keeps_its_input_and_says_so() {
        let x = s(&[1, 8]);
        let f = Op::Elementwise(ElementwiseOp::Activation(Activation::Clip)).memory_facts(&[&x], &[&x]);
        assert_eq!(f.saves_inputs, vec![0]);
        assert!(f.saves_outputs.is_empty());
        assert!(!Activation::Clip.backward_uses_output());
        assert!(f.in_place_ok);
    }

    #[test]
    fn views_dropout_and_constants() {
        let reshape = Op::Layout(LayoutOp::Reshape(ReshapeParams { dims: vec![-1], axis: 0, num_axes: -1 }));
        assert_eq!(reshape.schedule_facts().storage, Storage::Reshape);
        assert!(Storage::Reshape.view_like());
        assert_eq!(Op::Layout(LayoutOp::Concat { axis: 1 }).schedule_facts().storage, Storage::Allocates);
        let dropout = Op::Elementwise(ElementwiseOp::Dropout { ratio: 0.5 });
        assert_eq!(dropout.schedule_facts().storage, Storage::ViewInInference);
        assert_eq!(Op::Constant(ConstantOp::ShapeOf { start: 0, end: None }).schedule_facts().produces, Produces::ShapeOrConstant);
        assert_eq!(reshape.schedule_facts().produces, Produces::Data);
    }

    #[test]
    fn fusion_roles_of_pointwise_ops() {
        let mul = Op::Elementwise(ElementwiseOp::Eltwise { kind: EltwiseKind::Prod, broadcast: true });
        let add = Op::Elementwise(ElementwiseOp::Eltwise { kind: EltwiseKind::Sum, broadcast: true });
        let sigmoid = Op::Elementwise(ElementwiseOp::Activation(Activation::Sigmoid));
        let f = |op: &Op| op.schedule_facts().fusion;
        assert!(f(&mul).product() && f(&mul).epilogue() && f(&mul).pointwise());
        assert!(!f(&add).product() && f(&add).epilogue() && f(&add).bias_add() && !f(&mul).bias_add());
        let matmul = Op::Dense(DenseOp::MatMul);
        assert!(f(&matmul).takes_bias() && !f(&matmul).pointwise() && !f(&matmul).epilogue());
        assert!(!f(&Op::Dense(DenseOp::Embed(EmbedParams { out_features: 4, vocabulary: 8, bias: false }))).takes_bias());
        assert!(f(&sigmoid).pointwise() && !f(&sigmoid).epilogue());
        assert!(!f(&Op::Elementwise(ElementwiseOp::Compare(CompareKind::Less))).pointwise());
    }

    #[test]
    fn normalisations_have_weights_and_a_backward_temporary() {
        // graph::build once listed weighted ops by hand and missed these two.
        for op in [NormOp::LayerNorm { axis: -1, eps: 1e-5 }, NormOp::GroupNorm { groups: Some(4), eps: 1e-5 }] {
            let op = Op::Norm(op);
            assert!(op.has_weights(), "{}", op.name());
            assert!(!op.param_specs(&[&s(&[2, 8, 4, 4])]).unwrap().is_empty());
            assert!(op.schedule_facts().backward_input_temporary);
        }
        assert!(!Op::Norm(NormOp::Lrn(LrnParams { local_size: 5, across_channels: true })).has_weights());
    }

    #[test]
    fn conv_geometry_pads_the_input_and_counts_filters() {
        let p = ConvParams {
            out_channels: 8,
            window: Window::symmetric(vec![3, 3], vec![1, 1], vec![1, 1], vec![1, 1]),
            group: 1,
            depthwise: false,
            bias: true,
            axis: 1,
            output_pad: vec![],
        };
        let x = s(&[2, 4, 10, 10]);
        let (w, b) = (s(&[8, 4, 3, 3]), s(&[8]));
        let g = Op::Conv(ConvOp::Forward(Box::new(p.clone()))).conv_geometry(Some(&x), &[&w, &b]).unwrap();
        assert_eq!(g.padded_input_elems, 2 * 4 * 12 * 12);
        assert_eq!((g.in_channels, g.batch, g.weight_elems), (4, 2, 8 * 4 * 9));
        assert_eq!((g.out_channels, g.groups, g.out_spatial_elems, g.lead4_elems), (8, 1, 100, 2 * 4 * 10 * 10));
        assert!(!g.pointwise_kernel && !g.large_kernel && !g.strided && !g.dilated && !g.unit_window && !g.transposed);
        // A 3-D input counts N·C·T·H (PyTorch's size(0..3)); a 1-D one N·C·1·L.
        let p3 = ConvParams { window: Window::symmetric(vec![1, 1, 1], vec![2, 2, 2], vec![0, 0, 0], vec![1, 1, 1]), ..p.clone() };
        let g3 = Op::Conv(ConvOp::Forward(Box::new(p3))).conv_geometry(Some(&s(&[1, 4, 6, 8, 10])), &[]).unwrap();
        assert_eq!((g3.lead4_elems, g3.out_spatial_elems), (4 * 6 * 8, 3 * 4 * 5));
        assert!(g3.strided && g3.pointwise_kernel && !g3.unit_window);
        let p1 = ConvParams { window: Window::symmetric(vec![5], vec![1], vec![0], vec![1]), ..p.clone() };
        let g1 = Op::Conv(ConvOp::Forward(Box::new(p1))).conv_geometry(Some(&s(&[2, 4, 30])), &[]).unwrap();
        assert_eq!((g1.lead4_elems, g1.out_spatial_elems), (2 * 4 * 30, 26));
        assert!(!g1.large_kernel);
        let p7 = ConvParams { window: Window::symmetric(vec![7, 7], vec![1, 1], vec![3, 3], vec![1, 1]), group: 4, out_channels: 4, ..p.clone() };
        let g7 = Op::Conv(ConvOp::Forward(Box::new(p7))).conv_geometry(Some(&x), &[]).unwrap();
        assert!(g7.large_kernel && g7.groups == 4);
        assert_eq!(Op::Dense(DenseOp::MatMul).conv_geometry(Some(&x), &[]), None);
    }
}
