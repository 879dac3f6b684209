//! `POST /chaos/specs` (role admin): a spec, a Chaos Toolkit experiment or an AWS FIS template.

use std::sync::Arc;

use naksha_chaos::api;
use naksha_chaos::wiring::ApiApp;
use naksha_core::boot;

#[global_allocator]
static ALLOC: naksha_core::Allocator = naksha_core::Allocator;

#[tokio::main]
async fn main() -> Result<(), boot::BootError> {
    boot::http(
        |app: Arc<ApiApp>, req| async move { api::add_spec(&app.verifier, &app.chaos, &app.http_hosts, req).await },
    )
    .await
}
