//! `GET /compliance`: where the caller's tenant stands against P-1…P-6, per service, from the
//! live system and its records (docs/policies/POLICIES.md). Each cell is `COMPLIANT`,
//! `NON_COMPLIANT` or `INSUFFICIENT_DATA` with the checks behind it; the score is AWS Config's:
//! the share of compliant (rule, resource) pairs among those that could be evaluated.
//!
//! [`observe`] gathers what the checks read; [`evaluate`] turns it into the matrix (pure, unit
//! tested).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use naksha_contracts::TenantId;
use serde::Serialize;
use serde_json::Value;

pub const SERVICES: &[&str] = &[
    "insight-stream",
    "autonomous-agent",
    "cll-trainer",
    "federation-hub",
    "chaos-orchestrator",
    "policy-learner",
    "api",
];

/// P-6: the agent decides within this long of a run being queued (p95)…
pub const SLO_DECIDE_MS: i64 = 30_000;
/// …and acts within this long of its approval (p95). docs/policies/POLICIES.md states both.
pub const SLO_ACT_MS: i64 = 60_000;

/// One thing checked.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Check {
    pub name: String,
    pub ok: bool,
    pub detail: String,
}

impl Check {
    pub fn new(name: impl Into<String>, ok: bool, detail: impl Into<String>) -> Self {
        Self { name: name.into(), ok, detail: detail.into() }
    }
}

/// What one table scan saw of the tenant's items (never their values).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct TableScan {
    pub service: String,
    pub table: String,
    pub scanned: usize,
    pub tenant_items: usize,
    pub truncated: bool,
    /// `pk/sk attribute` of values that hold an e-mail or IP address.
    pub pii: Vec<String>,
    /// `pk/sk` of items whose content names another tenant than their key (either way round).
    pub misplaced: Vec<String>,
}

/// A run's step latencies.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunLatency {
    pub run_id: String,
    pub decide_ms: Option<i64>,
    pub act_ms: Option<i64>,
}

