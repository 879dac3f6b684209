//! `POST /ingest`: verify the token, anonymise, one `PutRecords` per request.

use naksha_core::auth::{AuthConfig, Verifier};
use naksha_core::{aws::Aws, config::ConfigReader, http, logging, metrics::DynamoCounters, privacy::PiiKey};
use naksha_insight_stream::{api, ingest::Ingest, store::KinesisSink};

#[global_allocator]
static ALLOC: naksha_core::Allocator = naksha_core::Allocator;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    logging::init();
    let mut cfg = ConfigReader::from_env();
    let auth = AuthConfig::from_config(&mut cfg);
    let (stream, counters, pii_key) =
        (cfg.required("TELEMETRY_STREAM"), cfg.required("COUNTERS_TABLE"), cfg.required("PII_KEY_ID"));
    cfg.finish()?;
    let aws = Aws::load().await;
    let pii = PiiKey::from_kms(&aws.kms(), &pii_key).await?;
    let verifier = Verifier::new(auth);
    verifier.warm().await;
    let ingest =
        Ingest::new(KinesisSink::new(aws.kinesis(), stream), DynamoCounters::new(aws.dynamodb(), counters), pii);
    http::serve_with((verifier, ingest), |app, req| async move { api::ingest(&app.0, &app.1, req).await }).await
}
