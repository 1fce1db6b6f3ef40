//! One stored response, encoded as one shared-data value.
//!
//! Layout (little-endian, version 1):
//!
//! | offset | size | field |
//! | --- | --- | --- |
//! | 0 | 1 | version, `1` |
//! | 1 | 1 | flags: bit 0 must-revalidate, bit 1 no-cache, bit 2 shareable with `Authorization`, bit 3 has stale-if-error |
//! | 2 | 2 | status |
//! | 4 | 8 | fingerprint of the key |
//! | 12 | 8 | stored at, ns since the epoch (`response_time`) |
//! | 20 | 8 | corrected initial age, ns |
//! | 28 | 8 | freshness lifetime, ns |
//! | 36 | 8 | the response's stale-if-error, ns (0 unless flag bit 3) |
//! | 44 | 4+K | key length K, key bytes |
//! | | 2 + … | `Vary` selection: count, then per item name (u16 length, bytes), present (u8 0/1), value (u32 length, bytes) |
//! | | 2 + … | headers to replay: count, then per header name (u16 length, bytes) and value (u32 length, bytes) |
//! | | 4+B | body length B, body bytes |
//!
//! Nothing may follow the body. Anything that does not decode exactly is
//! [`Corrupt`] and treated as an empty slot.

use super::policy::Freshness;
use super::vary::Selection;

const VERSION: u8 = 1;
const MUST_REVALIDATE: u8 = 1;
const NO_CACHE: u8 = 1 << 1;
const SHAREABLE_WITH_AUTH: u8 = 1 << 2;
const HAS_STALE_IF_ERROR: u8 = 1 << 3;

/// A stored response with what is needed to serve, age and revalidate it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Entry {
    /// Fingerprint of [`Entry::key`].
    pub fingerprint: u64,
    /// The response status (always 200 today).
    pub status: u16,
    /// Age and freshness.
    pub freshness: Freshness,
    /// The cache key (authority and path with query).
    pub key: Vec<u8>,
    /// The request header values this response was selected by.
    pub selection: Selection,
    /// Response headers to replay, lowercase names, without hop-by-hop
    /// fields, `content-length` and `age`.
    pub headers: Vec<(String, Vec<u8>)>,
    /// The complete body.
    pub body: Vec<u8>,
}

/// Stored bytes that are not a version-1 entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Corrupt;

impl Entry {
    /// The encoded size, without encoding.
    pub fn encoded_len(&self) -> usize {
        44 + 4
            + self.key.len()
            + 2
            + self
                .selection
                .iter()
                .map(|(n, v)| 2 + n.len() + 1 + 4 + v.as_ref().map_or(0, Vec::len))
                .sum::<usize>()
            + 2
            + self
                .headers
                .iter()
                .map(|(n, v)| 2 + n.len() + 4 + v.len())
                .sum::<usize>()
            + 4
            + self.body.len()
    }

    /// Encodes the entry; `None` if a field is too long for its length
    /// prefix (the size limit keeps real entries far below that).
    pub fn encode(&self) -> Option<Vec<u8>> {
        let f = &self.freshness;
        let mut flags = 0;
        for (set, bit) in [
            (f.must_revalidate, MUST_REVALIDATE),
            (f.no_cache, NO_CACHE),
            (f.shareable_with_auth, SHAREABLE_WITH_AUTH),
            (f.stale_if_error.is_some(), HAS_STALE_IF_ERROR),
        ] {
            if set {
                flags |= bit;
            }
        }
        let mut out = Vec::with_capacity(self.encoded_len());
        out.push(VERSION);
        out.push(flags);
        out.extend_from_slice(&self.status.to_le_bytes());
        for word in [
            self.fingerprint,
            f.stored_at,
            f.initial_age,
            f.lifetime,
            f.stale_if_error.unwrap_or(0),
        ] {
            out.extend_from_slice(&word.to_le_bytes());
        }
        put32(&mut out, &self.key)?;
        out.extend_from_slice(&u16::try_from(self.selection.len()).ok()?.to_le_bytes());
        for (name, value) in &self.selection {
            put16(&mut out, name.as_bytes())?;
            out.push(u8::from(value.is_some()));
            put32(&mut out, value.as_deref().unwrap_or_default())?;
        }
        out.extend_from_slice(&u16::try_from(self.headers.len()).ok()?.to_le_bytes());
        for (name, value) in &self.headers {
            put16(&mut out, name.as_bytes())?;
            put32(&mut out, value)?;
        }
        put32(&mut out, &self.body)?;
        Some(out)
    }

