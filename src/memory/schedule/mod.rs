//! The schedule: for one graph, settings and profile, when every storage is
//! born and when it dies, in forward node order and (for training) in reverse
//! for backward. This is pure bookkeeping over the graph; `liveness` replays it.
//!
//! Tensors map onto storages: a view (reshape, flatten, …) or an in-place op
//! shares its input's storage, so a storage dies only when every tensor on it
//! is done with. A storage is done in forward after its last reader runs,
//! unless a node saved it for backward (then it dies after the backward step of
//! the earliest such node, which runs last) or it is a graph output.
//!
//! `Schedule::build` runs the phases in order, each in its own file, all
//! reading one `Dataflow` (what carries data, what is read by whom, each op's
//! facts, what needs a gradient):
//! `dataflow` (with `folding`: decompositions folded back into one op) →
//! `storage` (roles, storages, saved tensors, workspaces, forward release;
//! with `layout`: the strides views keep and the copies they force) →
//! `gradients` (activation and weight gradients) → `style` (style transfer's
//! loss terms) → `weights` (resident weights).

mod attention;
mod dataflow;
mod folding;
mod gradients;
mod layout;
mod locals;
mod storage;
mod style;
mod weights;

use self::dataflow::Dataflow;
use super::profiles::Profile;
use super::training::Precision;
use crate::graph::{Graph, TensorId};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Role {
    /// Produces no data (constants, shape queries) or was folded into another node.
    Skip,
    /// Its outputs are views of its first input.
    View,
    /// Writes its output over its first input.
    InPlace,
    /// Allocates its outputs.
    Normal,
}

#[derive(Clone, Debug)]
pub(crate) struct NodePlan {
    pub role: Role,
    /// Data inputs after folding (constants and shape tensors dropped).
    pub inputs: Vec<TensorId>,
    pub outputs: Vec<TensorId>,
    /// Storages this node allocates in forward.
    pub new_storages: Vec<usize>,
    /// Logical bytes of the outputs (whether or not they reuse storage).
    pub output_bytes: u64,
    /// Storages this node keeps for backward (inputs and outputs it saves).
    pub saved: Vec<usize>,
    /// Bytes of the tensors it keeps (incl. extra), for the report.
    pub saved_bytes: u64,
    /// Extra tensors kept for backward (indices, masks, statistics), bytes.
    pub extra_saved_bytes: u64,
    /// Transient forward bytes in training and in inference.
    pub workspace_train: u64,
    pub workspace_infer: u64,
    /// Transient bytes of its backward step beyond the gradients.
    pub workspace_backward: u64,
    /// Storages whose forward life ends after this node (unless saved or output).
    pub fwd_frees: Vec<usize>,
    /// Training: the node runs a backward step.
    pub needs_backward: bool,
    /// False for nodes the scenario never runs (style transfer stops at the deepest loss).
    pub runs: bool,
}

#[derive(Clone, Debug)]
pub(crate) struct StoragePlan {
    pub bytes: u64,
    /// A graph input (resident, counted under "inputs").
    pub is_input: bool,
    /// Held to the end (a graph output).
    pub pinned: bool,
    /// Style transfer with the losses after the forward pass: a tapped map,
    /// held through forward; its loss's backward frees it unless a layer
    /// saved it (then that layer's backward step does).
    pub held_to_loss: bool,
    /// Training: index of the earliest node that saved it (its backward step
    /// frees it); `None` when no node saved it.
    pub saved_until: Option<usize>,
}

#[derive(Clone, Debug)]
pub(crate) struct GradPlan {
    pub bytes: u64,
    /// The gradient of what is being optimized (style transfer's image): it
    /// persists to the optimizer step and counts with the weight gradients.
    pub optimized: bool,
    /// Backward step (node index) that creates it; `None` for the held
    /// tensors' gradients, born at the loss.
    pub born_at: Option<usize>,
    /// Backward step after which it is freed; `None`: kept to the end.
    pub freed_after: Option<usize>,
}

