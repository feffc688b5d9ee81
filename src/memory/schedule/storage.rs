//! Storage: each node's role (allocates, view, in place, skipped), the
//! storages tensors live on, what each node keeps for backward, its
//! workspaces, and after which node each storage's forward life ends.

use super::dataflow::Dataflow;
use super::layout::Layouts;
use super::{NodePlan, Role, StoragePlan};
use crate::graph::{Shape, TensorId, TensorKind};
use crate::memory::profiles::{ConvSizes, DropoutMask};
use crate::ops::{SavedType, Storage};

/// Node `i` adds one weight vector along the last axis to the result of a
/// matrix product: the export's split of `nn.Linear` on an input of rank > 2,
/// which the framework runs as one `addmm` writing one tensor.
fn linear_bias_add(df: &Dataflow<'_>, i: usize) -> bool {
    let graph = df.graph;
    let nd = &graph.nodes[i];
    if !nd.op.schedule_facts().fusion.bias_add() || nd.inputs.len() != 1 || nd.params.len() != 1 {
        return false;
    }
    let from_product = graph.tensor(nd.inputs[0]).producer.is_some_and(|p| graph.nodes[p.0].op.schedule_facts().fusion.takes_bias());
    let out_last = nd.outputs.first().and_then(|&o| graph.tensor(o).shape.as_ref()).and_then(|s| s.dims().last().copied());
    let bias = graph.tensor(nd.params[0]).shape.as_ref().map(|s| s.dims().to_vec());
    let along_last = match (bias, out_last) {
        (Some(b), Some(n)) => b.last() == Some(&n) && b.iter().rev().skip(1).all(|&d| d == 1),
        _ => false,
    };
    from_product && along_last
}

/// The storage phase's result.
pub(super) struct Storages {
    pub nodes: Vec<NodePlan>,
    pub storages: Vec<StoragePlan>,
    /// Bytes of the graph inputs that carry data.
    pub input_bytes: u64,
    /// The largest convolution column buffer (one image), bytes.
    pub largest_column: u64,
    /// Per tensor: the storage it lives on.
    pub storage_of: Vec<Option<usize>>,
    /// Per tensor: its strides, where views keep them.
    layouts: Layouts,
    /// Per node: backward keeps the copy its kernel made of its input.
    kept_copy: Vec<bool>,
}

pub(super) fn plan(df: &Dataflow<'_>) -> Storages {
    let mut st = Storages {
        nodes: Vec::with_capacity(df.graph.nodes.len()),
        storages: Vec::new(),
        input_bytes: 0,
        largest_column: 0,
        storage_of: vec![None; df.graph.tensors.len()],
        layouts: Layouts::new(df.graph.tensors.len()),
        kept_copy: vec![false; df.graph.nodes.len()],
    };
    for &t in &df.graph.inputs {
        if df.data[t.0] && st.storage_of[t.0].is_none() {
            st.storage_of[t.0] = Some(st.storages.len());
            st.storages.push(StoragePlan { bytes: df.bytes[t.0], is_input: true, pinned: true, held_to_loss: false, saved_until: None });
            st.input_bytes = st.input_bytes.saturating_add(df.bytes[t.0]);
        }
    }
    for i in 0..df.graph.nodes.len() {
        let role = st.role_of(df, i);
        st.add_node(df, i, role);
        st.layouts.record(df, i, role);
    }
    // What is held: the graph outputs to the end, or the loss tensors to their loss's backward.
    for &t in &df.held {
        if let Some(s) = st.storage_of[t.0] {
            if df.style.is_some() {
                st.storages[s].held_to_loss = true;
            } else {
                st.storages[s].pinned = true;
            }
        }
    }
    for i in 0..df.graph.nodes.len() {
        if st.nodes[i].role == Role::Skip {
            continue;
        }
        if st.nodes[i].needs_backward {
            st.save_for_backward(df, i);
        }
        st.workspaces(df, i);
    }
    if df.in_net {
        st.keep_taps_for_their_losses(df);
    }
    st.forward_release(df);
    st
}

