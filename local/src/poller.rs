//! What Lambda's Kinesis event source mapping does, for the local stack: read each shard in
//! order, invoke the consumer with real `KinesisEvent` payloads through `cargo lambda watch`,
//! and honour `batchItemFailures` (retry from the reported record), `MaximumRetryAttempts`,
//! `BisectBatchOnFunctionError`, and the on-failure destination (a local JSON-lines file).
//! Like the service, it checkpoints each shard after a batch is handled (a file per shard under
//! `.local/checkpoints/`), so a poller killed and started again carries on after the last batch
//! it finished: the batch in flight when it died is delivered again, nothing is skipped.

use std::collections::HashSet;
use std::path::PathBuf;
use std::time::Duration;

use aws_lambda_events::encodings::{Base64Data, SecondTimestamp};
use aws_lambda_events::event::kinesis::{KinesisEvent, KinesisEventRecord, KinesisRecord};
use aws_sdk_kinesis::types::{Record, ShardIteratorType};
use serde_json::{Value, json};
use tokio::io::AsyncWriteExt;

use crate::stack::REGION;

/// One event source mapping, resolved to physical names.
#[derive(Debug, Clone)]
pub struct Mapping {
    pub function: String,
    pub stream: String,
    pub stream_arn: String,
    pub batch_size: i32,
    pub starting_position: ShardIteratorType,
    /// -1 means retry until the record expires; locally we cap it at 10.
    pub max_retries: u32,
    pub bisect_on_error: bool,
    pub report_batch_item_failures: bool,
    pub invoke_url: String,
    /// How long an invocation may take before it counts as a function error (Lambda's timeout:
    /// a worker that died mid-batch does not hold the shard forever; its batch is retried).
    pub invoke_timeout: Duration,
    pub failures_file: PathBuf,
    /// The directory of checkpoint files, one per function and shard.
    pub checkpoints: PathBuf,
    /// A JSON line per invocation (function, records, duration, outcome): what Lambda would bill,
    /// read by `make load` for the cost report.
    pub invocations_file: PathBuf,
}

impl Mapping {
    fn checkpoint_file(&self, shard: &str) -> PathBuf {
        let safe = |s: &str| {
            s.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' { c } else { '_' }).collect::<String>()
        };
        self.checkpoints.join(format!("{}.{}.{}", safe(&self.function), safe(&self.stream), safe(shard)))
    }

    /// The last sequence number handled on this shard by an earlier poller, if any.
    pub fn checkpoint(&self, shard: &str) -> Option<String> {
        let text = std::fs::read_to_string(self.checkpoint_file(shard)).ok()?;
        let seq = text.trim();
        (!seq.is_empty() && seq.bytes().all(|b| b.is_ascii_digit())).then(|| seq.to_owned())
    }

    /// Record that everything up to `seq` is handled (written aside, then renamed: a poller killed
    /// mid-write leaves the previous checkpoint, never half of one).
    async fn save_checkpoint(&self, shard: &str, seq: &str) {
        let file = self.checkpoint_file(shard);
        let tmp = file.with_extension("tmp");
        let written = async {
            tokio::fs::create_dir_all(&self.checkpoints).await?;
            tokio::fs::write(&tmp, seq).await?;
            tokio::fs::rename(&tmp, &file).await
        };
        if let Err(e) = written.await {
            tracing::warn!(shard, error = %e, "could not save the checkpoint");
        }
    }
}

const IDLE_POLL: Duration = Duration::from_millis(200);

/// Poll every shard of the mapping's stream, picking up new shards as they appear. The shard
/// pollers belong to this task: aborting it stops them all, as killing the process would.
pub async fn run(kinesis: aws_sdk_kinesis::Client, http: reqwest::Client, mapping: Mapping) {
    let mut started: HashSet<String> = HashSet::new();
    let mut shards = tokio::task::JoinSet::new();
    loop {
        match kinesis.list_shards().stream_name(&mapping.stream).send().await {
            Ok(out) => {
                for shard in out.shards() {
                    let id = shard.shard_id().to_owned();
                    if started.insert(id.clone()) {
                        tracing::info!(stream = %mapping.stream, shard = %id, function = %mapping.function, "polling shard");
                        shards.spawn(poll_shard(kinesis.clone(), http.clone(), mapping.clone(), id));
                    }
                }
            }
            Err(e) => {
                tracing::warn!(stream = %mapping.stream, error = %naksha_core::aws::describe_error(&e), "ListShards failed")
            }
        }
        tokio::time::sleep(Duration::from_secs(5)).await;
    }
}

