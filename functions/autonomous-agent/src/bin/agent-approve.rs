//! `POST /agent/runs/{run_id}/approve` (role approver): approve exactly the plan awaiting approval.

use naksha_agent::{api, wiring::Boot};
use naksha_core::{config::ConfigReader, http, logging};

#[global_allocator]
static ALLOC: naksha_core::Allocator = naksha_core::Allocator;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    logging::init();
    let mut cfg = ConfigReader::from_env();
    let boot = Boot::read(&mut cfg);
    let stream = cfg.required("AGENT_STREAM");
    cfg.finish()?;
    let ctx = boot.start().await;
    http::serve_with((ctx.queue(&stream), ctx), |app, req| async move {
        api::approve(&app.1.verifier, &app.1.store, &app.0, req).await
    })
    .await
}
