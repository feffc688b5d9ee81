//! The schedule: for one graph, settings and profile, when every storage is
//! born and when it dies, in forward node order and (for training) in reverse
//! for backward. This is pure bookkeeping over the graph; `liveness` replays it.
//!
//! Tensors map onto storages: a view (reshape, flatten, …) or an in-place op
//! shares its input's storage, so a storage dies only when every tensor on it
//! is done with. A storage is done in forward after its last reader runs,
//! unless a node saved it for backward (then it dies after the backward step of
//! the earliest such node, which runs last) or it is a graph output.

use super::profiles::{ConvSizes, Profile};
use super::training::Precision;
use crate::graph::{Graph, Shape, TensorId, TensorKind};
use crate::ops::{MemoryFacts, Op, Produces, SavedType, Storage};

/// Node never (a storage that outlives the pass).
pub(crate) const NEVER: usize = usize::MAX;

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
}

#[derive(Clone, Debug)]
pub(crate) struct StoragePlan {
    pub bytes: u64,
    /// A graph input (resident, counted under "inputs").
    pub is_input: bool,
    /// Held to the end (a graph output).
    pub pinned: bool,
    /// Training: index of the earliest node that saved it (its backward step frees it).
    pub saved_until: usize,
}

#[derive(Clone, Debug)]
pub(crate) struct GradPlan {
    pub bytes: u64,
    /// The gradient of what is being optimized (style transfer's image): it
    /// persists to the optimizer step and counts with the weight gradients.
    pub optimized: bool,
    /// Backward step (node index) that creates it; `NEVER` for graph outputs (born at the loss).
    pub born_at: usize,
    /// Backward step after which it is freed.
    pub freed_after: usize,
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
    pub content: Vec<(String, TensorId)>,
}

/// One style or content loss term on a feature map F (N×C×…).
#[derive(Clone, Debug)]
pub(crate) struct LossTerm {
    pub label: String,
    /// Index into `Schedule::grads` of F's gradient (born at this term's backward).
    pub grad: usize,
    /// Bytes of F (its gradient, and the transient second product in backward).
    pub feature_bytes: u64,
    /// Style: the Gram matrix N·C² kept for the loss's backward; content: 0.
    pub gram_bytes: u64,
}

/// Which tensors carry data through the network: graph inputs and whatever a
/// node computes from at least one of them. Values computed only from weights
/// and constants (a transposed weight, a shape) are constant-folded or views
/// in a framework and hold no activation memory.
fn data_tensors(graph: &Graph) -> Vec<bool> {
    let mut data: Vec<bool> = graph.tensors.iter().map(|t| t.kind == TensorKind::Input).collect();
    for node in &graph.nodes {
        let computes = node.op.schedule_facts().produces == Produces::Data;
        let from_data = node.inputs.iter().any(|t| data[t.0]);
        if computes && from_data {
            for &o in &node.outputs {
                if graph.tensor(o).kind == TensorKind::Activation {
                    data[o.0] = true;
                }
            }
        }
    }
    data
}

/// Folds ONNX decompositions of one framework op (SiLU = x·σ(x); GELU =
/// x·½·(1+erf(x/√2))): a binary pointwise node whose two data operands both
/// trace back, through chains of single-reader pointwise nodes, to the same
/// tensor x. Returns, per node, the node it was folded into, and per fused
/// node its root x.
fn fold_decompositions(graph: &Graph, data_inputs: &[Vec<TensorId>], readers: &[Vec<usize>]) -> (Vec<Option<usize>>, Vec<Option<TensorId>>) {
    let n = graph.nodes.len();
    let mut folded = vec![None; n];
    let mut root = vec![None; n];
    for (m, node) in graph.nodes.iter().enumerate() {
        let binary = node.op.schedule_facts().fusion.product();
        if !binary || data_inputs[m].len() != 2 {
            continue;
        }
        // Walk each operand back through single-reader one-data-input pointwise nodes.
        let trace = |mut t: TensorId| -> (TensorId, Vec<usize>) {
            let mut chain = Vec::new();
            let mut roots_seen = Vec::new();
            loop {
                roots_seen.push(t);
                let Some(p) = graph.tensor(t).producer else { break };
                let p = p.0;
                if folded[p].is_some()
                    || readers[t.0].len() != 1
                    || !graph.nodes[p].op.schedule_facts().fusion.pointwise()
                    || data_inputs[p].len() != 1
                    || chain.len() >= 8
                {
                    break;
                }
                chain.push(p);
                t = data_inputs[p][0];
            }
            (t, chain)
        };
        let (a, ca) = trace(data_inputs[m][0]);
        let (b, cb) = trace(data_inputs[m][1]);
        // Prefix of a chain may itself be x: try the shorter root against the other's path.
        let (x, chain) = if a == b {
            (a, [ca, cb].concat())
        } else if cb.is_empty() && ca.iter().any(|&p| data_inputs[p][0] == b) {
            let cut = ca.iter().position(|&p| data_inputs[p][0] == b).unwrap_or(0);
            (b, ca[..=cut].to_vec())
        } else if ca.is_empty() && cb.iter().any(|&p| data_inputs[p][0] == a) {
            let cut = cb.iter().position(|&p| data_inputs[p][0] == a).unwrap_or(0);
            (a, cb[..=cut].to_vec())
        } else {
            continue;
        };
        if chain.is_empty() {
            continue;
        }
        for p in chain {
            folded[p] = Some(m);
        }
        root[m] = Some(x);
    }
    (folded, root)
}

