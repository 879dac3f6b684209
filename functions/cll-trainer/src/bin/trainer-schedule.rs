//! The hourly schedule (EventBridge): one training job per tenant, queued on the jobs stream.

use std::sync::Arc;

use naksha_core::boot;
use naksha_trainer::{wiring::ScheduleApp, worker};
use serde_json::Value;

#[global_allocator]
static ALLOC: naksha_core::Allocator = naksha_core::Allocator;

#[tokio::main]
async fn main() -> Result<(), boot::BootError> {
    boot::events(|app: Arc<ScheduleApp>, event: Value| async move {
        let out = worker::schedule(&app.source, &app.jobs, &app.queue, &event, app.window_hours).await?;
        tracing::info!(result = %out, "scheduled training jobs");
        Ok(out)
    })
    .await
}
