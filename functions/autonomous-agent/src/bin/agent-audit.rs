//! `GET /agent/audit[?limit&cursor&verify=true]`: the tenant's hash-chained audit log, page by
//! page; with `verify`, checked against its head, signed checkpoints and the runs that acted.

use std::sync::Arc;

use naksha_agent::api;
use naksha_agent::wiring::{AuditKeys, VerifyingApp};
use naksha_core::boot;

#[global_allocator]
static ALLOC: naksha_core::Allocator = naksha_core::Allocator;

#[tokio::main]
async fn main() -> Result<(), boot::BootError> {
    boot::http(|app: Arc<VerifyingApp<AuditKeys>>, req| async move {
        api::audit(&app.route.verifier, &app.route.store, &app.keys, req).await
    })
    .await
}
