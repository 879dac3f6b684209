//! The telemetry consumer's use case: one Kinesis batch of one shard, decoded once, folded into
//! per-minute aggregates ([`crate::aggregate`]) and shown to the detector ([`crate::detection`])
//! side by side; each keeps its own watermarks, so a retry redoes only what did not happen.
//!
//! A record that cannot be decoded (poison) is set aside in the dead-letter store and does not
//! block the records after it; only a failure that a retry could fix (a write that did not
//! happen) is reported back, from the earliest record it affects.

use std::collections::{BTreeMap, BTreeSet, HashSet};

use naksha_contracts::signing::sha256_hex;
use naksha_contracts::telemetry::SeriesMeta;
use naksha_core::metrics::CounterStore;
use serde::Serialize;

use crate::aggregate::{AggKey, Contribution, Group, fold_groups};
use crate::dedup::{Window, bucket_of, buckets, parse_request};
use crate::detection::SeriesWatch;
use crate::event::{RECORD_VERSION, StreamRecord};
use crate::ports::{AggregateStore, CommitError, DeadLetterStore, PoisonRecord};
use crate::series::{BatchSeries, InRecord, Sample, SeqNo, SeriesInput, SeriesKey, minute_of};

/// What happened to a batch.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
pub struct BatchReport {
    /// Sequence number to report in `batchItemFailures` (Lambda retries from there).
    pub failed_from: Option<String>,
    pub records: usize,
    /// Events the batch's records carried (a record packs one or more; poison ones not counted).
    pub events: usize,
    pub applied_records: usize,
    pub applied_samples: usize,
    pub duplicate_samples: usize,
    /// Events that were copies of one already counted on this shard (an event put twice).
    pub duplicate_records: usize,
    /// Requests the dedup window forgot before their horizon, to stay within its bound.
    pub dedup_evicted: usize,
    pub writes: usize,
    pub poison: usize,
    pub new_poison: usize,
    /// Minutes the detector scored, signals it raised, and series-state writes it made.
    pub scored_minutes: usize,
    pub signals: usize,
    pub detector_writes: usize,
}

fn now_secs() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64)
}

/// Write the bucket's window; when another invocation wrote it since it was read, merge the two
/// and try again (a few times: two invocations of one shard only overlap after a timeout).
async fn save_window<S: AggregateStore>(
    store: &S,
    shard: &str,
    bucket: u32,
    mut window: Window,
    mut version: u64,
) -> Result<(), String> {
    for _ in 0..4 {
        match store.save_window(shard, bucket, &window, version).await {
            Ok(()) => return Ok(()),
            Err(CommitError::Conflict) => {
                let loaded = store.load_windows(shard, &[bucket]).await.map_err(|e| e.to_string())?;
                let (mut theirs, v) = loaded.into_iter().next().map_or((Window::default(), 0), |(_, w, v)| (w, v));
                theirs.merge(&window);
                window = theirs;
                version = v;
            }
            Err(e) => return Err(e.to_string()),
        }
    }
    Err("the window kept changing under this invocation".into())
}

/// Decode one stream record into the events it carries (ingest packs a request's events of one
/// partition key into a record, one JSON line each: [`crate::ingest::PACK_BYTES`]). All or
/// nothing: when any line is not an event, the whole record is poison and none of it is counted.
/// The error is the reason; it names what is wrong and where, never the text it found there (a
/// record not written by our ingest may hold anything, PII included, and serde quotes what it
/// did not expect).
pub fn decode(data: &[u8]) -> Result<Vec<StreamRecord>, String> {
    let lines = data.split(|b| *b == b'\n').count();
    let mut events = Vec::with_capacity(lines);
    for (n, line) in data.split(|b| *b == b'\n').enumerate() {
        match decode_line(line) {
            Ok(event) => events.push(event),
            Err(why) if lines == 1 => return Err(why),
            Err(why) => return Err(format!("event {} of {lines}: {why}", n + 1)),
        }
    }
    Ok(events)
}

