//! `POST /federation/triggers/{trigger_id}/result` (role edge): a result signed with the node's registered key.

use std::sync::Arc;

use naksha_core::boot;
use naksha_federation::{api, wiring::TriggersApp};

#[global_allocator]
static ALLOC: naksha_core::Allocator = naksha_core::Allocator;

#[tokio::main]
async fn main() -> Result<(), boot::BootError> {
    boot::http(
        |app: Arc<TriggersApp>, req| async move { api::result(&app.verifier, &app.fleet, &app.fleet, req).await },
    )
    .await
}
