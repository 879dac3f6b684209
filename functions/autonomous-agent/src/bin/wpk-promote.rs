//! `POST /wpk/{id}/promote` (role approver): a standing approval for an auto WPK version.

use std::sync::Arc;

use naksha_agent::{api, wiring::RouteApp};
use naksha_core::boot;

#[global_allocator]
static ALLOC: naksha_core::Allocator = naksha_core::Allocator;

#[tokio::main]
async fn main() -> Result<(), boot::BootError> {
    boot::http(|app: Arc<RouteApp>, req| async move { api::promote_wpk(&app.verifier, &app.store, req).await }).await
}
