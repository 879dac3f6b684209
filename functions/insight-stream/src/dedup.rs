//! The same event put twice, counted once.
//!
//! Kinesis producers duplicate: when `PutRecords` lands but its answer is lost (a reset
//! connection, a timeout), the SDK sends the whole request again and every event is on the
//! stream twice, under new sequence numbers, which the aggregates' per-shard watermarks cannot
//! tell apart from new events (`make load` found exactly this). So ingest stamps each record with
//! its request (`rq`, derived from the tenant and the `Idempotency-Key` when there is one, so a
//! client's retry of a request whose answer it lost names the same request) and its place in
//! that request (`ix`), and the consumer keeps, per shard, which `(rq, ix)` it has counted.
//!
//! A put's copies land on the same shard (same partition key) after the original, within the
//! retry's seconds, and a shard's batches are processed in order; so the requests seen on the
//! shard in the last [`HORIZON_SECS`] find them. They are kept in one item per shard and minute of
//! processing: a batch reads the few items of the horizon and writes only the current minute's,
//! so what a write costs grows with one minute's requests, not the horizon's. The write is
//! conditional on the item's version and follows the batch's aggregates: if it fails the batch is
//! retried, its records are caught by the watermarks, and the window is written then. Bounded: at
//! most [`MAX_ENTRIES`] requests per shard and minute (the oldest go first, logged and counted).
//! A request whose indices on the shard form a few runs (the usual case) is stored as those runs,
//! a scattered one as a bitmap.

use std::collections::HashMap;

/// How long a request is remembered after it was seen on the shard: far beyond the SDK's retries
/// (seconds) and a client's prompt retry with the same `Idempotency-Key` after a lost answer.
pub const HORIZON_SECS: u32 = 5 * 60;
/// One window item per shard and this many seconds of processing time.
pub const BUCKET_SECS: u32 = 60;
/// Most requests remembered per shard and bucket (at most about 80 KB of bitmaps, 50 KB of runs).
pub const MAX_ENTRIES: usize = 1000;
/// Indices within a request: a request holds at most 500 events.
const MAX_INDEX: u16 = 512;

/// What one shard has counted: per request, when it was last seen and a bitmap of its indices.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Window {
    entries: HashMap<u64, Entry>,
    /// Entries dropped by the bound before their horizon (a duplicate of one would be counted).
    pub evicted_early: usize,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Entry {
    seen_at: u32,
    bits: Vec<u64>,
}

impl Entry {
    fn has(&self, ix: u16) -> bool {
        self.bits.get(usize::from(ix / 64)).is_some_and(|w| w & (1 << (ix % 64)) != 0)
    }
    fn set(&mut self, ix: u16) {
        let word = usize::from(ix / 64);
        if self.bits.len() <= word {
            self.bits.resize(word + 1, 0);
        }
        self.bits[word] |= 1 << (ix % 64);
    }
}

/// The bucket (start of the minute, epoch seconds) that `now` falls in.
pub fn bucket_of(now: u32) -> u32 {
    now - now % BUCKET_SECS
}

/// The buckets a batch at `now` reads: the horizon's, the current one first.
pub fn buckets(now: u32) -> Vec<u32> {
    let current = bucket_of(now);
    (0..=HORIZON_SECS / BUCKET_SECS).map(|k| current.saturating_sub(k * BUCKET_SECS)).collect()
}

/// A request id as the record carries it: 16 lowercase hex digits.
pub fn parse_request(rq: &str) -> Option<u64> {
    (rq.len() == 16 && rq.bytes().all(|b| b.is_ascii_hexdigit())).then(|| u64::from_str_radix(rq, 16).ok())?
}

impl Window {
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Whether `(rq, ix)` was counted on this shard.
    pub fn seen(&self, rq: u64, ix: u16) -> bool {
        self.entries.get(&rq).is_some_and(|e| e.has(ix))
    }

    /// Remember that `(rq, ix)` is counted, at `now` (epoch seconds).
    pub fn insert(&mut self, rq: u64, ix: u16, now: u32) {
        if ix >= MAX_INDEX {
            return;
        }
        let e = self.entries.entry(rq).or_default();
        e.seen_at = e.seen_at.max(now);
        e.set(ix);
    }

