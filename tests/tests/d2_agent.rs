//! D.2 over HTTP against the running stack: the full path, approvals, tenancy, signatures,
//! standing approvals, resumption, the kill switch, limits, the audit chain and the telemetry
//! observer. Every test has its own tenant.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_kinesis::primitives::Blob;
use naksha_core::signing::sha256_hex;
use naksha_e2e::{Stack, Team, eventually};
use serde_json::{Value, json};

const RES: &str = "deployment/payments";

fn restart_wpk(id: &str, mode: &str) -> Value {
    json!({
        "id": id, "version": 1, "title": "Restart an unhealthy deployment",
        "match": {"signals": ["deployment_unhealthy"], "resources": ["deployment/*"]},
        "safety": {"mode": mode, "dry_run": true},
        "steps": [{"adapter": "sim", "action": "restart"}],
        "verify": {"healthy": true},
        "limits": {"blast_radius": 1, "max_runs_per_hour": 10}
    })
}

async fn setup(stack: &Stack, prefix: &str, mode: &str) -> Team {
    let team = stack.team(prefix);
    stack.sim_deployment(&team, RES, false).await;
    let r = stack.register(&team, &restart_wpk("restart-unhealthy", mode)).await;
    assert_eq!(r.status, 201, "{}", r.text);
    team
}

async fn audit(stack: &Stack, team: &Team) -> Value {
    let r = stack.get("/agent/audit?verify=true", Some(&team.operator)).await;
    assert_eq!(r.status, 200, "{}", r.text);
    r.json()
}

#[tokio::test]
async fn the_full_path_from_unhealthy_to_succeeded_with_a_complete_audit_record() {
    let stack = Stack::connect().await;
    let team = setup(&stack, "full", "manual").await;
    let run = stack.start_run(&team, "deployment_unhealthy", RES).await;
    let waiting = stack.run_until(&team, &run, &["awaiting_approval", "failed", "rejected"]).await;
    assert_eq!(waiting["status"], "awaiting_approval", "{waiting}");
    assert_eq!(waiting["wpk"]["id"], "restart-unhealthy");
    let plan = waiting["plan"].clone();
    assert_eq!(plan["actions"][0]["change"], json!({"healthy": [false, true], "restarts": [0, 1]}));
    assert_eq!(stack.sim_state(&team, RES).await["healthy"], false, "nothing acted before approval");

    let approved = stack.approve(&team, &run, plan["sha256"].as_str().unwrap()).await;
    assert_eq!(approved.status, 202, "{}", approved.text);
    let done = stack.run_until(&team, &run, &["succeeded", "failed", "aborted"]).await;
    assert_eq!(done["status"], "succeeded", "{done}");
    let state = stack.sim_state(&team, RES).await;
    assert_eq!((state["healthy"].clone(), state["restarts"].clone()), (json!(true), json!(1)));

    let nodes: Vec<&str> = done["steps"].as_array().unwrap().iter().map(|s| s["node"].as_str().unwrap()).collect();
    assert_eq!(nodes, ["observe", "decide", "plan", "gate", "gate", "act", "verify", "record"]);
    for step in done["steps"].as_array().unwrap() {
        assert!(step["latency_ms"].as_f64().is_some_and(|l| l >= 0.0), "{step}");
        assert!(step["graph_version"].as_str().unwrap().starts_with("v1-"));
    }
    let record = &done["audit"][0];
    assert_eq!(record["approver"], "bob");
    assert_eq!(record["justification"], "INC-4711: restart per runbook");
    assert_eq!(record["wpk_id"], "restart-unhealthy");
    assert_eq!(record["wpk_version"], 1);
    assert_eq!(record["plan_sha256"], plan["sha256"]);
    assert_eq!(record["before_sha256"].as_str().unwrap().len(), 64);
    assert_ne!(record["before_sha256"], record["after_sha256"]);
    assert_eq!(record["prev_hash"].as_str().unwrap(), "0".repeat(64));
    let chain = audit(&stack, &team).await;
    assert_eq!((chain["count"].as_u64(), chain["verified"].as_bool()), (Some(1), Some(true)));
}

#[tokio::test]
async fn approvals_need_the_exact_plan_the_approver_role_and_the_same_tenant() {
    let stack = Stack::connect().await;
    let team = setup(&stack, "appr", "manual").await;
    let run = stack.start_run(&team, "deployment_unhealthy", RES).await;
    let waiting = stack.run_until(&team, &run, &["awaiting_approval"]).await;
    let sha = waiting["plan"]["sha256"].as_str().unwrap().to_owned();

    let wrong = stack.approve(&team, &run, &"0".repeat(64)).await;
    let doc = wrong.assert_problem(409);
    assert_eq!(doc["plan_sha256"], sha.as_str(), "the 409 names the plan awaiting approval");

    let operator_only = stack
        .post_json(
            &format!("/agent/runs/{run}/approve"),
            Some(&team.operator),
            &json!({"justification": "x", "plan_sha256": sha}),
        )
        .await;
    operator_only.assert_problem(403);

    let other = stack.team("other");
    for (path, token) in [
        (format!("/agent/runs/{run}/approve"), other.approver.clone()),
        (format!("/agent/runs/{run}/reject"), other.approver.clone()),
    ] {
        stack
            .post_json(&path, Some(&token), &json!({"justification": "x", "plan_sha256": sha}))
            .await
            .assert_problem(404);
    }
    stack.get(&format!("/agent/status/{run}"), Some(&other.operator)).await.assert_problem(404);

    let still = stack.run_until(&team, &run, &["awaiting_approval"]).await;
    assert!(still["approval"].is_null(), "refused approvals recorded nothing");
    // Reject: final, with who and why.
    let r = stack
        .post_json(
            &format!("/agent/runs/{run}/reject"),
            Some(&team.approver),
            &json!({"justification": "not during the sale"}),
        )
        .await;
    assert_eq!(r.status, 202, "{}", r.text);
    let rejected = stack.run_until(&team, &run, &["rejected"]).await;
    assert_eq!(rejected["rejection"]["approver"], "bob");
    stack.approve(&team, &run, &sha).await.assert_problem(409);
    assert_eq!(stack.sim_state(&team, RES).await["healthy"], false);
}

