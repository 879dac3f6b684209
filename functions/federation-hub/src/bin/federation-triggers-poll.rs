//! `GET /federation/triggers` (role edge): the node's own work, each order signed for it with the trigger key.

use std::sync::Arc;

use naksha_core::boot;
use naksha_federation::hub::Handout;
use naksha_federation::{api, wiring::PollApp};

#[global_allocator]
static ALLOC: naksha_core::Allocator = naksha_core::Allocator;

#[tokio::main]
async fn main() -> Result<(), boot::BootError> {
    boot::http(|app: Arc<PollApp>, req| async move {
        let ports = Handout { nodes: &app.fleet, work: &app.fleet, halt: &app.halt, key: &app.key };
        api::poll(&app.verifier, &ports, req).await
    })
    .await
}
