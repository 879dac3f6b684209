//! `POST /agent/resume` (role admin): release the kill switch.

use std::sync::Arc;

use naksha_agent::{api, wiring::RouteApp};
use naksha_core::boot;

#[global_allocator]
static ALLOC: naksha_core::Allocator = naksha_core::Allocator;

#[tokio::main]
async fn main() -> Result<(), boot::BootError> {
    boot::http(|app: Arc<RouteApp>, req| async move { api::set_halt(&app.verifier, &app.store, req, false).await })
        .await
}
