//! `GET /models/{model_id}`: one version with its signed manifest, signature and document.

use std::sync::Arc;

use naksha_core::boot;
use naksha_trainer::{api, wiring::RegistryApp};

#[global_allocator]
static ALLOC: naksha_core::Allocator = naksha_core::Allocator;

#[tokio::main]
async fn main() -> Result<(), boot::BootError> {
    boot::http(
        |app: Arc<RegistryApp>, req| async move { api::model(&app.verifier, &app.registry, &app.keys, req).await },
    )
    .await
}
