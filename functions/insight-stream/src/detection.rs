//! D.3: the streaming detector in the consumer path.
//!
//! Each series (tenant, source, name, labels) has a small state in DynamoDB: the detector's
//! state, the minute being filled, and at most one open signal. A batch's samples are folded in
//! sequence order; a minute is scored when a sample for a later minute arrives (a minute is
//! closed once the series has moved on), so each minute is scored once, with its final mean.
//! At a score ≥ 0.5 a series without an open signal opens one and starts an agent run through
//! the runs stream; the signal closes after `CLOSE_AFTER` calm minutes. The state is written
//! once per batch, conditionally on the version read, with the shard's sequence watermark: a
//! redelivered batch feeds nothing twice and raises nothing twice.
//!
//! A series of warnings (Kubernetes Warning events, firing alerts: [`crate::warnings`]) skips the
//! detector: its first warning opens a signal, and a warning after a quiet spell a new one.

use std::collections::BTreeMap;

use futures::StreamExt;
use naksha_contracts::TenantId;
use naksha_contracts::runs::{RunMessage, RunStart};
use naksha_contracts::telemetry::SeriesMeta;
use naksha_detector::detector::{Params, State};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::ports::{CommitError, ModelSource, SeriesStore, SignalSink};
use crate::series::{BatchSeries, Sample, SeqNo, SeriesKey};

/// Calm minutes after which an open signal closes.
pub const CLOSE_AFTER: u32 = 15;
/// A minute is calm when its score is below this. (Right after an alarm the detector holds
/// scores just under 0.5, so "below 0.5" would close every signal at once.)
pub const CALM_BELOW: f64 = 0.25;
/// The model used when no trained model applies.
pub const DEFAULT_MODEL: &str = "default";

/// The minute being filled.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Pending {
    pub minute: i64,
    pub count: u64,
    pub sum: f64,
    /// The trace of the minute's first sample that had one (P-4): a signal it raises carries it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trace: Option<String>,
}

/// A raised signal, open until the series is calm again.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OpenSignal {
    pub run_id: String,
    pub minute: i64,
    pub score: f64,
    /// Whether the run message has been put on the runs stream.
    pub sent: bool,
    pub calm: u32,
    /// The `traceparent` of the telemetry that raised it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trace: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SeriesState {
    pub detector: State,
    pub pending: Option<Pending>,
    pub open_signal: Option<OpenSignal>,
    pub last_score: f64,
    pub model_id: Option<String>,
    /// The latest minute of a warning series (warnings skip the detector).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_warning: Option<i64>,
}

/// A series' state as stored, with this shard's watermark.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredSeries {
    pub state: SeriesState,
    pub version: u64,
    pub watermark: Option<SeqNo>,
}

/// The signal name for a series: `anomaly.<name>` in the characters WPK signals allow.
pub fn signal_name(name: &str) -> String {
    let cleaned: String = name
        .chars()
        .map(|c| {
            let c = c.to_ascii_lowercase();
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':') { c } else { '_' }
        })
        .take(100)
        .collect();
    format!("anomaly.{cleaned}")
}

/// Fold fresh samples into the state; returns how many minutes were scored. Pure.
pub fn fold(
    state: &mut SeriesState,
    params: &Params,
    samples: &[&Sample],
    new_run_id: &mut dyn FnMut() -> String,
) -> usize {
    let mut scored = 0;
    let pending =
        |s: &Sample| Pending { minute: s.minute, count: 1, sum: s.value, trace: s.trace.as_deref().map(str::to_owned) };
    for s in samples {
        match state.pending.as_mut() {
            None => state.pending = Some(pending(s)),
            Some(p) if s.minute == p.minute => {
                p.count += 1;
                p.sum += s.value;
                if p.trace.is_none() {
                    p.trace = s.trace.as_deref().map(str::to_owned);
                }
            }
            Some(p) if s.minute > p.minute => {
                let (minute, mean, trace) = (p.minute, p.sum / p.count as f64, p.trace.take());
                state.pending = Some(pending(s));
                let score = state.detector.update(params, minute, mean);
                state.last_score = score;
                scored += 1;
                on_score(state, minute, score, trace, new_run_id);
            }
            // A late sample of a minute already scored: the aggregate has it; the detector does not.
            Some(_) => {}
        }
    }
    scored
}

