//! Each series' detector state in DynamoDB, and the open signals behind `GET /signals`.
//!
//! | attribute | value |
//! |---|---|
//! | `pk` | [`series_pk`] = `<tenant>#<series id>` (tenant first, P-5) |
//! | `state` | the [`SeriesState`] as JSON (a few kilobytes) |
//! | `version`, `wm#<shard>` | optimistic version and each shard's sequence watermark |
//! | `tenant`, `series_id`, `source`, `name`, `labels`, `score` | what the series is; `tenant` feeds the `by_tenant` index the trainer lists |
//! | `sent_run` | the open signal whose run message went out (written apart from the state, so recording a send never races a state write) |
//! | `open_tenant`, `signal_run`, `signal_minute`, `signal_score`, `signal_model` | only while a signal is open: the sparse `open_signals` index |
//! | `updated_at`, `expires_at` | epoch seconds; TTL [`SERIES_RETENTION_SECS`] after the last sample |

use std::collections::{HashMap, HashSet};

use naksha_contracts::TenantId;
use naksha_contracts::telemetry::SeriesMeta;
use naksha_core::aws::describe_error;
use naksha_core::ddb::{
    Item, batch_get, condition_failed, f, get_n, get_s, get_string_map, n, rejected, s, string_map,
};

use crate::detection::{DEFAULT_MODEL, SeriesState, SignalView, StoredSeries};
use crate::ports::{CommitError, OpenSignals, SeriesIndex, SeriesStore, StoreError};
use crate::series::{SeqNo, SeriesKey, watermark_attr};

/// How long a series' detector state outlives its last sample.
pub const SERIES_RETENTION_SECS: i64 = 35 * 24 * 3600;

#[derive(Debug, Clone)]
pub struct DynamoSeries {
    client: aws_sdk_dynamodb::Client,
    table: String,
}

fn key_of(key: &SeriesKey) -> Item {
    HashMap::from([("pk".to_owned(), s(key.pk()))])
}

fn decode(item: &Item, shard: &str) -> Option<(SeriesKey, StoredSeries)> {
    let (tenant, series_id) = TenantId::split_key(get_s(item, "pk")?)?;
    let key = SeriesKey { tenant, series_id: series_id.to_owned() };
    let mut state: SeriesState = match serde_json::from_str(get_s(item, "state")?) {
        Ok(s) => s,
        Err(e) => {
            // A state this code cannot read (an older layout): start the series afresh rather
            // than block its records.
            tracing::warn!(series = %key.series_id, error = %e, "unreadable detector state replaced");
            SeriesState::default()
        }
    };
    let sent = get_s(item, "sent_run");
    if let Some(open) = state.open_signal.as_mut() {
        open.sent |= sent == Some(open.run_id.as_str());
    }
    let version = get_n(item, "version")?;
    let watermark = get_s(item, &watermark_attr(shard)).and_then(SeqNo::from_padded);
    Some((key, StoredSeries { state, version, watermark }))
}

impl DynamoSeries {
    pub fn new(client: aws_sdk_dynamodb::Client, table: impl Into<String>) -> Self {
        Self { client, table: table.into() }
    }
}

impl SeriesStore for DynamoSeries {
    async fn load(&self, shard: &str, keys: &[SeriesKey]) -> Result<HashMap<SeriesKey, StoredSeries>, StoreError> {
        let keys = keys.iter().map(key_of).collect();
        let items = batch_get(&self.client, &self.table, keys, |k| k.consistent_read(true)).await?;
        Ok(items.iter().filter_map(|i| decode(i, shard)).collect())
    }

    async fn commit(
        &self,
        shard: &str,
        key: &SeriesKey,
        meta: &SeriesMeta,
        state: &SeriesState,
        expected_version: u64,
        watermark: &SeqNo,
    ) -> Result<(), CommitError> {
        let json = serde_json::to_string(state).map_err(|e| CommitError::Failed(e.to_string()))?;
        let now = super::now_secs();
        let mut set: Vec<(&str, aws_sdk_dynamodb::types::AttributeValue)> = vec![
            ("state", s(json)),
            ("version", n(expected_version + 1)),
            ("tenant", s(key.tenant.as_str())),
            ("series_id", s(&key.series_id)),
            ("source", s(&meta.source)),
            ("name", s(&meta.name)),
            ("labels", string_map(&meta.labels)),
            ("score", f(state.last_score)),
            ("updated_at", n(now)),
            ("expires_at", n(now + SERIES_RETENTION_SECS)),
        ];
        // While a signal is open the item carries it in plain attributes; `open_tenant` feeds the
        // sparse `open_signals` index, and disappears when the signal closes.
        let signal = ["open_tenant", "signal_run", "signal_minute", "signal_score", "signal_model"];
        if let Some(open) = &state.open_signal {
            set.extend([
                ("open_tenant", s(key.tenant.as_str())),
                ("signal_run", s(&open.run_id)),
                ("signal_minute", n(open.minute)),
                ("signal_score", f(open.score)),
                ("signal_model", s(state.model_id.as_deref().unwrap_or(DEFAULT_MODEL))),
            ]);
        }
        let mut update = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key_of(key)))
            .expression_attribute_names("#wm", watermark_attr(shard))
            .expression_attribute_values(":wm", s(watermark.padded()));
        let mut clauses = vec!["#wm = :wm".to_owned()];
        for (name, value) in set {
            clauses.push(format!("#{name} = :{name}"));
            update = update
                .expression_attribute_names(format!("#{name}"), name)
                .expression_attribute_values(format!(":{name}"), value);
        }
        let mut expression = format!("SET {}", clauses.join(", "));
        if state.open_signal.is_none() {
            expression.push_str(" REMOVE ");
            expression.push_str(&signal.iter().map(|a| format!("#{a}")).collect::<Vec<_>>().join(", "));
            for a in signal {
                update = update.expression_attribute_names(format!("#{a}"), a);
            }
        }
        update = update.update_expression(expression);
        update = if expected_version == 0 {
            update.condition_expression("attribute_not_exists(pk)")
        } else {
            update
                .condition_expression("#version = :expected")
                .expression_attribute_values(":expected", n(expected_version))
        };
        match update.send().await {
            Ok(_) => Ok(()),
            Err(e) if condition_failed(&e) => Err(CommitError::Conflict),
            Err(e) if rejected(&e) => Err(CommitError::Rejected(describe_error(&e))),
            Err(e) => Err(CommitError::Failed(describe_error(&e))),
        }
    }

    async fn mark_sent(&self, key: &SeriesKey, run_id: &str) -> Result<(), StoreError> {
        self.client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key_of(key)))
            .update_expression("SET sent_run = :run")
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_values(":run", s(run_id))
            .send()
            .await
            .map_err(|e| StoreError(describe_error(&e)))?;
        Ok(())
    }
}