impl Storages {
    fn role_of(&self, df: &Dataflow<'_>, i: usize) -> Role {
        let (graph, profile, training) = (df.graph, df.profile, df.training);
        let nd = &graph.nodes[i];
        let f = &df.facts[i];
        let first_in = df.data_inputs[i].first().copied();
        let first_storage = first_in.and_then(|t| self.storage_of[t.0]);
        let producer_role = first_in.and_then(|t| graph.tensor(t).producer).and_then(|p| self.nodes.get(p.0)).map(|pl| pl.role);
        // The first input is an activation only this node reads, made by a
        // node that allocated or overwrote it: it may be overwritten.
        // A style-transfer tap is also read by its loss: never overwritten.
        let sole_reader = first_in
            .map(|t| df.readers[t.0].len() == 1 && graph.tensor(t).kind == TensorKind::Activation && !df.tapped[t.0])
            .unwrap_or(false)
            && matches!(producer_role, Some(Role::Normal) | Some(Role::InPlace));
        let overwrites_tap = first_in.is_some_and(|t| df.tapped[t.0]);
        // An in-place op whose backward needs its input must first copy it
        // (PyTorch clones it): no saving in training.
        let keeps_input = training && f.saves_inputs.contains(&0);
        let facts = nd.op.schedule_facts();
        let view = match facts.storage {
            Storage::Allocates => false,
            Storage::View => true,
            // A broadcast input cannot be reshaped in place: PyTorch copies it.
            Storage::Reshape => !first_in.is_some_and(|t| df.broadcast(t)),
            // Dropout is the identity in evaluation mode.
            Storage::ViewInInference => !training,
        } && !self.layouts.view_copies(df, i);
        // A pointwise op with exactly one data operand and at least one
        // constant one, or a linear layer's bias add into its product.
        // A decomposition's closing product is the whole framework op
        // (GELU, SiLU), never an update of its input.
        let epilogue = facts.fusion.epilogue()
            && df.fold_root[i].is_none()
            && df.data_inputs[i].len() == 1
            && first_in.is_some_and(|t| nd.outputs.first().is_some_and(|&o| df.bytes[o.0] == df.bytes[t.0]))
            && (nd.inputs.len() >= 2 || linear_bias_add(df, i));
        let has_outputs = nd.outputs.iter().any(|t| df.data[t.0]);
        if df.folded[i] || df.skipped[i] || !has_outputs {
            Role::Skip
        } else if first_storage.is_some() && profile.views_share_storage && view {
            Role::View
        } else if first_storage.is_some()
            && ((nd.in_place && profile.honours_in_place && !overwrites_tap)
                || (profile.in_place_activations
                    && f.in_place_ok
                    && !keeps_input
                    && sole_reader
                    && first_in.map(|t| !graph.outputs.contains(&t)).unwrap_or(false)))
        {
            Role::InPlace
        } else if first_storage.is_some() && profile.fuse_pointwise_decompositions && epilogue && sole_reader && !keeps_input {
            // A bias add or constant scale the export split off a fused
            // framework op (Linear's bias, GELU's ½): it updates the result
            // where it lies.
            Role::InPlace
        } else {
            Role::Normal
        }
    }

    /// The node's plan, its outputs on new storages or on its first input's.
    fn add_node(&mut self, df: &Dataflow<'_>, i: usize, role: Role) {
        let nd = &df.graph.nodes[i];
        let outputs: Vec<TensorId> = nd.outputs.iter().copied().filter(|t| df.data[t.0]).collect();
        let first_storage = df.data_inputs[i].first().and_then(|t| self.storage_of[t.0]);
        let mut new_storages = Vec::new();
        let mut output_bytes = 0u64;
        for &o in &outputs {
            output_bytes = output_bytes.saturating_add(df.bytes[o.0]);
            match role {
                Role::View | Role::InPlace => self.storage_of[o.0] = first_storage,
                Role::Normal => {
                    self.storage_of[o.0] = Some(self.storages.len());
                    new_storages.push(self.storages.len());
                    self.storages.push(StoragePlan {
                        bytes: df.worker(df.bytes[o.0], df.batch_of(o)),
                        is_input: false,
                        pinned: false,
                        held_to_loss: false,
                        saved_until: None,
                    });
                }
                Role::Skip => {}
            }
        }
        if role == Role::Skip {
            output_bytes = 0;
        }
        self.nodes.push(NodePlan {
            role,
            inputs: df.data_inputs[i].clone(),
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
            needs_backward: df.needs_backward[i],
            runs: !df.skipped[i],
        });
    }

