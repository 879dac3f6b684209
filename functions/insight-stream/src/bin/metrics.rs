//! `GET /metrics`: fleet-wide counters from DynamoDB as Prometheus text.

use std::sync::Arc;

use naksha_core::boot;
use naksha_insight_stream::{api, wiring::MetricsApp};

#[global_allocator]
static ALLOC: naksha_core::Allocator = naksha_core::Allocator;

#[tokio::main]
async fn main() -> Result<(), boot::BootError> {
    boot::http(|app: Arc<MetricsApp>, _req| async move { api::metrics(&app.counters).await }).await
}
