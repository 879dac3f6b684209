//! AWS adapters for the insight-stream domain: aggregates and dead letters in DynamoDB,
//! records into Kinesis.

use std::collections::HashMap;
use std::time::Duration;

use aws_sdk_dynamodb::types::builders::KeysAndAttributesBuilder;
use aws_sdk_dynamodb::types::{AttributeValue, KeysAndAttributes};
use aws_sdk_kinesis::primitives::Blob;
use aws_sdk_kinesis::types::PutRecordsRequestEntry;
use naksha_core::aws::describe_error;

use crate::aggregate::{
    AggKey, AggWrite, AggregateStore, CommitError, DeadLetterStore, PoisonRecord, SeqNo, SeriesMeta, Stats, StoreError,
    Stored,
};
use crate::detection::{
    DEFAULT_MODEL, OpenSignals, SeriesKey, SeriesState, SeriesStore, SignalSink, SignalView, StoredSeries,
};
use crate::ingest::{OutRecord, RecordSink, SinkError};
use naksha_core::runs::{RunMessage, partition_key};

/// How long aggregates are kept (DynamoDB TTL).
pub const AGGREGATE_RETENTION_SECS: i64 = 400 * 24 * 3600;
/// How long dead letters are kept.
pub const DEAD_LETTER_RETENTION_SECS: i64 = 14 * 24 * 3600;

/// A DynamoDB number from an `f64`: plain digits where they are short, E notation otherwise.
pub fn number(v: f64) -> String {
    let a = v.abs();
    if a == 0.0 || (1e-12..1e20).contains(&a) { format!("{v}") } else { format!("{v:e}") }
}

fn n(v: f64) -> AttributeValue {
    AttributeValue::N(number(v))
}

fn get_f64(item: &HashMap<String, AttributeValue>, name: &str) -> Option<f64> {
    item.get(name)?.as_n().ok()?.parse().ok()
}

fn get_i64(item: &HashMap<String, AttributeValue>, name: &str) -> Option<i64> {
    item.get(name)?.as_n().ok()?.parse().ok()
}

/// Read `keys` with BatchGetItem: 100 per request, unprocessed keys retried with backoff (an
/// error after 8 tries). `shape` sets each request's read options (consistency, projection).
async fn batch_get(
    client: &aws_sdk_dynamodb::Client,
    table: &str,
    keys: Vec<HashMap<String, AttributeValue>>,
    shape: impl Fn(KeysAndAttributesBuilder) -> KeysAndAttributesBuilder,
) -> Result<Vec<HashMap<String, AttributeValue>>, StoreError> {
    let mut out = Vec::with_capacity(keys.len());
    for chunk in keys.chunks(100) {
        let first = shape(KeysAndAttributes::builder().set_keys(Some(chunk.to_vec())))
            .build()
            .map_err(|e| StoreError::Failed(e.to_string()))?;
        let mut request = Some(first);
        let mut attempt = 0u32;
        while let Some(req) = request.take() {
            let resp = client
                .batch_get_item()
                .request_items(table, req)
                .send()
                .await
                .map_err(|e| StoreError::Failed(describe_error(&e)))?;
            if let Some(items) = resp.responses().and_then(|r| r.get(table)) {
                out.extend(items.iter().cloned());
            }
            if let Some(rest) = resp.unprocessed_keys().and_then(|u| u.get(table)).filter(|r| !r.keys().is_empty()) {
                attempt += 1;
                if attempt > 8 {
                    return Err(StoreError::Failed("BatchGetItem kept returning unprocessed keys".into()));
                }
                tokio::time::sleep(Duration::from_millis(25 << attempt.min(6))).await;
                request = Some(rest.clone());
            }
        }
    }
    Ok(out)
}

fn watermark_attr(shard: &str) -> String {
    format!("wm#{shard}")
}

fn now_secs() -> i64 {
    chrono::Utc::now().timestamp()
}