    /// The tensors node `i` keeps for backward, and its extra saved bytes.
    fn save_for_backward(&mut self, df: &Dataflow<'_>, i: usize) {
        let nd = &df.graph.nodes[i];
        let f = &df.facts[i];
        let input_copy = self.layouts.input_copy_bytes(df, i);
        let plan = &mut self.nodes[i];
        let node_batch = nd.outputs.first().map(|&o| df.batch_of(o)).unwrap_or(1);
        // Indices in `facts` refer to the node's own input list; map them
        // to data tensors (folded nodes already list just x).
        let own_inputs: &[TensorId] = if df.rewired(i) { &plan.inputs } else { &nd.inputs };
        // A product keeps an operand only for the others' gradients: autograd
        // skips it when no other operand and no trainable weight needs one
        // (a dropout or stochastic-depth mask, a constant factor).
        let weights_need_grad = df.style.is_none() && !df.node_weights[i].is_empty();
        let others_need_grad =
            |k: usize| weights_need_grad || own_inputs.iter().enumerate().any(|(j, t)| j != k && df.requires_grad[t.0]);
        // A kernel that copies its input to fit its layout keeps the copy.
        let keeps_copy = input_copy > 0 && f.saves_inputs.contains(&0) && (!f.saves_for_other_operands || others_need_grad(0));
        let saved_inputs = f
            .saves_inputs
            .iter()
            .filter(|&&k| !f.saves_for_other_operands || others_need_grad(k))
            .filter(|&&k| !(keeps_copy && k == 0))
            .filter_map(|&k| own_inputs.get(k));
        // A recurrent op keeps what its backend's kernel keeps.
        let sequence = f.recurrence.as_ref().and_then(|r| df.profile.sequence_costs(r, df.prec.compute));
        let saved_outputs = f
            .saves_outputs
            .iter()
            .filter(|_| sequence.is_none_or(|c| c.keeps_output))
            .filter_map(|&k| nd.outputs.get(k));
        let saved_tensors: Vec<TensorId> = saved_inputs.chain(saved_outputs).copied().collect();
        for t in saved_tensors {
            plan.saved_bytes = plan.saved_bytes.saturating_add(df.bytes[t.0]);
            if let Some(s) = self.storage_of[t.0] {
                if !plan.saved.contains(&s) {
                    plan.saved.push(s);
                }
                let until = &mut self.storages[s].saved_until;
                *until = Some(until.map_or(i, |u| u.min(i)));
            }
        }
        if let Some(c) = sequence {
            plan.extra_saved_bytes = df.worker(c.saved, node_batch);
        }
        if keeps_copy {
            plan.extra_saved_bytes = plan.extra_saved_bytes.saturating_add(df.worker(input_copy, node_batch));
            self.kept_copy[i] = true;
        }
        for e in f.extra_saved.iter().filter(|_| sequence.is_none()) {
            let b = match e.dtype {
                // The backend's index type.
                SavedType::PoolIndex => e.elems.saturating_mul(df.profile.pool_index_bytes),
                SavedType::DropoutMask => match df.profile.dropout_mask {
                    DropoutMask::Bool => e.elems,
                    DropoutMask::Noise => e.elems.saturating_mul(df.prec.compute),
                },
                SavedType::Fixed(d) if !d.is_float() => e.elems.saturating_mul(d.size_bytes()),
                // Statistics are kept in f32 whatever the compute type.
                SavedType::Fixed(d) => e.elems.saturating_mul(d.size_bytes().min(4).max(df.prec.compute)),
                SavedType::Compute => e.elems.saturating_mul(df.prec.compute),
            };
            plan.extra_saved_bytes = plan.extra_saved_bytes.saturating_add(df.worker(b, node_batch));
        }
        plan.saved_bytes = plan.saved_bytes.saturating_add(plan.extra_saved_bytes);
    }

    /// Losses inside the net: a loss's Gram (or criterion) keeps its tapped
    /// map until the loss's backward, which runs just before the backward step
    /// of the map's producer; the map is freed after that step.
    fn keep_taps_for_their_losses(&mut self, df: &Dataflow<'_>) {
        for (t, _) in df.tapped.iter().enumerate().filter(|(_, &tapped)| tapped) {
            let (Some(s), Some(p)) = (self.storage_of[t], df.graph.tensors[t].producer) else { continue };
            let plan = &mut self.nodes[p.0];
            if plan.role == Role::Skip || !plan.needs_backward {
                continue;
            }
            if !plan.saved.contains(&s) {
                plan.saved.push(s);
            }
            let until = &mut self.storages[s].saved_until;
            *until = Some(until.map_or(p.0, |u| u.min(p.0)));
        }
    }

