//! The shared-data record of one breaker: its whole state in one value.
//!
//! Layout, version 1, little-endian, `32 + 12 * P + 16 * B` bytes:
//!
//! | offset | size | field |
//! | --- | --- | --- |
//! | 0 | 1 | version (1) |
//! | 1 | 1 | state: 0 closed, 1 open, 2 half-open |
//! | 2 | 1 | `opens`: opens since the breaker last closed (backoff exponent + 1) |
//! | 3 | 1 | P: number of probe slots that follow |
//! | 4 | 4 | generation: bumped on every transition |
//! | 8 | 4 | consecutive failures (closed) |
//! | 12 | 4 | probe successes (half-open) |
//! | 16 | 8 | open: the end of the open period, ns since the Unix epoch |
//! | 24 | 4 | the next probe ticket (never 0) |
//! | 28 | 1 | B: number of window buckets that follow |
//! | 29 | 3 | reserved (0) |
//! | 32 | 12 × P | probe slots: ticket `u32` (0 = free), deadline `u64` ns |
//! | … | 16 × B | window buckets: bucket number `u64` (time / bucket width), calls `u32`, failures `u32` |

/// The layout version written in byte 0.
pub const VERSION: u8 = 1;

const HEADER: usize = 32;
const SLOT: usize = 12;
const BUCKET: usize = 16;

/// A breaker's state as the state machine sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Requests flow; outcomes are counted.
    Closed,
    /// Requests are answered at once until the open period ends.
    Open,
    /// A few probes are let through; everyone else gets the open answer.
    HalfOpen,
}

impl State {
    /// The gauge value: 0 closed, 1 open, 2 half-open.
    pub fn gauge(self) -> u64 {
        match self {
            State::Closed => 0,
            State::Open => 1,
            State::HalfOpen => 2,
        }
    }

    /// The name used in logs.
    pub fn name(self) -> &'static str {
        match self {
            State::Closed => "closed",
            State::Open => "open",
            State::HalfOpen => "half-open",
        }
    }
}

/// A probe slot: held by the probe with `ticket` until `deadline`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Slot {
    /// The holder's ticket; 0 when the slot is free.
    pub ticket: u32,
    /// When the slot is reclaimed if its probe never reports (ns).
    pub deadline: u64,
}

/// One time bucket of the failure-rate window.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Bucket {
    /// Which bucket of time this is: `now / bucket width`.
    pub number: u64,
    /// Calls recorded in it.
    pub calls: u32,
    /// Failures among them.
    pub failures: u32,
}

/// The decoded record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// Current state.
    pub state: State,
    /// Opens since the breaker last closed: 1 after the first open, 2 after
    /// the first re-open, and so on (saturating).
    pub opens: u8,
    /// Bumped on every transition; a ticket from another generation is stale.
    pub generation: u32,
    /// Consecutive failures while closed.
    pub consecutive: u32,
    /// Successful probes in this half-open period.
    pub successes: u32,
    /// End of the open period (ns since the Unix epoch).
    pub open_until: u64,
    /// The next probe ticket to hand out (never 0).
    pub next_ticket: u32,
    /// Probe slots (half-open).
    pub slots: Vec<Slot>,
    /// Failure-rate window buckets (closed), empty without `failure_rate`.
    pub buckets: Vec<Bucket>,
}

impl Record {
    /// A closed breaker with `slots` free probe slots and `buckets` empty buckets.
    pub fn closed(slots: usize, buckets: usize) -> Self {
        Self {
            state: State::Closed,
            opens: 0,
            generation: 0,
            consecutive: 0,
            successes: 0,
            open_until: 0,
            next_ticket: 1,
            slots: vec![Slot::default(); slots],
            buckets: vec![Bucket::default(); buckets],
        }
    }

    /// Decodes stored bytes, fitting the slot and bucket tables to the sizes
    /// the current configuration wants (a configuration update may change
    /// them: extra entries are dropped, missing ones are empty). `None` when
    /// the bytes are not a version-1 record.
    pub fn decode(bytes: &[u8], slots: usize, buckets: usize) -> Option<Self> {
        let header = bytes.get(..HEADER)?;
        if header.first() != Some(&VERSION) {
            return None;
        }
        let state = match header.get(1)? {
            0 => State::Closed,
            1 => State::Open,
            2 => State::HalfOpen,
            _ => return None,
        };
        let stored_slots = usize::from(*header.get(3)?);
        let stored_buckets = usize::from(*header.get(28)?);
        let slots_end = HEADER + SLOT * stored_slots;
        if bytes.len() != slots_end + BUCKET * stored_buckets {
            return None;
        }
        let mut record = Self {
            state,
            opens: *header.get(2)?,
            generation: u32_at(bytes, 4)?,
            consecutive: u32_at(bytes, 8)?,
            successes: u32_at(bytes, 12)?,
            open_until: u64_at(bytes, 16)?,
            next_ticket: u32_at(bytes, 24)?.max(1),
            slots: Vec::with_capacity(slots),
            buckets: Vec::with_capacity(buckets),
        };
        for i in 0..slots {
            let at = HEADER + SLOT * i;
            record.slots.push(if i < stored_slots {
                Slot {
                    ticket: u32_at(bytes, at)?,
                    deadline: u64_at(bytes, at + 4)?,
                }
            } else {
                Slot::default()
            });
        }
        for i in 0..buckets {
            let at = slots_end + BUCKET * i;
            record.buckets.push(if i < stored_buckets {
                Bucket {
                    number: u64_at(bytes, at)?,
                    calls: u32_at(bytes, at + 8)?,
                    failures: u32_at(bytes, at + 12)?,
                }
            } else {
                Bucket::default()
            });
        }
        Some(record)
    }

