//! `POST /agent/run` (role operator): record the run and queue it on the runs stream.

use naksha_agent::{api, wiring::Boot};
use naksha_core::{config::ConfigReader, http, logging, privacy::PiiKey};

#[global_allocator]
static ALLOC: naksha_core::Allocator = naksha_core::Allocator;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    logging::init();
    let mut cfg = ConfigReader::from_env();
    let boot = Boot::read(&mut cfg);
    let (stream, pii_key) = (cfg.required("AGENT_STREAM"), cfg.required("PII_KEY_ID"));
    cfg.finish()?;
    let ctx = boot.start().await;
    let pii = PiiKey::from_kms(&ctx.aws.kms(), &pii_key).await?;
    http::serve_with((ctx.queue(&stream), pii, ctx), |app, req| async move {
        api::start_run(&app.2.verifier, &app.2.store, &app.0, &app.1, req).await
    })
    .await
}
