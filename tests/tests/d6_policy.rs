//! D.6 end to end on the local stack: the policy learner learns from the agent's own audit
//! chain (a WPK approved three times by two people becomes a promotion; enforcing it makes the
//! next run act unattended), from the shared CloudTrail and Kubernetes audit data
//! (least-privilege documents and risk findings, each naming its records), and the compliance
//! matrix follows a WPK tampered with in its table and fixed again.
//!
//! One test that runs its three parts side by side (they use separate tenants).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use aws_sdk_dynamodb::types::AttributeValue;
use naksha_e2e::{Stack, Team, eventually};
use serde_json::{Value, json};

const RES: &str = "deployment/api";

fn shared(path: &str) -> String {
    format!("{}/../data/shared/{path}", env!("CARGO_MANIFEST_DIR"))
}

fn restart_wpk(mode: &str) -> Value {
    json!({
        "id": "restart-unhealthy", "version": 1, "title": "Restart an unhealthy deployment",
        "match": {"signals": ["deployment_unhealthy"], "resources": ["deployment/*"]},
        "safety": {"mode": mode, "dry_run": true},
        "steps": [{"adapter": "sim", "action": "restart"}],
        "verify": {"healthy": true},
        "limits": {"blast_radius": 1, "max_runs_per_hour": 20}
    })
}

/// A person holding `roles` in the team's tenant.
fn person(stack: &Stack, team: &Team, sub: &str, roles: &[&str]) -> String {
    stack.key.token(&team.tenant, sub, roles, 900).unwrap()
}

async fn suggestions(stack: &Stack, token: &str, query: &str) -> Vec<Value> {
    let r = stack.get(&format!("/policies/suggestions{query}"), Some(token)).await;
    assert_eq!(r.status, 200, "{}", r.text);
    r.json()["suggestions"].as_array().unwrap().clone()
}

async fn advance(stack: &Stack, token: &str, id: &str, why: &str) -> (u16, Value) {
    let r = stack
        .post_json(&format!("/policies/suggestions/{id}/advance"), Some(token), &json!({"justification": why}))
        .await;
    (r.status, r.json())
}

/// Runs approved by hand, one after another; returns their ids.
async fn approved_runs(stack: &Stack, team: &Team, approvers: &[&str]) -> Vec<String> {
    let mut runs = Vec::new();
    for approver in approvers {
        stack.sim_deployment(team, RES, false).await;
        let run = stack.start_run(team, "deployment_unhealthy", RES).await;
        let waiting = stack.run_until(team, &run, &["awaiting_approval", "succeeded", "failed"]).await;
        assert_eq!(waiting["status"], "awaiting_approval", "{waiting}");
        let token = person(stack, team, approver, &["approver"]);
        let body = json!({"justification": "INC-88: restart per runbook", "plan_sha256": waiting["plan"]["sha256"]});
        let r = stack.post_json(&format!("/agent/runs/{run}/approve"), Some(&token), &body).await;
        assert_eq!(r.status, 202, "{}", r.text);
        let done = stack.run_until(team, &run, &["succeeded", "failed"]).await;
        assert_eq!(done["status"], "succeeded", "{done}");
        runs.push(run);
    }
    runs
}

