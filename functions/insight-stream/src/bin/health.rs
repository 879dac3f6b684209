//! `GET /health`: checks every stream, table and key of the deployment; names them only to
//! callers with a valid token.

use std::sync::Arc;

use naksha_core::boot;
use naksha_insight_stream::{api, wiring::HealthApp};

#[global_allocator]
static ALLOC: naksha_core::Allocator = naksha_core::Allocator;

#[tokio::main]
async fn main() -> Result<(), boot::BootError> {
    boot::http(|app: Arc<HealthApp>, req| async move {
        api::health(&app.verifier, &app.aws, app.backend, &app.dependencies, req).await
    })
    .await
}
