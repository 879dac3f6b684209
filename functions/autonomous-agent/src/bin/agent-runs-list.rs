//! `GET /agent/runs[?status&limit]`: the tenant's newest runs, each with its progress.

use std::sync::Arc;

use naksha_agent::{api, wiring::RouteApp};
use naksha_core::boot;

#[global_allocator]
static ALLOC: naksha_core::Allocator = naksha_core::Allocator;

#[tokio::main]
async fn main() -> Result<(), boot::BootError> {
    boot::http(|app: Arc<RouteApp>, req| async move { api::list_runs(&app.verifier, &app.store, req).await }).await
}
