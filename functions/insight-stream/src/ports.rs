//! What insight-stream needs from the outside world, as narrow traits: DynamoDB and Kinesis
//! implement them in production (`store`), memory in unit tests (`memory`).

use crate::dedup::Window;
use std::collections::HashMap;
use std::future::Future;

use naksha_contracts::TenantId;
use naksha_contracts::runs::RunMessage;
use naksha_contracts::telemetry::SeriesMeta;
use naksha_core::models::Model;

use crate::aggregate::{AggKey, AggWrite, Stored};
use crate::detection::{SeriesState, SignalView, StoredSeries};
use crate::ingest::OutRecord;
use crate::series::{SeqNo, SeriesKey};

/// A table or stream could not be read or written; a retry may succeed.
pub use naksha_core::StoreError;

/// Why a conditional write did not happen.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CommitError {
    #[error("the item changed since it was read")]
    Conflict,
    /// DynamoDB refused the write itself (e.g. a number it cannot store): a retry fails the same
    /// way, so the records behind it become dead letters instead of failing their batch forever.
    #[error("refused by the store: {0}")]
    Rejected(String),
    #[error("{0}")]
    Failed(String),
}

/// Why records did not reach the stream.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SinkError {
    /// Some records were written, these were not (after retries).
    #[error("{} record(s) were not written: {cause}", failed_records.len())]
    Partial {
        /// Positions, in the slice given to [`RecordSink::put`], of the records not written.
        failed_records: Vec<usize>,
        cause: String,
    },
    /// Nothing was written.
    #[error("no record was written: {0}")]
    Failed(String),
}

/// Where accepted events go (Kinesis `naksha.telemetry`).
pub trait RecordSink: Send + Sync {
    /// Write all records in one request, retrying the ones the stream refused.
    fn put(&self, records: &[OutRecord]) -> impl Future<Output = Result<(), SinkError>> + Send;
}

/// Where per-minute aggregates live.
pub trait AggregateStore: Send + Sync {
    /// Read the aggregates that exist among `keys`, with `shard`'s watermark.
    fn load(
        &self,
        shard: &str,
        keys: &[AggKey],
    ) -> impl Future<Output = Result<HashMap<AggKey, Stored>, StoreError>> + Send;
    /// Write one aggregate if its version is still `expected_version`.
    fn commit(&self, write: &AggWrite) -> impl Future<Output = Result<(), CommitError>> + Send;
    /// The shard's windows of counted `(request, index)` pairs for these buckets, each with its
    /// version (a bucket never written is absent).
    fn load_windows(
        &self,
        shard: &str,
        buckets: &[u32],
    ) -> impl Future<Output = Result<Vec<(u32, Window, u64)>, StoreError>> + Send;
    /// Write the shard's window of one bucket if its version is still `expected_version` (0: new).
    fn save_window(
        &self,
        shard: &str,
        bucket: u32,
        window: &Window,
        expected_version: u64,
    ) -> impl Future<Output = Result<(), CommitError>> + Send;
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

/// Where each series' detector state lives.
pub trait SeriesStore: Send + Sync {
    fn load(
        &self,
        shard: &str,
        keys: &[SeriesKey],
    ) -> impl Future<Output = Result<HashMap<SeriesKey, StoredSeries>, StoreError>> + Send;
    /// Write the state if its version is still `expected_version` (0: must not exist).
    fn commit(
        &self,
        shard: &str,
        key: &SeriesKey,
        meta: &SeriesMeta,
        state: &SeriesState,
        expected_version: u64,
        watermark: &SeqNo,
    ) -> impl Future<Output = Result<(), CommitError>> + Send;
    /// Record that the open signal `run_id` was sent.
    fn mark_sent(&self, key: &SeriesKey, run_id: &str) -> impl Future<Output = Result<(), StoreError>> + Send;
}

/// The open signals of a tenant, newest first (`GET /signals`).
pub trait OpenSignals: Send + Sync {
    fn open_signals(
        &self,
        tenant: &TenantId,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<SignalView>, StoreError>> + Send;
}

/// Which series exist already (ingest asks, to count only new ones against the tenant's limits).
pub trait SeriesIndex: Send + Sync {
    /// The ids among `series_ids` that `tenant` has already.
    fn known(
        &self,
        tenant: &TenantId,
        series_ids: &[String],
    ) -> impl Future<Output = Result<std::collections::HashSet<String>, StoreError>> + Send;
}

/// Where signals go: the agent's runs stream.
pub trait SignalSink: Send + Sync {
    fn send(&self, message: &RunMessage, resource: &str) -> impl Future<Output = Result<(), StoreError>> + Send;
}

/// Where detector parameters come from: the tenant's champion model (verified before use), if
/// it has one.
pub trait ModelSource: Send + Sync {
    fn champion(&self, tenant: &TenantId) -> impl Future<Output = Option<Model>> + Send;
}

/// No trained models: every series uses the default parameters.
impl ModelSource for () {
    async fn champion(&self, _: &TenantId) -> Option<Model> {
        None
    }
}

impl ModelSource for naksha_core::models::ChampionCache {
    async fn champion(&self, tenant: &TenantId) -> Option<Model> {
        self.get(tenant).await
    }
}
