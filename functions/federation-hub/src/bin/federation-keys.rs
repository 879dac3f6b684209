//! `GET /federation/keys`: the trigger keys nodes trust (with announcements) and the WPK keys.

use std::sync::Arc;

use naksha_core::boot;
use naksha_federation::store::keys;
use naksha_federation::{api, wiring::KeysApp};

#[global_allocator]
static ALLOC: naksha_core::Allocator = naksha_core::Allocator;

async fn announced(app: &KeysApp) -> Result<Vec<keys::Announced>, naksha_core::StoreError> {
    keys::announced(&app.db, &app.table).await
}

#[tokio::main]
async fn main() -> Result<(), boot::BootError> {
    boot::http(|app: Arc<KeysApp>, req| async move { api::keys(&app.verifier, &app.ring, announced(&app), req).await })
        .await
}
