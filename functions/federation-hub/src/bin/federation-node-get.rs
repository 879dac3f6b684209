//! `GET /federation/nodes/{node_id}`: one node and the refusals it reported.

use std::sync::Arc;

use naksha_core::boot;
use naksha_federation::{api, wiring::NodesApp};

#[global_allocator]
static ALLOC: naksha_core::Allocator = naksha_core::Allocator;

#[tokio::main]
async fn main() -> Result<(), boot::BootError> {
    boot::http(|app: Arc<NodesApp>, req| async move { api::get_node(&app.verifier, &app.fleet, &app.fleet, req).await })
        .await
}
