//! Accepted events onto Kinesis `naksha.telemetry` with `PutRecords` (one request per ingest).
//! Partition key: [`crate::ingest::partition_key`] = `<tenant>/<source>`; a record carries one or
//! more events of its key ([`crate::ingest::PACK_BYTES`]).

use std::time::Duration;

use aws_sdk_kinesis::primitives::Blob;
use aws_sdk_kinesis::types::PutRecordsRequestEntry;
use naksha_core::aws::describe_error;

use crate::ingest::OutRecord;
use crate::ports::{RecordSink, SinkError};

/// Attempts for records that Kinesis refused (throttling) before giving up on them.
const PUT_ATTEMPTS: u32 = 4;

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

impl RecordSink for KinesisSink {
    async fn put(&self, records: &[OutRecord]) -> Result<(), SinkError> {
        // Each record still to write, with its position in `records`.
        let mut pending: Vec<(usize, &OutRecord)> = records.iter().enumerate().collect();
        let mut last_error = String::new();
        for attempt in 0..PUT_ATTEMPTS {
            if attempt > 0 {
                tokio::time::sleep(Duration::from_millis(50 << attempt)).await;
            }
            let entries = pending
                .iter()
                .map(|(_, r)| {
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
            Err(SinkError::Partial { failed_records: pending.iter().map(|(i, _)| *i).collect(), cause: last_error })
        }
    }
}
