//! `POST /agent/halt` (role admin): the tenant's kill switch; stops every act at once.

use std::sync::Arc;

use naksha_agent::{api, wiring::RouteApp};
use naksha_core::boot;

#[global_allocator]
static ALLOC: naksha_core::Allocator = naksha_core::Allocator;

#[tokio::main]
async fn main() -> Result<(), boot::BootError> {
    boot::http(|app: Arc<RouteApp>, req| async move { api::set_halt(&app.verifier, &app.store, req, true).await }).await
}
