//! `POST /agent/runs/{run_id}/approve` (role approver): approve exactly the plan awaiting approval.

use std::sync::Arc;

use naksha_agent::{api, wiring::QueueApp};
use naksha_core::boot;

#[global_allocator]
static ALLOC: naksha_core::Allocator = naksha_core::Allocator;

#[tokio::main]
async fn main() -> Result<(), boot::BootError> {
    boot::http(|app: Arc<QueueApp>, req| async move {
        api::approve(&app.route.verifier, &app.route.store, &app.queue, req).await
    })
    .await
}