    /// Encodes the record. Tables longer than 255 entries are cut to 255
    /// (the configuration never asks for that many).
    pub fn encode(&self) -> Vec<u8> {
        let slots = self.slots.get(..self.slots.len().min(255)).unwrap_or(&[]);
        let buckets = self
            .buckets
            .get(..self.buckets.len().min(255))
            .unwrap_or(&[]);
        let mut out = Vec::with_capacity(HEADER + SLOT * slots.len() + BUCKET * buckets.len());
        out.push(VERSION);
        out.push(match self.state {
            State::Closed => 0,
            State::Open => 1,
            State::HalfOpen => 2,
        });
        out.push(self.opens);
        out.push(u8::try_from(slots.len()).unwrap_or(u8::MAX));
        out.extend_from_slice(&self.generation.to_le_bytes());
        out.extend_from_slice(&self.consecutive.to_le_bytes());
        out.extend_from_slice(&self.successes.to_le_bytes());
        out.extend_from_slice(&self.open_until.to_le_bytes());
        out.extend_from_slice(&self.next_ticket.to_le_bytes());
        out.push(u8::try_from(buckets.len()).unwrap_or(u8::MAX));
        out.extend_from_slice(&[0; 3]);
        for slot in slots {
            out.extend_from_slice(&slot.ticket.to_le_bytes());
            out.extend_from_slice(&slot.deadline.to_le_bytes());
        }
        for bucket in buckets {
            out.extend_from_slice(&bucket.number.to_le_bytes());
            out.extend_from_slice(&bucket.calls.to_le_bytes());
            out.extend_from_slice(&bucket.failures.to_le_bytes());
        }
        out
    }
}

fn u32_at(bytes: &[u8], at: usize) -> Option<u32> {
    let chunk = bytes.get(at..at.checked_add(4)?)?;
    Some(u32::from_le_bytes(chunk.try_into().ok()?))
}

fn u64_at(bytes: &[u8], at: usize) -> Option<u64> {
    let chunk = bytes.get(at..at.checked_add(8)?)?;
    Some(u64::from_le_bytes(chunk.try_into().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Record {
        let mut record = Record::closed(2, 3);
        record.state = State::HalfOpen;
        record.opens = 3;
        record.generation = 77;
        record.consecutive = 4;
        record.successes = 1;
        record.open_until = 1_700_000_000_000_000_000;
        record.next_ticket = 9;
        record.slots[1] = Slot {
            ticket: 8,
            deadline: 123,
        };
        record.buckets[2] = Bucket {
            number: 5,
            calls: 6,
            failures: 7,
        };
        record
    }

    #[test]
    fn round_trips_every_field() {
        let record = sample();
        let bytes = record.encode();
        assert_eq!(bytes.len(), 32 + 2 * 12 + 3 * 16);
        assert_eq!(Record::decode(&bytes, 2, 3), Some(record));
    }

    #[test]
    fn fits_tables_to_a_changed_configuration() {
        let bytes = sample().encode();
        let smaller = Record::decode(&bytes, 1, 0).unwrap();
        assert_eq!(smaller.slots, vec![Slot::default()]);
        assert!(smaller.buckets.is_empty());
        let larger = Record::decode(&bytes, 4, 3).unwrap();
        assert_eq!(larger.slots.len(), 4);
        assert_eq!(larger.slots[1].ticket, 8);
        assert_eq!(larger.state, State::HalfOpen);
    }

    #[test]
    fn decoding_any_bytes_never_panics() {
        let mut seed = 0x2545_f491_4f6c_dd1d_u64;
        let valid = sample().encode();
        for round in 0..20_000 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let mut bytes = valid.clone();
            // Flip a few bytes, sometimes cut or extend the record.
            for shift in [0, 16, 32] {
                let at = (seed >> shift) as usize % bytes.len();
                bytes[at] ^= (seed >> (shift + 8)) as u8;
            }
            match round % 3 {
                0 => bytes.truncate((seed >> 40) as usize % (bytes.len() + 1)),
                1 => bytes.push(seed as u8),
                _ => {}
            }
            if let Some(record) = Record::decode(&bytes, 2, 3) {
                assert_eq!(Record::decode(&record.encode(), 2, 3), Some(record));
            }
        }
    }

    #[test]
    fn refuses_foreign_or_truncated_bytes() {
        let bytes = sample().encode();
        assert_eq!(Record::decode(&bytes[..bytes.len() - 1], 2, 3), None);
        assert_eq!(Record::decode(b"", 2, 3), None);
        let mut wrong_version = bytes.clone();
        wrong_version[0] = 2;
        assert_eq!(Record::decode(&wrong_version, 2, 3), None);
        let mut wrong_state = bytes;
        wrong_state[1] = 9;
        assert_eq!(Record::decode(&wrong_state, 2, 3), None);
    }
}
