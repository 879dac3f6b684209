//! D.4 end to end: several real `edge-node` processes against the federation hub on the local
//! stack — registration, signed triggers acting on each node's own world, label rollouts at a
//! rate and their abort, the hub unreachable, a node killed mid-trigger, attacks written into the
//! hub's table or served by a fake hub, the kill switch, and liveness.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use aws_sdk_dynamodb::types::AttributeValue;
use naksha_contracts::TenantId;
use naksha_contracts::edge::{EdgeResult, p256_spki_from_pem};
use naksha_contracts::signing::{Purpose, Sealed, TrustedKeys};
use naksha_e2e::edge::{EdgeNode, FakeHub, Proxy};
use naksha_e2e::{Stack, Team, eventually};
use naksha_local::stack::API_URL;
use serde_json::{Value, json};

fn world(healthy: bool) -> Value {
    json!({"deployment/payments": {"kind": "deployment", "replicas": 2, "healthy": healthy, "version": "v1"}})
}

fn wpk(id: &str, version: u32, steps: Value) -> Value {
    json!({
        "id": id, "version": version, "title": format!("{id} at the edge"),
        "match": {"signals": ["deployment_unhealthy"], "resources": ["deployment/*"]},
        "steps": steps, "verify": {"healthy": true}
    })
}

fn restart() -> Value {
    json!([{"adapter": "sim", "action": "restart"}])
}

async fn register_wpk(stack: &Stack, team: &Team, doc: &Value) {
    let r = stack.register(team, doc).await;
    assert_eq!(r.status, 201, "{}", r.text);
}

async fn send(stack: &Stack, team: &Team, body: Value) -> String {
    let r = stack.post_json("/federation/triggers", Some(&team.admin), &body).await;
    assert_eq!(r.status, 202, "{}", r.text);
    r.json()["trigger_id"].as_str().unwrap().to_owned()
}

async fn trigger(stack: &Stack, team: &Team, id: &str) -> Value {
    let r = stack.get(&format!("/federation/triggers/{id}"), Some(&team.operator)).await;
    assert_eq!(r.status, 200, "{}", r.text);
    r.json()
}

async fn trigger_until(stack: &Stack, team: &Team, id: &str, what: &str, done: impl Fn(&Value) -> bool) -> Value {
    eventually(&format!("trigger {id}: {what}"), Duration::from_secs(150), || async {
        let t = trigger(stack, team, id).await;
        done(&t).then_some(t)
    })
    .await
}

fn execution<'a>(t: &'a Value, node: &str) -> &'a Value {
    t["executions"].as_array().unwrap().iter().find(|e| e["node_id"] == node).unwrap()
}

async fn node_view(stack: &Stack, team: &Team, node: &str) -> Value {
    let r = stack.get(&format!("/federation/nodes/{node}"), Some(&team.operator)).await;
    assert_eq!(r.status, 200, "{}", r.text);
    r.json()
}

fn restarts(status: &Value) -> u64 {
    status["world"][0]["doc"]["restarts"].as_u64().unwrap()
}