    /// Decodes stored bytes, refusing anything that is not exactly one entry.
    pub fn decode(bytes: &[u8]) -> Result<Self, Corrupt> {
        let mut r = Reader(bytes);
        if r.u8()? != VERSION {
            return Err(Corrupt);
        }
        let flags = r.u8()?;
        let status = u16::from_le_bytes(r.array()?);
        let fingerprint = r.u64()?;
        let (stored_at, initial_age, lifetime, stale) = (r.u64()?, r.u64()?, r.u64()?, r.u64()?);
        let key = r.bytes32()?.to_vec();
        let mut selection = Vec::new();
        for _ in 0..u16::from_le_bytes(r.array()?) {
            let name = r.name()?;
            let present = match r.u8()? {
                0 => false,
                1 => true,
                _ => return Err(Corrupt),
            };
            let value = r.bytes32()?;
            if !present && !value.is_empty() {
                return Err(Corrupt);
            }
            selection.push((name, present.then(|| value.to_vec())));
        }
        let mut headers = Vec::new();
        for _ in 0..u16::from_le_bytes(r.array()?) {
            let name = r.name()?;
            headers.push((name, r.bytes32()?.to_vec()));
        }
        let body = r.bytes32()?.to_vec();
        if !r.0.is_empty() || flags & !0x0f != 0 {
            return Err(Corrupt);
        }
        Ok(Self {
            fingerprint,
            status,
            freshness: Freshness {
                stored_at,
                initial_age,
                lifetime,
                stale_if_error: (flags & HAS_STALE_IF_ERROR != 0).then_some(stale),
                must_revalidate: flags & MUST_REVALIDATE != 0,
                no_cache: flags & NO_CACHE != 0,
                shareable_with_auth: flags & SHAREABLE_WITH_AUTH != 0,
            },
            key,
            selection,
            headers,
            body,
        })
    }
}

fn put16(out: &mut Vec<u8>, bytes: &[u8]) -> Option<()> {
    out.extend_from_slice(&u16::try_from(bytes.len()).ok()?.to_le_bytes());
    out.extend_from_slice(bytes);
    Some(())
}

fn put32(out: &mut Vec<u8>, bytes: &[u8]) -> Option<()> {
    out.extend_from_slice(&u32::try_from(bytes.len()).ok()?.to_le_bytes());
    out.extend_from_slice(bytes);
    Some(())
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], Corrupt> {
        if n > self.0.len() {
            return Err(Corrupt);
        }
        let (head, tail) = self.0.split_at(n);
        self.0 = tail;
        Ok(head)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], Corrupt> {
        self.take(N)?.try_into().map_err(|_| Corrupt)
    }

    fn u8(&mut self) -> Result<u8, Corrupt> {
        Ok(u8::from_le_bytes(self.array()?))
    }

    fn u64(&mut self) -> Result<u64, Corrupt> {
        Ok(u64::from_le_bytes(self.array()?))
    }

    fn bytes32(&mut self) -> Result<&'a [u8], Corrupt> {
        let len = usize::try_from(u32::from_le_bytes(self.array()?)).map_err(|_| Corrupt)?;
        self.take(len)
    }

    fn name(&mut self) -> Result<String, Corrupt> {
        let len = usize::from(u16::from_le_bytes(self.array()?));
        String::from_utf8(self.take(len)?.to_vec()).map_err(|_| Corrupt)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn sample() -> Entry {
        Entry {
            fingerprint: 0x0123_4567_89ab_cdef,
            status: 200,
            freshness: Freshness {
                stored_at: 1_764_766_805_000_000_000,
                initial_age: 3_000_000_000,
                lifetime: 10_000_000_000,
                stale_if_error: Some(60_000_000_000),
                must_revalidate: true,
                no_cache: false,
                shareable_with_auth: true,
            },
            key: b"example.com\0/a?b=c".to_vec(),
            selection: vec![
                ("accept-encoding".into(), Some(b"gzip".to_vec())),
                ("x-user-id".into(), None),
            ],
            headers: vec![
                ("content-type".into(), b"text/plain".to_vec()),
                ("etag".into(), vec![b'"', 0xff, b'"']),
            ],
            body: (0..=255u8).cycle().take(5000).collect(),
        }
    }

    #[test]
    fn round_trips() {
        let entry = sample();
        let bytes = entry.encode().unwrap();
        assert_eq!(bytes.len(), entry.encoded_len());
        assert_eq!(Entry::decode(&bytes), Ok(entry));
        let empty = Entry::default();
        assert_eq!(Entry::decode(&empty.encode().unwrap()), Ok(empty));
    }

    #[test]
    fn every_truncation_is_refused() {
        let bytes = sample().encode().unwrap();
        for len in 0..bytes.len() {
            assert_eq!(Entry::decode(&bytes[..len]), Err(Corrupt), "len {len}");
        }
    }

    #[test]
    fn trailing_bytes_wrong_version_and_unknown_flags_are_refused() {
        let mut bytes = sample().encode().unwrap();
        bytes.push(0);
        assert_eq!(Entry::decode(&bytes), Err(Corrupt));
        let mut bytes = sample().encode().unwrap();
        bytes[0] = 2;
        assert_eq!(Entry::decode(&bytes), Err(Corrupt));
        let mut bytes = sample().encode().unwrap();
        bytes[1] |= 0x80;
        assert_eq!(Entry::decode(&bytes), Err(Corrupt));
    }

    #[test]
    fn flipped_bytes_never_panic() {
        let bytes = sample().encode().unwrap();
        let mut state = 0x9e37_79b9_u32;
        for _ in 0..20_000 {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            let mut copy = bytes.clone();
            let at = state as usize % copy.len();
            copy[at] ^= (state >> 24) as u8 | 1;
            let _ = Entry::decode(&copy);
            let cut = (state >> 8) as usize % copy.len();
            let _ = Entry::decode(&copy[..cut]);
        }
    }

    #[test]
    fn huge_length_prefixes_are_refused() {
        let mut bytes = sample().encode().unwrap();
        bytes[44..48].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(Entry::decode(&bytes), Err(Corrupt));
    }
}