#[tokio::test]
async fn a_tampered_wpk_fails_the_run_and_nothing_acts() {
    let stack = Stack::connect().await;
    let team = setup(&stack, "tamper", "auto").await;
    // Someone with table access rewrites the stored document and even fixes up its digest.
    let key = std::collections::HashMap::from([
        ("pk".to_owned(), AttributeValue::S(team.tenant.clone())),
        ("sk".to_owned(), AttributeValue::S("restart-unhealthy#0000000001".into())),
    ]);
    let item =
        stack.db.get_item().table_name(stack.table("WpksTable")).set_key(Some(key.clone())).send().await.unwrap();
    let doc = item.item().unwrap()["doc"].as_s().unwrap().replace("\"restart\"", "\"rollback\"");
    stack
        .db
        .update_item()
        .table_name(stack.table("WpksTable"))
        .set_key(Some(key))
        .update_expression("SET doc = :d, sha256 = :s")
        .expression_attribute_values(":d", AttributeValue::S(doc.clone()))
        .expression_attribute_values(":s", AttributeValue::S(sha256_hex(doc.as_bytes())))
        .send()
        .await
        .unwrap();
    let run = stack.start_run(&team, "deployment_unhealthy", RES).await;
    let done = stack.run_until(&team, &run, &["failed", "succeeded", "awaiting_approval"]).await;
    assert_eq!(done["status"], "failed");
    assert!(done["outcome"]["reason"].as_str().unwrap().contains("signature verification failed"), "{done}");
    assert!(done["receipts"].as_array().unwrap().is_empty());
    assert_eq!(
        stack.sim_state(&team, RES).await,
        json!({"kind": "deployment", "replicas": 3, "healthy": false, "version": "v2", "restarts": 0})
    );
    assert_eq!(audit(&stack, &team).await["count"], 0);
}

#[tokio::test]
async fn auto_waits_without_a_standing_approval_and_acts_unattended_with_one() {
    let stack = Stack::connect().await;
    let team = setup(&stack, "auto", "auto").await;
    let first = stack.start_run(&team, "deployment_unhealthy", RES).await;
    assert_eq!(
        stack.run_until(&team, &first, &["awaiting_approval", "succeeded"]).await["status"],
        "awaiting_approval"
    );
    // An approver records a standing approval for v1; a manual WPK cannot take one.
    let promote = stack
        .post_json(
            "/wpk/restart-unhealthy/promote",
            Some(&team.approver),
            &json!({"version": 1, "justification": "safe at any hour"}),
        )
        .await;
    assert_eq!(promote.status, 200, "{}", promote.text);
    stack
        .post_json("/wpk/restart-unhealthy/promote", Some(&team.operator), &json!({"version": 1, "justification": "x"}))
        .await
        .assert_problem(403);
    let second = stack.start_run(&team, "deployment_unhealthy", RES).await;
    let done = stack.run_until(&team, &second, &["succeeded", "failed", "awaiting_approval"]).await;
    assert_eq!(done["status"], "succeeded", "{done}");
    assert_eq!(done["approval"]["standing"], true);
    assert_eq!(done["audit"][0]["approver"], "bob");
    assert_eq!(done["audit"][0]["standing_approval"], true);
}

#[tokio::test]
async fn a_resumed_run_never_repeats_an_act() {
    let stack = Stack::connect().await;
    let team = setup(&stack, "resume", "manual").await;
    let run = stack.start_run(&team, "deployment_unhealthy", RES).await;
    let waiting = stack.run_until(&team, &run, &["awaiting_approval"]).await;
    assert_eq!(stack.approve(&team, &run, waiting["plan"]["sha256"].as_str().unwrap()).await.status, 202);
    let done = stack.run_until(&team, &run, &["succeeded"]).await;
    // Make it look as if the worker crashed right after acting: back to `act`, no receipts,
    // then deliver the run message again.
    let key = std::collections::HashMap::from([
        ("pk".to_owned(), AttributeValue::S(format!("{}#{run}", team.tenant))),
        ("sk".to_owned(), AttributeValue::S("run".into())),
    ]);
    let item =
        stack.db.get_item().table_name(stack.table("RunsTable")).set_key(Some(key.clone())).send().await.unwrap();
    let mut state: Value = serde_json::from_str(item.item().unwrap()["state"].as_s().unwrap()).unwrap();
    state["status"] = json!("queued");
    state["cursor"] = json!("act");
    state["receipts"] = json!([]);
    state["outcome"] = Value::Null;
    state["verification"] = Value::Null;
    state["audit_seq"] = Value::Null;
    stack
        .db
        .update_item()
        .table_name(stack.table("RunsTable"))
        .set_key(Some(key))
        .update_expression("SET #s = :s, #st = :q")
        .expression_attribute_names("#s", "state")
        .expression_attribute_names("#st", "status")
        .expression_attribute_values(":s", AttributeValue::S(state.to_string()))
        .expression_attribute_values(":q", AttributeValue::S("queued".into()))
        .send()
        .await
        .unwrap();
    stack
        .kinesis
        .put_record()
        .stream_name(stack.table("AgentRunsStream"))
        .partition_key(format!("{}/{RES}", team.tenant))
        .data(Blob::new(json!({"tenant": team.tenant, "run_id": run}).to_string().into_bytes()))
        .send()
        .await
        .unwrap();
    let resumed = eventually("the resumed run to finish", Duration::from_secs(60), || async {
        let doc = stack.get(&format!("/agent/status/{run}"), Some(&team.operator)).await.json();
        (doc["status"] == "succeeded" && doc["updated_at"] != done["updated_at"]).then_some(doc)
    })
    .await;
    assert_eq!(resumed["receipts"][0]["reused"], true, "{resumed}");
    assert_eq!(stack.sim_state(&team, RES).await["restarts"], 1, "the restart happened once");
    let chain = audit(&stack, &team).await;
    assert_eq!(chain["count"], 1, "one audit record per run");
    assert_eq!(chain["verified"], true);
}

