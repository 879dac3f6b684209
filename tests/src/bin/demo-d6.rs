//! `make demo` (D.6): the policy learner on the running stack. Real agent runs approved by two
//! people become a promotion that is advanced to enforcement (the next run acts alone); the
//! shared CloudTrail and Kubernetes audit data become least-privilege documents and risk
//! findings; the seed's sample is posted as the README shows it; the compliance matrix before
//! and after a WPK is tampered with in its table. Writes `reports/D.6_policy_learning.md`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::fmt::Write as _;

use aws_sdk_dynamodb::types::AttributeValue;
use naksha_contracts::TenantId;
use naksha_core::privacy::PiiKey;
use naksha_e2e::{Stack, Team, test_summary_for};
use naksha_policy::records::parse_lines;
use naksha_policy::risk::{RULES, findings};
use serde_json::{Value, json};

const RES: &str = "deployment/api";

fn shared(path: &str) -> String {
    format!("{}/../data/shared/{path}", env!("CARGO_MANIFEST_DIR"))
}

fn wpk() -> Value {
    json!({
        "id": "restart-unhealthy", "version": 1, "title": "Restart an unhealthy deployment",
        "match": {"signals": ["deployment_unhealthy"], "resources": ["deployment/*"]},
        "safety": {"mode": "auto", "dry_run": true},
        "steps": [{"adapter": "sim", "action": "restart"}],
        "verify": {"healthy": true},
        "limits": {"blast_radius": 1, "max_runs_per_hour": 20}
    })
}

fn person(stack: &Stack, team: &Team, sub: &str, roles: &[&str]) -> String {
    stack.key.token(&team.tenant, sub, roles, 1800).unwrap()
}

async fn run_once(stack: &Stack, team: &Team, approver: Option<&str>) -> Value {
    stack.sim_deployment(team, RES, false).await;
    let run = stack.start_run(team, "deployment_unhealthy", RES).await;
    if let Some(who) = approver {
        let waiting = stack.run_until(team, &run, &["awaiting_approval"]).await;
        let token = person(stack, team, who, &["approver"]);
        let body = json!({"justification": "INC-88: restart per runbook", "plan_sha256": waiting["plan"]["sha256"]});
        assert_eq!(stack.post_json(&format!("/agent/runs/{run}/approve"), Some(&token), &body).await.status, 202);
    }
    stack.run_until(team, &run, &["succeeded", "failed", "awaiting_approval"]).await
}

fn batches(dir: &str) -> Vec<String> {
    let mut files: Vec<_> = std::fs::read_dir(shared(dir)).unwrap().flatten().map(|e| e.path()).collect();
    files.sort();
    let mut out = vec![String::new()];
    for f in files {
        let text = std::fs::read_to_string(f).unwrap();
        if out.last().unwrap().len() + text.len() > 1_000_000 {
            out.push(String::new());
        }
        out.last_mut().unwrap().push_str(text.trim());
        out.last_mut().unwrap().push('\n');
    }
    out
}

fn pretty(v: &Value) -> String {
    serde_json::to_string_pretty(v).unwrap()
}

