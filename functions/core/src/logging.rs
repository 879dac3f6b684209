//! JSON logs. Each line carries the Lambda request id through the runtime's
//! "Lambda runtime invoke" span and, inside a request, a run or a batch's signal, the W3C trace id
//! (`spans`: every open span's fields); the level comes from `AWS_LAMBDA_LOG_LEVEL` or `RUST_LOG`.

use lambda_runtime::tracing::subscriber::{self, EnvFilter, filter::LevelFilter};

/// Install the JSON subscriber once, at cold start.
pub fn init() {
    let level = std::env::var("AWS_LAMBDA_LOG_LEVEL")
        .or_else(|_| std::env::var("RUST_LOG"))
        .ok()
        .and_then(|l| l.parse::<LevelFilter>().ok())
        .unwrap_or(LevelFilter::INFO);
    let filter = EnvFilter::builder()
        .with_default_directive(level.into())
        .from_env_lossy()
        // The SDK's own request logs are noisy at INFO and could carry resource names.
        .add_directive("aws_smithy_runtime=warn".parse().unwrap_or_else(|_| level.into()))
        .add_directive("aws_config=warn".parse().unwrap_or_else(|_| level.into()));
    let _ = subscriber::fmt()
        .json()
        .with_current_span(true)
        .with_span_list(true)
        .with_target(false)
        .with_env_filter(filter)
        .try_init();
}
