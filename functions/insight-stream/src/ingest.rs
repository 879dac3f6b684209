//! `POST /ingest`: parse, validate, anonymise, then one `PutRecords` for the whole request.

use std::borrow::Cow;
use std::collections::{BTreeSet, HashSet};
use std::hash::{BuildHasher, Hash, Hasher};
use std::sync::{Arc, Mutex};

use naksha_contracts::signing::{hex, sha256};
use naksha_contracts::telemetry::SeriesMeta;
use naksha_contracts::{Principal, TenantId};
use naksha_core::limits::{Limits, Refused};
use naksha_core::metrics::CounterStore;
use naksha_core::privacy::{Bump, PiiKey, PseudonymMemo};
use serde::Serialize;

use crate::event::{InvalidBody, parse_body};
use crate::ports::{RecordSink, SeriesIndex, SinkError};

/// Series ids one instance remembers as seen (known or counted), before it forgets them all.
const SEEN_CAPACITY: usize = 200_000;

/// Kinesis limits a partition key to 256 characters.
const MAX_PARTITION_KEY: usize = 256;
/// Kinesis's largest record: data and partition key together.
pub const MAX_RECORD_BYTES: usize = 1024 * 1024;
/// Kinesis's largest `PutRecords` request: all records' data and partition keys.
pub const MAX_PUT_BYTES: usize = 5 * 1024 * 1024;
/// Kinesis bills one PUT payload unit per started 25 KB of a record (data and partition key).
/// A request's events of one partition key are packed into records up to this size, one JSON
/// line per event, so 500 small events cost a few units instead of 500. An event larger than
/// this goes alone into a record of its own.
pub const PACK_BYTES: usize = 25 * 1024;

/// One record for the stream: one or more events of one partition key, as JSON lines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutRecord {
    pub partition_key: String,
    pub data: Vec<u8>,
    /// The events the record carries, in order, as their positions in the request (their ids
    /// are [`Prepared::event_id`]).
    pub events: Vec<u32>,
}

/// A request made ready for the stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prepared {
    pub records: Vec<OutRecord>,
    /// Every event's id, in the order the request gave the events.
    pub event_ids: EventIdList,
    /// The distinct series the events' samples belong to (as the consumer will name them).
    pub series: Vec<String>,
}

impl Prepared {
    /// The id of the event at position `ix` of the request.
    pub fn event_id(&self, ix: u32) -> String {
        self.event_ids.ids.id(ix as usize)
    }
}

#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct Accepted {
    pub accepted: usize,
    pub event_ids: EventIdList,
}

/// A request's event ids, made when they are written (into a stream record or a response)
/// rather than kept as 500 strings: serialised, a list of strings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventIdList {
    ids: EventIds,
    len: usize,
}

impl EventIdList {
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The ids as strings, in request order.
    pub fn to_vec(&self) -> Vec<String> {
        (0..self.len).map(|ix| self.ids.id(ix)).collect()
    }
}

impl Serialize for EventIdList {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeSeq;
        let mut seq = s.serialize_seq(Some(self.len))?;
        for ix in 0..self.len {
            seq.serialize_element(self.ids.text(ix).as_str())?;
        }
        seq.end()
    }
}

/// The ingest use case, generic over where records and counters go and (`I`) which series
/// exist; `()` when no per-tenant series limits apply.
#[derive(Debug)]
pub struct Ingest<S, C, I = ()> {
    sink: S,
    counters: C,
    pii: PiiKey,
    admission: Option<Admission<I>>,
}

/// Counting a request's new series against its tenant's limits.
#[derive(Debug)]
struct Admission<I> {
    limits: Arc<Limits>,
    index: I,
    /// Series this instance knows exist (or has counted): not looked up or counted again.
    seen: Mutex<HashSet<String>>,
}

