//! `GET /jobs/{job_id}`: a training job's stage, progress and result.

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
    let jobs = wiring::jobs(&mut cfg);
    cfg.finish()?;
    let aws = Aws::load().await;
    let verifier = Verifier::new(auth);
    verifier.warm().await;
    http::serve_with((verifier, jobs(&aws)), |app, req| async move { api::job(&app.0, &app.1, req).await }).await
}