#[tokio::test]
async fn a_trigger_acts_on_the_nodes_own_world_and_the_signed_result_shows_on_the_hub() {
    let stack = Stack::connect().await;
    let root = stack.paths.root.clone();
    let team = stack.team("d4one");
    register_wpk(&stack, &team, &wpk("restart-edge", 1, restart())).await;
    let mut a = EdgeNode::new(&stack, &team.tenant, "store-a", API_URL, "site=a,tier=edge", &world(false));
    let mut b = EdgeNode::new(&stack, &team.tenant, "store-b", API_URL, "site=b,tier=edge", &world(false));
    a.start(&root, &[]);
    b.start(&root, &[]);
    a.registered(&root).await;
    b.registered(&root).await;
    // Both registered and heartbeating; the registry names each with its own key and labels.
    let nodes = eventually("both nodes online", Duration::from_secs(30), || async {
        let r = stack.get("/federation/nodes", Some(&team.operator)).await.json();
        (r["count"] == 2 && r["nodes"].as_array().unwrap().iter().all(|n| n["status"] == "online")).then_some(r)
    })
    .await;
    let kids: BTreeSet<&str> = nodes["nodes"].as_array().unwrap().iter().map(|n| n["kid"].as_str().unwrap()).collect();
    assert_eq!(kids.len(), 2, "each node has its own key");

    let id = send(&stack, &team, json!({"wpk": {"id": "restart-edge"}, "target": {"node_id": "store-a"}, "params": {"resource": "deployment/payments"}})).await;
    let t = trigger_until(&stack, &team, &id, "completed", |t| t["state"] == "completed").await;
    let exec = execution(&t, "store-a");
    assert_eq!(exec["state"], "succeeded", "{t}");
    assert_eq!(t["executions"].as_array().unwrap().len(), 1, "only the named node");
    // The acts happened on store-a's own world, once; store-b's is untouched.
    let sa = a.status(&root);
    assert_eq!((sa["world"][0]["doc"]["healthy"].as_bool(), restarts(&sa)), (Some(true), 1));
    assert_eq!(restarts(&b.status(&root)), 0);
    // The result is signed by store-a's registered key, for this tenant, and names before/after digests.
    let view = node_view(&stack, &team, "store-a").await;
    let spki = p256_spki_from_pem(view["public_key_pem"].as_str().unwrap()).unwrap();
    let keys = TrustedKeys::from_public_keys([(view["kid"].as_str().unwrap().to_owned(), spki)]);
    let result = &exec["result"];
    let payload: Value = result["payload"].clone();
    assert_eq!(result["key_id"], view["kid"]);
    let stored = stack
        .db
        .get_item()
        .table_name(stack.table("FederationTable"))
        .key("pk", AttributeValue::S(format!("{}#trigger#{id}", team.tenant)))
        .key("sk", AttributeValue::S("node#store-a".into()))
        .send()
        .await
        .unwrap();
    let sealed: Sealed = serde_json::from_str(stored.item().unwrap()["result"].as_s().unwrap()).unwrap();
    let tenant = TenantId::from_record(&team.tenant).unwrap();
    let opened = sealed
        .open::<EdgeResult>(Purpose::EdgeResult, &tenant, &keys)
        .expect("the result verifies with the node's key");
    assert_eq!(opened.trigger_id, id);
    let step = &payload["steps"][0];
    assert_ne!(step["before_sha256"], step["after_sha256"], "the state changed: {payload}");
    assert_eq!(payload["wpk"]["version"], 1);
    // The node logged each thing it did as one JSON line.
    assert!(
        a.log()
            .iter()
            .any(|l| l["fields"]["message"] == "trigger finished" && l["fields"]["trigger_id"] == id.as_str())
    );
    // SIGTERM stops it cleanly.
    assert!(a.terminate().is_some_and(|s| s.success()), "a clean exit on SIGTERM");
}

