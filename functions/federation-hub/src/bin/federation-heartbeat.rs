//! `POST /federation/heartbeat` (role edge): the node is online; it learns whether its tenant is halted.

use std::sync::Arc;

use naksha_core::boot;
use naksha_federation::{api, wiring::NodesApp};

#[global_allocator]
static ALLOC: naksha_core::Allocator = naksha_core::Allocator;

#[tokio::main]
async fn main() -> Result<(), boot::BootError> {
    boot::http(|app: Arc<NodesApp>, req| async move { api::heartbeat(&app.verifier, &app.fleet, &app.halt, req).await })
        .await
}
