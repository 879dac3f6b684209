//! The game-day schedule (EventBridge; off unless the `GameDayEnabled` parameter is `true`): one
//! run of each named spec in one tenant, each on the target broken least recently.

use std::sync::Arc;

use naksha_chaos::gameday;
use naksha_chaos::wiring::GameDayApp;
use naksha_core::boot;
use serde_json::Value;

#[global_allocator]
static ALLOC: naksha_core::Allocator = naksha_core::Allocator;

#[tokio::main]
async fn main() -> Result<(), boot::BootError> {
    boot::events(|app: Arc<GameDayApp>, event: Value| async move {
        let g = gameday::parse(&event).map_err(naksha_core::StoreError)?;
        let out = gameday::run(&app.world, &app.chaos, &app.views, &app.queue, &g).await;
        tracing::info!(tenant = %g.tenant, started = out.started.len(), skipped = out.skipped.len(), "game day");
        Ok(out)
    })
    .await
}
