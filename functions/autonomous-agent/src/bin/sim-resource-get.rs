//! `GET /sim/resources/{resource}` (role admin, simulation mode): read a simulated resource.

use std::sync::Arc;

use naksha_agent::{api, wiring::SimApp};
use naksha_core::boot;

#[global_allocator]
static ALLOC: naksha_core::Allocator = naksha_core::Allocator;

#[tokio::main]
async fn main() -> Result<(), boot::BootError> {
    boot::http(|app: Arc<SimApp>, req| async move { api::get_sim(&app.verifier, &app.sim, req).await }).await
}
