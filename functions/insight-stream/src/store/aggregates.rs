//! Per-minute aggregates in DynamoDB.
//!
//! | attribute | value |
//! |---|---|
//! | `pk` | [`AggregateRow::pk`] = `<tenant>#<series id>` (tenant first, P-5) |
//! | `minute` | start of the minute, epoch seconds (sort key) |
//! | the [`AggregateRow`] fields | `tenant`, `series_id`, `source`, `name`, `labels`, `count`, `sum`, `min`, `max`, `sumsq`, `first_ts`, `last_ts` |
//! | `tenant_source` | [`AggregateRow::source_key`], the `by_source` index the agent reads |
//! | `version`, `wm#<shard>` | optimistic version and each shard's sequence watermark |
//! | `updated_at`, `expires_at` | epoch seconds; TTL after [`AGGREGATE_RETENTION_SECS`] |

use std::collections::HashMap;

use naksha_contracts::TenantId;
use naksha_contracts::telemetry::AggregateRow;
use naksha_core::aws::describe_error;
use naksha_core::ddb::{Item, batch_get, condition_failed, f, from_item, get_n, get_s, n, rejected, s, string_map};

use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::AttributeValue;

use crate::aggregate::{AggKey, AggWrite, Stats, Stored};
use crate::dedup::Window;
use crate::ports::{AggregateStore, CommitError, StoreError};
use crate::series::{SeqNo, watermark_attr};

/// How long aggregates are kept (DynamoDB TTL).
pub const AGGREGATE_RETENTION_SECS: i64 = 400 * 24 * 3600;

#[derive(Debug, Clone)]
pub struct DynamoAggregates {
    client: aws_sdk_dynamodb::Client,
    table: String,
}

fn key_of(k: &AggKey) -> Item {
    HashMap::from([("pk".to_owned(), s(k.pk())), ("minute".to_owned(), n(k.minute))])
}

/// The attributes of a row, numbers in the form DynamoDB stores exactly.
pub fn row_attributes(row: &AggregateRow) -> Item {
    HashMap::from([
        ("tenant".to_owned(), s(row.tenant.as_str())),
        ("series_id".to_owned(), s(&row.series_id)),
        ("source".to_owned(), s(&row.source)),
        ("name".to_owned(), s(&row.name)),
        ("labels".to_owned(), string_map(&row.labels)),
        ("minute".to_owned(), n(row.minute)),
        ("count".to_owned(), n(row.count)),
        ("sum".to_owned(), f(row.sum)),
        ("min".to_owned(), f(row.min)),
        ("max".to_owned(), f(row.max)),
        ("sumsq".to_owned(), f(row.sumsq)),
        ("first_ts".to_owned(), n(row.first_ts)),
        ("last_ts".to_owned(), n(row.last_ts)),
        ("tenant_source".to_owned(), s(AggregateRow::source_key(&row.tenant, &row.source))),
    ])
}

fn decode(item: Item, shard: &str) -> Option<(AggKey, Stored)> {
    let version = get_n(&item, "version")?;
    let watermark = get_s(&item, &watermark_attr(shard)).and_then(SeqNo::from_padded);
    let pk = get_s(&item, "pk")?.to_owned();
    let row: AggregateRow = from_item(item).ok()?;
    // The key names the tenant; the row must agree (defence in depth).
    (TenantId::split_key(&pk).map(|(t, _)| t).as_ref() == Some(&row.tenant)).then_some(())?;
    let key = AggKey { tenant: row.tenant.clone(), series_id: row.series_id.clone(), minute: row.minute };
    let stats = Stats {
        count: row.count,
        sum: row.sum,
        min: row.min,
        max: row.max,
        sumsq: row.sumsq,
        first_ts: row.first_ts,
        last_ts: row.last_ts,
    };
    Some((key, Stored { stats, version, watermark }))
}

impl DynamoAggregates {
    pub fn new(client: aws_sdk_dynamodb::Client, table: impl Into<String>) -> Self {
        Self { client, table: table.into() }
    }
}

/// The key of a shard's dedup window for one bucket in the aggregates table: `~` sorts after
/// every tenant id, which never holds one, so no tenant's query or prefix reaches it; the bucket
/// (a minute, epoch seconds) is the sort key.
fn window_key(shard: &str, bucket: u32) -> Item {
    HashMap::from([("pk".to_owned(), s(format!("~dedup#{shard}"))), ("minute".to_owned(), n(i64::from(bucket)))])
}

impl AggregateStore for DynamoAggregates {
    async fn load_windows(&self, shard: &str, buckets: &[u32]) -> Result<Vec<(u32, Window, u64)>, StoreError> {
        let keys = buckets.iter().map(|b| window_key(shard, *b)).collect();
        let items = batch_get(&self.client, &self.table, keys, |k| k.consistent_read(true)).await?;
        let mut out = Vec::new();
        for item in items {
            let Some(bucket) = get_n::<u32>(&item, "minute") else { continue };
            let version = get_n(&item, "version").unwrap_or(0);
            let bytes = item.get("window").and_then(|v| v.as_b().ok()).map(|b| b.as_ref().to_vec()).unwrap_or_default();
            // An item this code did not write starts the bucket again rather than stopping the shard.
            let window = Window::decode(&bytes).unwrap_or_else(|| {
                tracing::warn!(shard, bucket, "a dedup window did not decode; starting it again");
                Window::default()
            });
            out.push((bucket, window, version));
        }
        Ok(out)
    }

