//! A small, fast hasher (FNV-1a, 64-bit) for the proxy's per-request lookups by service and route
//! name. Their keys come from the configuration, not from clients; SipHash (the default) costs
//! several times as much on such short names.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// A `HashMap` hashed with [`Fnv`].
pub type FastMap<K, V> = HashMap<K, V, BuildHasherDefault<Fnv>>;

/// FNV-1a, 64-bit.
pub struct Fnv(u64);

impl Default for Fnv {
    fn default() -> Fnv {
        Fnv(0xcbf2_9ce4_8422_2325)
    }
}

impl Hasher for Fnv {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        let mut hash = self.0;
        for byte in bytes {
            hash ^= u64::from(*byte);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
        self.0 = hash;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_what_it_holds() {
        let mut map: FastMap<String, u32> = FastMap::default();
        map.insert("orders".into(), 1);
        map.insert("users".into(), 2);
        assert_eq!(map.get("orders"), Some(&1));
        assert_eq!(map.get("users"), Some(&2));
        assert_eq!(map.get("order"), None);
    }
}
