//! `GET /wpk/{id}`: every version of a WPK with its signed bytes and signature.

use naksha_agent::{api, wiring};

#[global_allocator]
static ALLOC: naksha_core::Allocator = naksha_core::Allocator;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    wiring::serve_route(|app, req| async move { api::get_wpk(&app.verifier, &app.store, req).await }).await
}
