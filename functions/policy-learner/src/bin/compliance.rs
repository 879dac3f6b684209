//! `GET /compliance` (`?format=markdown`): P-1…P-6 per service for the caller's tenant.

use std::sync::Arc;

use naksha_core::boot;
use naksha_policy::api;
use naksha_policy::wiring::ComplianceApp;

#[global_allocator]
static ALLOC: naksha_core::Allocator = naksha_core::Allocator;

#[tokio::main]
async fn main() -> Result<(), boot::BootError> {
    boot::http(|app: Arc<ComplianceApp>, req| async move { api::compliance(&app.verifier, &app.live, req).await }).await
}
