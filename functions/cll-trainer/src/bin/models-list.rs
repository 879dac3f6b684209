//! `GET /models`: every model version of the caller's tenant, with status and verification.

use naksha_trainer::{api, wiring};

#[global_allocator]
static ALLOC: naksha_core::Allocator = naksha_core::Allocator;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    wiring::serve_registry_route(
        |app, req| async move { api::models(&app.verifier, &app.registry, &app.keys, req).await },
    )
    .await
}
