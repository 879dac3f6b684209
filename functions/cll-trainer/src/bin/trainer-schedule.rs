//! The hourly schedule (EventBridge): one training job per tenant, queued on the jobs stream.

use std::sync::Arc;

use lambda_runtime::{LambdaEvent, service_fn};
use naksha_core::{aws::Aws, config::ConfigReader, logging};
use naksha_trainer::store::TrainingSource;
use naksha_trainer::wiring;
use naksha_trainer::worker::{self, DEFAULT_WINDOW_HOURS, MAX_WINDOW_HOURS};
use serde_json::Value;

#[global_allocator]
static ALLOC: naksha_core::Allocator = naksha_core::Allocator;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    logging::init();
    let mut cfg = ConfigReader::from_env();
    let series = cfg.required("SERIES_TABLE");
    let (jobs, queue) = (wiring::jobs(&mut cfg), wiring::queue(&mut cfg));
    let hours = match cfg.optional("TRAINING_WINDOW_HOURS") {
        None => DEFAULT_WINDOW_HOURS,
        Some(raw) => match raw.parse::<u32>() {
            Ok(h) if (1..=MAX_WINDOW_HOURS).contains(&h) => h,
            _ => {
                cfg.problem(format!("TRAINING_WINDOW_HOURS must be 1..={MAX_WINDOW_HOURS}, not {raw:?}"));
                0
            }
        },
    };
    cfg.finish()?;
    let aws = Aws::load().await;
    // The schedule only lists tenants; the aggregates and runs tables are the worker's.
    let source = TrainingSource::new(aws.dynamodb(), series, String::new(), String::new());
    let app = Arc::new((source, jobs(&aws), queue(&aws)));
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| {
        let app = Arc::clone(&app);
        async move {
            let out = worker::schedule(&app.0, &app.1, &app.2, &event.payload, hours).await?;
            tracing::info!(result = %out, "scheduled training jobs");
            Ok::<_, lambda_runtime::Error>(out)
        }
    }))
    .await
}
