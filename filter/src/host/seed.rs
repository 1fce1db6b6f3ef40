//! The hash seed every worker shares.

use std::hash::{BuildHasher, RandomState};

use crate::core::hash::KeyHasher;
use crate::core::store::{update, Step, Store, StoreError, Updated};

/// Shared-data key of the seed. It outlives VM reloads, so slots found by
/// one configuration are found again by the next.
const SEED_KEY: &str = "floodgate/v1/seed";

/// The process-wide key hasher: the first VM to configure draws a random
/// seed and stores it if absent; every other VM reads that one.
pub fn shared_hasher(store: &impl Store) -> Result<KeyHasher, StoreError> {
    let drawn = random_seed();
    let outcome = update(store, SEED_KEY, 8, |current| {
        match current.and_then(|b| <[u8; 16]>::try_from(b).ok()) {
            Some(seed) => Step::Keep(seed),
            None => Step::Write(drawn.to_vec(), drawn),
        }
    })?;
    match outcome {
        Updated::Done { value, .. } => Ok(KeyHasher::new(value)),
        Updated::Exhausted => Err(StoreError("could not agree on a hash seed".into())),
    }
}

/// 128 random bits from the standard library's randomly keyed hasher, which
/// WASI seeds from the host's `random_get`.
fn random_seed() -> [u8; 16] {
    let low = RandomState::new().hash_one(0x5eed_u64);
    let high = RandomState::new().hash_one(0xf100_d6a7_u64);
    let mut seed = [0; 16];
    for (slot, byte) in seed
        .iter_mut()
        .zip(low.to_le_bytes().into_iter().chain(high.to_le_bytes()))
    {
        *slot = byte;
    }
    seed
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::store::MemoryStore;

    #[test]
    fn every_vm_gets_the_first_seed() {
        let store = MemoryStore::new();
        let first = shared_hasher(&store).unwrap();
        let second = shared_hasher(&store).unwrap();
        assert_eq!(first, second);
        assert_eq!(store.len(), 1);
    }
}
