//! Every policy route refuses bad input clearly and writes nothing: malformed and unknown lines,
//! a record of another tenant's chain, oversized bodies, no token, wrong roles, another tenant's
//! suggestion (404), advancing or rejecting where the lifecycle does not allow it (409). Each is
//! compared against a snapshot of what the learner could change (its table, the audit chain,
//! the WPKs).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;

use aws_sdk_dynamodb::types::AttributeValue;
use naksha_e2e::{Snapshot, Stack, canonical};
use serde_json::{Value, json};

/// what, method, path, token, body, expected status.
type Case<'a> = (&'a str, &'a str, String, Option<&'a str>, String, u16);

/// The partitions a policy request of either tenant could write: its records and suggestions,
/// its audit chain (head, records, checkpoints) and its WPKs. (Queried, not scanned: other
/// tests fill these tables with thousands of items.)
async fn policy_state(stack: &Stack, tenants: &[&str]) -> Snapshot {
    let mut tables = BTreeMap::new();
    for (logical, suffixes) in
        [("PoliciesTable", &["", "#rec"][..]), ("AuditTable", &["", "#checkpoint"][..]), ("WpksTable", &[""][..])]
    {
        let table = stack.table(logical);
        let mut items = Vec::new();
        for t in tenants {
            for suffix in suffixes {
                let q = stack
                    .db
                    .query()
                    .table_name(&table)
                    .key_condition_expression("pk = :pk")
                    .expression_attribute_values(":pk", AttributeValue::S(format!("{t}{suffix}")));
                let pages: Vec<_> = q.into_paginator().items().send().collect::<Vec<_>>().await;
                items.extend(pages.into_iter().map(|i| canonical(&i.unwrap())));
            }
        }
        items.sort();
        tables.insert(table, items);
    }
    Snapshot { tables, stream: Vec::new() }
}

const EXEC: &str = r#"{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"Request","auditID":"d6-bad-exec-1","stage":"ResponseStarted","requestURI":"/api/v1/namespaces/default/pods/web/exec","verb":"create","user":{"username":"alice"},"objectRef":{"resource":"pods","subresource":"exec","namespace":"default","name":"web"},"responseStatus":{"code":101},"requestReceivedTimestamp":"2026-11-30T10:00:00Z"}"#;

