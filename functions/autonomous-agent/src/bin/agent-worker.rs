//! The run worker: consumes the runs stream and advances each run through agentspec.yaml.

use std::sync::Arc;

use aws_lambda_events::event::kinesis::KinesisEvent;
use lambda_runtime::{LambdaEvent, service_fn};
use naksha_agent::act::{Adapters, k8s::K8sAdapter, sim::SimAdapter};
use naksha_agent::agent::Agent;
use naksha_agent::observe::{Observers, prometheus::PrometheusObserver, telemetry::TelemetryObserver};
use naksha_agent::ports::Learned;
use naksha_agent::spec::Graph;
use naksha_agent::store::{DynamoAgentStore, DynamoAggregateQuery, DynamoSim, Tables};
use naksha_agent::{wiring, worker};
use naksha_core::model::{ChampionCache, DEFAULT_CACHE_TTL, ModelRegistry};
use naksha_core::{aws::Aws, config::ConfigReader, logging, signing::TrustedKeys};

#[global_allocator]
static ALLOC: naksha_core::Allocator = naksha_core::Allocator;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    logging::init();
    let mut cfg = ConfigReader::from_env();
    let tables = Tables::from_config(&mut cfg);
    let trusted = wiring::trusted_key_ids(&mut cfg);
    let aggregates = cfg.required("AGGREGATES_TABLE");
    let sim_table = cfg.optional("SIM_TABLE");
    let (k8s_url, k8s_token) = (cfg.optional("K8S_API_URL"), cfg.optional("K8S_TOKEN"));
    let k8s_namespace = cfg.optional("K8S_NAMESPACE").unwrap_or_else(|| "default".into());
    let prometheus = cfg.optional("PROMETHEUS_URL");
    let models = cfg.required("MODELS_TABLE");
    let default_adapter = cfg
        .optional("DEFAULT_ADAPTER")
        .unwrap_or_else(|| if sim_table.is_some() { "sim".into() } else { "k8s".into() });
    cfg.finish()?;
    let graph = Graph::builtin()?;
    let aws = Aws::load().await;
    let db = aws.dynamodb();
    let keys = TrustedKeys::load(&aws.kms(), &trusted).await?;
    let store = DynamoAgentStore::new(db.clone(), tables.clone());
    let agent = Agent {
        actuator: Adapters {
            sim: sim_table.map(|t| SimAdapter { store: DynamoSim::new(db.clone(), t, tables.state.clone()) }),
            k8s: k8s_url.map(|u| K8sAdapter::new(u, k8s_token, k8s_namespace)),
            receipts: store.clone(),
        },
        observer: Observers {
            telemetry: Some(TelemetryObserver { query: DynamoAggregateQuery::new(db.clone(), aggregates) }),
            prometheus: prometheus.map(PrometheusObserver::new),
        },
        store,
        // WPKs are ranked by the tenant's trained model (verified before use), else by history.
        model: Learned(ChampionCache::new(ModelRegistry::new(db.clone(), models), keys.clone(), DEFAULT_CACHE_TTL)),
        keys,
        graph,
        default_adapter,
    };
    tracing::info!(graph = %agent.graph.version, "agent worker ready");
    let agent = Arc::new(agent);
    lambda_runtime::run(service_fn(move |event: LambdaEvent<KinesisEvent>| {
        let agent = Arc::clone(&agent);
        async move { Ok::<_, lambda_runtime::Error>(worker::handle(&agent, &event.payload).await) }
    }))
    .await
}
