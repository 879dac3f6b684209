//! `GET /models/{model_id}`: one version with its signed manifest, signature and document.

use naksha_trainer::{api, wiring};

#[global_allocator]
static ALLOC: naksha_core::Allocator = naksha_core::Allocator;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    wiring::serve_registry_route(
        |app, req| async move { api::model(&app.verifier, &app.registry, &app.keys, req).await },
    )
    .await
}