/// Fold fresh warnings into the state: the first opens a signal, and so does one after
/// [`crate::warnings::QUIET_MINUTES`] without any (once the previous signal went out). Pure.
pub fn fold_warnings(state: &mut SeriesState, samples: &[&Sample], new_run_id: &mut dyn FnMut() -> String) {
    for s in samples {
        let quiet_since = state.last_warning.is_none_or(|last| s.minute - last >= crate::warnings::QUIET_MINUTES * 60);
        let new_incident = match &state.open_signal {
            None => true,
            Some(open) => open.sent && quiet_since,
        };
        if new_incident {
            state.open_signal = Some(OpenSignal {
                run_id: new_run_id(),
                minute: s.minute,
                score: 1.0,
                sent: false,
                calm: 0,
                trace: s.trace.as_deref().map(str::to_owned),
            });
        }
        state.last_warning = Some(state.last_warning.map_or(s.minute, |l| l.max(s.minute)));
        state.last_score = 1.0;
    }
}

fn on_score(
    state: &mut SeriesState,
    minute: i64,
    score: f64,
    trace: Option<String>,
    new_run_id: &mut dyn FnMut() -> String,
) {
    match state.open_signal.as_mut() {
        Some(open) if score >= CALM_BELOW => open.calm = 0,
        Some(open) => {
            open.calm += 1;
            // A signal is never dropped before its run message went out.
            if open.calm >= CLOSE_AFTER && open.sent {
                state.open_signal = None;
            }
        }
        None if score >= 0.5 => {
            state.open_signal = Some(OpenSignal { run_id: new_run_id(), minute, score, sent: false, calm: 0, trace });
        }
        None => {}
    }
}

/// The run message of an open signal.
pub fn signal_message(
    tenant: &TenantId,
    meta: &SeriesMeta,
    series_id: &str,
    open: &OpenSignal,
    model_id: &str,
    averaging_minutes: i64,
) -> RunMessage {
    let window_from = open.minute - 60 * averaging_minutes;
    let (signal, requested_by, model_id) = match crate::warnings::signal_for(meta) {
        Some(signal) => (signal, "cluster-warning", "none"),
        None => (signal_name(&meta.name), "detector", model_id),
    };
    RunMessage {
        tenant: tenant.clone(),
        run_id: open.run_id.clone(),
        attempt: 0,
        start: Some(RunStart {
            signal,
            resource: meta.source.clone(),
            requested_by: requested_by.into(),
            trace: open.trace.clone(),
            telemetry: Some(json!({
                "signal": {
                    "series": {"id": series_id, "source": meta.source, "name": meta.name, "labels": meta.labels},
                    "score": open.score,
                    "window": {"from": window_from, "to": open.minute + 60},
                    "model_id": model_id,
                    "raised_at": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
                }
            })),
        }),
    }
}

/// An open signal as `GET /signals` shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SignalView {
    pub series_id: String,
    pub source: String,
    pub name: String,
    pub labels: BTreeMap<String, String>,
    /// The agent run the signal started.
    pub run_id: String,
    /// Start of the minute that raised it (epoch seconds).
    pub minute: i64,
    pub score: f64,
    pub model_id: String,
    /// The series' latest score.
    pub current_score: f64,
}

/// What detection did with a batch.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct WatchReport {
    /// Records to retry from (their series' state could not be written or its signal sent).
    pub failed: Vec<usize>,
    /// Records whose series state the store refused as invalid (dead letters), with the reason.
    pub rejected: Vec<(usize, String)>,
    pub scored: usize,
    pub raised: usize,
    pub writes: usize,
}

/// Something that watches series as the consumer folds them. `()` watches nothing.
pub trait SeriesWatch: Send + Sync {
    fn observe(&self, shard: &str, series: &BatchSeries) -> impl std::future::Future<Output = WatchReport> + Send;
}

impl SeriesWatch for () {
    async fn observe(&self, _: &str, _: &BatchSeries) -> WatchReport {
        WatchReport::default()
    }
}

/// The detector wired to a series store, a signal sink and a model source.
#[derive(Debug)]
pub struct Detection<SS, SK, M = ()> {
    pub store: SS,
    pub sink: SK,
    pub params: Params,
    pub models: M,
}

