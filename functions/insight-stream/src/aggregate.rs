//! The telemetry consumer's domain: fold one Kinesis batch into per-minute aggregates.
//!
//! - Aggregates are keyed by (tenant, series, minute) and hold count, sum, min, max and sum of
//!   squares. A batch is folded in memory first; then each aggregate key gets exactly one
//!   conditional write, never one write per event.
//! - Idempotence comes from sequence numbers: each aggregate remembers, per shard, the highest
//!   sequence number folded into it (its watermark). A redelivered record is at or below the
//!   watermark and is skipped, so a redelivered batch changes nothing. Writes are conditional on
//!   the version that was read, so two deliveries racing cannot both apply.
//! - A record that cannot be decoded (poison) is set aside in the dead-letter store and does
//!   not block the records after it; only a failure that a retry could fix (a write that did
//!   not happen) is reported back, from the earliest record it affects.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::future::Future;

use aws_lc_rs::digest;
use futures::StreamExt;
use naksha_core::auth::TenantId;
use naksha_core::metrics::CounterStore;
use serde::Serialize;

use crate::detection::{Sample, SeriesInput, SeriesKey, SeriesWatch};
use crate::event::{RECORD_VERSION, StreamRecord};

/// How many aggregate writes are in flight at once.
const WRITE_CONCURRENCY: usize = 16;
/// How often a write that lost a race is re-read and retried before the record is reported.
const CONFLICT_RETRIES: usize = 4;

/// A Kinesis sequence number, zero-padded so that string order is numeric order (DynamoDB
/// compares strings bytewise, and sequence numbers can be up to 128 digits).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SeqNo(String);

impl SeqNo {
    pub const WIDTH: usize = 128;

    pub fn parse(raw: &str) -> Option<Self> {
        let ok = !raw.is_empty() && raw.len() <= Self::WIDTH && raw.bytes().all(|b| b.is_ascii_digit());
        ok.then(|| Self(format!("{raw:0>width$}", width = Self::WIDTH)))
    }

    /// The padded form, as stored.
    pub fn padded(&self) -> &str {
        &self.0
    }

    pub fn from_padded(s: &str) -> Option<Self> {
        Self::parse(s)
    }
}

/// One record of a batch, as delivered.
#[derive(Debug, Clone, Copy)]
pub struct InRecord<'a> {
    pub seq: &'a str,
    pub data: &'a [u8],
}

/// What identifies a series within a tenant.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct SeriesMeta {
    pub source: String,
    pub name: String,
    pub labels: BTreeMap<String, String>,
}

impl SeriesMeta {
    /// A stable id: 32 hex digits of SHA-256 over the canonical JSON `[source, name, labels]`.
    pub fn id(&self) -> String {
        let canonical = serde_json::to_vec(&(&self.source, &self.name, &self.labels)).unwrap_or_default();
        let d = digest::digest(&digest::SHA256, &canonical);
        d.as_ref()[..16].iter().map(|b| format!("{b:02x}")).collect()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct AggKey {
    pub tenant: String,
    pub series_id: String,
    /// Start of the minute, seconds since the Unix epoch.
    pub minute: i64,
}

impl AggKey {
    /// The DynamoDB partition key: every key starts with the tenant (P-5).
    pub fn pk(&self) -> String {
        format!("{}#{}", self.tenant, self.series_id)
    }
}

/// Start of the minute holding `ts_ms`, in epoch seconds.
pub fn minute_of(ts_ms: i64) -> i64 {
    ts_ms.div_euclid(60_000) * 60
}

/// Summary statistics of one series in one minute.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Stats {
    pub count: u64,
    pub sum: f64,
    pub min: f64,
    pub max: f64,
    pub sumsq: f64,
    pub first_ts: i64,
    pub last_ts: i64,
}

impl Stats {
    pub fn of(value: f64, ts: i64) -> Self {
        Self { count: 1, sum: value, min: value, max: value, sumsq: value * value, first_ts: ts, last_ts: ts }
    }

    pub fn add(&mut self, value: f64, ts: i64) {
        self.count += 1;
        self.sum += value;
        self.min = self.min.min(value);
        self.max = self.max.max(value);
        self.sumsq += value * value;
        self.first_ts = self.first_ts.min(ts);
        self.last_ts = self.last_ts.max(ts);
    }

