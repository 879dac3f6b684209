//! `POST /policies/suggestions/{id}/reject` (admin) `{"justification"}`: reject a suggestion (from suggested, dryrun or warn),
//! recorded in the audit chain.

use std::sync::Arc;

use naksha_core::boot;
use naksha_policy::api;
use naksha_policy::wiring::ChangeApp;

#[global_allocator]
static ALLOC: naksha_core::Allocator = naksha_core::Allocator;

#[tokio::main]
async fn main() -> Result<(), boot::BootError> {
    boot::http(|app: Arc<ChangeApp>, req| async move {
        api::move_suggestion(&app.verifier, &app.store, &app.chain, &app.autonomy, req, true).await
    })
    .await
}
