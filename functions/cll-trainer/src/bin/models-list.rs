//! `GET /models`: every model version of the caller's tenant, with status and verification.

use std::sync::Arc;

use naksha_core::boot;
use naksha_trainer::{api, wiring::RegistryApp};

#[global_allocator]
static ALLOC: naksha_core::Allocator = naksha_core::Allocator;

#[tokio::main]
async fn main() -> Result<(), boot::BootError> {
    boot::http(
        |app: Arc<RegistryApp>, req| async move { api::models(&app.verifier, &app.registry, &app.keys, req).await },
    )
    .await
}
