//! `POST /agent/runs/{run_id}/reject` (role approver).

use std::sync::Arc;

use naksha_agent::{api, wiring::Boot};
use naksha_core::{config::ConfigReader, http, logging};

#[global_allocator]
static ALLOC: naksha_core::Allocator = naksha_core::Allocator;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    logging::init();
    let mut cfg = ConfigReader::from_env();
    let boot = Boot::read(&mut cfg);
    cfg.finish()?;
    let ctx = boot.start().await;
    let app = ctx;
    let app = Arc::new(app);
    http::serve(move |req| {
        let app = Arc::clone(&app);
        async move { api::reject(&app.verifier, &app.store, req).await }
    })
    .await
}