enum Outcome {
    Done {
        scored: usize,
        raised: bool,
        writes: usize,
    },
    /// The first record to retry from, and the minutes scored (and committed) before it failed.
    Failed(usize, usize),
    /// The store refused the state write as invalid: these records, and why.
    Rejected(Vec<usize>, String),
}

impl<SS: SeriesStore, SK: SignalSink, M: ModelSource> Detection<SS, SK, M> {
    async fn one(
        &self,
        shard: &str,
        key: &SeriesKey,
        input: &crate::series::SeriesInput,
        loaded: Option<&StoredSeries>,
    ) -> Outcome {
        let first = input.samples.first().map_or(0, |s| s.record);
        let model = self.models.champion(&key.tenant).await;
        let params = model.as_ref().map_or_else(|| self.params.clone(), |m| m.params_for(&key.series_id));
        let mut current = loaded.cloned();
        for _ in 0..4 {
            let mut state = current.as_ref().map(|c| c.state.clone()).unwrap_or_default();
            state.model_id = model.as_ref().map(|m| m.model_id.clone());
            let watermark = current.as_ref().and_then(|c| c.watermark.clone());
            let fresh: Vec<&Sample> =
                input.samples.iter().filter(|s| watermark.as_ref().is_none_or(|w| s.seq > *w)).collect();
            let mut new_run_id = || uuid::Uuid::now_v7().to_string();
            let scored = if crate::warnings::signal_for(&input.meta).is_some() {
                fold_warnings(&mut state, &fresh, &mut new_run_id);
                0
            } else {
                fold(&mut state, &params, &fresh, &mut new_run_id)
            };
            let mut writes = 0;
            if let Some(last) = fresh.last() {
                match self
                    .store
                    .commit(shard, key, &input.meta, &state, current.as_ref().map_or(0, |c| c.version), &last.seq)
                    .await
                {
                    Ok(()) => writes += 1,
                    Err(CommitError::Conflict) => match self.store.load(shard, std::slice::from_ref(key)).await {
                        Ok(mut reread) => {
                            current = reread.remove(key);
                            continue;
                        }
                        Err(_) => return Outcome::Failed(first, 0),
                    },
                    Err(CommitError::Rejected(e)) => {
                        tracing::warn!(error = %e, series = %key.series_id, "series state write refused; its records become dead letters");
                        let reason = format!(
                            "the detector state of series {} was refused by the store as invalid",
                            key.series_id
                        );
                        return Outcome::Rejected(fresh.iter().map(|s| s.record).collect(), reason);
                    }
                    Err(CommitError::Failed(e)) => {
                        tracing::warn!(error = %e, "series state write failed");
                        return Outcome::Failed(first, 0);
                    }
                }
            }
            // Send an open signal that has not been sent (new now, or left unsent by a failure).
            let mut raised = false;
            if let Some(open) = state.open_signal.as_ref().filter(|o| !o.sent) {
                let model = state.model_id.as_deref().unwrap_or(DEFAULT_MODEL);
                let msg = signal_message(
                    &key.tenant,
                    &input.meta,
                    &key.series_id,
                    open,
                    model,
                    params.averaging_span_minutes(),
                );
                if let Err(e) = self.sink.send(&msg, &input.meta.source).await {
                    tracing::warn!(error = %e, "signal could not be sent; the batch will be retried");
                    return Outcome::Failed(first, scored);
                }
                if self.store.mark_sent(key, &open.run_id).await.is_err() {
                    return Outcome::Failed(first, scored);
                }
                writes += 1;
                raised = true;
                let trace_id = open.trace.as_deref().and_then(naksha_contracts::trace::trace_id_of).unwrap_or_default();
                tracing::info!(tenant = %key.tenant, series = %key.series_id, run_id = %open.run_id, score = open.score, signal = %msg.start.as_ref().map_or("", |s| s.signal.as_str()), trace_id = %trace_id, "signal raised");
                let signal = msg.start.as_ref().map_or("", |s| s.signal.as_str());
                naksha_core::xray::subsegment(
                    "signal",
                    std::time::SystemTime::now(),
                    &[("naksha_trace_id", &trace_id), ("run_id", &open.run_id), ("signal", signal)],
                    false,
                );
            }
            return Outcome::Done { scored, raised, writes };
        }
        Outcome::Failed(first, 0)
    }
}

