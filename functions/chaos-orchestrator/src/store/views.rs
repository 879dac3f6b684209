//! What the orchestrator reads or changes in other services' tables:
//!
//! | table | how | through |
//! |---|---|---|
//! | `naksha.sim` | read; faults in and rollbacks out, each conditional on the document read | naksha-core's `sim` |
//! | `naksha.federation` | read: nodes, triggers, executions; `hub-partition` sets and lifts `partition_run`/`partition_until` on a node item (conditional on the run) | naksha-federation's `DynamoFleet` |
//! | `naksha.runs`, index `by_tenant` (`tenant`, `updated_at`) | read: each run's `progress` (`RunProgress`) | here |
//! | `naksha.aggregates`, index `by_source` | read: the latest minute of a metric | naksha-core's `views` |
//! | `naksha.agent-state` | read: the kill switch | naksha-core's `views` |

use naksha_act::sim::SimResource;
use naksha_contracts::TenantId;
use naksha_contracts::runs::{PROGRESS_ATTRIBUTE, RunProgress};
use naksha_core::ddb::{get_s, query_all, s};
use naksha_core::sim::SimWorld;

use chrono::{DateTime, Utc};
use naksha_federation::ports::{Nodes, Work};
use naksha_federation::store::DynamoFleet;

use crate::ports::{AgentRuns, CHAOS_TARGET_LABEL, EdgeExecution, EdgeTarget, Halt, StoreError, Telemetry, World};

/// The simulated world and the federation's edge nodes.
#[derive(Debug, Clone)]
pub struct DynamoWorld {
    pub sim: SimWorld,
    pub fleet: DynamoFleet,
}

impl World for DynamoWorld {
    async fn get(&self, tenant: &TenantId, resource: &str) -> Result<Option<SimResource>, StoreError> {
        self.sim.get(tenant, resource).await
    }
    async fn replace(
        &self,
        tenant: &TenantId,
        resource: &str,
        before: &SimResource,
        after: &SimResource,
    ) -> Result<bool, StoreError> {
        self.sim.replace(tenant, resource, before, after).await
    }
    async fn resources(&self, tenant: &TenantId) -> Result<Vec<(String, SimResource)>, StoreError> {
        self.sim.resources(tenant).await
    }
    async fn nodes(&self, tenant: &TenantId) -> Result<Vec<EdgeTarget>, StoreError> {
        let nodes = Nodes::nodes(&self.fleet, tenant).await?;
        Ok(nodes
            .into_iter()
            .map(|n| EdgeTarget {
                chaos_target: n.labels.get(CHAOS_TARGET_LABEL).is_some_and(|v| v == "true"),
                status: n.status.as_str().to_owned(),
                last_seen: n.last_seen,
                partition_run: n.partition_run,
                partition_until: n.partition_until,
                node_id: n.node_id,
            })
            .collect())
    }
    async fn partition(
        &self,
        tenant: &TenantId,
        node_id: &str,
        run_id: &str,
        until: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        self.fleet.set_partition(tenant, node_id, run_id, until).await
    }
    async fn lift_partition(&self, tenant: &TenantId, node_id: &str, run_id: &str) -> Result<bool, StoreError> {
        self.fleet.clear_partition(tenant, node_id, run_id).await
    }
    async fn executions_since(
        &self,
        tenant: &TenantId,
        node_id: &str,
        since: DateTime<Utc>,
    ) -> Result<Vec<EdgeExecution>, StoreError> {
        let mut out = Vec::new();
        for t in self.fleet.triggers_since(tenant, since).await? {
            if let Some(e) = Work::execution(&self.fleet, tenant, &t.spec.trigger_id, node_id).await? {
                let state = e.shown_state(t.spec.expires_at, Utc::now());
                out.push(EdgeExecution { trigger_id: t.spec.trigger_id.clone(), state: state.as_str().to_owned() });
            }
        }
        Ok(out)
    }
}

#[derive(Debug, Clone)]
pub struct DynamoAgentRuns {
    db: aws_sdk_dynamodb::Client,
    table: String,
}

impl DynamoAgentRuns {
    pub fn new(db: aws_sdk_dynamodb::Client, table: impl Into<String>) -> Self {
        Self { db, table: table.into() }
    }
}

impl AgentRuns for DynamoAgentRuns {
    async fn on_resource(
        &self,
        tenant: &TenantId,
        resource: &str,
        since: &str,
    ) -> Result<Vec<RunProgress>, StoreError> {
        let items = query_all(
            self.db
                .query()
                .table_name(&self.table)
                .index_name("by_tenant")
                .key_condition_expression("tenant = :t AND updated_at >= :since")
                .filter_expression("#resource = :r")
                .expression_attribute_names("#resource", "resource")
                .expression_attribute_values(":t", s(tenant.as_str()))
                .expression_attribute_values(":since", s(since))
                .expression_attribute_values(":r", s(resource)),
        )
        .await?;
        Ok(items
            .iter()
            .filter_map(|i| get_s(i, PROGRESS_ATTRIBUTE).and_then(|p| serde_json::from_str::<RunProgress>(p).ok()))
            .filter(|p| p.resource == resource)
            .collect())
    }
}

#[derive(Debug, Clone)]
pub struct DynamoTelemetry {
    db: aws_sdk_dynamodb::Client,
    table: String,
}

impl DynamoTelemetry {
    pub fn new(db: aws_sdk_dynamodb::Client, table: impl Into<String>) -> Self {
        Self { db, table: table.into() }
    }
}

impl Telemetry for DynamoTelemetry {
    async fn latest(&self, tenant: &TenantId, source: &str, metric: &str) -> Result<Option<(i64, f64)>, StoreError> {
        let since = chrono::Utc::now().timestamp() / 60 * 60 - 600;
        let rows = naksha_core::views::aggregates_by_source(&self.db, &self.table, tenant, source, since).await?;
        Ok(rows
            .iter()
            .filter(|r| r.name == metric && r.count > 0)
            .max_by_key(|r| r.minute)
            .map(|r| (r.minute, r.sum / r.count as f64)))
    }
}

/// The kill switch, read.
#[derive(Debug, Clone)]
pub struct Views {
    db: aws_sdk_dynamodb::Client,
    state_table: String,
}

impl Views {
    pub fn new(db: aws_sdk_dynamodb::Client, state_table: impl Into<String>) -> Self {
        Self { db, state_table: state_table.into() }
    }
}

impl Halt for Views {
    async fn halted(&self, tenant: &TenantId) -> Result<Option<String>, StoreError> {
        naksha_core::views::halted(&self.db, &self.state_table, tenant).await
    }
}
