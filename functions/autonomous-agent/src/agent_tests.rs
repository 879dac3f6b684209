//! The agent's behaviour end to end on in-memory stores: fast, and every safety rule checked.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use naksha_contracts::TenantId;
use naksha_contracts::audit::{GENESIS, verify_chain};
use naksha_contracts::models::{Arm, DetectorModel, Metrics, ModelArtifact, StoredModel, TrainingWindow};
use naksha_contracts::signing::{LocalKey, sha256_hex};
use naksha_contracts::telemetry::AggregateRow;
use naksha_core::models::Model;
use serde_json::{Value, json};

use crate::act::Adapters;
use crate::act::sim::{SimAdapter, SimResource, SimStore};
use crate::agent::Agent;
use crate::memory::Memory;
use crate::observe::Observers;
use crate::observe::telemetry::{AggregateQuery, ObserveError};
use crate::ports::{AuditLog, Control, OutcomeHistory, RemediationModel, RunStore, WpkStore};
use crate::spec::Graph;
use crate::state::{Approval, RunRequest, RunState, RunStatus};
use crate::wpk::{StandingApproval, StoredWpk, Wpk, parse};

const TENANT: &str = "acme";

fn tenant() -> TenantId {
    TenantId::from_record(TENANT).unwrap()
}
const RES: &str = "deployment/payments";

struct NoAggregates;
impl AggregateQuery for NoAggregates {
    async fn by_source(&self, _: &TenantId, _: &str, _: i64) -> Result<Vec<AggregateRow>, ObserveError> {
        Ok(vec![])
    }
}

/// Outcome history, plus a trained model when a test installs one.
#[derive(Default)]
struct TestModel(Option<Model>);
impl RemediationModel for TestModel {
    fn score(&self, signal: &str, wpk_id: &str, history: &BTreeMap<String, (u32, u32)>) -> f64 {
        OutcomeHistory.score(signal, wpk_id, history)
    }
    async fn champion(&self, tenant: &TenantId) -> Option<Model> {
        self.0.clone().filter(|m| m.tenant == *tenant)
    }
}

type TestAgent = Agent<Arc<Memory>, Adapters<Arc<Memory>, Arc<Memory>>, Observers<NoAggregates>, TestModel>;

struct World {
    mem: Arc<Memory>,
    agent: TestAgent,
    key: LocalKey,
}

fn world_with(graph: Graph) -> World {
    let key = LocalKey::generate("test-key").unwrap();
    let mem = Arc::new(Memory::default());
    let agent = Agent {
        store: Arc::clone(&mem),
        actuator: Adapters { sim: Some(SimAdapter { store: Arc::clone(&mem) }), k8s: None, receipts: Arc::clone(&mem) },
        observer: Observers { telemetry: None, prometheus: None },
        model: TestModel::default(),
        keys: key.trusted(),
        graph,
        default_adapter: "sim".into(),
    };
    World { mem, agent, key }
}

fn world() -> World {
    world_with(Graph::builtin().unwrap())
}

impl World {
    async fn register(&self, doc: Value) -> StoredWpk {
        let wpk: Wpk = parse(&doc.to_string(), false).unwrap();
        let signature = self.key.sign(&wpk.canonical_bytes()).unwrap();
        let stored = StoredWpk::signed(&wpk, &signature, "admin", "now");
        self.mem.put_wpk(&tenant(), &stored).await.unwrap();
        stored
    }

    async fn deployment(&self, healthy: bool) {
        let r = SimResource {
            kind: "deployment".into(),
            replicas: 3,
            healthy,
            version: "v2".into(),
            previous_version: Some("v1".into()),
            restarts: 0,
        };
        self.mem.put(&tenant(), RES, &r).await.unwrap();
    }

