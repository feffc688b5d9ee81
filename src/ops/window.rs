//! Sliding-window geometry shared by convolution and pooling: kernel, stride,
//! padding and dilation per spatial axis, and how the output extent rounds.

use crate::tensor::ShapeError;

/// How a window count that does not divide evenly is rounded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rounding {
    /// Rounded down (partial windows dropped).
    Floor,
    /// Caffe pooling's default: a partial last window still produces an output.
    Ceil,
}

/// How the padding is given.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AutoPad {
    /// `pad_begin` and `pad_end` as stated.
    Explicit,
    /// ONNX `SAME_UPPER` / `SAME_LOWER`: padded so that the output extent is
    /// ⌈input / stride⌉; an odd total puts the extra pad at the end (upper)
    /// or the beginning (lower). The stated pads are ignored.
    SameUpper,
    /// Like `SameUpper`, the odd pad at the beginning.
    SameLower,
}

/// Geometry along each spatial axis (all vectors have the same length).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Window {
    /// Kernel extent per axis.
    pub kernel: Vec<u64>,
    /// Stride per axis.
    pub stride: Vec<u64>,
    /// Padding before and after, per axis.
    pub pad_begin: Vec<u64>,
    /// Padding after, per axis.
    pub pad_end: Vec<u64>,
    /// Dilation per axis.
    pub dilation: Vec<u64>,
    /// How the padding is given.
    pub auto_pad: AutoPad,
}

impl Window {
    /// A window with the same padding on both sides and no dilation.
    pub fn symmetric(kernel: Vec<u64>, stride: Vec<u64>, pad: Vec<u64>, dilation: Vec<u64>) -> Self {
        Window { kernel, stride, pad_begin: pad.clone(), pad_end: pad, dilation, auto_pad: AutoPad::Explicit }
    }

    /// The window with SAME padding turned into explicit pads for these
    /// spatial extents: total `max(0, (⌈x/s⌉ − 1)·s + d·(k−1) + 1 − x)`, split
    /// as `AutoPad` says (the ONNX reference's rule).
    pub fn resolved(&self, extents: &[u64]) -> Result<std::borrow::Cow<'_, Window>, ShapeError> {
        if self.auto_pad == AutoPad::Explicit {
            return Ok(std::borrow::Cow::Borrowed(self));
        }
        if extents.len() != self.n_axes() {
            return Err(ShapeError::new(format!("{} spatial axes for a {}-axis window", extents.len(), self.n_axes())));
        }
        let mut w = self.clone();
        w.auto_pad = AutoPad::Explicit;
        for (i, &x) in extents.iter().enumerate() {
            let s = self.stride[i];
            if s == 0 {
                return Err(ShapeError::new("stride 0"));
            }
            let out = x.div_ceil(s);
            let need = (out.saturating_sub(1) as u128 * s as u128 + self.effective_kernel(i)? as u128).saturating_sub(x as u128);
            let need = u64::try_from(need).map_err(|_| super::overflow("padding"))?;
            let (head, tail) = match self.auto_pad {
                AutoPad::SameLower => (need - need / 2, need / 2),
                AutoPad::SameUpper | AutoPad::Explicit => (need / 2, need - need / 2),
            };
            w.pad_begin[i] = head;
            w.pad_end[i] = tail;
        }
        Ok(std::borrow::Cow::Owned(w))
    }

    /// The window for a kernel learnt late (from a weight's dims): per-axis
    /// values left empty take their defaults (stride 1, no padding, no
    /// dilation); given ones must have one value per axis.
    pub fn with_kernel(&self, kernel: &[u64]) -> Result<Window, ShapeError> {
        let n = kernel.len();
        let fill = |v: &[u64], default: u64, what: &str| match v.len() {
            0 => Ok(vec![default; n]),
            l if l == n => Ok(v.to_vec()),
            l => Err(ShapeError::new(format!("{l} {what} for a {n}-axis kernel"))),
        };
        Ok(Window {
            kernel: kernel.to_vec(),
            stride: fill(&self.stride, 1, "strides")?,
            pad_begin: fill(&self.pad_begin, 0, "pads")?,
            pad_end: fill(&self.pad_end, 0, "pads")?,
            dilation: fill(&self.dilation, 1, "dilations")?,
            auto_pad: self.auto_pad,
        })
    }

    /// Number of spatial axes.
    pub fn n_axes(&self) -> usize {
        self.kernel.len()
    }

    /// Kernel extent once dilated: d·(k−1)+1.
    pub fn effective_kernel(&self, axis: usize) -> Result<u64, ShapeError> {
        let k = self.kernel[axis];
        let d = self.dilation[axis];
        if k == 0 {
            return Err(ShapeError::new("kernel size 0"));
        }
        d.checked_mul(k - 1).and_then(|v| v.checked_add(1)).ok_or_else(|| super::overflow("dilated kernel"))
    }

    /// Output extent along `axis` for an input extent `input`.
    pub fn output_extent(&self, axis: usize, input: u64, rounding: Rounding) -> Result<u64, ShapeError> {
        let stride = self.stride[axis];
        if stride == 0 {
            return Err(ShapeError::new("stride 0"));
        }
        let padded = input
            .checked_add(self.pad_begin[axis])
            .and_then(|v| v.checked_add(self.pad_end[axis]))
            .ok_or_else(|| super::overflow("padded input"))?;
        let k = self.effective_kernel(axis)?;
        // Signed: under CEIL a kernel a little larger than the input still gives
        // one window (Caffe pools OpenPose's 1x1 placeholder to 1x1).
        let span = padded as i128 - k as i128;
        let stride = stride as i128;
        let steps = match rounding {
            Rounding::Floor => span.div_euclid(stride),
            Rounding::Ceil => -((-span).div_euclid(stride)),
        };
        if steps < 0 {
            return Err(ShapeError::new(format!(
                "kernel {k} is larger than the padded input {padded} (input {input})"
            )));
        }
        let steps = steps as u64;
        Ok(steps + 1)
    }
}

