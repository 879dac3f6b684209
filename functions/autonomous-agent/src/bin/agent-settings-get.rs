//! `GET /agent/settings`: the tenant's safety settings, and whether their signature verifies.

use std::sync::Arc;

use naksha_agent::api;
use naksha_agent::wiring::{ApprovalKeys, VerifyingApp};
use naksha_core::boot;

#[global_allocator]
static ALLOC: naksha_core::Allocator = naksha_core::Allocator;

#[tokio::main]
async fn main() -> Result<(), boot::BootError> {
    boot::http(|app: Arc<VerifyingApp<ApprovalKeys>>, req| async move {
        api::get_settings(&app.route.verifier, &app.route.store, &app.keys, req).await
    })
    .await
}