    /// An unhealthy deployment and two manual WPKs for `deployment_unhealthy`: restart, scale-up.
    async fn two_candidates(&self) {
        self.deployment(false).await;
        self.register(restart_wpk("manual")).await;
        let mut scale = restart_wpk("manual");
        scale["id"] = json!("scale-up");
        scale["steps"] = json!([{"adapter": "sim", "action": "scale", "args": {"replicas": 6}}]);
        self.register(scale).await;
    }

    async fn sim(&self) -> SimResource {
        self.mem.get(&tenant(), RES).await.unwrap().unwrap()
    }

    async fn start(&self, signal: &str, dry_run: bool) -> RunState {
        let req = RunRequest { signal: signal.into(), resource: RES.into(), telemetry: None, dry_run };
        let mut s = RunState::new(uuid::Uuid::now_v7().to_string(), tenant(), "olivia".into(), req, "now".into());
        self.mem.create_run(&s).await.unwrap();
        self.agent.advance(&mut s).await.unwrap();
        s
    }

    async fn approve(&self, s: &RunState, who: &str) -> RunState {
        let a = Approval {
            approver: who.into(),
            justification: "INC-42: restart is the runbook fix".into(),
            plan_sha256: s.plan.as_ref().unwrap().sha256.clone(),
            at: "now".into(),
            standing: false,
        };
        let mut s = self.mem.approve(&tenant(), &s.run_id, &a).await.unwrap();
        self.agent.advance(&mut s).await.unwrap();
        s
    }
}

fn restart_wpk(mode: &str) -> Value {
    json!({
        "id": "restart-unhealthy", "version": 1, "title": "Restart an unhealthy deployment",
        "match": {"signals": ["deployment_unhealthy"], "resources": ["deployment/*"]},
        "safety": {"mode": mode},
        "steps": [{"adapter": "sim", "action": "restart"}],
        "verify": {"healthy": true},
        "limits": {"blast_radius": 1, "max_runs_per_hour": 5}
    })
}

#[tokio::test]
async fn manual_path_waits_for_approval_then_acts_verifies_and_audits() {
    let w = world();
    w.deployment(false).await;
    w.register(restart_wpk("manual")).await;
    let s = w.start("deployment_unhealthy", false).await;
    assert_eq!(s.status, RunStatus::AwaitingApproval, "{:?}", s.outcome);
    assert_eq!(s.cursor.as_deref(), Some("gate"));
    assert_eq!(s.plan.as_ref().unwrap().actions[0].change, json!({"healthy": [false, true], "restarts": [0, 1]}));
    assert!(!w.sim().await.healthy, "nothing acts before approval");

    let s = w.approve(&s, "bob").await;
    assert_eq!(s.status, RunStatus::Succeeded, "{:?}", s.outcome);
    assert!(w.sim().await.healthy);
    assert_eq!(w.sim().await.restarts, 1);

    let chain = w.mem.records(&tenant()).await.unwrap();
    assert_eq!(chain.len(), 1);
    let r = &chain[0];
    assert_eq!(
        (r.entry.approver.as_str(), r.entry.wpk_id.as_str(), r.entry.wpk_version),
        ("bob", "restart-unhealthy", 1)
    );
    assert_eq!(r.entry.justification, "INC-42: restart is the runbook fix");
    assert_eq!(r.entry.plan_sha256, s.plan.as_ref().unwrap().sha256);
    assert_ne!(r.entry.before_sha256, r.entry.after_sha256);
    assert_eq!(r.prev_hash, GENESIS);
    assert_eq!(verify_chain(&chain), Ok(()));

    let steps = w.mem.checkpoints(&tenant(), &s.run_id).await.unwrap();
    let nodes: Vec<_> = steps.iter().map(|c| c.node.as_str()).collect();
    assert_eq!(nodes, ["observe", "decide", "plan", "gate", "gate", "act", "verify", "record"]);
    assert!(steps.iter().all(|c| c.graph_version == w.agent.graph.version && c.state_digest.len() == 64));
}

