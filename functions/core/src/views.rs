//! Read-only views of other services' tables that more than one service reads. Each decodes into
//! the contract type, so a renamed attribute fails loudly instead of reading as nothing.
//!
//! | view | table | written by | read by |
//! |---|---|---|---|
//! | [`aggregates_by_source`] | `naksha.aggregates`, index `by_source` (`tenant_source` = `<tenant>#<source>`, `minute`) | insight-stream | the agent (observe), the chaos orchestrator (telemetry probes) |
//! | [`halted`] | `naksha.agent-state` (`<tenant>#halt`) | the agent | the federation hub, the chaos orchestrator |

use naksha_contracts::TenantId;
use naksha_contracts::control::{HALT_REASON, halt_pk};
use naksha_contracts::telemetry::AggregateRow;

use crate::StoreError;
use crate::aws::describe_error;
use crate::ddb::{from_item, get_s, n, query_all, s};

/// A resource's per-minute aggregates (every series whose source is the resource) since
/// `since_minute` (epoch seconds).
pub async fn aggregates_by_source(
    db: &aws_sdk_dynamodb::Client,
    table: &str,
    tenant: &TenantId,
    source: &str,
    since_minute: i64,
) -> Result<Vec<AggregateRow>, StoreError> {
    let query = db
        .query()
        .table_name(table)
        .index_name("by_source")
        .key_condition_expression("tenant_source = :ts AND #minute >= :since")
        .expression_attribute_names("#minute", "minute")
        .expression_attribute_values(":ts", s(AggregateRow::source_key(tenant, source)))
        .expression_attribute_values(":since", n(since_minute));
    let items = query_all(query).await?;
    let rows: Vec<AggregateRow> = items
        .into_iter()
        .map(from_item::<AggregateRow>)
        .collect::<Result<_, _>>()
        .map_err(|e| StoreError(format!("an aggregate item does not decode: {e}")))?;
    // The index key names the tenant; every row must agree (defence in depth).
    Ok(rows.into_iter().filter(|r| r.tenant == *tenant).collect())
}

/// Why the tenant is halted, while it is (its kill switch).
pub async fn halted(
    db: &aws_sdk_dynamodb::Client,
    table: &str,
    tenant: &TenantId,
) -> Result<Option<String>, StoreError> {
    let out = db
        .get_item()
        .table_name(table)
        .key("pk", s(halt_pk(tenant)))
        .consistent_read(true)
        .send()
        .await
        .map_err(|e| StoreError(describe_error(&e)))?;
    Ok(out.item().map(|i| get_s(i, HALT_REASON).unwrap_or("halted").to_owned()))
}
