//! `POST /models/train` (role admin): queue a training job for the caller's tenant.

use std::sync::Arc;

use naksha_core::boot;
use naksha_trainer::{api, wiring::JobsApp};

#[global_allocator]
static ALLOC: naksha_core::Allocator = naksha_core::Allocator;

#[tokio::main]
async fn main() -> Result<(), boot::BootError> {
    boot::http(|app: Arc<JobsApp>, req| async move { api::train(&app.verifier, &app.jobs, &app.queue, req).await })
        .await
}