#[tokio::test]
async fn registry_metadata_that_disagrees_with_the_signed_document_fails_the_run() {
    let w = world();
    w.deployment(false).await;
    w.register(restart_wpk("manual")).await;
    // The index says the WPK handles disk_full; its signed document does not.
    w.mem.wpks.lock().unwrap().values_mut().next().unwrap().signals.push("disk_full".into());
    let s = w.start("disk_full", false).await;
    assert_eq!(s.status, RunStatus::Failed);
    assert!(s.outcome.unwrap().reason.contains("does not match its signed document"));
    assert_eq!(w.mem.applied.load(Ordering::Relaxed), 0);
}

#[tokio::test]
async fn a_tampered_wpk_fails_the_run_and_nothing_acts() {
    let w = world();
    w.deployment(false).await;
    w.register(restart_wpk("auto")).await;
    {
        let mut all = w.mem.wpks.lock().unwrap();
        let stored = all.values_mut().next().unwrap();
        stored.doc = stored.doc.replace("\"restart\"", "\"rollback\"");
        stored.sha256 = sha256_hex(stored.doc.as_bytes());
    }
    let s = w.start("deployment_unhealthy", false).await;
    assert_eq!(s.status, RunStatus::Failed);
    assert!(s.outcome.as_ref().unwrap().reason.contains("signature verification failed"), "{:?}", s.outcome);
    assert_eq!(w.mem.applied.load(Ordering::Relaxed), 0);
    assert!(w.mem.records(&tenant()).await.unwrap().is_empty());
}

#[tokio::test]
async fn altered_bytes_without_a_new_digest_are_named_as_such() {
    let w = world();
    w.deployment(false).await;
    w.register(restart_wpk("manual")).await;
    w.mem.wpks.lock().unwrap().values_mut().next().unwrap().doc.push(' ');
    let s = w.start("deployment_unhealthy", false).await;
    assert!(s.outcome.unwrap().reason.contains("altered after signing"));
}

#[tokio::test]
async fn auto_without_a_standing_approval_waits_like_manual() {
    let w = world();
    w.deployment(false).await;
    w.register(restart_wpk("auto")).await;
    let s = w.start("deployment_unhealthy", false).await;
    assert_eq!(s.status, RunStatus::AwaitingApproval);
    assert_eq!(w.mem.applied.load(Ordering::Relaxed), 0);
}

#[tokio::test]
async fn auto_with_a_standing_approval_and_a_passed_dry_run_acts_unattended() {
    let w = world();
    w.deployment(false).await;
    w.register(restart_wpk("auto")).await;
    let standing = StandingApproval {
        approver: "carol".into(),
        justification: "approved for night shifts".into(),
        at: "now".into(),
    };
    w.mem.set_standing_approval(&tenant(), "restart-unhealthy", 1, &standing).await.unwrap();
    let s = w.start("deployment_unhealthy", false).await;
    assert_eq!(s.status, RunStatus::Succeeded, "{:?}", s.outcome);
    let a = s.approval.unwrap();
    assert!(a.standing);
    assert_eq!(w.mem.records(&tenant()).await.unwrap()[0].entry.approver, "carol");
}

#[tokio::test]
async fn a_standing_approval_does_not_cover_a_wpk_that_skips_its_dry_run() {
    let w = world();
    w.deployment(false).await;
    let mut doc = restart_wpk("auto");
    doc["safety"]["dry_run"] = json!(false);
    w.register(doc).await;
    let standing = StandingApproval { approver: "carol".into(), justification: "j".into(), at: "now".into() };
    w.mem.set_standing_approval(&tenant(), "restart-unhealthy", 1, &standing).await.unwrap();
    let s = w.start("deployment_unhealthy", false).await;
    assert_eq!(s.status, RunStatus::AwaitingApproval);
}