/// Per-minute aggregates: `pk` = `<tenant>#<series id>`, `minute` = epoch seconds.
#[derive(Debug, Clone)]
pub struct DynamoAggregates {
    client: aws_sdk_dynamodb::Client,
    table: String,
}

impl DynamoAggregates {
    pub fn new(client: aws_sdk_dynamodb::Client, table: impl Into<String>) -> Self {
        Self { client, table: table.into() }
    }

    fn key_of(k: &AggKey) -> HashMap<String, AttributeValue> {
        HashMap::from([
            ("pk".to_owned(), AttributeValue::S(k.pk())),
            ("minute".to_owned(), AttributeValue::N(k.minute.to_string())),
        ])
    }

    fn decode(item: &HashMap<String, AttributeValue>, shard: &str) -> Option<(AggKey, Stored)> {
        let pk = item.get("pk")?.as_s().ok()?;
        let (tenant, series_id) = pk.split_once('#')?;
        let key =
            AggKey { tenant: tenant.to_owned(), series_id: series_id.to_owned(), minute: get_i64(item, "minute")? };
        let stats = Stats {
            count: get_i64(item, "count")?.try_into().ok()?,
            sum: get_f64(item, "sum")?,
            min: get_f64(item, "min")?,
            max: get_f64(item, "max")?,
            sumsq: get_f64(item, "sumsq")?,
            first_ts: get_i64(item, "first_ts")?,
            last_ts: get_i64(item, "last_ts")?,
        };
        let version = get_i64(item, "version")?.try_into().ok()?;
        let watermark =
            item.get(&watermark_attr(shard)).and_then(|v| v.as_s().ok()).and_then(|s| SeqNo::from_padded(s));
        Some((key, Stored { stats, version, watermark }))
    }
}

impl AggregateStore for DynamoAggregates {
    async fn load(&self, shard: &str, keys: &[AggKey]) -> Result<HashMap<AggKey, Stored>, StoreError> {
        let keys = keys.iter().map(Self::key_of).collect();
        let items = batch_get(&self.client, &self.table, keys, |k| k.consistent_read(true)).await?;
        Ok(items.iter().filter_map(|i| Self::decode(i, shard)).collect())
    }

