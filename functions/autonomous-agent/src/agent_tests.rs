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
use crate::agent::{Agent, AgentKeys};
use crate::memory::{Memory, signed_approval};
use crate::observe::Observers;
use crate::observe::telemetry::{AggregateQuery, ObserveError};
use crate::ports::{AuditLog, Control, OutcomeHistory, RemediationModel, RunStore, WpkStore};
use crate::spec::Graph;
use crate::state::{RunRequest, RunState, RunStatus};
use crate::wpk::{StoredWpk, Wpk, parse};
use naksha_contracts::approvals::StandingApproval;
use naksha_contracts::signing::{Sealed, sealed_bytes};

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
    /// Plays the approval key (KMS in production).
    approvals: LocalKey,
}

fn world_with(graph: Graph) -> World {
    let key = LocalKey::generate("test-key").unwrap();
    let approvals = LocalKey::generate("approval-key").unwrap();
    let mem = Arc::new(Memory::with_audit_key(LocalKey::generate("audit-key").unwrap()));
    let agent = Agent {
        store: Arc::clone(&mem),
        actuator: Adapters { sim: Some(SimAdapter { store: Arc::clone(&mem) }), k8s: None, receipts: Arc::clone(&mem) },
        observer: Observers { telemetry: None, prometheus: None },
        model: TestModel::default(),
        keys: AgentKeys { wpk: key.trusted(), approval: approvals.trusted() },
        graph,
        default_adapter: "sim".into(),
    };
    World { mem, agent, key, approvals }
}

fn world() -> World {
    world_with(Graph::builtin().unwrap())
}

impl World {
    async fn register(&self, doc: Value) -> StoredWpk {
        let wpk: Wpk = parse(&doc.to_string(), false).unwrap();
        let bytes = StoredWpk::signing_bytes(&wpk, &tenant(), "admin", "now");
        let signature = self.key.sign(&bytes).unwrap();
        let stored = StoredWpk::signed(&wpk, &bytes, &signature, "admin", "now");
        self.mem.put_wpk(&tenant(), &stored).await.unwrap();
        stored
    }

    async fn deployment(&self, healthy: bool) {
        let r = SimResource { previous_version: Some("v1".into()), ..SimResource::new("deployment", 3, healthy, "v2") };
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
        let a = signed_approval(s, who, "INC-42: restart is the runbook fix", &self.approvals);
        let mut s = self.mem.approve(&tenant(), &s.run_id, &a).await.unwrap();
        self.agent.advance(&mut s).await.unwrap();
        s
    }
}

