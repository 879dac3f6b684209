//! Kinesis `naksha.telemetry` consumer: per-minute aggregates, partial batch responses.

use std::sync::Arc;

use aws_lambda_events::event::kinesis::KinesisEvent;
use lambda_runtime::{LambdaEvent, service_fn};
use naksha_core::{aws::Aws, config::ConfigReader, logging, metrics::DynamoCounters};
use naksha_insight_stream::aggregate::Consumer;
use naksha_insight_stream::kinesis;
use naksha_insight_stream::store::{DynamoAggregates, DynamoDeadLetters};

#[global_allocator]
static ALLOC: naksha_core::Allocator = naksha_core::Allocator;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    logging::init();
    let mut cfg = ConfigReader::from_env();
    let (aggregates, dead, counters) =
        (cfg.required("AGGREGATES_TABLE"), cfg.required("DEADLETTER_TABLE"), cfg.required("COUNTERS_TABLE"));
    cfg.finish()?;
    let db = Aws::load().await.dynamodb();
    let consumer = Arc::new(Consumer::new(
        DynamoAggregates::new(db.clone(), aggregates),
        DynamoDeadLetters::new(db.clone(), dead),
        DynamoCounters::new(db, counters),
    ));
    lambda_runtime::run(service_fn(move |event: LambdaEvent<KinesisEvent>| {
        let consumer = Arc::clone(&consumer);
        async move { Ok::<_, lambda_runtime::Error>(kinesis::handle(&consumer, &event.payload).await.0) }
    }))
    .await
}