/// Everything the checks read.
#[derive(Debug, Clone, Default)]
pub struct Observed {
    pub tables: Vec<TableScan>,
    /// P-2: each WPK version (`None`: could not be read).
    pub wpks: Option<Vec<Check>>,
    pub models: Option<Vec<Check>>,
    /// P-3: the chain verified, the number of acts, and one check per act missing something.
    pub audit: Option<(Result<usize, String>, Vec<Check>)>,
    /// P-4: `/health` and `/metrics` as the API answers them.
    pub endpoints: Option<Vec<Check>>,
    /// P-6.
    pub runs: Option<Vec<RunLatency>>,
    pub jobs: Option<Vec<Check>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[allow(non_camel_case_types)]
pub enum Status {
    COMPLIANT,
    NON_COMPLIANT,
    INSUFFICIENT_DATA,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Cell {
    pub service: String,
    pub tenant: String,
    pub status: Status,
    pub evidence: Vec<Check>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PolicyRow {
    pub id: &'static str,
    pub title: &'static str,
    pub cells: Vec<Cell>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Matrix {
    pub tenant: String,
    pub generated_at: DateTime<Utc>,
    /// Compliant pairs / evaluated pairs; `None` when nothing could be evaluated.
    pub score: Option<f64>,
    pub compliant: usize,
    pub non_compliant: usize,
    pub insufficient_data: usize,
    pub policies: Vec<PolicyRow>,
}

fn cell(tenant: &TenantId, service: &str, evidence: Vec<Check>, insufficient: bool) -> Cell {
    let status = if insufficient {
        Status::INSUFFICIENT_DATA
    } else if evidence.iter().all(|c| c.ok) {
        Status::COMPLIANT
    } else {
        Status::NON_COMPLIANT
    };
    Cell { service: service.to_owned(), tenant: tenant.as_str().to_owned(), status, evidence }
}

/// At most this many failing checks are listed in a cell (the count is always given).
const MAX_LISTED: usize = 20;

fn summarise(name: &str, total: usize, failing: Vec<Check>) -> Vec<Check> {
    let mut out = vec![Check::new(name, failing.is_empty(), format!("{} of {total} failed", failing.len()))];
    out.extend(failing.into_iter().take(MAX_LISTED));
    out
}

fn p95(mut v: Vec<i64>) -> Option<i64> {
    if v.is_empty() {
        return None;
    }
    v.sort_unstable();
    let i = ((v.len() as f64) * 0.95).ceil() as usize;
    v.get(i.saturating_sub(1)).copied()
}

fn per_service_tables(tenant: &TenantId, tables: &[TableScan], what: impl Fn(&TableScan) -> Vec<Check>) -> Vec<Cell> {
    let mut by: BTreeMap<&str, Vec<&TableScan>> = BTreeMap::new();
    for t in tables {
        by.entry(t.service.as_str()).or_default().push(t);
    }
    by.into_iter()
        .map(|(service, ts)| {
            let items: usize = ts.iter().map(|t| t.tenant_items).sum();
            let mut evidence: Vec<Check> = ts
                .iter()
                .map(|t| {
                    Check::new(
                        format!("scanned {}", t.table),
                        true,
                        format!(
                            "{} items scanned, {} of this tenant{}",
                            t.scanned,
                            t.tenant_items,
                            if t.truncated { " (scan cut at its limit)" } else { "" }
                        ),
                    )
                })
                .collect();
            for t in ts {
                evidence.extend(what(t));
            }
            cell(tenant, service, evidence, items == 0)
        })
        .collect()
}

/// The matrix from what was observed.
pub fn evaluate(tenant: &TenantId, o: &Observed, now: DateTime<Utc>) -> Matrix {
    let t = tenant;
    let p1 = per_service_tables(t, &o.tables, |s| {
        s.pii
            .iter()
            .take(MAX_LISTED)
            .map(|at| Check::new("raw personal data stored", false, format!("{}: {at}", s.table)))
            .collect()
    });
    let mut p2 = Vec::new();
    for (service, checks, what) in
        [("autonomous-agent", &o.wpks, "WPK versions verify"), ("cll-trainer", &o.models, "model versions verify")]
    {
        p2.push(match checks {
            None => cell(t, service, vec![Check::new(what, false, "could not be read")], true),
            Some(c) if c.is_empty() => cell(t, service, vec![Check::new(what, true, "none registered")], true),
            Some(c) => cell(t, service, summarise(what, c.len(), c.iter().filter(|c| !c.ok).cloned().collect()), false),
        });
    }
    let p3 = vec![match &o.audit {
        None => cell(t, "autonomous-agent", vec![Check::new("audit chain", false, "could not be read")], true),
        Some((Ok(0), _)) => cell(t, "autonomous-agent", vec![Check::new("audit chain", true, "no record yet")], true),
        Some((verified, incomplete)) => {
            let mut ev = vec![match verified {
                Ok(n) => {
                    Check::new("audit chain verifies (hashes, head, signed checkpoints)", true, format!("{n} records"))
                }
                Err(e) => Check::new("audit chain verifies (hashes, head, signed checkpoints)", false, e.clone()),
            }];
            ev.extend(
                summarise(
                    "every act names approver, justification, approval and before/after sha256",
                    incomplete.len().max(1),
                    incomplete.clone(),
                )
                .into_iter()
                .map(|mut c| {
                    if c.name.starts_with("every act") {
                        c.detail = format!("{} acts incomplete", incomplete.len());
                    }
                    c
                }),
            );
            cell(t, "autonomous-agent", ev, false)
        }
    }];
    let p4 = vec![match &o.endpoints {
        None => {
            cell(t, "api", vec![Check::new("/health and /metrics", false, "no API address configured to check")], true)
        }
        Some(c) => cell(t, "api", c.clone(), false),
    }];
    let p5 = per_service_tables(t, &o.tables, |s| {
        s.misplaced
            .iter()
            .take(MAX_LISTED)
            .map(|at| Check::new("item outside its tenant's keys", false, format!("{}: {at}", s.table)))
            .collect()
    });
    let mut p6 = Vec::new();
    p6.push(match &o.runs {
        None => {
            cell(t, "autonomous-agent", vec![Check::new("agent step latencies", false, "runs could not be read")], true)
        }
        Some(runs) => {
            let decide = p95(runs.iter().filter_map(|r| r.decide_ms).collect());
            let act = p95(runs.iter().filter_map(|r| r.act_ms).collect());
            let mut ev = Vec::new();
            if let Some(d) = decide {
                ev.push(Check::new(
                    "p95 queued → decided",
                    d <= SLO_DECIDE_MS,
                    format!(
                        "{d} ms over {} runs (SLO {SLO_DECIDE_MS} ms)",
                        runs.iter().filter(|r| r.decide_ms.is_some()).count()
                    ),
                ));
            }
            if let Some(a) = act {
                ev.push(Check::new(
                    "p95 approved → acted",
                    a <= SLO_ACT_MS,
                    format!(
                        "{a} ms over {} runs (SLO {SLO_ACT_MS} ms)",
                        runs.iter().filter(|r| r.act_ms.is_some()).count()
                    ),
                ));
            }
            let none = ev.is_empty();
            cell(t, "autonomous-agent", ev, none)
        }
    });
    p6.push(match &o.jobs {
        None => cell(
            t,
            "cll-trainer",
            vec![Check::new("long jobs asynchronous with progress", false, "jobs could not be read")],
            true,
        ),
        Some(j) if j.is_empty() => {
            cell(t, "cll-trainer", vec![Check::new("long jobs asynchronous with progress", true, "no job yet")], true)
        }
        Some(j) => cell(
            t,
            "cll-trainer",
            summarise("every job reports status and progress", j.len(), j.iter().filter(|c| !c.ok).cloned().collect()),
            false,
        ),
    });
    let policies = vec![
        PolicyRow { id: "P-1", title: "Data privacy: no raw PII stored", cells: p1 },
        PolicyRow { id: "P-2", title: "Secrets and signing: every WPK and model signature verifies", cells: p2 },
        PolicyRow {
            id: "P-3",
            title: "Execution safety: acts carry approver, justification, digests; the chain verifies",
            cells: p3,
        },
        PolicyRow { id: "P-4", title: "Observability: /health and /metrics answer", cells: p4 },
        PolicyRow { id: "P-5", title: "Multi-tenancy: no item outside its tenant's keys", cells: p5 },
        PolicyRow { id: "P-6", title: "Performance: agent SLOs; long jobs asynchronous with progress", cells: p6 },
    ];
    let all: Vec<Status> = policies.iter().flat_map(|p| p.cells.iter().map(|c| c.status)).collect();
    let compliant = all.iter().filter(|s| **s == Status::COMPLIANT).count();
    let non_compliant = all.iter().filter(|s| **s == Status::NON_COMPLIANT).count();
    let insufficient_data = all.len() - compliant - non_compliant;
    let evaluated = compliant + non_compliant;
    Matrix {
        tenant: t.as_str().to_owned(),
        generated_at: now,
        score: (evaluated > 0).then(|| ((compliant as f64 / evaluated as f64) * 1000.0).round() / 1000.0),
        compliant,
        non_compliant,
        insufficient_data,
        policies,
    }
}

/// The matrix as a Markdown table: rows P-1…P-6, columns the services.
pub fn markdown(m: &Matrix) -> String {
    let services: Vec<&str> = SERVICES
        .iter()
        .copied()
        .filter(|s| m.policies.iter().any(|p| p.cells.iter().any(|c| c.service == *s)))
        .collect();
    let mut out = format!(
        "# Compliance: tenant {}\n\nGenerated {}. Score {} ({} compliant, {} non-compliant, {} insufficient data).\n\n| policy | {} |\n|---|{}\n",
        m.tenant,
        m.generated_at.to_rfc3339(),
        m.score.map_or("n/a".to_owned(), |s| format!("{:.1} %", s * 100.0)),
        m.compliant,
        m.non_compliant,
        m.insufficient_data,
        services.join(" | "),
        "---|".repeat(services.len())
    );
    for p in &m.policies {
        let cells: Vec<String> = services
            .iter()
            .map(|s| {
                p.cells.iter().find(|c| c.service == *s).map_or("—".to_owned(), |c| {
                    let failing = c.evidence.iter().filter(|e| !e.ok).count();
                    match c.status {
                        Status::COMPLIANT => "COMPLIANT".to_owned(),
                        Status::NON_COMPLIANT => format!("**NON_COMPLIANT** ({failing})"),
                        Status::INSUFFICIENT_DATA => "INSUFFICIENT_DATA".to_owned(),
                    }
                })
            })
            .collect();
        out.push_str(&format!("| {} {} | {} |\n", p.id, p.title, cells.join(" | ")));
    }
    let failing: Vec<String> = m
        .policies
        .iter()
        .flat_map(|p| {
            p.cells.iter().flat_map(move |c| {
                c.evidence
                    .iter()
                    .filter(|e| !e.ok)
                    .map(move |e| format!("- {} / {}: {} — {}", p.id, c.service, e.name, e.detail))
            })
        })
        .collect();
    if !failing.is_empty() {
        out.push_str("\nWhat fails:\n\n");
        out.push_str(&failing.join("\n"));
        out.push('\n');
    }
    out
}

/// The tenant a stored item's content names, if it names one.
pub fn content_tenant(item: &naksha_core::ddb::Item) -> Option<String> {
    if let Some(t) = naksha_core::ddb::get_s(item, "tenant") {
        return Some(t.to_owned());
    }
    for attr in ["doc", "record", "state"] {
        if let Some(text) = naksha_core::ddb::get_s(item, attr)
            && let Ok(Value::Object(o)) = serde_json::from_str::<Value>(text)
            && let Some(Value::String(t)) = o.get("tenant")
        {
            return Some(t.clone());
        }
    }
    None
}

/// The tenant a key belongs to: everything before the first `#`.
pub fn key_tenant(pk: &str) -> &str {
    pk.split('#').next().unwrap_or(pk)
}

/// Check one scanned item for the tenant: P-1 (no e-mail or IP address in any text value) and
/// P-5 (its content names the tenant its key does).
pub fn check_item(tenant: &TenantId, item: &naksha_core::ddb::Item, scan: &mut TableScan) {
    let pk = naksha_core::ddb::get_s(item, "pk").unwrap_or_default();
    let sk = item
        .get("sk")
        .map(|v| v.as_s().map(String::as_str).unwrap_or("").to_owned())
        .or_else(|| item.get("seq").and_then(|v| v.as_n().ok()).cloned())
        .unwrap_or_default();
    let owner = key_tenant(pk);
    let named = content_tenant(item);
    let ours = owner == tenant.as_str();
    if ours {
        scan.tenant_items += 1;
        for (name, value) in item {
            if let Ok(text) = value.as_s()
                && !naksha_core::privacy::find_pii(text).is_empty()
            {
                scan.pii.push(format!("{pk} / {sk} attribute {name}"));
            }
        }
    }
    if let Some(named) = named
        && named != owner
        && (ours || named == tenant.as_str())
    {
        scan.misplaced.push(format!("{pk} / {sk} names tenant {named}"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use naksha_core::ddb::s;

    fn tenant() -> TenantId {
        TenantId::from_record("acme").unwrap_or_else(|_| unreachable!())
    }

    fn now() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-12-01T00:00:00Z").map(|t| t.with_timezone(&Utc)).unwrap_or_default()
    }

    fn status(m: &Matrix, policy: &str, service: &str) -> Option<Status> {
        m.policies.iter().find(|p| p.id == policy)?.cells.iter().find(|c| c.service == service).map(|c| c.status)
    }

    #[test]
    fn nothing_observed_is_insufficient_data_and_no_score() {
        let m = evaluate(&tenant(), &Observed::default(), now());
        assert_eq!(m.score, None);
        assert_eq!(status(&m, "P-2", "autonomous-agent"), Some(Status::INSUFFICIENT_DATA));
        assert_eq!(m.compliant + m.non_compliant, 0);
    }

    #[test]
    fn one_tampered_wpk_makes_the_cell_non_compliant_and_the_score_aws_configs() {
        let o = Observed {
            wpks: Some(vec![
                Check::new("restart v1", true, ""),
                Check::new("restart v2", false, "signature does not verify"),
            ]),
            models: Some(vec![Check::new("m1", true, "")]),
            endpoints: Some(vec![Check::new("/health", true, "200"), Check::new("/metrics", true, "200")]),
            ..Observed::default()
        };
        let m = evaluate(&tenant(), &o, now());
        assert_eq!(status(&m, "P-2", "autonomous-agent"), Some(Status::NON_COMPLIANT));
        assert_eq!(status(&m, "P-2", "cll-trainer"), Some(Status::COMPLIANT));
        assert_eq!((m.compliant, m.non_compliant), (2, 1));
        assert_eq!(m.score, Some(0.667));
        let md = markdown(&m);
        assert!(md.contains("| P-2 ") && md.contains("**NON_COMPLIANT** (2)") && md.contains("restart v2"), "{md}");
    }

    #[test]
    fn latencies_over_the_slo_fail_p6() {
        let runs = (0..20)
            .map(|i| RunLatency {
                run_id: format!("r{i}"),
                decide_ms: Some(if i < 2 { 90_000 } else { 1_000 }),
                act_ms: None,
            })
            .collect();
        let m = evaluate(&tenant(), &Observed { runs: Some(runs), ..Observed::default() }, now());
        assert_eq!(status(&m, "P-6", "autonomous-agent"), Some(Status::NON_COMPLIANT));
        let runs = (0..20)
            .map(|i| RunLatency {
                run_id: format!("r{i}"),
                decide_ms: Some(if i < 1 { 90_000 } else { 1_000 }),
                act_ms: Some(5_000),
            })
            .collect();
        let m = evaluate(&tenant(), &Observed { runs: Some(runs), ..Observed::default() }, now());
        assert_eq!(status(&m, "P-6", "autonomous-agent"), Some(Status::COMPLIANT));
    }

    #[test]
    fn items_are_checked_for_pii_and_for_their_tenant() {
        let mut scan = TableScan { service: "autonomous-agent".into(), table: "runs".into(), ..TableScan::default() };
        let ok = naksha_core::ddb::Item::from([
            ("pk".into(), s("acme#r1")),
            ("sk".into(), s("run")),
            ("tenant".into(), s("acme")),
        ]);
        let pii = naksha_core::ddb::Item::from([
            ("pk".into(), s("acme#r2")),
            ("sk".into(), s("run")),
            ("note".into(), s("call bob@example.com")),
        ]);
        let moved = naksha_core::ddb::Item::from([
            ("pk".into(), s("globex#r3")),
            ("sk".into(), s("run")),
            ("state".into(), s(r#"{"tenant":"acme"}"#)),
        ]);
        let theirs = naksha_core::ddb::Item::from([
            ("pk".into(), s("globex#r4")),
            ("sk".into(), s("run")),
            ("note".into(), s("eve@example.com")),
        ]);
        for i in [&ok, &pii, &moved, &theirs] {
            check_item(&tenant(), i, &mut scan);
        }
        assert_eq!(scan.tenant_items, 2);
        assert_eq!(scan.pii, vec!["acme#r2 / run attribute note"]);
        assert_eq!(scan.misplaced, vec!["globex#r3 / run names tenant acme"]);
        let m = evaluate(&tenant(), &Observed { tables: vec![scan], ..Observed::default() }, now());
        assert_eq!(status(&m, "P-1", "autonomous-agent"), Some(Status::NON_COMPLIANT));
        assert_eq!(status(&m, "P-5", "autonomous-agent"), Some(Status::NON_COMPLIANT));
        // The evidence names where, never the value.
        assert!(!serde_json::to_string(&m).unwrap_or_default().contains("bob@example.com"));
    }

    #[test]
    fn a_chain_that_does_not_verify_fails_p3() {
        let o = Observed { audit: Some((Err("record 3 is missing".into()), vec![])), ..Observed::default() };
        let m = evaluate(&tenant(), &o, now());
        assert_eq!(status(&m, "P-3", "autonomous-agent"), Some(Status::NON_COMPLIANT));
        let o = Observed { audit: Some((Ok(4), vec![])), ..Observed::default() };
        assert_eq!(status(&evaluate(&tenant(), &o, now()), "P-3", "autonomous-agent"), Some(Status::COMPLIANT));
    }
}
