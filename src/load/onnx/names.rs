//! Maps keyed by the value names of an ONNX file, with a hasher several times
//! faster than the standard SipHash on short names (a 10,000-node export
//! hashes each name a few times while it loads).
//!
//! The hash mixes each 8-byte word with a multiplication and a shift
//! (splitmix64's finaliser constants) starting from a key drawn once per
//! process from the standard library's random state, so a file cannot be
//! crafted to make names collide: maps stay linear on hostile input.

use std::collections::HashMap;
use std::hash::{BuildHasher, Hasher};
use std::sync::OnceLock;

/// A map from names (borrowed from the decoded file) to `V`.
pub type NameMap<'a, V> = HashMap<&'a str, V, NameHash>;

/// An empty map with room for `n` names.
pub fn name_map<'a, V>(n: usize) -> NameMap<'a, V> {
    HashMap::with_capacity_and_hasher(n, NameHash::default())
}

/// Builds `NameHasher`s keyed for this process.
#[derive(Clone, Copy, Debug)]
pub struct NameHash {
    key: u64,
}

impl Default for NameHash {
    fn default() -> Self {
        static KEY: OnceLock<u64> = OnceLock::new();
        let key = *KEY.get_or_init(|| std::collections::hash_map::RandomState::new().hash_one(0x6e6e_6d65_6d_u64));
        NameHash { key }
    }
}

impl BuildHasher for NameHash {
    type Hasher = NameHasher;
    fn build_hasher(&self) -> NameHasher {
        NameHasher { h: self.key }
    }
}

/// The hasher (see the module comment).
pub struct NameHasher {
    h: u64,
}

const M1: u64 = 0xbf58_476d_1ce4_e5b9;
const M2: u64 = 0x94d0_49bb_1331_11eb;

fn mix(mut x: u64) -> u64 {
    x = (x ^ (x >> 30)).wrapping_mul(M1);
    x = (x ^ (x >> 27)).wrapping_mul(M2);
    x ^ (x >> 31)
}

impl Hasher for NameHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let w = u64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]);
            self.h = mix(self.h ^ w).rotate_left(17);
        }
        let rest = chunks.remainder();
        let mut tail = [0u8; 8];
        tail[..rest.len()].copy_from_slice(rest);
        self.h = mix(self.h ^ u64::from_le_bytes(tail) ^ ((rest.len() as u64) << 59));
    }

    fn write_u8(&mut self, i: u8) {
        self.h = mix(self.h ^ u64::from(i) ^ 0xff00);
    }

    fn write_usize(&mut self, i: usize) {
        self.h = mix(self.h ^ i as u64);
    }

    fn finish(&self) -> u64 {
        self.h
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_hash_apart_and_maps_work() {
        let h = NameHash::default();
        let a = h.hash_one("/layer1/conv/Conv_output_0");
        assert_ne!(a, h.hash_one("/layer1/conv/Conv_output_1"));
        assert_ne!(h.hash_one(""), h.hash_one("\0"));
        assert_ne!(h.hash_one("abcdefgh"), h.hash_one("abcdefgh\0"));
        let mut m: NameMap<'_, usize> = name_map(4);
        for (i, n) in ["x", "y", "w", "b"].iter().enumerate() {
            m.insert(n, i);
        }
        assert_eq!(m.get("w"), Some(&2));
        assert_eq!(m.get("z"), None);
    }
}
