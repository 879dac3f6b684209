//! What the agent needs from the outside world, as narrow traits: DynamoDB implements them in
//! production (`store`), memory in unit tests (`memory`).

use std::collections::BTreeMap;
use std::future::Future;

use naksha_contracts::TenantId;
use naksha_contracts::audit::{AuditEntry, AuditRecord};
use naksha_core::models::{ChampionCache, Model};
use serde_json::Value;

use naksha_contracts::audit::Anchors;
use naksha_contracts::runs::{RunMessage, RunProgress};
use naksha_contracts::signing::Sealed;

use crate::state::{Approval, RunState};
use naksha_contracts::wpk::StoredWpk;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    #[error("already exists")]
    Exists,
    #[error("not found")]
    NotFound,
    #[error("the object is not in the expected state")]
    Conflict,
    /// The write can never succeed as it is (DynamoDB refused it: an item over 400 KB, a number
    /// out of range); retrying it would fail the same way.
    #[error("refused by the store: {0}")]
    Rejected(String),
    #[error("{0}")]
    Failed(String),
}

impl From<naksha_core::ddb::DdbError> for StoreError {
    fn from(e: naksha_core::ddb::DdbError) -> Self {
        StoreError::Failed(e.0)
    }
}

/// The act adapters' error and interface are naksha-act's (the edge node uses them too).
pub use naksha_act::{ActError, Actuator};

impl From<StoreError> for ActError {
    fn from(e: StoreError) -> Self {
        ActError::Unavailable(e.to_string())
    }
}

/// One executed graph step, as checkpointed.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Checkpoint {
    pub run_id: String,
    pub step: u32,
    pub node: String,
    pub graph_version: String,
    pub state_digest: String,
    pub started_at: String,
    pub ended_at: String,
    pub latency_ms: f64,
    pub status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

