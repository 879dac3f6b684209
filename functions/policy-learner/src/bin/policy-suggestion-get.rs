//! `GET /policies/suggestions/{id}`: one suggestion, its evidence and its lifecycle.

use std::sync::Arc;

use naksha_core::boot;
use naksha_policy::api;
use naksha_policy::wiring::ReadApp;

#[global_allocator]
static ALLOC: naksha_core::Allocator = naksha_core::Allocator;

#[tokio::main]
async fn main() -> Result<(), boot::BootError> {
    boot::http(|app: Arc<ReadApp>, req| async move { api::get(&app.verifier, &app.store, req).await }).await
}
