//! `GET /chaos/specs`: the built-in experiments and the tenant's own.

use std::sync::Arc;

use naksha_chaos::api;
use naksha_chaos::wiring::ApiApp;
use naksha_core::boot;

#[global_allocator]
static ALLOC: naksha_core::Allocator = naksha_core::Allocator;

#[tokio::main]
async fn main() -> Result<(), boot::BootError> {
    boot::http(|app: Arc<ApiApp>, req| async move { api::specs(&app.verifier, &app.chaos, req).await }).await
}