impl Schedule {
    pub(crate) fn build(graph: &Graph, profile: &Profile, prec: &Precision, mode: Mode<'_>, threads: u32) -> Schedule {
        let training = !matches!(mode, Mode::Inference);
        let style = match mode {
            Mode::Style(l) => Some(l),
            _ => None,
        };
        let n_nodes = graph.nodes.len();
        let n_tensors = graph.tensors.len();
        // Per-worker copies (tiny-dnn): activations, gradients and scratch once per thread.
        // Each worker handles one sample at a time, so its copy is one sample's worth.
        let copies = if profile.per_thread_copies { u64::from(threads.max(1)) } else { 1 };
        let batch_of = |t: TensorId| graph.tensor(t).shape.as_ref().and_then(|s| s.dims().first().copied()).unwrap_or(1).max(1);
        let worker = |b: u64, n: u64| if profile.per_thread_copies { (b / n.max(1)).saturating_mul(copies) } else { b };
        let mut unknown_tensors = 0usize;
        let bytes: Vec<u64> = graph
            .tensors
            .iter()
            .map(|t| match t.elems() {
                Some(e) => prec.activation_bytes(t.dtype, e),
                None => 0,
            })
            .collect();
        let data = data_tensors(graph);
        for (i, t) in graph.tensors.iter().enumerate() {
            if data[i] && t.elems().is_none() {
                unknown_tensors += 1;
            }
        }
        let mut data_inputs: Vec<Vec<TensorId>> =
            graph.nodes.iter().map(|nd| nd.inputs.iter().copied().filter(|t| data[t.0]).collect()).collect();

        // Readers before folding, to find decompositions.
        let readers_of = |inputs: &[Vec<TensorId>], skip: &[bool]| {
            let mut r: Vec<Vec<usize>> = vec![Vec::new(); n_tensors];
            for (i, ins) in inputs.iter().enumerate() {
                if skip[i] {
                    continue;
                }
                for t in ins {
                    if r[t.0].last() != Some(&i) {
                        r[t.0].push(i);
                    }
                }
            }
            r
        };
        let no_skip = vec![false; n_nodes];
        let mut readers = readers_of(&data_inputs, &no_skip);
        let (folded, fold_root) = if profile.fuse_pointwise_decompositions {
            fold_decompositions(graph, &data_inputs, &readers)
        } else {
            (vec![None; n_nodes], vec![None; n_nodes])
        };
        let is_folded: Vec<bool> = folded.iter().map(|f| f.is_some()).collect();
        for (m, r) in fold_root.iter().enumerate() {
            if let Some(x) = r {
                data_inputs[m] = vec![*x];
            }
        }
        if is_folded.iter().any(|&f| f) {
            readers = readers_of(&data_inputs, &is_folded);
        }

        // Facts per node, on the original shapes.
        let node_facts: Vec<MemoryFacts> = graph
            .nodes
            .iter()
            .enumerate()
            .map(|(i, nd)| {
                if fold_root[i].is_some() {
                    // The folded op (SiLU, GELU) keeps its input.
                    return MemoryFacts { saves_inputs: vec![0], ..Default::default() };
                }
                let ins: Vec<_> = nd.inputs.iter().filter_map(|&t| graph.tensor(t).shape.as_ref()).collect();
                let outs: Vec<_> = nd.outputs.iter().filter_map(|&t| graph.tensor(t).shape.as_ref()).collect();
                if ins.len() != nd.inputs.len() || outs.len() != nd.outputs.len() {
                    return MemoryFacts { saves_inputs: (0..nd.inputs.len()).collect(), ..Default::default() };
                }
                nd.op.memory_facts(&ins, &outs)
            })
            .collect();

        // The trainable weights each node reads, directly or through weight-only
        // nodes (an ONNX Linear is MatMul(x, Transpose(W)): W's gradient is
        // made by the MatMul's backward step).
        let mut weight_sources: Vec<Vec<TensorId>> = vec![Vec::new(); n_tensors];
        let mut node_weights: Vec<Vec<TensorId>> = Vec::with_capacity(n_nodes);
        for nd in &graph.nodes {
            let mut ws: Vec<TensorId> = nd.params.iter().copied().filter(|&p| graph.tensor(p).trainable).collect();
            for t in &nd.inputs {
                if !data[t.0] {
                    for &w in &weight_sources[t.0] {
                        if !ws.contains(&w) {
                            ws.push(w);
                        }
                    }
                }
            }
            if !nd.inputs.iter().any(|t| data[t.0]) {
                for &o in &nd.outputs {
                    weight_sources[o.0] = ws.clone();
                }
            }
            node_weights.push(ws);
        }

        // Style transfer runs only the nodes the loss tensors depend on.
        let mut skipped = vec![false; n_nodes];
        if let Some(l) = style {
            let mut wanted = vec![false; n_tensors];
            for (_, t) in l.style.iter().chain(l.content.iter()) {
                wanted[t.0] = true;
            }
            for (i, nd) in graph.nodes.iter().enumerate().rev() {
                if nd.outputs.iter().any(|o| wanted[o.0]) {
                    for t in &nd.inputs {
                        wanted[t.0] = true;
                    }
                } else {
                    skipped[i] = true;
                }
            }
        }

        // Which tensors need a gradient (training): those computed from
        // trainable weights, or (style transfer) from the optimized inputs.
        let mut requires_grad = vec![false; n_tensors];
        let mut needs_backward = vec![false; n_nodes];
        if style.is_some() {
            for &t in &graph.inputs {
                if data[t.0] {
                    requires_grad[t.0] = true;
                }
            }
        }
        if training {
            for (i, nd) in graph.nodes.iter().enumerate() {
                if is_folded[i] || node_facts[i].no_grad || skipped[i] {
                    continue;
                }
                let from_weights = style.is_none() && !node_weights[i].is_empty();
                let from_inputs = data_inputs[i].iter().any(|t| requires_grad[t.0]);
                if from_weights || from_inputs {
                    needs_backward[i] = true;
                    for &o in &nd.outputs {
                        if data[o.0] {
                            requires_grad[o.0] = true;
                        }
                    }
                }
            }
        }

        // Roles and storages.
        let mut storage_of: Vec<Option<usize>> = vec![None; n_tensors];
        let mut storages: Vec<StoragePlan> = Vec::new();
        let mut input_bytes = 0u64;
        for &t in &graph.inputs {
            if data[t.0] && storage_of[t.0].is_none() {
                storage_of[t.0] = Some(storages.len());
                storages.push(StoragePlan { bytes: bytes[t.0], is_input: true, pinned: true, saved_until: NEVER });
                input_bytes = input_bytes.saturating_add(bytes[t.0]);
            }
        }
        let mut plans: Vec<NodePlan> = Vec::with_capacity(n_nodes);
        for (i, nd) in graph.nodes.iter().enumerate() {
            let f = &node_facts[i];
            let outputs: Vec<TensorId> = nd.outputs.iter().copied().filter(|t| data[t.0]).collect();
            let first_in = data_inputs[i].first().copied();
            let first_storage = first_in.and_then(|t| storage_of[t.0]);
            let producer_role = first_in
                .and_then(|t| graph.tensor(t).producer)
                .map(|p| plans.get(p.0).map(|pl: &NodePlan| pl.role))
                .flatten();
            let role = if is_folded[i] || skipped[i] || outputs.is_empty() {
                Role::Skip
            } else if first_storage.is_some() && profile.views_share_storage && is_view(&nd.op, training) {
                Role::View
            } else if first_storage.is_some()
                && ((nd.in_place && profile.honours_in_place)
                    || (profile.in_place_activations
                        && f.in_place_ok
                        // An in-place op whose backward needs its input must
                        // first copy it (PyTorch clones it): no saving in training.
                        && !(training && f.saves_inputs.contains(&0))
                        && first_in.map(|t| readers[t.0].len() == 1 && graph.tensor(t).kind == TensorKind::Activation).unwrap_or(false)
                        && matches!(producer_role, Some(Role::Normal) | Some(Role::InPlace))
                        && first_in.map(|t| !graph.outputs.contains(&t)).unwrap_or(false)))
            {
                Role::InPlace
            } else if first_storage.is_some()
                && profile.fuse_pointwise_decompositions
                && is_epilogue(&nd.op, &data_inputs[i], nd.inputs.len())
                && first_in.map(|t| readers[t.0].len() == 1 && graph.tensor(t).kind == TensorKind::Activation).unwrap_or(false)
                && matches!(producer_role, Some(Role::Normal) | Some(Role::InPlace))
                && !(training && f.saves_inputs.contains(&0))
            {
                // A bias add or constant scale the export split off a fused
                // framework op (Linear's bias, GELU's ½): it updates the result
                // where it lies.
                Role::InPlace
            } else {
                Role::Normal
            };
            let mut new_storages = Vec::new();
            let mut output_bytes = 0u64;
            for &o in &outputs {
                output_bytes = output_bytes.saturating_add(bytes[o.0]);
                match role {
                    Role::View | Role::InPlace => storage_of[o.0] = first_storage,
                    Role::Normal => {
                        storage_of[o.0] = Some(storages.len());
                        new_storages.push(storages.len());
                        storages.push(StoragePlan {
                            bytes: worker(bytes[o.0], batch_of(o)),
                            is_input: false,
                            pinned: false,
                            saved_until: NEVER,
                        });
                    }
                    Role::Skip => {}
                }
            }
            if role == Role::Skip {
                output_bytes = 0;
            }
            plans.push(NodePlan {
                role,
                inputs: data_inputs[i].clone(),
                outputs,
                new_storages,
                output_bytes,
                saved: Vec::new(),
                saved_bytes: 0,
                extra_saved_bytes: 0,
                workspace_train: 0,
                workspace_infer: 0,
                workspace_backward: 0,
                fwd_frees: Vec::new(),
                needs_backward: needs_backward[i],
            });
        }
        // What is held to the end: the graph outputs, or the loss tensors.
        let held: Vec<TensorId> = match style {
            Some(l) => l.style.iter().chain(l.content.iter()).map(|(_, t)| *t).collect(),
            None => graph.outputs.clone(),
        };
        for &t in &held {
            if let Some(s) = storage_of[t.0] {
                storages[s].pinned = true;
            }
        }

        // What each node saves, and its workspaces.
        let mut largest_column = 0u64;
        for (i, nd) in graph.nodes.iter().enumerate() {
            let f = &node_facts[i];
            let plan = &mut plans[i];
            if plan.role == Role::Skip {
                continue;
            }
            let node_batch = nd.outputs.first().map(|&o| batch_of(o)).unwrap_or(1);
            // Indices in `facts` refer to the node's own input list; map them
            // to data tensors (folded nodes already list just x).
            let own_inputs: &[TensorId] = if fold_root[i].is_some() { &plan.inputs } else { &nd.inputs };
            if plan.needs_backward {
                let mut saved_tensors: Vec<TensorId> = Vec::new();
                for &k in &f.saves_inputs {
                    if let Some(&t) = own_inputs.get(k) {
                        saved_tensors.push(t);
                    }
                }
                for &k in &f.saves_outputs {
                    if let Some(&t) = nd.outputs.get(k) {
                        saved_tensors.push(t);
                    }
                }
                for t in saved_tensors {
                    plan.saved_bytes = plan.saved_bytes.saturating_add(bytes[t.0]);
                    if let Some(s) = storage_of[t.0] {
                        if !plan.saved.contains(&s) {
                            plan.saved.push(s);
                        }
                        storages[s].saved_until = storages[s].saved_until.min(i);
                    }
                }
                for e in &f.extra_saved {
                    let b = match e.dtype {
                        // The backend's index type.
                        SavedType::PoolIndex => e.elems.saturating_mul(profile.pool_index_bytes),
                        SavedType::Fixed(d) if !d.is_float() => e.elems.saturating_mul(d.size_bytes()),
                        // Statistics are kept in f32 whatever the compute type.
                        SavedType::Fixed(d) => e.elems.saturating_mul(d.size_bytes().min(4).max(prec.compute)),
                        SavedType::Compute => e.elems.saturating_mul(prec.compute),
                    };
                    plan.extra_saved_bytes = plan.extra_saved_bytes.saturating_add(worker(b, node_batch));
                }
                plan.saved_bytes = plan.saved_bytes.saturating_add(plan.extra_saved_bytes);
            }
            // Workspaces.
            let in_bytes = plan.inputs.first().map(|t| bytes[t.0]).unwrap_or(0);
            largest_column = largest_column.max(f.column_elems_per_image.saturating_mul(prec.compute));
            let in_shape = nd.inputs.first().and_then(|&t| graph.tensor(t).shape.as_ref());
            let weight_shapes: Vec<&Shape> = nd.params.iter().filter_map(|&w| graph.tensor(w).shape.as_ref()).collect();
            if let Some(geo) = nd.op.conv_geometry(in_shape, &weight_shapes) {
                let sizes = ConvSizes {
                    padded_input: geo.padded_input_elems.saturating_mul(prec.compute),
                    input: in_bytes,
                    output: plan.output_bytes,
                    weight: geo.weight_elems.saturating_mul(prec.compute),
                    in_channels: geo.in_channels,
                    pointwise: geo.pointwise_kernel,
                    column_per_image: f.column_elems_per_image.saturating_mul(prec.compute),
                    batch: geo.batch,
                };
                let ws = worker(profile.conv_forward_workspace(&sizes, threads), node_batch);
                plan.workspace_train = ws;
                plan.workspace_infer = ws;
                plan.workspace_backward = worker(profile.conv_backward_workspace(&sizes, threads), node_batch);
            }
            let pool_indices: Vec<u64> =
                f.extra_saved.iter().filter(|e| e.dtype == SavedType::PoolIndex).map(|e| e.elems).collect();
            if profile.pool_indices_in_inference && !pool_indices.is_empty() {
                // Written even without backward, freed when the op returns.
                let b = pool_indices.iter().map(|e| e.saturating_mul(profile.pool_index_bytes)).fold(0, u64::saturating_add);
                plan.workspace_infer = worker(b, node_batch);
            }
            if profile.norm_backward_temporary && nd.op.schedule_facts().backward_input_temporary {
                plan.workspace_backward = in_bytes;
            }
        }

        // Forward release: after the last reader of any tensor on the storage.
        let mut last_use = vec![0usize; storages.len()];
        for (i, plan) in plans.iter().enumerate() {
            if plan.role == Role::Skip {
                continue;
            }
            for t in plan.inputs.iter().chain(plan.outputs.iter()) {
                if let Some(s) = storage_of[t.0] {
                    last_use[s] = last_use[s].max(i);
                }
            }
        }
        if profile.module_scope_hold {
            hold_for_module_calls(graph, &plans, &storage_of, &mut last_use);
        }
        if profile.persistent {
            // Modules or blobs keep every buffer for the run.
            for st in storages.iter_mut() {
                st.pinned = true;
            }
        }
        for (s, st) in storages.iter().enumerate() {
            if !st.pinned && st.saved_until == NEVER {
                plans[last_use[s]].fwd_frees.push(s);
            }
        }

        // Gradients (training).
        let mut grads: Vec<GradPlan> = Vec::new();
        let mut grads_born = vec![Vec::new(); n_nodes];
        let mut grad_accum_bytes = vec![0u64; n_nodes];
        let mut grads_freed = vec![Vec::new(); n_nodes];
        let mut weight_grads_born = vec![0u64; n_nodes];
        let mut weight_grad_accum = vec![0u64; n_nodes];
        if training {
            // Per tensor: which gradient buffer holds its gradient.
            let mut grad_of: Vec<Option<usize>> = vec![None; n_tensors];
            // Walk backward: a node's output gradients exist before its step.
            for &t in &held {
                if requires_grad[t.0] && grad_of[t.0].is_none() {
                    grad_of[t.0] = Some(grads.len());
                    grads.push(GradPlan { bytes: worker(bytes[t.0], batch_of(t)), optimized: false, born_at: NEVER, freed_after: NEVER });
                }
            }
            for i in (0..n_nodes).rev() {
                let plan = &plans[i];
                if !plan.needs_backward || plan.role == Role::Skip {
                    continue;
                }
                // Output gradients are consumed here; free them after this step
                // (a view's input gradient reuses the buffer instead).
                let out_grads: Vec<usize> = plan.outputs.iter().filter_map(|t| grad_of[t.0]).collect();
                let mut passes_through = false;
                for (k, &t) in plan.inputs.iter().enumerate() {
                    if !requires_grad[t.0] {
                        continue;
                    }
                    let gb = worker(bytes[t.0], batch_of(t));
                    match grad_of[t.0] {
                        Some(_) => {
                            // Another reader already made this gradient: accumulate.
                            grad_accum_bytes[i] = grad_accum_bytes[i].saturating_add(gb);
                        }
                        None => {
                            let shares = plan.role == Role::View || (plan.role == Role::InPlace && profile.in_place_grads);
                            if shares && k == 0 && out_grads.len() == 1 && readers[t.0].len() == 1 {
                                grad_of[t.0] = Some(out_grads[0]);
                                passes_through = true;
                            } else {
                                grad_of[t.0] = Some(grads.len());
                                grads_born[i].push(grads.len());
                                grads.push(GradPlan { bytes: gb, optimized: graph.tensor(t).kind == TensorKind::Input, born_at: i, freed_after: NEVER });
                            }
                        }
                    }
                }
                if !passes_through && !profile.persistent {
                    for g in out_grads {
                        if grads[g].freed_after == NEVER {
                            grads[g].freed_after = i;
                            grads_freed[i].push(g);
                        }
                    }
                }
            }
            // Weight gradients: born at the backward step of the weight's last
            // reader (none when the weights are frozen).
            let mut seen = vec![false; n_tensors];
            for i in (0..n_nodes).rev() {
                if style.is_some() || !plans[i].needs_backward || plans[i].role == Role::Skip {
                    continue;
                }
                for &p in &node_weights[i] {
                    let t = graph.tensor(p);
                    let b = t.elems().unwrap_or(0).saturating_mul(prec.master).saturating_mul(copies);
                    if std::mem::replace(&mut seen[p.0], true) {
                        weight_grad_accum[i] = weight_grad_accum[i].saturating_add(b);
                    } else {
                        weight_grads_born[i] = weight_grads_born[i].saturating_add(b);
                    }
                }
            }
        }

        // Style transfer's loss terms: a style layer keeps its Gram matrix
        // (N·C² per layer) for the loss's backward and has a C² target Gram; a
        // content layer has an F-sized target feature map.
        let mut loss_terms = Vec::new();
        let mut target_bytes = 0u64;
        let mut optimized_input_bytes = 0u64;
        if let Some(l) = style {
            let feature = |t: TensorId| graph.tensor(t).shape.as_ref().map(|s| {
                let d = s.dims();
                (d.first().copied().unwrap_or(1), d.get(1).copied().unwrap_or(1))
            });
            let mut g = 0usize;
            let mut seen_t: Vec<TensorId> = Vec::new();
            for (k, (name, t)) in l.style.iter().chain(l.content.iter()).enumerate() {
                let is_style = k < l.style.len();
                let (n, c) = feature(*t).unwrap_or((1, 1));
                let gram = n.saturating_mul(c).saturating_mul(c).saturating_mul(prec.compute);
                // The gradient buffer of F (one per tensor, made in `held` order).
                let grad = if requires_grad[t.0] {
                    let idx = if let Some(p) = seen_t.iter().position(|x| x == t) {
                        p
                    } else {
                        seen_t.push(*t);
                        g += 1;
                        g - 1
                    };
                    idx
                } else {
                    usize::MAX
                };
                if is_style {
                    target_bytes = target_bytes.saturating_add(c.saturating_mul(c).saturating_mul(prec.compute));
                } else {
                    target_bytes = target_bytes.saturating_add(bytes[t.0]);
                }
                loss_terms.push(LossTerm {
                    label: format!("backward of the {} loss at {name}", if is_style { "style" } else { "content" }),
                    grad,
                    feature_bytes: worker(bytes[t.0], batch_of(*t)),
                    gram_bytes: if is_style { gram } else { 0 },
                });
            }
            for &t in &graph.inputs {
                if data[t.0] {
                    optimized_input_bytes = optimized_input_bytes
                        .saturating_add(graph.tensor(t).elems().unwrap_or(0).saturating_mul(prec.master));
                }
            }
        }

        // Resident weights.
        let mut weight_bytes = 0u64;
        let mut trainable_master_bytes = 0u64;
        let mut seen = vec![false; n_tensors];
        for (i, nd) in graph.nodes.iter().enumerate() {
            // Style transfer loads only the layers up to the deepest loss.
            if skipped[i] {
                continue;
            }
            for &p in &nd.params {
                if std::mem::replace(&mut seen[p.0], true) {
                    continue;
                }
                let t = graph.tensor(p);
                let e = t.elems().unwrap_or(0);
                let master = if t.dtype.is_float() { e.saturating_mul(prec.master) } else { t.bytes().unwrap_or(0) };
                weight_bytes = weight_bytes.saturating_add(master);
                if prec.weight_copy && t.dtype.is_float() {
                    weight_bytes = weight_bytes.saturating_add(e.saturating_mul(prec.compute));
                }
                if t.trainable {
                    trainable_master_bytes = trainable_master_bytes.saturating_add(master);
                }
            }
        }

        Schedule {
            nodes: plans,
            storages,
            grads,
            grads_born,
            grad_accum_bytes,
            grads_freed,
            weight_grads_born,
            weight_grad_accum,
            weight_bytes,
            trainable_master_bytes,
            input_bytes,
            unknown_tensors,
            loss_terms,
            target_bytes,
            optimized_input_bytes,
            persistent: profile.persistent,
            shared_workspace: profile.shared_workspace(largest_column),
        }
    }
}

