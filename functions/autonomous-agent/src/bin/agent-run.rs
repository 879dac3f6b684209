//! `POST /agent/run` (role operator): record the run and queue it on the runs stream.

use std::sync::Arc;

use naksha_agent::{api, wiring::RunApp};
use naksha_core::boot;

#[global_allocator]
static ALLOC: naksha_core::Allocator = naksha_core::Allocator;

#[tokio::main]
async fn main() -> Result<(), boot::BootError> {
    boot::http(|app: Arc<RunApp>, req| async move {
        let q = &app.queued;
        api::start_run(&q.route.verifier, &q.route.store, &q.queue, &app.pii, req).await
    })
    .await
}
