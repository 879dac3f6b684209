//! The chaos run worker (Kinesis `naksha.chaos-runs`): one step of each run per message.

use std::sync::Arc;

use aws_lambda_events::event::kinesis::KinesisEvent;
use naksha_chaos::engine::Ports;
use naksha_chaos::{wiring::WorkerApp, worker};
use naksha_core::boot;

#[global_allocator]
static ALLOC: naksha_core::Allocator = naksha_core::Allocator;

#[tokio::main]
async fn main() -> Result<(), boot::BootError> {
    boot::events(|app: Arc<WorkerApp>, event: KinesisEvent| async move {
        let ports = Ports {
            world: &app.world,
            runs: &app.chaos,
            agent: &app.agent,
            telemetry: &app.telemetry,
            halt: &app.views,
            http: &app.http,
        };
        Ok(worker::handle(&ports, &app.queue, &event).await)
    })
    .await
}
