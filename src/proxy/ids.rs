//! Random bits for request, trace and span ids: a small per-thread generator seeded once from the
//! operating system's, so that an id costs a few instructions rather than a ChaCha block. Ids must
//! be unique, not secret.

use std::cell::RefCell;

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

thread_local! {
    static GENERATOR: RefCell<SmallRng> = RefCell::new(SmallRng::from_rng(&mut rand::rng()));
}

pub fn random_u64() -> u64 {
    GENERATOR.with(|generator| generator.borrow_mut().random())
}

pub fn random_u128() -> u128 {
    GENERATOR.with(|generator| generator.borrow_mut().random())
}

/// The low `digits` hex digits of `value`, lower case, into `text` (two digits per table look-up).
pub fn hex_into(value: u128, text: &mut [u8]) {
    const PAIRS: &[u8; 512] = &{
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut table = [0u8; 512];
        let mut byte = 0;
        while byte < 256 {
            table[byte * 2] = HEX[byte >> 4];
            table[byte * 2 + 1] = HEX[byte & 0xf];
            byte += 1;
        }
        table
    };
    let digits = text.len().min(32);
    let mut value = value;
    let mut at = digits;
    while at >= 2 {
        let pair = (value & 0xff) as usize * 2;
        text[at - 2..at].copy_from_slice(&PAIRS[pair..pair + 2]);
        value >>= 8;
        at -= 2;
    }
    if at == 1 {
        text[0] = PAIRS[(value & 0xf) as usize * 2 + 1];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_digits() {
        let mut text = [0u8; 32];
        hex_into(0x0123_4567_89ab_cdef_fedc_ba98_7654_3210, &mut text);
        assert_eq!(&text, b"0123456789abcdeffedcba9876543210");
        let mut text = [0u8; 16];
        hex_into(0xab_0000_0000_0000_00ff, &mut text);
        assert_eq!(&text, b"00000000000000ff");
        let mut text = [0u8; 3];
        hex_into(0xabc, &mut text);
        assert_eq!(&text, b"abc");
        assert_ne!(random_u128(), random_u128());
    }
}
