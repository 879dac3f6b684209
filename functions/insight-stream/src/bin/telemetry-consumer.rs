//! Kinesis `naksha.telemetry` consumer: per-minute aggregates, the streaming anomaly detector
//! (signals go to the agent's runs stream), partial batch responses.

use std::sync::Arc;

use aws_lambda_events::event::kinesis::KinesisEvent;
use lambda_runtime::{LambdaEvent, service_fn};
use naksha_core::model::{ChampionCache, DEFAULT_CACHE_TTL, ModelRegistry};
use naksha_core::signing::{TrustedKeys, trusted_key_ids};
use naksha_core::{aws::Aws, config::ConfigReader, logging, metrics::DynamoCounters};
use naksha_insight_stream::aggregate::Consumer;
use naksha_insight_stream::detection::Detection;
use naksha_insight_stream::kinesis;
use naksha_insight_stream::store::{DynamoAggregates, DynamoDeadLetters, DynamoSeries, KinesisSignals};

#[global_allocator]
static ALLOC: naksha_core::Allocator = naksha_core::Allocator;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    logging::init();
    let mut cfg = ConfigReader::from_env();
    let (aggregates, dead, counters) =
        (cfg.required("AGGREGATES_TABLE"), cfg.required("DEADLETTER_TABLE"), cfg.required("COUNTERS_TABLE"));
    let (series, agent_stream) = (cfg.required("SERIES_TABLE"), cfg.required("AGENT_STREAM"));
    let models = cfg.required("MODELS_TABLE");
    let key_ids = trusted_key_ids(&mut cfg);
    cfg.finish()?;
    let aws = Aws::load().await;
    let db = aws.dynamodb();
    // Detector parameters come from each tenant's champion model, verified before use.
    let keys = TrustedKeys::load(&aws.kms(), &key_ids).await?;
    let champions = ChampionCache::new(ModelRegistry::new(db.clone(), models), keys, DEFAULT_CACHE_TTL);
    let detection = Detection {
        store: DynamoSeries::new(db.clone(), series),
        sink: KinesisSignals::new(aws.kinesis(), agent_stream),
        params: Default::default(),
        models: champions,
    };
    let consumer = Arc::new(
        Consumer::new(
            DynamoAggregates::new(db.clone(), aggregates),
            DynamoDeadLetters::new(db.clone(), dead),
            DynamoCounters::new(db, counters),
        )
        .with_watch(detection),
    );
    lambda_runtime::run(service_fn(move |event: LambdaEvent<KinesisEvent>| {
        let consumer = Arc::clone(&consumer);
        async move { Ok::<_, lambda_runtime::Error>(kinesis::handle(&consumer, &event.payload).await.0) }
    }))
    .await
}