#[tokio::test]
async fn the_kill_switch_stops_every_act_until_resumed() {
    let stack = Stack::connect().await;
    let team = setup(&stack, "halt", "manual").await;
    let run = stack.start_run(&team, "deployment_unhealthy", RES).await;
    let waiting = stack.run_until(&team, &run, &["awaiting_approval"]).await;
    stack.post_json("/agent/halt", Some(&team.operator), &json!({})).await.assert_problem(403);
    let halt = stack.post_json("/agent/halt", Some(&team.admin), &json!({"reason": "change freeze"})).await;
    assert_eq!(halt.status, 200, "{}", halt.text);
    assert_eq!(stack.approve(&team, &run, waiting["plan"]["sha256"].as_str().unwrap()).await.status, 202);
    let aborted = stack.run_until(&team, &run, &["aborted", "succeeded"]).await;
    assert_eq!(aborted["status"], "aborted");
    assert!(aborted["outcome"]["reason"].as_str().unwrap().contains("change freeze"));
    assert_eq!(stack.sim_state(&team, RES).await["healthy"], false);

    assert_eq!(stack.post("/agent/resume", Some(&team.admin), "").await.status, 200);
    let again = stack.start_run(&team, "deployment_unhealthy", RES).await;
    let waiting = stack.run_until(&team, &again, &["awaiting_approval"]).await;
    assert_eq!(stack.approve(&team, &again, waiting["plan"]["sha256"].as_str().unwrap()).await.status, 202);
    assert_eq!(stack.run_until(&team, &again, &["succeeded", "aborted"]).await["status"], "succeeded");
}

#[tokio::test]
async fn runs_per_hour_are_limited_and_two_runs_on_one_resource_never_act_at_once() {
    // The limit counts acts per clock hour (fixed buckets): three runs that straddle the turn of
    // an hour are counted in two, so start in an hour with at least 90 s left.
    let into_hour = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() % 3600;
    if into_hour > 3600 - 90 {
        tokio::time::sleep(std::time::Duration::from_secs(3600 - into_hour + 1)).await;
    }
    let stack = Stack::connect().await;
    let team = stack.team("limit");
    stack.sim_deployment(&team, RES, false).await;
    let mut doc = restart_wpk("restart-limited", "manual");
    doc["limits"]["max_runs_per_hour"] = json!(2);
    assert_eq!(stack.register(&team, &doc).await.status, 201);
    let (a, b) = (
        stack.start_run(&team, "deployment_unhealthy", RES).await,
        stack.start_run(&team, "deployment_unhealthy", RES).await,
    );
    let (wa, wb) = (
        stack.run_until(&team, &a, &["awaiting_approval"]).await,
        stack.run_until(&team, &b, &["awaiting_approval"]).await,
    );
    assert_eq!(stack.approve(&team, &a, wa["plan"]["sha256"].as_str().unwrap()).await.status, 202);
    assert_eq!(stack.approve(&team, &b, wb["plan"]["sha256"].as_str().unwrap()).await.status, 202);
    let (da, db) = (
        stack.run_until(&team, &a, &["succeeded", "failed", "awaiting_approval"]).await,
        stack.run_until(&team, &b, &["succeeded", "failed", "awaiting_approval"]).await,
    );
    // The second approval was of a plan made before the first restart: it is re-planned, not
    // executed blindly, and waits for a fresh approval.
    let statuses = [da["status"].as_str().unwrap(), db["status"].as_str().unwrap()];
    assert!(statuses.contains(&"succeeded"), "{statuses:?}");
    let act_window = |run: &Value| {
        run["steps"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["node"] == "act")
            .map(|s| (s["started_at"].as_str().unwrap().to_owned(), s["ended_at"].as_str().unwrap().to_owned()))
    };
    if let (Some((s1, e1)), Some((s2, e2))) = (act_window(&da), act_window(&db)) {
        assert!(e1 <= s2 || e2 <= s1, "acts on one resource overlapped: {s1}..{e1} and {s2}..{e2}");
    }
    // Fill the hour, then one more is refused with the reason.
    for run in [&a, &b] {
        let doc = stack.get(&format!("/agent/status/{run}"), Some(&team.operator)).await.json();
        if doc["status"] == "awaiting_approval" {
            assert_eq!(stack.approve(&team, run, doc["plan"]["sha256"].as_str().unwrap()).await.status, 202);
            assert_eq!(stack.run_until(&team, run, &["succeeded"]).await["status"], "succeeded");
        }
    }
    let third = stack.start_run(&team, "deployment_unhealthy", RES).await;
    let refused = stack.run_until(&team, &third, &["rejected", "awaiting_approval"]).await;
    assert_eq!(refused["status"], "rejected", "{refused}");
    assert!(refused["outcome"]["reason"].as_str().unwrap().contains("max_runs_per_hour 2"), "{refused}");
}

