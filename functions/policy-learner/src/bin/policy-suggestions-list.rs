//! `GET /policies/suggestions`: the tenant's suggestions (`?kind=`, `?state=`).

use std::sync::Arc;

use naksha_core::boot;
use naksha_policy::api;
use naksha_policy::wiring::ReadApp;

#[global_allocator]
static ALLOC: naksha_core::Allocator = naksha_core::Allocator;

#[tokio::main]
async fn main() -> Result<(), boot::BootError> {
    boot::http(|app: Arc<ReadApp>, req| async move { api::list(&app.verifier, &app.store, req).await }).await
}
