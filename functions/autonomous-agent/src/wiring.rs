//! Each agent Lambda's state, read from the environment and built once per cold start by
//! naksha-core's bootstrap. Routes that need more than the verifier and the store embed
//! [`RouteApp`] and add their own clients.

use naksha_core::auth::{AuthConfig, Verifier};
use naksha_core::boot::{BootError, Cold, Function};
use naksha_core::config::ConfigReader;
use naksha_core::privacy::PiiKey;
use naksha_core::signing::{KmsSigner, TrustedKeys, key_ids};

use crate::act::{Adapters, k8s::K8sAdapter, sim::SimAdapter};
use crate::agent::{Agent, AgentKeys};
use crate::api::Approvals;
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

/// A route that queues runs on the runs stream.
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

/// The approval key: `APPROVAL_SIGNING_KEY_ID` signs, `APPROVAL_KEY_IDS` are trusted (settings).
#[derive(Debug)]
pub struct ApprovalConfig {
    signing: String,
    trusted: Vec<String>,
}

impl ApprovalConfig {
    fn read(r: &mut ConfigReader) -> Self {
        Self { signing: r.required("APPROVAL_SIGNING_KEY_ID"), trusted: key_ids(r, "APPROVAL_KEY_IDS") }
    }

    async fn build(self, cold: &Cold) -> Result<Approvals<KmsSigner>, BootError> {
        Ok(Approvals { signer: cold.signer(&self.signing), keys: cold.trusted_keys(&self.trusted).await? })
    }
}

/// `POST /agent/runs/{id}/approve`: signs the approval, then queues the run to resume.
#[derive(Debug)]
pub struct ApproveApp {
    pub queued: QueueApp,
    pub approvals: Approvals<KmsSigner>,
}

impl Function for ApproveApp {
    type Config = (<QueueApp as Function>::Config, ApprovalConfig);

    fn config(r: &mut ConfigReader) -> Self::Config {
        (QueueApp::config(r), ApprovalConfig::read(r))
    }

    async fn build((queued, approvals): Self::Config, cold: &Cold) -> Result<Self, BootError> {
        Ok(Self { queued: QueueApp::build(queued, cold).await?, approvals: approvals.build(cold).await? })
    }
}

/// `POST /wpk/{id}/promote`: checks the WPK (`WPK_KEY_IDS`) and signs the standing approval.
#[derive(Debug)]
pub struct PromoteApp {
    pub route: RouteApp,
    pub wpk_keys: TrustedKeys,
    pub approvals: Approvals<KmsSigner>,
}

impl Function for PromoteApp {
    type Config = (RouteConfig, Vec<String>, ApprovalConfig);

    fn config(r: &mut ConfigReader) -> Self::Config {
        (RouteApp::config(r), key_ids(r, "WPK_KEY_IDS"), ApprovalConfig::read(r))
    }

    async fn build((route, wpk, approvals): Self::Config, cold: &Cold) -> Result<Self, BootError> {
        Ok(Self {
            route: RouteApp::build(route, cold).await?,
            wpk_keys: cold.trusted_keys(&wpk).await?,
            approvals: approvals.build(cold).await?,
        })
    }
}

/// Which purpose's trusted keys a reading route loads.
pub trait KeysOf: Send + Sync + 'static {
    /// The variable listing the key ids.
    const VARIABLE: &'static str;
}

/// The audit key (`AUDIT_KEY_IDS`): checkpoints, for `GET /agent/audit?verify=true`.
#[derive(Debug)]
pub struct AuditKeys;

impl KeysOf for AuditKeys {
    const VARIABLE: &'static str = "AUDIT_KEY_IDS";
}

/// The approval key (`APPROVAL_KEY_IDS`): the signed settings, for `GET /agent/settings`.
#[derive(Debug)]
pub struct ApprovalKeys;

impl KeysOf for ApprovalKeys {
    const VARIABLE: &'static str = "APPROVAL_KEY_IDS";
}

/// A route that reads signed records back and needs one purpose's trusted keys.
#[derive(Debug)]
pub struct VerifyingApp<K> {
    pub route: RouteApp,
    pub keys: TrustedKeys,
    of: std::marker::PhantomData<K>,
}