async fn autonomy_from_the_audit_chain(stack: &Stack) {
    let team = stack.team("d6-auto");
    stack.sim_deployment(&team, RES, false).await;
    assert_eq!(stack.register(&team, &restart_wpk("auto")).await.status, 201);
    approved_runs(stack, &team, &["bob", "carol", "bob"]).await;

    // The nightly job learns from the chain without anyone posting it.
    let (status, night) = stack
        .invoke("policy-nightly", &json!({"detail-type": "Scheduled Event", "source": "aws.events", "detail": {}}))
        .await;
    assert_eq!(status, 200, "{night}");
    let promotions = suggestions(stack, &team.admin, "?kind=autonomy").await;
    assert_eq!(promotions.len(), 1, "{promotions:?}");
    let p = &promotions[0];
    assert_eq!(
        (p["rule"].as_str(), p["subject"].as_str(), p["state"].as_str()),
        (Some("promote"), Some("wpk/restart-unhealthy"), Some("suggested"))
    );
    assert_eq!(p["policy"]["version"], 1);
    assert_eq!(p["policy"]["limits"]["blast_radius"], 1);
    assert_eq!(p["evidence"]["count"], 3);
    // The evidence names the chain's own records.
    let audit = stack.get("/agent/audit?verify=true", Some(&team.operator)).await.json();
    let acts: Vec<String> =
        audit["records"].as_array().unwrap().iter().map(|r| format!("naksha-audit/{}", r["seq"])).collect();
    let cited: Vec<String> =
        p["evidence"]["record_ids"].as_array().unwrap().iter().map(|v| v.as_str().unwrap().to_owned()).collect();
    assert_eq!(cited, acts);

    // Posting what GET /agent/audit returns finds those records known already (idempotent), and
    // an edited copy is refused, naming its line.
    let lines: Vec<String> = audit["records"].as_array().unwrap().iter().map(Value::to_string).collect();
    let r = stack.post("/learn", Some(&team.admin), lines.join("\n")).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!((r.json()["ingested"].as_u64(), r.json()["duplicates"].as_u64()), (Some(0), Some(3)));
    let mut forged: Value = audit["records"][0].clone();
    forged["approver"] = json!("mallory");
    let r = stack.post("/learn", Some(&team.admin), format!("{}\n{forged}", lines[1])).await;
    let problem = r.assert_problem(400);
    assert_eq!(problem["errors"][0]["pointer"], "/line/2", "{problem}");

    // One step at a time; enforcing needs approver too, and goes through the agent's path.
    let id = p["id"].as_str().unwrap();
    let dana = person(stack, &team, "dana", &["admin", "approver"]);
    assert_eq!(advance(stack, &team.admin, id, "dry-run it").await.0, 200);
    let (status, warn) = advance(stack, &team.admin, id, "warn for a week").await;
    assert_eq!((status, warn["state"].as_str()), (200, Some("warn")));
    let (status, problem) = advance(stack, &team.admin, id, "enforce").await;
    assert_eq!(status, 403, "an admin without approver cannot sign a standing approval: {problem}");
    let (status, enforced) = advance(stack, &dana, id, "three clean approvals by two people").await;
    assert_eq!((status, enforced["state"].as_str()), (200, Some("enforced")), "{enforced}");
    assert_eq!(advance(stack, &dana, id, "again").await.0, 409);
    let wpk = stack.get("/wpk/restart-unhealthy", Some(&team.operator)).await.json();
    assert_eq!(wpk["versions"][0]["standing_approval"]["approver"], "dana", "{wpk}");

    // The next run acts without waiting for anyone.
    stack.sim_deployment(&team, RES, false).await;
    let run = stack.start_run(&team, "deployment_unhealthy", RES).await;
    let done = stack.run_until(&team, &run, &["succeeded", "failed", "awaiting_approval"]).await;
    assert_eq!(done["status"], "succeeded", "{done}");
    assert_eq!(done["approval"]["standing"], true);

    // Every step is in the audit chain, which still verifies.
    let audit = stack.get("/agent/audit?verify=true", Some(&team.operator)).await.json();
    assert_eq!(audit["verified"], true, "{audit}");
    let steps: Vec<&str> = audit["records"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["kind"] == "policy")
        .map(|r| r["outcome"].as_str().unwrap())
        .collect();
    assert_eq!(steps, vec!["dryrun", "warn", "enforced"]);

    // A rejection is evidence too: a second WPK's run is rejected, and it is never promoted.
    let mut other = restart_wpk("auto");
    other["id"] = json!("restart-other");
    other["match"] = json!({"signals": ["web_unhealthy"], "resources": ["deployment/web"]});
    assert_eq!(stack.register(&team, &other).await.status, 201);
    for approver in ["bob", "carol", "bob"] {
        stack.sim_deployment(&team, "deployment/web", false).await;
        let run = stack.start_run(&team, "web_unhealthy", "deployment/web").await;
        let waiting = stack.run_until(&team, &run, &["awaiting_approval"]).await;
        let token = person(stack, &team, approver, &["approver"]);
        let body = json!({"justification": "ok", "plan_sha256": waiting["plan"]["sha256"]});
        assert_eq!(stack.post_json(&format!("/agent/runs/{run}/approve"), Some(&token), &body).await.status, 202);
        stack.run_until(&team, &run, &["succeeded"]).await;
    }
    stack.sim_deployment(&team, "deployment/web", false).await;
    let run = stack.start_run(&team, "web_unhealthy", "deployment/web").await;
    stack.run_until(&team, &run, &["awaiting_approval"]).await;
    let carol = person(stack, &team, "carol", &["approver"]);
    let r = stack
        .post_json(
            &format!("/agent/runs/{run}/reject"),
            Some(&carol),
            &json!({"justification": "not during the freeze"}),
        )
        .await;
    assert_eq!(r.status, 202, "{}", r.text);
    assert!(r.json()["audit_seq"].is_u64(), "{}", r.text);
    let (status, _) = stack
        .invoke("policy-nightly", &json!({"detail-type": "Scheduled Event", "source": "aws.events", "detail": {}}))
        .await;
    assert_eq!(status, 200);
    let autonomy = suggestions(stack, &team.admin, "?kind=autonomy").await;
    assert!(
        !autonomy.iter().any(|s| s["subject"] == "wpk/restart-other"),
        "a rejected WPK is not promoted: {autonomy:?}"
    );
}