    async fn commit(&self, w: &AggWrite) -> Result<(), CommitError> {
        let labels: HashMap<String, AttributeValue> =
            w.meta.labels.iter().map(|(k, v)| (k.clone(), AttributeValue::S(v.clone()))).collect();
        let condition = if w.expected_version == 0 { "attribute_not_exists(pk)" } else { "#version = :expected" };
        let mut update = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(Self::key_of(&w.key)))
            .update_expression(
                "SET #count = :count, #sum = :sum, #min = :min, #max = :max, #sumsq = :sumsq, \
                 #first_ts = :first_ts, #last_ts = :last_ts, #version = :version, #wm = :wm, \
                 #tenant = :tenant, #series_id = :series_id, #source = :source, #name = :name, \
                 #labels = :labels, #updated_at = :updated_at, #expires_at = :expires_at, \
                 #tenant_source = :tenant_source",
            )
            .condition_expression(condition);
        for name in [
            "count",
            "sum",
            "min",
            "max",
            "sumsq",
            "first_ts",
            "last_ts",
            "version",
            "tenant",
            "series_id",
            "source",
            "name",
            "labels",
            "updated_at",
            "expires_at",
            "tenant_source",
        ] {
            update = update.expression_attribute_names(format!("#{name}"), name);
        }
        update = update
            .expression_attribute_names("#wm", watermark_attr(&w.shard))
            .expression_attribute_values(":count", AttributeValue::N(w.stats.count.to_string()))
            .expression_attribute_values(":sum", n(w.stats.sum))
            .expression_attribute_values(":min", n(w.stats.min))
            .expression_attribute_values(":max", n(w.stats.max))
            .expression_attribute_values(":sumsq", n(w.stats.sumsq))
            .expression_attribute_values(":first_ts", AttributeValue::N(w.stats.first_ts.to_string()))
            .expression_attribute_values(":last_ts", AttributeValue::N(w.stats.last_ts.to_string()))
            .expression_attribute_values(":version", AttributeValue::N((w.expected_version + 1).to_string()))
            .expression_attribute_values(":wm", AttributeValue::S(w.watermark.padded().to_owned()))
            .expression_attribute_values(":tenant", AttributeValue::S(w.key.tenant.clone()))
            .expression_attribute_values(":series_id", AttributeValue::S(w.key.series_id.clone()))
            .expression_attribute_values(":source", AttributeValue::S(w.meta.source.clone()))
            .expression_attribute_values(":name", AttributeValue::S(w.meta.name.clone()))
            // Feeds the `by_source` index: the agent reads a resource's series by source.
            .expression_attribute_values(
                ":tenant_source",
                AttributeValue::S(format!("{}#{}", w.key.tenant, w.meta.source)),
            )
            .expression_attribute_values(":labels", AttributeValue::M(labels))
            .expression_attribute_values(":updated_at", AttributeValue::N(now_secs().to_string()))
            .expression_attribute_values(
                ":expires_at",
                AttributeValue::N((w.key.minute + AGGREGATE_RETENTION_SECS).to_string()),
            );
        if w.expected_version != 0 {
            update = update.expression_attribute_values(":expected", AttributeValue::N(w.expected_version.to_string()));
        }
        match update.send().await {
            Ok(_) => Ok(()),
            Err(e) if e.as_service_error().is_some_and(|s| s.is_conditional_check_failed_exception()) => {
                Err(CommitError::Conflict)
            }
            Err(e) => Err(CommitError::Failed(describe_error(&e))),
        }
    }
}

/// Poison records: `pk` = `shard#<shard id>`, `seq` = the sequence number.
#[derive(Debug, Clone)]
pub struct DynamoDeadLetters {
    client: aws_sdk_dynamodb::Client,
    table: String,
}

impl DynamoDeadLetters {
    pub fn new(client: aws_sdk_dynamodb::Client, table: impl Into<String>) -> Self {
        Self { client, table: table.into() }
    }
}

impl DeadLetterStore for DynamoDeadLetters {
    async fn record(&self, letters: &[PoisonRecord]) -> Result<usize, StoreError> {
        let mut new = 0;
        let now = now_secs();
        for l in letters {
            let put = self
                .client
                .put_item()
                .table_name(&self.table)
                .item("pk", AttributeValue::S(format!("shard#{}", l.shard)))
                .item("seq", AttributeValue::S(l.seq.clone()))
                .item("reason", AttributeValue::S(l.reason.chars().take(500).collect()))
                .item("size", AttributeValue::N(l.size.to_string()))
                .item("sha256", AttributeValue::S(l.sha256.clone()))
                .item("recorded_at", AttributeValue::N(now.to_string()))
                .item("expires_at", AttributeValue::N((now + DEAD_LETTER_RETENTION_SECS).to_string()))
                .condition_expression("attribute_not_exists(pk)")
                .send()
                .await;
            match put {
                Ok(_) => new += 1,
                Err(e) if e.as_service_error().is_some_and(|s| s.is_conditional_check_failed_exception()) => {}
                Err(e) => return Err(StoreError::Failed(describe_error(&e))),
            }
        }
        Ok(new)
    }
}

/// How long a series' detector state outlives its last sample.
pub const SERIES_RETENTION_SECS: i64 = 35 * 24 * 3600;

/// Detector state per series: `pk` = `<tenant>#<series id>`. The state is one JSON attribute
/// (a few kilobytes); `sent_run` names the open signal whose run message went out, written
/// apart from the state so that recording a send never races a state write.
#[derive(Debug, Clone)]
pub struct DynamoSeries {
    client: aws_sdk_dynamodb::Client,
    table: String,
}

