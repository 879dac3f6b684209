//! The agent's plugins against real or exact counterparts: the Prometheus observer against a
//! real Prometheus server (Debian's package; started and stopped here), and the k8s adapter
//! against a local server that checks each request it receives.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use naksha_agent::act::k8s::K8sAdapter;
use naksha_agent::act::{Adapters, sim::SimAdapter};
use naksha_agent::memory::Memory;
use naksha_agent::observe::Observers;
use naksha_agent::observe::prometheus::PrometheusObserver;
use naksha_agent::observe::telemetry::{AggregateQuery, ObserveError};
use naksha_agent::ports::{Actuator, Observer};
use naksha_contracts::TenantId;
use naksha_contracts::telemetry::AggregateRow;
use naksha_e2e::{Recorded, eventually, recording_server};
use serde_json::{Map, Value, json};

struct Prometheus(Child, std::path::PathBuf);

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
        let _ = std::fs::remove_dir_all(&self.1);
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Start Prometheus scraping itself and the local stack's `/metrics` every second.
fn start_prometheus() -> (Prometheus, String) {
    let port = free_port();
    let dir = std::env::temp_dir().join(format!("naksha-prom-{port}"));
    std::fs::create_dir_all(&dir).unwrap();
    let config = format!(
        "global: {{scrape_interval: 1s, evaluation_interval: 1s}}\nscrape_configs:\n  - job_name: prometheus\n    static_configs: [{{targets: ['127.0.0.1:{port}']}}]\n  - job_name: naksha\n    static_configs: [{{targets: ['127.0.0.1:9000']}}]\n"
    );
    std::fs::write(dir.join("prometheus.yml"), config).unwrap();
    let child = Command::new("prometheus")
        .arg(format!("--config.file={}", dir.join("prometheus.yml").display()))
        .arg(format!("--storage.tsdb.path={}", dir.join("data").display()))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("prometheus (Debian's package) is installed by `make tools`");
    (Prometheus(child, dir), format!("http://127.0.0.1:{port}"))
}

fn acme() -> TenantId {
    TenantId::from_record("acme").unwrap()
}

struct NoAggregates;
impl AggregateQuery for NoAggregates {
    async fn by_source(&self, _: &TenantId, _: &str, _: i64) -> Result<Vec<AggregateRow>, ObserveError> {
        Ok(vec![])
    }
}

