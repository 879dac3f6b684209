//! What the policy learner needs from storage: its own records and suggestions
//! ([`Policies`]); the tenant's audit chain comes through the agent's `AuditLog`.

use std::collections::BTreeSet;
use std::future::Future;

use naksha_contracts::TenantId;

use crate::records::Record;
use crate::suggest::{State, Suggestion};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("policy store: {0}")]
pub struct StoreError(pub String);

/// The key a record is stored under: its format and its source id.
pub fn record_key(r: &Record) -> String {
    format!("{}#{}", r.format.as_str(), r.id)
}

pub trait Policies: Send + Sync {
    /// Which of these record keys are stored already.
    fn existing(
        &self,
        tenant: &TenantId,
        keys: &[String],
    ) -> impl Future<Output = Result<BTreeSet<String>, StoreError>> + Send;
    /// Store records (a record stored again is the same item: idempotent).
    fn put_records(&self, tenant: &TenantId, records: &[Record])
    -> impl Future<Output = Result<(), StoreError>> + Send;
    /// Every record of the tenant still kept.
    fn records(&self, tenant: &TenantId) -> impl Future<Output = Result<Vec<Record>, StoreError>> + Send;
    fn suggestions(&self, tenant: &TenantId) -> impl Future<Output = Result<Vec<Suggestion>, StoreError>> + Send;
    fn suggestion(
        &self,
        tenant: &TenantId,
        id: &str,
    ) -> impl Future<Output = Result<Option<Suggestion>, StoreError>> + Send;
    /// Write a suggestion if it is new or still in `seen` (its state when it was read); `false`
    /// when someone moved it meanwhile (nothing written).
    fn save(&self, s: &Suggestion, seen: Option<State>) -> impl Future<Output = Result<bool, StoreError>> + Send;
}