    async fn save_window(
        &self,
        shard: &str,
        bucket: u32,
        window: &Window,
        expected_version: u64,
    ) -> Result<(), CommitError> {
        let now = super::now_secs();
        let update = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(window_key(shard, bucket)))
            .update_expression("SET #w = :w, #v = :next, #u = :now, #e = :expires")
            .expression_attribute_names("#w", "window")
            .expression_attribute_names("#v", "version")
            .expression_attribute_names("#u", "updated_at")
            .expression_attribute_names("#e", "expires_at")
            .expression_attribute_values(":w", AttributeValue::B(Blob::new(window.encode())))
            .expression_attribute_values(":next", n(expected_version + 1))
            .expression_attribute_values(":now", n(now))
            .expression_attribute_values(":expires", n(i64::from(bucket) + i64::from(crate::dedup::HORIZON_SECS) * 2));
        let update = if expected_version == 0 {
            update.condition_expression("attribute_not_exists(pk)")
        } else {
            update.condition_expression("#v = :expected").expression_attribute_values(":expected", n(expected_version))
        };
        match update.send().await {
            Ok(_) => Ok(()),
            Err(e) if condition_failed(&e) => Err(CommitError::Conflict),
            Err(e) => Err(CommitError::Failed(describe_error(&e))),
        }
    }

    async fn load(&self, shard: &str, keys: &[AggKey]) -> Result<HashMap<AggKey, Stored>, StoreError> {
        let keys = keys.iter().map(key_of).collect();
        let items = batch_get(&self.client, &self.table, keys, |k| k.consistent_read(true)).await?;
        Ok(items.into_iter().filter_map(|i| decode(i, shard)).collect())
    }

    async fn commit(&self, w: &AggWrite) -> Result<(), CommitError> {
        let now = super::now_secs();
        let mut attributes = row_attributes(&w.row());
        attributes.remove("minute");
        attributes.insert("version".into(), n(w.expected_version + 1));
        attributes.insert(watermark_attr(&w.shard), s(w.watermark.padded()));
        attributes.insert("updated_at".into(), n(now));
        attributes.insert("expires_at".into(), n(w.key.minute + AGGREGATE_RETENTION_SECS));
        let mut update = self.client.update_item().table_name(&self.table).set_key(Some(key_of(&w.key)));
        let mut clauses = Vec::with_capacity(attributes.len());
        for (i, (name, value)) in attributes.into_iter().enumerate() {
            clauses.push(format!("#a{i} = :a{i}"));
            update = update
                .expression_attribute_names(format!("#a{i}"), name)
                .expression_attribute_values(format!(":a{i}"), value);
        }
        update = update.update_expression(format!("SET {}", clauses.join(", ")));
        update = if w.expected_version == 0 {
            update.condition_expression("attribute_not_exists(pk)")
        } else {
            update
                .condition_expression("#version = :expected")
                .expression_attribute_names("#version", "version")
                .expression_attribute_values(":expected", n(w.expected_version))
        };
        match update.send().await {
            Ok(_) => Ok(()),
            Err(e) if condition_failed(&e) => Err(CommitError::Conflict),
            Err(e) if rejected(&e) => Err(CommitError::Rejected(describe_error(&e))),
            Err(e) => Err(CommitError::Failed(describe_error(&e))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn a_written_row_reads_back_as_the_contract_row_other_services_decode() {
        let row = AggregateRow {
            tenant: TenantId::from_record("acme").unwrap(),
            series_id: "0123456789abcdef0123456789abcdef".into(),
            source: "web".into(),
            name: "latency".into(),
            labels: BTreeMap::from([("region".into(), "eu".into())]),
            minute: 1_764_072_000,
            count: 3,
            sum: 0.1 + 0.2,
            min: -1e-7,
            max: 1e30,
            sumsq: 1e60,
            first_ts: 1_764_072_000_000,
            last_ts: 1_764_072_059_999,
        };
        let mut item = row_attributes(&row);
        item.insert("pk".into(), s(AggregateRow::pk(&row.tenant, &row.series_id)));
        item.insert("version".into(), n(1));
        item.insert(watermark_attr("shard-1"), s(SeqNo::parse("42").unwrap().padded()));
        assert_eq!(from_item::<AggregateRow>(item.clone()).unwrap(), row);
        let (key, stored) = decode(item.clone(), "shard-1").unwrap();
        assert_eq!((key.minute, stored.version, stored.stats.count), (row.minute, 1, 3));
        assert_eq!(stored.watermark, SeqNo::parse("42"));
        // An item filed under another tenant's key is not read as this tenant's.
        item.insert("pk".into(), s("beta#0123456789abcdef0123456789abcdef"));
        assert!(decode(item, "shard-1").is_none());
    }
}
