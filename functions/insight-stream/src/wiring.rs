//! Each insight-stream Lambda's state, read from the environment and built once per cold start
//! by naksha-core's bootstrap (`boot::http` / `boot::events`).

use naksha_core::auth::{AuthConfig, Verifier};
use naksha_core::aws::Aws;
use naksha_core::boot::{BootError, Cold, Function};
use naksha_core::config::{Backend, ConfigReader};
use naksha_core::metrics::DynamoCounters;
use naksha_core::models::ChampionCache;
use naksha_core::signing::key_ids;

use crate::consumer::Consumer;
use crate::detection::Detection;
use crate::health::Dependency;
use crate::ingest::Ingest;
use crate::store::{DynamoAggregates, DynamoDeadLetters, DynamoSeries, KinesisSignals, KinesisSink};

fn list(r: &mut ConfigReader, name: &str) -> Vec<String> {
    r.required(name).split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned).collect()
}

/// `GET /health`: every stream, table and key of the deployment (`HEALTH_STREAMS`,
/// `HEALTH_TABLES`, `HEALTH_KEYS`, comma-separated, set from template.yaml).
/// Anonymous callers learn up or down; callers with a token, which dependency is which.
#[derive(Debug)]
pub struct HealthApp {
    pub verifier: Verifier,
    pub aws: Aws,
    pub backend: Backend,
    pub dependencies: Vec<Dependency>,
}

impl Function for HealthApp {
    type Config = (AuthConfig, Vec<Dependency>);

    fn config(r: &mut ConfigReader) -> Self::Config {
        let mut deps: Vec<Dependency> = list(r, "HEALTH_STREAMS").into_iter().map(Dependency::Stream).collect();
        deps.extend(list(r, "HEALTH_TABLES").into_iter().map(Dependency::Table));
        deps.extend(list(r, "HEALTH_KEYS").into_iter().map(Dependency::Key));
        (AuthConfig::from_config(r), deps)
    }

    async fn build((auth, dependencies): Self::Config, cold: &Cold) -> Result<Self, BootError> {
        Ok(Self {
            verifier: cold.verifier(auth).await,
            aws: cold.aws.clone(),
            backend: cold.platform.backend,
            dependencies,
        })
    }
}

/// `POST /ingest`.
#[derive(Debug)]
pub struct IngestApp {
    pub verifier: Verifier,
    pub ingest: Ingest<KinesisSink, DynamoCounters, DynamoSeries>,
}

#[derive(Debug)]
pub struct IngestConfig {
    auth: AuthConfig,
    stream: String,
    counters: String,
    pii_key: String,
    series: String,
}

impl Function for IngestApp {
    type Config = IngestConfig;

    fn config(r: &mut ConfigReader) -> IngestConfig {
        IngestConfig {
            auth: AuthConfig::from_config(r),
            stream: r.required("TELEMETRY_STREAM"),
            counters: r.required("COUNTERS_TABLE"),
            pii_key: r.required("PII_KEY_ID"),
            series: r.required("SERIES_TABLE"),
        }
    }

    async fn build(c: IngestConfig, cold: &Cold) -> Result<Self, BootError> {
        let pii = cold.pii_key(&c.pii_key).await?;
        let sink = KinesisSink::new(cold.aws.kinesis(), c.stream);
        let verifier = cold.verifier(c.auth).await;
        // New series count against the tenant's limits (the same table as its requests per second).
        let ingest = Ingest::new(sink, DynamoCounters::new(cold.aws.dynamodb(), c.counters), pii)
            .with_limits(verifier.limits().cloned(), DynamoSeries::new(cold.aws.dynamodb(), c.series));
        Ok(Self { verifier, ingest })
    }
}

/// The simulated world's telemetry exporter (simulation mode, every minute).
#[derive(Debug)]
pub struct SimExporterApp {
    pub world: naksha_core::sim::SimWorld,
    pub ingest: Ingest<KinesisSink, DynamoCounters>,
    /// How often the schedule fires the exporter, in seconds (60 in the cloud).
    pub tick_s: u32,
}

#[derive(Debug)]
pub struct SimExporterConfig {
    tick_s: u32,
    stream: String,
    counters: String,
    pii_key: String,
    sim: String,
}

