//! `POST /agent/halt` (role admin): the tenant's kill switch; stops every act at once.

use naksha_agent::{api, wiring};

#[global_allocator]
static ALLOC: naksha_core::Allocator = naksha_core::Allocator;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    wiring::serve_route(|app, req| async move { api::set_halt(&app.verifier, &app.store, req, true).await }).await
}
