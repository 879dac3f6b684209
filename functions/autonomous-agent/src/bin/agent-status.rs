//! `GET /agent/status/{run_id}`: a run with its steps, plan, approval and audit record.

use naksha_agent::{api, wiring};

#[global_allocator]
static ALLOC: naksha_core::Allocator = naksha_core::Allocator;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    wiring::serve_route(|app, req| async move { api::run_status(&app.verifier, &app.store, req).await }).await
}