#[tokio::main]
async fn main() {
    let stack = Stack::connect().await;
    let mut md = String::from("# D.6 policy learning\n\n");
    let _ = writeln!(
        md,
        "Written by `make demo` (`tests/src/bin/demo-d6.rs`) on {} against the local stack (moto, `cargo lambda watch`). \
         Every figure below comes from the API's answers in this run; the method is in `docs/policies/policy_learning.md`.\n",
        chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ")
    );

    // ------------------------------------------------------------------ 1. autonomy
    let team = stack.team("d6demo");
    stack.sim_deployment(&team, RES, false).await;
    assert_eq!(stack.register(&team, &wpk()).await.status, 201);
    let mut waits = Vec::new();
    for who in ["bob", "carol", "bob"] {
        let done = run_once(&stack, &team, Some(who)).await;
        assert_eq!(done["status"], "succeeded", "{done}");
        waits.push(who);
    }
    let (status, night) = stack
        .invoke("policy-nightly", &json!({"detail-type": "Scheduled Event", "source": "aws.events", "detail": {}}))
        .await;
    assert_eq!(status, 200, "{night}");
    let list = stack.get("/policies/suggestions?kind=autonomy", Some(&team.admin)).await.json();
    let promo = list["suggestions"][0].clone();
    assert_eq!(promo["rule"], "promote", "{list}");
    let id = promo["id"].as_str().unwrap().to_owned();
    let dana = person(&stack, &team, "dana", &["admin", "approver"]);
    let mut steps = Vec::new();
    for (who, why) in [
        (&team.admin, "dry-run for a day"),
        (&team.admin, "warn for a week"),
        (&dana, "three clean approvals by two people"),
    ] {
        let r = stack
            .post_json(&format!("/policies/suggestions/{id}/advance"), Some(who), &json!({"justification": why}))
            .await;
        assert_eq!(r.status, 200, "{}", r.text);
        steps.push(r.json()["state"].as_str().unwrap().to_owned());
    }
    let after = run_once(&stack, &team, None).await;
    assert_eq!(after["status"], "succeeded", "{after}");
    let audit = stack.get("/agent/audit?verify=true", Some(&team.operator)).await.json();
    let policy_records: Vec<String> = audit["records"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["kind"] == "policy")
        .map(|r| {
            format!(
                "seq {}: {} by {} — \"{}\"",
                r["seq"],
                r["outcome"].as_str().unwrap(),
                r["approver"].as_str().unwrap(),
                r["justification"].as_str().unwrap()
            )
        })
        .collect();
    let _ = writeln!(
        md,
        "## 1. Autonomy: learned from the agent's own audit chain\n\n\
         Three real runs of `restart-unhealthy` (an `auto` WPK without a standing approval) each waited for a person \
         and were approved by {} — then the nightly job (`policy-nightly`, invoked as its schedule would) learned from \
         the tenant's chain without anyone posting it:\n\n> {}\n\n```json\n{}\n```\n\n\
         Evidence: `{}` ({} records, window {} → {}; complete: {}, confidence {}).\n\n\
         Advanced one step at a time: {} (the last by `dana`, who holds admin and approver: enforcing signs a standing \
         approval in her name through the agent's promote path; an admin without approver gets 403). The next run then \
         acted with no one waiting: status `{}`, `approval.standing` = {}. The chain verifies (`verified: {}`) and holds each step:\n\n{}\n",
        waits.join(", "),
        promo["title"].as_str().unwrap(),
        pretty(&promo["policy"]),
        promo["evidence"]["record_ids"],
        promo["evidence"]["count"],
        promo["evidence"]["window"]["from"].as_str().unwrap_or_default(),
        promo["evidence"]["window"]["to"].as_str().unwrap_or_default(),
        promo["complete"],
        promo["confidence"],
        steps.join(" → "),
        after["status"].as_str().unwrap(),
        after["approval"]["standing"],
        audit["verified"],
        policy_records.iter().map(|r| format!("- {r}")).collect::<Vec<_>>().join("\n"),
    );

    // ------------------------------------------------------------------ 2. CloudTrail and Kubernetes
    let data = stack.team("d6demo-data");
    let mut ingested = 0;
    let mut seconds = 0.0;
    let ct = batches("cloudtrail/CloudTrail");
    for b in &ct {
        let t0 = std::time::Instant::now();
        let r = stack.post("/learn", Some(&data.admin), b.clone()).await;
        seconds += t0.elapsed().as_secs_f64();
        assert_eq!(r.status, 200, "{}", r.text);
        ingested += r.json()["ingested"].as_u64().unwrap();
    }
    let k8s_text: String = {
        let mut files: Vec<_> =
            std::fs::read_dir(shared("k8s-audit/events")).unwrap().flatten().map(|e| e.path()).collect();
        files.sort();
        files.iter().map(|f| std::fs::read_to_string(f).unwrap().trim().to_owned()).collect::<Vec<_>>().join("\n")
    };
    let k8s = stack.post("/learn?skip_invalid=true", Some(&data.admin), k8s_text.clone()).await.json();
    let all = stack.get("/policies/suggestions", Some(&data.operator)).await.json()["suggestions"]
        .as_array()
        .unwrap()
        .clone();
    let by_kind = |k: &str| all.iter().filter(|s| s["kind"] == k).cloned().collect::<Vec<_>>();
    let lp = by_kind("least_privilege");
    let risks = by_kind("risk");
    let _ = writeln!(
        md,
        "## 2. CloudTrail and Kubernetes audit (the shared data, kept in `data/shared/`)\n\n\
         The 55 CloudTrail delivery objects went in {} requests under 1 MiB ({} records stored, {:.1} s in all on the local stack); \
         the 31 Falco trace files in one request with `?skip_invalid=true` ({} events stored, skipped: {}). \
         The tenant now has {} least-privilege suggestions and {} risk findings.\n",
        ct.len(),
        ingested,
        seconds,
        k8s["ingested"],
        k8s["skipped"],
        lp.len(),
        risks.len()
    );
    let _ = writeln!(
        md,
        "### Least privilege\n\n| subject | kind | actions / rules | records | complete | confidence |\n|---|---|---|---|---|---|"
    );
    for s in &lp {
        let n = s["policy"]["x-naksha"]["actions_used"]
            .as_u64()
            .unwrap_or_else(|| s["policy"]["rules"].as_array().map_or(0, |r| r.len() as u64));
        let _ = writeln!(
            md,
            "| `{}` | {} | {} | {} | {} | {} |",
            s["subject"].as_str().unwrap(),
            if s["rule"] == "iam_policy" { "IAM policy" } else { s["policy"]["kind"].as_str().unwrap_or("RBAC") },
            n,
            s["evidence"]["count"],
            s["complete"],
            s["confidence"]
        );
    }
    let show = |rule: &str, end: &str| {
        all.iter().find(|s| s["rule"] == rule && s["subject"].as_str().unwrap().ends_with(end)).cloned()
    };
    if let Some(s) = show("iam_policy", "role/stratus-red-team-ec2-get-password-data-role") {
        let _ = writeln!(
            md,
            "\nThe suggested IAM policy of `{}` ({}):\n\n```json\n{}\n```",
            s["subject"].as_str().unwrap(),
            s["title"].as_str().unwrap(),
            pretty(&s["policy"])
        );
    }
    if let Some(s) = show("rbac_role", "replicaset-controller") {
        let _ = writeln!(
            md,
            "\nThe suggested RBAC role of `{}`:\n\n```json\n{}\n```",
            s["subject"].as_str().unwrap(),
            pretty(&s["policy"])
        );
    }
    let _ =
        writeln!(md, "\n### Risk findings\n\n| rule | severity | subject | records (first ids) |\n|---|---|---|---|");
    for s in &risks {
        let ids: Vec<&str> =
            s["evidence"]["record_ids"].as_array().unwrap().iter().take(3).map(|v| v.as_str().unwrap()).collect();
        let _ = writeln!(
            md,
            "| `{}` | {} | `{}` | {} ({}) |",
            s["rule"].as_str().unwrap(),
            s["policy"]["severity"].as_str().unwrap_or_default(),
            s["subject"].as_str().unwrap(),
            s["evidence"]["count"],
            ids.join(", ")
        );
    }

    // What the rules find of what is there: each Falco trace file on its own.
    let key = PiiKey::from_secret(b"demo");
    let t = TenantId::from_record("demo").unwrap();
    let mut files: Vec<_> =
        std::fs::read_dir(shared("k8s-audit/events")).unwrap().flatten().map(|e| e.path()).collect();
    files.sort();
    let _ = writeln!(
        md,
        "\n### Coverage: each Falco trace file alone\n\nThe file names say what Falco's test meant the scenario to be. \
         \"risky\" is my reading of each scenario (a Falco warning-level rule); the rest are ordinary changes, on which a finding is a false alarm.\n\n\
         | file | risky? | rules that fired |\n|---|---|---|"
    );
    let risky_files = [
        "attach_cluster_admin_role",
        "attach_pod",
        "create_cluster_role_wildcard_verbs",
        "create_configmap_sensitive_values",
        "create_nginx_pod_hostnetwork",
        "create_nginx_pod_privileged",
        "create_nginx_pod_sensitive_mount",
        "create_nginx_service_nodeport",
        "create_pod_kube_system_namespace",
        "create_serviceaccount_kube_system_namespace",
        "exec_pod",
        "modify_cluster_role_node_problem_detector",
        "some-user_creates_namespace_foo",
    ];
    let (mut found, mut risky_total, mut false_alarms) = (0, 0, 0);
    for f in &files {
        let name = f.file_stem().unwrap().to_string_lossy().to_string();
        let p = parse_lines(&std::fs::read_to_string(f).unwrap(), &t, &key.for_tenant("demo"));
        let fired: Vec<&str> = findings(&p.records).into_iter().map(|x| x.rule).collect();
        let risky = risky_files.contains(&name.as_str());
        if risky {
            risky_total += 1;
            if !fired.is_empty() {
                found += 1;
            }
        } else if !fired.is_empty() {
            false_alarms += 1;
        }
        let _ = writeln!(
            md,
            "| `{name}` | {} | {} |",
            if risky { "yes" } else { "no" },
            if fired.is_empty() { "—".into() } else { fired.join(", ") }
        );
    }
    let _ = writeln!(
        md,
        "\n**Kubernetes: {found} of {risky_total} risky scenarios found, {false_alarms} false alarms on the {} ordinary ones.** \
         Missed: `some-user_creates_namespace_foo` (Falco's \"disallowed user\" rule needs a list of allowed users; no rule here knows one).\n",
        files.len() - risky_total
    );
    let behaviours: [(&str, &str, &[&str]); 10] = [
        (
            "CloudTrail stopped, deleted or narrowed (StopLogging, DeleteTrail, PutEventSelectors)",
            "aws.logging_disabled",
            &["StopLogging", "DeleteTrail", "PutEventSelectors"],
        ),
        ("VPC flow logs removed", "aws.logging_disabled", &["DeleteFlowLogs"]),
        ("EC2 password data read in a burst (ec2-get-password-data)", "aws.secret_read_burst", &["GetPasswordData"]),
        ("Secrets Manager secrets read in a burst", "aws.secret_read_burst", &["GetSecretValue"]),
        (
            "Instance credentials used from outside the instance (ec2-steal-credentials)",
            "aws.credentials_elsewhere",
            &[],
        ),
        ("Instance user data read in a burst (ec2-get-user-data)", "aws.user_data", &["DescribeInstanceAttribute"]),
        (
            "Snapshot, AMI or DB snapshot shared with another account",
            "aws.shared_externally",
            &["ModifySnapshotAttribute", "ModifyImageAttribute", "ModifyDBSnapshotAttribute"],
        ),
        (
            "Access keys or a console password made for another user, admin policy attached",
            "aws.iam_persistence",
            &["CreateAccessKey", "CreateLoginProfile", "AttachUserPolicy"],
        ),
        ("The account tried to leave its organisation", "aws.leave_organization", &["LeaveOrganization"]),
        ("AccessDenied bursts (enumeration from a stolen role)", "aws.access_denied_burst", &[]),
    ];
    // The same rules over the whole CloudTrail data, read here with the learner's own code, so each
    // behaviour's records can be counted by the calls that make it.
    let mut ct_records = Vec::new();
    for b in &ct {
        ct_records.extend(parse_lines(b, &t, &key.for_tenant("demo")).records);
    }
    let ct_findings = findings(&ct_records);
    let action_of: BTreeMap<&str, &str> = ct_records.iter().map(|r| (r.id.as_str(), r.action.as_str())).collect();
    let _ = writeln!(
        md,
        "### Coverage: CloudTrail attack behaviours\n\n| behaviour in the data | rule | found | records |\n|---|---|---|---|"
    );
    let mut aws_found = 0;
    for (what, rule, calls) in behaviours {
        let n = ct_findings
            .iter()
            .filter(|f| f.rule == rule)
            .flat_map(|f| f.record_ids.iter())
            .filter(|id| {
                calls.is_empty()
                    || calls.iter().any(|c| action_of.get(id.as_str()).is_some_and(|a| a.ends_with(&format!(":{c}"))))
            })
            .count();
        if n > 0 {
            aws_found += 1;
        }
        let _ = writeln!(md, "| {what} | `{rule}` | {} | {n} |", if n > 0 { "yes" } else { "no" });
    }
    let _ = writeln!(
        md,
        "\n**CloudTrail: {aws_found} of {} attack behaviours found.** {} rules in all (listed in `docs/policies/policy_learning.md`).\n",
        behaviours.len(),
        RULES.len()
    );

    // ------------------------------------------------------------------ 3. the seed's curl
    let demo_admin = stack.key.token("demo", "root", &["admin"], 600).unwrap();
    let sample = std::fs::read_to_string("data/audits/sample_audit.jsonl").unwrap();
    let r = stack.post("/learn", Some(&demo_admin), sample.clone()).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let doc = r.json();
    let counts: BTreeMap<String, usize> =
        doc["suggestions"].as_array().unwrap().iter().fold(BTreeMap::new(), |mut m, s| {
            *m.entry(s["kind"].as_str().unwrap().to_owned()).or_default() += 1;
            m
        });
    let _ = writeln!(
        md,
        "## 3. The seed's verification\n\n```\n$ curl -X POST http://127.0.0.1:9000/learn -H \"authorization: Bearer $(make -s token TENANT=demo SUB=root ROLES=admin)\" \\\n    --data-binary @data/audits/sample_audit.jsonl\n```\n\n\
         200: `ingested` {}, `duplicates` {}, `by_format` {}, suggestions by kind {:?}. (On a stack where the sample was posted before, \
         everything is a duplicate and nothing changes.) Its Naksha records are not in tenant `demo`'s chain on this stack, so they \
         are stored as unverified and count towards no promotion.\n",
        doc["ingested"], doc["duplicates"], doc["by_format"], counts
    );

    // ------------------------------------------------------------------ 4. compliance
    let before = stack.get("/compliance?format=markdown", Some(&team.operator)).await.text;
    let key = std::collections::HashMap::from([
        ("pk".to_owned(), AttributeValue::S(team.tenant.clone())),
        ("sk".to_owned(), AttributeValue::S("restart-unhealthy#0000000001".to_owned())),
    ]);
    let table = stack.table("WpksTable");
    let item = stack.db.get_item().table_name(&table).set_key(Some(key.clone())).send().await.unwrap();
    let original = item.item().unwrap()["doc"].as_s().unwrap().clone();
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
    set(original.replace("\"restart\"", "\"rollback\"")).await.unwrap();
    let tampered = stack.get("/compliance?format=markdown", Some(&team.operator)).await.text;
    set(original).await.unwrap();
    let fixed = stack.get("/compliance", Some(&team.operator)).await.json();
    // The operations report (reports/index.html) draws this matrix.
    std::fs::create_dir_all("reports/data").unwrap();
    std::fs::write("reports/data/compliance.json", serde_json::to_string_pretty(&fixed).unwrap() + "\n").unwrap();
    let demote =
        |s: &str| s.replace("\n# Compliance", "\n#### Compliance").replacen("# Compliance", "#### Compliance", 1);
    let _ = writeln!(
        md,
        "## 4. Compliance matrix (`GET /compliance?format=markdown`, tenant of section 1)\n\n{}\n\
         Then someone with write access to the WPK table changed the signed document (`restart` → `rollback`):\n\n{}\n\
         Restored, the score is back to {} with P-2 `{}`.\n",
        demote(&before),
        demote(&tampered),
        fixed["score"],
        fixed["policies"][1]["cells"][0]["status"].as_str().unwrap_or_default()
    );

    let d6 = |name: &str| name.contains("naksha_policy") || name.contains("d6_") || name.contains("policy_check");
    let (rows, passed, failed) =
        test_summary_for(&std::fs::read_to_string("reports/logs/tests.log").unwrap_or_default(), d6);
    let _ = writeln!(
        md,
        "## 5. Tests (`reports/logs/tests.log`: the policy crate and the D.6 end-to-end binaries)\n\n**{passed} passed, {failed} failed.**\n\n| test binary | passed | failed |\n|---|---|---|\n{rows}\n\
         ## BLOCKED / not done here\n\n\
         - **Enforcing least-privilege and risk suggestions** records the decision (audited) and reports what it would block; \
           applying the IAM policy or RBAC role to an account or cluster is left to the operator (no AWS account or cluster here).\n\
         - **The held-back Falco scenarios and CloudTrail events** were not seen; the rules describe behaviour, not these files."
    );
    std::fs::write("reports/D.6_policy_learning.md", md).unwrap();
    println!("wrote reports/D.6_policy_learning.md");
}
