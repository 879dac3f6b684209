//! `GET /jobs/{job_id}`: a training job's stage, progress and result.

use std::sync::Arc;

use naksha_core::boot;
use naksha_trainer::{api, wiring::JobsApp};

#[global_allocator]
static ALLOC: naksha_core::Allocator = naksha_core::Allocator;

#[tokio::main]
async fn main() -> Result<(), boot::BootError> {
    boot::http(|app: Arc<JobsApp>, req| async move { api::job(&app.verifier, &app.jobs, req).await }).await
}
