//! `GET /models`: every model version of the caller's tenant, with status and verification.

use std::sync::Arc;

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
    let registry = wiring::registry(&mut cfg);
    let key_ids = wiring::keys(&mut cfg);
    cfg.finish()?;
    let aws = Aws::load().await;
    let keys = wiring::load_keys(&aws, &key_ids).await?;
    let verifier = Verifier::new(auth);
    verifier.warm().await;
    let app = Arc::new((verifier, registry(&aws), keys));
    http::serve(move |req| {
        let app = Arc::clone(&app);
        async move { api::models(&app.0, &app.1, &app.2, req).await }
    })
    .await
}
