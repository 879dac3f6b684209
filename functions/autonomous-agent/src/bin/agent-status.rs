//! `GET /agent/status/{run_id}`: a run with its steps, plan, approval and audit record.

use std::sync::Arc;

use naksha_agent::{api, wiring::RouteApp};
use naksha_core::boot;

#[global_allocator]
static ALLOC: naksha_core::Allocator = naksha_core::Allocator;

#[tokio::main]
async fn main() -> Result<(), boot::BootError> {
    boot::http(|app: Arc<RouteApp>, req| async move { api::run_status(&app.verifier, &app.store, req).await }).await
}