impl<I: SeriesIndex> Admission<I> {
    async fn admit(&self, tenant: &TenantId, series: BTreeSet<&str>) -> Result<(), Refused> {
        let unseen: Vec<String> = {
            let seen = self.seen.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            series.iter().map(|id| tenant.key(&[id])).filter(|k| !seen.contains(k)).collect()
        };
        if unseen.is_empty() {
            return Ok(());
        }
        let ids: Vec<String> =
            unseen.iter().filter_map(|k| TenantId::split_key(k).map(|(_, id)| id.to_owned())).collect();
        let new = match self.index.known(tenant, &ids).await {
            Ok(known) => ids.iter().filter(|id| !known.contains(*id)).count(),
            Err(e) => {
                tracing::warn!(error = %e, "could not look up which series exist; none counted as new");
                0
            }
        };
        self.limits.admit_new_series(tenant, new as u64).await?;
        let mut seen = self.seen.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if seen.len() + unseen.len() > SEEN_CAPACITY {
            seen.clear();
        }
        seen.extend(unseen);
        Ok(())
    }
}

/// The partition key keeps one source's events in order on one shard and spreads a tenant's
/// sources over shards (Kinesis hashes the key with MD5).
pub fn partition_key(tenant: &TenantId, source: &str) -> String {
    let key = format!("{tenant}/{source}");
    if key.chars().count() <= MAX_PARTITION_KEY {
        return key;
    }
    format!("{tenant}/#{}", hex(&sha256(source.as_bytes())[..16]))
}

/// Why events were not (all) accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IngestError {
    /// The body is not valid; nothing was written.
    #[error("{0}")]
    Invalid(#[from] InvalidBody),
    /// The records, as pseudonymised and encoded, exceed what the stream takes; nothing was
    /// written, and sending the same again can never succeed.
    #[error("{0}")]
    TooLarge(String),
    /// The request would start more series than the tenant may; nothing was written.
    #[error("{0}")]
    Limited(#[from] Refused),
    /// The stream took nothing; a retry may succeed.
    #[error("no record was written: {0}")]
    Unavailable(String),
    /// The stream took some events and not others.
    #[error("{} of {total} events were written", accepted.len())]
    Partial { accepted: Vec<String>, failed: Vec<String>, total: usize, cause: String },
}

/// The request id records carry (`rq`, [`crate::dedup`]): with an `Idempotency-Key`, derived
/// from the tenant and the key, so a client's retry of a request whose answer it lost names the
/// same request (whichever token it now holds); without one, random.
pub fn request_id(tenant: &TenantId, idempotency_key: Option<&str>) -> u64 {
    match idempotency_key {
        Some(key) => {
            let digest = sha256(format!("ingest\0{}\0{key}", tenant.as_str()).as_bytes());
            u64::from_be_bytes(digest[..8].try_into().unwrap_or_default())
        }
        None => uuid::Uuid::now_v7().as_u64_pair().1,
    }
}

/// The ids of one request's events: the id of event `ix` is `base` (a UUIDv7) with `ix` in its
/// 12 `rand_a` bits, the counter RFC 9562 (6.2, method 1) puts there. A request's ids are
/// distinct and ordered, and cost one clock read and one random draw for the whole request; the
/// base is written out once, and each id is that text with its three counter digits replaced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventIds {
    text: [u8; 36],
}

/// One event id's text, on the stack.
#[derive(Debug, Clone, Copy)]
pub struct IdText([u8; 36]);

impl IdText {
    pub fn as_str(&self) -> &str {
        // Hex digits and hyphens: ASCII.
        std::str::from_utf8(&self.0).unwrap_or_default()
    }
}

impl EventIds {
    pub fn new(base: &uuid::Uuid) -> Self {
        let mut text = [0u8; 36];
        base.hyphenated().encode_lower(&mut text);
        Self { text }
    }

    /// The id of event `ix`.
    pub fn id(&self, ix: usize) -> String {
        self.text(ix).as_str().to_owned()
    }

    /// The id of event `ix`, without allocating.
    pub fn text(&self, ix: usize) -> IdText {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let counter = ix & 0x0fff;
        let mut text = self.text;
        // Bytes 6 and 7 are digits 14 to 17 of the hyphenated form; digit 14 is the version.
        text[15] = HEX[counter >> 8];
        text[16] = HEX[(counter >> 4) & 0xf];
        text[17] = HEX[counter & 0xf];
        IdText(text)
    }
}