impl DynamoSeries {
    pub fn new(client: aws_sdk_dynamodb::Client, table: impl Into<String>) -> Self {
        Self { client, table: table.into() }
    }

    fn decode(item: &HashMap<String, AttributeValue>, shard: &str) -> Option<(SeriesKey, StoredSeries)> {
        let pk = item.get("pk")?.as_s().ok()?;
        let (tenant, series_id) = pk.split_once('#')?;
        let key = SeriesKey { tenant: tenant.to_owned(), series_id: series_id.to_owned() };
        let mut state: SeriesState = match serde_json::from_str(item.get("state")?.as_s().ok()?) {
            Ok(s) => s,
            Err(e) => {
                // A state this code cannot read (an older layout): start the series afresh
                // rather than block its records.
                tracing::warn!(series = %series_id, error = %e, "unreadable detector state replaced");
                SeriesState::default()
            }
        };
        let sent = item.get("sent_run").and_then(|v| v.as_s().ok());
        if let Some(open) = state.open_signal.as_mut() {
            open.sent |= sent == Some(&open.run_id);
        }
        let version = get_i64(item, "version")?.try_into().ok()?;
        let watermark =
            item.get(&watermark_attr(shard)).and_then(|v| v.as_s().ok()).and_then(|s| SeqNo::from_padded(s));
        Some((key, StoredSeries { state, version, watermark }))
    }
}

impl SeriesStore for DynamoSeries {
    async fn load(&self, shard: &str, keys: &[SeriesKey]) -> Result<HashMap<SeriesKey, StoredSeries>, StoreError> {
        let keys = keys.iter().map(|k| HashMap::from([("pk".to_owned(), AttributeValue::S(k.pk()))])).collect();
        let items = batch_get(&self.client, &self.table, keys, |k| k.consistent_read(true)).await?;
        Ok(items.iter().filter_map(|i| Self::decode(i, shard)).collect())
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
        let labels: HashMap<String, AttributeValue> =
            meta.labels.iter().map(|(k, v)| (k.clone(), AttributeValue::S(v.clone()))).collect();
        let condition = if expected_version == 0 { "attribute_not_exists(pk)" } else { "#version = :expected" };
        let now = now_secs();
        // While a signal is open the item carries it in plain attributes; `open_tenant` feeds the
        // sparse `open_signals` index behind `GET /signals`, and disappears when the signal closes.
        let signal_clause = if state.open_signal.is_some() {
            "#open_tenant = :tenant, #signal_run = :signal_run, #signal_minute = :signal_minute, \
             #signal_score = :signal_score, #signal_model = :signal_model"
        } else {
            ""
        };
        let expression = format!(
            "SET #state = :state, #version = :version, #wm = :wm, #tenant = :tenant, #series_id = :series_id, \
             #source = :source, #name = :name, #labels = :labels, #score = :score, #updated_at = :now, \
             #expires_at = :expires_at{}{}",
            if signal_clause.is_empty() { "" } else { ", " },
            if signal_clause.is_empty() {
                " REMOVE #open_tenant, #signal_run, #signal_minute, #signal_score, #signal_model"
            } else {
                signal_clause
            }
        );
        let mut update = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", AttributeValue::S(key.pk()))
            .update_expression(expression)
            .condition_expression(condition)
            .expression_attribute_names("#wm", watermark_attr(shard));
        for name in [
            "state",
            "version",
            "tenant",
            "series_id",
            "source",
            "name",
            "labels",
            "score",
            "updated_at",
            "expires_at",
            "open_tenant",
            "signal_run",
            "signal_minute",
            "signal_score",
            "signal_model",
        ] {
            update = update.expression_attribute_names(format!("#{name}"), name);
        }
        update = update
            .expression_attribute_values(":state", AttributeValue::S(json))
            .expression_attribute_values(":version", AttributeValue::N((expected_version + 1).to_string()))
            .expression_attribute_values(":wm", AttributeValue::S(watermark.padded().to_owned()))
            .expression_attribute_values(":tenant", AttributeValue::S(key.tenant.clone()))
            .expression_attribute_values(":series_id", AttributeValue::S(key.series_id.clone()))
            .expression_attribute_values(":source", AttributeValue::S(meta.source.clone()))
            .expression_attribute_values(":name", AttributeValue::S(meta.name.clone()))
            .expression_attribute_values(":labels", AttributeValue::M(labels))
            .expression_attribute_values(":score", n(state.last_score))
            .expression_attribute_values(":now", AttributeValue::N(now.to_string()))
            .expression_attribute_values(":expires_at", AttributeValue::N((now + SERIES_RETENTION_SECS).to_string()));
        if let Some(open) = &state.open_signal {
            update = update
                .expression_attribute_values(":signal_run", AttributeValue::S(open.run_id.clone()))
                .expression_attribute_values(":signal_minute", AttributeValue::N(open.minute.to_string()))
                .expression_attribute_values(":signal_score", n(open.score))
                .expression_attribute_values(
                    ":signal_model",
                    AttributeValue::S(state.model_id.clone().unwrap_or_else(|| DEFAULT_MODEL.to_owned())),
                );
        }
        if expected_version != 0 {
            update = update.expression_attribute_values(":expected", AttributeValue::N(expected_version.to_string()));
        }
        match update.send().await {
            Ok(_) => Ok(()),
            Err(e) if e.as_service_error().is_some_and(|s| s.is_conditional_check_failed_exception()) => {
                Err(CommitError::Conflict)
            }
            Err(e) => Err(CommitError::Failed(describe_error(&e))),
        }
    }

