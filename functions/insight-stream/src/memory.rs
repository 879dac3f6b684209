//! In-memory twins of every port, for unit tests and benchmarks (which count reads and writes).

use crate::dedup::Window;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use naksha_contracts::TenantId;
use naksha_contracts::models::ModelArtifact;
use naksha_contracts::runs::RunMessage;
use naksha_contracts::signing::LocalKey;
use naksha_contracts::telemetry::SeriesMeta;
use naksha_core::models::Model;

use crate::aggregate::{AggKey, AggWrite, Stats, Stored};
use crate::detection::{DEFAULT_MODEL, SeriesState, SignalView, StoredSeries};
use crate::ingest::OutRecord;
use crate::ports::{
    AggregateStore, CommitError, DeadLetterStore, OpenSignals, PoisonRecord, RecordSink, SeriesIndex, SeriesStore,
    SignalSink, SinkError, StoreError,
};
use crate::series::{SeqNo, SeriesKey};

fn poisoned() -> StoreError {
    StoreError("poisoned".into())
}

/// Records put on the stream; `fail` makes every put fail the way the function says.
#[derive(Debug, Default)]
pub struct MemorySink {
    pub puts: Mutex<Vec<Vec<OutRecord>>>,
    pub fail: Option<fn(&[OutRecord]) -> SinkError>,
}

impl RecordSink for MemorySink {
    async fn put(&self, records: &[OutRecord]) -> Result<(), SinkError> {
        if let Some(f) = self.fail {
            return Err(f(records));
        }
        self.puts.lock().map_err(|_| SinkError::Failed("poisoned".into()))?.push(records.to_vec());
        Ok(())
    }
}

/// Dedup windows by (shard, bucket): the encoded window and its version.
pub type StoredWindows = HashMap<(String, u32), (Vec<u8>, u64)>;

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
    /// Refuse (as DynamoDB refuses an invalid write) every commit whose series name equals this.
    pub reject_series: Mutex<Option<String>>,
    /// Pretend the next N commits lost a race.
    pub conflicts: AtomicUsize,
    /// Each shard's and bucket's dedup window (encoded, as stored) and its version.
    pub windows: Mutex<StoredWindows>,
    /// Fail the next N window writes.
    pub window_failures: AtomicUsize,
}

impl AggregateStore for MemoryAggregates {
    async fn load_windows(&self, shard: &str, buckets: &[u32]) -> Result<Vec<(u32, Window, u64)>, StoreError> {
        let windows = self.windows.lock().map_err(|_| poisoned())?;
        let mut out = Vec::new();
        for b in buckets {
            if let Some((bytes, version)) = windows.get(&(shard.to_owned(), *b)) {
                let w = Window::decode(bytes).ok_or_else(|| StoreError("undecodable window".into()))?;
                out.push((*b, w, *version));
            }
        }
        Ok(out)
    }

    async fn save_window(
        &self,
        shard: &str,
        bucket: u32,
        window: &Window,
        expected_version: u64,
    ) -> Result<(), CommitError> {
        if self.window_failures.load(Ordering::Relaxed) > 0 {
            self.window_failures.fetch_sub(1, Ordering::Relaxed);
            return Err(CommitError::Failed("injected window failure".into()));
        }
        let mut windows = self.windows.lock().map_err(|_| CommitError::Failed("poisoned".into()))?;
        let key = (shard.to_owned(), bucket);
        let version = windows.get(&key).map_or(0, |w| w.1);
        if version != expected_version {
            return Err(CommitError::Conflict);
        }
        windows.insert(key, (window.encode(), version + 1));
        Ok(())
    }

