//! Layout: the strides of every tensor, in profiles whose views keep them
//! (PyTorch). A transpose permutes its input's strides; a reshape is a view
//! only when those strides can express the new shape, else it copies; a slice
//! keeps its input's strides and a broadcast gives its new axes stride 0.
//! Pointwise results take their input's dense layout, a convolution's or a
//! batch normalisation's result is channels-last when its input is, anything
//! else is contiguous. A kernel that needs a contiguous input, or rows of the
//! last axis (a matrix product by a weight), copies an input that does not fit.

use super::attention::Runs;
use super::dataflow::Dataflow;
use super::Role;
use crate::graph::TensorId;
use crate::ops::{InputLayout, Storage};

pub(super) struct Layouts {
    /// Per tensor: its strides in elements; `None` when contiguous or unknown.
    strides: Vec<Option<Vec<u64>>>,
}

/// Strides of a contiguous tensor of these dims.
fn contiguous(dims: &[u64]) -> Vec<u64> {
    let mut s = vec![1u64; dims.len()];
    for k in (0..dims.len().saturating_sub(1)).rev() {
        s[k] = s[k + 1].saturating_mul(dims[k + 1].max(1));
    }
    s
}

/// Whether `strides` address `dims` contiguously (axes of extent 1 aside).
fn is_contiguous(dims: &[u64], strides: &[u64]) -> bool {
    // `contiguous(dims)` from the innermost axis out, without building it.
    let mut cs = 1u64;
    for (k, &d) in dims.iter().enumerate().rev() {
        if strides.get(k).is_some_and(|&s| d > 1 && s != cs) {
            return false;
        }
        cs = cs.saturating_mul(d.max(1));
    }
    true
}

/// Strides of `new` dims as a view of `old` dims with `old_strides`, when the
/// elements can be addressed without a copy: each run of new axes must cover
/// a run of old axes that are contiguous with one another (PyTorch's rule for
/// `view`/`reshape`).
pub(super) fn view_strides(old: &[u64], old_strides: &[u64], new: &[u64]) -> Option<Vec<u64>> {
    let numel = |d: &[u64]| d.iter().try_fold(1u64, |a, &x| a.checked_mul(x));
    if numel(old)? != numel(new)? {
        return None;
    }
    if numel(old)? == 0 || old.is_empty() {
        return Some(contiguous(new));
    }
    let mut new_strides = vec![0u64; new.len()];
    let mut view_d = new.len() as isize - 1;
    let mut chunk_base = *old_strides.last()?;
    let (mut tensor_numel, mut view_numel) = (1u64, 1u64);
    for tensor_d in (0..old.len()).rev() {
        tensor_numel = tensor_numel.checked_mul(old[tensor_d])?;
        let run_ends = tensor_d == 0
            || (old[tensor_d - 1] != 1 && old_strides[tensor_d - 1] != tensor_numel.checked_mul(chunk_base)?);
        if run_ends {
            while view_d >= 0 && (view_numel < tensor_numel || new[view_d as usize] == 1) {
                new_strides[view_d as usize] = view_numel.checked_mul(chunk_base)?;
                view_numel = view_numel.checked_mul(new[view_d as usize])?;
                view_d -= 1;
            }
            if view_numel != tensor_numel {
                return None;
            }
            if tensor_d > 0 {
                chunk_base = old_strides[tensor_d - 1];
                tensor_numel = 1;
                view_numel = 1;
            }
        }
    }
    (view_d == -1).then_some(new_strides)
}

/// The axes ordered from the largest stride to the smallest (ties by axis):
/// the order the elements are stored in.
fn storage_order(strides: &[u64]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..strides.len()).collect();
    order.sort_by(|&a, &b| strides[b].cmp(&strides[a]).then(a.cmp(&b)));
    order
}

/// Dense strides for `dims` stored in `order` (outermost first); an order
/// that does not name every axis once gives the contiguous strides.
fn dense_in_order(dims: &[u64], order: &[usize]) -> Vec<u64> {
    let mut seen = vec![false; dims.len()];
    if order.len() != dims.len() || order.iter().any(|&a| a >= dims.len() || std::mem::replace(&mut seen[a], true)) {
        return contiguous(dims);
    }
    let mut s = vec![0u64; dims.len()];
    let mut step = 1u64;
    for &a in order.iter().rev() {
        s[a] = step;
        step = step.saturating_mul(dims[a].max(1));
    }
    s
}