async fn iterator(
    kinesis: &aws_sdk_kinesis::Client,
    m: &Mapping,
    shard: &str,
    kind: ShardIteratorType,
    seq: Option<&str>,
) -> Option<String> {
    kinesis
        .get_shard_iterator()
        .stream_name(&m.stream)
        .shard_id(shard)
        .shard_iterator_type(kind)
        .set_starting_sequence_number(seq.map(str::to_owned))
        .send()
        .await
        .map_err(|e| tracing::warn!(error = %naksha_core::aws::describe_error(&e), "GetShardIterator failed"))
        .ok()
        .and_then(|o| o.shard_iterator().map(str::to_owned))
}

/// Build the payload Lambda would send for these records.
pub fn kinesis_event(records: &[Record], shard: &str, stream_arn: &str) -> KinesisEvent {
    let mut event = KinesisEvent::default();
    for r in records {
        let mut k = KinesisRecord::default();
        let mut data = Base64Data::default();
        data.extend_from_slice(r.data().as_ref());
        k.data = data;
        k.partition_key = r.partition_key().unwrap_or_default().to_owned();
        k.sequence_number = r.sequence_number().to_owned();
        k.kinesis_schema_version = Some("1.0".into());
        let arrival = r
            .approximate_arrival_timestamp()
            .and_then(|t| chrono::DateTime::from_timestamp(t.secs(), t.subsec_nanos()))
            .unwrap_or_else(chrono::Utc::now);
        k.approximate_arrival_timestamp = SecondTimestamp(arrival);
        let mut e = KinesisEventRecord::default();
        e.aws_region = Some(REGION.into());
        e.event_id = Some(format!("{shard}:{}", r.sequence_number()));
        e.event_name = Some("aws:kinesis:record".into());
        e.event_source = Some("aws:kinesis".into());
        e.event_source_arn = Some(stream_arn.to_owned());
        e.event_version = Some("1.0".into());
        e.invoke_identity_arn = Some("arn:aws:iam::000000000000:role/naksha-local".into());
        e.kinesis = k;
        event.records.push(e);
    }
    event
}

enum Delivery {
    Done,
    RetryFrom(String),
    FunctionError(String),
}

async fn deliver(http: &reqwest::Client, m: &Mapping, event: &KinesisEvent) -> Delivery {
    let started = std::time::Instant::now();
    let outcome = invoke(http, m, event).await;
    let line = json!({
        "ts_ms": chrono::Utc::now().timestamp_millis(),
        "function": m.function,
        "records": event.records.len(),
        "bytes": event.records.iter().map(|r| r.kinesis.data.len()).sum::<usize>(),
        "ms": started.elapsed().as_secs_f64() * 1000.0,
        "ok": matches!(outcome, Delivery::Done | Delivery::RetryFrom(_)),
    });
    if let Ok(mut f) = tokio::fs::OpenOptions::new().create(true).append(true).open(&m.invocations_file).await {
        let _ = f.write_all(format!("{line}\n").as_bytes()).await;
    }
    outcome
}

async fn invoke(http: &reqwest::Client, m: &Mapping, event: &KinesisEvent) -> Delivery {
    let resp = match http.post(&m.invoke_url).timeout(m.invoke_timeout).json(event).send().await {
        Ok(r) => r,
        Err(e) => return Delivery::FunctionError(format!("invoke failed: {e}")),
    };
    let status = resp.status();
    let body: Value = resp.json().await.unwrap_or(Value::Null);
    if !status.is_success() {
        return Delivery::FunctionError(format!("function error {status}: {body}"));
    }
    if !m.report_batch_item_failures {
        return Delivery::Done;
    }
    match body.get("batchItemFailures").and_then(Value::as_array).and_then(|f| f.first()) {
        None => Delivery::Done,
        Some(f) => match f.get("itemIdentifier").and_then(Value::as_str) {
            Some(seq) if !seq.is_empty() => Delivery::RetryFrom(seq.to_owned()),
            // Lambda treats an empty identifier as a failure of the whole batch.
            _ => Delivery::FunctionError("batchItemFailures without an itemIdentifier".into()),
        },
    }
}

