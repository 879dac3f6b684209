//! insight-stream's per-minute aggregates, read (never written) through the `by_source` index:
//! a resource's series are those whose `source` is the resource. Items decode into the contract
//! row, [`AggregateRow`], so a renamed attribute fails here loudly instead of reading as zero.
//!
//! | index `by_source` | value |
//! |---|---|
//! | `tenant_source` | [`AggregateRow::source_key`] = `<tenant>#<source>` |
//! | `minute` | epoch seconds |

use naksha_contracts::TenantId;
use naksha_contracts::telemetry::AggregateRow;

use crate::observe::telemetry::{AggregateQuery, ObserveError};

#[derive(Debug, Clone)]
pub struct DynamoAggregateQuery {
    db: aws_sdk_dynamodb::Client,
    table: String,
}

impl DynamoAggregateQuery {
    pub fn new(db: aws_sdk_dynamodb::Client, table: impl Into<String>) -> Self {
        Self { db, table: table.into() }
    }
}

impl AggregateQuery for DynamoAggregateQuery {
    async fn by_source(
        &self,
        tenant: &TenantId,
        source: &str,
        since_minute: i64,
    ) -> Result<Vec<AggregateRow>, ObserveError> {
        naksha_core::views::aggregates_by_source(&self.db, &self.table, tenant, source, since_minute)
            .await
            .map_err(|e| ObserveError(e.0))
    }
}
