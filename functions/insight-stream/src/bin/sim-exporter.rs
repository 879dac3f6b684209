//! Simulation mode, every minute: the simulated world's metrics, Kubernetes events and alerts
//! for every chaos target, through the real ingest path.

use std::sync::Arc;

use naksha_core::boot;
use naksha_insight_stream::{sim_exporter, wiring::SimExporterApp};
use serde_json::Value;

#[global_allocator]
static ALLOC: naksha_core::Allocator = naksha_core::Allocator;

#[tokio::main]
async fn main() -> Result<(), boot::BootError> {
    boot::events(|app: Arc<SimExporterApp>, _event: Value| async move {
        let out =
            sim_exporter::export(&app.world, &app.ingest, chrono::Utc::now().timestamp_millis(), app.tick_s).await?;
        tracing::info!(
            tenants = out.tenants,
            resources = out.resources,
            events = out.events,
            warnings = out.warnings,
            failed_tenants = out.failed_tenants,
            "simulated world exported"
        );
        Ok(out)
    })
    .await
}