/// One event (one line of a record).
fn decode_line(data: &[u8]) -> Result<StreamRecord, String> {
    let record: StreamRecord = serde_json::from_slice(data).map_err(|e| {
        let what = match e.classify() {
            serde_json::error::Category::Io => "unreadable",
            serde_json::error::Category::Syntax => "not valid JSON",
            serde_json::error::Category::Eof => "truncated JSON",
            serde_json::error::Category::Data => "JSON not shaped as a telemetry record",
        };
        format!("not a telemetry record: {what} (line {}, column {})", e.line(), e.column())
    })?;
    if record.v != RECORD_VERSION {
        return Err(format!("unsupported record version {}", record.v));
    }
    if record.samples.iter().any(|(_, v)| !v.is_finite()) {
        return Err("record has a non-finite sample".into());
    }
    Ok(record)
}

/// The consumer, generic over its stores. `W` watches each batch's series (the D.3 detector);
/// `()` watches nothing.
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

    pub fn dead_letters(&self) -> &D {
        &self.dead
    }

    pub fn counters(&self) -> &C {
        &self.counters
    }

    /// Fold one shard's batch. Never fails as a whole: what could not be done is reported
    /// through `failed_from`.
    pub async fn process(&self, shard: &str, records: &[InRecord<'_>]) -> BatchReport {
        let mut report = BatchReport { records: records.len(), ..Default::default() };
        // Which (request, index) pairs this shard has counted over the horizon: a second copy of
        // one is skipped. New pairs go into the current bucket's window.
        let now = u32::try_from(now_secs()).unwrap_or(u32::MAX);
        let bucket = bucket_of(now);
        let (seen, mut window, window_version) = match self.store.load_windows(shard, &buckets(now)).await {
            Ok(loaded) => {
                let mut seen = Window::default();
                let mut current = (Window::default(), 0);
                for (b, w, version) in loaded {
                    seen.merge(&w);
                    if b == bucket {
                        current = (w, version);
                    }
                }
                (seen, current.0, current.1)
            }
            Err(e) => {
                tracing::warn!(shard, error = %e, "could not read the dedup window; the batch will be retried");
                report.failed_from = records.first().map(|r| r.seq.to_owned());
                return report;
            }
        };
        let mut in_batch: HashSet<(u64, u16)> = HashSet::new();
        let mut keyed: Vec<(usize, u64, u16)> = Vec::new();
        let mut poison = Vec::new();
        let mut poison_index = Vec::new();
        let mut groups: BTreeMap<AggKey, Group> = BTreeMap::new();
        let mut series: BatchSeries = BTreeMap::new();
        for (i, r) in records.iter().enumerate() {
            let decoded = SeqNo::parse(r.seq)
                .ok_or_else(|| "sequence number is not decimal".to_owned())
                .and_then(|seq| decode(r.data).map(|events| (seq, events)));
            let (seq, events) = match decoded {
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
            report.events += events.len();
            for rec in events {
                if let Some((rq, ix)) = rec.rq.as_deref().and_then(parse_request).zip(rec.ix) {
                    keyed.push((i, rq, ix));
                    if seen.seen(rq, ix) || !in_batch.insert((rq, ix)) {
                        report.duplicate_records += 1;
                        continue;
                    }
                }
                let minute = minute_of(rec.ts);
                let trace: Option<std::sync::Arc<str>> = rec.tp.as_deref().map(std::sync::Arc::from);
                for (name, value) in rec.samples {
                    let meta = SeriesMeta { source: rec.source.clone(), name, labels: rec.labels.clone() };
                    let key = AggKey { tenant: rec.tenant.clone(), series_id: meta.id(), minute };
                    series
                        .entry(SeriesKey { tenant: key.tenant.clone(), series_id: key.series_id.clone() })
                        .or_insert_with(|| SeriesInput { meta: meta.clone(), samples: Vec::new() })
                        .samples
                        .push(Sample { record: i, seq: seq.clone(), minute, value, trace: trace.clone() });
                    groups
                        .entry(key)
                        .or_insert_with(|| Group { meta, contributions: Vec::new() })
                        .contributions
                        .push(Contribution { record: i, seq: seq.clone(), value, ts: rec.ts });
                }
            }
        }
        let (watched, folded) =
            futures::join!(self.watch.observe(shard, &series), fold_groups(&self.store, shard, &groups));
        // Local only (`make load`): die after the aggregates are written, before answering.
        naksha_core::crash::point("telemetry-consumer", "the telemetry consumer");
        let mut failed: BTreeSet<usize> = folded.failed;
        failed.extend(watched.failed.iter().copied());
        // Records the store refused to hold: dead letters (once per record), never a retry.
        let refused: BTreeMap<usize, String> = watched.rejected.iter().cloned().chain(folded.rejected).collect();
        for (i, reason) in refused {
            let r = &records[i];
            poison.push(PoisonRecord {
                shard: shard.to_owned(),
                seq: r.seq.to_owned(),
                reason,
                size: r.data.len(),
                sha256: sha256_hex(r.data),
            });
            poison_index.push(i);
        }
        report.poison = poison.len();
        report.writes = folded.writes;
        report.applied_samples = folded.applied_samples;
        report.duplicate_samples = folded.duplicate_samples;
        report.applied_records = folded.applied_records.len();
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

        // Remember what this batch counted, up to its first failure (what follows comes again).
        let upto = failed.first().copied().unwrap_or(records.len());
        let mut learned = false;
        for &(_, rq, ix) in keyed.iter().filter(|(i, ..)| *i < upto) {
            if !seen.seen(rq, ix) && !window.seen(rq, ix) {
                window.insert(rq, ix, now);
                learned = true;
            }
        }
        if learned {
            window.prune(now);
            report.dedup_evicted = window.evicted_early;
            if report.dedup_evicted > 0 {
                tracing::warn!(
                    shard,
                    evicted = report.dedup_evicted,
                    "the dedup window is full; the oldest requests were forgotten early"
                );
            }
            if let Err(e) = save_window(&self.store, shard, bucket, window, window_version).await {
                // The aggregates hold this batch but the window does not: the batch comes again,
                // the watermarks skip what it did, and the window is written then.
                tracing::warn!(shard, error = %e, "could not write the dedup window; the batch will be retried");
                failed.insert(0);
            }
        }
        report.failed_from = failed.first().map(|i| records[*i].seq.to_owned());
        let increments = [
            ("insight_stream_records_total", report.applied_records as u64),
            ("insight_aggregated_samples_total", report.applied_samples as u64),
            ("insight_aggregate_writes_total", report.writes as u64),
            ("insight_poison_records_total", report.new_poison as u64),
            ("insight_duplicate_records_total", report.duplicate_records as u64),
            ("insight_detector_scored_total", report.scored_minutes as u64),
            ("insight_detector_writes_total", report.detector_writes as u64),
            ("insight_consumer_batches_total", 1),
            ("insight_signals_total", report.signals as u64),
        ];
        if let Err(e) = self.counters.add("insight-consumer", &increments).await {
            tracing::warn!(error = %e, "could not update the consumer counters");
        }
        report
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aggregate::Stats;
    use crate::memory::{MemoryAggregates, MemoryDeadLetters};
    use naksha_contracts::TenantId;
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
            tenant: TenantId::from_record(tenant).unwrap(),
            source: source.into(),
            name: None,
            kind: crate::event::Kind::Metric,
            ts,
            samples: vec![(name.into(), value)],
            labels: BTreeMap::new(),
            attrs: Default::default(),
            rq: None,
            ix: None,
            tp: None,
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
        assert_eq!(c.counters().get("insight_aggregated_samples_total"), 4);
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
        assert_eq!(c.counters().get("insight_aggregated_samples_total"), 20);
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
            let letters = c.dead_letters().letters.lock().unwrap();
            assert_eq!(letters.len(), 2);
            assert!(letters.values().all(|l| l.sha256.len() == 64 && !l.reason.is_empty()));
        }
        let again = c.process("s", &batch(&seqs, &datas)).await;
        assert_eq!(again.new_poison, 0);
        assert_eq!(c.counters().get("insight_poison_records_total"), 2);
    }

    #[tokio::test]
    async fn a_write_the_store_refuses_becomes_a_dead_letter_and_the_rest_of_the_batch_lands() {
        let c = consumer();
        let datas = vec![
            rec("acme", "web", "cpu", 1.0, T0),
            rec("other", "db", "tiny", 2.0, T0),
            rec("acme", "web", "cpu", 3.0, T0 + 1),
            rec("other", "db", "tiny", 4.0, T0 + 1),
        ];
        let seqs: Vec<String> = (1..=4).map(|i| i.to_string()).collect();
        *c.store().reject_series.lock().unwrap() = Some("tiny".into());
        let report = c.process("s", &batch(&seqs, &datas)).await;
        assert_eq!(report.failed_from, None, "a refused write is never retried");
        assert_eq!((report.poison, report.new_poison), (2, 2));
        assert_eq!(stats_of(&c), vec![("cpu".into(), T0 / 1000, Stats { count: 2, ..stats_of(&c)[0].2 })]);
        {
            let letters = c.dead_letters().letters.lock().unwrap();
            assert_eq!(letters.len(), 2);
            assert!(letters.values().all(|l| l.reason.contains("refused by the store") && l.sha256.len() == 64));
        }
        // A redelivery refuses the same records again and records no new letter.
        let again = c.process("s", &batch(&seqs, &datas)).await;
        assert_eq!((again.failed_from, again.new_poison), (None, 0));
    }

    #[test]
    fn a_poison_reason_says_what_and_where_but_never_quotes_the_record() {
        let secret = "alice@example.com";
        for data in [
            format!(r#"{{"v":1,"id":"x","tenant":"acme","source":"s","kind":"{secret}","ts":1}}"#),
            format!(r#"{{"v":"{secret}"}}"#),
            format!(r#"{{"{secret}": tru"#),
            format!("{secret} not json"),
        ] {
            let reason = decode(data.as_bytes()).unwrap_err();
            assert!(reason.starts_with("not a telemetry record:") && reason.contains("line 1"), "{reason}");
            assert!(!reason.contains("alice") && !reason.contains("example"), "{reason}");
        }
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
        use crate::memory::{MemorySeries, MemorySignals};
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

    /// A record of request `rq`, the `ix`-th event in it.
    fn put(rq: &str, ix: u16, value: f64) -> Vec<u8> {
        let mut r: StreamRecord = serde_json::from_slice(&rec("acme", "web", "rps", value, T0)).unwrap();
        r.rq = Some(rq.into());
        r.ix = Some(ix);
        serde_json::to_vec(&r).unwrap()
    }

    fn count_of(c: &TestConsumer) -> u64 {
        stats_of(c).iter().map(|s| s.2.count).sum()
    }

    #[tokio::test]
    async fn an_event_put_twice_is_counted_once_in_one_batch_or_the_next() {
        let c = consumer();
        const A: &str = "00000000000000aa";
        // A request of two events, then the SDK's retry of it, in the same batch.
        let datas = vec![put(A, 0, 1.0), put(A, 1, 2.0), put(A, 0, 1.0), put(A, 1, 2.0)];
        let seqs: Vec<String> = (1..=4).map(|i| i.to_string()).collect();
        let report = c.process("shard-0", &batch(&seqs, &datas)).await;
        assert_eq!((report.failed_from.clone(), report.duplicate_records), (None, 2));
        assert_eq!(count_of(&c), 2);
        // A third copy in a later batch, and a new event of another request.
        let datas = vec![put(A, 1, 2.0), put("00000000000000bb", 1, 5.0)];
        let seqs: Vec<String> = (5..=6).map(|i| i.to_string()).collect();
        let report = c.process("shard-0", &batch(&seqs, &datas)).await;
        assert_eq!(report.duplicate_records, 1);
        assert_eq!(count_of(&c), 3, "the other request's event is new");
        // Records without a request (older producers) are never taken for copies.
        let datas = vec![rec("acme", "web", "rps", 1.0, T0 + 1), rec("acme", "web", "rps", 1.0, T0 + 1)];
        let seqs: Vec<String> = (7..=8).map(|i| i.to_string()).collect();
        c.process("shard-0", &batch(&seqs, &datas)).await;
        assert_eq!(count_of(&c), 5);
    }

    #[tokio::test]
    async fn a_window_that_cannot_be_written_fails_the_batch_and_its_retry_counts_once() {
        let c = consumer();
        const A: &str = "00000000000000aa";
        let datas = vec![put(A, 0, 1.0), put(A, 1, 2.0)];
        let seqs: Vec<String> = (1..=2).map(|i| i.to_string()).collect();
        c.store().window_failures.store(1, Ordering::Relaxed);
        let report = c.process("shard-0", &batch(&seqs, &datas)).await;
        assert_eq!(report.failed_from.as_deref(), Some("1"), "retried from the first record");
        assert_eq!(count_of(&c), 2, "the aggregates were written");
        let report = c.process("shard-0", &batch(&seqs, &datas)).await;
        assert_eq!(report.failed_from, None);
        assert_eq!(count_of(&c), 2, "the redelivery changed nothing");
        // Now the window knows them: a copy under new sequence numbers is skipped.
        let seqs: Vec<String> = (3..=4).map(|i| i.to_string()).collect();
        c.process("shard-0", &batch(&seqs, &datas)).await;
        assert_eq!(count_of(&c), 2);
    }

    #[tokio::test]
    async fn windows_are_per_shard_and_a_lost_race_merges() {
        let c = consumer();
        const A: &str = "00000000000000aa";
        let seqs = vec!["1".to_owned()];
        c.process("shard-0", &batch(&seqs, &[put(A, 0, 1.0)])).await;
        // The same pair on another shard is another partition key's event: counted.
        c.process("shard-1", &batch(&seqs, &[put(A, 0, 1.0)])).await;
        assert_eq!(count_of(&c), 2);
        // Another invocation wrote shard-0's window meanwhile: both sides' pairs are kept.
        let bucket = bucket_of(u32::try_from(now_secs()).unwrap());
        let current = |c: &TestConsumer| {
            let loaded = c.store().windows.lock().unwrap().get(&("shard-0".to_owned(), bucket)).cloned().unwrap();
            (Window::decode(&loaded.0).unwrap(), loaded.1)
        };
        let (mut other, v) = current(&c);
        other.insert(0xcc, 7, 1);
        c.store().save_window("shard-0", bucket, &other, v).await.unwrap();
        let mut stale = Window::default();
        stale.insert(0xdd, 0, 2);
        save_window(c.store(), "shard-0", bucket, stale, v).await.unwrap();
        let (w, _) = current(&c);
        assert!(w.seen(0xaa, 0) && w.seen(0xcc, 7) && w.seen(0xdd, 0));
    }

    /// Records as ingest packs them: JSON lines in one record.
    fn packed(lines: &[Vec<u8>]) -> Vec<u8> {
        lines.join(&b'\n')
    }

    #[tokio::test]
    async fn a_packed_record_counts_each_of_its_events_once_and_a_redelivery_none() {
        const A: &str = "00000000000000aa";
        let c = consumer();
        let datas = vec![
            packed(&[put(A, 0, 1.0), put(A, 1, 2.0), put(A, 2, 3.0)]),
            packed(&[put(A, 3, 4.0), rec("acme", "web", "mem", 7.0, T0)]),
        ];
        let seqs: Vec<String> = (1..=2).map(|i| i.to_string()).collect();
        let report = c.process("shard-0", &batch(&seqs, &datas)).await;
        assert_eq!((report.records, report.events, report.applied_samples), (2, 5, 5));
        assert_eq!(count_of(&c), 5);
        let rps = stats_of(&c).into_iter().find(|s| s.0 == "rps").unwrap().2;
        assert_eq!((rps.count, rps.sum), (4, 10.0));
        // Lambda redelivers the batch: the watermark skips both records whole.
        let again = c.process("shard-0", &batch(&seqs, &datas)).await;
        assert_eq!((again.applied_samples, again.failed_from), (0, None));
        // The SDK re-put the first record under a new sequence number: its events are copies.
        let seqs = vec!["3".to_owned()];
        let copy = c.process("shard-0", &batch(&seqs, &datas[..1])).await;
        assert_eq!(copy.duplicate_records, 3);
        assert_eq!(count_of(&c), 5);
    }

    #[tokio::test]
    async fn a_packed_record_with_one_bad_line_is_poison_whole_and_counts_nothing() {
        const A: &str = "00000000000000aa";
        let c = consumer();
        let datas = vec![
            packed(&[put(A, 0, 1.0), b"{\"v\":1}".to_vec(), put(A, 2, 3.0)]),
            packed(&[put(A, 3, 4.0), Vec::new()]),
            put(A, 4, 5.0),
        ];
        let seqs: Vec<String> = (1..=3).map(|i| i.to_string()).collect();
        let report = c.process("shard-0", &batch(&seqs, &datas)).await;
        assert_eq!((report.poison, report.failed_from.clone()), (2, None));
        assert_eq!(count_of(&c), 1, "only the good record's event is counted");
        let letters = c.dead_letters().letters.lock().unwrap();
        let mut reasons: Vec<&str> = letters.values().map(|l| l.reason.as_str()).collect();
        reasons.sort();
        assert!(reasons[0].starts_with("event 2 of 2:") && reasons[1].starts_with("event 2 of 3:"), "{reasons:?}");
        assert!(decode(b"").is_err() && decode(b"\n").is_err());
    }
}
