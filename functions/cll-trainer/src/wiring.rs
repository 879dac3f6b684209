//! Each trainer Lambda's state, read from the environment and built once per cold start by
//! naksha-core's bootstrap.

use naksha_core::auth::{AuthConfig, Verifier};
use naksha_core::boot::{BootError, Cold, Function};
use naksha_core::config::ConfigReader;
use naksha_core::metrics::DynamoCounters;
use naksha_core::signing::{KmsSigner, TrustedKeys, key_ids};

use crate::jobs::{DEFAULT_WINDOW_HOURS, MAX_WINDOW_HOURS};
use crate::store::{DynamoJobs, DynamoRegistry, DynamoTrainingSource, KinesisJobQueue};
use crate::train::Settings;
use crate::worker::Trainer;

/// `GET /jobs/{job_id}` and `POST /models/train`.
#[derive(Debug)]
pub struct JobsApp {
    pub verifier: Verifier,
    pub jobs: DynamoJobs,
    pub queue: KinesisJobQueue,
}

#[derive(Debug)]
pub struct JobsConfig {
    auth: AuthConfig,
    jobs: String,
    stream: String,
}

impl Function for JobsApp {
    type Config = JobsConfig;

    fn config(r: &mut ConfigReader) -> JobsConfig {
        JobsConfig {
            auth: AuthConfig::from_config(r),
            jobs: r.required("JOBS_TABLE"),
            stream: r.required("JOBS_STREAM"),
        }
    }

    async fn build(c: JobsConfig, cold: &Cold) -> Result<Self, BootError> {
        Ok(Self {
            verifier: cold.verifier(c.auth).await,
            jobs: DynamoJobs::new(cold.aws.dynamodb(), c.jobs),
            queue: KinesisJobQueue::new(cold.aws.kinesis(), c.stream),
        })
    }
}

/// `GET /models` and `GET /models/{model_id}`: the registry and the keys versions verify with.
#[derive(Debug)]
pub struct RegistryApp {
    pub verifier: Verifier,
    pub registry: DynamoRegistry,
    pub keys: TrustedKeys,
}

#[derive(Debug)]
pub struct RegistryConfig {
    auth: AuthConfig,
    models: String,
    trusted: Vec<String>,
}

impl Function for RegistryApp {
    type Config = RegistryConfig;

    fn config(r: &mut ConfigReader) -> RegistryConfig {
        RegistryConfig {
            auth: AuthConfig::from_config(r),
            models: r.required("MODELS_TABLE"),
            trusted: key_ids(r, "MODEL_KEY_IDS"),
        }
    }

    async fn build(c: RegistryConfig, cold: &Cold) -> Result<Self, BootError> {
        Ok(Self {
            keys: cold.trusted_keys(&c.trusted).await?,
            verifier: cold.verifier(c.auth).await,
            registry: DynamoRegistry::new(cold.aws.dynamodb(), c.models),
        })
    }
}

/// The hourly schedule: lists tenants, queues one job each.
#[derive(Debug)]
pub struct ScheduleApp {
    pub source: DynamoTrainingSource,
    pub jobs: DynamoJobs,
    pub queue: KinesisJobQueue,
    pub window_hours: u32,
}

#[derive(Debug)]
pub struct ScheduleConfig {
    series: String,
    jobs: String,
    stream: String,
    window_hours: u32,
}

impl Function for ScheduleApp {
    type Config = ScheduleConfig;

    fn config(r: &mut ConfigReader) -> ScheduleConfig {
        let window_hours = match r.optional("TRAINING_WINDOW_HOURS") {
            None => DEFAULT_WINDOW_HOURS,
            Some(raw) => match raw.parse::<u32>() {
                Ok(h) if (1..=MAX_WINDOW_HOURS).contains(&h) => h,
                _ => {
                    r.problem(format!("TRAINING_WINDOW_HOURS must be 1..={MAX_WINDOW_HOURS}, not {raw:?}"));
                    0
                }
            },
        };
        ScheduleConfig {
            series: r.required("SERIES_TABLE"),
            jobs: r.required("JOBS_TABLE"),
            stream: r.required("JOBS_STREAM"),
            window_hours,
        }
    }

    async fn build(c: ScheduleConfig, cold: &Cold) -> Result<Self, BootError> {
        let db = cold.aws.dynamodb();
        Ok(Self {
            // The schedule only lists tenants; the aggregates and runs tables are the worker's.
            source: DynamoTrainingSource::new(db.clone(), c.series, String::new(), String::new()),
            jobs: DynamoJobs::new(db, c.jobs),
            queue: KinesisJobQueue::new(cold.aws.kinesis(), c.stream),
            window_hours: c.window_hours,
        })
    }
}

/// The trainer as the jobs-stream worker runs it.
pub type LiveTrainer = Trainer<DynamoTrainingSource, DynamoJobs, DynamoRegistry, KmsSigner, DynamoCounters>;

#[derive(Debug)]
pub struct WorkerApp {
    pub trainer: LiveTrainer,
}

#[derive(Debug)]
pub struct WorkerConfig {
    series: String,
    aggregates: String,
    runs: String,
    signing_key: String,
    counters: String,
    jobs: String,
    models: String,
    trusted: Vec<String>,
}

impl Function for WorkerApp {
    type Config = WorkerConfig;

    fn config(r: &mut ConfigReader) -> WorkerConfig {
        WorkerConfig {
            series: r.required("SERIES_TABLE"),
            aggregates: r.required("AGGREGATES_TABLE"),
            runs: r.required("RUNS_TABLE"),
            signing_key: r.required("MODEL_SIGNING_KEY_ID"),
            counters: r.required("COUNTERS_TABLE"),
            jobs: r.required("JOBS_TABLE"),
            models: r.required("MODELS_TABLE"),
            trusted: key_ids(r, "MODEL_KEY_IDS"),
        }
    }

    async fn build(c: WorkerConfig, cold: &Cold) -> Result<Self, BootError> {
        let db = cold.aws.dynamodb();
        let trainer = Trainer {
            source: DynamoTrainingSource::new(db.clone(), c.series, c.aggregates, c.runs),
            jobs: DynamoJobs::new(db.clone(), c.jobs),
            registry: DynamoRegistry::new(db.clone(), c.models),
            signer: cold.signer(&c.signing_key),
            keys: cold.trusted_keys(&c.trusted).await?,
            settings: Settings::default(),
            counters: DynamoCounters::new(db, c.counters),
        };
        Ok(Self { trainer })
    }
}