    /// Another instance's window for the same shard, merged in (after a conflicting write).
    pub fn merge(&mut self, other: &Window) {
        for (rq, theirs) in &other.entries {
            let e = self.entries.entry(*rq).or_default();
            e.seen_at = e.seen_at.max(theirs.seen_at);
            if e.bits.len() < theirs.bits.len() {
                e.bits.resize(theirs.bits.len(), 0);
            }
            for (w, t) in e.bits.iter_mut().zip(&theirs.bits) {
                *w |= t;
            }
        }
    }

    /// Forget requests older than the horizon, then the oldest beyond the bound.
    pub fn prune(&mut self, now: u32) {
        let cutoff = now.saturating_sub(HORIZON_SECS);
        self.entries.retain(|_, e| e.seen_at >= cutoff);
        if self.entries.len() > MAX_ENTRIES {
            let mut ages: Vec<(u32, u64)> = self.entries.iter().map(|(rq, e)| (e.seen_at, *rq)).collect();
            ages.sort_unstable();
            let excess = self.entries.len() - MAX_ENTRIES;
            for (_, rq) in ages.into_iter().take(excess) {
                self.entries.remove(&rq);
            }
            self.evicted_early += excess;
        }
    }

    /// Compact bytes. Per entry: the request (8), when it was seen (4), then a tag: `0x80 | n`
    /// followed by n runs `first..=last` of indices (2 + 2 each), or `w` ≤ 8 followed by w bitmap
    /// words (8 each), whichever is shorter.
    pub fn encode(&self) -> Vec<u8> {
        let mut keys: Vec<&u64> = self.entries.keys().collect();
        keys.sort_unstable();
        let mut out = Vec::with_capacity(self.entries.len() * 17);
        for rq in keys {
            let e = &self.entries[rq];
            out.extend_from_slice(&rq.to_be_bytes());
            out.extend_from_slice(&e.seen_at.to_be_bytes());
            let words = e.bits.len().min(usize::from(MAX_INDEX / 64));
            let runs = runs_of(&e.bits[..words]);
            if runs.len() <= MAX_RUNS && runs.len() * 4 < words * 8 {
                out.push(0x80 | runs.len() as u8);
                for (first, last) in runs {
                    out.extend_from_slice(&first.to_be_bytes());
                    out.extend_from_slice(&last.to_be_bytes());
                }
            } else {
                out.push(words as u8);
                for w in &e.bits[..words] {
                    out.extend_from_slice(&w.to_be_bytes());
                }
            }
        }
        out
    }

    /// The inverse of [`Window::encode`]; `None` for bytes it did not write.
    pub fn decode(bytes: &[u8]) -> Option<Self> {
        let mut entries = HashMap::new();
        let mut rest = bytes;
        while !rest.is_empty() {
            let (head, tail) = rest.split_at_checked(13)?;
            let rq = u64::from_be_bytes(head[..8].try_into().ok()?);
            let seen_at = u32::from_be_bytes(head[8..12].try_into().ok()?);
            let tag = head[12];
            let mut entry = Entry { seen_at, bits: Vec::new() };
            rest = if tag & 0x80 != 0 {
                let (body, tail) = tail.split_at_checked(usize::from(tag & 0x7f) * 4)?;
                for run in body.chunks_exact(4) {
                    let first = u16::from_be_bytes([run[0], run[1]]);
                    let last = u16::from_be_bytes([run[2], run[3]]);
                    if first > last || last >= MAX_INDEX {
                        return None;
                    }
                    for ix in first..=last {
                        entry.set(ix);
                    }
                }
                tail
            } else {
                let words = usize::from(tag);
                if words > usize::from(MAX_INDEX / 64) {
                    return None;
                }
                let (body, tail) = tail.split_at_checked(words * 8)?;
                entry.bits =
                    body.chunks_exact(8).map(|c| u64::from_be_bytes(c.try_into().unwrap_or_default())).collect();
                // As `set` keeps them: no trailing empty words.
                while entry.bits.last() == Some(&0) {
                    entry.bits.pop();
                }
                tail
            };
            entries.insert(rq, entry);
        }
        Some(Self { entries, evicted_early: 0 })
    }
}

/// Runs that fit the tag's seven bits.
const MAX_RUNS: usize = 0x7f;

