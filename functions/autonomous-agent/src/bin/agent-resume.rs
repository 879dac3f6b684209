//! `POST /agent/resume` (role admin): release the kill switch.

use naksha_agent::{api, wiring};

#[global_allocator]
static ALLOC: naksha_core::Allocator = naksha_core::Allocator;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    wiring::serve_route(|app, req| async move { api::set_halt(&app.verifier, &app.store, req, false).await }).await
}
