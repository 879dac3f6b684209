//! Queued runs on Kinesis `naksha.agent-runs`, partitioned by [`RunMessage::partition_key`]
//! (`<tenant>/<resource>`) so that two runs on one resource are processed in order, never at once.

use naksha_contracts::runs::RunMessage;
use naksha_core::aws::describe_error;

use super::json_of;
use crate::ports::{RunQueue, StoreError};

#[derive(Debug, Clone)]
pub struct KinesisRunQueue {
    kinesis: aws_sdk_kinesis::Client,
    stream: String,
}

impl KinesisRunQueue {
    pub fn new(kinesis: aws_sdk_kinesis::Client, stream: impl Into<String>) -> Self {
        Self { kinesis, stream: stream.into() }
    }
}

impl RunQueue for KinesisRunQueue {
    async fn send(&self, message: &RunMessage, resource: &str) -> Result<(), StoreError> {
        let body = json_of(message)?;
        self.kinesis
            .put_record()
            .stream_name(&self.stream)
            .partition_key(RunMessage::partition_key(&message.tenant, resource))
            .data(aws_sdk_kinesis::primitives::Blob::new(body.into_bytes()))
            .send()
            .await
            .map_err(|e| StoreError::Failed(describe_error(&e)))?;
        Ok(())
    }
}
