//! `POST /agent/runs/{run_id}/approve` (role approver): sign an approval of exactly the plan awaiting it.

use std::sync::Arc;

use naksha_agent::{api, wiring::ApproveApp};
use naksha_core::boot;

#[global_allocator]
static ALLOC: naksha_core::Allocator = naksha_core::Allocator;

#[tokio::main]
async fn main() -> Result<(), boot::BootError> {
    boot::http(|app: Arc<ApproveApp>, req| async move {
        let q = &app.queued;
        api::approve(&q.route.verifier, &q.route.store, &q.queue, &app.approvals, req).await
    })
    .await
}
