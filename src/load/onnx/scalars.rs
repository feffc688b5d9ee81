//! Scalar values the memory rules need from an otherwise value-free decode:
//! Dropout's ratio, an input since opset 12, given by a `Constant` node or a
//! scalar initializer. A ratio of 0 makes the layer the identity even in
//! training (PyTorch's dropout returns its input unchanged for p = 0), as
//! torchvision's Swin and ViT export it.
//!
//! The value is read from the message bytes the decoder kept (a tensor's
//! `float_data` 4, `raw_data` 9 or `double_data` 10; a Constant's `value`
//! tensor or `value_float`), only for one-element tensors.

use std::collections::HashMap;

use super::proto::{self, Wire};
use super::{map, Decoded};
use crate::ops::{ElementwiseOp, Op};

/// Sets each Dropout's ratio from its ratio input when that is a known scalar.
pub(super) fn dropout_ratios(d: &Decoded<'_>, mapped: &mut [Option<map::Mapped>]) {
    let mut constant_at: HashMap<&str, usize> = HashMap::new();
    for (i, (n, _)) in d.nodes.iter().enumerate() {
        if n.op_type == "Constant" {
            if let Some(o) = n.output.first() {
                constant_at.insert(o.as_str(), i);
            }
        }
    }
    let init_at: HashMap<&str, usize> = d.initializers.iter().enumerate().map(|(i, (t, _))| (t.name.as_str(), i)).collect();
    for (i, (n, _)) in d.nodes.iter().enumerate() {
        if n.op_type != "Dropout" {
            continue;
        }
        let Some(name) = n.input.get(1).filter(|s| !s.is_empty()) else { continue };
        let value = match (constant_at.get(name.as_str()), init_at.get(name.as_str())) {
            (Some(&c), _) => constant_scalar(d.nodes[c].1),
            (None, Some(&t)) => tensor_scalar(d.initializers[t].1),
            (None, None) => None,
        };
        if let (Some(v), Some(Some(m))) = (value, mapped.get_mut(i)) {
            if let Op::Elementwise(ElementwiseOp::Dropout { ratio }) = &mut m.op {
                *ratio = v as f32;
            }
        }
    }
}

/// A Constant node's value when it is one float.
fn constant_scalar(node: &[u8]) -> Option<f64> {
    for f in proto::fields(node).ok()? {
        if f.number != 5 || f.wire != Wire::Len {
            continue;
        }
        let attr = proto::fields(f.bytes).ok()?;
        let name = attr.iter().find(|a| a.number == 1).map(|a| a.bytes)?;
        match name {
            b"value" => return attr.iter().find(|a| a.number == 5 && a.wire == Wire::Len).and_then(|t| tensor_scalar(t.bytes)),
            b"value_float" => {
                return attr.iter().find(|a| a.number == 2 && a.wire == Wire::Fixed32).map(|a| f32_le(a.bytes) as f64);
            }
            _ => {}
        }
    }
    None
}

/// A TensorProto's value when it holds one float (f32 or f64).
fn tensor_scalar(t: &[u8]) -> Option<f64> {
    let fields = proto::fields(t).ok()?;
    let elems: u64 = fields.iter().filter(|f| f.number == 1).map(|f| varint(f.bytes)).product();
    let dtype = fields.iter().find(|f| f.number == 2 && f.wire == Wire::Varint).map(|f| varint(f.bytes)).unwrap_or(0);
    if elems != 1 {
        return None;
    }
    for f in &fields {
        match (dtype, f.number, f.wire, f.bytes.len()) {
            // FLOAT: float_data, packed (one element) or not.
            (1, 4, Wire::Len, 4) | (1, 4, Wire::Fixed32, 4) | (1, 9, Wire::Len, 4) => return Some(f32_le(f.bytes) as f64),
            // DOUBLE: double_data or raw_data.
            (11, 10, Wire::Len, 8) | (11, 10, Wire::Fixed64, 8) | (11, 9, Wire::Len, 8) => {
                return Some(f64::from_le_bytes(f.bytes.try_into().ok()?));
            }
            _ => {}
        }
    }
    None
}

fn f32_le(b: &[u8]) -> f32 {
    b.try_into().map(f32::from_le_bytes).unwrap_or(f32::NAN)
}

fn varint(b: &[u8]) -> u64 {
    let mut v = 0u64;
    for (i, &x) in b.iter().enumerate().take(10) {
        v |= u64::from(x & 0x7f) << (7 * i);
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(number: u32, wire: u8) -> u8 {
        ((number << 3) as u8) | wire
    }

    fn len_field(number: u32, payload: &[u8]) -> Vec<u8> {
        let mut v = vec![key(number, 2), payload.len() as u8];
        v.extend_from_slice(payload);
        v
    }

    /// A scalar FLOAT TensorProto with its value in raw_data.
    fn scalar_tensor(x: f32) -> Vec<u8> {
        let mut t = vec![key(2, 0), 1];
        t.extend(len_field(9, &x.to_le_bytes()));
        t
    }

    #[test]
    fn raw_and_float_data_scalars() {
        assert_eq!(tensor_scalar(&scalar_tensor(0.1)), Some(0.1f32 as f64));
        let mut t = vec![key(2, 0), 1, key(1, 0), 1];
        t.extend(len_field(4, &0.25f32.to_le_bytes()));
        assert_eq!(tensor_scalar(&t), Some(0.25));
        // Two elements: not a scalar.
        let mut two = vec![key(1, 0), 2, key(2, 0), 1];
        two.extend(len_field(9, &[0; 8]));
        assert_eq!(tensor_scalar(&two), None);
    }

    #[test]
    fn constant_node_value() {
        let mut attr = len_field(1, b"value");
        attr.extend(len_field(5, &scalar_tensor(0.0)));
        let node = len_field(5, &attr);
        assert_eq!(constant_scalar(&node), Some(0.0));
        let mut attr = len_field(1, b"value_float");
        attr.push(key(2, 5));
        attr.extend_from_slice(&0.5f32.to_le_bytes());
        assert_eq!(constant_scalar(&len_field(5, &attr)), Some(0.5));
    }
}
