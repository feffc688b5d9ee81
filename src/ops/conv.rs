//! Convolution and transposed convolution (Caffe Convolution, Deconvolution,
//! the ConvolutionDepthwise fork; ONNX Conv, ConvTranspose).
//!
//! Output extent: conv `(in + pads − (d·(k−1)+1)) / stride + 1` (floor);
//! deconv `stride·(in−1) + d·(k−1) + 1 − pads + output_pad`.
//! Weights: conv (out, C_in/group, k…), deconv (C_in, out/group, k…), bias (out).

use super::value::{shape_arg, Input};
use super::window::{AutoPad, Rounding, Window};
use super::{channels, first, known, overflow, ConvGeometry, Family, MemoryFacts, OutShape, ParamSpec, ScheduleFacts};
use crate::tensor::{checked_product, Shape, ShapeError};

/// The convolution family.
#[derive(Clone, Debug, PartialEq)]
pub enum ConvOp {
    /// Convolution (also grouped and depthwise).
    Forward(Box<ConvParams>),
    /// Transposed convolution.
    Transposed(Box<ConvParams>),
    /// Deformable convolution (ONNX DeformConv): a convolution's output
    /// shape, sampling at learned offsets (input 2) and an optional mask (input 4).
    Deformable(Box<ConvParams>),
}

impl ConvOp {
    /// The parameters, whichever form.
    pub fn params(&self) -> &ConvParams {
        match self {
            ConvOp::Forward(p) | ConvOp::Transposed(p) | ConvOp::Deformable(p) => p,
        }
    }
}