async fn record_failure(m: &Mapping, shard: &str, records: &[Record], reason: &str) {
    let line = json!({
        "requestContext": {"condition": "RetryAttemptsExhausted", "functionArn": m.function},
        "KinesisBatchInfo": {
            "shardId": shard,
            "streamArn": m.stream_arn,
            "startSequenceNumber": records.first().map(|r| r.sequence_number()),
            "endSequenceNumber": records.last().map(|r| r.sequence_number()),
            "batchSize": records.len(),
        },
        "reason": reason,
        "timestamp": chrono::Utc::now().to_rfc3339(),
    });
    tracing::error!(shard, reason, "batch sent to the on-failure destination");
    if let Ok(mut f) = tokio::fs::OpenOptions::new().create(true).append(true).open(&m.failures_file).await {
        let _ = f.write_all(format!("{line}\n").as_bytes()).await;
    }
}

async fn poll_shard(kinesis: aws_sdk_kinesis::Client, http: reqwest::Client, m: Mapping, shard: String) {
    let mut last_done: Option<String> = m.checkpoint(&shard);
    let mut it = match &last_done {
        Some(seq) => {
            tracing::info!(shard = %shard, after = %seq, function = %m.function, "resuming after the checkpoint");
            iterator(&kinesis, &m, &shard, ShardIteratorType::AfterSequenceNumber, Some(seq)).await
        }
        None => iterator(&kinesis, &m, &shard, m.starting_position.clone(), None).await,
    };
    let mut attempts: u32 = 0;
    let mut limit = m.batch_size;
    loop {
        let Some(current) = it.clone() else {
            tokio::time::sleep(Duration::from_secs(1)).await;
            it = match &last_done {
                Some(seq) => iterator(&kinesis, &m, &shard, ShardIteratorType::AfterSequenceNumber, Some(seq)).await,
                None => iterator(&kinesis, &m, &shard, m.starting_position.clone(), None).await,
            };
            continue;
        };
        let out = match kinesis.get_records().shard_iterator(current).limit(limit).send().await {
            Ok(o) => o,
            Err(e) => {
                tracing::warn!(shard = %shard, error = %naksha_core::aws::describe_error(&e), "GetRecords failed");
                it = None;
                continue;
            }
        };
        let records = out.records().to_vec();
        let next = out.next_shard_iterator().map(str::to_owned);
        if records.is_empty() {
            it = next;
            tokio::time::sleep(IDLE_POLL).await;
            continue;
        }
        let event = kinesis_event(&records, &shard, &m.stream_arn);
        let outcome = deliver(&http, &m, &event).await;
        let retry_from = match outcome {
            Delivery::Done => {
                last_done = records.last().map(|r| r.sequence_number().to_owned());
                if let Some(seq) = &last_done {
                    m.save_checkpoint(&shard, seq).await;
                }
                it = next;
                attempts = 0;
                limit = m.batch_size;
                continue;
            }
            Delivery::RetryFrom(seq) => {
                tracing::info!(shard = %shard, from = %seq, "function reported a partial failure; retrying from it");
                (seq, None)
            }
            Delivery::FunctionError(reason) => {
                tracing::warn!(shard = %shard, %reason, "function error");
                if m.bisect_on_error && records.len() > 1 {
                    limit = (records.len() as i32 / 2).max(1);
                }
                (records[0].sequence_number().to_owned(), Some(reason))
            }
        };
        attempts += 1;
        if attempts > m.max_retries {
            let reason = retry_from.1.unwrap_or_else(|| format!("record {} kept failing", retry_from.0));
            record_failure(&m, &shard, &records, &reason).await;
            last_done = records.last().map(|r| r.sequence_number().to_owned());
            if let Some(seq) = &last_done {
                m.save_checkpoint(&shard, seq).await;
            }
            it = iterator(&kinesis, &m, &shard, ShardIteratorType::AfterSequenceNumber, last_done.as_deref()).await;
            attempts = 0;
            limit = m.batch_size;
            continue;
        }
        tokio::time::sleep(Duration::from_millis(200 * u64::from(attempts))).await;
        it = iterator(&kinesis, &m, &shard, ShardIteratorType::AtSequenceNumber, Some(&retry_from.0)).await;
    }
}