#[tokio::test]
async fn no_matching_wpk_and_dry_runs_are_recorded_without_acting() {
    let stack = Stack::connect().await;
    let team = setup(&stack, "none", "auto").await;
    let run = stack.start_run(&team, "disk_full", RES).await;
    let refused = stack.run_until(&team, &run, &["rejected", "failed"]).await;
    assert!(refused["outcome"]["reason"].as_str().unwrap().contains("no WPK handles signal \"disk_full\""));
    let r = stack
        .post_json(
            "/agent/run",
            Some(&team.operator),
            &json!({"signal": "deployment_unhealthy", "resource": RES, "dry_run": true}),
        )
        .await;
    let run = r.json()["run_id"].as_str().unwrap().to_owned();
    let planned = stack.run_until(&team, &run, &["succeeded", "failed"]).await;
    assert_eq!(planned["status"], "succeeded");
    assert!(planned["plan"]["sha256"].is_string() && planned["receipts"].as_array().unwrap().is_empty());
    assert_eq!(stack.sim_state(&team, RES).await["healthy"], false);
}

#[tokio::test]
async fn the_audit_chain_names_the_first_edited_record() {
    let stack = Stack::connect().await;
    let team = setup(&stack, "chain", "manual").await;
    for _ in 0..3 {
        let run = stack.start_run(&team, "deployment_unhealthy", RES).await;
        let w = stack.run_until(&team, &run, &["awaiting_approval"]).await;
        assert_eq!(stack.approve(&team, &run, w["plan"]["sha256"].as_str().unwrap()).await.status, 202);
        stack.run_until(&team, &run, &["succeeded", "failed"]).await;
    }
    let chain = audit(&stack, &team).await;
    assert_eq!((chain["count"].as_u64(), chain["verified"].as_bool()), (Some(3), Some(true)));
    // Edit record 2 in place: a different approver.
    let key = std::collections::HashMap::from([
        ("pk".to_owned(), AttributeValue::S(team.tenant.clone())),
        ("seq".to_owned(), AttributeValue::N("2".into())),
    ]);
    let item =
        stack.db.get_item().table_name(stack.table("AuditTable")).set_key(Some(key.clone())).send().await.unwrap();
    let edited =
        item.item().unwrap()["record"].as_s().unwrap().replace("\"approver\":\"bob\"", "\"approver\":\"mallory\"");
    stack
        .db
        .update_item()
        .table_name(stack.table("AuditTable"))
        .set_key(Some(key))
        .update_expression("SET #r = :r")
        .expression_attribute_names("#r", "record")
        .expression_attribute_values(":r", AttributeValue::S(edited))
        .send()
        .await
        .unwrap();
    let chain = audit(&stack, &team).await;
    assert_eq!(chain["verified"], false);
    assert_eq!(chain["first_broken"]["seq"], 2, "{chain}");
}

#[tokio::test]
async fn observe_reads_the_resources_d1_aggregates() {
    let stack = Stack::connect().await;
    let team = setup(&stack, "obs", "manual").await;
    let events: Vec<Value> = (0..6).map(|i| json!({"source": RES, "name": "error_rate", "value": i})).collect();
    let r = stack.post_json("/ingest", Some(&team.operator), &json!({ "events": events })).await;
    assert_eq!(r.status, 202);
    eventually("the aggregates", Duration::from_secs(60), || async {
        (!stack.aggregates_of(&team.tenant).await.is_empty()).then_some(())
    })
    .await;
    let r = stack
        .post_json("/agent/run", Some(&team.operator), &json!({"signal": "deployment_unhealthy", "resource": RES, "dry_run": true, "telemetry": {"alert": "from 10.2.3.4"}}))
        .await;
    let run = r.json()["run_id"].as_str().unwrap().to_owned();
    let done = stack.run_until(&team, &run, &["succeeded", "failed"]).await;
    let series = &done["observation"]["plugins"]["telemetry"]["series"];
    assert_eq!(series[0]["name"], "error_rate", "{done}");
    assert_eq!(series[0]["samples"], 6.0);
    assert_eq!(done["observation"]["resources"][RES]["healthy"], false);
    let attached = done["observation"]["plugins"]["request"]["alert"].as_str().unwrap();
    assert!(!attached.contains("10.2.3.4") && attached.contains("anon_"), "run telemetry is pseudonymised: {attached}");
}

#[tokio::test]
async fn a_wpk_signature_verifies_with_openssl_and_tampered_bytes_do_not() {
    use base64::Engine as _;
    let stack = Stack::connect().await;
    let team = setup(&stack, "openssl", "manual").await;
    let got = stack.get("/wpk/restart-unhealthy", Some(&team.operator)).await.json();
    let v = &got["versions"][0];
    let der = base64::engine::general_purpose::STANDARD.decode(v["signature"].as_str().unwrap()).unwrap();
    let key_id = v["key_id"].as_str().unwrap();
    let signed = v["signed_bytes"].as_str().unwrap();
    let (ok, said) = stack.openssl_verify(key_id, &der, signed.as_bytes()).await;
    assert!(ok, "{said}");
    assert_eq!(said, "Verified OK");
    let (ok, _) = stack.openssl_verify(key_id, &der, signed.replace("restart", "rollback").as_bytes()).await;
    assert!(!ok, "openssl must refuse altered bytes");
}

