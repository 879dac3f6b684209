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
use naksha_core::ddb::{from_item, n, query_all, s};

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
        let query = self
            .db
            .query()
            .table_name(&self.table)
            .index_name("by_source")
            .key_condition_expression("tenant_source = :ts AND #minute >= :since")
            .expression_attribute_names("#minute", "minute")
            .expression_attribute_values(":ts", s(AggregateRow::source_key(tenant, source)))
            .expression_attribute_values(":since", n(since_minute));
        let items = query_all(query).await.map_err(|e| ObserveError(e.0))?;
        let rows: Vec<AggregateRow> = items
            .into_iter()
            .map(from_item::<AggregateRow>)
            .collect::<Result<_, _>>()
            .map_err(|e| ObserveError(format!("an aggregate item does not decode: {e}")))?;
        // The index key names the tenant; every row must agree (defence in depth).
        Ok(rows.into_iter().filter(|r| r.tenant == *tenant).collect())
    }
}