impl World {
    /// A standing approval of `stored` by `approver`, signed as `POST /wpk/{id}/promote` signs it.
    fn standing(&self, stored: &StoredWpk, approver: &str) -> Sealed {
        let approval = StandingApproval {
            wpk_id: stored.id.clone(),
            wpk_version: stored.version,
            wpk_sha256: stored.sha256.clone(),
            approver: approver.into(),
            wpk_author: stored.created_by.clone(),
            justification: "approved for night shifts".into(),
            at: "now".into(),
        };
        let bytes = sealed_bytes(StandingApproval::PURPOSE, &tenant(), &approval);
        Sealed::new(&bytes, &self.approvals.sign(&bytes).unwrap())
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

    // Its progress, as a chaos experiment reads it: each node's first completion, the person
    // who approved, the first act.
    let p = s.progress();
    assert_eq!(
        (p.status.as_str(), p.wpk_id.as_deref(), p.approved_by.as_deref()),
        ("succeeded", Some("restart-unhealthy"), Some("bob"))
    );
    assert!(!p.standing_approval && p.acted_at.is_some());
    let first_gate = steps.iter().find(|c| c.node == "gate").unwrap();
    assert_eq!(
        p.milestones.get("gate"),
        Some(&first_gate.ended_at),
        "the first time the gate completed (the wait began)"
    );
    assert!(p.milestones["decide"] <= p.milestones["gate"] && p.milestones["gate"] <= p.milestones["act"]);
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
    let stored = w.register(restart_wpk("auto")).await;
    w.mem.set_standing_approval(&tenant(), "restart-unhealthy", 1, &w.standing(&stored, "carol")).await.unwrap();
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
    let stored = w.register(doc).await;
    w.mem.set_standing_approval(&tenant(), "restart-unhealthy", 1, &w.standing(&stored, "carol")).await.unwrap();
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

// ------------------------------------------------------------------ safety against table access

#[tokio::test]
async fn a_wpk_signed_for_another_tenant_never_runs_here() {
    let w = world();
    w.deployment(false).await;
    // Someone with table access copies tenant beta's signed WPK into acme's partition.
    let wpk: Wpk = parse(&restart_wpk("manual").to_string(), false).unwrap();
    let beta = TenantId::from_record("beta").unwrap();
    let bytes = StoredWpk::signing_bytes(&wpk, &beta, "admin", "now");
    let stored = StoredWpk::signed(&wpk, &bytes, &w.key.sign(&bytes).unwrap(), "admin", "now");
    w.mem.put_wpk(&tenant(), &stored).await.unwrap();
    let s = w.start("deployment_unhealthy", false).await;
    assert_eq!(s.status, RunStatus::Failed);
    assert!(s.outcome.unwrap().reason.contains("another tenant"), "the refusal names why");
    assert_eq!(w.mem.applied.load(Ordering::Relaxed), 0);
}

#[tokio::test]
async fn a_standing_approval_written_by_hand_or_signed_for_something_else_never_acts() {
    let w = world();
    w.deployment(false).await;
    let stored = w.register(restart_wpk("auto")).await;
    let genuine = w.standing(&stored, "carol");
    // 1. Written by hand: a plausible document with a signature that is not KMS's.
    let forged = Sealed { signature: w.key.sign(genuine.signed.as_bytes()).unwrap().to_base64(), ..genuine.clone() };
    // 2. A genuine approval signature, but of a run approval (another purpose) moved here.
    let other_purpose = {
        let bytes = sealed_bytes(naksha_contracts::signing::Purpose::RunApproval, &tenant(), &json!({"run_id": "x"}));
        Sealed::new(&bytes, &w.approvals.sign(&bytes).unwrap())
    };
    for fake in [forged, other_purpose] {
        w.mem.set_standing_approval(&tenant(), "restart-unhealthy", 1, &fake).await.unwrap();
        let s = w.start("deployment_unhealthy", false).await;
        assert_eq!(s.status, RunStatus::AwaitingApproval, "it waits for a person");
        assert!(s.approval.is_none());
        assert!(s.approval_refused.unwrap().contains("standing approval refused"));
    }
    assert_eq!(w.mem.applied.load(Ordering::Relaxed), 0);
    assert!(w.mem.records(&tenant()).await.unwrap().is_empty(), "no invented approver in the audit");
}

#[tokio::test]
async fn the_author_of_a_wpk_cannot_stand_behind_it_unless_the_tenant_allows_it() {
    let w = world();
    w.deployment(false).await;
    let stored = w.register(restart_wpk("auto")).await;
    w.mem.set_standing_approval(&tenant(), "restart-unhealthy", 1, &w.standing(&stored, "admin")).await.unwrap();
    let s = w.start("deployment_unhealthy", false).await;
    assert_eq!(s.status, RunStatus::AwaitingApproval);
    assert!(s.approval_refused.unwrap().contains("registered this WPK"));
    // A hand-written settings item allowing it counts for nothing; a signed one does.
    let settings = naksha_contracts::approvals::TenantSettings {
        allow_self_approval: true,
        set_by: "root".into(),
        justification: "one-person team".into(),
        at: "now".into(),
    };
    let bytes = sealed_bytes(naksha_contracts::signing::Purpose::Settings, &tenant(), &settings);
    let unsigned = Sealed::new(&bytes, &w.key.sign(&bytes).unwrap());
    w.mem.set_settings(&tenant(), &unsigned).await.unwrap();
    assert_eq!(w.start("deployment_unhealthy", false).await.status, RunStatus::AwaitingApproval);
    w.mem.set_settings(&tenant(), &Sealed::new(&bytes, &w.approvals.sign(&bytes).unwrap())).await.unwrap();
    let s = w.start("deployment_unhealthy", false).await;
    assert_eq!(s.status, RunStatus::Succeeded, "{:?}", s.outcome);
}

#[tokio::test]
async fn an_approval_without_evidence_for_another_run_or_by_the_requester_never_acts() {
    let w = world();
    w.deployment(false).await;
    w.register(restart_wpk("manual")).await;
    let first = w.start("deployment_unhealthy", false).await;
    let second = w.start("deployment_unhealthy", false).await;
    let cases = [
        // Written by hand: right plan, no signature.
        crate::state::Approval { evidence: None, ..signed_approval(&first, "bob", "j", &w.approvals) },
        // A genuine approval of another run, moved onto this one.
        crate::state::Approval {
            plan_sha256: first.plan.clone().unwrap().sha256,
            ..signed_approval(&second, "bob", "j", &w.approvals)
        },
        // The requester approving their own run.
        signed_approval(&first, "olivia", "j", &w.approvals),
    ];
    for (i, approval) in cases.into_iter().enumerate() {
        let mut s = first.clone();
        s.status = RunStatus::AwaitingApproval;
        s.outcome = None;
        w.mem.save_run(&s).await.unwrap();
        let mut s = w.mem.approve(&tenant(), &s.run_id, &approval).await.unwrap();
        w.agent.advance(&mut s).await.unwrap();
        assert_eq!(s.status, RunStatus::Failed, "case {i}");
        assert!(s.outcome.unwrap().reason.contains("refusing to act"), "case {i}");
    }
    assert_eq!(w.mem.applied.load(Ordering::Relaxed), 0);
}

#[tokio::test]
async fn an_act_whose_audit_record_cannot_be_written_is_not_succeeded_until_it_is() {
    let w = world();
    w.deployment(false).await;
    w.register(restart_wpk("manual")).await;
    let s = w.start("deployment_unhealthy", false).await;
    w.mem.audit_down.store(true, Ordering::Relaxed);
    let s = w.approve(&s, "bob").await;
    assert_eq!(w.mem.applied.load(Ordering::Relaxed), 1, "the act happened");
    assert_eq!(s.status, RunStatus::Running, "but the run is not done");
    let pending = s.audit_pending.clone().unwrap();
    assert_eq!(pending.receipts, vec![s.receipts[0].idempotency_key.clone()], "it names the act's receipt");
    assert!(w.mem.records(&tenant()).await.unwrap().is_empty());
    // The worker retries; once the log answers, the record lands and the run succeeds.
    let mut s = s;
    w.agent.advance(&mut s).await.unwrap();
    assert_eq!((s.status, s.audit_pending.as_ref().map(|p| p.attempts)), (RunStatus::Running, Some(2)));
    w.mem.audit_down.store(false, Ordering::Relaxed);
    w.agent.advance(&mut s).await.unwrap();
    assert_eq!(s.status, RunStatus::Succeeded);
    assert!(s.audit_pending.is_none());
    assert_eq!(w.mem.records(&tenant()).await.unwrap().len(), 1);
    assert_eq!(w.mem.applied.load(Ordering::Relaxed), 1, "and the act was not repeated");
}

#[tokio::test]
async fn the_audit_chain_verifies_against_its_signed_checkpoints_and_names_a_deleted_record() {
    use naksha_contracts::audit::verify_anchored;
    let w = world();
    w.deployment(false).await;
    w.register(restart_wpk("manual")).await;
    for _ in 0..3 {
        w.deployment(false).await;
        let s = w.start("deployment_unhealthy", false).await;
        w.approve(&s, "bob").await;
    }
    let audit_keys = w.mem.audit_key.as_ref().unwrap().trusted();
    let records = w.mem.records(&tenant()).await.unwrap();
    assert_eq!(records.len(), 3);
    let mut anchors = w.mem.anchors(&tenant()).await.unwrap();
    anchors.acted = w.mem.acted_runs(&tenant()).await.unwrap();
    assert_eq!(anchors.acted.len(), 3);
    assert_eq!(verify_anchored(&tenant(), &records, &anchors, &audit_keys), Ok(()));
    // The newest record deleted, the head rolled back to the one before: the run that acted says so.
    let cut = &records[..2];
    anchors.head = Some((2, records[1].hash.clone()));
    anchors.checkpoints.pop();
    let broken = verify_anchored(&tenant(), cut, &anchors, &audit_keys).unwrap_err();
    assert_eq!(broken.seq, 3);
    // The audit record names the signed evidence the act relied on.
    assert_eq!(records[0].entry.approval_sha256.len(), 64);
}