// ------------------------------------------------------------------------------------------
// As an attacker with write access to the tables (and the runs stream), and as a careless team.

fn run_key(tenant: &str, run: &str) -> std::collections::HashMap<String, AttributeValue> {
    let tenant = naksha_contracts::TenantId::from_record(tenant).unwrap();
    std::collections::HashMap::from([
        ("pk".to_owned(), AttributeValue::S(naksha_contracts::runs::run_pk(&tenant, run))),
        ("sk".to_owned(), AttributeValue::S("run".into())),
    ])
}

/// Rewrite a run's stored state with `edit` and put it on the runs stream, as someone with
/// table and stream access would to make the worker act.
async fn forge_run(stack: &Stack, team: &Team, run: &str, edit: impl FnOnce(&mut Value)) {
    let key = run_key(&team.tenant, run);
    let item =
        stack.db.get_item().table_name(stack.table("RunsTable")).set_key(Some(key.clone())).send().await.unwrap();
    let mut state: Value = serde_json::from_str(item.item().unwrap()["state"].as_s().unwrap()).unwrap();
    edit(&mut state);
    let status = state["status"].as_str().unwrap().to_owned();
    stack
        .db
        .update_item()
        .table_name(stack.table("RunsTable"))
        .set_key(Some(key))
        .update_expression("SET #st = :st, #s = :s")
        .expression_attribute_names("#st", "state")
        .expression_attribute_names("#s", "status")
        .expression_attribute_values(":st", AttributeValue::S(state.to_string()))
        .expression_attribute_values(":s", AttributeValue::S(status))
        .send()
        .await
        .unwrap();
    let msg = json!({"tenant": team.tenant, "run_id": run});
    stack
        .kinesis
        .put_record()
        .stream_name(stack.table("AgentRunsStream"))
        .partition_key(format!("{}/{RES}", team.tenant))
        .data(Blob::new(msg.to_string()))
        .send()
        .await
        .unwrap();
}

fn untouched() -> Value {
    json!({"kind": "deployment", "replicas": 3, "healthy": false, "version": "v2", "restarts": 0})
}

#[tokio::test]
async fn an_approval_written_into_the_table_or_moved_from_another_run_never_acts() {
    let stack = Stack::connect().await;
    let team = setup(&stack, "forge", "manual").await;
    // A genuine approval of run 1, to steal from.
    let first = stack.start_run(&team, "deployment_unhealthy", RES).await;
    let w1 = stack.run_until(&team, &first, &["awaiting_approval"]).await;
    stack.post_json("/agent/halt", Some(&team.admin), &json!({"reason": "hold run 1"})).await;
    assert_eq!(stack.approve(&team, &first, w1["plan"]["sha256"].as_str().unwrap()).await.status, 202);
    let aborted = stack.run_until(&team, &first, &["aborted", "succeeded", "failed"]).await;
    assert_eq!(aborted["status"], "aborted", "{aborted}");
    let stolen = aborted["approval"].clone();
    assert!(stolen["evidence"]["signature"].is_string(), "a run approval is signed evidence: {stolen}");
    stack.post_json("/agent/resume", Some(&team.admin), &json!({})).await;

    // Run 2: an approval invented by hand (no evidence), then run 1's signed approval moved over.
    for (case, forged) in [
        ("invented", json!({"approver": "mallory", "justification": "trust me", "standing": false})),
        ("moved", stolen.clone()),
    ] {
        let run = stack.start_run(&team, "deployment_unhealthy", RES).await;
        let waiting = stack.run_until(&team, &run, &["awaiting_approval"]).await;
        let plan = waiting["plan"]["sha256"].clone();
        forge_run(&stack, &team, &run, |st| {
            let mut approval = forged.clone();
            approval["plan_sha256"] = plan.clone();
            approval["at"] = json!("2026-12-01T00:00:00Z");
            st["approval"] = approval;
            st["status"] = json!("queued");
        })
        .await;
        let done = stack.run_until(&team, &run, &["failed", "succeeded"]).await;
        assert_eq!(done["status"], "failed", "{case}: {done}");
        let reason = done["outcome"]["reason"].as_str().unwrap();
        assert!(reason.starts_with("refusing to act"), "{case}: {reason}");
        assert!(done["receipts"].as_array().unwrap().is_empty(), "{case}");
        assert_eq!(stack.sim_state(&team, RES).await, untouched(), "{case}: nothing acted");
    }
    assert_eq!(audit(&stack, &team).await["count"], 0);
}