/// Series ids are looked up 100 to a BatchGetItem, this many at once.
const INDEX_CONCURRENCY: usize = 8;

impl SeriesIndex for DynamoSeries {
    async fn known(&self, tenant: &TenantId, series_ids: &[String]) -> Result<HashSet<String>, StoreError> {
        use futures::StreamExt;
        let chunks: Vec<Vec<Item>> = series_ids
            .chunks(100)
            .map(|c| c.iter().map(|id| key_of(&SeriesKey { tenant: tenant.clone(), series_id: id.clone() })).collect())
            .collect();
        let reads = futures::stream::iter(
            chunks
                .into_iter()
                .map(|keys| batch_get(&self.client, &self.table, keys, |k| k.projection_expression("pk"))),
        )
        .buffer_unordered(INDEX_CONCURRENCY)
        .collect::<Vec<_>>()
        .await;
        let mut known = HashSet::new();
        for items in reads {
            for item in items? {
                if let Some((t, id)) = get_s(&item, "pk").and_then(TenantId::split_key)
                    && t == *tenant
                {
                    known.insert(id.to_owned());
                }
            }
        }
        Ok(known)
    }
}

impl OpenSignals for DynamoSeries {
    async fn open_signals(&self, tenant: &TenantId, limit: usize) -> Result<Vec<SignalView>, StoreError> {
        // The sparse index gives the keys, newest first; the items come from the table.
        let mut keys = Vec::new();
        let mut pages = self
            .client
            .query()
            .table_name(&self.table)
            .index_name("open_signals")
            .key_condition_expression("open_tenant = :tenant")
            .expression_attribute_values(":tenant", s(tenant.as_str()))
            .scan_index_forward(false)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| StoreError(describe_error(&e)))?;
            keys.extend(page.items().iter().filter_map(|i| get_s(i, "pk").map(str::to_owned)));
            if keys.len() >= limit {
                break;
            }
        }
        keys.truncate(limit);
        let keys = keys.into_iter().map(|pk| HashMap::from([("pk".to_owned(), s(pk))])).collect();
        let items = batch_get(&self.client, &self.table, keys, |k| {
            k.projection_expression(
                "tenant, series_id, #source, #name, labels, score, signal_run, signal_minute, signal_score, \
                 signal_model",
            )
            .expression_attribute_names("#source", "source")
            .expression_attribute_names("#name", "name")
        })
        .await?;
        let mut out = Vec::with_capacity(items.len());
        for item in &items {
            // The index key names the tenant; the item must agree (defence in depth), and the
            // signal may have closed since the index was read.
            if get_s(item, "tenant") != Some(tenant.as_str()) {
                continue;
            }
            let Some(run_id) = get_s(item, "signal_run") else { continue };
            let text = |name: &str| get_s(item, name).unwrap_or_default().to_owned();
            out.push(SignalView {
                series_id: text("series_id"),
                source: text("source"),
                name: text("name"),
                labels: get_string_map(item, "labels"),
                run_id: run_id.to_owned(),
                minute: get_n(item, "signal_minute").unwrap_or_default(),
                score: get_n(item, "signal_score").unwrap_or_default(),
                model_id: text("signal_model"),
                current_score: get_n(item, "score").unwrap_or_default(),
            });
        }
        out.sort_by(|a, b| b.minute.cmp(&a.minute).then_with(|| a.series_id.cmp(&b.series_id)));
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use naksha_contracts::telemetry::series_pk;

    #[test]
    fn a_series_item_is_read_back_under_its_own_tenant_only() {
        let key = SeriesKey { tenant: TenantId::from_record("acme").unwrap(), series_id: "abc".into() };
        assert_eq!(key.pk(), series_pk(&key.tenant, "abc"));
        let mut item = key_of(&key);
        item.insert("state".into(), s(serde_json::to_string(&SeriesState::default()).unwrap()));
        item.insert("version".into(), n(3));
        let (back, stored) = decode(&item, "shard-0").unwrap();
        assert_eq!((back, stored.version), (key, 3));
    }
}