    async fn mark_sent(&self, key: &SeriesKey, run_id: &str) -> Result<(), StoreError> {
        self.client
            .update_item()
            .table_name(&self.table)
            .key("pk", AttributeValue::S(key.pk()))
            .update_expression("SET sent_run = :run")
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_values(":run", AttributeValue::S(run_id.to_owned()))
            .send()
            .await
            .map_err(|e| StoreError::Failed(describe_error(&e)))?;
        Ok(())
    }
}

impl OpenSignals for DynamoSeries {
    async fn open_signals(&self, tenant: &str, limit: usize) -> Result<Vec<SignalView>, StoreError> {
        // The sparse index gives the keys, newest first; the items come from the table.
        let mut keys = Vec::new();
        let mut pages = self
            .client
            .query()
            .table_name(&self.table)
            .index_name("open_signals")
            .key_condition_expression("open_tenant = :tenant")
            .expression_attribute_values(":tenant", AttributeValue::S(tenant.to_owned()))
            .scan_index_forward(false)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| StoreError::Failed(describe_error(&e)))?;
            keys.extend(page.items().iter().filter_map(|i| i.get("pk").and_then(|v| v.as_s().ok()).cloned()));
            if keys.len() >= limit {
                break;
            }
        }
        keys.truncate(limit);
        let keys = keys.iter().map(|pk| HashMap::from([("pk".to_owned(), AttributeValue::S(pk.clone()))])).collect();
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
            let text = |name: &str| item.get(name).and_then(|v| v.as_s().ok()).cloned();
            if text("tenant").as_deref() != Some(tenant) {
                continue;
            }
            let Some(run_id) = text("signal_run") else { continue };
            let labels = item
                .get("labels")
                .and_then(|v| v.as_m().ok())
                .map(|m| m.iter().filter_map(|(k, v)| Some((k.clone(), v.as_s().ok()?.clone()))).collect())
                .unwrap_or_default();
            out.push(SignalView {
                series_id: text("series_id").unwrap_or_default(),
                source: text("source").unwrap_or_default(),
                name: text("name").unwrap_or_default(),
                labels,
                run_id,
                minute: get_i64(item, "signal_minute").unwrap_or_default(),
                score: get_f64(item, "signal_score").unwrap_or_default(),
                model_id: text("signal_model").unwrap_or_default(),
                current_score: get_f64(item, "score").unwrap_or_default(),
            });
        }
        out.sort_by(|a, b| b.minute.cmp(&a.minute).then_with(|| a.series_id.cmp(&b.series_id)));
        Ok(out)
    }
}