#[tokio::test]
async fn a_standing_approval_written_into_a_wpk_item_never_acts_unattended() {
    let stack = Stack::connect().await;
    let team = setup(&stack, "standforge", "auto").await;
    let key = std::collections::HashMap::from([
        ("pk".to_owned(), AttributeValue::S(team.tenant.clone())),
        ("sk".to_owned(), AttributeValue::S("restart-unhealthy#0000000001".into())),
    ]);
    let wpks = stack.table("WpksTable");
    let item = stack.db.get_item().table_name(&wpks).set_key(Some(key.clone())).send().await.unwrap();
    assert!(item.item().is_some(), "the WPK item is where the attacker expects it");
    // The old attribute, and a sealed-looking one with a signature of something else.
    let sealed_looking =
        json!({"signed": "{\"payload\":{\"approver\":\"mallory\"}}", "signature": "MEUCIQ==", "key_id": "k"});
    for forged in [json!({"approver": "mallory", "justification": "x", "at": "now"}), sealed_looking] {
        stack
            .db
            .update_item()
            .table_name(&wpks)
            .set_key(Some(key.clone()))
            .update_expression("SET standing_approval = :a")
            .expression_attribute_values(":a", AttributeValue::S(forged.to_string()))
            .send()
            .await
            .unwrap();
        let run = stack.start_run(&team, "deployment_unhealthy", RES).await;
        let done = stack.run_until(&team, &run, &["awaiting_approval", "succeeded", "failed"]).await;
        assert_eq!(done["status"], "awaiting_approval", "a person must approve: {done}");
        assert_eq!(stack.sim_state(&team, RES).await, untouched());
    }
}

#[tokio::test]
async fn a_wpk_copied_from_another_tenant_verifies_nowhere_else() {
    let stack = Stack::connect().await;
    let victim = setup(&stack, "victim", "manual").await;
    let attacker = stack.team("attacker");
    let mut theirs = restart_wpk("restart-unhealthy", "manual");
    theirs["steps"] = json!([{"adapter": "sim", "action": "scale", "args": {"replicas": 0}}]);
    theirs["verify"] = json!({});
    assert_eq!(stack.register(&attacker, &theirs).await.status, 201);
    // Copy the attacker's signed item over the victim's, keeping the victim's key.
    let wpks = stack.table("WpksTable");
    let key = |tenant: &str| {
        std::collections::HashMap::from([
            ("pk".to_owned(), AttributeValue::S(tenant.to_owned())),
            ("sk".to_owned(), AttributeValue::S("restart-unhealthy#0000000001".into())),
        ])
    };
    let mut item = stack
        .db
        .get_item()
        .table_name(&wpks)
        .set_key(Some(key(&attacker.tenant)))
        .send()
        .await
        .unwrap()
        .item()
        .unwrap()
        .clone();
    item.insert("pk".into(), AttributeValue::S(victim.tenant.clone()));
    stack.db.put_item().table_name(&wpks).set_item(Some(item)).send().await.unwrap();

    let run = stack.start_run(&victim, "deployment_unhealthy", RES).await;
    let done = stack.run_until(&victim, &run, &["failed", "awaiting_approval", "succeeded"]).await;
    assert_eq!(done["status"], "failed", "{done}");
    let reason = done["outcome"]["reason"].as_str().unwrap();
    assert!(reason.contains("signed for another tenant") || reason.contains("tenant"), "{reason}");
    assert_eq!(stack.sim_state(&victim, RES).await, untouched());
}

#[tokio::test]
async fn the_requester_cannot_approve_nor_the_author_promote_unless_the_tenant_allows_it_on_the_record() {
    let stack = Stack::connect().await;
    let team = setup(&stack, "duties", "manual").await;
    // Olivia may both request and approve; Ada registered the WPKs and is an approver too.
    let olivia = stack.key.token(&team.tenant, "olivia", &["operator", "approver"], 600).unwrap();
    let ada = stack.key.token(&team.tenant, "ada", &["admin", "approver"], 600).unwrap();
    let run = stack.start_run(&team, "deployment_unhealthy", RES).await;
    let waiting = stack.run_until(&team, &run, &["awaiting_approval"]).await;
    let body = json!({"justification": "my own change", "plan_sha256": waiting["plan"]["sha256"]});
    let p = stack.post_json(&format!("/agent/runs/{run}/approve"), Some(&olivia), &body).await.assert_problem(403);
    assert!(p["detail"].as_str().unwrap().contains("requested"), "{p}");

    let mut auto = restart_wpk("restart-auto", "auto");
    auto["match"]["signals"] = json!(["deployment_auto"]);
    assert_eq!(stack.register(&team, &auto).await.status, 201);
    let promote = json!({"version": 1, "justification": "I wrote it, I trust it"});
    stack.post_json("/wpk/restart-auto/promote", Some(&ada), &promote).await.assert_problem(403);

    // The settings: wrong role, bad body, then allowed by an admin, signed and audited.
    let settings = json!({"allow_self_approval": true, "justification": "two-person team, INC-9"});
    stack.post_json("/agent/settings", Some(&olivia), &settings).await.assert_problem(403);
    stack
        .post_json("/agent/settings", Some(&team.admin), &json!({"allow_self_approval": "yes"}))
        .await
        .assert_problem(400);
    let r = stack.post_json("/agent/settings", Some(&team.admin), &settings).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let got = stack.get("/agent/settings", Some(&team.operator)).await.json();
    assert_eq!((got["allow_self_approval"].as_bool(), got["verified"].as_bool()), (Some(true), Some(true)), "{got}");
    assert_eq!(stack.post_json(&format!("/agent/runs/{run}/approve"), Some(&olivia), &body).await.status, 202);
    let done = stack.run_until(&team, &run, &["succeeded", "failed"]).await;
    assert_eq!(done["status"], "succeeded", "{done}");
    assert_eq!(stack.post_json("/wpk/restart-auto/promote", Some(&ada), &promote).await.status, 200);

    let chain = audit(&stack, &team).await;
    assert_eq!(chain["verified"], true, "{chain}");
    let kinds: Vec<&str> =
        chain["records"].as_array().unwrap().iter().map(|r| r["kind"].as_str().unwrap_or("act")).collect();
    assert_eq!(kinds, ["setting", "act"], "the setting is on the record before the act it allowed");
    // Settings forged in the table count as not set.
    let state = stack.table("AgentStateTable");
    let forged =
        json!({"signed": "{\"payload\":{\"allow_self_approval\":true}}", "signature": "MEUCIQ==", "key_id": "k"});
    let items = stack.scan(&state).await;
    let settings_item = items.iter().find(|i| i["pk"].as_s().unwrap() == &format!("{}#settings", team.tenant)).unwrap();
    let mut item = settings_item.clone();
    item.insert("sealed".into(), AttributeValue::S(forged.to_string()));
    stack.db.put_item().table_name(&state).set_item(Some(item)).send().await.unwrap();
    let got = stack.get("/agent/settings", Some(&team.operator)).await.json();
    assert_eq!((got["allow_self_approval"].as_bool(), got["verified"].as_bool()), (Some(false), Some(false)), "{got}");
}