impl Family for ConvOp {
    fn name(&self) -> &'static str {
        match self {
            ConvOp::Forward(_) => "Conv",
            ConvOp::Transposed(_) => "Deconv",
            ConvOp::Deformable(_) => "DeformConv",
        }
    }

    fn infer_shapes(&self, inputs: &[&Shape], n_outputs: usize) -> Result<Vec<OutShape>, ShapeError> {
        let x = first(inputs)?;
        let shape = match self {
            ConvOp::Forward(p) | ConvOp::Deformable(p) => conv_shape(p, x)?,
            ConvOp::Transposed(p) => deconv_shape(p, x)?,
        };
        known(shape, n_outputs)
    }

    fn has_weights(&self) -> bool {
        match self {
            ConvOp::Forward(_) | ConvOp::Transposed(_) | ConvOp::Deformable(_) => true,
        }
    }

    fn param_specs(&self, inputs: &[&Shape]) -> Result<Vec<ParamSpec>, ShapeError> {
        match self {
            ConvOp::Forward(p) | ConvOp::Deformable(p) => conv_params(p, first(inputs)?),
            ConvOp::Transposed(p) => deconv_params(p, first(inputs)?),
        }
    }

    fn schedule_facts(&self) -> ScheduleFacts {
        match self {
            ConvOp::Forward(_) | ConvOp::Transposed(_) | ConvOp::Deformable(_) => ScheduleFacts::COMPUTES,
        }
    }

    fn memory_facts(&self, inputs: &[&Shape], outputs: &[&Shape]) -> MemoryFacts {
        let (in0, out0) = (inputs.first().copied(), outputs.first().copied());
        match self {
            ConvOp::Forward(p) => conv_memory(p, in0, out0),
            ConvOp::Transposed(p) => deconv_memory(p, in0),
            // The gradients of the offsets and mask sample the input again: every data input is kept.
            ConvOp::Deformable(p) => MemoryFacts { saves_inputs: (0..inputs.len()).collect(), ..conv_memory(p, in0, out0) },
        }
    }

    /// Deformable convolutions have none: the backends' workspace rules are for plain ones.
    fn conv_geometry(&self, input: Option<&Shape>, weights: &[&Shape]) -> Option<ConvGeometry> {
        if let ConvOp::Deformable(_) = self {
            return None;
        }
        let p = self.params();
        let w = &p.window;
        let in_channels = input.and_then(|s| s.dims().get(1).copied()).unwrap_or(0);
        let output = input.and_then(|s| match self {
            ConvOp::Forward(_) => conv_shape(p, s).ok(),
            ConvOp::Transposed(_) => deconv_shape(p, s).ok(),
            ConvOp::Deformable(_) => None,
        });
        let pointwise_kernel = w.kernel.iter().all(|&k| k == 1);
        let strided = w.stride.iter().any(|&s| s > 1);
        let padded = w.pad_begin.iter().chain(w.pad_end.iter()).any(|&x| x > 0);
        let last_two: Vec<u64> = w.kernel.iter().rev().take(2).copied().collect();
        Some(ConvGeometry {
            padded_input_elems: input.map(|s| padded_elems(p, s)).unwrap_or(0),
            in_channels,
            pointwise_kernel,
            weight_elems: weights
                .iter()
                .filter(|w| w.rank() > 1)
                .filter_map(|w| w.elems())
                .fold(0u64, |a, e| a.saturating_add(e)),
            batch: input.and_then(|s| s.dims().first().copied()).unwrap_or(1),
            out_channels: p.out_channels,
            groups: p.groups(in_channels).max(1),
            out_spatial_elems: output.and_then(|o| checked_product(o.dims().get(2..).unwrap_or(&[]))).unwrap_or(0),
            lead4_elems: input.map(lead4_elems).unwrap_or(0),
            large_kernel: last_two.len() == 2 && last_two.iter().all(|&k| k > 3),
            strided,
            dilated: w.dilation.iter().any(|&d| d > 1),
            unit_window: pointwise_kernel && !strided && !padded,
            transposed: matches!(self, ConvOp::Transposed(_)),
        })
    }

    /// Inputs in ONNX order (x, W, B): the output channels and, when no
    /// attribute states it, the kernel come from W's dims, which must agree
    /// with the attributes and the input's channels.
    fn infer(&self, ins: &[Option<Input<'_>>], n_outputs: usize) -> Result<Vec<OutShape>, ShapeError> {
        let x = shape_arg(ins, 0, "data input")?;
        let mut p = self.params().clone();
        if let Some(w) = ins.get(1).copied().flatten() {
            let wd = w.shape.dims();
            if wd.len() < 2 || wd.len() != x.rank() {
                return Err(ShapeError::new(format!("weight {} does not fit input {x}", w.shape)));
            }
            if p.window.kernel.is_empty() {
                p.window = p.window.with_kernel(&wd[2..])?;
            } else if p.window.kernel != wd[2..] {
                return Err(ShapeError::new(format!("kernel {:?} contradicts the weight {}", p.window.kernel, w.shape)));
            }
            let c_in = channels(x)?;
            let (out, takes) = match self {
                ConvOp::Forward(_) | ConvOp::Deformable(_) => (wd[0], wd[1].checked_mul(p.group)),
                ConvOp::Transposed(_) => (wd[1].checked_mul(p.group).ok_or_else(|| overflow("channels"))?, Some(wd[0])),
            };
            if takes != Some(c_in) || (p.out_channels != 0 && p.out_channels != out) {
                return Err(ShapeError::new(format!("weight {} with group {} does not fit input {x}", w.shape, p.group)));
            }
            p.out_channels = out;
        }
        if p.out_channels == 0 {
            return Err(ShapeError::new("the weight's dims are not known"));
        }
        let shape = match self {
            ConvOp::Forward(_) | ConvOp::Deformable(_) => conv_shape(&p, x)?,
            ConvOp::Transposed(_) => deconv_shape(&p, x)?,
        };
        known(shape, n_outputs)
    }
}

/// The product of the first four extents of the input as PyTorch's backend
/// choice reads it (`input.size(0) · … · input.size(3)`), a 1-D input being
/// viewed as N×C×1×L first.
fn lead4_elems(input: &Shape) -> u64 {
    let d = input.dims();
    let four: Vec<u64> = if d.len() == 3 { vec![d[0], d[1], 1, d[2]] } else { d.iter().take(4).copied().collect() };
    four.iter().fold(1u64, |a, &x| a.saturating_mul(x))
}

