//! Writes `data/audits/sample_audit.jsonl`: a day's mix of the three formats `POST /learn` reads,
//! built from the shared data and the system's own records (run once; the file is committed).
//!
//! - Naksha audit records of tenant `demo`, sealed as the agent seals them: a WPK approved three
//!   times by two people, and another WPK's run rejected;
//! - AWS CloudTrail: the attack simulation's notable calls and a sample of ordinary ones, one
//!   record per line, and one S3 delivery object `{"Records":[...]}` as CloudTrail writes it;
//! - Kubernetes audit events (v1 and v1beta1): the Falco trace files' 35 events.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use naksha_contracts::TenantId;
use naksha_contracts::audit::{AuditEntry, AuditRecord};
use serde_json::{Value, json};

fn shared(path: &str) -> String {
    format!("{}/../data/shared/{path}", env!("CARGO_MANIFEST_DIR"))
}

fn act(run: &str, wpk: &str, approver: &str, at: &str, kind: &str) -> AuditEntry {
    let rejected = kind == "rejection";
    AuditEntry {
        kind: kind.into(),
        run_id: run.into(),
        wpk_id: wpk.into(),
        wpk_version: 1,
        wpk_sha256: "eb91160fb8c858e9ba4a2615e11f30a7afa4e59deb0731ff3223a018c39a825d".into(),
        approver: approver.into(),
        justification: if rejected { "not during the freeze".into() } else { "INC-88: restart per runbook".into() },
        standing_approval: false,
        plan_sha256: "08e7f04483952da54a7a09a0c351d0b61f674920eeec3c563dc7513caaf195ac".into(),
        before_sha256: "b5017514b410c4b42e556afe001fb5d16d3be909eefa1a6e2a5448ad52b26f9a".into(),
        after_sha256: if rejected {
            String::new()
        } else {
            "a47e12c138bd40e659b833b96861c452d93f9f8412287ce0aa534381febcfb15".into()
        },
        actions: if rejected {
            vec![]
        } else {
            vec![
                json!({"action": "restart", "adapter": "sim", "at": at, "step": 0, "target": "deployment/api", "reused": false,
                        "result": {"action": "restart", "change": {"healthy": [false, true], "restarts": [0, 1]}, "target": "deployment/api"}}),
            ]
        },
        outcome: if rejected { "rejected".into() } else { "succeeded".into() },
        at: at.into(),
        approval_sha256: if rejected {
            String::new()
        } else {
            "43e62c4df6311732b601491134ce35ec4fddb052e3ed799ca445e5f5ee2fb901".into()
        },
        dry_run_passed: true,
    }
}

const NOTABLE: &[&str] = &[
    "StopLogging",
    "DeleteTrail",
    "PutEventSelectors",
    "DeleteFlowLogs",
    "LeaveOrganization",
    "GetPasswordData",
    "ModifySnapshotAttribute",
    "ModifyImageAttribute",
    "ModifyDBSnapshotAttribute",
    "PutBucketPolicy",
    "CreateAccessKey",
    "CreateLoginProfile",
    "AttachUserPolicy",
    "AuthorizeSecurityGroupIngress",
    "AddPermission20150331v2",
    "GetSecretValue",
    "DescribeInstanceAttribute",
    "ConsoleLogin",
    "GetCallerIdentity",
];

fn main() {
    let mut lines: Vec<String> = Vec::new();
    let tenant = TenantId::from_record("demo").unwrap();
    let mut prev: Option<AuditRecord> = None;
    for (run, wpk, who, at, kind) in [
        ("01a2a000-0001-7000-8000-000000000001", "restart-unhealthy", "bob", "2026-12-03T08:14:05.120Z", ""),
        ("01a2a000-0002-7000-8000-000000000002", "restart-unhealthy", "carol", "2026-12-03T11:02:44.907Z", ""),
        (
            "01a2a000-0003-7000-8000-000000000003",
            "scale-up-on-saturation",
            "carol",
            "2026-12-03T13:40:10.311Z",
            "rejection",
        ),
        ("01a2a000-0004-7000-8000-000000000004", "restart-unhealthy", "bob", "2026-12-03T16:51:30.052Z", ""),
    ] {
        let r = AuditRecord::seal(&tenant, act(run, wpk, who, at, kind), prev.as_ref());
        lines.push(serde_json::to_string(&r).unwrap());
        prev = Some(r);
    }
    let mut files: Vec<_> =
        std::fs::read_dir(shared("cloudtrail/CloudTrail")).unwrap().flatten().map(|e| e.path()).collect();
    files.sort();
    let mut records: Vec<Value> = Vec::new();
    let mut smallest: Option<String> = None;
    for f in &files {
        let text = std::fs::read_to_string(f).unwrap();
        if smallest.as_ref().is_none_or(|s| text.len() < s.len()) {
            smallest = Some(text.trim().to_owned());
        }
        let doc: Value = serde_json::from_str(&text).unwrap();
        records.extend(doc["Records"].as_array().unwrap().iter().cloned());
    }
    records.sort_by(|a, b| {
        (a["eventTime"].as_str(), a["eventID"].as_str()).cmp(&(b["eventTime"].as_str(), b["eventID"].as_str()))
    });
    let smallest = smallest.unwrap();
    let in_smallest: Vec<String> = serde_json::from_str::<Value>(&smallest).unwrap()["Records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["eventID"].as_str().unwrap().to_owned())
        .collect();
    for (i, r) in records.iter().enumerate() {
        let name = r["eventName"].as_str().unwrap_or_default();
        let notable = NOTABLE.contains(&name)
            || r.get("errorCode").is_some_and(|e| e.as_str().unwrap_or("").contains("AccessDenied"));
        if (notable || i % 25 == 0) && !in_smallest.contains(&r["eventID"].as_str().unwrap().to_owned()) {
            lines.push(r.to_string());
        }
    }
    lines.push(smallest);
    let mut events: Vec<_> =
        std::fs::read_dir(shared("k8s-audit/events")).unwrap().flatten().map(|e| e.path()).collect();
    events.sort();
    for f in events {
        for line in std::fs::read_to_string(f).unwrap().lines().filter(|l| !l.trim().is_empty()) {
            if serde_json::from_str::<Value>(line).is_ok_and(|v| v["kind"] == "Event") {
                lines.push(line.trim().to_owned());
            }
        }
    }
    let out = format!("{}/../data/audits/sample_audit.jsonl", env!("CARGO_MANIFEST_DIR"));
    std::fs::create_dir_all(format!("{}/../data/audits", env!("CARGO_MANIFEST_DIR"))).unwrap();
    let body = lines.join("\n") + "\n";
    assert!(body.len() < 1 << 20, "the sample must fit one request");
    std::fs::write(&out, &body).unwrap();
    println!("wrote {out}: {} lines, {} bytes", lines.len(), body.len());
}