async fn approved_runs(stack: &Stack, team: &Team, n: usize) {
    for _ in 0..n {
        let run = stack.start_run(team, "deployment_unhealthy", RES).await;
        let w = stack.run_until(team, &run, &["awaiting_approval"]).await;
        assert_eq!(stack.approve(team, &run, w["plan"]["sha256"].as_str().unwrap()).await.status, 202);
        stack.run_until(team, &run, &["succeeded", "failed"]).await;
    }
}

fn audit_key(tenant: &str, seq: u64) -> std::collections::HashMap<String, AttributeValue> {
    std::collections::HashMap::from([
        ("pk".to_owned(), AttributeValue::S(tenant.to_owned())),
        ("seq".to_owned(), AttributeValue::N(seq.to_string())),
    ])
}

#[tokio::test]
async fn deleting_or_rewriting_the_newest_audit_record_is_detected_and_the_log_pages() {
    let stack = Stack::connect().await;
    let team = setup(&stack, "cut", "manual").await;
    approved_runs(&stack, &team, 3).await;
    // Paging: 2 + 1, and bad limits are 400.
    let page = stack.get("/agent/audit?limit=2", Some(&team.operator)).await.json();
    assert_eq!(page["count"], 2);
    let next = page["next_cursor"].as_str().unwrap().to_owned();
    let rest = stack.get(&format!("/agent/audit?limit=2&cursor={next}"), Some(&team.operator)).await.json();
    assert_eq!((rest["count"].as_u64(), rest["records"][0]["seq"].as_u64()), (Some(1), Some(3)));
    assert!(rest["next_cursor"].is_null());
    for bad in ["limit=0", "limit=501", "limit=x", "cursor=-1"] {
        stack.get(&format!("/agent/audit?{bad}"), Some(&team.operator)).await.assert_problem(400);
    }
    let table = stack.table("AuditTable");
    let newest = stack.db.get_item().table_name(&table).set_key(Some(audit_key(&team.tenant, 3))).send().await.unwrap();
    let newest = newest.item().unwrap().clone();

    // Rewrite record 3 with a recomputed hash, and the head to match: only the checkpoint knows.
    let mut record: naksha_contracts::audit::AuditRecord =
        serde_json::from_str(newest["record"].as_s().unwrap()).unwrap();
    record.entry.approver = "mallory".into();
    record.hash = record.compute_hash();
    let text = serde_json::to_string(&record).unwrap();
    let mut rewritten = newest.clone();
    rewritten.insert("record".into(), AttributeValue::S(text.clone()));
    rewritten.insert("hash".into(), AttributeValue::S(record.hash.clone()));
    stack.db.put_item().table_name(&table).set_item(Some(rewritten)).send().await.unwrap();
    stack
        .db
        .update_item()
        .table_name(&table)
        .set_key(Some(audit_key(&team.tenant, 0)))
        .update_expression("SET head_record = :r")
        .expression_attribute_values(":r", AttributeValue::S(text))
        .send()
        .await
        .unwrap();
    let chain = audit(&stack, &team).await;
    assert_eq!((chain["verified"].as_bool(), chain["first_broken"]["seq"].as_u64()), (Some(false), Some(3)), "{chain}");

    // Delete it instead: the head, the checkpoint and the run that acted all name it.
    stack.db.delete_item().table_name(&table).set_key(Some(audit_key(&team.tenant, 3))).send().await.unwrap();
    let chain = audit(&stack, &team).await;
    assert_eq!(chain["verified"], false, "{chain}");
    assert!(chain["first_broken"]["reason"].as_str().unwrap().contains("truncated"), "{chain}");
}

#[tokio::test]
async fn an_act_whose_audit_record_cannot_land_is_not_succeeded_until_it_does() {
    let stack = Stack::connect().await;
    let team = setup(&stack, "pending", "manual").await;
    // Squat the next record's place: every append fails until the squatter is gone.
    let table = stack.table("AuditTable");
    let mut squat = audit_key(&team.tenant, 1);
    squat.insert("record".into(), AttributeValue::S("{}".into()));
    stack.db.put_item().table_name(&table).set_item(Some(squat)).send().await.unwrap();

    let run = stack.start_run(&team, "deployment_unhealthy", RES).await;
    let w = stack.run_until(&team, &run, &["awaiting_approval"]).await;
    assert_eq!(stack.approve(&team, &run, w["plan"]["sha256"].as_str().unwrap()).await.status, 202);
    let pending = eventually("the run to report its pending audit record", Duration::from_secs(90), || async {
        let doc = stack.get(&format!("/agent/status/{run}"), Some(&team.operator)).await.json();
        (!doc["audit_pending"].is_null()).then_some(doc)
    })
    .await;
    assert_eq!(pending["status"], "running", "an act without its record is not succeeded: {pending}");
    assert_eq!(stack.sim_state(&team, RES).await["restarts"], 1, "the act happened once");
    assert!(!pending["audit_pending"]["receipts"].as_array().unwrap().is_empty(), "{pending}");

    stack.db.delete_item().table_name(&table).set_key(Some(audit_key(&team.tenant, 1))).send().await.unwrap();
    let done = stack.run_until(&team, &run, &["succeeded", "failed"]).await;
    assert_eq!(done["status"], "succeeded", "{done}");
    assert_eq!(stack.sim_state(&team, RES).await["restarts"], 1, "retrying the append never repeats the act");
    let chain = audit(&stack, &team).await;
    assert_eq!((chain["count"].as_u64(), chain["verified"].as_bool()), (Some(1), Some(true)), "{chain}");
}

