//! `GET /health`: checks the stream, tables and key that insight-stream needs.

use std::sync::Arc;

use naksha_core::config::{ConfigReader, Platform};
use naksha_core::{aws::Aws, http, logging};
use naksha_insight_stream::health::{self, Dependency};

#[global_allocator]
static ALLOC: naksha_core::Allocator = naksha_core::Allocator;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    logging::init();
    let mut cfg = ConfigReader::from_env();
    let platform = Platform::from_config(&mut cfg);
    let deps = vec![
        Dependency::Stream(cfg.required("TELEMETRY_STREAM")),
        Dependency::Table(cfg.required("AGGREGATES_TABLE")),
        Dependency::Table(cfg.required("COUNTERS_TABLE")),
        Dependency::Table(cfg.required("DEADLETTER_TABLE")),
        Dependency::Key(cfg.required("PII_KEY_ID")),
    ];
    cfg.finish()?;
    let app = Arc::new((Aws::load().await, platform.backend, deps));
    http::serve(move |_req| {
        let app = Arc::clone(&app);
        async move { http::json(200, &health::check(&app.0, app.1, &app.2).await?) }
    })
    .await
}
