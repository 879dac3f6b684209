//! What the trainer reads and writes in DynamoDB and Kinesis: the series list, the per-minute
//! aggregates (never raw events), finished runs, the jobs table and the jobs stream.

use std::collections::{BTreeSet, HashMap};

use aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder;
use aws_sdk_dynamodb::types::AttributeValue;
use naksha_core::aws::describe_error;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::train::{Outcome, SeriesData, TrainingData};

type Item = HashMap<String, AttributeValue>;

fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

fn n(v: impl ToString) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

fn get_s<'a>(item: &'a Item, name: &str) -> Option<&'a str> {
    item.get(name)?.as_s().ok().map(String::as_str)
}

fn get_f64(item: &Item, name: &str) -> Option<f64> {
    item.get(name)?.as_n().ok()?.parse().ok()
}

fn get_i64(item: &Item, name: &str) -> Option<i64> {
    item.get(name)?.as_n().ok()?.parse().ok()
}

/// Minutes since the epoch of an RFC 3339 time.
pub fn minute_of_rfc3339(t: &str) -> Option<i64> {
    chrono::DateTime::parse_from_rfc3339(t).ok().map(|d| d.timestamp().div_euclid(60))
}

pub fn rfc3339_of_minute(minute: i64) -> String {
    chrono::DateTime::from_timestamp(minute * 60, 0)
        .map(|d| d.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_default()
}

/// Decode one aggregate item into (minute since the epoch, mean of the minute). The table's
/// `minute` attribute is the minute's start in epoch seconds.
pub fn decode_aggregate(item: &Item) -> Option<(i64, f64)> {
    let count = get_f64(item, "count")?;
    (count > 0.0).then_some(())?;
    Some((get_i64(item, "minute")?.div_euclid(60), get_f64(item, "sum")? / count))
}

/// A finished run that acted (it has an audit record): its signal, chosen WPK and result.
pub fn decode_outcome(item: &Item) -> Option<Outcome> {
    let state: Value = serde_json::from_str(get_s(item, "state")?).ok()?;
    state.get("audit_seq")?.as_u64()?;
    let ok = match state.pointer("/outcome/status")?.as_str()? {
        "succeeded" => true,
        "failed" => false,
        _ => return None,
    };
    Some(Outcome {
        minute: minute_of_rfc3339(get_s(item, "updated_at")?)?,
        run_id: get_s(item, "run_id")?.to_owned(),
        signal: state.pointer("/request/signal")?.as_str()?.to_owned(),
        wpk: state.pointer("/decision/wpk_id")?.as_str()?.to_owned(),
        ok,
    })
}

#[derive(Debug, Clone)]
pub struct TrainingSource {
    db: aws_sdk_dynamodb::Client,
    series: String,
    aggregates: String,
    runs: String,
}

impl TrainingSource {
    pub fn new(db: aws_sdk_dynamodb::Client, series: String, aggregates: String, runs: String) -> Self {
        Self { db, series, aggregates, runs }
    }

    /// Every tenant with at least one series (the hourly schedule trains each).
    pub async fn tenants(&self) -> Result<BTreeSet<String>, String> {
        let items = self
            .db
            .scan()
            .table_name(&self.series)
            .projection_expression("#t")
            .expression_attribute_names("#t", "tenant")
            .into_paginator()
            .items()
            .send()
            .try_collect()
            .await
            .map_err(|e| describe_error(&e))?;
        Ok(items.iter().filter_map(|i| get_s(i, "tenant").map(str::to_owned)).collect())
    }

    async fn query_all(&self, query: QueryFluentBuilder) -> Result<Vec<Item>, String> {
        query.into_paginator().items().send().try_collect().await.map_err(|e| describe_error(&e))
    }

    /// The tenant's series ids (sparse `by_tenant` index on the series table).
    pub async fn series_ids(&self, tenant: &str) -> Result<Vec<String>, String> {
        let q = self
            .db
            .query()
            .table_name(&self.series)
            .index_name("by_tenant")
            .key_condition_expression("#t = :t")
            .expression_attribute_names("#t", "tenant")
            .expression_attribute_values(":t", s(tenant));
        let prefix = format!("{tenant}#");
        let mut ids: Vec<String> = self
            .query_all(q)
            .await?
            .iter()
            .filter_map(|i| get_s(i, "pk")?.strip_prefix(&prefix).map(str::to_owned))
            .collect();
        ids.sort();
        ids.dedup();
        Ok(ids)
    }

    /// One series' minute means in [from, to].
    pub async fn aggregates(
        &self,
        tenant: &str,
        series_id: &str,
        from: i64,
        to: i64,
    ) -> Result<Vec<(i64, f64)>, String> {
        let q = self
            .db
            .query()
            .table_name(&self.aggregates)
            .key_condition_expression("pk = :pk AND #m BETWEEN :from AND :to")
            .projection_expression("#m, #c, #s")
            .expression_attribute_names("#m", "minute")
            .expression_attribute_names("#c", "count")
            .expression_attribute_names("#s", "sum")
            .expression_attribute_values(":pk", s(format!("{tenant}#{series_id}")))
            .expression_attribute_values(":from", n(from * 60))
            .expression_attribute_values(":to", n(to * 60));
        Ok(self.query_all(q).await?.iter().filter_map(decode_aggregate).collect())
    }

    /// Runs of the tenant last updated in [from, to] that acted and finished.
    pub async fn outcomes(&self, tenant: &str, from: i64, to: i64) -> Result<Vec<Outcome>, String> {
        let q = self
            .db
            .query()
            .table_name(&self.runs)
            .index_name("by_tenant")
            .key_condition_expression("#t = :t AND #u BETWEEN :from AND :to")
            .expression_attribute_names("#t", "tenant")
            .expression_attribute_names("#u", "updated_at")
            .expression_attribute_values(":t", s(tenant))
            .expression_attribute_values(":from", s(rfc3339_of_minute(from)))
            // Runs store milliseconds: the whole last minute is included.
            .expression_attribute_values(":to", s(rfc3339_of_minute(to + 1)));
        let items = self.query_all(q).await?;
        Ok(items
            .iter()
            .filter(|i| get_s(i, "tenant") == Some(tenant))
            .filter_map(decode_outcome)
            .filter(|o| (from..=to).contains(&o.minute))
            .collect())
    }

    /// Everything training reads for one tenant and window, normalised.
    pub async fn load(&self, tenant: &str, from: i64, to: i64) -> Result<TrainingData, String> {
        let mut data = TrainingData { tenant: tenant.to_owned(), ..Default::default() };
        for id in self.series_ids(tenant).await? {
            let points = self.aggregates(tenant, &id, from, to).await?;
            data.series.push(SeriesData { series_id: id, points });
        }
        data.outcomes = self.outcomes(tenant, from, to).await?;
        data.normalise();
        Ok(data)
    }
}

/// A training job as stored in `naksha.jobs` and shown by `GET /jobs/{id}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Job {
    pub job_id: String,
    pub tenant: String,
    pub kind: String,
    pub status: String,
    pub stage: String,
    pub progress: f64,
    pub requested_by: String,
    pub requested_at: String,
    /// Training window: the `window_hours` before `window_to` (minute, fixed at request time so
    /// a redelivered job trains on the same data).
    pub window_hours: u32,
    pub window_to_minute: i64,
    pub updated_at: String,
    #[serde(default)]
    pub result: Option<Value>,
    #[serde(default)]
    pub error: Option<String>,
}