/// [`EventIds::id`] the long way, through the UUID's bytes (what the tests hold it to).
#[cfg(test)]
pub fn event_id(base: &uuid::Uuid, ix: usize) -> String {
    let mut bytes = *base.as_bytes();
    let counter = (ix & 0x0fff) as u16;
    bytes[6] = (bytes[6] & 0xf0) | (counter >> 8) as u8;
    bytes[7] = (counter & 0xff) as u8;
    let mut buf = uuid::Uuid::encode_buffer();
    uuid::Uuid::from_bytes(bytes).hyphenated().encode_lower(&mut buf).to_owned()
}

/// Parse, validate, anonymise and encode a body: the CPU-only part of ingest (a new request).
pub fn prepare(pii: &PiiKey, tenant: &TenantId, body: &[u8], now_ms: i64) -> Result<Prepared, IngestError> {
    prepare_request(pii, tenant, body, now_ms, request_id(tenant, None), None)
}

/// Series ids of one batch, computed once per distinct series (a SHA-256 each) and looked up
/// from the borrowed parts of each event, without copying them.
#[derive(Default)]
struct SeriesIds {
    by_hash: foldhash::HashMap<u64, Vec<SeriesMeta>>,
    /// Every distinct series' id, in the order first seen.
    ids: Vec<String>,
}

impl SeriesIds {
    fn see(&mut self, source: &str, name: &str, labels: &[(Cow<'_, str>, Cow<'_, str>)]) {
        let mut h = foldhash::fast::FixedState::default().build_hasher();
        (source, name).hash(&mut h);
        for (k, v) in labels {
            (k.as_ref(), v.as_ref()).hash(&mut h);
        }
        let known = self.by_hash.entry(h.finish()).or_default();
        let same_labels = |m: &SeriesMeta| {
            m.labels.len() == labels.len() && m.labels.iter().zip(labels).all(|((a, b), (c, d))| a == c && b == d)
        };
        if known.iter().any(|m| m.source == source && m.name == name && same_labels(m)) {
            return;
        }
        let labels = labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        let meta = SeriesMeta { source: source.to_owned(), name: name.to_owned(), labels };
        self.ids.push(meta.id());
        known.push(meta);
    }
}

/// [`prepare`] for the request `rq`: each event carries `rq` and its index in the request.
pub fn prepare_request(
    pii: &PiiKey,
    tenant: &TenantId,
    body: &[u8],
    now_ms: i64,
    rq: u64,
    traceparent: Option<&str>,
) -> Result<Prepared, IngestError> {
    let rq_hex = format!("{rq:016x}");
    let events = parse_body(body, now_ms)?;
    // Values repeat within a batch (one client address on every event): each distinct one is
    // hashed once, and each distinct text scanned once.
    // Pseudonyms and scrubbed texts are made once per batch and lent from this arena.
    let arena = Bump::new();
    let memo = PseudonymMemo::new(tenant.as_str(), &arena);
    let p = pii.for_memo(&memo);
    let mut series = SeriesIds::default();
    let ids = EventIds::new(&uuid::Uuid::now_v7());
    let count = events.len();
    let mut records: Vec<OutRecord> = Vec::new();
    // Per source: the record its events are being packed into.
    let mut open: foldhash::HashMap<Cow<'_, str>, usize> = foldhash::HashMap::default();
    for (ix, mut event) in events.into_iter().enumerate() {
        let id_text = ids.text(ix);
        let id = id_text.as_str();
        // The request's size limit keeps its event count far below u32::MAX.
        let pos = u32::try_from(ix).unwrap_or(u32::MAX);
        event.scrub(&p);
        for (name, _) in &event.samples {
            series.see(&event.source, name, &event.labels);
        }
        let ix16 = u16::try_from(ix).ok();
        // The line is written straight onto the source's open record; if that takes the record
        // past a payload unit, it moves out to a new record of its own (the source's next one).
        let mut moved = None;
        if let Some(&r) = open.get(&event.source) {
            let record = &mut records[r];
            let mark = record.data.len();
            record.data.push(b'\n');
            event.write_line(&mut record.data, id, tenant, Some(&rq_hex), ix16, traceparent);
            if record.data.len() + record.partition_key.len() <= PACK_BYTES {
                record.events.push(pos);
                continue;
            }
            let line = record.data[mark + 1..].to_vec();
            record.data.truncate(mark);
            moved = Some((record.partition_key.clone(), line));
        }
        let (key, data) = moved.unwrap_or_else(|| {
            let mut data = Vec::with_capacity(4096);
            event.write_line(&mut data, id, tenant, Some(&rq_hex), ix16, traceparent);
            (partition_key(tenant, &event.source), data)
        });
        if data.len() + key.len() > MAX_RECORD_BYTES {
            return Err(IngestError::TooLarge(format!(
                "event {ix} is {} bytes as a stream record (after pseudonymisation); a record may be at most {MAX_RECORD_BYTES} bytes: split or shorten it",
                data.len() + key.len()
            )));
        }
        records.push(OutRecord { partition_key: key, data, events: vec![pos] });
        open.insert(event.source, records.len() - 1);
    }
    fits_the_stream(&records)?;
    Ok(Prepared { records, event_ids: EventIdList { ids, len: count }, series: series.ids })
}