/// Channels-last: a tensor of rank 4 or more stored as N, spatial…, C.
fn channels_last(dims: &[u64], strides: &[u64]) -> bool {
    if dims.len() < 4 || dims[1] <= 1 {
        return false;
    }
    let mut order = vec![0usize];
    order.extend(2..dims.len());
    order.push(1);
    let dense = dense_in_order(dims, &order);
    dims.iter().zip(strides.iter().zip(&dense)).all(|(&d, (&s, &ds))| d <= 1 || s == ds)
}

impl Layouts {
    pub(super) fn new(n_tensors: usize) -> Self {
        Layouts { strides: vec![None; n_tensors] }
    }

    fn dims<'g>(df: &'g Dataflow<'_>, t: TensorId) -> Option<&'g [u64]> {
        df.graph.tensor(t).shape.as_ref().map(|s| s.dims())
    }

    /// The strides of `t` (contiguous ones when none were recorded).
    fn strides_of(&self, df: &Dataflow<'_>, t: TensorId) -> Option<Vec<u64>> {
        let dims = Self::dims(df, t)?;
        Some(self.strides[t.0].clone().filter(|s| s.len() == dims.len()).unwrap_or_else(|| contiguous(dims)))
    }

    /// The strides recorded for `t`, when they match its rank.
    fn recorded<'s>(&'s self, df: &Dataflow<'_>, t: TensorId) -> Option<&'s [u64]> {
        let rank = Self::dims(df, t)?.len();
        self.strides[t.0].as_deref().filter(|s| s.len() == rank)
    }

    /// `t` is stored channels-last.
    pub(super) fn is_channels_last(&self, df: &Dataflow<'_>, t: TensorId) -> bool {
        match (self.recorded(df, t), Self::dims(df, t)) {
            (Some(s), Some(d)) => channels_last(d, s),
            _ => false,
        }
    }

    /// A view node whose first input's strides cannot express its output:
    /// the framework copies instead.
    pub(super) fn view_copies(&self, df: &Dataflow<'_>, i: usize) -> bool {
        if !df.profile.views_keep_strides {
            return false;
        }
        let nd = &df.graph.nodes[i];
        let Some(&x) = df.data_inputs[i].first() else { return false };
        if df.facts[i].view_permutation.is_some() || self.strides[x.0].is_none() {
            return false;
        }
        let (Some(in_dims), Some(in_strides)) = (Self::dims(df, x), self.strides_of(df, x)) else { return false };
        nd.outputs.iter().filter(|o| df.data[o.0]).any(|&o| match Self::dims(df, o) {
            Some(out) if elems(out) == elems(in_dims) => view_strides(in_dims, &in_strides, out).is_none(),
            _ => false,
        })
    }

    /// Bytes of the copy node `i`'s kernel makes of its first input because
    /// the input's layout does not fit it (0 when it fits).
    pub(super) fn input_copy_bytes(&self, df: &Dataflow<'_>, i: usize) -> u64 {
        if !df.profile.views_keep_strides {
            return 0;
        }
        let Some(&x) = df.data_inputs[i].first() else { return 0 };
        let (Some(dims), Some(strides)) = (Self::dims(df, x), self.recorded(df, x)) else { return 0 };
        let fits = match df.facts[i].input_layout {
            InputLayout::Any => true,
            InputLayout::Contiguous => is_contiguous(dims, strides),
            // Only a product by a weight flattens its input to rows.
            InputLayout::Rows => {
                df.data_inputs[i].len() != 1 || dims.len() <= 2 || {
                    let k = *dims.last().unwrap_or(&1);
                    let rows = dims[..dims.len() - 1].iter().product::<u64>();
                    view_strides(dims, strides, &[rows, k]).is_some()
                }
            }
        };
        if fits {
            0
        } else {
            df.bytes[x.0]
        }
    }