/// Signals onto the agent's runs stream, partitioned like every other run message.
#[derive(Debug, Clone)]
pub struct KinesisSignals {
    client: aws_sdk_kinesis::Client,
    stream: String,
}

impl KinesisSignals {
    pub fn new(client: aws_sdk_kinesis::Client, stream: impl Into<String>) -> Self {
        Self { client, stream: stream.into() }
    }
}

impl SignalSink for KinesisSignals {
    async fn send(&self, message: &RunMessage, resource: &str) -> Result<(), String> {
        let body = serde_json::to_vec(message).map_err(|e| e.to_string())?;
        self.client
            .put_record()
            .stream_name(&self.stream)
            .partition_key(partition_key(&message.tenant, resource))
            .data(Blob::new(body))
            .send()
            .await
            .map_err(|e| describe_error(&e))?;
        Ok(())
    }
}

/// Records into a Kinesis stream with `PutRecords`.
#[derive(Debug, Clone)]
pub struct KinesisSink {
    client: aws_sdk_kinesis::Client,
    stream: String,
}

impl KinesisSink {
    pub fn new(client: aws_sdk_kinesis::Client, stream: impl Into<String>) -> Self {
        Self { client, stream: stream.into() }
    }
}

/// Attempts for records that Kinesis refused (throttling) before giving up on them.
const PUT_ATTEMPTS: u32 = 4;

impl RecordSink for KinesisSink {
    async fn put(&self, records: &[OutRecord]) -> Result<(), SinkError> {
        let mut pending: Vec<&OutRecord> = records.iter().collect();
        let mut last_error = String::new();
        for attempt in 0..PUT_ATTEMPTS {
            if attempt > 0 {
                tokio::time::sleep(Duration::from_millis(50 << attempt)).await;
            }
            let entries = pending
                .iter()
                .map(|r| {
                    PutRecordsRequestEntry::builder()
                        .partition_key(&r.partition_key)
                        .data(Blob::new(r.data.clone()))
                        .build()
                })
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| SinkError::Failed(e.to_string()))?;
            let resp = match self.client.put_records().stream_name(&self.stream).set_records(Some(entries)).send().await
            {
                Ok(r) => r,
                Err(e) => {
                    last_error = describe_error(&e);
                    continue;
                }
            };
            if resp.failed_record_count().unwrap_or(0) == 0 {
                return Ok(());
            }
            let results = resp.records();
            let mut still = Vec::new();
            for (i, r) in pending.iter().enumerate() {
                if results.get(i).is_none_or(|res| res.error_code().is_some()) {
                    if let Some(code) = results.get(i).and_then(|res| res.error_code()) {
                        last_error = code.to_owned();
                    }
                    still.push(*r);
                }
            }
            pending = still;
        }
        if pending.len() == records.len() {
            Err(SinkError::Failed(last_error))
        } else {
            Err(SinkError::Partial {
                failed_event_ids: pending.iter().map(|r| r.event_id.clone()).collect(),
                cause: last_error,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_round_trip_through_their_dynamodb_text() {
        for v in [0.0, 1.0, -2.5, 0.1 + 0.2, 1e-7, 123456789.123, 1e19, 1e30, -3.3e-40, 1e100] {
            let text = number(v);
            assert_eq!(text.parse::<f64>().unwrap(), v, "{text}");
            assert!(text.len() < 40, "{text}");
        }
    }
}
