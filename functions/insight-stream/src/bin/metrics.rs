//! `GET /metrics`: fleet-wide counters from DynamoDB as Prometheus text.

use std::sync::Arc;

use naksha_core::{aws::Aws, config::ConfigReader, http, logging, metrics::DynamoCounters};
use naksha_insight_stream::api;

#[global_allocator]
static ALLOC: naksha_core::Allocator = naksha_core::Allocator;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    logging::init();
    let mut cfg = ConfigReader::from_env();
    let table = cfg.required("COUNTERS_TABLE");
    cfg.finish()?;
    let counters = Arc::new(DynamoCounters::new(Aws::load().await.dynamodb(), table));
    http::serve(move |_req| {
        let counters = Arc::clone(&counters);
        async move { api::metrics(counters.as_ref()).await }
    })
    .await
}