#[tokio::test]
async fn every_bad_policy_request_is_refused_clearly_and_writes_nothing() {
    let stack = Stack::connect().await;
    let team = stack.team("bad6");
    let other = stack.team("bad6-other");
    // A suggestion in each tenant, and a rejected one in ours.
    for t in [&team, &other] {
        let r = stack.post("/learn", Some(&t.admin), EXEC.to_owned()).await;
        assert_eq!(r.status, 200, "{}", r.text);
    }
    let ours = stack.get("/policies/suggestions", Some(&team.admin)).await.json()["suggestions"].clone();
    let theirs = stack.get("/policies/suggestions", Some(&other.admin)).await.json()["suggestions"].clone();
    let ours: Vec<String> = ours.as_array().unwrap().iter().map(|s| s["id"].as_str().unwrap().to_owned()).collect();
    let their_id = theirs[0]["id"].as_str().unwrap().to_owned();
    assert_eq!(ours.len(), 2, "an exec finding and alice's role: {ours:?}");
    let (rejected, live) = (ours[0].clone(), ours[1].clone());
    let r = stack
        .post_json(
            &format!("/policies/suggestions/{rejected}/reject"),
            Some(&team.admin),
            &json!({"justification": "known"}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);

    // A record of the other tenant's chain, as its GET /agent/audit would show it.
    let foreign_record = json!({
        "tenant": other.tenant, "seq": 1, "run_id": "r", "wpk_id": "w", "wpk_version": 1, "wpk_sha256": "", "approver": "bob",
        "justification": "x", "standing_approval": false, "plan_sha256": "", "before_sha256": "", "after_sha256": "",
        "actions": [], "outcome": "succeeded", "at": "2026-11-30T10:00:00Z", "prev_hash": "0", "hash": "0"
    });
    let ad = Some(team.admin.as_str());
    let op = Some(team.operator.as_str());
    let ap = Some(team.approver.as_str());
    let send = |v: Value| v.to_string();
    let huge = format!("{EXEC}\n{}", " ".repeat(1 << 20));
    let why = send(json!({"justification": "because"}));
    let sugg = |id: &str, verb: &str| format!("/policies/suggestions/{id}/{verb}");
    let cases: Vec<Case<'_>> = vec![
        ("learn: no token", "POST", "/learn".into(), None, EXEC.into(), 401),
        ("learn: an operator", "POST", "/learn".into(), op, EXEC.into(), 403),
        ("learn: an approver", "POST", "/learn".into(), ap, EXEC.into(), 403),
        (
            "learn: a line that is not JSON",
            "POST",
            "/learn".into(),
            ad,
            format!("{EXEC}\n{{\"verb\": ").replace("d6-bad-exec-1", "n1"),
            400,
        ),
        ("learn: an unknown format", "POST", "/learn".into(), ad, send(json!({"hello": "world"})), 400),
        ("learn: Falco's invalid record", "POST", "/learn".into(), ad, "{\"kind\": 0}".into(), 400),
        (
            "learn: a CloudTrail record without eventTime",
            "POST",
            "/learn".into(),
            ad,
            send(
                json!({"eventID": "e1", "eventSource": "s3.amazonaws.com", "eventName": "GetObject", "userIdentity": {"type": "IAMUser", "arn": "a"}}),
            ),
            400,
        ),
        (
            "learn: Records that is no array",
            "POST",
            "/learn".into(),
            ad,
            send(json!({"Records": {"eventID": "e"}})),
            400,
        ),
        (
            "learn: an audit Event of another API",
            "POST",
            "/learn".into(),
            ad,
            EXEC.replace("audit.k8s.io/v1", "example.com/v1").replace("d6-bad-exec-1", "n2"),
            400,
        ),
        ("learn: another tenant's Naksha record", "POST", "/learn".into(), ad, send(foreign_record), 400),
        ("learn: only blank lines", "POST", "/learn".into(), ad, "\n\n  \n".into(), 400),
        ("learn: not UTF-8", "POST", "/learn".into(), ad, String::from_utf8_lossy(&[0xff, 0xfe]).into_owned(), 400),
        (
            "learn: skip_invalid not a flag",
            "POST",
            "/learn?skip_invalid=perhaps".into(),
            ad,
            EXEC.replace("d6-bad-exec-1", "n3"),
            400,
        ),
        ("learn: oversized", "POST", "/learn".into(), ad, huge, 413),
        ("list: no token", "GET", "/policies/suggestions".into(), None, String::new(), 401),
        ("list: an unknown kind", "GET", "/policies/suggestions?kind=everything".into(), op, String::new(), 400),
        ("get: another tenant's", "GET", format!("/policies/suggestions/{their_id}"), op, String::new(), 404),
        ("get: an id that is no id", "GET", "/policies/suggestions/..%2Fetc".into(), op, String::new(), 404),
        ("advance: no token", "POST", sugg(&live, "advance"), None, why.clone(), 401),
        ("advance: an operator", "POST", sugg(&live, "advance"), op, why.clone(), 403),
        ("advance: an approver who is no admin", "POST", sugg(&live, "advance"), ap, why.clone(), 403),
        ("advance: another tenant's", "POST", sugg(&their_id, "advance"), ad, why.clone(), 404),
        ("advance: no justification", "POST", sugg(&live, "advance"), ad, "{}".into(), 400),
        (
            "advance: an unknown field",
            "POST",
            sugg(&live, "advance"),
            ad,
            send(json!({"justification": "x", "to": "enforced"})),
            400,
        ),
        ("advance: not JSON", "POST", sugg(&live, "advance"), ad, "{\"justification\":".into(), 400),
        ("advance: a rejected suggestion", "POST", sugg(&rejected, "advance"), ad, why.clone(), 409),
        ("reject: a rejected suggestion", "POST", sugg(&rejected, "reject"), ad, why.clone(), 409),
        ("reject: another tenant's", "POST", sugg(&their_id, "reject"), ad, why.clone(), 404),
        ("reject: an operator", "POST", sugg(&live, "reject"), op, why.clone(), 403),
        (
            "reject: oversized",
            "POST",
            sugg(&live, "reject"),
            ad,
            send(json!({"justification": "y".repeat(1 << 20)})),
            413,
        ),
        ("compliance: no token", "GET", "/compliance".into(), None, String::new(), 401),
        ("compliance: an unknown format", "GET", "/compliance?format=pdf".into(), op, String::new(), 400),
    ];
    let tenants = [team.tenant.as_str(), other.tenant.as_str()];
    let baseline = policy_state(&stack, &tenants).await;
    for (what, method, path, token, body, status) in cases {
        let r = stack.send_raw(method, &path, token, "application/json", body).await;
        let problem = r.assert_problem(status);
        if what.starts_with("learn: a line that is not JSON") {
            assert_eq!(problem["errors"][0]["pointer"], "/line/2", "{what}: names the line: {problem}");
        }
        let now = policy_state(&stack, &tenants).await;
        assert!(now == baseline, "{what} changed stored state:\n{}", baseline.diff(&now));
    }
    // The other tenant's suggestion is as it was.
    let theirs = stack.get(&format!("/policies/suggestions/{their_id}"), Some(&other.operator)).await.json();
    assert_eq!(theirs["state"], "suggested");
}
