//! What the orchestrator reads or changes in other services' tables:
//!
//! | table | how | through |
//! |---|---|---|
//! | `naksha.sim` | read; faults in and rollbacks out, each conditional on the document read | naksha-core's `sim` |
//! | `naksha.runs`, index `by_tenant` (`tenant`, `updated_at`) | read: each run's `progress` (`RunProgress`) | here |
//! | `naksha.aggregates`, index `by_source` | read: the latest minute of a metric | naksha-core's `views` |
//! | `naksha.agent-state` | read: the kill switch | naksha-core's `views` |

use naksha_act::sim::SimResource;
use naksha_contracts::TenantId;
use naksha_contracts::runs::{PROGRESS_ATTRIBUTE, RunProgress};
use naksha_core::ddb::{get_s, query_all, s};
use naksha_core::sim::SimWorld;

use crate::ports::{AgentRuns, Halt, StoreError, Telemetry, World};

impl World for SimWorld {
    async fn get(&self, tenant: &TenantId, resource: &str) -> Result<Option<SimResource>, StoreError> {
        SimWorld::get(self, tenant, resource).await
    }
    async fn replace(
        &self,
        tenant: &TenantId,
        resource: &str,
        before: &SimResource,
        after: &SimResource,
    ) -> Result<bool, StoreError> {
        SimWorld::replace(self, tenant, resource, before, after).await
    }
    async fn resources(&self, tenant: &TenantId) -> Result<Vec<(String, SimResource)>, StoreError> {
        SimWorld::resources(self, tenant).await
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
