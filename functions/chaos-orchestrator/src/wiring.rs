//! Each chaos Lambda's state, read from the environment and built once per cold start by
//! naksha-core's bootstrap.

use naksha_core::auth::{AuthConfig, Verifier};
use naksha_core::boot::{BootError, Cold, Function};
use naksha_core::config::ConfigReader;
use naksha_core::sim::SimWorld;

use naksha_federation::store::DynamoFleet;

use crate::store::{DynamoAgentRuns, DynamoChaos, DynamoTelemetry, DynamoWorld, KinesisChaosQueue, ReqwestHttp, Views};

fn hosts(r: &mut ConfigReader) -> Vec<String> {
    r.optional("CHAOS_HTTP_PROBE_HOSTS")
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|h| !h.is_empty())
        .map(str::to_owned)
        .collect()
}

/// The HTTP routes.
#[derive(Debug)]
pub struct ApiApp {
    pub verifier: Verifier,
    pub chaos: DynamoChaos,
    pub world: DynamoWorld,
    pub views: Views,
    pub queue: KinesisChaosQueue,
    pub http_hosts: Vec<String>,
}

#[derive(Debug)]
pub struct ApiConfig {
    auth: AuthConfig,
    chaos: String,
    sim: String,
    federation: String,
    state: String,
    stream: String,
    hosts: Vec<String>,
}

impl Function for ApiApp {
    type Config = ApiConfig;

    fn config(r: &mut ConfigReader) -> ApiConfig {
        ApiConfig {
            auth: AuthConfig::from_config(r),
            chaos: r.required("CHAOS_TABLE"),
            sim: r.required("SIM_TABLE"),
            federation: r.required("FEDERATION_TABLE"),
            state: r.required("AGENT_STATE_TABLE"),
            stream: r.required("CHAOS_STREAM"),
            hosts: hosts(r),
        }
    }

    async fn build(c: ApiConfig, cold: &Cold) -> Result<Self, BootError> {
        let db = cold.aws.dynamodb();
        Ok(Self {
            verifier: cold.verifier(c.auth).await,
            chaos: DynamoChaos::new(db.clone(), c.chaos),
            world: DynamoWorld {
                sim: SimWorld::new(db.clone(), c.sim),
                fleet: DynamoFleet::new(db.clone(), c.federation),
            },
            views: Views::new(db, c.state),
            queue: KinesisChaosQueue::new(cold.aws.kinesis(), c.stream),
            http_hosts: c.hosts,
        })
    }
}

/// The run worker (and the game-day schedule): everything a step reads and changes.
#[derive(Debug)]
pub struct WorkerApp {
    pub chaos: DynamoChaos,
    pub world: DynamoWorld,
    pub agent: DynamoAgentRuns,
    pub telemetry: DynamoTelemetry,
    pub views: Views,
    pub http: ReqwestHttp,
    pub queue: KinesisChaosQueue,
}

#[derive(Debug)]
pub struct WorkerConfig {
    chaos: String,
    sim: String,
    federation: String,
    state: String,
    runs: String,
    aggregates: String,
    stream: String,
}

impl Function for WorkerApp {
    type Config = WorkerConfig;

    fn config(r: &mut ConfigReader) -> WorkerConfig {
        WorkerConfig {
            chaos: r.required("CHAOS_TABLE"),
            sim: r.required("SIM_TABLE"),
            federation: r.required("FEDERATION_TABLE"),
            state: r.required("AGENT_STATE_TABLE"),
            runs: r.required("RUNS_TABLE"),
            aggregates: r.required("AGGREGATES_TABLE"),
            stream: r.required("CHAOS_STREAM"),
        }
    }

    async fn build(c: WorkerConfig, cold: &Cold) -> Result<Self, BootError> {
        let db = cold.aws.dynamodb();
        Ok(Self {
            chaos: DynamoChaos::new(db.clone(), c.chaos),
            world: DynamoWorld {
                sim: SimWorld::new(db.clone(), c.sim),
                fleet: DynamoFleet::new(db.clone(), c.federation),
            },
            agent: DynamoAgentRuns::new(db.clone(), c.runs),
            telemetry: DynamoTelemetry::new(db.clone(), c.aggregates),
            views: Views::new(db, c.state),
            http: ReqwestHttp::new()?,
            queue: KinesisChaosQueue::new(cold.aws.kinesis(), c.stream),
        })
    }
}
