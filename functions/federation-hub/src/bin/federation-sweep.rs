//! The sweep (EventBridge, every minute): silent nodes become stale, then offline; executions
//! not finished in time expire; triggers whose executions all ended complete.

use std::sync::Arc;

use naksha_core::boot;
use naksha_federation::{hub, wiring::SweepApp};
use serde_json::Value;

#[global_allocator]
static ALLOC: naksha_core::Allocator = naksha_core::Allocator;

#[tokio::main]
async fn main() -> Result<(), boot::BootError> {
    boot::events(|app: Arc<SweepApp>, _event: Value| async move {
        let swept = hub::sweep(&app.fleet, &app.fleet, &app.liveness, chrono::Utc::now()).await?;
        tracing::info!(
            nodes = swept.nodes,
            stale = swept.stale,
            offline = swept.offline,
            expired = swept.expired,
            completed = swept.completed,
            "federation sweep"
        );
        Ok(swept)
    })
    .await
}
