//! `POST /learn` (admin): JSON lines of audit records → suggestions with their evidence.

use std::sync::Arc;

use naksha_core::boot;
use naksha_policy::api;
use naksha_policy::wiring::LearnApp;

#[global_allocator]
static ALLOC: naksha_core::Allocator = naksha_core::Allocator;

#[tokio::main]
async fn main() -> Result<(), boot::BootError> {
    boot::http(|app: Arc<LearnApp>, req| async move {
        api::learn(&app.verifier, &app.store, &app.chain, &app.pii, req).await
    })
    .await
}
