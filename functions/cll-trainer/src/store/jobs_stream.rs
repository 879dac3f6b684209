//! Queued jobs on Kinesis `naksha.jobs`, partitioned by tenant (batch size 1 in the template).

use naksha_core::aws::describe_error;

use crate::jobs::JobMessage;
use crate::ports::{JobQueue, StoreError};

#[derive(Debug, Clone)]
pub struct KinesisJobQueue {
    kinesis: aws_sdk_kinesis::Client,
    stream: String,
}

impl KinesisJobQueue {
    pub fn new(kinesis: aws_sdk_kinesis::Client, stream: String) -> Self {
        Self { kinesis, stream }
    }
}

impl JobQueue for KinesisJobQueue {
    async fn enqueue(&self, msg: &JobMessage) -> Result<(), StoreError> {
        let data = serde_json::to_vec(msg).map_err(|e| StoreError(e.to_string()))?;
        self.kinesis
            .put_record()
            .stream_name(&self.stream)
            .partition_key(msg.tenant.as_str())
            .data(aws_sdk_kinesis::primitives::Blob::new(data))
            .send()
            .await
            .map_err(|e| StoreError(describe_error(&e)))?;
        Ok(())
    }
}
