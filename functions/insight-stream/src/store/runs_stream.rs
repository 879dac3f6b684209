//! Signals onto the agent's runs stream (Kinesis `naksha.agent-runs`), partitioned like every
//! other run message: [`RunMessage::partition_key`] = `<tenant>/<resource>`.

use aws_sdk_kinesis::primitives::Blob;
use naksha_contracts::runs::RunMessage;
use naksha_core::aws::describe_error;

use crate::ports::{SignalSink, StoreError};

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
    async fn send(&self, message: &RunMessage, resource: &str) -> Result<(), StoreError> {
        let body = serde_json::to_vec(message).map_err(|e| StoreError(e.to_string()))?;
        self.client
            .put_record()
            .stream_name(&self.stream)
            .partition_key(RunMessage::partition_key(&message.tenant, resource))
            .data(Blob::new(body))
            .send()
            .await
            .map_err(|e| StoreError(describe_error(&e)))?;
        Ok(())
    }
}