/// Extends forward lifetimes for eager frames: a tensor read by a node inside
/// a module that does not contain the tensor's producer was an argument of
/// that module's call, and the caller holds it until the call returns (the
/// end of the contiguous run of nodes inside that module).
fn hold_for_module_calls(graph: &Graph, plans: &[NodePlan], storage_of: &[Option<usize>], last_use: &mut [usize]) {
    let scopes: Vec<&[String]> = graph.nodes.iter().map(|n| n.scope.as_slice()).collect();
    if scopes.iter().all(|s| s.is_empty()) {
        return;
    }
    let n = scopes.len();
    // run_end[i][d]: last node of the run from i whose scopes share i's first d+1 parts.
    let mut run_end: Vec<Vec<usize>> = scopes.iter().enumerate().map(|(i, s)| vec![i; s.len()]).collect();
    for i in (0..n.saturating_sub(1)).rev() {
        for d in 0..scopes[i].len() {
            let next = &scopes[i + 1];
            if next.len() > d && next[..=d] == scopes[i][..=d] {
                run_end[i][d] = run_end[i + 1][d];
            }
        }
    }
    for (i, plan) in plans.iter().enumerate() {
        if plan.role == Role::Skip {
            continue;
        }
        for t in &plan.inputs {
            let Some(s) = storage_of[t.0] else { continue };
            let producer_scope: &[String] = match graph.tensor(*t).producer {
                Some(p) => &scopes[p.0],
                None => &[],
            };
            let c = scopes[i];
            let common = c.iter().zip(producer_scope).take_while(|(a, b)| a == b).count();
            if c.len() > common {
                last_use[s] = last_use[s].max(run_end[i][common]);
            }
        }
    }
}

/// A pointwise op with exactly one data operand and at least one constant one.
fn is_epilogue(op: &Op, data_inputs: &[TensorId], n_inputs: usize) -> bool {
    op.schedule_facts().fusion.epilogue() && data_inputs.len() == 1 && n_inputs >= 2
}

/// Ops whose result is a view of their input in the framework (no new storage).
fn is_view(op: &Op, training: bool) -> bool {
    match op.schedule_facts().storage {
        Storage::Allocates => false,
        Storage::View => true,
        // Dropout is the identity in evaluation mode.
        Storage::ViewInInference => !training,
    }
}
