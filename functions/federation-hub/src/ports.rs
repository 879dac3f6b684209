//! What the hub needs from the outside world, as narrow traits taking `&TenantId`: DynamoDB and
//! KMS implement them in production (`store`), memory in unit tests (`memory`).

use std::future::Future;

use chrono::{DateTime, Utc};
use naksha_contracts::TenantId;
use naksha_contracts::edge::{Delivery, EdgeResult};
use naksha_contracts::input::FieldError;
use naksha_contracts::signing::Sealed;
use naksha_contracts::wpk::StoredWpk;

use crate::nodes::{Node, NodeStatus};
use crate::triggers::{ExecState, Execution, Trigger};

pub use naksha_core::StoreError;

/// Why a hub operation did not happen. Mapped to problem+json once, in `api.rs`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HubError {
    #[error("{0}")]
    Invalid(String),
    #[error("the request has problems")]
    Fields(Vec<FieldError>),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("the tenant is halted: {0}")]
    Halted(String),
    #[error("{0}")]
    Unavailable(StoreError),
    #[error("signing failed: {0}")]
    Signing(String),
    /// A chaos experiment (D.5 `hub-partition`) has the hub ignore this node until then.
    #[error("the hub is partitioned from this node until {0}")]
    Partitioned(String),
}

impl From<StoreError> for HubError {
    fn from(e: StoreError) -> Self {
        HubError::Unavailable(e)
    }
}

/// What registering a node did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Registered {
    /// First registration.
    New,
    /// The node was registered with this key already; labels and version were refreshed.
    Again,
    /// The node is registered with another key; nothing changed.
    OtherKey { kid: String },
}

/// Nodes of a tenant: the hub is the only writer.
pub trait Nodes: Send + Sync {
    fn register(&self, tenant: &TenantId, node: &Node) -> impl Future<Output = Result<Registered, StoreError>> + Send;
    fn node(&self, tenant: &TenantId, node_id: &str) -> impl Future<Output = Result<Option<Node>, StoreError>> + Send;
    fn nodes(&self, tenant: &TenantId) -> impl Future<Output = Result<Vec<Node>, StoreError>> + Send;
    /// Every tenant's nodes (the sweep).
    fn all_nodes(&self) -> impl Future<Output = Result<Vec<(TenantId, Node)>, StoreError>> + Send;
    /// A heartbeat: `online`, `last_seen = now`, and what the node says of the halt. `None`: the
    /// node is not registered.
    fn heartbeat(
        &self,
        tenant: &TenantId,
        node_id: &str,
        now: DateTime<Utc>,
        halt_seen: Option<bool>,
    ) -> impl Future<Output = Result<Option<Node>, StoreError>> + Send;
    /// Move a node's status, unless it was heard from since `last_seen` was read.
    fn set_status(
        &self,
        tenant: &TenantId,
        node_id: &str,
        status: NodeStatus,
        last_seen: DateTime<Utc>,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
    /// The node's next delivery sequence number (atomic; only grows).
    fn next_seq(&self, tenant: &TenantId, node_id: &str) -> impl Future<Output = Result<u64, StoreError>> + Send;
}

/// What ending an execution did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Finished {
    /// It ended now (the trigger's counts moved).
    Now,
    /// It had ended already with exactly this result (a repeated report).
    Same,
    /// It had ended already, otherwise.
    Already(ExecState),
}

/// How an execution ends.
#[derive(Debug, Clone, Copy)]
pub struct Ending<'a> {
    pub state: ExecState,
    pub reason: &'a str,
    /// The node's signed result, when the node reported it.
    pub result: Option<&'a Sealed>,
    /// The delivery it was handed out as: no longer served once the execution ended.
    pub delivery: Option<u64>,
    pub at: DateTime<Utc>,
}

impl<'a> Ending<'a> {
    pub fn new(state: ExecState, reason: &'a str, at: DateTime<Utc>) -> Self {
        Self { state, reason, result: None, delivery: None, at }
    }
}

/// Triggers, executions, the envelopes handed out and the refusals nodes reported.
pub trait Work: Send + Sync {
    /// The trigger and one queued execution per node; nothing is handed out yet.
    fn create(
        &self,
        tenant: &TenantId,
        trigger: &Trigger,
        executions: &[Execution],
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    fn trigger(&self, tenant: &TenantId, id: &str) -> impl Future<Output = Result<Option<Trigger>, StoreError>> + Send;
    /// The tenant's triggers that are still running (the sweep).
    fn running(&self, tenant: &TenantId) -> impl Future<Output = Result<Vec<Trigger>, StoreError>> + Send;
    fn executions(
        &self,
        tenant: &TenantId,
        trigger_id: &str,
    ) -> impl Future<Output = Result<Vec<Execution>, StoreError>> + Send;
    fn execution(
        &self,
        tenant: &TenantId,
        trigger_id: &str,
        node_id: &str,
    ) -> impl Future<Output = Result<Option<Execution>, StoreError>> + Send;
    /// Triggers with an execution queued for the node (not handed out yet), oldest first.
    fn pending(&self, tenant: &TenantId, node_id: &str)
    -> impl Future<Output = Result<Vec<String>, StoreError>> + Send;
    /// One of the trigger's `max` slots in `minute` (epoch minutes), if it is running.
    fn take_slot(
        &self,
        tenant: &TenantId,
        trigger_id: &str,
        minute: i64,
        max: u32,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
    /// Hand out a signed delivery: the execution goes `queued` → `delivered` and the envelope is
    /// kept for the node, together. `false`: the execution was no longer queued (nothing written).
    fn deliver(
        &self,
        tenant: &TenantId,
        node_id: &str,
        delivery: &Delivery,
        at: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
    /// The node's deliveries after `after`, lowest seq first, that have not expired.
    fn deliveries(
        &self,
        tenant: &TenantId,
        node_id: &str,
        after: u64,
        now: DateTime<Utc>,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<Delivery>, StoreError>> + Send;
    /// End an execution that has not ended, with `state` (and the node's signed result), and
    /// count it on its trigger.
    fn finish(
        &self,
        tenant: &TenantId,
        trigger_id: &str,
        node_id: &str,
        ending: Ending<'_>,
    ) -> impl Future<Output = Result<Finished, StoreError>> + Send;
    /// End the trigger (`completed` or `aborted`) if it is still running.
    fn end(
        &self,
        tenant: &TenantId,
        trigger_id: &str,
        aborted: Option<&str>,
        at: DateTime<Utc>,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
    /// Keep a node's report of a delivery it refused that names no execution of its own (a
    /// forged or redirected envelope): evidence, never state. The delivery it refused is no
    /// longer served to it.
    fn record_refusal(
        &self,
        tenant: &TenantId,
        node_id: &str,
        result: &EdgeResult,
        sealed: &Sealed,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// The node's latest refusal reports, newest first.
    fn refusals(
        &self,
        tenant: &TenantId,
        node_id: &str,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<EdgeResult>, StoreError>> + Send;
}

/// The agent's WPK registry, read-only.
pub trait WpkSource: Send + Sync {
    /// A version, or the latest one when `version` is `None`.
    fn wpk(
        &self,
        tenant: &TenantId,
        id: &str,
        version: Option<u32>,
    ) -> impl Future<Output = Result<Option<StoredWpk>, StoreError>> + Send;
}

/// The tenant's kill switch (the agent writes it).
pub trait HaltSource: Send + Sync {
    /// `Some(reason)` while halted.
    fn halted(&self, tenant: &TenantId) -> impl Future<Output = Result<Option<String>, StoreError>> + Send;
}
