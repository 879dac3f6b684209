//! The hub's use cases on the in-memory ports, checked with a node's own verification.

use std::collections::{BTreeMap, BTreeSet};

use chrono::Duration;
use naksha_contracts::edge::{HubKey, HubKeys, NodeMemory, NodeView, StepOutcome, check_delivery, state_sha256};
use naksha_contracts::signing::{LocalKey, public_key_pem, sealed_bytes};
use naksha_contracts::wpk::{StoredWpk, parse};
use serde_json::{Value, json};

use super::*;
use crate::memory::{MemoryHalt, MemoryNodes, MemoryWork, MemoryWpks};
use crate::nodes::Registration;

fn t(raw: &str) -> TenantId {
    TenantId::from_record(raw).unwrap()
}

struct Hub {
    nodes: MemoryNodes,
    work: MemoryWork,
    wpks: MemoryWpks,
    halt: MemoryHalt,
    key: TriggerKey<LocalKey>,
    wpk_key: LocalKey,
    node_keys: BTreeMap<String, LocalKey>,
}

fn wpk(key: &LocalKey, tenant: &TenantId, version: u32) -> StoredWpk {
    let doc = json!({
        "id": "restart-edge", "version": version, "title": "Restart at the edge",
        "match": {"signals": ["deployment_unhealthy"], "resources": ["deployment/*"]},
        "steps": [{"adapter": "sim", "action": "restart"}], "verify": {"healthy": true}
    });
    let w = parse(&doc.to_string(), false).unwrap();
    let bytes = StoredWpk::signing_bytes(&w, tenant, "alice", "2026-12-01T00:00:00Z");
    StoredWpk::signed(&w, &bytes, &key.sign(&bytes).unwrap(), "alice", "2026-12-01T00:00:00Z")
}

impl Hub {
    fn new() -> Self {
        let wpk_key = LocalKey::generate("wpk-key").unwrap();
        let wpks = MemoryWpks::default();
        wpks.wpks.lock().unwrap().push((t("acme"), wpk(&wpk_key, &t("acme"), 1)));
        wpks.wpks.lock().unwrap().push((t("acme"), wpk(&wpk_key, &t("acme"), 2)));
        let signer = LocalKey::generate("trigger-key").unwrap();
        Self {
            nodes: MemoryNodes::default(),
            work: MemoryWork::default(),
            wpks,
            halt: MemoryHalt::default(),
            key: TriggerKey { kid: signer.id().to_owned(), signer },
            wpk_key,
            node_keys: BTreeMap::new(),
        }
    }

    async fn join(&mut self, tenant: &TenantId, node: &str, labels: Value) -> Registered {
        let key = LocalKey::generate("pending").unwrap();
        let reg = Registration::parse(
            &json!({"public_key": public_key_pem(&key.public_key_der()), "labels": labels, "version": "0.1.0"}),
        )
        .unwrap();
        let kid = reg.kid.clone();
        let (outcome, _) = register(&self.nodes, tenant, node, reg, Utc::now()).await.unwrap();
        self.node_keys.insert(node.to_owned(), LocalKey::from_pkcs8(&kid, key.pkcs8_der()).unwrap());
        outcome
    }

    async fn send(&self, tenant: &TenantId, body: Value) -> Result<Trigger, HubError> {
        let req = TriggerRequest::parse(&body).map_err(HubError::Fields)?;
        let keys = self.wpk_key.trusted();
        let ports =
            Sender { nodes: &self.nodes, work: &self.work, wpks: &self.wpks, halt: &self.halt, wpk_keys: &keys };
        create_trigger(&ports, tenant, "admin-ann", req, Utc::now()).await
    }

    async fn poll(&self, tenant: &TenantId, node: &str, after: u64) -> Poll {
        let ports = Handout { nodes: &self.nodes, work: &self.work, halt: &self.halt, key: &self.key };
        poll(&ports, tenant, node, after, StdDuration::ZERO).await.unwrap()
    }