#[tokio::test]
async fn a_label_rollout_goes_out_at_its_rate_and_one_that_fails_aborts_and_cancels_the_rest() {
    let stack = Stack::connect().await;
    let root = stack.paths.root.clone();
    let team = stack.team("d4roll");
    register_wpk(&stack, &team, &wpk("restart-edge", 1, restart())).await;
    let mut nodes: Vec<EdgeNode> = (0..5)
        .map(|i| {
            EdgeNode::new(&stack, &team.tenant, &format!("cell-{i}"), API_URL, "tier=edge,ring=one", &world(false))
        })
        .collect();
    // Two nodes of the second ring have no such deployment: their steps fail.
    nodes.extend((0..3).map(|i| {
        EdgeNode::new(&stack, &team.tenant, &format!("tower-{i}"), API_URL, "tier=edge,ring=two", &json!({}))
    }));
    for n in &mut nodes {
        n.start(&root, &[]);
    }
    for n in &nodes {
        n.registered(&root).await;
    }
    // Ring one: five nodes, at most three a minute.
    let id = send(
        &stack,
        &team,
        json!({
            "wpk": {"id": "restart-edge"}, "target": {"labels": {"ring": "one"}},
            "params": {"resource": "deployment/payments"}, "rollout": {"max_per_minute": 3}
        }),
    )
    .await;
    let t = trigger_until(&stack, &team, &id, "completed", |t| t["state"] == "completed").await;
    assert_eq!((t["nodes"].as_u64(), t["counts"]["succeeded"].as_u64()), (Some(5), Some(5)), "{t}");
    let mut per_minute: BTreeMap<String, usize> = BTreeMap::new();
    for e in t["executions"].as_array().unwrap() {
        let at = e["delivered_at"].as_str().unwrap();
        *per_minute.entry(at[..16].to_owned()).or_default() += 1;
    }
    assert!(per_minute.values().all(|n| *n <= 3), "at most three handed out in any minute: {per_minute:?}");
    assert!(per_minute.len() >= 2, "five at three a minute take two minutes: {per_minute:?}");
    for n in &nodes[..5] {
        assert_eq!(restarts(&n.status(&root)), 1, "{} acted once", n.id);
    }
    // Ring two fails: abort at 50% failed, one a minute; the rest are cancelled and never run.
    let id = send(
        &stack,
        &team,
        json!({
            "wpk": {"id": "restart-edge"}, "target": {"labels": {"ring": "two"}},
            "params": {"resource": "deployment/payments"}, "rollout": {"max_per_minute": 1, "abort_failure_percent": 50}
        }),
    )
    .await;
    let t = trigger_until(&stack, &team, &id, "aborted", |t| t["state"] == "aborted").await;
    let states: Vec<&str> = t["executions"].as_array().unwrap().iter().map(|e| e["state"].as_str().unwrap()).collect();
    // Usually one failure stops it; a result landing just after a minute boundary may let one
    // more node start before the abort.
    let (failed, cancelled) =
        (states.iter().filter(|s| **s == "failed").count(), states.iter().filter(|s| **s == "cancelled").count());
    assert!(failed >= 1 && cancelled >= 1 && failed + cancelled == 3, "{t}");
    assert!(t["abort_reason"].as_str().unwrap().contains(&format!("{failed} of {failed}")), "{t}");
    let cancelled: Vec<&str> = t["executions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["state"] == "cancelled")
        .map(|e| e["node_id"].as_str().unwrap())
        .collect();
    tokio::time::sleep(Duration::from_secs(3)).await;
    for n in nodes.iter().filter(|n| cancelled.contains(&n.id.as_str())) {
        assert_eq!(n.status(&root)["triggers"].as_array().unwrap().len(), 0, "{} never got the cancelled work", n.id);
    }
}

#[tokio::test]
async fn results_wait_out_a_partition_and_arrive_once_the_hub_answers_again() {
    let stack = Stack::connect().await;
    let root = stack.paths.root.clone();
    let team = stack.team("d4part");
    register_wpk(&stack, &team, &wpk("restart-edge", 1, restart())).await;
    let proxy = Proxy::start(API_URL).await;
    let mut n = EdgeNode::new(&stack, &team.tenant, "factory-1", &proxy.url, "site=f1", &world(false));
    n.start(&root, &["--act-delay-ms", "3000"]);
    n.registered(&root).await;
    let id = send(&stack, &team, json!({"wpk": {"id": "restart-edge"}, "target": {"node_id": "factory-1"}, "params": {"resource": "deployment/payments"}})).await;
    // The node holds the work; now the network goes.
    n.until(&root, "the trigger accepted", |s| s["triggers"].as_array().unwrap().len() == 1).await;
    proxy.set_down(true);
    // It finishes what it holds while cut off, and keeps the signed result.
    let s = n.until(&root, "finished while partitioned", |s| s["triggers"][0]["state"] == "done").await;
    assert!(s["outbox"][0]["sent_at"].is_null(), "held, not delivered: {s}");
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        execution(&trigger(&stack, &team, &id).await, "factory-1")["state"],
        "delivered",
        "the hub has not heard yet"
    );
    // The node says why it holds the result (its hub client retries before it gives up, so the
    // line can come a few seconds after the act: wait for it rather than for a fixed time).
    eventually("the node logs that it holds the result", Duration::from_secs(60), || async {
        n.log()
            .iter()
            .any(|l| {
                l["fields"]["message"] == "result held for later"
                    || l["fields"]["message"].as_str().is_some_and(|m| m.contains("unreachable"))
            })
            .then_some(())
    })
    .await;
    assert_eq!(
        execution(&trigger(&stack, &team, &id).await, "factory-1")["state"],
        "delivered",
        "still partitioned: the hub has not heard"
    );
    // The network comes back: the result arrives, and nothing ran twice.
    proxy.set_down(false);
    let t = trigger_until(&stack, &team, &id, "the held result arrives", |t| t["state"] == "completed").await;
    assert_eq!(execution(&t, "factory-1")["state"], "succeeded");
    let s = n.status(&root);
    assert_eq!((restarts(&s), s["receipts"].as_array().unwrap().len()), (1, 1), "acted once: {s}");
    assert!(!s["outbox"][0]["sent_at"].is_null());
}