/// Whether the request as a whole fits what one `PutRecords` takes (after pseudonymisation,
/// which can make events longer than they arrived). Each record was checked against a record's
/// limit as it was packed: one event over [`PACK_BYTES`] is a record of its own, checked alone,
/// and every other record stays within [`PACK_BYTES`].
fn fits_the_stream(records: &[OutRecord]) -> Result<(), IngestError> {
    let total: usize = records.iter().map(|r| r.data.len() + r.partition_key.len()).sum();
    if total > MAX_PUT_BYTES {
        return Err(IngestError::TooLarge(format!(
            "the events are {total} bytes as stream records (after pseudonymisation); one request may carry at most {MAX_PUT_BYTES} bytes: send fewer events per request"
        )));
    }
    Ok(())
}

impl<S: RecordSink, C: CounterStore> Ingest<S, C> {
    pub fn new(sink: S, counters: C, pii: PiiKey) -> Self {
        Self { sink, counters, pii, admission: None }
    }

    /// The same ingest, counting each request's new series against its tenant's limits, if
    /// any (`index` says which exist).
    pub fn with_limits<I: SeriesIndex>(self, limits: Option<Arc<Limits>>, index: I) -> Ingest<S, C, I> {
        Ingest {
            sink: self.sink,
            counters: self.counters,
            pii: self.pii,
            admission: limits.map(|limits| Admission { limits, index, seen: Mutex::default() }),
        }
    }
}

/// `()` knows no series: without limits nothing is looked up.
impl SeriesIndex for () {
    async fn known(&self, _: &TenantId, ids: &[String]) -> Result<HashSet<String>, crate::ports::StoreError> {
        Ok(ids.iter().cloned().collect())
    }
}

impl<S: RecordSink, C: CounterStore, I: SeriesIndex> Ingest<S, C, I> {
    pub async fn ingest(&self, principal: &Principal, body: &[u8], now_ms: i64) -> Result<Accepted, IngestError> {
        self.ingest_keyed(principal, body, now_ms, None).await
    }

    /// [`Ingest::ingest`] for a request that carries an `Idempotency-Key`: its records name the
    /// request by the key, so a retry's copies are counted once.
    pub async fn ingest_keyed(
        &self,
        principal: &Principal,
        body: &[u8],
        now_ms: i64,
        idempotency_key: Option<&str>,
    ) -> Result<Accepted, IngestError> {
        self.ingest_traced(principal, body, now_ms, idempotency_key, None).await
    }