    fn result(
        &self,
        tenant: &TenantId,
        node: &str,
        d: &Delivery,
        status: ResultStatus,
        signer: Option<&LocalKey>,
    ) -> Sealed {
        let r = EdgeResult {
            trigger_id: d.trigger_id.clone(),
            node_id: node.to_owned(),
            seq: d.seq,
            status,
            reason: format!("{} on purpose", status.as_str()),
            refusal: None,
            wpk: None,
            steps: vec![StepOutcome {
                step: 0,
                adapter: "sim".into(),
                action: "restart".into(),
                target: "deployment/payments".into(),
                before_sha256: state_sha256(&json!({"healthy": false})),
                after_sha256: state_sha256(&json!({"healthy": true})),
                reused: false,
                error: None,
            }],
            finished_at: Utc::now(),
        };
        let key = signer.unwrap_or(&self.node_keys[node]);
        let bytes = sealed_bytes(Purpose::EdgeResult, tenant, &r);
        Sealed::new(&bytes, &key.sign(&bytes).unwrap())
    }

    async fn report(
        &self,
        tenant: &TenantId,
        node: &str,
        trigger: &str,
        sealed: &Sealed,
    ) -> Result<Reported, HubError> {
        report(&self.nodes, &self.work, tenant, node, trigger, sealed, Utc::now()).await
    }
}

fn to_node(trigger: &str) -> Value {
    json!({"wpk": {"id": "restart-edge"}, "target": {"node_id": trigger}, "params": {"resource": "deployment/payments"}})
}

#[derive(Default)]
struct Seen(BTreeSet<String>);
impl NodeMemory for Seen {
    fn seen_nonce(&self, n: &str) -> bool {
        self.0.contains(n)
    }
    fn highest_version(&self, _: &str) -> Option<u32> {
        None
    }
}

#[tokio::test]
async fn a_node_registers_once_per_key_and_a_second_key_is_a_conflict() {
    let mut hub = Hub::new();
    let acme = t("acme");
    assert_eq!(hub.join(&acme, "node-a", json!({"site": "s1"})).await, Registered::New);
    let again = Registration::parse(&json!({"public_key": public_key_pem(&hub.node_keys["node-a"].public_key_der()), "labels": {"site": "s2"}, "version": "0.2.0"})).unwrap();
    let (outcome, node) = register(&hub.nodes, &acme, "node-a", again, Utc::now()).await.unwrap();
    assert_eq!((outcome, node.labels["site"].as_str(), node.version.as_str()), (Registered::Again, "s2", "0.2.0"));
    let other = LocalKey::generate("x").unwrap();
    let reg =
        Registration::parse(&json!({"public_key": public_key_pem(&other.public_key_der()), "version": "1"})).unwrap();
    assert!(matches!(register(&hub.nodes, &acme, "node-a", reg, Utc::now()).await, Err(HubError::Conflict(_))));
    assert_eq!(
        hub.nodes.node(&acme, "node-a").await.unwrap().unwrap().kid,
        hub.node_keys["node-a"].id(),
        "the first key stays"
    );
    assert!(hub.nodes.node(&t("beta"), "node-a").await.unwrap().is_none(), "another tenant sees no such node");
}

#[tokio::test]
async fn a_heartbeat_keeps_a_node_online_and_tells_it_of_the_halt() {
    let mut hub = Hub::new();
    let acme = t("acme");
    assert!(matches!(
        heartbeat(&hub.nodes, &hub.halt, &acme, "ghost", None, Utc::now()).await,
        Err(HubError::NotFound(_))
    ));
    hub.join(&acme, "node-a", json!({})).await;
    let (node, halted) = heartbeat(&hub.nodes, &hub.halt, &acme, "node-a", Some(false), Utc::now()).await.unwrap();
    assert_eq!((node.status, halted, node.halt_seen), (NodeStatus::Online, None, false));
    hub.halt.halted.lock().unwrap().insert(acme.clone(), "game day".into());
    let (_, halted) = heartbeat(&hub.nodes, &hub.halt, &acme, "node-a", Some(false), Utc::now()).await.unwrap();
    assert_eq!(halted.as_deref(), Some("game day"));
    let (node, _) = heartbeat(&hub.nodes, &hub.halt, &acme, "node-a", Some(true), Utc::now()).await.unwrap();
    assert!(node.halt_seen && node.halt_seen_at.is_some(), "the node's acknowledgement is recorded");
}

