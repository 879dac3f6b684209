//! The run worker: consumes the runs stream and advances each run through agentspec.yaml.

use std::sync::Arc;

use aws_lambda_events::event::kinesis::KinesisEvent;
use naksha_agent::{wiring::WorkerApp, worker};
use naksha_core::boot;

#[global_allocator]
static ALLOC: naksha_core::Allocator = naksha_core::Allocator;

#[tokio::main]
async fn main() -> Result<(), boot::BootError> {
    boot::events(|app: Arc<WorkerApp>, event: KinesisEvent| async move {
        Ok(worker::handle(&app.agent, &app.queue, &event).await)
    })
    .await
}
