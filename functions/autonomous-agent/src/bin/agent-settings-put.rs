//! `POST /agent/settings` (role admin): the tenant's signed, audited safety settings.

use std::sync::Arc;

use naksha_agent::{api, wiring::SettingsApp};
use naksha_core::boot;

#[global_allocator]
static ALLOC: naksha_core::Allocator = naksha_core::Allocator;

#[tokio::main]
async fn main() -> Result<(), boot::BootError> {
    boot::http(|app: Arc<SettingsApp>, req| async move {
        api::put_settings(&app.route.verifier, &app.route.store, &app.approvals, req).await
    })
    .await
}
