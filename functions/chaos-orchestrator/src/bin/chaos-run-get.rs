//! `GET /chaos/runs/{run_id}`: a run's timeline, verdict, recovery figures, agent runs and rollbacks.

use std::sync::Arc;

use naksha_chaos::api;
use naksha_chaos::wiring::ApiApp;
use naksha_core::boot;

#[global_allocator]
static ALLOC: naksha_core::Allocator = naksha_core::Allocator;

#[tokio::main]
async fn main() -> Result<(), boot::BootError> {
    boot::http(|app: Arc<ApiApp>, req| async move { api::get(&app.verifier, &app.chaos, req).await }).await
}
