//! `POST /agent/runs/{run_id}/reject` (role approver).

use std::sync::Arc;

use naksha_agent::{api, wiring::AuditedRouteApp};
use naksha_core::boot;

#[global_allocator]
static ALLOC: naksha_core::Allocator = naksha_core::Allocator;

#[tokio::main]
async fn main() -> Result<(), boot::BootError> {
    boot::http(
        |app: Arc<AuditedRouteApp>, req| async move { api::reject(&app.route.verifier, &app.route.store, req).await },
    )
    .await
}
