//! Fingerprints of keys, for picking shared-data slots.

use siphasher::sip::SipHasher13;
use std::hash::Hasher;

/// A keyed 64-bit hash of request keys.
///
/// SipHash with a secret seed, so a client cannot craft keys that all land
/// in the same slots. Every worker must use the same seed (the host adapter
/// keeps it in shared data) or they would not find each other's slots.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyHasher {
    seed: (u64, u64),
}

impl KeyHasher {
    /// A hasher from a 128-bit seed.
    pub fn new(seed: [u8; 16]) -> Self {
        let (low, high) = seed.split_at(8);
        let word = |bytes: &[u8]| u64::from_le_bytes(bytes.try_into().unwrap_or([0; 8]));
        Self {
            seed: (word(low), word(high)),
        }
    }

    /// The fingerprint of `key` within `domain` (a rule or table name), so the
    /// same key in two rules gives unrelated fingerprints.
    pub fn fingerprint(&self, domain: &str, key: &[u8]) -> u64 {
        let mut hasher = SipHasher13::new_with_keys(self.seed.0, self.seed.1);
        hasher.write(domain.as_bytes());
        hasher.write_u8(0xff);
        hasher.write(key);
        hasher.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_fingerprint() {
        let a = KeyHasher::new([7; 16]);
        let b = KeyHasher::new([7; 16]);
        assert_eq!(a.fingerprint("r", b"k"), b.fingerprint("r", b"k"));
    }

    #[test]
    fn seed_domain_and_key_all_matter() {
        let h = KeyHasher::new([7; 16]);
        let base = h.fingerprint("r", b"k");
        assert_ne!(base, KeyHasher::new([8; 16]).fingerprint("r", b"k"));
        assert_ne!(base, h.fingerprint("s", b"k"));
        assert_ne!(base, h.fingerprint("r", b"l"));
        assert_ne!(h.fingerprint("ab", b"c"), h.fingerprint("a", b"bc"));
    }
}