/// N·C·∏(x + pad_begin + pad_end) over the spatial axes after the first two.
/// Saturating: with a zero extent the input's own size does not bound it.
fn padded_elems(p: &ConvParams, input: &Shape) -> u64 {
    let d = input.dims();
    let window = match p.window.resolved(d.get(2..).unwrap_or(&[])) {
        Ok(w) => w,
        Err(_) => std::borrow::Cow::Borrowed(&p.window),
    };
    let p = &ConvParams { window: window.into_owned(), ..p.clone() };
    let mut e = d.iter().take(2).fold(1u64, |a, &x| a.saturating_mul(x));
    for (k, &x) in d.iter().skip(2).enumerate() {
        let pad = (p.window.pad_begin.get(k).copied().unwrap_or(0)).saturating_add(p.window.pad_end.get(k).copied().unwrap_or(0));
        e = e.saturating_mul(x.saturating_add(pad));
    }
    e
}

/// A convolution's parameters.
#[derive(Clone, Debug, PartialEq)]
pub struct ConvParams {
    /// Output channels.
    pub out_channels: u64,
    /// The window geometry.
    pub window: Window,
    /// Groups (1: plain; the input channels: depthwise).
    pub group: u64,
    /// The group equals the input channels, whatever `group` says (depthwise forks).
    pub depthwise: bool,
    /// Whether it learns a bias.
    pub bias: bool,
    /// The channel axis; spatial axes follow it.
    pub axis: i64,
    /// Extra extent added to one side of a transposed convolution's output.
    pub output_pad: Vec<u64>,
}

impl ConvParams {
    /// Groups for an input with `c_in` channels.
    pub fn groups(&self, c_in: u64) -> u64 {
        if self.depthwise {
            c_in
        } else {
            self.group
        }
    }
}

/// Channel axis and spatial axes of the input, checked against the window.
fn split_axes(p: &ConvParams, input: &Shape) -> Result<(usize, u64), ShapeError> {
    let axis = input.axis(p.axis)?;
    let c_in = input.dim(axis)?;
    let n_spatial = input.rank() - axis - 1;
    if n_spatial != p.window.n_axes() {
        return Err(ShapeError::new(format!(
            "input {input} has {n_spatial} spatial axes but the kernel has {}",
            p.window.n_axes()
        )));
    }
    let group = p.groups(c_in);
    if group == 0 || c_in % group != 0 {
        return Err(ShapeError::new(format!("group {group} does not divide the {c_in} input channels")));
    }
    if p.out_channels % group != 0 {
        return Err(ShapeError::new(format!("group {group} does not divide num_output {}", p.out_channels)));
    }
    Ok((axis, c_in))
}

/// Convolution: (N, out_channels, spatial…) with the window rule per axis.
pub fn conv_shape(p: &ConvParams, input: &Shape) -> Result<Shape, ShapeError> {
    let (axis, _) = split_axes(p, input)?;
    let window = p.window.resolved(&input.dims()[axis + 1..])?;
    let mut dims = input.dims()[..axis].to_vec();
    dims.push(p.out_channels);
    for (i, &extent) in input.dims()[axis + 1..].iter().enumerate() {
        dims.push(window.output_extent(i, extent, Rounding::Floor)?);
    }
    Ok(Shape(dims))
}

/// Transposed convolution: stride·(H−1) + dilated kernel − pads (+ output padding).
pub fn deconv_shape(p: &ConvParams, input: &Shape) -> Result<Shape, ShapeError> {
    if p.window.auto_pad != AutoPad::Explicit {
        return Err(ShapeError::new("transposed convolution with SAME padding has no rule here"));
    }
    let (axis, _) = split_axes(p, input)?;
    let mut dims = input.dims()[..axis].to_vec();
    dims.push(p.out_channels);
    for (i, &extent) in input.dims()[axis + 1..].iter().enumerate() {
        let w = &p.window;
        let grown = w.stride[i]
            .checked_mul(extent.saturating_sub(1))
            .and_then(|v| v.checked_add(w.effective_kernel(i).ok()?))
            .and_then(|v| v.checked_add(p.output_pad.get(i).copied().unwrap_or(0)))
            .ok_or_else(|| overflow("deconvolution output"))?;
        let pads = w.pad_begin[i].saturating_add(w.pad_end[i]);
        if extent == 0 || pads >= grown {
            return Err(ShapeError::new(format!(
                "padding {pads} leaves no output from input extent {extent}"
            )));
        }
        dims.push(grown - pads);
    }
    Ok(Shape(dims))
}

fn kernel_elems(p: &ConvParams) -> Result<u64, ShapeError> {
    checked_product(&p.window.kernel).ok_or_else(|| overflow("kernel size"))
}