/// Jobs are kept 30 days (DynamoDB TTL on `expires_at`); versions are kept for good.
pub const JOB_RETENTION_SECS: i64 = 30 * 86_400;

pub const QUEUED: &str = "queued";
pub const RUNNING: &str = "running";
pub const SUCCEEDED: &str = "succeeded";
pub const FAILED: &str = "failed";

impl Job {
    pub fn is_final(&self) -> bool {
        self.status == SUCCEEDED || self.status == FAILED
    }
}

#[derive(Debug, Clone)]
pub struct Jobs {
    db: aws_sdk_dynamodb::Client,
    table: String,
}

impl Jobs {
    pub fn new(db: aws_sdk_dynamodb::Client, table: String) -> Self {
        Self { db, table }
    }

    /// Create a job; `Ok(false)` when that id exists already (a repeated schedule event).
    pub async fn create(&self, job: &Job) -> Result<bool, String> {
        match self.put(job, true).await {
            Ok(()) => Ok(true),
            Err(e) if e.as_service_error().is_some_and(|x| x.is_conditional_check_failed_exception()) => Ok(false),
            Err(e) => Err(describe_error(&e)),
        }
    }

    /// Record the job as it is now.
    pub async fn save(&self, job: &Job) -> Result<(), String> {
        self.put(job, false).await.map_err(|e| describe_error(&e))
    }

