//! `POST /wpk/{id}/promote` (role approver): a standing approval for an auto WPK version.

use naksha_agent::{api, wiring};

#[global_allocator]
static ALLOC: naksha_core::Allocator = naksha_core::Allocator;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    wiring::serve_route(|app, req| async move { api::promote_wpk(&app.verifier, &app.store, req).await }).await
}
