//! `POST /agent/runs/{run_id}/reject` (role approver).

use naksha_agent::{api, wiring};

#[global_allocator]
static ALLOC: naksha_core::Allocator = naksha_core::Allocator;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    wiring::serve_route(|app, req| async move { api::reject(&app.verifier, &app.store, req).await }).await
}