    async fn put(
        &self,
        job: &Job,
        only_new: bool,
    ) -> Result<(), aws_sdk_dynamodb::error::SdkError<aws_sdk_dynamodb::operation::put_item::PutItemError>> {
        let doc = serde_json::to_string(job).unwrap_or_default();
        let mut put = self
            .db
            .put_item()
            .table_name(&self.table)
            .item("pk", s(&job.tenant))
            .item("sk", s(&job.job_id))
            .item("doc", s(doc))
            .item("status", s(&job.status))
            .item("expires_at", n(chrono::Utc::now().timestamp() + JOB_RETENTION_SECS));
        if only_new {
            put = put.condition_expression("attribute_not_exists(pk)");
        }
        put.send().await.map(|_| ())
    }

    pub async fn get(&self, tenant: &str, job_id: &str) -> Result<Option<Job>, String> {
        let out = self
            .db
            .get_item()
            .table_name(&self.table)
            .key("pk", s(tenant))
            .key("sk", s(job_id))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| describe_error(&e))?;
        out.item().and_then(|i| get_s(i, "doc")).map(|d| serde_json::from_str(d).map_err(|e| e.to_string())).transpose()
    }

    pub async fn delete(&self, tenant: &str, job_id: &str) -> Result<(), String> {
        self.db
            .delete_item()
            .table_name(&self.table)
            .key("pk", s(tenant))
            .key("sk", s(job_id))
            .send()
            .await
            .map_err(|e| describe_error(&e))?;
        Ok(())
    }
}

/// The message on the jobs stream.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobMessage {
    pub tenant: String,
    pub job_id: String,
}

#[derive(Debug, Clone)]
pub struct JobQueue {
    kinesis: aws_sdk_kinesis::Client,
    stream: String,
}

impl JobQueue {
    pub fn new(kinesis: aws_sdk_kinesis::Client, stream: String) -> Self {
        Self { kinesis, stream }
    }

    pub async fn enqueue(&self, msg: &JobMessage) -> Result<(), String> {
        let data = serde_json::to_vec(msg).map_err(|e| e.to_string())?;
        self.kinesis
            .put_record()
            .stream_name(&self.stream)
            .partition_key(msg.tenant.chars().take(256).collect::<String>())
            .data(aws_sdk_kinesis::primitives::Blob::new(data))
            .send()
            .await
            .map_err(|e| describe_error(&e))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(pairs: &[(&str, AttributeValue)]) -> Item {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), v.clone())).collect()
    }

    #[test]
    fn aggregates_decode_to_minute_means_and_empty_minutes_are_skipped() {
        let a = item(&[("minute", n(29_000_000 * 60)), ("count", n(4)), ("sum", n(10))]);
        assert_eq!(decode_aggregate(&a), Some((29_000_000, 2.5)));
        let empty = item(&[("minute", n(1)), ("count", n(0)), ("sum", n(0))]);
        assert_eq!(decode_aggregate(&empty), None);
        assert_eq!(decode_aggregate(&item(&[("minute", n(1))])), None);
    }

    #[test]
    fn only_finished_runs_that_acted_are_outcomes() {
        let run = |status: &str, audited: bool| {
            let mut state = serde_json::json!({
                "request": {"signal": "anomaly.latency"},
                "decision": {"wpk_id": "shed"},
                "outcome": {"status": status},
            });
            if audited {
                state["audit_seq"] = 3.into();
            }
            item(&[("run_id", s("r1")), ("updated_at", s("2026-11-25T10:00:30.123Z")), ("state", s(state.to_string()))])
        };
        let o = decode_outcome(&run("succeeded", true)).unwrap();
        assert_eq!((o.signal.as_str(), o.wpk.as_str(), o.ok), ("anomaly.latency", "shed", true));
        assert_eq!(o.minute, minute_of_rfc3339("2026-11-25T10:00:00Z").unwrap());
        assert!(!decode_outcome(&run("failed", true)).unwrap().ok);
        assert_eq!(decode_outcome(&run("succeeded", false)), None, "never acted: nothing to learn");
        assert_eq!(decode_outcome(&run("rejected", true)), None);
    }

    #[test]
    fn minutes_round_trip_through_rfc3339() {
        assert_eq!(minute_of_rfc3339(&rfc3339_of_minute(29_400_000)), Some(29_400_000));
    }
}