fn cloudtrail_batches() -> Vec<String> {
    let mut files: Vec<_> =
        std::fs::read_dir(shared("cloudtrail/CloudTrail")).unwrap().flatten().map(|e| e.path()).collect();
    files.sort();
    let mut batches = vec![String::new()];
    for f in files {
        let text = std::fs::read_to_string(f).unwrap();
        if batches.last().unwrap().len() + text.len() > 1_000_000 {
            batches.push(String::new());
        }
        let last = batches.last_mut().unwrap();
        last.push_str(text.trim());
        last.push('\n');
    }
    batches
}

fn k8s_lines() -> String {
    let mut files: Vec<_> =
        std::fs::read_dir(shared("k8s-audit/events")).unwrap().flatten().map(|e| e.path()).collect();
    files.sort();
    files.iter().map(|f| std::fs::read_to_string(f).unwrap().trim().to_owned()).collect::<Vec<_>>().join("\n")
}

async fn learns_from_cloudtrail_and_kubernetes(stack: &Stack) {
    let team = stack.team("d6-data");
    let batches = cloudtrail_batches();
    assert!(batches.len() > 1, "the shared CloudTrail data is posted in several requests under 1 MiB");
    let mut ingested = 0;
    for b in &batches {
        let r = stack.post("/learn", Some(&team.admin), b.clone()).await;
        assert_eq!(r.status, 200, "{}", r.text);
        ingested += r.json()["ingested"].as_u64().unwrap();
    }
    assert_eq!(ingested, 2900);
    // Posting a batch again changes nothing.
    let again = stack.post("/learn", Some(&team.admin), batches[0].clone()).await.json();
    assert_eq!((again["ingested"].as_u64(), again["changed"].as_u64()), (Some(0), Some(0)), "{again}");

    // The Kubernetes events hold one invalid record: refused as a whole, then learned around.
    let r = stack.post("/learn", Some(&team.admin), k8s_lines()).await;
    let problem = r.assert_problem(400);
    assert_eq!(problem["bad_lines"], 1, "{problem}");
    let r = stack.post("/learn?skip_invalid=true", Some(&team.admin), k8s_lines()).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json()["skipped"].as_array().unwrap().len(), 1);

    let all = suggestions(stack, &team.operator, "").await;
    let find = |rule: &str, subject_end: &str| {
        all.iter()
            .find(|s| s["rule"] == rule && s["subject"].as_str().unwrap().ends_with(subject_end))
            .unwrap_or_else(|| panic!("no {rule} for {subject_end}"))
            .clone()
    };
    let bert = find("iam_policy", ":user/bert-jan");
    assert_eq!(bert["policy"]["Version"], "2012-10-17");
    assert_eq!(bert["complete"], false, "bert-jan's errored records make the policy incomplete");
    let actions: Vec<String> = bert["policy"]["Statement"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|s| s["Action"].as_array().unwrap().iter().map(|a| a.as_str().unwrap().to_owned()))
        .collect();
    assert!(actions.contains(&"kms:Decrypt".to_owned()) && actions.contains(&"ec2:DescribeRouteTables".to_owned()));
    let role = find("rbac_role", "minikube-user");
    assert_eq!(role["policy"]["kind"], "ClusterRole");
    // Every suggestion names the records behind it, and they are the source's own ids.
    for s in &all {
        let ids = s["evidence"]["record_ids"].as_array().unwrap();
        assert!(!ids.is_empty() && s["evidence"]["count"].as_u64().unwrap() >= ids.len() as u64, "{s}");
    }
    let exec = find("k8s.exec_attach", "minikube-user");
    let mut ids: Vec<&str> =
        exec["evidence"]["record_ids"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
    ids.sort();
    assert!(ids.contains(&"ca1ed9f4-7bf4-4c85-81a8-1b11253d1ba6"), "exec_pod.json's auditID: {ids:?}");
    for rule in [
        "k8s.privileged_pod",
        "k8s.host_namespace_pod",
        "k8s.sensitive_mount",
        "k8s.cluster_admin_binding",
        "k8s.wildcard_role",
        "aws.logging_disabled",
        "aws.secret_read_burst",
        "aws.credentials_elsewhere",
        "aws.access_denied_burst",
        "aws.shared_externally",
        "aws.leave_organization",
    ] {
        assert!(all.iter().any(|s| s["rule"] == rule), "no {rule} finding");
    }
    // Nothing stored holds a raw source address (P-1): the records keep pseudonyms.
    let items = stack.scan(&stack.table("PoliciesTable")).await;
    let text: String = items.iter().filter_map(|i| i.get("doc").and_then(|d| d.as_s().ok())).cloned().collect();
    assert!(!text.contains("192.168.10.20") && !text.contains("3.225.16.109"), "a raw source address was stored");

    // Dry-run of a least-privilege policy reports what it would have blocked since.
    let id = bert["id"].as_str().unwrap();
    assert_eq!(advance(stack, &team.admin, id, "try it").await.0, 200);
    let got = stack.get(&format!("/policies/suggestions/{id}"), Some(&team.operator)).await.json();
    assert_eq!(got["state"], "dryrun");
    assert!(got["would_block"]["count"].is_u64(), "{got}");
    // A rejected suggestion cannot be advanced.
    let other = find("k8s.node_port_service", "minikube-user");
    let oid = other["id"].as_str().unwrap();
    let r = stack
        .post_json(
            &format!("/policies/suggestions/{oid}/reject"),
            Some(&team.admin),
            &json!({"justification": "NodePorts are our ingress"}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(advance(stack, &team.admin, oid, "changed my mind").await.0, 409);
}

async fn cell(stack: &Stack, token: &str, policy: &str, service: &str) -> (String, Value) {
    let m = stack.get("/compliance", Some(token)).await;
    assert_eq!(m.status, 200, "{}", m.text);
    let doc = m.json();
    let cell = doc["policies"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["id"] == policy)
        .and_then(|p| p["cells"].as_array().unwrap().iter().find(|c| c["service"] == service))
        .cloned()
        .unwrap_or(Value::Null);
    (cell["status"].as_str().unwrap_or_default().to_owned(), doc)
}

async fn compliance_follows_a_tampered_wpk(stack: &Stack) {
    let team = stack.team("d6-comp");
    stack.sim_deployment(&team, RES, false).await;
    assert_eq!(stack.register(&team, &restart_wpk("manual")).await.status, 201);
    let (status, doc) = cell(stack, &team.operator, "P-2", "autonomous-agent").await;
    assert_eq!(status, "COMPLIANT", "{doc}");
    assert_eq!(cell(stack, &team.operator, "P-4", "api").await.0, "COMPLIANT");
    assert!(doc["score"].as_f64().unwrap() > 0.0);

    // Someone with write access to the table edits the signed document.
    let key = std::collections::HashMap::from([
        ("pk".to_owned(), AttributeValue::S(team.tenant.clone())),
        ("sk".to_owned(), AttributeValue::S("restart-unhealthy#0000000001".to_owned())),
    ]);
    let table = stack.table("WpksTable");
    let item = stack.db.get_item().table_name(&table).set_key(Some(key.clone())).send().await.unwrap();
    let original = item.item().expect("the WPK item").get("doc").unwrap().as_s().unwrap().clone();
    let tampered = original.replace("\"restart\"", "\"rollback\"");
    assert_ne!(tampered, original);
    let set = |doc: String| {
        stack
            .db
            .update_item()
            .table_name(&table)
            .set_key(Some(key.clone()))
            .update_expression("SET doc = :d")
            .expression_attribute_values(":d", AttributeValue::S(doc))
            .send()
    };
    set(tampered).await.unwrap();
    let (status, doc) = cell(stack, &team.operator, "P-2", "autonomous-agent").await;
    assert_eq!(status, "NON_COMPLIANT", "{doc}");
    let md = stack.get("/compliance?format=markdown", Some(&team.operator)).await;
    assert!(md.text.contains("| P-2 ") && md.text.contains("restart-unhealthy v1"), "{}", md.text);
    set(original).await.unwrap();
    eventually("P-2 to be compliant again", Duration::from_secs(30), || async {
        let (status, _) = cell(stack, &team.operator, "P-2", "autonomous-agent").await;
        (status == "COMPLIANT").then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn policy_learning_end_to_end() {
    let stack = std::sync::Arc::new(Stack::connect().await);
    let (a, b, c) = (stack.clone(), stack.clone(), stack.clone());
    let autonomy = tokio::spawn(async move { autonomy_from_the_audit_chain(&a).await });
    let data = tokio::spawn(async move { learns_from_cloudtrail_and_kubernetes(&b).await });
    let comp = tokio::spawn(async move { compliance_follows_a_tampered_wpk(&c).await });
    for (name, task) in [("autonomy", autonomy), ("data", data), ("compliance", comp)] {
        if let Err(e) = task.await {
            panic!("{name}: {e}");
        }
    }
}
