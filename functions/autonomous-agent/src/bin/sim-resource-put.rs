//! `PUT /sim/resources/{resource}` (role admin, simulation mode): create or replace a simulated resource.

use std::sync::Arc;

use naksha_agent::{api, wiring::SimApp};
use naksha_core::boot;

#[global_allocator]
static ALLOC: naksha_core::Allocator = naksha_core::Allocator;

#[tokio::main]
async fn main() -> Result<(), boot::BootError> {
    boot::http(|app: Arc<SimApp>, req| async move { api::put_sim(&app.verifier, &app.sim, req).await }).await
}
