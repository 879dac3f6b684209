//! Each agent Lambda's state, read from the environment and built once per cold start by
//! naksha-core's bootstrap. Routes that need more than the verifier and the store embed
//! [`RouteApp`] and add their own clients.

use naksha_core::auth::{AuthConfig, Verifier};
use naksha_core::boot::{BootError, Cold, Function};
use naksha_core::config::ConfigReader;
use naksha_core::privacy::PiiKey;
use naksha_core::signing::{KmsSigner, TrustedKeys, trusted_key_ids};

use crate::act::{Adapters, k8s::K8sAdapter, sim::SimAdapter};
use crate::agent::Agent;
use crate::observe::{Observers, prometheus::PrometheusObserver, telemetry::TelemetryObserver};
use crate::ports::Learned;
use crate::spec::Graph;
use crate::store::{DynamoAgentStore, DynamoAggregateQuery, DynamoSim, KinesisRunQueue, Tables};

/// The routes that need only the caller's token and the agent's tables.
#[derive(Debug)]
pub struct RouteApp {
    pub verifier: Verifier,
    pub store: DynamoAgentStore,
}

#[derive(Debug)]
pub struct RouteConfig {
    auth: AuthConfig,
    tables: Tables,
}

impl Function for RouteApp {
    type Config = RouteConfig;

    fn config(r: &mut ConfigReader) -> RouteConfig {
        RouteConfig { auth: AuthConfig::from_config(r), tables: Tables::from_config(r) }
    }

    async fn build(c: RouteConfig, cold: &Cold) -> Result<Self, BootError> {
        Ok(Self { verifier: cold.verifier(c.auth).await, store: DynamoAgentStore::new(cold.aws.dynamodb(), c.tables) })
    }
}

/// `POST /agent/runs/{id}/approve`: a route that queues runs.
#[derive(Debug)]
pub struct QueueApp {
    pub route: RouteApp,
    pub queue: KinesisRunQueue,
}

impl Function for QueueApp {
    type Config = (RouteConfig, String);

    fn config(r: &mut ConfigReader) -> (RouteConfig, String) {
        (RouteApp::config(r), r.required("AGENT_STREAM"))
    }

    async fn build((route, stream): (RouteConfig, String), cold: &Cold) -> Result<Self, BootError> {
        Ok(Self { route: RouteApp::build(route, cold).await?, queue: KinesisRunQueue::new(cold.aws.kinesis(), stream) })
    }
}

/// `POST /agent/run`: queues a run, after pseudonymising the telemetry it carries (P-1).
#[derive(Debug)]
pub struct RunApp {
    pub queued: QueueApp,
    pub pii: PiiKey,
}

impl Function for RunApp {
    type Config = (<QueueApp as Function>::Config, String);

    fn config(r: &mut ConfigReader) -> Self::Config {
        (QueueApp::config(r), r.required("PII_KEY_ID"))
    }

    async fn build((queued, pii_key): Self::Config, cold: &Cold) -> Result<Self, BootError> {
        Ok(Self { queued: QueueApp::build(queued, cold).await?, pii: cold.pii_key(&pii_key).await? })
    }
}

/// `POST /wpk`: signs with KMS and checks the signature against the trusted key before storing.
#[derive(Debug)]
pub struct RegisterApp {
    pub route: RouteApp,
    pub signer: KmsSigner,
    pub keys: TrustedKeys,
}

impl Function for RegisterApp {
    type Config = (RouteConfig, String);

    fn config(r: &mut ConfigReader) -> (RouteConfig, String) {
        (RouteApp::config(r), r.required("SIGNING_KEY_ID"))
    }

    async fn build((route, key): (RouteConfig, String), cold: &Cold) -> Result<Self, BootError> {
        Ok(Self {
            route: RouteApp::build(route, cold).await?,
            keys: cold.trusted_keys(std::slice::from_ref(&key)).await?,
            signer: cold.signer(&key),
        })
    }
}

/// `GET` and `PUT /sim/resources/{resource}` (simulation mode).
#[derive(Debug)]
pub struct SimApp {
    pub verifier: Verifier,
    pub sim: DynamoSim,
}

impl Function for SimApp {
    type Config = (AuthConfig, String, String);

    fn config(r: &mut ConfigReader) -> (AuthConfig, String, String) {
        (AuthConfig::from_config(r), r.required("SIM_TABLE"), r.required("AGENT_STATE_TABLE"))
    }

    async fn build((auth, sim, state): (AuthConfig, String, String), cold: &Cold) -> Result<Self, BootError> {
        Ok(Self { verifier: cold.verifier(auth).await, sim: DynamoSim::new(cold.aws.dynamodb(), sim, state) })
    }
}

/// The agent as the run worker runs it.
pub type LiveAgent =
    Agent<DynamoAgentStore, Adapters<DynamoSim, DynamoAgentStore>, Observers<DynamoAggregateQuery>, Learned>;

/// The run worker on the runs stream.
#[derive(Debug)]
pub struct WorkerApp {
    pub agent: LiveAgent,
}

#[derive(Debug)]
pub struct WorkerConfig {
    tables: Tables,
    trusted: Vec<String>,
    aggregates: String,
    models: String,
    sim_table: Option<String>,
    k8s: Option<(String, Option<String>, String)>,
    prometheus: Option<String>,
    default_adapter: String,
}

impl Function for WorkerApp {
    type Config = WorkerConfig;

    fn config(r: &mut ConfigReader) -> WorkerConfig {
        let sim_table = r.optional("SIM_TABLE");
        let namespace = r.optional("K8S_NAMESPACE").unwrap_or_else(|| "default".into());
        WorkerConfig {
            tables: Tables::from_config(r),
            trusted: trusted_key_ids(r),
            aggregates: r.required("AGGREGATES_TABLE"),
            models: r.required("MODELS_TABLE"),
            k8s: r.optional("K8S_API_URL").map(|url| (url, r.optional("K8S_TOKEN"), namespace)),
            prometheus: r.optional("PROMETHEUS_URL"),
            default_adapter: r
                .optional("DEFAULT_ADAPTER")
                .unwrap_or_else(|| if sim_table.is_some() { "sim".into() } else { "k8s".into() }),
            sim_table,
        }
    }

    async fn build(c: WorkerConfig, cold: &Cold) -> Result<Self, BootError> {
        let db = cold.aws.dynamodb();
        let keys = cold.trusted_keys(&c.trusted).await?;
        let store = DynamoAgentStore::new(db.clone(), c.tables.clone());
        let agent = Agent {
            actuator: Adapters {
                sim: c.sim_table.map(|t| SimAdapter { store: DynamoSim::new(db.clone(), t, c.tables.state.clone()) }),
                k8s: c.k8s.map(|(url, token, namespace)| K8sAdapter::new(url, token, namespace)),
                receipts: store.clone(),
            },
            observer: Observers {
                telemetry: Some(TelemetryObserver { query: DynamoAggregateQuery::new(db, c.aggregates) }),
                prometheus: c.prometheus.map(PrometheusObserver::new),
            },
            store,
            // WPKs are ranked by the tenant's trained model (verified before use), else by history.
            model: Learned(cold.champions(&c.models, keys.clone())),
            keys,
            graph: Graph::builtin()?,
            default_adapter: c.default_adapter,
        };
        tracing::info!(graph = %agent.graph.version, "agent worker ready");
        Ok(Self { agent })
    }
}
