//! The training worker: consumes the jobs stream (one job per invocation) and runs each job:
//! read aggregates and outcomes, train, judge against the champion, sign, register, promote.

use std::sync::Arc;

use aws_lambda_events::event::kinesis::KinesisEvent;
use aws_lambda_events::event::streams::KinesisEventResponse;
use lambda_runtime::{LambdaEvent, service_fn};
use naksha_core::metrics::DynamoCounters;
use naksha_core::signing::KmsSigner;
use naksha_core::{aws::Aws, config::ConfigReader, logging};
use naksha_trainer::store::TrainingSource;
use naksha_trainer::train::Settings;
use naksha_trainer::wiring;
use naksha_trainer::worker::{self, Trainer};

#[global_allocator]
static ALLOC: naksha_core::Allocator = naksha_core::Allocator;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    logging::init();
    let mut cfg = ConfigReader::from_env();
    let (series, aggregates, runs) =
        (cfg.required("SERIES_TABLE"), cfg.required("AGGREGATES_TABLE"), cfg.required("RUNS_TABLE"));
    let signing_key = cfg.required("SIGNING_KEY_ID");
    let counters = cfg.required("COUNTERS_TABLE");
    let (jobs, registry) = (wiring::jobs(&mut cfg), wiring::registry(&mut cfg));
    let key_ids = wiring::keys(&mut cfg);
    cfg.finish()?;
    let aws = Aws::load().await;
    let trainer = Trainer {
        source: TrainingSource::new(aws.dynamodb(), series, aggregates, runs),
        jobs: jobs(&aws),
        registry: registry(&aws),
        signer: KmsSigner::new(aws.kms(), signing_key),
        keys: wiring::load_keys(&aws, &key_ids).await?,
        settings: Settings::default(),
        counters: DynamoCounters::new(aws.dynamodb(), counters),
    };
    let trainer = Arc::new(trainer);
    lambda_runtime::run(service_fn(move |event: LambdaEvent<KinesisEvent>| {
        let trainer = Arc::clone(&trainer);
        async move {
            worker::handle(&trainer, &event.payload).await;
            Ok::<_, lambda_runtime::Error>(KinesisEventResponse::default())
        }
    }))
    .await
}