    /// [`Ingest::ingest_keyed`] for a request in a trace: each record carries its `traceparent`.
    pub async fn ingest_traced(
        &self,
        principal: &Principal,
        body: &[u8],
        now_ms: i64,
        idempotency_key: Option<&str>,
        traceparent: Option<&str>,
    ) -> Result<Accepted, IngestError> {
        let rq = request_id(&principal.tenant, idempotency_key);
        let prepared = prepare_request(&self.pii, &principal.tenant, body, now_ms, rq, traceparent)?;
        if let Some(admission) = &self.admission {
            let series: BTreeSet<&str> = prepared.series.iter().map(String::as_str).collect();
            admission.admit(&principal.tenant, series).await?;
        }
        let total = prepared.event_ids.len();
        match self.sink.put(&prepared.records).await {
            Ok(()) => {}
            Err(SinkError::Failed(cause)) => return Err(IngestError::Unavailable(cause)),
            Err(SinkError::Partial { failed_records, cause }) => {
                // The failed records' events, in request order; every other event was written.
                let failed: BTreeSet<u32> = failed_records
                    .iter()
                    .filter_map(|r| prepared.records.get(*r))
                    .flat_map(|r| r.events.iter().copied())
                    .collect();
                let accepted: Vec<String> = (0..total)
                    .filter_map(|ix| u32::try_from(ix).ok())
                    .filter(|ix| !failed.contains(ix))
                    .map(|ix| prepared.event_id(ix))
                    .collect();
                let failed: Vec<String> = failed.into_iter().map(|ix| prepared.event_id(ix)).collect();
                self.count(accepted.len()).await;
                return Err(IngestError::Partial { accepted, failed, total, cause });
            }
        }
        self.count(total).await;
        Ok(Accepted { accepted: total, event_ids: prepared.event_ids })
    }