impl Function for SimExporterApp {
    type Config = SimExporterConfig;

    fn config(r: &mut ConfigReader) -> SimExporterConfig {
        SimExporterConfig {
            tick_s: r.parsed("SIM_EXPORTER_TICK_S", 60),
            stream: r.required("TELEMETRY_STREAM"),
            counters: r.required("COUNTERS_TABLE"),
            pii_key: r.required("PII_KEY_ID"),
            sim: r.required("SIM_TABLE"),
        }
    }

    async fn build(c: SimExporterConfig, cold: &Cold) -> Result<Self, BootError> {
        let pii = cold.pii_key(&c.pii_key).await?;
        let sink = KinesisSink::new(cold.aws.kinesis(), c.stream);
        Ok(Self {
            world: naksha_core::sim::SimWorld::new(cold.aws.dynamodb(), c.sim),
            ingest: Ingest::new(sink, DynamoCounters::new(cold.aws.dynamodb(), c.counters), pii),
            tick_s: c.tick_s,
        })
    }
}

/// `GET /metrics`: the fleet-wide counters.
#[derive(Debug)]
pub struct MetricsApp {
    pub counters: DynamoCounters,
}

impl Function for MetricsApp {
    type Config = String;

    fn config(r: &mut ConfigReader) -> String {
        r.required("COUNTERS_TABLE")
    }

    async fn build(table: String, cold: &Cold) -> Result<Self, BootError> {
        Ok(Self { counters: DynamoCounters::new(cold.aws.dynamodb(), table) })
    }
}

/// `GET /signals`.
#[derive(Debug)]
pub struct SignalsApp {
    pub verifier: Verifier,
    pub series: DynamoSeries,
}

impl Function for SignalsApp {
    type Config = (AuthConfig, String);

    fn config(r: &mut ConfigReader) -> (AuthConfig, String) {
        (AuthConfig::from_config(r), r.required("SERIES_TABLE"))
    }

    async fn build((auth, series): (AuthConfig, String), cold: &Cold) -> Result<Self, BootError> {
        Ok(Self { verifier: cold.verifier(auth).await, series: DynamoSeries::new(cold.aws.dynamodb(), series) })
    }
}

/// The detector as the consumer runs it: series state in DynamoDB, signals on the runs stream,
/// parameters from each tenant's verified champion.
pub type LiveDetection = Detection<DynamoSeries, KinesisSignals, ChampionCache>;

/// The Kinesis `naksha.telemetry` consumer.
#[derive(Debug)]
pub struct ConsumerApp {
    pub consumer: Consumer<DynamoAggregates, DynamoDeadLetters, DynamoCounters, LiveDetection>,
}

#[derive(Debug)]
pub struct ConsumerConfig {
    aggregates: String,
    dead_letters: String,
    counters: String,
    series: String,
    agent_stream: String,
    models: String,
    trusted_keys: Vec<String>,
}

impl Function for ConsumerApp {
    type Config = ConsumerConfig;

    fn config(r: &mut ConfigReader) -> ConsumerConfig {
        ConsumerConfig {
            aggregates: r.required("AGGREGATES_TABLE"),
            dead_letters: r.required("DEADLETTER_TABLE"),
            counters: r.required("COUNTERS_TABLE"),
            series: r.required("SERIES_TABLE"),
            agent_stream: r.required("AGENT_STREAM"),
            models: r.required("MODELS_TABLE"),
            trusted_keys: key_ids(r, "MODEL_KEY_IDS"),
        }
    }

    async fn build(c: ConsumerConfig, cold: &Cold) -> Result<Self, BootError> {
        let db = cold.aws.dynamodb();
        let detection = Detection {
            store: DynamoSeries::new(db.clone(), c.series),
            sink: KinesisSignals::new(cold.aws.kinesis(), c.agent_stream),
            params: Default::default(),
            // Detector parameters come from each tenant's champion model, verified before use.
            models: cold.champions(&c.models, cold.trusted_keys(&c.trusted_keys).await?),
        };
        let consumer = Consumer::new(
            DynamoAggregates::new(db.clone(), c.aggregates),
            DynamoDeadLetters::new(db.clone(), c.dead_letters),
            DynamoCounters::new(db, c.counters),
        )
        .with_watch(detection);
        Ok(Self { consumer })
    }
}
