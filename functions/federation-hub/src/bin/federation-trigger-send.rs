//! `POST /federation/triggers` (role admin): a verified WPK to one node or a label rollout.

use std::sync::Arc;

use naksha_core::boot;
use naksha_federation::hub::Sender;
use naksha_federation::{api, wiring::SendApp};

#[global_allocator]
static ALLOC: naksha_core::Allocator = naksha_core::Allocator;

#[tokio::main]
async fn main() -> Result<(), boot::BootError> {
    boot::http(|app: Arc<SendApp>, req| async move {
        let ports =
            Sender { nodes: &app.fleet, work: &app.fleet, wpks: &app.wpks, halt: &app.halt, wpk_keys: &app.wpk_keys };
        api::send(&app.verifier, &ports, req).await
    })
    .await
}