    async fn load(&self, shard: &str, keys: &[AggKey]) -> Result<HashMap<AggKey, Stored>, StoreError> {
        self.reads.fetch_add(keys.len().div_ceil(100), Ordering::Relaxed);
        let items = self.items.lock().map_err(|_| poisoned())?;
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
        let reject = self.reject_series.lock().map(|f| f.clone()).unwrap_or(None);
        if reject.as_deref() == Some(w.meta.name.as_str()) {
            return Err(CommitError::Rejected("ValidationException: injected".into()));
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
        let mut all = self.letters.lock().map_err(|_| poisoned())?;
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

/// A stored series: state, version, watermark per shard.
pub type SeriesItem = (SeriesState, u64, HashMap<String, SeqNo>);

#[derive(Debug, Default)]
pub struct MemorySeries {
    pub items: Mutex<HashMap<SeriesKey, SeriesItem>>,
}

impl SeriesIndex for MemorySeries {
    async fn known(&self, tenant: &TenantId, series_ids: &[String]) -> Result<HashSet<String>, StoreError> {
        let items = self.items.lock().map_err(|_| poisoned())?;
        Ok(series_ids
            .iter()
            .filter(|id| items.contains_key(&SeriesKey { tenant: tenant.clone(), series_id: (*id).clone() }))
            .cloned()
            .collect())
    }
}

impl SeriesStore for MemorySeries {
    async fn load(&self, shard: &str, keys: &[SeriesKey]) -> Result<HashMap<SeriesKey, StoredSeries>, StoreError> {
        let items = self.items.lock().map_err(|_| poisoned())?;
        Ok(keys
            .iter()
            .filter_map(|k| {
                items.get(k).map(|(s, v, w)| {
                    (k.clone(), StoredSeries { state: s.clone(), version: *v, watermark: w.get(shard).cloned() })
                })
            })
            .collect())
    }

    async fn commit(
        &self,
        shard: &str,
        key: &SeriesKey,
        _: &SeriesMeta,
        state: &SeriesState,
        expected: u64,
        wm: &SeqNo,
    ) -> Result<(), CommitError> {
        let mut items = self.items.lock().map_err(|_| CommitError::Failed("poisoned".into()))?;
        let version = items.get(key).map_or(0, |i| i.1);
        if version != expected {
            return Err(CommitError::Conflict);
        }
        let mut wms = items.get(key).map(|i| i.2.clone()).unwrap_or_default();
        wms.insert(shard.to_owned(), wm.clone());
        items.insert(key.clone(), (state.clone(), version + 1, wms));
        Ok(())
    }

    async fn mark_sent(&self, key: &SeriesKey, run_id: &str) -> Result<(), StoreError> {
        let mut items = self.items.lock().map_err(|_| poisoned())?;
        if let Some(open) =
            items.get_mut(key).and_then(|(state, _, _)| state.open_signal.as_mut()).filter(|o| o.run_id == run_id)
        {
            open.sent = true;
        }
        Ok(())
    }
}

impl OpenSignals for MemorySeries {
    async fn open_signals(&self, tenant: &TenantId, limit: usize) -> Result<Vec<SignalView>, StoreError> {
        let items = self.items.lock().map_err(|_| poisoned())?;
        let mut out: Vec<SignalView> = items
            .iter()
            .filter(|(k, _)| k.tenant == *tenant)
            .filter_map(|(k, (state, _, _))| {
                let open = state.open_signal.as_ref()?;
                Some(SignalView {
                    series_id: k.series_id.clone(),
                    source: String::new(),
                    name: String::new(),
                    labels: BTreeMap::new(),
                    run_id: open.run_id.clone(),
                    minute: open.minute,
                    score: open.score,
                    model_id: state.model_id.clone().unwrap_or_else(|| DEFAULT_MODEL.to_owned()),
                    current_score: state.last_score,
                })
            })
            .collect();
        out.sort_by_key(|s| std::cmp::Reverse(s.minute));
        out.truncate(limit);
        Ok(out)
    }
}

#[derive(Debug, Default)]
pub struct MemorySignals {
    pub sent: Mutex<Vec<(RunMessage, String)>>,
    pub fail: AtomicBool,
}

impl SignalSink for MemorySignals {
    async fn send(&self, message: &RunMessage, resource: &str) -> Result<(), StoreError> {
        if self.fail.load(Ordering::Relaxed) {
            return Err(StoreError("stream unavailable".into()));
        }
        self.sent.lock().map_err(|_| poisoned())?.push((message.clone(), resource.to_owned()));
        Ok(())
    }
}

/// A model signed by a throwaway key and verified, as the champion cache would hand it out.
pub fn verified_model(artifact: ModelArtifact) -> Result<Model, String> {
    use naksha_contracts::models::StoredModel;
    let key = LocalKey::generate("test-model-key").map_err(|e| e.to_string())?;
    let (doc, manifest, bytes) = StoredModel::prepare(&artifact).map_err(|e| e.to_string())?;
    let signature = key.sign(&bytes).map_err(|e| e.to_string())?;
    let stored = StoredModel::assemble(doc, manifest, &bytes, signature);
    Ok(std::sync::Arc::new(stored.verify(&key.trusted()).map_err(|e| e.to_string())?))
}
