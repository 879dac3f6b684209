//! `GET /signals`: the caller's series with an open anomaly signal and the runs they started.

use naksha_core::auth::{AuthConfig, Verifier};
use naksha_core::{aws::Aws, config::ConfigReader, http, logging};
use naksha_insight_stream::{api, store::DynamoSeries};

#[global_allocator]
static ALLOC: naksha_core::Allocator = naksha_core::Allocator;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    logging::init();
    let mut cfg = ConfigReader::from_env();
    let auth = AuthConfig::from_config(&mut cfg);
    let series = cfg.required("SERIES_TABLE");
    cfg.finish()?;
    let aws = Aws::load().await;
    let verifier = Verifier::new(auth);
    verifier.warm().await;
    http::serve_with((verifier, DynamoSeries::new(aws.dynamodb(), series)), |app, req| async move {
        api::signals(&app.0, &app.1, req).await
    })
    .await
}