#[tokio::test]
async fn a_node_killed_mid_trigger_resumes_where_it_stopped_and_never_acts_twice() {
    let stack = Stack::connect().await;
    let root = stack.paths.root.clone();
    let team = stack.team("d4kill");
    let steps = json!([
        {"adapter": "sim", "action": "restart"},
        {"adapter": "sim", "action": "scale", "args": {"replicas": 4}},
        {"adapter": "sim", "action": "restart"}
    ]);
    register_wpk(&stack, &team, &wpk("heal-and-scale", 1, steps)).await;
    let mut n = EdgeNode::new(&stack, &team.tenant, "ship-7", API_URL, "site=sea", &world(false));
    n.start(&root, &["--act-delay-ms", "2500"]);
    n.registered(&root).await;
    let id = send(&stack, &team, json!({"wpk": {"id": "heal-and-scale"}, "target": {"node_id": "ship-7"}, "params": {"resource": "deployment/payments"}})).await;
    n.until(&root, "the first act done", |s| s["receipts"].as_array().unwrap().len() == 1).await;
    n.kill();
    let s = n.status(&root);
    assert_eq!((s["triggers"][0]["state"].as_str(), restarts(&s)), (Some("accepted"), 1), "killed between acts: {s}");
    n.start(&root, &[]);
    let t = trigger_until(&stack, &team, &id, "completed after the restart", |t| t["state"] == "completed").await;
    assert_eq!(execution(&t, "ship-7")["state"], "succeeded", "{t}");
    let s = n.status(&root);
    assert_eq!(s["receipts"].as_array().unwrap().len(), 3, "each act once: {s}");
    assert_eq!((restarts(&s), s["world"][0]["doc"]["replicas"].as_u64()), (2, Some(4)), "two restarts, not three: {s}");
    assert_eq!(s["triggers"].as_array().unwrap().len(), 1, "the trigger was not taken again");
    let steps = &execution(&t, "ship-7")["result"]["payload"]["steps"];
    assert_eq!(steps.as_array().unwrap().len(), 3);
}

/// Write a delivery into a node's inbox under `seq`, as an attacker with table access would.
async fn plant(stack: &Stack, inbox: &str, seq: u64, delivery: &Value) {
    let item = [
        ("pk", AttributeValue::S(inbox.into())),
        ("sk", AttributeValue::S(env_sk(seq))),
        ("trigger_id", AttributeValue::S(delivery["trigger_id"].as_str().unwrap().into())),
        ("delivery", AttributeValue::S(delivery.to_string())),
        ("expires_at", AttributeValue::S("2999-01-01T00:00:00+00:00".into())),
    ];
    let table = stack.table("FederationTable");
    let put = stack
        .db
        .put_item()
        .table_name(&table)
        .set_item(Some(item.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()));
    put.send().await.unwrap();
}

/// A genuine delivery for `node`, fetched with the node's token while the node is stopped (the
/// node still gets it when it next polls).
async fn fetch_as(stack: &Stack, node: &EdgeNode, after: u64) -> Value {
    let token = std::fs::read_to_string(&node.token_file).unwrap();
    let polled = stack.get(&format!("/federation/triggers?after={after}"), Some(&token)).await;
    assert_eq!(polled.status, 200, "{}", polled.text);
    polled.json()["triggers"][0].clone()
}

