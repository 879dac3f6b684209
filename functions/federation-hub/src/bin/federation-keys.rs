//! `GET /federation/keys`: the trigger keys nodes trust (with announcements) and the WPK keys.

use std::sync::Arc;

use naksha_core::boot;
use naksha_federation::{api, wiring::KeysApp};

#[global_allocator]
static ALLOC: naksha_core::Allocator = naksha_core::Allocator;

#[tokio::main]
async fn main() -> Result<(), boot::BootError> {
    boot::http(|app: Arc<KeysApp>, req| async move { api::keys(&app.verifier, &app.ring, app.announced(), req).await })
        .await
}