#[tokio::test]
async fn a_partitioned_node_is_not_heard_until_the_partition_ends() {
    let mut hub = Hub::new();
    let acme = t("acme");
    hub.join(&acme, "node-a", json!({})).await;
    hub.join(&acme, "node-b", json!({})).await;
    let seen = hub.nodes.node(&acme, "node-a").await.unwrap().unwrap().last_seen;
    let until = Utc::now() + Duration::seconds(30);
    hub.nodes.partition(&acme, "node-a", Some("chaos-1"), Some(until));
    let later = Utc::now() + Duration::seconds(5);
    assert!(matches!(
        heartbeat(&hub.nodes, &hub.halt, &acme, "node-a", None, later).await,
        Err(HubError::Partitioned(_))
    ));
    assert_eq!(
        hub.nodes.node(&acme, "node-a").await.unwrap().unwrap().last_seen,
        seen,
        "the heartbeat changed nothing"
    );
    let handout = Handout { nodes: &hub.nodes, work: &hub.work, halt: &hub.halt, key: &hub.key };
    assert!(matches!(poll(&handout, &acme, "node-a", 0, StdDuration::ZERO).await, Err(HubError::Partitioned(_))));
    // Another node is answered as ever.
    assert!(heartbeat(&hub.nodes, &hub.halt, &acme, "node-b", None, later).await.is_ok());
    // Once the partition's time is up the node is heard again, even before the run lifts it.
    let after = until + Duration::seconds(1);
    let (node, _) = heartbeat(&hub.nodes, &hub.halt, &acme, "node-a", None, after).await.unwrap();
    assert_eq!(node.last_seen, after);
}

#[tokio::test]
async fn a_trigger_is_signed_per_node_and_verifies_on_the_node() {
    let mut hub = Hub::new();
    let acme = t("acme");
    hub.join(&acme, "node-a", json!({})).await;
    let trigger = hub.send(&acme, to_node("node-a")).await.unwrap();
    assert_eq!((trigger.spec.wpk.version, trigger.spec.nodes), (2, 1), "the latest version by default");
    let first = hub.poll(&acme, "node-a", 0).await;
    assert_eq!(first.deliveries.len(), 1);
    let d = &first.deliveries[0];
    let pinned = HubKeys::pin([HubKey {
        kid: hub.key.kid.clone(),
        public_key_pem: public_key_pem(&hub.key.signer.public_key_der()),
        not_before: None,
        not_after: None,
    }])
    .unwrap();
    let view = NodeView {
        tenant: &acme,
        node_id: "node-a",
        hub_keys: &pinned,
        wpk_keys: &hub.wpk_key.trusted(),
        last_seq: 0,
        halted: false,
        now: Utc::now(),
    };
    let ok = check_delivery(d, &view, &Seen::default()).unwrap();
    assert_eq!((ok.order.seq, ok.order.trigger_id.as_str()), (1, trigger.spec.trigger_id.as_str()));
    // Handed out once: the next poll after seq 1 has nothing new; a second trigger gets seq 2.
    assert!(hub.poll(&acme, "node-a", 1).await.deliveries.is_empty());
    hub.send(&acme, json!({"wpk": {"id": "restart-edge", "version": 1}, "target": {"node_id": "node-a"}, "params": {"resource": "deployment/ledger"}})).await.unwrap();
    let second = hub.poll(&acme, "node-a", 1).await;
    assert_eq!(second.deliveries.iter().map(|d| d.seq).collect::<Vec<_>>(), [2]);
    let exec = hub.work.execution(&acme, &trigger.spec.trigger_id, "node-a").await.unwrap().unwrap();
    assert_eq!((exec.state, exec.seq), (ExecState::Delivered, Some(1)));
}

