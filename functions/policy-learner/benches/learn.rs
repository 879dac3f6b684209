//! Records learned per second by one core, per input format: reading the lines into records
//! (parse, normalise, pseudonymise) and learning every suggestion from them (no I/O). Figures go
//! to reports/bench_D6.md.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use naksha_contracts::TenantId;
use naksha_contracts::audit::{AuditEntry, AuditRecord};
use naksha_core::privacy::PiiKey;
use naksha_policy::records::parse_lines;
use naksha_policy::suggest::learn;
use serde_json::json;

fn shared(path: &str) -> String {
    format!("{}/../../data/shared/{path}", env!("CARGO_MANIFEST_DIR"))
}

fn cloudtrail() -> String {
    let mut out = String::new();
    for e in std::fs::read_dir(shared("cloudtrail/CloudTrail")).unwrap().flatten() {
        out.push_str(std::fs::read_to_string(e.path()).unwrap().trim());
        out.push('\n');
    }
    out
}

fn k8s() -> String {
    let mut lines = Vec::new();
    for e in std::fs::read_dir(shared("k8s-audit/events")).unwrap().flatten() {
        for l in std::fs::read_to_string(e.path()).unwrap().lines() {
            if l.contains("\"Event\"") {
                lines.push(l.trim().to_owned());
            }
        }
    }
    // 35 events are too few to time alone: the same events under fresh audit ids, 30 times.
    let mut out = Vec::new();
    for i in 0..30 {
        for (j, l) in lines.iter().enumerate() {
            let mut v: serde_json::Value = serde_json::from_str(l).unwrap();
            v["auditID"] = json!(format!("bench-{i}-{j}"));
            out.push(v.to_string());
        }
    }
    out.join("\n")
}

fn naksha(tenant: &TenantId) -> String {
    let mut prev: Option<AuditRecord> = None;
    let mut lines = Vec::new();
    for i in 0..1000u32 {
        let entry = AuditEntry {
            kind: String::new(),
            run_id: format!("run-{i}"),
            wpk_id: format!("wpk-{}", i % 20),
            wpk_version: 1,
            wpk_sha256: "s".repeat(64),
            approver: ["alice", "bob", "carol"][i as usize % 3].into(),
            justification: "INC: per runbook".into(),
            standing_approval: false,
            plan_sha256: "p".repeat(64),
            before_sha256: "b".repeat(64),
            after_sha256: "a".repeat(64),
            actions: vec![json!({"target": format!("deployment/svc-{}", i % 7), "action": "restart"})],
            outcome: "succeeded".into(),
            at: format!("2026-12-01T{:02}:{:02}:00Z", (i / 60) % 24, i % 60),
            approval_sha256: "x".repeat(64),
            dry_run_passed: true,
        };
        let r = AuditRecord::seal(tenant, entry, prev.as_ref());
        lines.push(serde_json::to_string(&r).unwrap());
        prev = Some(r);
    }
    lines.join("\n")
}

fn bench(c: &mut Criterion) {
    let tenant = TenantId::from_record("acme").unwrap();
    let key = PiiKey::from_secret(b"bench");
    let pseudo = key.for_tenant("acme");
    let mut g = c.benchmark_group("learn");
    for (format, text) in [("cloudtrail", cloudtrail()), ("k8s_audit", k8s()), ("naksha_audit", naksha(&tenant))] {
        let records = parse_lines(&text, &tenant, &pseudo).records;
        assert!(!records.is_empty());
        eprintln!("{format}: {} records in {} bytes", records.len(), text.len());
        g.throughput(Throughput::Elements(records.len() as u64));
        g.bench_function(format!("{format}/read"), |b| b.iter(|| parse_lines(&text, &tenant, &pseudo)));
        g.bench_function(format!("{format}/read+learn"), |b| {
            b.iter(|| {
                let p = parse_lines(&text, &tenant, &pseudo);
                learn(&tenant, &p.records)
            })
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