/// The runs of set bits, as `(first, last)` indices.
fn runs_of(words: &[u64]) -> Vec<(u16, u16)> {
    let mut runs: Vec<(u16, u16)> = Vec::new();
    for (w, word) in words.iter().enumerate() {
        for b in 0..64u16 {
            if word & (1 << b) == 0 {
                continue;
            }
            let ix = (w as u16) * 64 + b;
            match runs.last_mut() {
                Some((_, last)) if *last + 1 == ix => *last = ix,
                _ => runs.push((ix, ix)),
            }
        }
    }
    runs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remembers_each_index_of_each_request() {
        let mut w = Window::default();
        w.insert(7, 0, 100);
        w.insert(7, 499, 100);
        assert!(w.seen(7, 0) && w.seen(7, 499));
        assert!(!w.seen(7, 1) && !w.seen(8, 0), "another index or request is new");
    }

    #[test]
    fn survives_its_encoding_and_refuses_other_bytes() {
        let mut w = Window::default();
        for ix in [0, 63, 64, 200, 499] {
            w.insert(0xdead_beef, ix, 1_000);
        }
        w.insert(1, 3, 900);
        let back = Window::decode(&w.encode()).unwrap();
        assert!(back.seen(0xdead_beef, 63) && back.seen(1, 3) && !back.seen(1, 4));
        assert_eq!(back.encode(), w.encode());
        assert!(Window::decode(&[1, 2, 3]).is_none());
        let mut bad = w.encode();
        bad[12] = 0x20; // more words than any request has
        assert!(Window::decode(&bad).is_none());
        // A run past the last index, or backwards.
        let mut bad = 1u64.to_be_bytes().to_vec();
        bad.extend_from_slice(&[0, 0, 0, 1, 0x81, 0x01, 0xff, 0x02, 0x00]);
        assert!(Window::decode(&bad).is_none());
        bad.truncate(13);
        bad.extend_from_slice(&[0, 5, 0, 4]);
        assert!(Window::decode(&bad).is_none());
    }

    #[test]
    fn a_whole_request_is_stored_as_one_run_and_a_scattered_one_as_a_bitmap() {
        let mut whole = Window::default();
        for ix in 0..500 {
            whole.insert(9, ix, 1);
        }
        assert_eq!(whole.encode().len(), 8 + 4 + 1 + 4, "one run of 500");
        assert_eq!(Window::decode(&whole.encode()).unwrap(), whole);
        let mut scattered = Window::default();
        for ix in (0..500).step_by(2) {
            scattered.insert(9, ix, 1);
        }
        assert_eq!(scattered.encode().len(), 8 + 4 + 1 + 8 * 8, "250 runs: the bitmap is shorter");
        assert_eq!(Window::decode(&scattered.encode()).unwrap(), scattered);
    }

    #[test]
    fn forgets_after_the_horizon_and_beyond_the_bound_oldest_first() {
        let mut w = Window::default();
        w.insert(1, 0, 1_000);
        w.insert(2, 0, 1_000 + HORIZON_SECS);
        w.prune(1_001 + HORIZON_SECS);
        assert!(!w.seen(1, 0) && w.seen(2, 0));
        assert_eq!(w.evicted_early, 0);
        let mut w = Window::default();
        for rq in 0..(MAX_ENTRIES as u64 + 5) {
            w.insert(rq, 0, 10_000 + rq as u32);
        }
        w.prune(10_000);
        assert_eq!((w.len(), w.evicted_early), (MAX_ENTRIES, 5));
        assert!(!w.seen(4, 0) && w.seen(5, 0), "the oldest went first");
    }

    #[test]
    fn a_merge_keeps_what_either_side_counted() {
        let mut a = Window::default();
        a.insert(1, 0, 10);
        let mut b = Window::default();
        b.insert(1, 300, 20);
        b.insert(2, 1, 20);
        a.merge(&b);
        assert!(a.seen(1, 0) && a.seen(1, 300) && a.seen(2, 1));
    }

    #[test]
    fn a_batch_reads_the_horizon_of_buckets_current_first() {
        let b = buckets(1_000_000);
        assert_eq!(b[0], bucket_of(1_000_000));
        assert_eq!(b.len() as u32, HORIZON_SECS / BUCKET_SECS + 1);
        assert!(b.windows(2).all(|w| w[0] - w[1] == BUCKET_SECS));
    }

    #[test]
    fn request_ids_are_sixteen_hex_digits() {
        assert_eq!(parse_request("00000000000000ff"), Some(255));
        assert_eq!(parse_request("ff"), None);
        assert_eq!(parse_request("zz000000000000ff"), None);
    }
}
