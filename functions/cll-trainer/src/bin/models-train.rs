//! `POST /models/train` (role admin): queue a training job for the caller's tenant.

use naksha_core::auth::{AuthConfig, Verifier};
use naksha_core::{aws::Aws, config::ConfigReader, http, logging};
use naksha_trainer::{api, wiring};

#[global_allocator]
static ALLOC: naksha_core::Allocator = naksha_core::Allocator;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    logging::init();
    let mut cfg = ConfigReader::from_env();
    let auth = AuthConfig::from_config(&mut cfg);
    let (jobs, queue) = (wiring::jobs(&mut cfg), wiring::queue(&mut cfg));
    cfg.finish()?;
    let aws = Aws::load().await;
    let verifier = Verifier::new(auth);
    verifier.warm().await;
    http::serve_with((verifier, jobs(&aws), queue(&aws)), |app, req| async move {
        api::train(&app.0, &app.1, &app.2, req).await
    })
    .await
}