    /// Counting is best effort: the events are already on the stream, so a counter outage
    /// must not turn an accepted request into an error.
    async fn count(&self, events: usize) {
        let increments = [("insight_ingested_total", events as u64), ("insight_ingest_requests_total", 1)];
        if let Err(e) = self.counters.add("insight-ingest", &increments).await {
            tracing::warn!(error = %e, "could not update the ingest counters");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::memory::MemorySink;
    use naksha_contracts::Role;
    use naksha_core::metrics::MemoryCounters;

    fn principal(tenant: &str) -> Principal {
        Principal {
            tenant: TenantId::from_record(tenant).unwrap(),
            subject: "alice".into(),
            roles: [Role::Operator].into(),
        }
    }

    const NOW: i64 = 1_764_072_000_000;

    #[tokio::test]
    async fn one_put_per_request_and_counters_follow() {
        let ingest = Ingest::new(MemorySink::default(), MemoryCounters::default(), PiiKey::from_secret(b"k"));
        let body = serde_json::json!({"events": [{"m": 1}, {"m": 2}, {"source": "db", "q": 3}]}).to_string();
        let accepted = ingest.ingest(&principal("acme"), body.as_bytes(), NOW).await.unwrap();
        assert_eq!(accepted.accepted, 3);
        let puts = ingest.sink.puts.lock().unwrap();
        assert_eq!(puts.len(), 1);
        // Two partition keys: the two `unknown` events share a record, the `db` one has its own.
        assert_eq!(puts[0].len(), 2);
        assert_eq!(puts[0][1].partition_key, "acme/db");
        assert_eq!((puts[0][0].events.as_slice(), puts[0][1].events.as_slice()), (&[0, 1][..], &[2][..]));
        // The response names the three events by the ids their stream lines carry.
        let lines: Vec<String> =
            puts[0].iter().flat_map(|r| crate::consumer::decode(&r.data).unwrap()).map(|e| e.id).collect();
        assert_eq!(lines, accepted.event_ids.to_vec());
        assert_eq!(serde_json::to_value(&accepted).unwrap()["event_ids"], serde_json::json!(lines));
        assert_eq!(ingest.counters.get("insight_ingested_total"), 3);
        assert_eq!(ingest.counters.writes.load(std::sync::atomic::Ordering::Relaxed), 1);
    }

    #[tokio::test]
    async fn invalid_body_writes_nothing_and_counts_nothing() {
        let ingest = Ingest::new(MemorySink::default(), MemoryCounters::default(), PiiKey::from_secret(b"k"));
        let body = serde_json::json!({"events": [{"m": 1}, {"name": 5}]}).to_string();
        let err = ingest.ingest(&principal("acme"), body.as_bytes(), NOW).await.unwrap_err();
        assert!(matches!(err, IngestError::Invalid(ref e) if e.errors[0].pointer == "/events/1/name"), "{err:?}");
        assert!(ingest.sink.puts.lock().unwrap().is_empty());
        assert_eq!(ingest.counters.get("insight_ingested_total"), 0);
    }

    #[tokio::test]
    async fn stream_outage_is_503_and_partial_failure_names_the_failed_events() {
        let sink = MemorySink { fail: Some(|_| SinkError::Failed("throttled".into())), ..Default::default() };
        let ingest = Ingest::new(sink, MemoryCounters::default(), PiiKey::from_secret(b"k"));
        let err = ingest.ingest(&principal("acme"), b"{\"m\":1}", NOW).await.unwrap_err();
        assert_eq!(err, IngestError::Unavailable("throttled".into()));

        let sink = MemorySink {
            fail: Some(|_| SinkError::Partial { failed_records: vec![1], cause: "x".into() }),
            ..Default::default()
        };
        let ingest = Ingest::new(sink, MemoryCounters::default(), PiiKey::from_secret(b"k"));
        // Three sources, three records; the second record (its one event) is refused.
        let body = br#"{"events":[{"source":"a","m":1},{"source":"b","m":2},{"source":"c","m":3}]}"#;
        let err = ingest.ingest(&principal("acme"), body, NOW).await.unwrap_err();
        let IngestError::Partial { accepted, failed, total, .. } = err else { panic!("{err:?}") };
        assert_eq!((accepted.len(), failed.len(), total), (2, 1, 3));
        assert!(!accepted.contains(&failed[0]));
        // Ids grow with the position in the request: the refused one is the middle event's.
        assert!(accepted[0] < failed[0] && failed[0] < accepted[1], "{accepted:?} {failed:?}");
        assert_eq!(ingest.counters.get("insight_ingested_total"), 2);
    }

    #[tokio::test]
    async fn a_body_whose_pseudonyms_outgrow_a_stream_record_is_refused_before_anything_is_written() {
        // 600 KB of short e-mail addresses: within the body limit, but each becomes a longer pseudonym.
        let text = "a@b.io ".repeat(600 * 1024 / 7);
        let body = serde_json::json!({"events": [{"m": 1, "msg": text}]}).to_string();
        assert!(body.len() < naksha_core::http::MAX_BODY_BYTES);
        let ingest = Ingest::new(MemorySink::default(), MemoryCounters::default(), PiiKey::from_secret(b"k"));
        let err = ingest.ingest(&principal("acme"), body.as_bytes(), NOW).await.unwrap_err();
        let IngestError::TooLarge(why) = &err else { panic!("{err:?}") };
        assert!(why.contains("event 0") && why.contains("after pseudonymisation"), "{why}");
        assert_eq!(crate::api::ingest_problem(err).status, 413);
        assert!(ingest.sink.puts.lock().unwrap().is_empty());
        assert_eq!(ingest.counters.get("insight_ingested_total"), 0);
    }

    #[tokio::test]
    async fn new_series_over_the_tenants_limit_are_refused_with_429_and_nothing_is_written() {
        use crate::memory::MemorySeries;
        use naksha_core::limits::TenantLimits;
        let limits =
            Arc::new(Limits::memory(TenantLimits { new_series_per_minute: 5, max_series: 5, ..Default::default() }));
        let index = MemorySeries::default();
        // One series the tenant already has (the consumer created it): it never counts as new.
        let existing = SeriesMeta { source: "web".into(), name: "m0".into(), labels: Default::default() }.id();
        index.items.lock().unwrap().insert(
            crate::series::SeriesKey { tenant: TenantId::from_record("acme").unwrap(), series_id: existing },
            Default::default(),
        );
        let ingest = Ingest::new(MemorySink::default(), MemoryCounters::default(), PiiKey::from_secret(b"k"))
            .with_limits(Some(limits), index);
        let body = |names: std::ops::Range<usize>| {
            let events: Vec<_> = names.map(|i| serde_json::json!({"source": "web", format!("m{i}"): 1})).collect();
            serde_json::json!({ "events": events }).to_string()
        };
        // m0..m5: six series, one known, five new: exactly the minute's budget.
        ingest.ingest(&principal("acme"), body(0..6).as_bytes(), NOW).await.unwrap();
        // The same six again: all seen, nothing counted.
        ingest.ingest(&principal("acme"), body(0..6).as_bytes(), NOW).await.unwrap();
        // One more new one: the budget (5 a minute, 5 in all) is spent.
        let err = ingest.ingest(&principal("acme"), body(6..7).as_bytes(), NOW).await.unwrap_err();
        let p = crate::api::ingest_problem(err);
        assert_eq!(p.status, 429);
        assert!(p.headers.iter().any(|(k, _)| *k == "retry-after"));
        assert_eq!(ingest.sink.puts.lock().unwrap().len(), 2, "the refused request wrote nothing");
        // Another tenant has its own budget.
        ingest.ingest(&principal("other"), body(10..14).as_bytes(), NOW).await.unwrap();
    }

    #[test]
    fn records_that_fit_one_by_one_but_not_in_one_request_are_refused() {
        let record = |n: usize| OutRecord { events: vec![0], partition_key: "acme/s".into(), data: vec![b'x'; n] };
        assert!(fits_the_stream(&[record(MAX_RECORD_BYTES - 6)]).is_ok());
        let six: Vec<_> = (0..6).map(|_| record(MAX_RECORD_BYTES - 6)).collect();
        let Err(IngestError::TooLarge(why)) = fits_the_stream(&six) else { panic!("over 5 MiB must be refused") };
        assert!(why.contains("fewer events"), "{why}");
        assert!(fits_the_stream(&six[..5]).is_ok());
    }

    #[test]
    fn partition_keys_spread_sources_and_stay_within_kinesis_limits() {
        let acme = TenantId::from_record("acme").unwrap();
        assert_ne!(partition_key(&acme, "web-1"), partition_key(&acme, "web-2"));
        let long = "s".repeat(400);
        let k = partition_key(&acme, &long);
        assert!(k.chars().count() <= MAX_PARTITION_KEY);
        assert_eq!(k, partition_key(&acme, &long));
    }

    #[test]
    fn records_name_their_request_and_place_and_a_key_names_the_same_request_again() {
        let acme = TenantId::from_record("acme").unwrap();
        let globex = TenantId::from_record("globex").unwrap();
        let key = PiiKey::from_secret(b"k");
        let body = br#"{"events":[{"source":"a","name":"x","value":1},{"source":"b","name":"x","value":2}]}"#;
        let rq = request_id(&acme, Some("retry-me"));
        assert_eq!(rq, request_id(&acme, Some("retry-me")), "the same key names the same request");
        assert_ne!(rq, request_id(&globex, Some("retry-me")), "per tenant");
        assert_ne!(request_id(&acme, None), request_id(&acme, None), "unkeyed requests are all new");
        let tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let prepared = prepare_request(&key, &acme, body, NOW, rq, Some(tp)).unwrap();
        let back: Vec<crate::event::StreamRecord> =
            prepared.records.iter().flat_map(|r| crate::consumer::decode(&r.data).unwrap()).collect();
        let expected = format!("{rq:016x}");
        assert_eq!(
            back.iter().map(|r| (r.rq.as_deref(), r.ix)).collect::<Vec<_>>(),
            [(Some(expected.as_str()), Some(0)), (Some(expected.as_str()), Some(1))]
        );
        assert!(back.iter().all(|r| r.tp.as_deref() == Some(tp)), "every record carries the request's trace");
    }

    /// The events of a body, as the consumer reads them back from the records: (partition key,
    /// event id, ix) in record order.
    fn unpacked(prepared: &Prepared) -> Vec<(String, String, u16)> {
        prepared
            .records
            .iter()
            .flat_map(|r| {
                let events = crate::consumer::decode(&r.data).unwrap();
                let ids: Vec<String> = r.events.iter().map(|ix| prepared.event_id(*ix)).collect();
                assert_eq!(events.iter().map(|e| e.id.clone()).collect::<Vec<_>>(), ids);
                events.into_iter().map(|e| (r.partition_key.clone(), e.id, e.ix.unwrap()))
            })
            .collect()
    }

    #[test]
    fn events_of_one_source_are_packed_into_few_records_in_order_within_a_payload_unit() {
        let acme = TenantId::from_record("acme").unwrap();
        let key = PiiKey::from_secret(b"k");
        let events: Vec<_> = (0..500)
            .map(|i| serde_json::json!({"source": format!("web-{}", i % 3), "name": "latency", "value": i, "note": "x".repeat(100)}))
            .collect();
        let body = serde_json::json!({ "events": events }).to_string();
        let prepared = prepare(&key, &acme, body.as_bytes(), NOW).unwrap();
        assert_eq!(prepared.event_ids.len(), 500);
        assert_eq!(prepared.event_ids.to_vec().iter().collect::<HashSet<_>>().len(), 500, "every event has its own id");
        // About 230 bytes an event: about 110 to a record, so each of the three sources needs two.
        assert!((6..=9).contains(&prepared.records.len()), "{} records", prepared.records.len());
        for r in &prepared.records {
            assert!(r.data.len() + r.partition_key.len() <= PACK_BYTES, "a record is one payload unit at most");
        }
        let events = unpacked(&prepared);
        assert_eq!(events.len(), 500, "every event is in exactly one record");
        // Each source's events keep the order they were sent in (one source, one shard).
        for source in 0..3 {
            let ixs: Vec<u16> =
                events.iter().filter(|(k, ..)| k.ends_with(&format!("web-{source}"))).map(|e| e.2).collect();
            assert_eq!(ixs, (0..500u16).filter(|i| i % 3 == source).collect::<Vec<_>>());
        }
        // Ids are the request's, in its order: the event at index i has id i.
        for (_, id, ix) in &events {
            assert_eq!(&prepared.event_id(u32::from(*ix)), id);
        }
    }

    #[test]
    fn event_ids_are_uuid_v7s_that_share_the_request_and_count_its_events() {
        let base = uuid::Uuid::now_v7();
        let ids: Vec<uuid::Uuid> = (0..500).map(|i| event_id(&base, i).parse().unwrap()).collect();
        assert!(ids.iter().all(|u| u.get_version_num() == 7 && u.get_variant() == uuid::Variant::RFC4122));
        assert!(ids.windows(2).all(|w| w[0] < w[1]), "ordered as sent");
        assert!(ids.iter().all(|u| u.get_timestamp() == base.get_timestamp()));
        let other = uuid::Uuid::now_v7();
        assert_ne!(event_id(&base, 7), event_id(&other, 7), "another request, other ids");
        let fast = EventIds::new(&base);
        for ix in 0..5000 {
            assert_eq!(fast.id(ix), event_id(&base, ix), "event {ix}");
        }
    }

    #[test]
    fn an_event_larger_than_a_payload_unit_goes_alone_and_the_next_starts_a_new_record() {
        let acme = TenantId::from_record("acme").unwrap();
        let key = PiiKey::from_secret(b"k");
        let body = serde_json::json!({"events": [
            {"source": "s", "m": 1},
            {"source": "s", "m": 2, "blob": "y".repeat(30_000)},
            {"source": "s", "m": 3},
        ]})
        .to_string();
        let prepared = prepare(&key, &acme, body.as_bytes(), NOW).unwrap();
        let sizes: Vec<usize> = prepared.records.iter().map(|r| r.events.len()).collect();
        assert_eq!(sizes, [1, 1, 1]);
        assert!(prepared.records[1].data.len() > PACK_BYTES);
        assert_eq!(unpacked(&prepared).iter().map(|e| e.2).collect::<Vec<_>>(), [0, 1, 2]);
    }
}