#[derive(Clone, Debug)]
pub(crate) struct Schedule {
    pub nodes: Vec<NodePlan>,
    pub storages: Vec<StoragePlan>,
    pub grads: Vec<GradPlan>,
    /// Per node: gradient buffers born at its backward step, and transient accumulations.
    pub grads_born: Vec<Vec<usize>>,
    pub grad_accum_bytes: Vec<u64>,
    pub grads_freed: Vec<Vec<usize>>,
    /// Losses inside the net, per node: gradient buffers their backward
    /// creates (just before the node's own step) and what it sums in (transient).
    pub term_grads_born: Vec<Vec<usize>>,
    pub term_accum_bytes: Vec<u64>,
    /// Per node: weight-gradient bytes born (persist) and accumulated (transient).
    pub weight_grads_born: Vec<u64>,
    pub weight_grad_accum: Vec<u64>,
    /// Bytes of resident weights (incl. compute copies) and of trainable weights' master copy.
    pub weight_bytes: u64,
    pub trainable_master_bytes: u64,
    pub input_bytes: u64,
    /// Tensors whose shape is unknown (left out).
    pub unknown_tensors: usize,
    /// Style transfer: the loss terms in forward order, and the resident targets.
    pub loss_terms: Vec<LossTerm>,
    pub target_bytes: u64,
    /// Bytes of the optimized inputs (style transfer's image), master precision.
    pub optimized_input_bytes: u64,
    /// Nothing is freed: forward scratch and gradient sums stay (Torch nn, Caffe).
    pub persistent: bool,
    /// Scratch shared by the whole net, resident from the start.
    pub shared_workspace: u64,
    /// How the attention computations ran.
    pub attention_calls: crate::memory::AttentionCalls,
}

/// What the schedule is for.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Mode<'a> {
    Inference,
    Training,
    /// Frozen weights, the inputs optimized, losses on these tensors.
    Style(&'a ResolvedLoss),
}

/// The loss tensors of a style-transfer run.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ResolvedLoss {
    /// (name asked for, tensor) per style layer, then per content layer.
    pub style: Vec<(String, TensorId)>,
    /// The same per content layer.
    pub content: Vec<(String, TensorId)>,
    /// Where the losses are computed.
    pub placement: crate::memory::LossPlacement,
}

/// One style or content loss term on a feature map F (N×C×…).
#[derive(Clone, Debug)]
pub(crate) struct LossTerm {
    pub label: String,
    /// Index into `Schedule::grads` of F's gradient (born at this term's
    /// backward); `None` when F needs no gradient.
    pub grad: Option<usize>,
    /// Bytes of F (its gradient, and the transient second product in backward).
    pub feature_bytes: u64,
    /// Style: the Gram matrix N·C² kept for the loss's backward; content: 0.
    pub gram_bytes: u64,
    /// Losses inside the net: the node that produces F (the term's forward
    /// runs after its forward step, the term's backward just before its
    /// backward step); `None` when the losses run after the forward pass.
    pub at_node: Option<usize>,
    /// Losses inside the net: the criterion's buffer the loss module keeps
    /// with its result for the whole step (F.mse_loss: input-sized).
    pub criterion_bytes: u64,
    /// The storage of F.
    pub storage: Option<usize>,
}

impl Schedule {
    pub(crate) fn build(graph: &Graph, profile: &Profile, prec: &Precision, mode: Mode<'_>, threads: u32) -> Schedule {
        let df = Dataflow::new(graph, profile, prec, mode, threads);
        let st = storage::plan(&df);
        let gr = gradients::plan(&df, &st.nodes);
        let loss = style::plan(&df, &gr.grad_of, &st.storage_of);
        let w = weights::resident(&df);
        Schedule {
            nodes: st.nodes,
            storages: st.storages,
            grads: gr.grads,
            grads_born: gr.grads_born,
            grad_accum_bytes: gr.grad_accum_bytes,
            grads_freed: gr.grads_freed,
            term_grads_born: gr.term_grads_born,
            term_accum_bytes: gr.term_accum_bytes,
            weight_grads_born: gr.weight_grads_born,
            weight_grad_accum: gr.weight_grad_accum,
            weight_bytes: w.weight_bytes,
            trainable_master_bytes: w.trainable_master_bytes,
            input_bytes: st.input_bytes,
            unknown_tensors: df.unknown_tensors,
            loss_terms: loss.terms,
            target_bytes: loss.target_bytes,
            optimized_input_bytes: loss.optimized_input_bytes,
            persistent: profile.persistent,
            shared_workspace: profile.shared_workspace(st.largest_column),
            attention_calls: df.attention_calls(),
        }
    }
}