pub trait RunStore: Send + Sync {
    /// Record a new run (fails with `Exists` for a duplicate id).
    fn create_run(&self, state: &RunState) -> impl Future<Output = Result<(), StoreError>> + Send;
    fn load_run(
        &self,
        tenant: &TenantId,
        run_id: &str,
    ) -> impl Future<Output = Result<Option<RunState>, StoreError>> + Send;
    /// Persist the state after a step, with its checkpoint.
    fn save_step(
        &self,
        state: &RunState,
        checkpoint: &Checkpoint,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// Persist the state without a step (status changes by the API).
    fn save_run(&self, state: &RunState) -> impl Future<Output = Result<(), StoreError>> + Send;
    fn checkpoints(
        &self,
        tenant: &TenantId,
        run_id: &str,
    ) -> impl Future<Output = Result<Vec<Checkpoint>, StoreError>> + Send;
    /// Record an approval if the run is awaiting one for exactly this plan (`Conflict` otherwise).
    fn approve(
        &self,
        tenant: &TenantId,
        run_id: &str,
        approval: &Approval,
    ) -> impl Future<Output = Result<RunState, StoreError>> + Send;
    /// Runs of the tenant that acted, with the audit record each names (`RunOutcome`).
    fn acted_runs(&self, tenant: &TenantId) -> impl Future<Output = Result<Vec<(String, u64)>, StoreError>> + Send;
    /// The tenant's most recently changed runs, newest first, at most `limit`, only those with
    /// `status` when it is given.
    fn recent_runs(
        &self,
        tenant: &TenantId,
        status: Option<&str>,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<RunProgress>, StoreError>> + Send;
    /// Record a rejection if the run is awaiting approval (`Conflict` otherwise).
    fn reject(
        &self,
        tenant: &TenantId,
        run_id: &str,
        rejection: &Approval,
    ) -> impl Future<Output = Result<RunState, StoreError>> + Send;
}

pub trait WpkStore: Send + Sync {
    /// Store a version; versions are immutable (`Exists` when it is already there).
    fn put_wpk(&self, tenant: &TenantId, wpk: &StoredWpk) -> impl Future<Output = Result<(), StoreError>> + Send;
    fn get_wpk(
        &self,
        tenant: &TenantId,
        id: &str,
        version: u32,
    ) -> impl Future<Output = Result<Option<StoredWpk>, StoreError>> + Send;
    /// Every version of every WPK of the tenant.
    fn list_wpks(&self, tenant: &TenantId) -> impl Future<Output = Result<Vec<StoredWpk>, StoreError>> + Send;
    /// Store a version's signed standing approval.
    fn set_standing_approval(
        &self,
        tenant: &TenantId,
        id: &str,
        version: u32,
        approval: &Sealed,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// Remove a version's standing approval (`NotFound` when the version does not exist).
    fn withdraw_standing_approval(
        &self,
        tenant: &TenantId,
        id: &str,
        version: u32,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
}

pub trait AuditLog: Send + Sync {
    /// Append atomically after the current head, with a signed checkpoint of the new head; a run
    /// that appended already gets its existing record back.
    fn append(
        &self,
        tenant: &TenantId,
        entry: AuditEntry,
    ) -> impl Future<Output = Result<AuditRecord, StoreError>> + Send;
    /// The tenant's whole chain, sorted by sequence number (for verification).
    fn records(&self, tenant: &TenantId) -> impl Future<Output = Result<Vec<AuditRecord>, StoreError>> + Send;
    /// Up to `limit` records after `after`, and the sequence number to continue from.
    fn page(
        &self,
        tenant: &TenantId,
        after: u64,
        limit: usize,
    ) -> impl Future<Output = Result<(Vec<AuditRecord>, Option<u64>), StoreError>> + Send;
    /// The record a run appended, if any.
    fn record_of_run(
        &self,
        tenant: &TenantId,
        run_id: &str,
    ) -> impl Future<Output = Result<Option<AuditRecord>, StoreError>> + Send;
    /// The head and the signed checkpoints (the runs that acted come from [`RunStore::acted_runs`]).
    fn anchors(&self, tenant: &TenantId) -> impl Future<Output = Result<Anchors, StoreError>> + Send;
}

/// Kill switch, the tenant's signed settings, rate limits, run history and act receipts.
pub trait Control: Send + Sync {
    /// The tenant's settings as stored (signed; open them before believing them).
    fn settings(&self, tenant: &TenantId) -> impl Future<Output = Result<Option<Sealed>, StoreError>> + Send;
    fn set_settings(&self, tenant: &TenantId, settings: &Sealed)
    -> impl Future<Output = Result<(), StoreError>> + Send;
    fn halted(&self, tenant: &TenantId) -> impl Future<Output = Result<Option<String>, StoreError>> + Send;
    fn set_halted(
        &self,
        tenant: &TenantId,
        reason: Option<&str>,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// How many runs acted on `resource` with `wpk` in the hour `hour` (epoch hours).
    fn runs_in_hour(
        &self,
        tenant: &TenantId,
        resource: &str,
        wpk: &str,
        hour: i64,
    ) -> impl Future<Output = Result<u32, StoreError>> + Send;
    /// Take one slot of the hourly limit; `false` when the limit is reached.
    fn take_slot(
        &self,
        tenant: &TenantId,
        resource: &str,
        wpk: &str,
        hour: i64,
        max: u32,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
    /// Success/failure counts per WPK for a signal (the decide step's history).
    fn outcome_stats(
        &self,
        tenant: &TenantId,
        signal: &str,
    ) -> impl Future<Output = Result<BTreeMap<String, (u32, u32)>, StoreError>> + Send;
    fn record_outcome(
        &self,
        tenant: &TenantId,
        signal: &str,
        wpk: &str,
        ok: bool,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
}

/// Observe plugins.
pub trait Observer: Send + Sync {
    /// Plugin name → what it saw about `resource`.
    fn observe(
        &self,
        tenant: &TenantId,
        resource: &str,
        config: &Value,
    ) -> impl Future<Output = BTreeMap<String, Value>> + Send;
}

/// Ranks WPKs for a signal. The default learns from run outcomes; the trainer (D.3) supplies a
/// learned model through the same trait.
pub trait RemediationModel: Send + Sync {
    fn score(&self, signal: &str, wpk_id: &str, history: &BTreeMap<String, (u32, u32)>) -> f64;

    /// The tenant's trained model (D.3), verified before use. Where it has learned how likely a
    /// WPK is to fix a signal, that probability ranks the WPK; elsewhere `score` does.
    fn champion(&self, _tenant: &TenantId) -> impl Future<Output = Option<Model>> + Send {
        async { None }
    }
}

/// The tenant's champion from the model registry, with `OutcomeHistory` where it has no opinion.
#[derive(Debug)]
pub struct Learned(pub ChampionCache);

impl RemediationModel for Learned {
    fn score(&self, signal: &str, wpk_id: &str, history: &BTreeMap<String, (u32, u32)>) -> f64 {
        OutcomeHistory.score(signal, wpk_id, history)
    }

    async fn champion(&self, tenant: &TenantId) -> Option<Model> {
        self.0.get(tenant).await
    }
}

/// Past success rate with a uniform prior: (successes + 1) / (runs + 2).
#[derive(Debug, Clone, Copy, Default)]
pub struct OutcomeHistory;

impl RemediationModel for OutcomeHistory {
    fn score(&self, _signal: &str, wpk_id: &str, history: &BTreeMap<String, (u32, u32)>) -> f64 {
        let (ok, failed) = history.get(wpk_id).copied().unwrap_or((0, 0));
        (f64::from(ok) + 1.0) / (f64::from(ok + failed) + 2.0)
    }
}

/// Where queued runs go (the runs stream, partitioned by tenant and resource).
pub trait RunQueue: Send + Sync {
    /// Put a message on the stream, partitioned by its tenant and `resource`.
    fn send(&self, message: &RunMessage, resource: &str) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Queue an existing run to (re)start.
    fn enqueue(
        &self,
        tenant: &TenantId,
        resource: &str,
        run_id: &str,
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        let message = RunMessage { tenant: tenant.clone(), run_id: run_id.to_owned(), start: None, attempt: 0 };
        async move { self.send(&message, resource).await }
    }
}