#[tokio::test]
async fn nothing_is_sent_for_a_halted_tenant_a_wpk_that_does_not_verify_or_a_resource_it_does_not_cover() {
    let mut hub = Hub::new();
    let acme = t("acme");
    hub.join(&acme, "node-a", json!({"tier": "edge"})).await;
    assert!(matches!(
        hub.send(
            &acme,
            json!({"wpk": {"id": "nope"}, "target": {"node_id": "node-a"}, "params": {"resource": "deployment/a"}})
        )
        .await,
        Err(HubError::NotFound(_))
    ));
    assert!(matches!(hub.send(&acme, to_node("node-z")).await, Err(HubError::NotFound(_))));
    assert!(matches!(hub.send(&acme, json!({"wpk": {"id": "restart-edge"}, "target": {"labels": {"tier": "core"}}, "params": {"resource": "deployment/a"}})).await, Err(HubError::Conflict(_))));
    assert!(matches!(hub.send(&acme, json!({"wpk": {"id": "restart-edge"}, "target": {"node_id": "node-a"}, "params": {"resource": "statefulset/db"}})).await, Err(HubError::Invalid(_))));
    // A WPK version written into the registry by hand (bytes changed after signing).
    {
        let mut all = hub.wpks.wpks.lock().unwrap();
        let mut forged = all[1].1.clone();
        forged.version = 3;
        forged.doc = forged.doc.replace("\"version\":2", "\"version\":3");
        all.push((acme.clone(), forged));
    }
    assert!(matches!(hub.send(&acme, to_node("node-a")).await, Err(HubError::Conflict(_))));
    hub.halt.halted.lock().unwrap().insert(acme.clone(), "incident".into());
    assert!(matches!(hub.send(&acme, json!({"wpk": {"id": "restart-edge", "version": 2}, "target": {"node_id": "node-a"}, "params": {"resource": "deployment/a"}})).await, Err(HubError::Halted(_))));
    assert!(hub.work.pending(&acme, "node-a").await.unwrap().is_empty(), "nothing was queued");
}

#[tokio::test]
async fn a_halted_tenant_gets_no_work_until_resumed() {
    let mut hub = Hub::new();
    let acme = t("acme");
    hub.join(&acme, "node-a", json!({})).await;
    hub.send(&acme, to_node("node-a")).await.unwrap();
    hub.halt.halted.lock().unwrap().insert(acme.clone(), "incident".into());
    let p = hub.poll(&acme, "node-a", 0).await;
    assert!(p.deliveries.is_empty() && p.halted.is_some());
    hub.halt.halted.lock().unwrap().clear();
    assert_eq!(hub.poll(&acme, "node-a", 0).await.deliveries.len(), 1);
}

#[tokio::test]
async fn a_rollout_hands_out_at_most_max_per_minute() {
    let mut hub = Hub::new();
    let acme = t("acme");
    for i in 0..5 {
        hub.join(&acme, &format!("node-{i}"), json!({"tier": "edge"})).await;
    }
    hub.join(&acme, "node-core", json!({"tier": "core"})).await;
    let trigger = hub
        .send(&acme, json!({"wpk": {"id": "restart-edge"}, "target": {"labels": {"tier": "edge"}}, "params": {"resource": "deployment/payments"}, "rollout": {"max_per_minute": 2}}))
        .await
        .unwrap();
    assert_eq!(trigger.spec.nodes, 5);
    let mut delivered = 0;
    for i in 0..5 {
        delivered += hub.poll(&acme, &format!("node-{i}"), 0).await.deliveries.len();
    }
    assert_eq!(delivered, 2, "two per minute");
    assert!(hub.poll(&acme, "node-core", 0).await.deliveries.is_empty(), "not selected");
    // The next minute, two more (the slot window is keyed by epoch minute).
    let minute = Utc::now().timestamp().div_euclid(60);
    assert!(hub.work.take_slot(&acme, &trigger.spec.trigger_id, minute + 1, 2).await.unwrap());
    assert!(hub.work.take_slot(&acme, &trigger.spec.trigger_id, minute + 1, 2).await.unwrap());
    assert!(!hub.work.take_slot(&acme, &trigger.spec.trigger_id, minute + 1, 2).await.unwrap());
}

