//! Each chaos Lambda's state, read from the environment and built once per cold start by
//! naksha-core's bootstrap.

use naksha_core::auth::{AuthConfig, Verifier};
use naksha_core::boot::{BootError, Cold, Function};
use naksha_core::config::ConfigReader;
use naksha_core::metrics::DynamoCounters;
use naksha_core::signing::{KmsSigner, TrustedKeys};
use naksha_core::sim::SimWorld;
use naksha_insight_stream::ingest::Ingest;
use naksha_insight_stream::store::KinesisSink;

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

/// `POST /sim/scenarios/{name}`: the simulated world, the WPK registry and its key, the approval
/// key (standing approvals) and the ingest path (history).
#[derive(Debug)]
pub struct ScenarioApp {
    pub verifier: Verifier,
    pub sim: naksha_agent::store::DynamoSim,
    pub wpks: naksha_agent::store::DynamoAgentStore,
    pub wpk_signer: KmsSigner,
    pub wpk_keys: TrustedKeys,
    pub approval_signer: KmsSigner,
    pub ingest: Ingest<KinesisSink, DynamoCounters>,
}

#[derive(Debug)]
pub struct ScenarioConfig {
    auth: AuthConfig,
    tables: naksha_agent::store::Tables,
    sim: String,
    wpk_key: String,
    approval_key: String,
    stream: String,
    counters: String,
    pii_key: String,
}

impl Function for ScenarioApp {
    type Config = ScenarioConfig;

    fn config(r: &mut ConfigReader) -> ScenarioConfig {
        ScenarioConfig {
            auth: AuthConfig::from_config(r),
            tables: naksha_agent::store::Tables::from_config(r),
            sim: r.required("SIM_TABLE"),
            wpk_key: r.required("WPK_SIGNING_KEY_ID"),
            approval_key: r.required("APPROVAL_SIGNING_KEY_ID"),
            stream: r.required("TELEMETRY_STREAM"),
            counters: r.required("COUNTERS_TABLE"),
            pii_key: r.required("PII_KEY_ID"),
        }
    }

    async fn build(c: ScenarioConfig, cold: &Cold) -> Result<Self, BootError> {
        let db = cold.aws.dynamodb();
        let pii = cold.pii_key(&c.pii_key).await?;
        Ok(Self {
            verifier: cold.verifier(c.auth).await,
            sim: naksha_agent::store::DynamoSim::new(db.clone(), c.sim, c.tables.state.clone()),
            wpks: naksha_agent::store::DynamoAgentStore::new(db.clone(), c.tables),
            wpk_keys: cold.trusted_keys(std::slice::from_ref(&c.wpk_key)).await?,
            wpk_signer: cold.signer(&c.wpk_key),
            approval_signer: cold.signer(&c.approval_key),
            ingest: Ingest::new(
                KinesisSink::new(cold.aws.kinesis(), c.stream),
                DynamoCounters::new(db, c.counters),
                pii,
            ),
        })
    }
}

/// The game-day schedule: starts runs like `POST /chaos/run`, without a token (EventBridge).
#[derive(Debug)]
pub struct GameDayApp {
    pub chaos: DynamoChaos,
    pub world: DynamoWorld,
    pub views: Views,
    pub queue: KinesisChaosQueue,
}

impl Function for GameDayApp {
    type Config = WorkerConfig;

    fn config(r: &mut ConfigReader) -> WorkerConfig {
        WorkerApp::config(r)
    }

    async fn build(c: WorkerConfig, cold: &Cold) -> Result<Self, BootError> {
        let db = cold.aws.dynamodb();
        Ok(Self {
            chaos: DynamoChaos::new(db.clone(), c.chaos),
            world: DynamoWorld {
                sim: SimWorld::new(db.clone(), c.sim),
                fleet: DynamoFleet::new(db.clone(), c.federation),
            },
            views: Views::new(db, c.state),
            queue: KinesisChaosQueue::new(cold.aws.kinesis(), c.stream),
        })
    }
}