    /// Records the strides of node `i`'s outputs, given its role.
    pub(super) fn record(&mut self, df: &Dataflow<'_>, i: usize, role: Role) {
        if !df.profile.views_keep_strides {
            return;
        }
        let nd = &df.graph.nodes[i];
        let Some(&x) = df.data_inputs[i].first() else { return };
        let (Some(in_dims), Some(in_strides)) = (Self::dims(df, x), self.strides_of(df, x)) else { return };
        let facts = &df.facts[i];
        let sched = nd.op.schedule_facts();
        // A fused attention call's output: PyTorch's CPU flash kernel writes
        // [batch, seq, heads, head] and returns it transposed to
        // [batch, heads, seq, head], so the usual `transpose(1, 2).reshape`
        // back to [batch, seq, heads·head] is a view.
        let fused_attention = matches!(df.attention_at[i], Some((c, Runs::Fused)) if !df.attention[c].single_node());
        for &o in nd.outputs.iter().filter(|o| df.data[o.0]) {
            let Some(out) = Self::dims(df, o) else { continue };
            if fused_attention && role != Role::Skip {
                self.strides[o.0] = (out.len() == 4).then(|| dense_in_order(out, &[0, 2, 1, 3])).filter(|s| !is_contiguous(out, s));
                continue;
            }
            let s = match role {
                Role::Skip => continue,
                Role::InPlace => Some(in_strides.clone()),
                Role::View => match &facts.view_permutation {
                    Some(perm) if perm.len() == in_strides.len() => Some(perm.iter().map(|&a| in_strides[a]).collect()),
                    Some(_) => None,
                    None => view_output(in_dims, &in_strides, out),
                },
                // A view that had to copy writes a contiguous tensor.
                Role::Normal if sched.storage.view_like() => None,
                Role::Normal => {
                    // Dropout (a view only in inference) is pointwise too.
                    let pointwise = sched.fusion.pointwise() || sched.fusion.epilogue() || sched.storage == Storage::ViewInInference;
                    let keeps_channels_last = nd.op.conv_geometry(None, &[]).is_some() || sched.backward_input_temporary;
                    if facts.input_layout == InputLayout::Contiguous || out != in_dims {
                        None
                    } else if pointwise {
                        Some(dense_in_order(out, &storage_order(&in_strides)))
                    } else if keeps_channels_last && channels_last(in_dims, &in_strides) {
                        Some(in_strides.clone())
                    } else {
                        None
                    }
                }
            };
            // A convolution whose output differs in shape keeps the input's
            // channels-last layout too.
            let s = match (role, s) {
                (Role::Normal, None) if nd.op.conv_geometry(None, &[]).is_some() && channels_last(in_dims, &in_strides) => {
                    let mut order = vec![0usize];
                    order.extend(2..out.len());
                    order.push(1);
                    Some(dense_in_order(out, &order))
                }
                (_, s) => s,
            };
            // Strides of another rank than the output (a malformed graph) are dropped.
            self.strides[o.0] = s.filter(|s| s.len() == out.len() && !is_contiguous(out, s));
        }
    }
}

fn elems(dims: &[u64]) -> Option<u64> {
    dims.iter().try_fold(1u64, |a, &x| a.checked_mul(x))
}