#[tokio::test]
async fn results_are_taken_only_when_signed_by_the_nodes_key_and_only_once() {
    let mut hub = Hub::new();
    let acme = t("acme");
    hub.join(&acme, "node-a", json!({})).await;
    hub.join(&acme, "node-b", json!({})).await;
    let trigger = hub.send(&acme, to_node("node-a")).await.unwrap();
    let id = trigger.spec.trigger_id.clone();
    let d = hub.poll(&acme, "node-a", 0).await.deliveries.remove(0);
    // Signed by another node's key, or by a stranger under node-a's kid.
    let by_b = hub.result(&acme, "node-a", &d, ResultStatus::Succeeded, Some(&hub.node_keys["node-b"]));
    assert!(matches!(hub.report(&acme, "node-a", &id, &by_b).await, Err(HubError::Invalid(_))));
    let stranger = LocalKey::generate(hub.node_keys["node-a"].id()).unwrap();
    let forged = hub.result(&acme, "node-a", &d, ResultStatus::Succeeded, Some(&stranger));
    assert!(matches!(hub.report(&acme, "node-a", &id, &forged).await, Err(HubError::Invalid(_))));
    // node-b posting node-a's genuine result under its own identity.
    let genuine = hub.result(&acme, "node-a", &d, ResultStatus::Succeeded, None);
    assert!(matches!(hub.report(&acme, "node-b", &id, &genuine).await, Err(HubError::Invalid(_))));
    assert!(matches!(hub.report(&t("beta"), "node-a", &id, &genuine).await, Err(HubError::NotFound(_))));
    assert_eq!(hub.report(&acme, "node-a", &id, &genuine).await, Ok(Reported::Recorded));
    assert_eq!(hub.report(&acme, "node-a", &id, &genuine).await, Ok(Reported::Repeated));
    let other = hub.result(&acme, "node-a", &d, ResultStatus::Failed, None);
    assert!(matches!(hub.report(&acme, "node-a", &id, &other).await, Err(HubError::Conflict(_))));
    let t = hub.work.trigger(&acme, &id).await.unwrap().unwrap();
    assert_eq!((t.state, t.counts.succeeded), (TriggerState::Completed, 1));
}

#[tokio::test]
async fn a_refusal_of_a_delivery_that_is_not_the_nodes_is_kept_as_evidence() {
    let mut hub = Hub::new();
    let acme = t("acme");
    hub.join(&acme, "node-a", json!({})).await;
    let fake = Delivery {
        trigger_id: "trg-forged".into(),
        seq: 99,
        order: Sealed { signed: "{}".into(), signature: String::new(), key_id: "x".into() },
        wpk: WpkForm::of(&wpk(&hub.wpk_key, &acme, 1)),
    };
    let refusal = hub.result(&acme, "node-a", &fake, ResultStatus::Rejected, None);
    assert_eq!(hub.report(&acme, "node-a", "trg-forged", &refusal).await, Ok(Reported::RefusalKept));
    assert_eq!(hub.work.refusals(&acme, "node-a", 10).await.unwrap().len(), 1);
    let claim = hub.result(&acme, "node-a", &fake, ResultStatus::Succeeded, None);
    assert!(matches!(hub.report(&acme, "node-a", "trg-forged", &claim).await, Err(HubError::NotFound(_))));
}

