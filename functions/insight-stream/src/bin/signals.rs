//! `GET /signals`: the caller's series with an open anomaly signal and the runs they started.

use std::sync::Arc;

use naksha_core::boot;
use naksha_insight_stream::{api, wiring::SignalsApp};

#[global_allocator]
static ALLOC: naksha_core::Allocator = naksha_core::Allocator;

#[tokio::main]
async fn main() -> Result<(), boot::BootError> {
    boot::http(|app: Arc<SignalsApp>, req| async move { api::signals(&app.verifier, &app.series, req).await }).await
}
