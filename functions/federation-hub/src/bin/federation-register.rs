//! `POST /federation/register` (role edge): a node registers its own P-256 key; it learns the keys to trust.

use std::sync::Arc;

use naksha_core::boot;
use naksha_federation::{api, wiring::KeysApp};

#[global_allocator]
static ALLOC: naksha_core::Allocator = naksha_core::Allocator;

#[tokio::main]
async fn main() -> Result<(), boot::BootError> {
    boot::http(|app: Arc<KeysApp>, req| async move {
        api::register(&app.verifier, &app.fleet, &app.ring, app.announced(), req).await
    })
    .await
}
