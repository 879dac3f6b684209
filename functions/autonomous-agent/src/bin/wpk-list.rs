//! `GET /wpk`: the latest version of each WPK.

use naksha_agent::{api, wiring};

#[global_allocator]
static ALLOC: naksha_core::Allocator = naksha_core::Allocator;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    wiring::serve_route(|app, req| async move { api::list_wpks(&app.verifier, &app.store, req).await }).await
}
