//! `POST /ingest`: verify the token, anonymise, one `PutRecords` per request.

use std::sync::Arc;

use naksha_core::boot;
use naksha_insight_stream::{api, wiring::IngestApp};

#[global_allocator]
static ALLOC: naksha_core::Allocator = naksha_core::Allocator;

#[tokio::main]
async fn main() -> Result<(), boot::BootError> {
    boot::http(|app: Arc<IngestApp>, req| async move { api::ingest(&app.verifier, &app.ingest, req).await }).await
}
