//! Kinesis `naksha.telemetry` consumer: per-minute aggregates, the streaming anomaly detector
//! (signals go to the agent's runs stream), partial batch responses.

use std::sync::Arc;

use aws_lambda_events::event::kinesis::KinesisEvent;
use naksha_core::boot;
use naksha_insight_stream::{kinesis, wiring::ConsumerApp};

#[global_allocator]
static ALLOC: naksha_core::Allocator = naksha_core::Allocator;

#[tokio::main]
async fn main() -> Result<(), boot::BootError> {
    boot::events(|app: Arc<ConsumerApp>, event: KinesisEvent| async move {
        Ok(kinesis::handle(&app.consumer, &event).await.0)
    })
    .await
}
