//! `GET /agent/audit[?verify=true]`: the tenant's hash-chained audit log.

use std::sync::Arc;

use naksha_agent::{api, wiring::RouteApp};
use naksha_core::boot;

#[global_allocator]
static ALLOC: naksha_core::Allocator = naksha_core::Allocator;

#[tokio::main]
async fn main() -> Result<(), boot::BootError> {
    boot::http(|app: Arc<RouteApp>, req| async move { api::audit(&app.verifier, &app.store, req).await }).await
}