impl<SS: SeriesStore, SK: SignalSink, M: ModelSource> SeriesWatch for Detection<SS, SK, M> {
    async fn observe(&self, shard: &str, series: &BatchSeries) -> WatchReport {
        let mut report = WatchReport::default();
        if series.is_empty() {
            return report;
        }
        let keys: Vec<SeriesKey> = series.keys().cloned().collect();
        let loaded = match self.store.load(shard, &keys).await {
            Ok(l) => l,
            Err(e) => {
                tracing::warn!(error = %e, "could not read series states; retrying the batch");
                report.failed = series.values().filter_map(|s| s.samples.first().map(|x| x.record)).collect();
                return report;
            }
        };
        let work: Vec<_> = series.iter().map(|(key, input)| self.one(shard, key, input, loaded.get(key))).collect();
        let outcomes: Vec<Outcome> = futures::stream::iter(work).buffer_unordered(16).collect().await;
        for o in outcomes {
            match o {
                Outcome::Done { scored, raised, writes } => {
                    report.scored += scored;
                    report.raised += usize::from(raised);
                    report.writes += writes;
                }
                Outcome::Failed(record, scored) => {
                    report.failed.push(record);
                    report.scored += scored;
                }
                Outcome::Rejected(records, reason) => {
                    report.rejected.extend(records.into_iter().map(|r| (r, reason.clone())));
                }
            }
        }
        report
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::memory::{MemorySeries, MemorySignals, verified_model};
    use crate::series::SeriesInput;
    use naksha_contracts::models::ModelArtifact;
    use naksha_core::models::Model;
    use std::sync::atomic::Ordering;

    /// Parameters that judge from the start, so short unit-test series reach an alarm.
    fn quick() -> Params {
        Params { warmup: 30, learning_days: 0.0, seasonal_days: 100.0, ..Params::default() }
    }

    fn meta() -> SeriesMeta {
        SeriesMeta { source: "checkout-api".into(), name: "latency p99".into(), labels: BTreeMap::new() }
    }

    fn key() -> SeriesKey {
        SeriesKey { tenant: acme(), series_id: meta().id() }
    }

    fn acme() -> TenantId {
        TenantId::from_record("acme").unwrap()
    }

    /// Deterministic noise in [-1, 1].
    fn noise(i: i64) -> f64 {
        let x = (i as u64).wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        ((x >> 33) as f64 / (1u64 << 31) as f64) * 2.0 - 1.0
    }

    /// One sample per minute for minutes `from..to`, sequence numbers following the minute.
    fn batch(from: i64, to: i64, value: impl Fn(i64) -> f64) -> BatchSeries {
        let samples = (from..to)
            .enumerate()
            .filter_map(|(i, m)| {
                Some(Sample {
                    record: i,
                    seq: SeqNo::parse(&(1000 + m).to_string())?,
                    minute: m * 60,
                    value: value(m),
                    trace: None,
                })
            })
            .collect();
        BTreeMap::from([(key(), SeriesInput { meta: meta(), samples })])
    }

    fn detection() -> Detection<MemorySeries, MemorySignals> {
        Detection { store: MemorySeries::default(), sink: MemorySignals::default(), params: quick(), models: () }
    }

    fn calm(m: i64) -> f64 {
        100.0 + noise(m)
    }

    fn sample(minute: i64, value: f64) -> Sample {
        Sample { record: 0, seq: SeqNo::parse("1").unwrap_or_else(|| unreachable!()), minute, value, trace: None }
    }

    struct Champion(Model);
    impl ModelSource for Champion {
        async fn champion(&self, tenant: &TenantId) -> Option<Model> {
            (*tenant == self.0.tenant).then(|| Model::clone(&self.0))
        }
    }

    fn model(fit: Option<naksha_contracts::models::SeriesFit>) -> ModelArtifact {
        use naksha_contracts::models::{DetectorModel, Metrics, TrainingWindow};
        ModelArtifact {
            schema: 1,
            model_id: "m-aaaaaaaaaaaaaaaaaaaa".into(),
            tenant: acme(),
            created_at: "now".into(),
            code_version: "test".into(),
            data_digest: "d".into(),
            window: TrainingWindow {
                from_minute: 0,
                to_minute: 1,
                holdout_from_minute: 1,
                series: 1,
                rows: 1,
                outcomes: 0,
            },
            detector: DetectorModel {
                base: quick(),
                series: fit.map(|f| BTreeMap::from([(key().series_id, f)])).unwrap_or_default(),
            },
            remediation: BTreeMap::new(),
            metrics: Metrics::default(),
        }
    }

    #[tokio::test]
    async fn the_champion_model_sets_each_series_parameters_and_names_itself_in_the_signal() {
        let jump = |m: i64| if m < 300 { calm(m) } else { 160.0 + noise(m) };
        // The champion's defaults raise the signal, and the signal names the model.
        let d = Detection {
            store: MemorySeries::default(),
            sink: MemorySignals::default(),
            params: Params { alarm_tail: 1e-300, extreme: 0.0, spatial_tolerance: 0.0, ..quick() },
            models: Champion(verified_model(model(None)).unwrap()),
        };
        d.observe("shard-0", &batch(0, 340, jump)).await;
        let sent = d.sink.sent.lock().unwrap().clone();
        assert_eq!(sent.len(), 1, "the model's parameters were used, not the blind local ones");
        let signal = &sent[0].0.start.as_ref().unwrap().telemetry.as_ref().unwrap()["signal"];
        assert_eq!(signal["model_id"], "m-aaaaaaaaaaaaaaaaaaaa");
        let stored = d.store.load("shard-0", &[key()]).await.unwrap();
        assert_eq!(stored[&key()].state.model_id.as_deref(), Some("m-aaaaaaaaaaaaaaaaaaaa"));

        // A per-series fit that demands absurd evidence silences this series only.
        let mut strict = model(None);
        strict.detector.base.extreme = 0.0;
        strict.detector.base.spatial_tolerance = 0.0;
        strict
            .detector
            .series
            .insert(key().series_id, naksha_contracts::models::SeriesFit { buckets: 0, alarm_tail: 1e-300 });
        let d = Detection {
            store: MemorySeries::default(),
            sink: MemorySignals::default(),
            params: quick(),
            models: Champion(verified_model(strict).unwrap()),
        };
        d.observe("shard-0", &batch(0, 340, jump)).await;
        assert!(d.sink.sent.lock().unwrap().is_empty());
    }

    #[test]
    fn signal_names_use_only_characters_wpks_allow() {
        assert_eq!(signal_name("Latency P99/ms"), "anomaly.latency_p99_ms");
        assert_eq!(signal_name("cpu.util"), "anomaly.cpu.util");
        assert_eq!(signal_name(&"x".repeat(500)).len(), "anomaly.".len() + 100);
    }

    #[test]
    fn a_minute_is_scored_once_with_its_mean_when_the_series_moves_on() {
        let p = quick();
        let mut state = SeriesState::default();
        let mut ids = || "run".to_owned();
        let a = [sample(60, 1.0), sample(60, 3.0)];
        assert_eq!(fold(&mut state, &p, &a.iter().collect::<Vec<_>>(), &mut ids), 0, "minute 60 still open");
        assert_eq!(state.pending, Some(Pending { minute: 60, count: 2, sum: 4.0, trace: None }));
        let b = [sample(120, 5.0), sample(60, 100.0), sample(180, 5.0)];
        assert_eq!(fold(&mut state, &p, &b.iter().collect::<Vec<_>>(), &mut ids), 2);
        assert_eq!(state.detector.seen, 2, "the late sample for minute 60 is not scored again");
        assert_eq!(state.pending, Some(Pending { minute: 180, count: 1, sum: 5.0, trace: None }));
    }

    fn warnings(minutes: &[i64], reason: &str) -> BatchSeries {
        let meta = SeriesMeta {
            source: "deployment/payments".into(),
            name: "k8s_event".into(),
            labels: [("type".to_owned(), "Warning".to_owned()), ("reason".to_owned(), reason.to_owned())].into(),
        };
        let samples = minutes
            .iter()
            .enumerate()
            .filter_map(|(i, m)| {
                Some(Sample {
                    record: i,
                    seq: SeqNo::parse(&(5000 + m).to_string())?,
                    minute: m * 60,
                    value: 1.0,
                    trace: None,
                })
            })
            .collect();
        BTreeMap::from([(key(), SeriesInput { meta, samples })])
    }

    #[tokio::test]
    async fn a_warning_raises_its_signal_at_once_and_repeats_are_one_incident_until_a_quiet_spell() {
        let d = detection();
        // The first BackOff raises `crash_loop` without any learning period; repeats do not.
        let r = d.observe("shard-0", &warnings(&[10, 10, 11, 12], "BackOff")).await;
        assert_eq!((r.raised, r.scored), (1, 0), "{r:?}");
        let r = d.observe("shard-0", &warnings(&[13, 20], "BackOff")).await;
        assert_eq!(r.raised, 0);
        // After a quiet spell a new BackOff is a new incident.
        let r = d.observe("shard-0", &warnings(&[20 + crate::warnings::QUIET_MINUTES + 1], "BackOff")).await;
        assert_eq!(r.raised, 1);
        let sent = d.sink.sent.lock().unwrap().clone();
        assert_eq!(sent.len(), 2);
        let start = sent[0].0.start.as_ref().unwrap();
        assert_eq!(
            (start.signal.as_str(), start.resource.as_str(), start.requested_by.as_str()),
            ("crash_loop", "deployment/payments", "cluster-warning")
        );
        assert_ne!(sent[0].0.run_id, sent[1].0.run_id);
        let stored = d.store.load("shard-0", &[key()]).await.unwrap();
        assert_eq!(
            stored[&key()].state.detector,
            naksha_detector::detector::State::default(),
            "warnings never reach the detector"
        );
    }

    #[tokio::test]
    async fn the_run_carries_the_trace_of_the_telemetry_that_raised_it() {
        let d = detection();
        d.observe("shard-0", &batch(0, 300, calm)).await;
        let tp = |m: i64| format!("00-{:032x}-00f067aa0ba902b7-01", 0xabc0_0000 + m);
        let mut jump = batch(300, 340, |m| 160.0 + noise(m));
        for input in jump.values_mut() {
            for s in &mut input.samples {
                s.trace = Some(tp(s.minute / 60).into());
            }
        }
        let r = d.observe("shard-0", &jump).await;
        assert_eq!(r.raised, 1, "{r:?}");
        let sent = d.sink.sent.lock().unwrap().clone();
        let start = sent[0].0.start.as_ref().unwrap();
        let minute = start.telemetry.as_ref().unwrap()["signal"]["window"]["to"].as_i64().unwrap() - 60;
        assert_eq!(start.trace.as_deref(), Some(tp(minute / 60).as_str()), "the anomalous minute's own trace");
        let stored = d.store.load("shard-0", &[key()]).await.unwrap();
        assert_eq!(stored[&key()].state.open_signal.as_ref().unwrap().trace, start.trace);
    }

    #[tokio::test]
    async fn an_anomaly_raises_one_signal_that_starts_a_run() {
        let d = detection();
        let r = d.observe("shard-0", &batch(0, 300, calm)).await;
        assert_eq!((r.scored, r.raised, r.failed.len()), (299, 0, 0));
        // The series jumps and stays up: one signal, not one per anomalous minute.
        let r = d.observe("shard-0", &batch(300, 340, |m| 160.0 + noise(m))).await;
        assert_eq!(r.raised, 1, "{r:?}");
        let sent = d.sink.sent.lock().unwrap().clone();
        assert_eq!(sent.len(), 1);
        let (msg, resource) = &sent[0];
        assert_eq!(resource, "checkout-api");
        assert_eq!(msg.tenant, acme());
        let start = msg.start.as_ref().unwrap();
        assert_eq!(start.signal, "anomaly.latency_p99");
        assert_eq!(start.resource, "checkout-api");
        let signal = &start.telemetry.as_ref().unwrap()["signal"];
        assert_eq!(signal["series"]["id"], key().series_id);
        assert!(signal["score"].as_f64().unwrap() >= 0.5);
        assert_eq!(signal["model_id"], DEFAULT_MODEL);
        let (from, to) = (signal["window"]["from"].as_i64().unwrap(), signal["window"]["to"].as_i64().unwrap());
        assert!(from < to && (300 * 60..=340 * 60).contains(&(to - 60)), "{signal}");
        let stored = d.store.load("shard-0", &[key()]).await.unwrap();
        let open = stored[&key()].state.open_signal.clone().unwrap();
        assert!(open.sent);
        assert_eq!(open.run_id, msg.run_id);
    }

    #[tokio::test]
    async fn a_redelivered_batch_feeds_nothing_twice_and_raises_nothing_twice() {
        let d = detection();
        d.observe("shard-0", &batch(0, 300, calm)).await;
        let spike = batch(300, 310, |m| 160.0 + noise(m));
        d.observe("shard-0", &spike).await;
        let before = d.store.load("shard-0", &[key()]).await.unwrap()[&key()].clone();
        let again = d.observe("shard-0", &spike).await;
        assert_eq!((again.scored, again.raised, again.writes), (0, 0, 0));
        let after = d.store.load("shard-0", &[key()]).await.unwrap()[&key()].clone();
        assert_eq!(before, after);
        assert_eq!(d.sink.sent.lock().unwrap().len(), 1);
    }

    #[tokio::test]
    async fn a_signal_that_could_not_be_sent_is_retried_and_sent_once() {
        let d = detection();
        d.observe("shard-0", &batch(0, 300, calm)).await;
        d.sink.fail.store(true, Ordering::Relaxed);
        let spike = batch(300, 310, |m| 160.0 + noise(m));
        let r = d.observe("shard-0", &spike).await;
        assert_eq!(r.failed, vec![0], "the batch is retried from the series' first record");
        let stored = d.store.load("shard-0", &[key()]).await.unwrap()[&key()].clone();
        let open = stored.state.open_signal.clone().unwrap();
        assert!(!open.sent, "the signal is kept, unsent");
        // Lambda retries the same records: nothing is folded twice, the signal goes out now.
        d.sink.fail.store(false, Ordering::Relaxed);
        let r = d.observe("shard-0", &spike).await;
        assert_eq!((r.failed.len(), r.scored, r.raised), (0, 0, 1), "{r:?}");
        let sent = d.sink.sent.lock().unwrap().clone();
        assert_eq!(sent.len(), 1);
        assert_eq!(sent[0].0.run_id, open.run_id, "the run id was fixed when the signal opened");
        let r = d.observe("shard-0", &spike).await;
        assert_eq!(r.raised, 0);
        assert_eq!(d.sink.sent.lock().unwrap().len(), 1);
    }

    #[tokio::test]
    async fn a_signal_closes_after_calm_minutes_and_a_later_incident_opens_a_new_one() {
        let d = detection();
        d.observe("shard-0", &batch(0, 300, calm)).await;
        d.observe("shard-0", &batch(300, 305, |m| 400.0 + noise(m))).await;
        // The next incident comes after the detector's refractory period (one incident, one
        // signal), 15 hours later.
        d.observe("shard-0", &batch(305, 1200, calm)).await;
        let stored = d.store.load("shard-0", &[key()]).await.unwrap()[&key()].clone();
        assert!(stored.state.open_signal.is_none(), "closed after {CLOSE_AFTER} calm minutes");
        d.observe("shard-0", &batch(1200, 1205, |m| 400.0 + noise(m))).await;
        let sent = d.sink.sent.lock().unwrap().clone();
        assert_eq!(sent.len(), 2, "a second incident, a second run");
        assert_ne!(sent[0].0.run_id, sent[1].0.run_id);
    }

    #[tokio::test]
    async fn a_failed_state_read_retries_the_whole_batch_and_a_lost_race_is_reread() {
        let d = detection();
        d.observe("shard-0", &batch(0, 100, calm)).await;
        // Another delivery wrote in between (a different shard): the version moved on.
        d.observe("shard-1", &batch(100, 101, calm)).await;
        let stale = d.store.load("shard-0", &[key()]).await.unwrap();
        let mut bumped = stale[&key()].clone();
        bumped.version -= 1;
        let r = d.one("shard-0", &key(), &batch(101, 120, calm)[&key()], Some(&bumped)).await;
        assert!(matches!(r, Outcome::Done { scored: 19, .. }), "the conflict is re-read and retried");
    }
}