#[tokio::test]
async fn the_prometheus_observer_runs_promql_against_a_real_server() {
    let (_guard, url) = start_prometheus();
    let observer = PrometheusObserver::new(&url);
    let up = eventually("Prometheus to have scraped itself", Duration::from_secs(60), || async {
        let v = observer.query(r#"up{job="prometheus"}"#).await.ok()?;
        (v[0]["value"] == json!(1.0)).then_some(v)
    })
    .await;
    assert_eq!(up[0]["metric"]["job"], "prometheus");
    // It also scrapes the stack's /metrics: our exposition is accepted by Prometheus itself.
    let ours = eventually("Prometheus to scrape the local stack", Duration::from_secs(60), || async {
        let v = observer.query("insight_ingested_total").await.ok()?;
        v[0]["value"].as_f64().map(|_| v)
    })
    .await;
    assert_eq!(ours[0]["metric"]["job"], "naksha");
    // Through the observe plugin, with the resource filled into the query template.
    let plugins = Observers::<NoAggregates> { telemetry: None, prometheus: Some(observer.clone()) };
    let config = json!({"prometheus": {"queries": {"up": "up{job=\"{name}\"}", "broken": "sum(("}}});
    let seen = plugins.observe(&acme(), "deployment/naksha", &config).await;
    assert_eq!(seen["prometheus"]["up"][0]["value"], 1.0);
    assert!(seen["prometheus"]["broken"]["error"].as_str().unwrap().contains("bad_data"), "{seen:?}");
}

#[tokio::test]
async fn the_prometheus_observer_reports_an_unreachable_server_without_failing() {
    let observer = PrometheusObserver::new(format!("http://127.0.0.1:{}", free_port()));
    let err = observer.query("up").await.unwrap_err();
    assert!(err.to_string().contains("unreachable"), "{err}");
}

static RESTARTED: AtomicBool = AtomicBool::new(false);

/// A Kubernetes API server for one deployment, `payments` (3 replicas, 1 ready until restarted).
fn kube(r: &Recorded) -> (u16, Value) {
    let deployment = |ready: u64| {
        json!({"kind": "Deployment", "metadata": {"name": "payments", "generation": 3},
               "spec": {"replicas": 3, "template": {"spec": {"containers": [{"image": "payments:v2"}]}}},
               "status": {"readyReplicas": ready}})
    };
    match (r.method.as_str(), r.path.as_str()) {
        ("GET", "/apis/apps/v1/namespaces/default/deployments/payments") => {
            (200, deployment(if RESTARTED.load(Ordering::SeqCst) { 3 } else { 1 }))
        }
        ("GET", _) => (404, json!({"kind": "Status", "message": "not found", "code": 404})),
        ("PATCH", "/apis/apps/v1/namespaces/prod/deployments/payments/scale") => (200, json!({"kind": "Scale"})),
        ("PATCH", "/apis/apps/v1/namespaces/default/deployments/payments") => {
            if r.query.is_empty() {
                RESTARTED.store(true, Ordering::SeqCst);
            }
            (200, deployment(1))
        }
        ("DELETE", "/api/v1/namespaces/default/pods/payments-7d9f") => (200, json!({"kind": "Pod"})),
        _ => (400, json!({"kind": "Status", "message": "unexpected request"})),
    }
}

fn args(v: Value) -> Map<String, Value> {
    v.as_object().unwrap().clone()
}

#[tokio::test]
async fn the_k8s_adapter_sends_exactly_the_kubernetes_requests() {
    let (url, seen) = recording_server(kube).await;
    let k8s = K8sAdapter::new(&url, Some("s3cr3t-token".into()), "default");

    let d = k8s.describe("deployment/payments", &Map::new()).await.unwrap().unwrap();
    assert_eq!(
        (d["replicas"].clone(), d["ready_replicas"].clone(), d["healthy"].clone()),
        (json!(3), json!(1), json!(false))
    );
    assert_eq!(d["version"], "payments:v2");
    assert_eq!(k8s.describe("deployment/ghost", &Map::new()).await.unwrap(), None);
    assert!(k8s.describe("statefulset/db", &Map::new()).await.is_err());
    // Describing looks where acting will: the step's namespace.
    let _ = k8s.describe("deployment/payments", &args(json!({"namespace": "prod"}))).await;
    // Names that are not DNS-1123 never reach a URL.
    assert!(k8s.describe("deployment/payments", &args(json!({"namespace": "../secrets"}))).await.is_err());
    assert!(k8s.describe("deployment/a%2Fb", &Map::new()).await.is_err());

    k8s.dry_run("scale", "deployment/payments", &args(json!({"replicas": 5, "namespace": "prod"}))).await.unwrap();
    k8s.dry_run("restart", "deployment/payments", &Map::new()).await.unwrap();
    k8s.execute("delete_pod", "deployment/payments", &args(json!({"pod": "payments-7d9f"}))).await.unwrap();

    let reqs = seen.lock().unwrap().clone();
    assert_eq!(reqs.len(), 6, "a target or namespace the adapter cannot handle is refused before any request");
    assert!(reqs.iter().all(|r| !r.headers.contains_key("traceparent")), "no run, no trace to pass on");
    assert!(
        reqs.iter().any(|r| r.method == "GET" && r.path == "/apis/apps/v1/namespaces/prod/deployments/payments"),
        "{reqs:?}"
    );
    let find = |m: &str, suffix: &str| reqs.iter().find(|r| r.method == m && r.path.ends_with(suffix)).unwrap().clone();
    let scale = &find("PATCH", "/scale");
    assert_eq!(
        (scale.method.as_str(), scale.path.as_str(), scale.query.as_str()),
        ("PATCH", "/apis/apps/v1/namespaces/prod/deployments/payments/scale", "dryRun=All")
    );
    assert_eq!(scale.headers["content-type"], "application/merge-patch+json");
    assert_eq!(serde_json::from_str::<Value>(&scale.body).unwrap(), json!({"spec": {"replicas": 5}}));
    assert_eq!(scale.headers["authorization"], "Bearer s3cr3t-token");
    let restart = &find("PATCH", "/deployments/payments");
    assert_eq!((restart.method.as_str(), restart.query.as_str()), ("PATCH", "dryRun=All"));
    assert_eq!(restart.headers["content-type"], "application/strategic-merge-patch+json");
    let patch: Value = serde_json::from_str(&restart.body).unwrap();
    assert!(patch["spec"]["template"]["metadata"]["annotations"]["kubectl.kubernetes.io/restartedAt"].is_string());
    let delete = &find("DELETE", "/pods/payments-7d9f");
    assert_eq!(
        (delete.method.as_str(), delete.path.as_str(), delete.query.as_str()),
        ("DELETE", "/api/v1/namespaces/default/pods/payments-7d9f", "")
    );
}

#[tokio::test]
async fn a_k8s_action_is_executed_once_per_idempotency_key() {
    let (url, seen) = recording_server(kube).await;
    let mem = Arc::new(Memory::default());
    let adapters = Adapters::<Arc<Memory>, Arc<Memory>> {
        sim: Some(SimAdapter { store: Arc::clone(&mem) }),
        k8s: Some(K8sAdapter::new(&url, None, "default")),
        receipts: Arc::clone(&mem),
    };
    let a = args(json!({"pod": "payments-7d9f"}));
    let (_, reused) = adapters.execute(&acme(), "k8s", "delete_pod", "deployment/payments", &a, "key-1").await.unwrap();
    assert!(!reused);
    let (_, reused) = adapters.execute(&acme(), "k8s", "delete_pod", "deployment/payments", &a, "key-1").await.unwrap();
    assert!(reused);
    let deletes = seen.lock().unwrap().iter().filter(|r| r.method == "DELETE").count();
    assert_eq!(deletes, 1, "the second call reused the receipt instead of deleting again");
}

#[tokio::test]
async fn the_whole_graph_drives_kubernetes_dry_run_first_and_acts_only_after_approval() {
    use naksha_agent::agent::{Agent, AgentKeys};
    use naksha_agent::memory::signed_approval;
    use naksha_agent::ports::{OutcomeHistory, RunStore, WpkStore};
    use naksha_agent::spec::Graph;
    use naksha_agent::state::{RunRequest, RunState, RunStatus};
    use naksha_agent::wpk::{StoredWpk, parse};
    use naksha_contracts::signing::LocalKey;

    let (url, seen) = recording_server(kube).await;
    let key = LocalKey::generate("k").unwrap();
    let approvals = LocalKey::generate("approvals").unwrap();
    let mem = Arc::new(Memory::with_audit_key(LocalKey::generate("audit").unwrap()));
    let agent = Agent {
        store: Arc::clone(&mem),
        actuator: Adapters::<Arc<Memory>, Arc<Memory>> {
            sim: None,
            k8s: Some(K8sAdapter::new(&url, None, "default")),
            receipts: Arc::clone(&mem),
        },
        observer: Observers::<NoAggregates> { telemetry: None, prometheus: None },
        model: OutcomeHistory,
        keys: AgentKeys { wpk: key.trusted(), approval: approvals.trusted() },
        graph: Graph::builtin().unwrap(),
        default_adapter: "k8s".into(),
    };
    let wpk = parse(
        r#"{"id":"rollout-restart","version":1,"title":"Rollout restart","match":{"signals":["pods_not_ready"]},
            "steps":[{"adapter":"k8s","action":"restart"}],"verify":{"healthy":true}}"#,
        false,
    )
    .unwrap();
    let bytes = StoredWpk::signing_bytes(&wpk, &acme(), "ada", "now");
    let signature = key.sign(&bytes).unwrap();
    mem.put_wpk(&acme(), &StoredWpk::signed(&wpk, &bytes, &signature, "ada", "now")).await.unwrap();
    let req = RunRequest {
        signal: "pods_not_ready".into(),
        resource: "deployment/payments".into(),
        telemetry: None,
        dry_run: false,
    };
    let mut s = RunState::new(uuid::Uuid::now_v7().to_string(), acme(), "olivia".into(), req, "now".into());
    // The run answers a signal whose ingest request carried this trace (P-4).
    let trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
    s.trace = Some(format!("00-{trace_id}-00f067aa0ba902b7-01"));
    mem.create_run(&s).await.unwrap();
    agent.advance(&mut s).await.unwrap();
    assert_eq!(s.status, RunStatus::AwaitingApproval);
    let before_approval: Vec<Recorded> = seen.lock().unwrap().clone();
    assert!(!before_approval.is_empty());
    for r in &before_approval {
        // Each call names the run's trace, as a span of its own (a child of the run's).
        let tp = r.headers.get("traceparent").unwrap_or_else(|| panic!("no traceparent on {} {}", r.method, r.path));
        let parts: Vec<&str> = tp.split('-').collect();
        assert_eq!((parts.len(), parts[1]), (4, trace_id), "{tp}");
        assert_ne!(parts[2], "00f067aa0ba902b7", "a new span id for the call");
    }
    assert!(
        before_approval.iter().all(|r| r.method == "GET" || r.query == "dryRun=All"),
        "only reads and server dry-runs before approval"
    );
    let approval = signed_approval(&s, "bob", "INC-9", &approvals);
    let mut s = mem.approve(&acme(), &s.run_id, &approval).await.unwrap();
    agent.advance(&mut s).await.unwrap();
    assert_eq!(s.status, RunStatus::Succeeded, "{:?}", s.outcome);
    let real = seen.lock().unwrap().iter().filter(|r| r.method == "PATCH" && r.query.is_empty()).count();
    assert_eq!(real, 1, "exactly one real rollout restart");
    assert!(seen.lock().unwrap().iter().all(|r| r.headers.get("traceparent").is_some_and(|tp| tp.contains(trace_id))));
}
