//! The bytes of one slot in shared data.
//!
//! Layout, 40 bytes, little-endian:
//!
//! | offset | size | field                                              |
//! | ------ | ---- | -------------------------------------------------- |
//! | 0      | 1    | version, 1                                         |
//! | 1      | 1    | algorithm: 1 token bucket, 2 fixed, 3 sliding      |
//! | 2      | 6    | zero                                               |
//! | 8      | 8    | fingerprint of the key that owns the slot          |
//! | 16     | 8    | [`State::time`], nanoseconds since the Unix epoch  |
//! | 24     | 8    | [`State::current`]                                 |
//! | 32     | 8    | [`State::previous`]                                |
//!
//! Bytes that do not decode (another version, another algorithm after a
//! configuration change) are treated as a free slot and overwritten.

use super::algorithm::{Algorithm, State};

/// The size of a record.
pub const LEN: usize = 40;

const VERSION: u8 = 1;

/// A decoded slot: whose it is and its state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Record {
    /// The fingerprint of the key whose state this is.
    pub fingerprint: u64,
    /// The key's state.
    pub state: State,
}

fn tag(algorithm: Algorithm) -> u8 {
    match algorithm {
        Algorithm::TokenBucket { .. } => 1,
        Algorithm::FixedWindow => 2,
        Algorithm::SlidingWindow => 3,
    }
}

impl Record {
    /// The bytes stored for this record under `algorithm`.
    pub fn encode(&self, algorithm: Algorithm) -> Vec<u8> {
        let mut bytes = Vec::with_capacity(LEN);
        bytes.extend_from_slice(&[VERSION, tag(algorithm), 0, 0, 0, 0, 0, 0]);
        for word in [
            self.fingerprint,
            self.state.time,
            self.state.current,
            self.state.previous,
        ] {
            bytes.extend_from_slice(&word.to_le_bytes());
        }
        bytes
    }

    /// The record in `bytes`, or `None` when they were not written by this
    /// version for `algorithm`.
    pub fn decode(bytes: &[u8], algorithm: Algorithm) -> Option<Self> {
        let header: [u8; 8] = bytes.get(..8)?.try_into().ok()?;
        if bytes.len() != LEN || header != [VERSION, tag(algorithm), 0, 0, 0, 0, 0, 0] {
            return None;
        }
        let word = |at: usize| -> Option<u64> {
            Some(u64::from_le_bytes(bytes.get(at..at + 8)?.try_into().ok()?))
        };
        Some(Self {
            fingerprint: word(8)?,
            state: State {
                time: word(16)?,
                current: word(24)?,
                previous: word(32)?,
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        let record = Record {
            fingerprint: 0xdead_beef_0123_4567,
            state: State {
                time: 1_700_000_000_000_000_000,
                current: 7,
                previous: u64::MAX,
            },
        };
        let bytes = record.encode(Algorithm::SlidingWindow);
        assert_eq!(bytes.len(), LEN);
        assert_eq!(bytes[..2], [1, 3]);
        assert_eq!(
            Record::decode(&bytes, Algorithm::SlidingWindow),
            Some(record)
        );
    }

    #[test]
    fn refuses_other_algorithms_lengths_and_versions() {
        let bytes = Record {
            fingerprint: 1,
            state: State::default(),
        }
        .encode(Algorithm::FixedWindow);
        assert_eq!(Record::decode(&bytes, Algorithm::SlidingWindow), None);
        assert_eq!(Record::decode(&bytes[..39], Algorithm::FixedWindow), None);
        assert_eq!(Record::decode(&[], Algorithm::FixedWindow), None);
        let mut newer = bytes.clone();
        newer[0] = 2;
        assert_eq!(Record::decode(&newer, Algorithm::FixedWindow), None);
    }
}