    pub fn mean(&self) -> f64 {
        if self.count == 0 { 0.0 } else { self.sum / self.count as f64 }
    }

    /// Population variance, clamped at 0 against rounding.
    pub fn variance(&self) -> f64 {
        if self.count == 0 {
            return 0.0;
        }
        let m = self.mean();
        (self.sumsq / self.count as f64 - m * m).max(0.0)
    }
}

/// An aggregate as stored, with this shard's watermark.
#[derive(Debug, Clone, PartialEq)]
pub struct Stored {
    pub stats: Stats,
    pub version: u64,
    pub watermark: Option<SeqNo>,
}

/// One conditional write.
#[derive(Debug, Clone, PartialEq)]
pub struct AggWrite {
    pub key: AggKey,
    pub meta: SeriesMeta,
    pub stats: Stats,
    /// The version read; 0 means the item must not exist yet.
    pub expected_version: u64,
    pub shard: String,
    pub watermark: SeqNo,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{0}")]
    Failed(String),
}

#[derive(Debug, thiserror::Error)]
pub enum CommitError {
    #[error("the aggregate changed since it was read")]
    Conflict,
    #[error("{0}")]
    Failed(String),
}

/// Where aggregates live.
pub trait AggregateStore: Send + Sync {
    /// Read the aggregates that exist among `keys`, with `shard`'s watermark.
    fn load(
        &self,
        shard: &str,
        keys: &[AggKey],
    ) -> impl Future<Output = Result<HashMap<AggKey, Stored>, StoreError>> + Send;
    /// Write one aggregate if its version is still `expected_version`.
    fn commit(&self, write: &AggWrite) -> impl Future<Output = Result<(), CommitError>> + Send;
}

/// A record set aside because it cannot be decoded. Only metadata is kept, never the payload
/// (a record not written by our ingest may hold anything, PII included).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoisonRecord {
    pub shard: String,
    pub seq: String,
    pub reason: String,
    pub size: usize,
    pub sha256: String,
}

pub trait DeadLetterStore: Send + Sync {
    /// Record poison records; returns how many were new (a redelivery records nothing twice).
    fn record(&self, letters: &[PoisonRecord]) -> impl Future<Output = Result<usize, StoreError>> + Send;
}

/// What happened to a batch.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
pub struct BatchReport {
    /// Sequence number to report in `batchItemFailures` (Lambda retries from there).
    pub failed_from: Option<String>,
    pub records: usize,
    pub applied_records: usize,
    pub applied_samples: usize,
    pub duplicate_samples: usize,
    pub writes: usize,
    pub poison: usize,
    pub new_poison: usize,
    /// Minutes the detector scored, signals it raised, and series-state writes it made.
    pub scored_minutes: usize,
    pub signals: usize,
    pub detector_writes: usize,
}

struct Contribution {
    record: usize,
    seq: SeqNo,
    value: f64,
    ts: i64,
}

struct Group {
    meta: SeriesMeta,
    contributions: Vec<Contribution>,
}

/// Decode one record; the error is the reason it is poison.
pub fn decode(data: &[u8]) -> Result<StreamRecord, String> {
    let record: StreamRecord = serde_json::from_slice(data).map_err(|e| format!("not a telemetry record: {e}"))?;
    if record.v != RECORD_VERSION {
        return Err(format!("unsupported record version {}", record.v));
    }
    if TenantId::from_internal_record(&record.tenant).is_none() {
        return Err("record has an invalid tenant".into());
    }
    if record.samples.iter().any(|(_, v)| !v.is_finite()) {
        return Err("record has a non-finite sample".into());
    }
    Ok(record)
}

