//! `GET /health`: checks every stream, table and key of the deployment.

use std::sync::Arc;

use naksha_core::{boot, http};
use naksha_insight_stream::{health, wiring::HealthApp};

#[global_allocator]
static ALLOC: naksha_core::Allocator = naksha_core::Allocator;

#[tokio::main]
async fn main() -> Result<(), boot::BootError> {
    boot::http(|app: Arc<HealthApp>, _req| async move {
        http::json(200, &health::check(&app.aws, app.backend, &app.dependencies).await?)
    })
    .await
}
