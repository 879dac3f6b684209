//! `POST /wpk/{id}/promote` (role approver): a signed standing approval for an auto WPK version.

use std::sync::Arc;

use naksha_agent::{api, wiring::PromoteApp};
use naksha_core::boot;

#[global_allocator]
static ALLOC: naksha_core::Allocator = naksha_core::Allocator;

#[tokio::main]
async fn main() -> Result<(), boot::BootError> {
    boot::http(|app: Arc<PromoteApp>, req| async move {
        let r = &app.route;
        api::promote_wpk(&r.verifier, &r.store, &app.wpk_keys, &app.approvals, req).await
    })
    .await
}