fn env_sk(seq: u64) -> String {
    format!("env#{seq:020}")
}

#[tokio::test]
async fn forged_replayed_expired_redirected_and_downgraded_triggers_are_refused_and_reported() {
    let stack = Stack::connect().await;
    let root = stack.paths.root.clone();
    let team = stack.team("d4atk");
    register_wpk(&stack, &team, &wpk("restart-edge", 1, restart())).await;
    register_wpk(&stack, &team, &wpk("restart-edge", 2, restart())).await;
    let mut a = EdgeNode::new(&stack, &team.tenant, "node-a", API_URL, "site=a", &world(false));
    let mut b = EdgeNode::new(&stack, &team.tenant, "node-b", API_URL, "site=b", &world(false));
    a.start(&root, &[]);
    b.start(&root, &[]);
    a.registered(&root).await;
    b.registered(&root).await;
    // A genuine run of v2 on node-a (seq 1), a copy of its delivery kept on the way.
    a.terminate();
    let first = send(&stack, &team, json!({"wpk": {"id": "restart-edge", "version": 2}, "target": {"node_id": "node-a"}, "params": {"resource": "deployment/payments"}})).await;
    let genuine = fetch_as(&stack, &a, 0).await;
    assert_eq!(genuine["seq"], 1);
    a.start(&root, &[]);
    trigger_until(&stack, &team, &first, "completed", |t| t["state"] == "completed").await;
    let inbox_a = format!("{}#node#node-a", team.tenant);
    let inbox_b = format!("{}#node#node-b", team.tenant);
    // Forged: the genuine order with its resource rewritten, served as seq 50.
    let mut forged = genuine.clone();
    forged["order"]["signed"] =
        json!(genuine["order"]["signed"].as_str().unwrap().replace("deployment/payments", "deployment/ledger"));
    forged["seq"] = json!(50);
    plant(&stack, &inbox_a, 50, &forged).await;
    // Replayed: the genuine delivery again, under seq 51.
    let mut replayed = genuine.clone();
    replayed["seq"] = json!(51);
    plant(&stack, &inbox_a, 51, &replayed).await;
    // Redirected: node-a's genuine delivery put in node-b's inbox.
    let mut redirected = genuine.clone();
    redirected["seq"] = json!(52);
    plant(&stack, &inbox_b, 52, &redirected).await;
    let refused = a.until(&root, "two refusals", |s| s["refusals"].as_array().unwrap().len() >= 2).await;
    let codes: BTreeSet<String> =
        refused["refusals"].as_array().unwrap().iter().map(|r| r["code"].as_str().unwrap().to_owned()).collect();
    assert!(codes.contains("bad_signature") && codes.contains("replayed"), "{refused}");
    let b_refused = b.until(&root, "a refusal", |s| !s["refusals"].as_array().unwrap().is_empty()).await;
    assert_eq!(b_refused["refusals"][0]["code"], "wrong_node", "{b_refused}");
    // Expired: a genuine order for node-b with a two-second life, fetched (by someone holding
    // node-b's token) while the node is stopped, its stored expiry moved on, then served.
    b.terminate();
    let short = send(&stack, &team, json!({"wpk": {"id": "restart-edge", "version": 2}, "target": {"node_id": "node-b"}, "params": {"resource": "deployment/payments"}, "ttl_seconds": 2})).await;
    let seq = fetch_as(&stack, &b, 0).await["seq"].as_u64().expect("handed out");
    tokio::time::sleep(Duration::from_secs(3)).await;
    let table = stack.table("FederationTable");
    stack
        .db
        .update_item()
        .table_name(&table)
        .key("pk", AttributeValue::S(inbox_b.clone()))
        .key("sk", AttributeValue::S(env_sk(seq)))
        .update_expression("SET expires_at = :later")
        .expression_attribute_values(":later", AttributeValue::S("2999-01-01T00:00:00+00:00".into()))
        .send()
        .await
        .unwrap();
    b.start(&root, &[]);
    b.until(&root, "the expired order refused", |s| {
        s["refusals"].as_array().unwrap().iter().any(|r| r["code"] == "expired")
    })
    .await;
    // Downgraded: the admin sends v1 to node-a, which already ran v2; the hub signs it, the node refuses.
    let down = send(&stack, &team, json!({"wpk": {"id": "restart-edge", "version": 1}, "target": {"node_id": "node-a"}, "params": {"resource": "deployment/payments"}})).await;
    let t = trigger_until(&stack, &team, &down, "rejected", |t| t["state"] == "completed").await;
    let exec = execution(&t, "node-a");
    assert_eq!(exec["state"], "rejected", "{t}");
    assert_eq!(exec["result"]["payload"]["refusal"], "downgrade");
    // Nothing of it acted: one restart on node-a (the genuine v2 run), none on node-b.
    assert_eq!(restarts(&a.status(&root)), 1);
    assert_eq!(restarts(&b.status(&root)), 0);
    // The hub kept every refusal as evidence on the node, signed by the node.
    let a_view = node_view(&stack, &team, "node-a").await;
    let hub_codes: BTreeSet<&str> =
        a_view["refusals"].as_array().unwrap().iter().map(|r| r["refusal"].as_str().unwrap()).collect();
    assert!(hub_codes.contains("bad_signature") && hub_codes.contains("replayed"), "{a_view}");
    let b_view = node_view(&stack, &team, "node-b").await;
    let b_codes: BTreeSet<&str> =
        b_view["refusals"].as_array().unwrap().iter().map(|r| r["refusal"].as_str().unwrap()).collect();
    assert!(b_codes.contains("wrong_node"), "{b_view}");
    // The execution ends `rejected` by node-b's report — or `expired` if the every-minute sweep
    // got there first; either way nothing acted (node-b's refusal says `expired`, above).
    let expired = trigger(&stack, &team, &short).await;
    let state = execution(&expired, "node-b")["state"].as_str().unwrap().to_owned();
    assert!(state == "rejected" || state == "expired", "the genuine but expired order never ran: {expired}");
}