#[tokio::test]
async fn a_resumed_run_never_repeats_an_act() {
    let w = world();
    w.deployment(false).await;
    w.register(restart_wpk("manual")).await;
    let s = w.start("deployment_unhealthy", false).await;
    let done = w.approve(&s, "bob").await;
    assert_eq!(w.mem.applied.load(Ordering::Relaxed), 1);
    // As if the worker crashed after acting but before checkpointing: resume at `act`.
    let mut again = done.clone();
    again.cursor = Some("act".into());
    again.receipts.clear();
    again.outcome = None;
    again.verification = None;
    w.agent.advance(&mut again).await.unwrap();
    assert_eq!(w.mem.applied.load(Ordering::Relaxed), 1, "the side effect ran once");
    assert_eq!(w.sim().await.restarts, 1);
    assert!(again.receipts[0].reused);
    assert_eq!(w.mem.records(&tenant()).await.unwrap().len(), 1, "one audit record per run, even when resumed");
}

#[tokio::test]
async fn the_kill_switch_stops_acts() {
    let w = world();
    w.deployment(false).await;
    w.register(restart_wpk("manual")).await;
    let s = w.start("deployment_unhealthy", false).await;
    w.mem.set_halted(&tenant(), Some("incident 77 freeze")).await.unwrap();
    let s = w.approve(&s, "bob").await;
    assert_eq!(s.status, RunStatus::Aborted);
    assert!(s.outcome.unwrap().reason.contains("incident 77 freeze"));
    assert!(!w.sim().await.healthy);
    w.mem.set_halted(&tenant(), None).await.unwrap();
    assert_eq!(w.mem.halted(&tenant()).await.unwrap(), None);
}

#[tokio::test]
async fn runs_per_hour_and_blast_radius_are_enforced() {
    let w = world();
    w.deployment(false).await;
    let mut doc = restart_wpk("manual");
    doc["limits"]["max_runs_per_hour"] = json!(1);
    w.register(doc).await;
    let first = w.start("deployment_unhealthy", false).await;
    assert_eq!(w.approve(&first, "bob").await.status, RunStatus::Succeeded);
    let second = w.start("deployment_unhealthy", false).await;
    assert_eq!(second.status, RunStatus::Rejected);
    assert!(second.outcome.unwrap().reason.contains("max_runs_per_hour 1"));

    let w = world();
    w.deployment(false).await;
    let mut doc = restart_wpk("manual");
    doc["steps"] = json!([{"adapter": "sim", "action": "restart"}, {"adapter": "sim", "action": "restart", "target": "deployment/other"}]);
    w.register(doc).await;
    let s = w.start("deployment_unhealthy", false).await;
    assert_eq!(s.status, RunStatus::Rejected);
    assert!(s.outcome.unwrap().reason.contains("blast_radius 1"));
}

#[tokio::test]
async fn a_plan_whose_resource_changed_is_replanned_not_executed() {
    let w = world();
    w.deployment(false).await;
    w.register(restart_wpk("manual")).await;
    let s = w.start("deployment_unhealthy", false).await;
    let old_sha = s.plan.as_ref().unwrap().sha256.clone();
    let mut changed = w.sim().await;
    changed.replicas = 7;
    w.mem.put(&tenant(), RES, &changed).await.unwrap();
    let s = w.approve(&s, "bob").await;
    assert_eq!(s.status, RunStatus::AwaitingApproval);
    assert_ne!(s.plan.as_ref().unwrap().sha256, old_sha);
    assert!(s.approval.is_none());
    assert_eq!(w.mem.applied.load(Ordering::Relaxed), 0);
}

#[tokio::test]
async fn no_matching_wpk_is_a_recorded_refusal() {
    let w = world();
    w.deployment(false).await;
    w.register(restart_wpk("manual")).await;
    let s = w.start("disk_full", false).await;
    assert_eq!(s.status, RunStatus::Rejected);
    assert!(s.outcome.unwrap().reason.contains("no WPK handles signal \"disk_full\""));
}