#[tokio::test]
async fn a_rollout_aborts_when_failures_reach_the_limit_and_cancels_the_rest() {
    let mut hub = Hub::new();
    let acme = t("acme");
    for i in 0..4 {
        hub.join(&acme, &format!("node-{i}"), json!({"tier": "edge"})).await;
    }
    let trigger = hub
        .send(&acme, json!({"wpk": {"id": "restart-edge"}, "target": {"labels": {"tier": "edge"}}, "params": {"resource": "deployment/payments"}, "rollout": {"max_per_minute": 1, "abort_failure_percent": 50}}))
        .await
        .unwrap();
    let id = trigger.spec.trigger_id.clone();
    let mut first = None;
    for i in 0..4 {
        let node = format!("node-{i}");
        if let Some(d) = hub.poll(&acme, &node, 0).await.deliveries.pop() {
            first = Some((node, d));
        }
    }
    let (node, d) = first.unwrap();
    let failed = hub.result(&acme, &node, &d, ResultStatus::Failed, None);
    assert_eq!(hub.report(&acme, &node, &id, &failed).await, Ok(Reported::Recorded));
    let t = hub.work.trigger(&acme, &id).await.unwrap().unwrap();
    assert_eq!((t.state, t.counts.failed, t.counts.cancelled), (TriggerState::Aborted, 1, 3));
    assert!(t.abort_reason.unwrap().contains("1 of 1"));
    for e in hub.work.executions(&acme, &id).await.unwrap() {
        assert!(e.state == ExecState::Failed || e.state == ExecState::Cancelled, "{e:?}");
    }
    // Even with a fresh minute, nothing more goes out.
    for i in 0..4 {
        assert!(hub.poll(&acme, &format!("node-{i}"), 1).await.deliveries.is_empty());
    }
}

#[tokio::test]
async fn the_sweep_marks_silent_nodes_and_expires_what_was_not_finished_in_time() {
    let mut hub = Hub::new();
    let acme = t("acme");
    hub.join(&acme, "node-a", json!({})).await;
    hub.join(&acme, "node-b", json!({})).await;
    let trigger = hub.send(&acme, json!({"wpk": {"id": "restart-edge"}, "target": {"node_id": "node-a"}, "params": {"resource": "deployment/a"}, "ttl_seconds": 60})).await.unwrap();
    let liveness = Liveness { stale_after: Duration::seconds(60), offline_after: Duration::seconds(300) };
    let now = Utc::now();
    assert_eq!(sweep(&hub.nodes, &hub.work, &liveness, now).await.unwrap(), Swept { nodes: 2, ..Swept::default() });
    heartbeat(&hub.nodes, &hub.halt, &acme, "node-b", None, now + Duration::seconds(100)).await.unwrap();
    let s = sweep(&hub.nodes, &hub.work, &liveness, now + Duration::seconds(120)).await.unwrap();
    assert_eq!((s.stale, s.offline, s.expired, s.completed), (1, 0, 1, 1));
    assert_eq!(hub.nodes.node(&acme, "node-a").await.unwrap().unwrap().status, NodeStatus::Stale);
    assert_eq!(hub.nodes.node(&acme, "node-b").await.unwrap().unwrap().status, NodeStatus::Online);
    let s = sweep(&hub.nodes, &hub.work, &liveness, now + Duration::seconds(400)).await.unwrap();
    assert_eq!((s.offline, s.stale), (2, 0));
    let t = hub.work.trigger(&acme, &trigger.spec.trigger_id).await.unwrap().unwrap();
    assert_eq!((t.state, t.counts.expired), (TriggerState::Completed, 1));
    // Online again on the next heartbeat.
    let (node, _) = heartbeat(&hub.nodes, &hub.halt, &acme, "node-a", None, Utc::now()).await.unwrap();
    assert_eq!(node.status, NodeStatus::Online);
}