/// The strides of a view (not a permute) of a tensor with `in_dims` and
/// `in_strides` whose output has `out` dims.
fn view_output(in_dims: &[u64], in_strides: &[u64], out: &[u64]) -> Option<Vec<u64>> {
    match (elems(out), elems(in_dims)) {
        // A reshape (or squeeze, identity): viewable or copied (then contiguous).
        (Some(a), Some(b)) if a == b => view_strides(in_dims, in_strides, out),
        // A slice keeps the strides.
        (Some(a), Some(b)) if a < b && out.len() == in_dims.len() => Some(in_strides.to_vec()),
        // A broadcast: new and stretched axes get stride 0.
        (Some(a), Some(b)) if a > b && out.len() >= in_dims.len() => {
            let lead = out.len() - in_dims.len();
            Some(
                (0..out.len())
                    .map(|j| match j.checked_sub(lead) {
                        Some(k) if in_dims[k] == out[j] => in_strides[k],
                        _ => 0,
                    })
                    .collect(),
            )
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reshapes_that_strides_allow() {
        // A contiguous [2,3,4] as [6,4] or [2,12]: views.
        let s = contiguous(&[2, 3, 4]);
        assert_eq!(view_strides(&[2, 3, 4], &s, &[6, 4]), Some(vec![4, 1]));
        assert_eq!(view_strides(&[2, 3, 4], &s, &[2, 12]), Some(vec![12, 1]));
        // Its transpose to [3,2,4] merges into [6,4] only by copying...
        let t = vec![s[1], s[0], s[2]];
        assert_eq!(view_strides(&[3, 2, 4], &t, &[6, 4]), None);
        // ...but splitting the last axis stays a view.
        assert_eq!(view_strides(&[3, 2, 4], &t, &[3, 2, 2, 2]), Some(vec![4, 12, 2, 1]));
    }

    #[test]
    fn channel_shuffle_and_batch_first_outputs_copy() {
        // ShuffleNet: [1,2,58,28,28] transposed to [1,58,2,28,28] cannot become [1,116,28,28].
        let dims = [1, 2, 58, 28, 28];
        let s = contiguous(&dims);
        let perm = [0, 2, 1, 3, 4];
        let t: Vec<u64> = perm.iter().map(|&a| s[a]).collect();
        let tdims: Vec<u64> = perm.iter().map(|&a| dims[a]).collect();
        assert_eq!(view_strides(&tdims, &t, &[1, 116, 28, 28]), None);
        // An LSTM's [T,N,H] output seen batch first, [N,T,H], is not rows of H.
        let s = contiguous(&[128, 2, 512]);
        assert_eq!(view_strides(&[2, 128, 512], &[s[1], s[0], s[2]], &[256, 512]), None);
    }

    #[test]
    fn an_order_that_does_not_fit_the_rank_gives_contiguous_strides() {
        // A malformed graph (fuzzing found one) can pair dims and an order of other ranks.
        assert_eq!(dense_in_order(&[2, 3], &[0, 2, 1]), contiguous(&[2, 3]));
        assert_eq!(dense_in_order(&[2, 3], &[1, 1]), contiguous(&[2, 3]));
        assert_eq!(dense_in_order(&[2, 3, 4], &[0, 2, 1]), vec![12, 1, 3]);
    }

    #[test]
    fn channels_last_is_n_spatial_c() {
        // ConvNeXt: a [1,56,56,96] layer-norm output permuted back to [1,96,56,56].
        let s = contiguous(&[1, 56, 56, 96]);
        let back = [s[0], s[3], s[1], s[2]];
        assert!(channels_last(&[1, 96, 56, 56], &back));
        assert!(!channels_last(&[1, 96, 56, 56], &contiguous(&[1, 96, 56, 56])));
        // A pointwise result keeps the order.
        assert_eq!(dense_in_order(&[1, 96, 56, 56], &storage_order(&back)), back.to_vec());
    }

    #[test]
    fn a_fused_attention_output_reshapes_back_as_a_view() {
        // [2,6,512,64] stored as [2,512,6,64]: transpose(1, 2) is contiguous,
        // so the reshape to [2,512,384] needs no copy.
        let s = dense_in_order(&[2, 6, 512, 64], &[0, 2, 1, 3]);
        let t = [s[0], s[2], s[1], s[3]];
        assert!(is_contiguous(&[2, 512, 6, 64], &t));
        assert_eq!(view_strides(&[2, 512, 6, 64], &t, &[2, 512, 384]), Some(vec![512 * 384, 384, 1]));
    }

    #[test]
    fn slices_keep_and_broadcasts_zero_their_strides() {
        let s = contiguous(&[1, 116, 28, 28]);
        assert_eq!(view_output(&[1, 116, 28, 28], &s, &[1, 58, 28, 28]), Some(s.clone()));
        assert_eq!(view_output(&[2, 1, 4], &contiguous(&[2, 1, 4]), &[2, 3, 4]), Some(vec![4, 0, 1]));
    }
}
