//! Random span and trace ids: splitmix64 over an atomic counter seeded once from `/dev/urandom`
//! (or the clock and pid when that is missing). Not cryptographic; ids only need to be unique.

use std::io::Read;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::{SystemTime, UNIX_EPOCH};

static STATE: OnceLock<AtomicU64> = OnceLock::new();

/// A random non-zero 64-bit id.
pub fn id() -> u64 {
    let state = STATE.get_or_init(|| AtomicU64::new(seed()));
    loop {
        let mut value = state.fetch_add(0x9E37_79B9_7F4A_7C15, Ordering::Relaxed);
        value = (value ^ (value >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        value = (value ^ (value >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        value ^= value >> 31;
        if value != 0 {
            return value;
        }
    }
}

fn seed() -> u64 {
    let mut bytes = [0u8; 8];
    let from_device =
        std::fs::File::open("/dev/urandom").and_then(|mut file| file.read_exact(&mut bytes));
    if from_device.is_ok() {
        return u64::from_le_bytes(bytes);
    }
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|elapsed| elapsed.as_nanos() as u64)
        .unwrap_or(0);
    nanos ^ (u64::from(std::process::id()) << 32)
}

#[cfg(test)]
mod tests {
    #[test]
    fn ids_are_non_zero_and_distinct() {
        let ids: std::collections::HashSet<u64> = (0..1000).map(|_| super::id()).collect();
        assert_eq!(ids.len(), 1000);
        assert!(!ids.contains(&0));
    }
}