fn weight_and_bias(p: &ConvParams, mut dims: Vec<u64>) -> Vec<ParamSpec> {
    dims.extend_from_slice(&p.window.kernel);
    let mut specs = vec![ParamSpec::learned("weight", dims)];
    if p.bias {
        specs.push(ParamSpec::learned("bias", vec![p.out_channels]));
    }
    specs
}

/// Convolution weights (out, in/group, kernel…) and bias (out).
pub fn conv_params(p: &ConvParams, input: &Shape) -> Result<Vec<ParamSpec>, ShapeError> {
    let (_, c_in) = split_axes(p, input)?;
    kernel_elems(p)?;
    Ok(weight_and_bias(p, vec![p.out_channels, c_in / p.groups(c_in)]))
}

/// Transposed convolution weights (in, out/group, kernel…) and bias (out).
pub fn deconv_params(p: &ConvParams, input: &Shape) -> Result<Vec<ParamSpec>, ShapeError> {
    let (_, c_in) = split_axes(p, input)?;
    kernel_elems(p)?;
    Ok(weight_and_bias(p, vec![c_in, p.out_channels / p.groups(c_in)]))
}

/// Elements of the unrolled input (im2col) one image needs:
/// C_in/group · ∏k · ∏out_spatial, for all groups together (Caffe loops over
/// groups within one buffer of this size).
pub fn column_elems(p: &ConvParams, input: &Shape, output: &Shape) -> Option<u64> {
    let axis = input.axis(p.axis).ok()?;
    let c_in = input.dim(axis).ok()?;
    let out_spatial = checked_product(output.dims().get(axis + 1..)?)?;
    c_in.checked_mul(checked_product(&p.window.kernel)?)?.checked_mul(out_spatial)
}

/// Multiply-accumulates: every output element sums C_in/group · ∏k products.
pub fn conv_macs(p: &ConvParams, input: &Shape, output: &Shape) -> Option<u64> {
    let axis = input.axis(p.axis).ok()?;
    let c_in = input.dim(axis).ok()?;
    let per_output = (c_in / p.groups(c_in).max(1)).checked_mul(checked_product(&p.window.kernel)?)?;
    output.elems()?.checked_mul(per_output)
}

/// Transposed convolution scatters every input element over out/group · ∏k outputs.
pub fn deconv_macs(p: &ConvParams, input: &Shape) -> Option<u64> {
    let c_in = channels(input).ok()?;
    let per_input = (p.out_channels / p.groups(c_in).max(1)).checked_mul(checked_product(&p.window.kernel)?)?;
    input.elems()?.checked_mul(per_input)
}

/// Memory facts of a convolution: dW = x ⋆ dy needs the input, dx = W ⋆ dy
/// the weights; im2col unrolls `C_in/groups × ∏k × ∏out_spatial` per image.
pub fn conv_memory(p: &ConvParams, input: Option<&Shape>, output: Option<&Shape>) -> MemoryFacts {
    let mut f = MemoryFacts { saves_inputs: vec![0], saves_params: true, ..Default::default() };
    if let (Some(i), Some(o)) = (input, output) {
        // An overflow is 2^64 − 1, never 0: `memory::check_fits` then refuses the
        // graph. Shapes without the axes the rule reads have no column.
        let shaped = i.axis(p.axis).ok().and_then(|a| i.dim(a).ok().and(o.dims().get(a + 1..))).is_some();
        f.column_elems_per_image = column_elems(p, i, o).unwrap_or(if shaped { u64::MAX } else { 0 });
        f.macs = conv_macs(p, i, o).unwrap_or(0);
    }
    f
}

