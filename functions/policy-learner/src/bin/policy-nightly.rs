//! The nightly schedule (EventBridge): learn from every tenant's own audit chain.

use std::sync::Arc;

use naksha_core::boot;
use naksha_policy::nightly;
use naksha_policy::wiring::NightlyApp;
use serde_json::Value;

#[global_allocator]
static ALLOC: naksha_core::Allocator = naksha_core::Allocator;

#[tokio::main]
async fn main() -> Result<(), boot::BootError> {
    boot::events(|app: Arc<NightlyApp>, _event: Value| async move {
        let tenants = nightly::tenants(&app.db, &app.audit_table).await.map_err(naksha_core::StoreError)?;
        let night = nightly::run(&app.store, &app.chain, &tenants).await;
        tracing::info!(
            tenants = night.tenants,
            ingested = night.ingested,
            changed = night.changed,
            failed = night.failed.len(),
            "nightly learning"
        );
        Ok(night)
    })
    .await
}
