//! `GET /federation/triggers/{trigger_id}`: the rollout's state and each node's execution.

use std::sync::Arc;

use naksha_core::boot;
use naksha_federation::{api, wiring::TriggersApp};

#[global_allocator]
static ALLOC: naksha_core::Allocator = naksha_core::Allocator;

#[tokio::main]
async fn main() -> Result<(), boot::BootError> {
    boot::http(|app: Arc<TriggersApp>, req| async move { api::get_trigger(&app.verifier, &app.fleet, req).await }).await
}