#[tokio::test]
async fn a_fake_hub_cannot_make_a_node_act() {
    let stack = Stack::connect().await;
    let root = stack.paths.root.clone();
    let team = stack.team("d4fake");
    register_wpk(&stack, &team, &wpk("restart-edge", 1, restart())).await;
    let fake = FakeHub::start(API_URL).await;
    // Registered with the real hub first: it pinned the real trigger key.
    let mut n = EdgeNode::new(&stack, &team.tenant, "kiosk-9", API_URL, "site=k", &world(false));
    n.start(&root, &[]);
    n.registered(&root).await;
    let mut other = EdgeNode::new(&stack, &team.tenant, "kiosk-10", API_URL, "site=k", &world(false));
    other.start(&root, &[]);
    other.registered(&root).await;
    // A genuine delivery to the other node, to replay and redirect.
    other.terminate();
    send(&stack, &team, json!({"wpk": {"id": "restart-edge"}, "target": {"node_id": "kiosk-10"}, "params": {"resource": "deployment/payments"}})).await;
    let genuine = fetch_as(&stack, &other, 0).await;
    n.terminate();
    n.hub = fake.url.clone();
    // What the fake serves: another node's genuine order; the same order signed by a key of the
    // fake's own under the real key's name; an order with the WPK swapped for an unsigned one.
    let rogue = naksha_contracts::signing::LocalKey::generate(genuine["order"]["key_id"].as_str().unwrap()).unwrap();
    let mut signed: Value = serde_json::from_str(genuine["order"]["signed"].as_str().unwrap()).unwrap();
    signed["payload"]["node_id"] = json!("kiosk-9");
    signed["payload"]["seq"] = json!(7);
    signed["payload"]["nonce"] = json!("fake-nonce");
    let bytes = naksha_contracts::signing::canonical_json(&signed);
    let forged = Sealed::new(&bytes, &rogue.sign(&bytes).unwrap());
    let mut swapped = genuine.clone();
    swapped["seq"] = json!(8);
    swapped["wpk"]["doc"] =
        json!(genuine["wpk"]["doc"].as_str().unwrap().replace("restart-edge at the edge", "wipe everything"));
    *fake.serve.lock().unwrap() = vec![
        json!({"trigger_id": genuine["trigger_id"], "seq": 6, "order": genuine["order"], "wpk": genuine["wpk"]}),
        json!({"trigger_id": genuine["trigger_id"], "seq": 7, "order": forged, "wpk": genuine["wpk"]}),
        swapped,
    ];
    n.start(&root, &[]);
    let s = n.until(&root, "three refusals", |s| s["refusals"].as_array().unwrap().len() >= 3).await;
    let codes: Vec<&str> = s["refusals"].as_array().unwrap().iter().map(|r| r["code"].as_str().unwrap()).collect();
    assert_eq!(codes, ["wrong_node", "bad_signature", "wrong_node"], "{s}");
    assert_eq!(restarts(&s), 0, "nothing acted: {s}");
    assert!(s["triggers"].as_array().unwrap().is_empty());
    // Every refusal was reported, signed, through the fake to the real hub.
    let view = eventually("the refusals reach the hub", Duration::from_secs(30), || async {
        let v = node_view(&stack, &team, "kiosk-9").await;
        (v["refusals"].as_array().unwrap().len() >= 3).then_some(v)
    })
    .await;
    assert!(view["refusals"].as_array().unwrap().iter().all(|r| r["status"] == "rejected"));
}

