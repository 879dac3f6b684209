//! The training worker: consumes the jobs stream (one job per invocation) and runs each job:
//! read aggregates and outcomes, train, judge against the champion, sign, register, promote.

use std::sync::Arc;

use aws_lambda_events::event::kinesis::KinesisEvent;
use aws_lambda_events::event::streams::{KinesisBatchItemFailure, KinesisEventResponse};
use naksha_core::boot;
use naksha_trainer::wiring::WorkerApp;

#[global_allocator]
static ALLOC: naksha_core::Allocator = naksha_core::Allocator;

#[tokio::main]
async fn main() -> Result<(), boot::BootError> {
    boot::events(|app: Arc<WorkerApp>, event: KinesisEvent| async move {
        let mut response = KinesisEventResponse::default();
        if let Some(seq) = app.trainer.handle(&event).await {
            let mut failure = KinesisBatchItemFailure::default();
            failure.item_identifier = Some(seq);
            response.batch_item_failures.push(failure);
        }
        Ok(response)
    })
    .await
}
