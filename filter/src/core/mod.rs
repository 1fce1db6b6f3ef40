//! Decision logic with no proxy-wasm types: everything here runs and is
//! tested natively.
//!
//! Times are `u64` nanoseconds since the Unix epoch, read from the host clock
//! once per callback and passed in.

pub mod breaker;
pub mod cache;
pub mod hash;
pub mod key;
pub mod matcher;
pub mod ratelimit;
pub mod request;
pub mod store;
