//! Every chaos route refuses bad input clearly and injects nothing: malformed, oversized,
//! unauthenticated, wrong-role and cross-tenant requests, unknown specs, targets outside the
//! blast radius, experiments nothing of which maps, unknown scenarios. Each is compared against a
//! snapshot of what chaos and the simulated world store (the chaos and sim tables, the WPKs, the
//! chaos stream): the world's exporter keeps sending telemetry for every chaos target meanwhile,
//! so the telemetry tables move whatever these requests do.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use naksha_e2e::{Snapshot, Stack, eventually};
use serde_json::{Value, json};

/// what, method, path, token, body, expected status.
type Case<'a> = (&'a str, &'a str, String, Option<&'a str>, String, u16);

/// The part of the stack a chaos request could change.
async fn chaos_state(stack: &Stack) -> Snapshot {
    let keep =
        ["ChaosTable", "SimTable", "WpksTable", "AgentStateTable", "RunsTable", "AuditTable"].map(|t| stack.table(t));
    let chaos_stream = stack.table("ChaosRunsStream");
    let mut s = stack.snapshot().await;
    s.tables.retain(|t, _| keep.contains(t));
    s.stream.retain(|r| r.starts_with(&format!("{chaos_stream}/")));
    s
}

async fn quiet_chaos_state(stack: &Stack) -> Snapshot {
    let mut last = chaos_state(stack).await;
    for _ in 0..60 {
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let now = chaos_state(stack).await;
        if now == last {
            return now;
        }
        last = now;
    }
    last
}