#[tokio::test]
async fn a_dry_run_request_plans_and_never_acts() {
    let w = world();
    w.deployment(false).await;
    w.register(restart_wpk("auto")).await;
    let s = w.start("deployment_unhealthy", true).await;
    assert_eq!(s.status, RunStatus::Succeeded);
    assert!(s.plan.is_some() && s.receipts.is_empty());
    assert_eq!(w.mem.applied.load(Ordering::Relaxed), 0);
}

#[tokio::test]
async fn past_outcomes_rank_the_candidates() {
    let w = world();
    w.two_candidates().await;
    for _ in 0..3 {
        w.mem.record_outcome(&tenant(), "deployment_unhealthy", "restart-unhealthy", false).await.unwrap();
        w.mem.record_outcome(&tenant(), "deployment_unhealthy", "scale-up", true).await.unwrap();
    }
    let s = w.start("deployment_unhealthy", false).await;
    let d = s.decision.unwrap();
    assert_eq!(d.wpk_id, "scale-up");
    assert_eq!(d.candidates.len(), 2);
    assert!(d.candidates[0].score > d.candidates[1].score);
}

#[tokio::test]
async fn a_trained_model_ranks_the_candidates_where_it_has_learned() {
    let mut w = world();
    w.two_candidates().await;
    // History alone prefers restart; the champion learned that scale-up fixes this signal.
    w.mem.record_outcome(&tenant(), "deployment_unhealthy", "restart-unhealthy", true).await.unwrap();
    let arms = BTreeMap::from([
        ("scale-up".to_owned(), Arm { successes: 8, failures: 0 }),
        ("restart-unhealthy".to_owned(), Arm { successes: 1, failures: 7 }),
    ]);
    let artifact = ModelArtifact {
        schema: 1,
        model_id: "m-0123456789abcdef0123".into(),
        tenant: tenant(),
        created_at: "now".into(),
        code_version: "test".into(),
        data_digest: "d".into(),
        window: TrainingWindow {
            from_minute: 0,
            to_minute: 1,
            holdout_from_minute: 1,
            series: 0,
            rows: 0,
            outcomes: 16,
        },
        detector: DetectorModel { base: Default::default(), series: BTreeMap::new() },
        remediation: BTreeMap::from([("deployment_unhealthy".to_owned(), arms)]),
        metrics: Metrics::default(),
    };
    // Signed and verified, as the champion cache hands models out.
    let (doc, manifest, bytes) = StoredModel::prepare(&artifact).unwrap();
    let stored = StoredModel::assemble(doc, manifest, &bytes, w.key.sign(&bytes).unwrap());
    w.agent.model = TestModel(Some(Arc::new(stored.verify(&w.key.trusted()).unwrap())));
    let s = w.start("deployment_unhealthy", false).await;
    let d = s.decision.unwrap();
    assert_eq!(d.wpk_id, "scale-up");
    assert_eq!(d.model_id.as_deref(), Some("m-0123456789abcdef0123"));
    assert!((d.candidates[0].score - 0.9).abs() < 1e-9, "{:?}", d.candidates);
    assert!((d.candidates[1].score - 0.2).abs() < 1e-9, "{:?}", d.candidates);
}

#[tokio::test]
async fn the_step_limit_bounds_loops() {
    let looping = "version: 9\nstart: observe\nmax_steps: 5\non_error: record\nnodes:\n  observe: {kind: observe}\n  record: {kind: record}\nedges:\n  observe: [{to: observe}]\n  record: [{to: $end}]\n";
    let w = world_with(Graph::load(looping).unwrap());
    w.deployment(true).await;
    let s = w.start("x", false).await;
    assert_eq!(s.status, RunStatus::Failed);
    assert!(s.outcome.unwrap().reason.contains("step limit of 5"));
    assert_eq!(s.steps_taken, 6, "five observe steps, then record");
}
