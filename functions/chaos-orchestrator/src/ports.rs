//! What the orchestrator needs from the outside world, as narrow traits taking `&TenantId`:
//! DynamoDB, Kinesis and HTTP implement them in production (`store`), memory in unit tests
//! (`memory`).

use std::future::Future;

use chrono::{DateTime, Utc};
use naksha_act::sim::SimResource;
use naksha_contracts::TenantId;
use naksha_contracts::runs::RunProgress;
use serde::{Deserialize, Serialize};

use crate::run::ChaosRun;
use crate::specs::Spec;

pub use naksha_core::StoreError;

/// An edge node as a chaos experiment sees it (the hub's record of it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EdgeTarget {
    pub node_id: String,
    /// Labelled `chaos-target=true` at registration: inside a blast radius.
    pub chaos_target: bool,
    /// The hub's liveness status (`online`, `stale`, `offline`).
    pub status: String,
    pub last_seen: DateTime<Utc>,
    pub partition_run: Option<String>,
    pub partition_until: Option<DateTime<Utc>>,
}

/// The label that makes an edge node a chaos target.
pub const CHAOS_TARGET_LABEL: &str = "chaos-target";

/// One execution, on a node, of a trigger sent since a run started.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EdgeExecution {
    pub trigger_id: String,
    /// `queued`, `delivered` (pending), `succeeded`, `failed`, `rejected` (a result), `expired`,
    /// `cancelled` (no result).
    pub state: String,
}

/// Where faults go: the simulated world's deployments, and the federation's edge nodes.
pub trait World: Send + Sync {
    fn get(
        &self,
        tenant: &TenantId,
        resource: &str,
    ) -> impl Future<Output = Result<Option<SimResource>, StoreError>> + Send;
    /// Replace `before` with `after`; `false` when the resource changed meanwhile.
    fn replace(
        &self,
        tenant: &TenantId,
        resource: &str,
        before: &SimResource,
        after: &SimResource,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
    fn resources(
        &self,
        tenant: &TenantId,
    ) -> impl Future<Output = Result<Vec<(String, SimResource)>, StoreError>> + Send;
    /// The tenant's edge nodes.
    fn nodes(&self, tenant: &TenantId) -> impl Future<Output = Result<Vec<EdgeTarget>, StoreError>> + Send;
    /// Have the hub ignore `node_id` until `until` (`false`: no such node, or another run's
    /// partition is on it).
    fn partition(
        &self,
        tenant: &TenantId,
        node_id: &str,
        run_id: &str,
        until: DateTime<Utc>,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
    /// Lift `run_id`'s partition (`false`: none of this run's was there).
    fn lift_partition(
        &self,
        tenant: &TenantId,
        node_id: &str,
        run_id: &str,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
    /// The node's executions of triggers created at or after `since`.
    fn executions_since(
        &self,
        tenant: &TenantId,
        node_id: &str,
        since: DateTime<Utc>,
    ) -> impl Future<Output = Result<Vec<EdgeExecution>, StoreError>> + Send;
}

/// Chaos runs, the lock each holds on its target, and a tenant's own specs.
pub trait Runs: Send + Sync {
    /// Store a new run (`false`: that id exists).
    fn create(&self, run: &ChaosRun) -> impl Future<Output = Result<bool, StoreError>> + Send;
    fn load(
        &self,
        tenant: &TenantId,
        run_id: &str,
    ) -> impl Future<Output = Result<Option<ChaosRun>, StoreError>> + Send;
    fn save(&self, run: &ChaosRun) -> impl Future<Output = Result<(), StoreError>> + Send;
    fn delete(&self, tenant: &TenantId, run_id: &str) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// The tenant's runs, newest first.
    fn list(&self, tenant: &TenantId, limit: usize) -> impl Future<Output = Result<Vec<ChaosRun>, StoreError>> + Send;
    /// Ask a run to stop (`false`: it is over, or no such run).
    fn request_abort(
        &self,
        tenant: &TenantId,
        run_id: &str,
        reason: &str,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
    /// Take `resource` for `run_id` until `until` (one chaos run per resource at a time).
    fn lock(
        &self,
        tenant: &TenantId,
        resource: &str,
        run_id: &str,
        until: DateTime<Utc>,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
    fn unlock(
        &self,
        tenant: &TenantId,
        resource: &str,
        run_id: &str,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    fn put_spec(&self, tenant: &TenantId, spec: &Spec) -> impl Future<Output = Result<bool, StoreError>> + Send;
    fn specs(&self, tenant: &TenantId) -> impl Future<Output = Result<Vec<Spec>, StoreError>> + Send;
}

/// The agent's runs on a resource, as their progress says (read only).
pub trait AgentRuns: Send + Sync {
    /// Runs on `resource` changed since `since` (RFC 3339 as the agent writes it).
    fn on_resource(
        &self,
        tenant: &TenantId,
        resource: &str,
        since: &str,
    ) -> impl Future<Output = Result<Vec<RunProgress>, StoreError>> + Send;
}

/// The D.1 aggregates (read only).
pub trait Telemetry: Send + Sync {
    /// The latest per-minute mean of `metric` reported for `source`: `(minute, mean)`.
    fn latest(
        &self,
        tenant: &TenantId,
        source: &str,
        metric: &str,
    ) -> impl Future<Output = Result<Option<(i64, f64)>, StoreError>> + Send;
}

/// The tenant's kill switch (the agent writes it).
pub trait Halt: Send + Sync {
    fn halted(&self, tenant: &TenantId) -> impl Future<Output = Result<Option<String>, StoreError>> + Send;
}

/// HTTP probes.
pub trait Http: Send + Sync {
    /// The status a GET of `url` answers.
    fn status(&self, url: &str) -> impl Future<Output = Result<u16, String>> + Send;
}

/// The message that advances a run by one step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChaosMessage {
    pub tenant: TenantId,
    pub run_id: String,
}

/// Where run messages go (the `naksha.chaos-runs` stream).
pub trait Queue: Send + Sync {
    fn send(&self, msg: &ChaosMessage) -> impl Future<Output = Result<(), StoreError>> + Send;
}
