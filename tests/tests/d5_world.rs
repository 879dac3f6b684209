//! D.5's world: a fault in the simulated world is noticed by the system itself — the world
//! reports it as a cluster would (a Kubernetes Warning event, an alert), through the real ingest
//! path, the consumer raises a signal, the agent picks the WPK that heals it — without anyone
//! telling the agent what happened.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use aws_sdk_dynamodb::types::AttributeValue;
use naksha_act::faults::FaultKind;
use naksha_act::sim::{SimResource, inject};
use naksha_contracts::TenantId;
use naksha_e2e::{Stack, Team, eventually};
use serde_json::{Value, json};

async fn target(stack: &Stack, team: &Team, resource: &str) {
    let body = json!({"kind": "deployment", "replicas": 3, "healthy": true, "version": "v7", "chaos_target": true});
    let r = stack
        .send(stack.http.put(format!("http://127.0.0.1:9000/sim/resources/{resource}")).json(&body), Some(&team.admin))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
}

/// Inject a fault straight into the world's table (what the chaos orchestrator does).
async fn break_it(stack: &Stack, team: &Team, resource: &str, kind: FaultKind) {
    let table = stack.table("SimTable");
    let tenant = TenantId::from_record(&team.tenant).unwrap();
    let pk = naksha_core::sim::sim_pk(&tenant, resource);
    let got = stack.db.get_item().table_name(&table).key("pk", AttributeValue::S(pk)).send().await.unwrap();
    let (_, _, r) = naksha_core::sim::decode(got.item().unwrap()).unwrap();
    let broken: SimResource = inject(&r, "chaos-test", kind, &serde_json::Map::new(), "now");
    let item = naksha_core::sim::item(&tenant, resource, &broken).unwrap();
    stack.db.put_item().table_name(&table).set_item(Some(item)).send().await.unwrap();
}

async fn auto_wpk(stack: &Stack, team: &Team, id: &str, signal: &str, steps: Value) {
    let doc = json!({
        "id": id, "version": 1, "title": format!("{id}: heal {signal}"),
        "match": {"signals": [signal], "resources": ["deployment/*"]},
        "safety": {"mode": "auto", "dry_run": true},
        "steps": steps, "verify": {"healthy": true}
    });
    assert_eq!(stack.register(team, &doc).await.status, 201);
    let r = stack
        .post_json(
            &format!("/wpk/{id}/promote"),
            Some(&team.approver),
            &json!({"version": 1, "justification": "known fix"}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
}

#[tokio::test]
async fn a_crash_loop_is_reported_by_the_world_and_healed_without_anyone_telling_the_agent() {
    let stack = Stack::connect().await;
    let team = stack.team("d5world");
    auto_wpk(&stack, &team, "rollback-bad-version", "crash_loop", json!([{"adapter": "sim", "action": "rollback"}]))
        .await;
    target(&stack, &team, "deployment/orders").await;
    break_it(&stack, &team, "deployment/orders", FaultKind::CrashLoop).await;
    assert_eq!(stack.sim_state(&team, "deployment/orders").await["healthy"], false);
    // The world's exporter reports it (the harness also fires it every minute).
    let (status, out) = stack
        .invoke("sim-exporter", &json!({"source": "aws.events", "detail-type": "Scheduled Event", "detail": {}}))
        .await;
    assert_eq!(status, 200, "{out}");
    assert!(out["warnings"].as_u64().unwrap() >= 1, "{out}");
    // A signal opens from the BackOff warning and starts a run that picks the rollback WPK.
    let signal = eventually("a crash_loop signal", Duration::from_secs(90), || async {
        let r = stack.get("/signals", Some(&team.operator)).await.json();
        r["signals"].as_array().unwrap().iter().find(|s| s["series"]["source"] == "deployment/orders").cloned()
    })
    .await;
    let run_id = signal["run_id"].as_str().unwrap().to_owned();
    let run = stack.run_until(&team, &run_id, &["succeeded", "failed", "awaiting_approval"]).await;
    assert_eq!(run["status"], "succeeded", "{run}");
    assert_eq!((run["signal"].as_str(), run["wpk"]["id"].as_str()), (Some("crash_loop"), Some("rollback-bad-version")));
    assert_eq!(run["approval"]["standing"], true, "no human was involved");
    let healed = stack.sim_state(&team, "deployment/orders").await;
    assert_eq!((healed["healthy"].as_bool(), healed["version"].as_str()), (Some(true), Some("v7")), "{healed}");
}