#[tokio::test]
async fn every_bad_chaos_request_is_refused_clearly_and_injects_nothing() {
    let stack = Stack::connect().await;
    let team = stack.team("bad5");
    let other = stack.team("bad5-other");
    for t in [&team, &other] {
        let r = stack.post_json("/sim/scenarios/default", Some(&t.admin), &json!({})).await;
        assert_eq!(r.status, 201, "{}", r.text);
    }
    // A finished dry run in the other tenant, to aim at.
    let theirs = stack.post_json("/chaos/run", Some(&other.admin), &json!({"spec": "kill-pod", "dry_run": true})).await;
    assert_eq!(theirs.status, 202, "{}", theirs.text);
    let their_run = theirs.json()["run_id"].as_str().unwrap().to_owned();
    eventually("their dry run to finish", Duration::from_secs(120), || async {
        let r = stack.get(&format!("/chaos/runs/{their_run}"), Some(&other.operator)).await.json();
        (r["stage"] == "done").then_some(())
    })
    .await;

    let ad = Some(team.admin.as_str());
    let op = Some(team.operator.as_str());
    let send = |v: Value| v.to_string();
    let huge = format!("{{\"spec\":\"kill-pod\",\"x\":\"{}\"}}", "y".repeat(1 << 20));
    let native = |deadline: u64| {
        json!({
            "id": "mine", "title": "mine", "fault": {"kind": "latency", "params": {"latency_ms": 900}},
            "blast_radius": {"kind": "deployment", "count": 1},
            "steady_state": [{"type": "resource-health"}],
            "recovery_deadline_s": deadline, "rollbacks": [{"type": "revert-fault"}]
        })
    };
    let nothing_maps = json!({
        "title": "Only a Python action",
        "method": [{"type": "action", "name": "drain", "provider": {"type": "python", "module": "ops", "func": "drain"}}]
    });
    let theirs_path = format!("/chaos/runs/{their_run}");
    let cases: Vec<Case<'_>> = vec![
        ("run: no token", "POST", "/chaos/run".into(), None, send(json!({"spec": "kill-pod"})), 401),
        ("run: an operator", "POST", "/chaos/run".into(), op, send(json!({"spec": "kill-pod"})), 403),
        ("run: not JSON", "POST", "/chaos/run".into(), ad, "{\"spec\": ".into(), 400),
        ("run: not an object", "POST", "/chaos/run".into(), ad, "[\"kill-pod\"]".into(), 400),
        ("run: no spec", "POST", "/chaos/run".into(), ad, "{}".into(), 400),
        ("run: unknown field", "POST", "/chaos/run".into(), ad, send(json!({"spec": "kill-pod", "force": true})), 400),
        (
            "run: spec and spec_id",
            "POST",
            "/chaos/run".into(),
            ad,
            send(json!({"spec": "kill-pod", "spec_id": "latency"})),
            400,
        ),
        ("run: a spec id that is no id", "POST", "/chaos/run".into(), ad, send(json!({"spec": "../kill pod"})), 400),
        ("run: unknown spec", "POST", "/chaos/run".into(), ad, send(json!({"spec": "meteor-strike"})), 404),
        (
            "run: dry_run not a bool",
            "POST",
            "/chaos/run".into(),
            ad,
            send(json!({"spec": "kill-pod", "dry_run": "yes"})),
            400,
        ),
        (
            "run: a target not marked as a chaos target",
            "POST",
            "/chaos/run".into(),
            ad,
            send(json!({"spec": "kill-pod", "target": "deployment/ledger"})),
            400,
        ),
        (
            "run: a target that does not exist",
            "POST",
            "/chaos/run".into(),
            ad,
            send(json!({"spec": "kill-pod", "target": "deployment/nowhere"})),
            400,
        ),
        (
            "run: a deployment fault at an edge node's name",
            "POST",
            "/chaos/run".into(),
            ad,
            send(json!({"spec": "hub-partition", "target": "deployment/orders"})),
            400,
        ),
        ("run: oversized", "POST", "/chaos/run".into(), ad, huge.clone(), 413),
        ("runs: no token", "GET", "/chaos/runs".into(), None, String::new(), 401),
        ("run: another tenant's", "GET", theirs_path.clone(), op, String::new(), 404),
        ("run: an id that is no id", "GET", "/chaos/runs/..%2F..%2Fetc".into(), op, String::new(), 404),
        ("abort: another tenant's", "POST", format!("{theirs_path}/abort"), ad, "{}".into(), 404),
        ("abort: an operator", "POST", format!("{theirs_path}/abort"), op, "{}".into(), 403),
        ("abort: unknown field", "POST", format!("{theirs_path}/abort"), ad, send(json!({"why": "x"})), 400),
        ("specs: no token", "GET", "/chaos/specs".into(), None, String::new(), 401),
        ("add spec: an operator", "POST", "/chaos/specs".into(), op, send(native(240)), 403),
        ("add spec: not JSON", "POST", "/chaos/specs".into(), ad, "{\"fault\":".into(), 400),
        ("add spec: not a spec at all", "POST", "/chaos/specs".into(), ad, send(json!({"hello": "world"})), 400),
        ("add spec: deadline shorter than nothing", "POST", "/chaos/specs".into(), ad, send(native(0)), 400),
        (
            "add spec: a built-in id",
            "POST",
            "/chaos/specs".into(),
            ad,
            send(json!({
                "id": "kill-pod", "title": "mine", "fault": {"kind": "kill-pod"},
                "blast_radius": {"kind": "deployment", "count": 1}, "steady_state": [{"type": "resource-health"}],
                "recovery_deadline_s": 60, "rollbacks": [{"type": "revert-fault"}]
            })),
            409,
        ),
        ("add spec: an experiment nothing of which maps", "POST", "/chaos/specs".into(), ad, send(nothing_maps), 400),
        ("add spec: oversized", "POST", "/chaos/specs".into(), ad, huge, 413),
        ("scenario: unknown name", "POST", "/sim/scenarios/atlantis".into(), ad, "{}".into(), 404),
        ("scenario: an operator", "POST", "/sim/scenarios/default".into(), op, "{}".into(), 403),
        ("scenario: parameters", "POST", "/sim/scenarios/default".into(), ad, send(json!({"size": 9})), 400),
        ("scenario: no token", "POST", "/sim/scenarios/default".into(), None, "{}".into(), 401),
    ];
    let baseline = quiet_chaos_state(&stack).await;
    for (what, method, path, token, body, status) in cases {
        let r = stack.send_raw(method, &path, token, "application/json", body).await;
        let problem = r.assert_problem(status);
        if what.contains("nothing of which maps") {
            assert!(!problem["unmapped"].as_array().unwrap().is_empty(), "{what}: names what did not map: {problem}");
        }
        let now = chaos_state(&stack).await;
        assert!(now == baseline, "{what} changed stored state:\n{}", baseline.diff(&now));
    }
    // Nothing was injected anywhere: every chaos target of the tenant is as seeded.
    for name in ["payments", "orders", "checkout", "search", "ledger"] {
        let state = stack.sim_state(&team, &format!("deployment/{name}")).await;
        assert!(state["condition"]["faults"].is_null() && state["healthy"] == true, "{name}: {state}");
    }
    // Neither tenant sees the other's runs.
    assert_eq!(stack.get("/chaos/runs", Some(&team.operator)).await.json()["count"], 0);
    assert_eq!(stack.get("/chaos/runs", Some(&other.operator)).await.json()["count"], 1);
}