#[tokio::test]
async fn the_kill_switch_stops_the_edge_and_nodes_say_they_have_seen_it() {
    let stack = Stack::connect().await;
    let root = stack.paths.root.clone();
    let team = stack.team("d4halt");
    register_wpk(&stack, &team, &wpk("restart-edge", 1, restart())).await;
    let mut n = EdgeNode::new(&stack, &team.tenant, "plant-3", API_URL, "site=p3", &world(false));
    n.start(&root, &[]);
    n.registered(&root).await;
    // Work queued while the node is away, then the tenant is halted.
    n.terminate();
    let queued = send(&stack, &team, json!({"wpk": {"id": "restart-edge"}, "target": {"node_id": "plant-3"}, "params": {"resource": "deployment/payments"}})).await;
    let r = stack.post_json("/agent/halt", Some(&team.admin), &json!({"reason": "game day: freeze the edge"})).await;
    assert!(r.status < 300, "{}", r.text);
    n.start(&root, &[]);
    let view = eventually("the node sees the halt", Duration::from_secs(30), || async {
        let v = node_view(&stack, &team, "plant-3").await;
        (v["halt_seen"] == true).then_some(v)
    })
    .await;
    assert!(view["halt_seen_at"].is_string());
    assert_eq!(stack.get("/federation/nodes", Some(&team.operator)).await.json()["halted"], true);
    assert!(n.status(&root)["halted"].as_bool().unwrap());
    // Nothing is handed out, and no new trigger is taken, while halted.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(execution(&trigger(&stack, &team, &queued).await, "plant-3")["state"], "queued");
    assert_eq!(restarts(&n.status(&root)), 0, "nothing ran while halted");
    let refused = stack.post_json("/federation/triggers", Some(&team.admin), &json!({"wpk": {"id": "restart-edge"}, "target": {"node_id": "plant-3"}, "params": {"resource": "deployment/payments"}})).await;
    refused.assert_problem(409);
    // Resume: the node learns it, and work flows again.
    let r = stack.post_json("/agent/resume", Some(&team.admin), &json!({})).await;
    assert!(r.status < 300, "{}", r.text);
    n.until(&root, "resumed", |s| s["halted"] == false).await;
    trigger_until(&stack, &team, &queued, "the queued work done after the resume", |t| t["state"] == "completed").await;
    assert_eq!(restarts(&n.status(&root)), 1);
    eventually("the node says the halt is over", Duration::from_secs(30), || async {
        (node_view(&stack, &team, "plant-3").await["halt_seen"] == false).then_some(())
    })
    .await;
}
