//! What the trainer needs from the outside world, as narrow traits: DynamoDB, Kinesis and KMS
//! implement them in production (`store`), memory in unit tests (`memory`).

use std::collections::BTreeSet;
use std::future::Future;

use naksha_contracts::TenantId;
use naksha_contracts::models::{Alias, StoredModel};
use naksha_contracts::signing::TrustedKeys;
use naksha_core::models::Loaded;

use crate::jobs::{Job, JobMessage};
use crate::train::TrainingData;

pub use naksha_core::StoreError;

/// What training reads: the aggregates and run outcomes other services wrote.
pub trait TrainingSource: Send + Sync {
    /// Every tenant with at least one series (the hourly schedule trains each).
    fn tenants(&self) -> impl Future<Output = Result<BTreeSet<TenantId>, StoreError>> + Send;
    /// Everything training reads for one tenant and window (minutes since the epoch), normalised.
    fn load(
        &self,
        tenant: &TenantId,
        from: i64,
        to: i64,
    ) -> impl Future<Output = Result<TrainingData, StoreError>> + Send;
}

/// What creating a job did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Created {
    /// The job was created and holds its tenant's training slot.
    New,
    /// A job with that id exists already (a repeated schedule event); nothing changed.
    Exists,
    /// Another job of the tenant is queued or running (one at a time per tenant); nothing changed.
    Busy { job_id: String },
}

/// Where jobs and their progress are kept.
pub trait JobStore: Send + Sync {
    /// Create a job if its tenant has no other job queued or running, taking the tenant's one
    /// training slot (held until [`JobStore::release`], or [`crate::jobs::SLOT_SECS`] at most).
    fn create(&self, job: &Job) -> impl Future<Output = Result<Created, StoreError>> + Send;
    /// Give the tenant's training slot back, if `job_id` holds it (a finished or abandoned job).
    fn release(&self, tenant: &TenantId, job_id: &str) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// Record the job as it is now.
    fn save(&self, job: &Job) -> impl Future<Output = Result<(), StoreError>> + Send;
    fn get(&self, tenant: &TenantId, job_id: &str) -> impl Future<Output = Result<Option<Job>, StoreError>> + Send;
    fn delete(&self, tenant: &TenantId, job_id: &str) -> impl Future<Output = Result<(), StoreError>> + Send;
}

/// Where queued jobs go (the jobs stream).
pub trait JobQueue: Send + Sync {
    fn enqueue(&self, msg: &JobMessage) -> impl Future<Output = Result<(), StoreError>> + Send;
}

/// The model registry: this service is the only one that writes it.
pub trait Registry: Send + Sync {
    fn get(
        &self,
        tenant: &TenantId,
        model_id: &str,
    ) -> impl Future<Output = Result<Option<StoredModel>, StoreError>> + Send;
    /// Every version of a tenant, newest first.
    fn list(&self, tenant: &TenantId) -> impl Future<Output = Result<Vec<StoredModel>, StoreError>> + Send;
    fn alias(&self, tenant: &TenantId, alias: &str) -> impl Future<Output = Result<Option<Alias>, StoreError>> + Send;
    /// The newest champion that verifies, and the newer ones refused on the way.
    fn load_champion(
        &self,
        tenant: &TenantId,
        keys: &TrustedKeys,
    ) -> impl Future<Output = Result<Loaded, StoreError>> + Send;
    /// Register a version. `Ok(false)`: that id already exists (nothing was written).
    fn put(&self, model: &StoredModel) -> impl Future<Output = Result<bool, StoreError>> + Send;
    /// Point `alias` at `model_id`, if nobody moved it since `seen` was read. `Ok(false)`: it moved.
    fn move_alias(
        &self,
        tenant: &TenantId,
        alias: &str,
        model_id: &str,
        seen: Option<&Alias>,
        now: &str,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
}