impl<K: KeysOf> Function for VerifyingApp<K> {
    type Config = (RouteConfig, Vec<String>);

    fn config(r: &mut ConfigReader) -> Self::Config {
        (RouteApp::config(r), key_ids(r, K::VARIABLE))
    }

    async fn build((route, keys): Self::Config, cold: &Cold) -> Result<Self, BootError> {
        Ok(Self {
            route: RouteApp::build(route, cold).await?,
            keys: cold.trusted_keys(&keys).await?,
            of: std::marker::PhantomData,
        })
    }
}

/// `POST /agent/settings`: signs the settings (the approval key) and audits the change (the audit key).
#[derive(Debug)]
pub struct SettingsApp {
    pub route: RouteApp,
    pub approvals: Approvals<KmsSigner>,
}

impl Function for SettingsApp {
    type Config = (RouteConfig, ApprovalConfig, String);

    fn config(r: &mut ConfigReader) -> Self::Config {
        (RouteApp::config(r), ApprovalConfig::read(r), r.required("AUDIT_SIGNING_KEY_ID"))
    }

    async fn build((route, approvals, audit): Self::Config, cold: &Cold) -> Result<Self, BootError> {
        let mut route = RouteApp::build(route, cold).await?;
        route.store = route.store.with_audit_signer(cold.signer(&audit));
        Ok(Self { route, approvals: approvals.build(cold).await? })
    }
}

/// A route that appends to the audit chain (`POST /agent/runs/{id}/reject`).
#[derive(Debug)]
pub struct AuditedRouteApp {
    pub route: RouteApp,
}

impl Function for AuditedRouteApp {
    type Config = (RouteConfig, String);

    fn config(r: &mut ConfigReader) -> Self::Config {
        (RouteApp::config(r), r.required("AUDIT_SIGNING_KEY_ID"))
    }

    async fn build((route, audit): Self::Config, cold: &Cold) -> Result<Self, BootError> {
        let mut route = RouteApp::build(route, cold).await?;
        route.store = route.store.with_audit_signer(cold.signer(&audit));
        Ok(Self { route })
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

/// `POST /wpk`: signs with the WPK key (`WPK_SIGNING_KEY_ID`) and checks the signature before storing.
#[derive(Debug)]
pub struct RegisterApp {
    pub route: RouteApp,
    pub signer: KmsSigner,
    pub keys: TrustedKeys,
}

impl Function for RegisterApp {
    type Config = (RouteConfig, String);

    fn config(r: &mut ConfigReader) -> (RouteConfig, String) {
        (RouteApp::config(r), r.required("WPK_SIGNING_KEY_ID"))
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
    /// Where a run goes back to when it must be tried again (an audit append still pending).
    pub queue: KinesisRunQueue,
}

#[derive(Debug)]
pub struct WorkerConfig {
    tables: Tables,
    wpk_keys: Vec<String>,
    approval_keys: Vec<String>,
    model_keys: Vec<String>,
    audit_signing: String,
    stream: String,
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
            wpk_keys: key_ids(r, "WPK_KEY_IDS"),
            approval_keys: key_ids(r, "APPROVAL_KEY_IDS"),
            model_keys: key_ids(r, "MODEL_KEY_IDS"),
            audit_signing: r.required("AUDIT_SIGNING_KEY_ID"),
            stream: r.required("AGENT_STREAM"),
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
        let keys = AgentKeys {
            wpk: cold.trusted_keys(&c.wpk_keys).await?,
            approval: cold.trusted_keys(&c.approval_keys).await?,
        };
        let store =
            DynamoAgentStore::new(db.clone(), c.tables.clone()).with_audit_signer(cold.signer(&c.audit_signing));
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
            model: Learned(cold.champions(&c.models, cold.trusted_keys(&c.model_keys).await?)),
            keys,
            graph: Graph::builtin()?,
            default_adapter: c.default_adapter,
        };
        tracing::info!(graph = %agent.graph.version, "agent worker ready");
        Ok(Self { agent, queue: KinesisRunQueue::new(cold.aws.kinesis(), c.stream) })
    }
}