/// Expand Caffe's "one value for all axes, or one per axis" convention.
pub fn per_axis(values: &[u64], n_axes: usize, default: u64, what: &str) -> Result<Vec<u64>, ShapeError> {
    match values.len() {
        0 => Ok(vec![default; n_axes]),
        1 => Ok(vec![values[0]; n_axes]),
        n if n == n_axes => Ok(values.to_vec()),
        n => Err(ShapeError::new(format!("{n} values for {what}, expected 1 or {n_axes}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(k: u64, s: u64, p: u64) -> Window {
        Window::symmetric(vec![k], vec![s], vec![p], vec![1])
    }

    #[test]
    fn floor_and_ceil_differ_on_odd_extents() {
        // GoogLeNet pool: 112, k3 s2 → ceil((112-3)/2)+1 = 56, floor gives 55.
        assert_eq!(w(3, 2, 0).output_extent(0, 112, Rounding::Ceil).unwrap(), 56);
        assert_eq!(w(3, 2, 0).output_extent(0, 112, Rounding::Floor).unwrap(), 55);
    }

    #[test]
    fn dilation_widens_the_kernel() {
        // SSD fc6: 19, k3 d6 p6 → (19+12-13)/1+1 = 19.
        let win = Window::symmetric(vec![3], vec![1], vec![6], vec![6]);
        assert_eq!(win.output_extent(0, 19, Rounding::Floor).unwrap(), 19);
    }

    #[test]
    fn stride_zero_and_oversized_kernel_are_errors() {
        assert!(w(3, 0, 0).output_extent(0, 10, Rounding::Floor).is_err());
        assert!(w(11, 1, 0).output_extent(0, 10, Rounding::Floor).is_err());
    }

    #[test]
    fn same_padding_gives_ceil_of_input_over_stride() {
        // ONNX test_conv_with_autopad_same: 5×5, k3 s2 SAME_LOWER → 3×3, pads (1, 1).
        let mut win = w(3, 2, 0);
        win.auto_pad = AutoPad::SameLower;
        let r = win.resolved(&[5]).unwrap();
        assert_eq!((r.pad_begin[0], r.pad_end[0]), (1, 1));
        assert_eq!(r.output_extent(0, 5, Rounding::Floor).unwrap(), 3);
        // 32, k2 s2: no padding needed; 7, k2 s2 → 4 with the extra pad at the end (upper) or beginning (lower).
        assert_eq!(win.resolved(&[7]).unwrap().pad_begin[0], 1);
        win.auto_pad = AutoPad::SameUpper;
        let r = Window { kernel: vec![2], ..win.clone() };
        let r = r.resolved(&[7]).unwrap();
        assert_eq!((r.pad_begin[0], r.pad_end[0]), (0, 1));
        assert_eq!(r.output_extent(0, 7, Rounding::Floor).unwrap(), 4);
    }

    #[test]
    fn per_axis_broadcasts_one_value() {
        assert_eq!(per_axis(&[3], 2, 1, "kernel").unwrap(), vec![3, 3]);
        assert_eq!(per_axis(&[], 2, 1, "stride").unwrap(), vec![1, 1]);
        assert!(per_axis(&[1, 2, 3], 2, 1, "pad").is_err());
    }
}