fn sha256_hex(data: &[u8]) -> String {
    digest::digest(&digest::SHA256, data).as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

/// The consumer use case. `W` watches each batch's series (the D.3 detector); `()` watches
/// nothing.
#[derive(Debug)]
pub struct Consumer<S, D, C, W = ()> {
    store: S,
    dead: D,
    counters: C,
    watch: W,
}

impl<S: AggregateStore, D: DeadLetterStore, C: CounterStore> Consumer<S, D, C> {
    pub fn new(store: S, dead: D, counters: C) -> Self {
        Self { store, dead, counters, watch: () }
    }
}

impl<S: AggregateStore, D: DeadLetterStore, C: CounterStore, W: SeriesWatch> Consumer<S, D, C, W> {
    /// The same consumer, with every batch's series also shown to `watch`.
    pub fn with_watch<W2: SeriesWatch>(self, watch: W2) -> Consumer<S, D, C, W2> {
        Consumer { store: self.store, dead: self.dead, counters: self.counters, watch }
    }

    pub fn watch(&self) -> &W {
        &self.watch
    }

    pub fn store(&self) -> &S {
        &self.store
    }

    /// Fold one shard's batch. Never fails as a whole: what could not be done is reported
    /// through `failed_from`.
    pub async fn process(&self, shard: &str, records: &[InRecord<'_>]) -> BatchReport {
        let mut report = BatchReport { records: records.len(), ..Default::default() };
        let mut poison = Vec::new();
        let mut poison_index = Vec::new();
        let mut groups: BTreeMap<AggKey, Group> = BTreeMap::new();
        let mut series: BTreeMap<SeriesKey, SeriesInput> = BTreeMap::new();
        for (i, r) in records.iter().enumerate() {
            let decoded = SeqNo::parse(r.seq)
                .ok_or_else(|| "sequence number is not decimal".to_owned())
                .and_then(|seq| decode(r.data).map(|rec| (seq, rec)));
            let (seq, rec) = match decoded {
                Ok(ok) => ok,
                Err(reason) => {
                    poison.push(PoisonRecord {
                        shard: shard.to_owned(),
                        seq: r.seq.to_owned(),
                        reason,
                        size: r.data.len(),
                        sha256: sha256_hex(r.data),
                    });
                    poison_index.push(i);
                    continue;
                }
            };
            let minute = minute_of(rec.ts);
            for (name, value) in rec.samples {
                let meta = SeriesMeta { source: rec.source.clone(), name, labels: rec.labels.clone() };
                let key = AggKey { tenant: rec.tenant.clone(), series_id: meta.id(), minute };
                series
                    .entry(SeriesKey { tenant: key.tenant.clone(), series_id: key.series_id.clone() })
                    .or_insert_with(|| SeriesInput { meta: meta.clone(), samples: Vec::new() })
                    .samples
                    .push(Sample { record: i, seq: seq.clone(), minute, value });
                groups
                    .entry(key)
                    .or_insert_with(|| Group { meta, contributions: Vec::new() })
                    .contributions
                    .push(Contribution { record: i, seq: seq.clone(), value, ts: rec.ts });
            }
        }
        report.poison = poison.len();

        let mut failed: BTreeSet<usize> = BTreeSet::new();
        let mut applied_records = BTreeSet::new();

        // The detector's state is separate from the aggregates, with its own watermarks, so the
        // two run side by side and a retry redoes only what did not happen.
        let (watched, ()) = futures::join!(self.watch.observe(shard, &series), async {
            if !groups.is_empty() {
                let keys: Vec<AggKey> = groups.keys().cloned().collect();
                match self.store.load(shard, &keys).await {
                    Err(e) => {
                        tracing::warn!(error = %e, "could not read aggregates; the batch will be retried");
                        failed.extend(groups.values().flat_map(|g| g.contributions.iter().map(|c| c.record)));
                    }
                    Ok(stored) => {
                        let outcomes: Vec<_> = futures::stream::iter(groups.iter())
                            .map(|(key, group)| self.fold_one(shard, key, group, stored.get(key)))
                            .buffer_unordered(WRITE_CONCURRENCY)
                            .collect()
                            .await;
                        for outcome in outcomes {
                            match outcome {
                                GroupOutcome::Applied { records, samples, duplicates } => {
                                    report.writes += 1;
                                    report.applied_samples += samples;
                                    report.duplicate_samples += duplicates;
                                    applied_records.extend(records);
                                }
                                GroupOutcome::AllDuplicate { samples } => report.duplicate_samples += samples,
                                GroupOutcome::Failed { first_record } => {
                                    failed.insert(first_record);
                                }
                            }
                        }
                    }
                }
            }
        });
        failed.extend(watched.failed.iter().copied());
        report.scored_minutes = watched.scored;
        report.signals = watched.raised;
        report.detector_writes = watched.writes;

        if !poison.is_empty() {
            for p in &poison {
                tracing::warn!(shard = %p.shard, seq = %p.seq, reason = %p.reason, size = p.size, "poison record set aside");
            }
            match self.dead.record(&poison).await {
                Ok(new) => report.new_poison = new,
                Err(e) => {
                    tracing::warn!(error = %e, "could not record poison records; the batch will be retried");
                    failed.extend(poison_index.iter().copied());
                }
            }
        }

        report.applied_records = applied_records.len();
        report.failed_from = failed.first().map(|i| records[*i].seq.to_owned());
        let increments = [
            ("insight_stream_records_total", report.applied_records as u64),
            ("insight_aggregated_samples_total", report.applied_samples as u64),
            ("insight_aggregate_writes_total", report.writes as u64),
            ("insight_poison_records_total", report.new_poison as u64),
            ("insight_detector_scored_total", report.scored_minutes as u64),
            ("insight_signals_total", report.signals as u64),
        ];
        if let Err(e) = self.counters.add("insight-consumer", &increments).await {
            tracing::warn!(error = %e, "could not update the consumer counters");
        }
        report
    }

    async fn fold_one(&self, shard: &str, key: &AggKey, group: &Group, stored: Option<&Stored>) -> GroupOutcome {
        let mut current = stored.cloned();
        for _ in 0..=CONFLICT_RETRIES {
            let watermark = current.as_ref().and_then(|s| s.watermark.clone());
            let fresh: Vec<&Contribution> =
                group.contributions.iter().filter(|c| watermark.as_ref().is_none_or(|w| c.seq > *w)).collect();
            let duplicates = group.contributions.len() - fresh.len();
            let Some(last) = fresh.last() else {
                return GroupOutcome::AllDuplicate { samples: duplicates };
            };
            let mut stats = current.as_ref().map(|s| s.stats);
            for c in &fresh {
                match stats.as_mut() {
                    Some(s) => s.add(c.value, c.ts),
                    None => stats = Some(Stats::of(c.value, c.ts)),
                }
            }
            let Some(stats) = stats else { return GroupOutcome::AllDuplicate { samples: duplicates } };
            let write = AggWrite {
                key: key.clone(),
                meta: group.meta.clone(),
                stats,
                expected_version: current.as_ref().map_or(0, |s| s.version),
                shard: shard.to_owned(),
                watermark: last.seq.clone(),
            };
            match self.store.commit(&write).await {
                Ok(()) => {
                    return GroupOutcome::Applied {
                        records: fresh.iter().map(|c| c.record).collect(),
                        samples: fresh.len(),
                        duplicates,
                    };
                }
                Err(CommitError::Conflict) => match self.store.load(shard, std::slice::from_ref(key)).await {
                    Ok(mut reread) => current = reread.remove(key),
                    Err(_) => break,
                },
                Err(CommitError::Failed(e)) => {
                    tracing::warn!(error = %e, "aggregate write failed");
                    break;
                }
            }
        }
        let first_record = group.contributions.iter().map(|c| c.record).min().unwrap_or(0);
        GroupOutcome::Failed { first_record }
    }
}

enum GroupOutcome {
    Applied { records: Vec<usize>, samples: usize, duplicates: usize },
    AllDuplicate { samples: usize },
    Failed { first_record: usize },
}

/// In-memory stores, for unit tests and the benchmark (which counts writes).
pub mod memory {
    use super::*;
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// One stored aggregate.
    #[derive(Debug, Clone)]
    pub struct MemoryItem {
        pub stats: Stats,
        pub version: u64,
        pub watermarks: HashMap<String, SeqNo>,
        pub meta: SeriesMeta,
    }

    #[derive(Debug, Default)]
    pub struct MemoryAggregates {
        pub items: Mutex<HashMap<AggKey, MemoryItem>>,
        pub writes: AtomicUsize,
        pub reads: AtomicUsize,
        /// Fail every commit whose key's series name equals this.
        pub fail_series: Mutex<Option<String>>,
        /// Pretend the next N commits lost a race.
        pub conflicts: AtomicUsize,
    }

    impl AggregateStore for MemoryAggregates {
        async fn load(&self, shard: &str, keys: &[AggKey]) -> Result<HashMap<AggKey, Stored>, StoreError> {
            self.reads.fetch_add(keys.len().div_ceil(100), Ordering::Relaxed);
            let items = self.items.lock().map_err(|_| StoreError::Failed("poisoned".into()))?;
            Ok(keys
                .iter()
                .filter_map(|k| {
                    items.get(k).map(|i| {
                        (
                            k.clone(),
                            Stored { stats: i.stats, version: i.version, watermark: i.watermarks.get(shard).cloned() },
                        )
                    })
                })
                .collect())
        }

        async fn commit(&self, w: &AggWrite) -> Result<(), CommitError> {
            if self.conflicts.load(Ordering::Relaxed) > 0 {
                self.conflicts.fetch_sub(1, Ordering::Relaxed);
                return Err(CommitError::Conflict);
            }
            let fail = self.fail_series.lock().map(|f| f.clone()).unwrap_or(None);
            if fail.as_deref() == Some(w.meta.name.as_str()) {
                return Err(CommitError::Failed("injected failure".into()));
            }
            let mut items = self.items.lock().map_err(|_| CommitError::Failed("poisoned".into()))?;
            let version = items.get(&w.key).map_or(0, |i| i.version);
            if version != w.expected_version {
                return Err(CommitError::Conflict);
            }
            let mut watermarks = items.get(&w.key).map(|i| i.watermarks.clone()).unwrap_or_default();
            watermarks.insert(w.shard.clone(), w.watermark.clone());
            let item = MemoryItem { stats: w.stats, version: version + 1, watermarks, meta: w.meta.clone() };
            items.insert(w.key.clone(), item);
            self.writes.fetch_add(1, Ordering::Relaxed);
            Ok(())
        }
    }

    #[derive(Debug, Default)]
    pub struct MemoryDeadLetters {
        pub letters: Mutex<BTreeMap<(String, String), PoisonRecord>>,
        pub writes: AtomicUsize,
    }

    impl DeadLetterStore for MemoryDeadLetters {
        async fn record(&self, letters: &[PoisonRecord]) -> Result<usize, StoreError> {
            let mut all = self.letters.lock().map_err(|_| StoreError::Failed("poisoned".into()))?;
            let mut new = 0;
            for l in letters {
                self.writes.fetch_add(1, Ordering::Relaxed);
                if all.insert((l.shard.clone(), l.seq.clone()), l.clone()).is_none() {
                    new += 1;
                }
            }
            Ok(new)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::memory::*;
    use super::*;
    use naksha_core::metrics::MemoryCounters;
    use std::sync::atomic::Ordering;

    type TestConsumer = Consumer<MemoryAggregates, MemoryDeadLetters, MemoryCounters>;

    fn consumer() -> TestConsumer {
        Consumer::new(MemoryAggregates::default(), MemoryDeadLetters::default(), MemoryCounters::default())
    }

    fn rec(tenant: &str, source: &str, name: &str, value: f64, ts: i64) -> Vec<u8> {
        serde_json::to_vec(&StreamRecord {
            v: 1,
            id: format!("{name}-{ts}"),
            tenant: tenant.into(),
            source: source.into(),
            name: None,
            kind: crate::event::Kind::Metric,
            ts,
            samples: vec![(name.into(), value)],
            labels: BTreeMap::new(),
            attrs: Default::default(),
        })
        .unwrap()
    }

    fn batch<'a>(seqs: &'a [String], datas: &'a [Vec<u8>]) -> Vec<InRecord<'a>> {
        seqs.iter().zip(datas).map(|(s, d)| InRecord { seq: s, data: d }).collect()
    }

    fn stats_of(c: &TestConsumer) -> Vec<(String, i64, Stats)> {
        let items = c.store().items.lock().unwrap();
        let mut out: Vec<_> = items.iter().map(|(k, v)| (v.meta.name.clone(), k.minute, v.stats)).collect();
        out.sort_by_key(|a| (a.0.clone(), a.1));
        out
    }

    const T0: i64 = 1_764_072_000_000; // a minute boundary

    #[tokio::test]
    async fn folds_samples_per_series_and_minute_with_one_write_per_key() {
        let c = consumer();
        let datas = vec![
            rec("acme", "web", "cpu", 1.0, T0),
            rec("acme", "web", "cpu", 3.0, T0 + 10_000),
            rec("acme", "web", "cpu", 5.0, T0 + 70_000),
            rec("acme", "web", "mem", 2.0, T0 + 1_000),
        ];
        let seqs: Vec<String> = (1..=4).map(|i| i.to_string()).collect();
        let report = c.process("shard-0", &batch(&seqs, &datas)).await;
        assert_eq!(report.failed_from, None);
        assert_eq!(report.writes, 3);
        assert_eq!(c.store().writes.load(Ordering::Relaxed), 3);
        let s = stats_of(&c);
        assert_eq!(s[0].0, "cpu");
        assert_eq!(
            s[0].2,
            Stats { count: 2, sum: 4.0, min: 1.0, max: 3.0, sumsq: 10.0, first_ts: T0, last_ts: T0 + 10_000 }
        );
        assert_eq!(s[1].1, minute_of(T0 + 70_000));
        assert_eq!(s[1].2.count, 1);
        assert!((s[0].2.variance() - 1.0).abs() < 1e-12);
        assert_eq!(c.counters.get("insight_aggregated_samples_total"), 4);
    }

    #[tokio::test]
    async fn a_redelivered_batch_changes_nothing() {
        let c = consumer();
        let datas: Vec<_> = (0..20).map(|i| rec("acme", "web", "cpu", i as f64, T0 + i * 1000)).collect();
        let seqs: Vec<String> = (100..120).map(|i| i.to_string()).collect();
        c.process("s", &batch(&seqs, &datas)).await;
        let first = stats_of(&c);
        let writes = c.store().writes.load(Ordering::Relaxed);
        let again = c.process("s", &batch(&seqs, &datas)).await;
        assert_eq!(stats_of(&c), first);
        assert_eq!(again.applied_samples, 0);
        assert_eq!(again.duplicate_samples, 20);
        assert_eq!(c.store().writes.load(Ordering::Relaxed), writes, "a redelivery must not write");
        assert_eq!(c.counters.get("insight_aggregated_samples_total"), 20);
    }

    #[tokio::test]
    async fn an_overlapping_redelivery_applies_only_the_new_records() {
        let c = consumer();
        let datas: Vec<_> = (0..10).map(|i| rec("acme", "web", "cpu", 1.0, T0 + i * 1000)).collect();
        let seqs: Vec<String> = (1..=10).map(|i| i.to_string()).collect();
        c.process("s", &batch(&seqs[..6], &datas[..6])).await;
        c.process("s", &batch(&seqs[3..], &datas[3..])).await;
        assert_eq!(stats_of(&c)[0].2.count, 10);
    }

    #[tokio::test]
    async fn poison_is_set_aside_and_does_not_block_later_records() {
        let c = consumer();
        let datas = vec![
            rec("acme", "web", "cpu", 1.0, T0),
            b"\x00garbage".to_vec(),
            br#"{"v":1,"id":"x","tenant":"ACME#evil","source":"s","kind":"metric","ts":1}"#.to_vec(),
            rec("acme", "web", "cpu", 2.0, T0 + 1),
        ];
        let seqs: Vec<String> = (1..=4).map(|i| i.to_string()).collect();
        let report = c.process("s", &batch(&seqs, &datas)).await;
        assert_eq!(report.failed_from, None, "poison must not be retried");
        assert_eq!(report.poison, 2);
        assert_eq!(stats_of(&c)[0].2.count, 2);
        {
            let letters = c.dead.letters.lock().unwrap();
            assert_eq!(letters.len(), 2);
            assert!(letters.values().all(|l| l.sha256.len() == 64 && !l.reason.is_empty()));
        }
        let again = c.process("s", &batch(&seqs, &datas)).await;
        assert_eq!(again.new_poison, 0);
        assert_eq!(c.counters.get("insight_poison_records_total"), 2);
    }

    #[tokio::test]
    async fn a_failed_write_is_reported_from_its_first_record_and_the_retry_completes_the_batch() {
        let c = consumer();
        let datas = vec![
            rec("acme", "web", "cpu", 1.0, T0),
            rec("acme", "web", "mem", 7.0, T0),
            rec("acme", "web", "cpu", 2.0, T0 + 1),
            rec("acme", "web", "mem", 8.0, T0 + 1),
        ];
        let seqs: Vec<String> = (1..=4).map(|i| i.to_string()).collect();
        *c.store().fail_series.lock().unwrap() = Some("mem".into());
        let report = c.process("s", &batch(&seqs, &datas)).await;
        assert_eq!(report.failed_from.as_deref(), Some("2"));
        // Lambda redelivers from the reported record on; cpu must not double count.
        *c.store().fail_series.lock().unwrap() = None;
        let retry = c.process("s", &batch(&seqs[1..], &datas[1..])).await;
        assert_eq!(retry.failed_from, None);
        let s = stats_of(&c);
        assert_eq!((s[0].0.as_str(), s[0].2.count, s[0].2.sum), ("cpu", 2, 3.0));
        assert_eq!((s[1].0.as_str(), s[1].2.count, s[1].2.sum), ("mem", 2, 15.0));
    }

    #[tokio::test]
    async fn a_lost_race_is_reread_and_retried() {
        let c = consumer();
        c.store().conflicts.store(2, Ordering::Relaxed);
        let datas = vec![rec("acme", "web", "cpu", 1.0, T0)];
        let seqs = vec!["1".to_owned()];
        let report = c.process("s", &batch(&seqs, &datas)).await;
        assert_eq!(report.failed_from, None);
        assert_eq!(stats_of(&c)[0].2.count, 1);
    }

    #[tokio::test]
    async fn the_detector_sees_each_series_and_a_signal_that_could_not_be_sent_retries_the_batch() {
        use crate::detection::Detection;
        use crate::detection::memory::{MemorySeries, MemorySignals};
        let params = naksha_detector::detector::Params {
            warmup: 30,
            learning_days: 0.0,
            ..naksha_detector::detector::Params::default()
        };
        let c = consumer().with_watch(Detection {
            store: MemorySeries::default(),
            sink: MemorySignals::default(),
            params,
            models: (),
        });
        // Two series; "lat" jumps at minute 200. One record per series per minute.
        let mut datas = Vec::new();
        for m in 0..230i64 {
            let wobble = (m % 7) as f64 * 0.1;
            datas.push(rec("acme", "web", "cpu", 40.0 + wobble, T0 + m * 60_000));
            datas.push(rec("acme", "web", "lat", if m < 200 { 10.0 + wobble } else { 90.0 }, T0 + m * 60_000));
        }
        let seqs: Vec<String> = (1..=datas.len()).map(|i| i.to_string()).collect();
        let records = batch(&seqs, &datas);
        c.watch().sink.fail.store(true, Ordering::Relaxed);
        let report = c.process("shard-0", &records).await;
        assert_eq!(report.scored_minutes, 2 * 229, "every closed minute of both series");
        assert_eq!(report.signals, 0);
        assert_eq!(report.failed_from.as_deref(), Some("2"), "from the anomalous series' first record");
        c.watch().sink.fail.store(false, Ordering::Relaxed);
        let retry = c.process("shard-0", &records[1..]).await;
        assert_eq!((retry.failed_from, retry.signals, retry.scored_minutes, retry.writes), (None, 1, 0, 0));
        let sent = c.watch().sink.sent.lock().unwrap().clone();
        assert_eq!(sent.len(), 1);
        assert_eq!(sent[0].0.start.as_ref().unwrap().signal, "anomaly.lat");
    }

    #[tokio::test]
    async fn tenants_never_share_an_aggregate() {
        let c = consumer();
        let datas = vec![rec("acme", "web", "cpu", 1.0, T0), rec("globex", "web", "cpu", 100.0, T0)];
        let seqs: Vec<String> = (1..=2).map(|i| i.to_string()).collect();
        c.process("s", &batch(&seqs, &datas)).await;
        let items = c.store().items.lock().unwrap();
        assert_eq!(items.len(), 2);
        for (k, v) in items.iter() {
            assert!(k.pk().starts_with(&format!("{}#", k.tenant)));
            assert_eq!(v.stats.count, 1);
        }
    }

    #[test]
    fn sequence_numbers_compare_numerically_once_padded() {
        let a = SeqNo::parse("9").unwrap();
        let b = SeqNo::parse("10").unwrap();
        assert!(a < b);
        assert!(a.padded() < b.padded());
        assert!(SeqNo::parse("12a").is_none());
        assert!(SeqNo::parse("").is_none());
    }

    #[test]
    fn series_id_ignores_label_order_and_separates_series() {
        let a = SeriesMeta {
            source: "s".into(),
            name: "n".into(),
            labels: [("a".into(), "1".into()), ("b".into(), "2".into())].into(),
        };
        let b = SeriesMeta {
            source: "s".into(),
            name: "n".into(),
            labels: [("b".into(), "2".into()), ("a".into(), "1".into())].into(),
        };
        assert_eq!(a.id(), b.id());
        let c = SeriesMeta { name: "m".into(), ..a.clone() };
        assert_ne!(a.id(), c.id());
        assert_eq!(minute_of(-1), -60);
    }
}