    /// Node `i`'s transient scratch: the backend's convolution workspace,
    /// max-pool indices written without a backward, normalisation temporaries.
    fn workspaces(&mut self, df: &Dataflow<'_>, i: usize) {
        let (graph, profile, prec) = (df.graph, df.profile, df.prec);
        let nd = &graph.nodes[i];
        let f = &df.facts[i];
        let input_copy = self.layouts.input_copy_bytes(df, i);
        let channels_last = df.data_inputs[i].first().is_some_and(|&t| self.layouts.is_channels_last(df, t));
        let plan = &mut self.nodes[i];
        let node_batch = nd.outputs.first().map(|&o| df.batch_of(o)).unwrap_or(1);
        let in_bytes = plan.inputs.first().map(|t| df.bytes[t.0]).unwrap_or(0);
        self.largest_column = self.largest_column.max(f.column_elems_per_image.saturating_mul(prec.compute));
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
                elem_bytes: prec.compute,
                out_channels: geo.out_channels,
                groups: geo.groups,
                out_spatial: geo.out_spatial_elems,
                lead4_elems: geo.lead4_elems,
                large_kernel: geo.large_kernel,
                strided: geo.strided,
                unit_window: geo.unit_window,
                channels_last,
                frozen_weights: df.style.is_some(),
                input_no_grad: df.data_inputs[i].first().is_some_and(|t| !df.requires_grad[t.0]),
            };
            let ws = df.worker(profile.conv_forward_workspace(&sizes, df.threads), node_batch);
            plan.workspace_train = ws;
            plan.workspace_infer = ws;
            plan.workspace_backward = df.worker(profile.conv_backward_workspace(&sizes, df.threads), node_batch);
        }
        let pool_indices: Vec<u64> = f.extra_saved.iter().filter(|e| e.dtype == SavedType::PoolIndex).map(|e| e.elems).collect();
        if profile.pool_indices_in_inference && !pool_indices.is_empty() {
            // Written even without backward, freed when the op returns.
            let b = pool_indices.iter().map(|e| e.saturating_mul(profile.pool_index_bytes)).fold(0, u64::saturating_add);
            plan.workspace_infer = df.worker(b, node_batch);
        }
        if let Some(c) = f.recurrence.as_ref().and_then(|r| profile.sequence_costs(r, prec.compute)) {
            plan.workspace_train = df.worker(c.forward, node_batch);
            plan.workspace_infer = plan.workspace_train;
            plan.workspace_backward = df.worker(c.backward, node_batch);
        }
        if profile.norm_backward_temporary && nd.op.schedule_facts().backward_input_temporary {
            plan.workspace_backward = in_bytes;
        }
        // The copy a kernel makes of an input whose layout does not fit it:
        // freed as the op returns unless backward keeps it.
        let copy = df.worker(input_copy, node_batch);
        plan.workspace_infer = plan.workspace_infer.saturating_add(copy);
        if !self.kept_copy[i] {
            plan.workspace_train = plan.workspace_train.saturating_add(copy);
        }
        if let Some((train, infer, backward)) = df.attention_workspace(i) {
            plan.workspace_train = plan.workspace_train.saturating_add(train);
            plan.workspace_infer = plan.workspace_infer.saturating_add(infer);
            plan.workspace_backward = plan.workspace_backward.saturating_add(backward);
        }
    }

    /// Forward release: after the last reader of any tensor on the storage,
    /// unless it is pinned or saved for backward.
    fn forward_release(&mut self, df: &Dataflow<'_>) {
        let mut last_use = vec![0usize; self.storages.len()];
        for (i, plan) in self.nodes.iter().enumerate() {
            if plan.role == Role::Skip {
                continue;
            }
            for t in plan.inputs.iter().chain(plan.outputs.iter()) {
                if let Some(s) = self.storage_of[t.0] {
                    last_use[s] = last_use[s].max(i);
                }
            }
        }
        if df.profile.module_scope_hold {
            self.hold_for_module_calls(df, &mut last_use);
            for (t, until) in super::locals::local_holds(df.graph) {
                if let Some(s) = self.storage_of[t.0] {
                    last_use[s] = last_use[s].max(until);
                }
            }
        }
        if df.profile.persistent {
            // Modules or blobs keep every buffer for the run.
            for st in self.storages.iter_mut() {
                st.pinned = true;
            }
        }
        for (s, st) in self.storages.iter().enumerate() {
            if !st.pinned && !st.held_to_loss && st.saved_until.is_none() {
                self.nodes[last_use[s]].fwd_frees.push(s);
            }
        }
    }

    /// Extends forward lifetimes for eager frames: a tensor read by a node inside
    /// a module that does not contain the tensor's producer was an argument of
    /// that module's call, and the caller holds it until the call returns (the
    /// end of the contiguous run of nodes inside that module). Module paths are
    /// `Node::scope`.
    fn hold_for_module_calls(&self, df: &Dataflow<'_>, last_use: &mut [usize]) {
        let graph = df.graph;
        let scopes: Vec<&[String]> = graph.nodes.iter().map(|n| &n.scope[..]).collect();
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
        for (i, plan) in self.nodes.iter().enumerate() {
            if plan.role == Role::Skip {
                continue;
            }
            for t in &plan.inputs {
                let Some(s) = self.storage_of[t.0] else { continue };
                let producer_scope: &[String] = match graph.tensor(*t).producer {
                    Some(p) => scopes[p.0],
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
}
