//! `POST /sim/scenarios/{name}` (role admin, simulation mode): seed the caller's tenant with a
//! small world — chaos targets, their telemetry history, and the signed WPKs that heal each fault.

use std::sync::Arc;

use naksha_chaos::scenario::Seeder;
use naksha_chaos::{api, wiring::ScenarioApp};
use naksha_core::boot;

#[global_allocator]
static ALLOC: naksha_core::Allocator = naksha_core::Allocator;

#[tokio::main]
async fn main() -> Result<(), boot::BootError> {
    boot::http(|app: Arc<ScenarioApp>, req| async move {
        let seeder = Seeder {
            sim: &app.sim,
            wpks: &app.wpks,
            wpk_signer: &app.wpk_signer,
            wpk_keys: &app.wpk_keys,
            approval_signer: &app.approval_signer,
            ingest: &app.ingest,
        };
        api::seed_scenario(&app.verifier, &seeder, req).await
    })
    .await
}
