//! `POST /wpk` (role admin): validate, sign with KMS, store an immutable WPK version.

use std::sync::Arc;

use naksha_agent::{api, wiring::RegisterApp};
use naksha_core::boot;

#[global_allocator]
static ALLOC: naksha_core::Allocator = naksha_core::Allocator;

#[tokio::main]
async fn main() -> Result<(), boot::BootError> {
    boot::http(|app: Arc<RegisterApp>, req| async move {
        api::register_wpk(&app.route.verifier, &app.route.store, &app.signer, &app.keys, req).await
    })
    .await
}
