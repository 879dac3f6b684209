//! `POST /policies/suggestions/{id}/advance` (admin) `{"justification"}`: move a suggestion one step (suggested → dryrun → warn → enforced),
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
        api::move_suggestion(&app.verifier, &app.store, &app.chain, &app.autonomy, req, false).await
    })
    .await
}