async fn keyed(stack: &Stack, path: &str, token: &str, key: &str, body: &Value) -> naksha_e2e::Reply {
    let req = stack
        .http
        .post(format!("{}{path}", naksha_e2e::API_URL))
        .header("content-type", "application/json")
        .header("idempotency-key", key)
        .body(body.to_string());
    stack.send(req, Some(token)).await
}

/// A client that lost an answer retries with the same `Idempotency-Key` and gets the first
/// answer back: one run, one approval, one act, one audit record.
#[tokio::test]
async fn a_retried_start_or_approval_with_its_idempotency_key_acts_once() {
    let stack = Stack::connect().await;
    let team = setup(&stack, "idem", "manual").await;
    let start = json!({"signal": "deployment_unhealthy", "resource": RES});
    let first = keyed(&stack, "/agent/run", &team.operator, "start-1", &start).await;
    assert_eq!(first.status, 202, "{}", first.text);
    assert!(first.headers.get("idempotent-replayed").is_none());
    let retry = keyed(&stack, "/agent/run", &team.operator, "start-1", &start).await;
    assert_eq!((retry.status, retry.json()), (202, first.json()), "the retry is the first answer");
    assert_eq!(retry.headers["idempotent-replayed"], "true");
    // The same key on another request runs nothing.
    let other = json!({"signal": "deployment_unhealthy", "resource": "deployment/other"});
    let misuse = keyed(&stack, "/agent/run", &team.operator, "start-1", &other).await;
    assert_eq!((misuse.status, misuse.content_type.as_str()), (422, "application/problem+json"), "{}", misuse.text);
    // Another caller's key space is its own: the same key and body from another tenant is a new request.
    let stranger = setup(&stack, "idem-other", "manual").await;
    let theirs = keyed(&stack, "/agent/run", &stranger.operator, "start-1", &start).await;
    assert_eq!(theirs.status, 202, "{}", theirs.text);
    assert_ne!(theirs.json()["run_id"], first.json()["run_id"]);
    assert!(theirs.headers.get("idempotent-replayed").is_none());

    let run = first.json()["run_id"].as_str().unwrap().to_owned();
    let waiting = stack.run_until(&team, &run, &["awaiting_approval", "failed"]).await;
    assert_eq!(waiting["status"], "awaiting_approval", "{waiting}");
    let approval = json!({"justification": "INC-4711: restart per runbook", "plan_sha256": waiting["plan"]["sha256"]});
    let path = format!("/agent/runs/{run}/approve");
    let approved = keyed(&stack, &path, &team.approver, "approve-1", &approval).await;
    assert_eq!(approved.status, 202, "{}", approved.text);
    let again = keyed(&stack, &path, &team.approver, "approve-1", &approval).await;
    assert_eq!((again.status, again.headers["idempotent-replayed"].to_str().unwrap()), (202, "true"));
    let done = stack.run_until(&team, &run, &["succeeded", "failed"]).await;
    assert_eq!(done["status"], "succeeded", "{done}");
    assert_eq!(stack.sim_state(&team, RES).await["restarts"], 1, "one act");
    let chain = audit(&stack, &team).await;
    assert_eq!((chain["count"].as_u64(), chain["verified"].as_bool()), (Some(1), Some(true)));
    // Without the key, a second approval is a second request, and the finished run refuses it.
    let plain = stack.post_json(&path, Some(&team.approver), &approval).await;
    assert_eq!(plain.status, 409, "{}", plain.text);
}

#[tokio::test]
async fn a_claim_sent_twice_by_the_sdk_is_still_its_own_and_no_one_elses() {
    // After a reset connection the SDK sends the claim's conditional write again; the first one
    // had landed, so the second fails its condition on the attempt's own claim. The token says it
    // is ours: the request runs instead of answering itself 409 "still running" for the lease.
    let stack = Stack::connect().await;
    let table = stack.table("LimitsTable");
    let pk = format!("idem#{}", sha256_hex(naksha_e2e::unique_tenant("sdk-retry").as_bytes()));
    let claim = |token: &'static str, fp: &'static str| {
        let (db, table, pk) = (stack.db.clone(), table.clone(), pk.clone());
        async move { naksha_core::idempotency::dynamo_claim_token(&db, &table, &pk, fp, token).await.unwrap() }
    };
    assert!(claim("attempt-1", "fp-a").await, "a free key is taken");
    assert!(claim("attempt-1", "fp-a").await, "the same attempt sent again still holds it");
    assert!(!claim("attempt-2", "fp-a").await, "another attempt waits while the first runs");
    assert!(!claim("attempt-1", "fp-b").await, "a different request under the key is not this claim");
}