/// Memory facts of a transposed convolution: the column buffer spans the input
/// positions times the kernel times the output channels per group.
pub fn deconv_memory(p: &ConvParams, input: Option<&Shape>) -> MemoryFacts {
    let mut f = MemoryFacts { saves_inputs: vec![0], saves_params: true, ..Default::default() };
    if let Some(i) = input {
        f.macs = deconv_macs(p, i).unwrap_or(0);
        let c_out = p.out_channels / p.groups(i.dims().get(1).copied().unwrap_or(1)).max(1);
        // Checked: an empty input may have huge spatial dims, and the kernel comes from the file.
        let spatial = i.dims().get(2..).map(|d| checked_product(d).unwrap_or(u64::MAX)).unwrap_or(1);
        let kernel = checked_product(&p.window.kernel).unwrap_or(u64::MAX);
        f.column_elems_per_image = c_out.saturating_mul(kernel).saturating_mul(spatial);
    }
    f
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conv2d(out: u64, k: u64, s: u64, pad: u64, group: u64) -> ConvParams {
        ConvParams {
            out_channels: out,
            window: Window::symmetric(vec![k, k], vec![s, s], vec![pad, pad], vec![1, 1]),
            group,
            depthwise: false,
            bias: true,
            axis: 1,
            output_pad: Vec::new(),
        }
    }

    #[test]
    fn alexnet_conv1_227_to_55() {
        let p = conv2d(96, 11, 4, 0, 1);
        assert_eq!(conv_shape(&p, &Shape::new(vec![10, 3, 227, 227])).unwrap(), Shape::new(vec![10, 96, 55, 55]));
        // 96·3·11·11 + 96 = 34,944
        let n: u64 = conv_params(&p, &Shape::new(vec![10, 3, 227, 227]))
            .unwrap()
            .iter()
            .map(|s| s.shape.elems().unwrap())
            .sum();
        assert_eq!(n, 34_944);
    }

    #[test]
    fn grouped_weights_divide_input_channels() {
        // AlexNet conv2: 256 out, 96 in, group 2, k5 → 256·48·25 + 256 = 307,456
        let p = conv2d(256, 5, 1, 2, 2);
        let specs = conv_params(&p, &Shape::new(vec![1, 96, 27, 27])).unwrap();
        assert_eq!(specs[0].shape, Shape::new(vec![256, 48, 5, 5]));
        assert!(conv_shape(&conv2d(256, 5, 1, 2, 5), &Shape::new(vec![1, 96, 27, 27])).is_err());
    }

    #[test]
    fn asymmetric_kernel_with_single_pad() {
        // ENet: kernel 5x1, pad 1 on 64x128 → 62x130.
        let p = ConvParams {
            window: Window::symmetric(vec![5, 1], vec![1, 1], vec![1, 1], vec![1, 1]),
            ..conv2d(16, 1, 1, 0, 1)
        };
        assert_eq!(conv_shape(&p, &Shape::new(vec![1, 16, 64, 128])).unwrap().dims(), &[1, 16, 62, 130]);
    }

    #[test]
    fn deconv_upsamples() {
        // FCN-8s upscore2: 16 → 34 with k4 s2; upscore8: 70 → 568 with k16 s8.
        let p = ConvParams { bias: false, ..conv2d(21, 4, 2, 0, 1) };
        assert_eq!(deconv_shape(&p, &Shape::new(vec![1, 21, 16, 16])).unwrap().dims(), &[1, 21, 34, 34]);
        let p = ConvParams { bias: false, ..conv2d(21, 16, 8, 0, 1) };
        assert_eq!(deconv_shape(&p, &Shape::new(vec![1, 21, 70, 70])).unwrap().dims(), &[1, 21, 568, 568]);
        assert_eq!(deconv_params(&p, &Shape::new(vec![1, 21, 70, 70])).unwrap()[0].shape.dims(), &[21, 21, 16, 16]);
    }

    #[test]
    fn depthwise_takes_group_from_input() {
        let p = ConvParams { depthwise: true, out_channels: 32, ..conv2d(32, 3, 1, 1, 1) };
        let specs = conv_params(&p, &Shape::new(vec![1, 32, 10, 10])).unwrap();
        assert_eq!(specs[0].shape.dims(), &[32, 1, 3, 3]);
    }

    #[test]
    fn im2col_is_input_times_kernel_area() {
        // 3x3, pad 1, 64 channels at 56x56: 64·9·56·56 elements.
        let p = conv2d(64, 3, 1, 1, 1);
        let input = Shape::new(vec![1, 64, 56, 56]);
        let out = conv_shape(&p, &input).unwrap();
        assert_eq!(column_elems(&p, &input, &out), Some(64 * 9 * 56 * 56));
        assert_eq!(conv_macs(&p, &input, &out), Some(64 * 56 * 56 * 64 * 9));
    }
}
