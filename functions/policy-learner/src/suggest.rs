//! From records to suggestions, in the shape of IAM Access Analyzer's generated policies: a
//! template to refine, the evidence window it was learned from, and whether that evidence is
//! complete. Three kinds: `autonomy` (promote a WPK to `auto` with a standing approval, or demote
//! one), `least_privilege` (an IAM policy or an RBAC role of what a principal used), `risk`
//! (behaviour to block, [`crate::risk`]).
//!
//! Ids are a digest of (tenant, kind, subject, rule), so learning again updates the same
//! suggestion and never resets where its lifecycle stands.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Duration, Utc};
use naksha_contracts::TenantId;
use naksha_contracts::signing::sha256_hex;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::records::{Format, Record};
use crate::risk::{self, Finding};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Autonomy,
    LeastPrivilege,
    Risk,
}

/// `suggested → dryrun → warn → enforced`, or `rejected` from any but `enforced`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    Suggested,
    Dryrun,
    Warn,
    Enforced,
    Rejected,
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            State::Suggested => "suggested",
            State::Dryrun => "dryrun",
            State::Warn => "warn",
            State::Enforced => "enforced",
            State::Rejected => "rejected",
        }
    }

    /// The state an advance moves to, if any.
    pub fn next(self) -> Option<State> {
        match self {
            State::Suggested => Some(State::Dryrun),
            State::Dryrun => Some(State::Warn),
            State::Warn => Some(State::Enforced),
            State::Enforced | State::Rejected => None,
        }
    }

    pub fn can_reject(self) -> bool {
        matches!(self, State::Suggested | State::Dryrun | State::Warn)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Window {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
}

/// The most record ids a suggestion lists (`count` is always the full number).
pub const MAX_RECORD_IDS: usize = 1000;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Evidence {
    pub window: Window,
    pub count: usize,
    pub record_ids: Vec<String>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub record_ids_truncated: bool,
}

impl Evidence {
    fn of(records: &[&Record]) -> Option<Self> {
        let from = records.iter().map(|r| r.at).min()?;
        let to = records.iter().map(|r| r.at).max()?;
        let mut ids: Vec<String> = records.iter().map(|r| r.id.clone()).collect();
        ids.sort();
        ids.dedup();
        let count = ids.len();
        let truncated = ids.len() > MAX_RECORD_IDS;
        ids.truncate(MAX_RECORD_IDS);
        Some(Self { window: Window { from, to }, count, record_ids: ids, record_ids_truncated: truncated })
    }
}

/// One change of state, as the audit chain records it too.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Transition {
    pub from: State,
    pub to: State,
    pub by: String,
    pub justification: String,
    pub at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audit_seq: Option<u64>,
}

/// What the learners produce; stored with its lifecycle as a [`Suggestion`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Draft {
    pub id: String,
    pub kind: Kind,
    /// `promote`, `demote`, `iam_policy`, `rbac_role`, or the risk rule's id.
    pub rule: String,
    pub subject: String,
    pub title: String,
    pub policy: Value,
    pub evidence: Evidence,
    pub complete: bool,
    pub confidence: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Suggestion {
    #[serde(flatten)]
    pub draft: Draft,
    pub state: State,
    pub state_since: DateTime<Utc>,
    #[serde(default)]
    pub history: Vec<Transition>,
    pub tenant: TenantId,
}

impl Suggestion {
    pub fn new(tenant: &TenantId, draft: Draft, now: DateTime<Utc>) -> Self {
        Self { draft, state: State::Suggested, state_since: now, history: Vec::new(), tenant: tenant.clone() }
    }

    /// Learning again: fresh evidence always; a new policy only while nobody has advanced it
    /// (what an admin moved towards enforcement does not change under them).
    pub fn refresh(&mut self, draft: Draft) {
        if self.state == State::Suggested {
            self.draft = draft;
        } else {
            self.draft.evidence = draft.evidence;
            self.draft.complete = draft.complete;
            self.draft.confidence = draft.confidence;
        }
    }
}

pub fn suggestion_id(tenant: &TenantId, kind: Kind, subject: &str, rule: &str) -> String {
    let kind = serde_json::to_value(kind).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default();
    let digest = sha256_hex(format!("{}\u{1f}{kind}\u{1f}{subject}\u{1f}{rule}", tenant.as_str()).as_bytes());
    format!("sg-{}", &digest[..20])
}

/// Promotion needs this many human approvals of the WPK's acts…
pub const MIN_APPROVALS: usize = 3;
/// …by at least this many different people.
pub const MIN_APPROVERS: usize = 2;

/// Every suggestion the records support.
pub fn learn(tenant: &TenantId, records: &[Record]) -> Vec<Draft> {
    let mut out = autonomy(tenant, records);
    out.extend(least_privilege_aws(tenant, records));
    out.extend(least_privilege_k8s(tenant, records));
    out.extend(risks(tenant, records));
    out.sort_by(|a, b| (a.kind, &a.subject, &a.rule).cmp(&(b.kind, &b.subject, &b.rule)));
    out
}

// ------------------------------------------------------------------------------- autonomy

fn autonomy(tenant: &TenantId, records: &[Record]) -> Vec<Draft> {
    let mut by_wpk: BTreeMap<String, Vec<&Record>> = BTreeMap::new();
    // Only records the tenant's own chain holds count (posted copies it does not are unverified).
    for r in records.iter().filter(|r| r.format == Format::NakshaAudit && !r.fact_bool("unverified")) {
        let wpk = r.fact_str("wpk_id");
        if !wpk.is_empty() && matches!(r.action.as_str(), "act" | "rejection") {
            by_wpk.entry(wpk.to_owned()).or_default().push(r);
        }
    }
    let mut out = Vec::new();
    for (wpk, rs) in by_wpk {
        let version = |r: &Record| r.facts.get("wpk_version").and_then(Value::as_u64).unwrap_or(0);
        let latest = rs.iter().map(|r| version(r)).max().unwrap_or(0);
        let acts: Vec<&Record> = rs.iter().copied().filter(|r| r.action == "act").collect();
        let rejections: Vec<&Record> = rs.iter().copied().filter(|r| r.action == "rejection").collect();
        let approved: Vec<&Record> = acts.iter().copied().filter(|r| !r.fact_bool("standing")).collect();
        let standing: Vec<&Record> = acts.iter().copied().filter(|r| r.fact_bool("standing")).collect();
        let approvers: BTreeSet<&str> = approved.iter().map(|r| r.principal.as_str()).collect();
        let failed: Vec<&Record> = acts.iter().copied().filter(|r| r.failed()).collect();
        let undry: Vec<&Record> = acts.iter().copied().filter(|r| !r.fact_bool("dry_run_passed")).collect();
        let blast = acts.iter().map(|r| r.fact_strings("targets").len()).max().unwrap_or(1).max(1);
        let per_hour = {
            let mut hours: BTreeMap<i64, usize> = BTreeMap::new();
            for r in &acts {
                *hours.entry(r.at.timestamp() / 3600).or_default() += 1;
            }
            hours.values().copied().max().unwrap_or(1)
        };
        let subject = format!("wpk/{wpk}");
        // Demote: an auto WPK acting on its standing approval failed or was rolled back.
        let standing_failed: Vec<&Record> = standing.iter().copied().filter(|r| r.failed()).collect();
        if !standing_failed.is_empty() {
            let mut evidence: Vec<&Record> = standing.clone();
            evidence.extend(rejections.iter().copied());
            if let Some(ev) = Evidence::of(&evidence) {
                let v = standing_failed.iter().map(|r| version(r)).max().unwrap_or(latest);
                out.push(Draft {
                    id: suggestion_id(tenant, Kind::Autonomy, &subject, "demote"),
                    kind: Kind::Autonomy,
                    rule: "demote".into(),
                    subject: subject.clone(),
                    title: format!(
                        "{wpk} v{v} acted on its standing approval {} times and {} of those runs failed or were rolled back: withdraw the standing approval (back to a person per run)",
                        standing.len(),
                        standing_failed.len()
                    ),
                    policy: json!({"action": "demote", "wpk_id": wpk, "version": v, "mode": "manual", "standing_approval": false}),
                    evidence: ev,
                    complete: true,
                    confidence: (standing_failed.len() as f64 / standing.len().max(1) as f64).clamp(0.5, 1.0),
                });
            }
            continue;
        }
        let promotable = approved.len() >= MIN_APPROVALS
            && approvers.len() >= MIN_APPROVERS
            && rejections.is_empty()
            && failed.is_empty()
            && undry.is_empty()
            && standing.iter().all(|r| version(r) != latest);
        if !promotable {
            continue;
        }
        let Some(ev) = Evidence::of(&acts) else { continue };
        let approvers_list: Vec<&str> = approvers.iter().copied().collect();
        out.push(Draft {
            id: suggestion_id(tenant, Kind::Autonomy, &subject, "promote"),
            kind: Kind::Autonomy,
            rule: "promote".into(),
            subject,
            title: format!(
                "{wpk} was approved {} times by {} people with no rejection, every dry-run and every verify passed: make v{latest} auto with a standing approval",
                approved.len(),
                approvers.len()
            ),
            policy: json!({
                "action": "promote", "wpk_id": wpk, "version": latest, "mode": "auto", "standing_approval": true,
                "limits": {"blast_radius": blast, "runs_per_hour": per_hour},
                "learned_from": {"approvals": approved.len(), "approvers": approvers_list, "rejections": 0, "failed": 0, "dry_runs_passed": acts.len()},
            }),
            evidence: ev,
            complete: true,
            confidence: (1.0 - 1.0 / (approved.len() as f64)).clamp(0.0, 0.99),
        });
    }
    out
}

// ------------------------------------------------------------------------------- least privilege

fn aws_principal(r: &Record) -> bool {
    // Service-linked roles are AWS's to define, not ours to narrow.
    r.format == Format::Cloudtrail
        && matches!(r.principal_kind.as_str(), "iam_user" | "assumed_role" | "root" | "other")
        && !r.principal.is_empty()
        && !r.principal.contains(":role/aws-service-role/")
}

fn least_privilege_aws(tenant: &TenantId, records: &[Record]) -> Vec<Draft> {
    let mut by: BTreeMap<&str, Vec<&Record>> = BTreeMap::new();
    for r in records.iter().filter(|r| aws_principal(r)) {
        by.entry(r.principal.as_str()).or_default().push(r);
    }
    let mut out = Vec::new();
    for (who, rs) in by {
        // Action → resources; "*" where a record named none.
        let mut used: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        let mut unconfirmed: BTreeSet<String> = BTreeSet::new();
        for r in &rs {
            if r.failed() {
                unconfirmed.insert(r.action.clone());
                continue;
            }
            let res = used.entry(r.action.clone()).or_default();
            if r.resources.is_empty() {
                res.insert("*".into());
            } else {
                res.extend(r.resources.iter().cloned());
            }
        }
        // An action that only ever failed is not granted: it may have been denied for a reason.
        let unconfirmed: Vec<String> = unconfirmed.into_iter().filter(|a| !used.contains_key(a)).collect();
        let mut statements: BTreeMap<Vec<String>, Vec<String>> = BTreeMap::new();
        for (action, res) in &used {
            let res: Vec<String> = if res.contains("*") { vec!["*".into()] } else { res.iter().cloned().collect() };
            statements.entry(res).or_default().push(action.clone());
        }
        let statement: Vec<Value> = statements
            .into_iter()
            .enumerate()
            .map(|(i, (res, actions))| {
                json!({"Sid": format!("Used{i}"), "Effect": "Allow", "Action": actions,
                       "Resource": if res.len() == 1 { json!(res[0]) } else { json!(res) }})
            })
            .collect();
        let Some(ev) = Evidence::of(&rs) else { continue };
        let complete = unconfirmed.is_empty() && rs.iter().all(|r| !r.failed());
        let placeholders = used.values().filter(|r| r.contains("*")).count();
        out.push(Draft {
            id: suggestion_id(tenant, Kind::LeastPrivilege, who, "iam_policy"),
            kind: Kind::LeastPrivilege,
            rule: "iam_policy".into(),
            subject: who.to_owned(),
            title: if used.is_empty() {
                format!(
                    "{who}: every one of its {} calls failed ({}): grant nothing until someone says it needs them",
                    rs.len(),
                    unconfirmed.join(", ")
                )
            } else {
                format!(
                    "{who} used {} actions in {} records: grant those and nothing else{}",
                    used.len(),
                    rs.len(),
                    if complete { String::new() } else { format!(" ({} actions only failed; review them)", unconfirmed.len()) }
                )
            },
            policy: json!({
                "Version": "2012-10-17", "Statement": statement,
                "x-naksha": {"actions_used": used.len(), "resource_placeholders": placeholders, "unconfirmed_actions": unconfirmed},
            }),
            evidence: ev,
            complete,
            confidence: confidence_of(rs.len(), complete),
        });
    }
    out
}

fn confidence_of(records: usize, complete: bool) -> f64 {
    let base = 1.0 - (-(records as f64) / 50.0).exp();
    ((if complete { base } else { base * 0.7 }) * 100.0).round() / 100.0
}

fn k8s_principal(r: &Record) -> bool {
    r.format == Format::K8sAudit && matches!(r.principal_kind.as_str(), "user" | "service_account")
}

fn least_privilege_k8s(tenant: &TenantId, records: &[Record]) -> Vec<Draft> {
    let mut by: BTreeMap<&str, Vec<&Record>> = BTreeMap::new();
    for r in records.iter().filter(|r| k8s_principal(r)) {
        by.entry(r.principal.as_str()).or_default().push(r);
    }
    let mut out = Vec::new();
    for (who, rs) in by {
        let mut rules: BTreeMap<(String, String), BTreeSet<String>> = BTreeMap::new();
        let mut non_resource: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        let mut namespaces: BTreeSet<&str> = BTreeSet::new();
        let mut failed = 0;
        for r in &rs {
            if r.failed() {
                failed += 1;
                continue;
            }
            let res = r.fact_str("resource");
            let verb = r.fact_str("verb").to_owned();
            if res.starts_with('/') {
                non_resource.entry(res.to_owned()).or_default().insert(verb);
                continue;
            }
            namespaces.insert(r.namespace.as_str());
            rules.entry((r.fact_str("api_group").to_owned(), res.to_owned())).or_default().insert(verb);
        }
        // One namespace and no cluster-scoped or non-resource use: a Role; otherwise a ClusterRole.
        let namespaced = namespaces.len() == 1 && !namespaces.contains("") && non_resource.is_empty();
        let mut rule_docs: Vec<Value> = rules
            .iter()
            .map(|((group, res), verbs)| json!({"apiGroups": [group], "resources": [res], "verbs": verbs}))
            .collect();
        rule_docs.extend(non_resource.iter().map(|(url, verbs)| json!({"nonResourceURLs": [url], "verbs": verbs})));
        let name = format!("naksha-least-privilege-{}", dns_label(who));
        let mut metadata = json!({"name": name, "annotations": {"naksha.io/learned-for": who}});
        if namespaced {
            metadata["namespace"] = json!(namespaces.iter().next().copied().unwrap_or_default());
        }
        let Some(ev) = Evidence::of(&rs) else { continue };
        let complete = failed == 0;
        out.push(Draft {
            id: suggestion_id(tenant, Kind::LeastPrivilege, who, "rbac_role"),
            kind: Kind::LeastPrivilege,
            rule: "rbac_role".into(),
            subject: who.to_owned(),
            title: format!("{who} used {} verb-resource pairs: bind it to this {} instead", rules.values().map(BTreeSet::len).sum::<usize>() + non_resource.len(), if namespaced { "Role" } else { "ClusterRole" }),
            policy: json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": if namespaced { "Role" } else { "ClusterRole" },
                           "metadata": metadata, "rules": rule_docs}),
            evidence: ev,
            complete,
            confidence: confidence_of(rs.len(), complete),
        });
    }
    out
}

/// A DNS-1123 label from any principal name.
fn dns_label(s: &str) -> String {
    let mut out: String =
        s.chars().map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_lowercase() } else { '-' }).collect();
    out.truncate(40);
    out.trim_matches('-').to_owned()
}

// ------------------------------------------------------------------------------- risk

fn risks(tenant: &TenantId, records: &[Record]) -> Vec<Draft> {
    let by_id: BTreeMap<&str, &Record> = records.iter().map(|r| (r.id.as_str(), r)).collect();
    risk::findings(records)
        .into_iter()
        .filter_map(|f: Finding| {
            let rule = risk::rule(f.rule)?;
            let rs: Vec<&Record> = f.record_ids.iter().filter_map(|id| by_id.get(id.as_str()).copied()).collect();
            let ev = Evidence::of(&rs)?;
            let attempts = rs.iter().filter(|r| r.failed()).count();
            Some(Draft {
                id: suggestion_id(tenant, Kind::Risk, &f.subject, f.rule),
                kind: Kind::Risk,
                rule: f.rule.to_owned(),
                subject: f.subject.clone(),
                title: format!("{}: {} ({} records{})", f.subject, rule.title, rs.len(), if attempts > 0 { format!(", {attempts} of them failed attempts") } else { String::new() }),
                policy: json!({"rule": rule.id, "severity": rule.severity, "enforce": rule.enforce, "subject": f.subject}),
                evidence: ev,
                complete: true,
                confidence: match rule.severity { "high" => 0.9, "medium" => 0.7, _ => 0.5 },
            })
        })
        .collect()
}

/// What enforcing would have blocked among `records` seen since the suggestion entered its
/// state: least privilege, actions outside the policy; risk, new records matching the rule;
/// autonomy, the runs a person approved that the standing approval would have let act alone.
pub fn would_block(s: &Suggestion, records: &[Record]) -> Vec<String> {
    let since = s.state_since - Duration::zero();
    let recent: Vec<&Record> = records.iter().filter(|r| r.at >= since).collect();
    let d = &s.draft;
    match (d.kind, d.rule.as_str()) {
        (Kind::LeastPrivilege, "iam_policy") => {
            let allowed: BTreeSet<String> = d.policy["Statement"]
                .as_array()
                .into_iter()
                .flatten()
                .flat_map(|st| st["Action"].as_array().cloned().unwrap_or_default())
                .filter_map(|a| a.as_str().map(str::to_owned))
                .collect();
            recent
                .iter()
                .filter(|r| r.principal == d.subject && r.format == Format::Cloudtrail && !allowed.contains(&r.action))
                .map(|r| r.id.clone())
                .collect()
        }
        (Kind::LeastPrivilege, _) => {
            let allowed: BTreeSet<(String, String)> = d.policy["rules"]
                .as_array()
                .into_iter()
                .flatten()
                .flat_map(|rule| {
                    let res = rule["resources"]
                        .get(0)
                        .or(rule["nonResourceURLs"].get(0))
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_owned();
                    rule["verbs"]
                        .as_array()
                        .cloned()
                        .unwrap_or_default()
                        .into_iter()
                        .filter_map(move |v| v.as_str().map(|v| (res.clone(), v.to_owned())))
                })
                .collect();
            recent
                .iter()
                .filter(|r| r.principal == d.subject && r.format == Format::K8sAudit)
                .filter(|r| !allowed.contains(&(r.fact_str("resource").to_owned(), r.fact_str("verb").to_owned())))
                .map(|r| r.id.clone())
                .collect()
        }
        (Kind::Risk, rule) => {
            let owned: Vec<Record> = recent.iter().map(|r| (*r).clone()).collect();
            risk::findings(&owned)
                .into_iter()
                .filter(|f| f.rule == rule && f.subject == d.subject)
                .flat_map(|f| f.record_ids)
                .collect()
        }
        (Kind::Autonomy, "promote") => recent
            .iter()
            .filter(|r| {
                r.action == "act"
                    && !r.fact_bool("standing")
                    && r.fact_str("wpk_id") == d.policy["wpk_id"].as_str().unwrap_or_default()
            })
            .map(|r| r.id.clone())
            .collect(),
        (Kind::Autonomy, _) => recent
            .iter()
            .filter(|r| {
                r.action == "act"
                    && r.fact_bool("standing")
                    && r.fact_str("wpk_id") == d.policy["wpk_id"].as_str().unwrap_or_default()
            })
            .map(|r| r.id.clone())
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::records::from_chain;
    use naksha_contracts::audit::{AuditEntry, AuditRecord};

    fn tenant() -> TenantId {
        TenantId::from_record("acme").unwrap_or_else(|_| unreachable!())
    }

    fn act(seq: u64, wpk: &str, approver: &str, standing: bool, outcome: &str, dry: bool, kind: &str) -> Record {
        let entry = AuditEntry {
            kind: kind.into(),
            run_id: format!("run-{seq}"),
            wpk_id: wpk.into(),
            wpk_version: 2,
            wpk_sha256: "s".into(),
            approver: approver.into(),
            justification: "ok".into(),
            standing_approval: standing,
            plan_sha256: "p".into(),
            before_sha256: "b".into(),
            after_sha256: "a".into(),
            actions: vec![json!({"target": "deployment/api"})],
            outcome: outcome.into(),
            at: format!("2026-01-01T{:02}:00:00Z", seq % 24),
            approval_sha256: "x".into(),
            dry_run_passed: dry,
        };
        let mut r = AuditRecord::seal(&tenant(), entry, None);
        r.seq = seq;
        from_chain(&r).unwrap_or_else(|| unreachable!())
    }

    fn promotions(records: &[Record]) -> Vec<Draft> {
        learn(&tenant(), records).into_iter().filter(|d| d.kind == Kind::Autonomy).collect()
    }

    #[test]
    fn three_approvals_by_two_people_all_passing_suggest_auto() {
        let rs = vec![
            act(1, "restart", "alice", false, "succeeded", true, ""),
            act(2, "restart", "bob", false, "succeeded", true, ""),
            act(3, "restart", "alice", false, "succeeded", true, ""),
        ];
        let p = promotions(&rs);
        assert_eq!(p.len(), 1);
        assert_eq!(p[0].rule, "promote");
        assert_eq!(p[0].policy["version"], 2);
        assert_eq!(p[0].policy["limits"]["blast_radius"], 1);
        assert_eq!(p[0].evidence.record_ids, vec!["naksha-audit/1", "naksha-audit/2", "naksha-audit/3"]);
    }

    #[test]
    fn no_promotion_with_one_approver_a_rejection_a_failure_or_no_dry_run() {
        let base = |a: &str, b: &str| {
            vec![
                act(1, "w", a, false, "succeeded", true, ""),
                act(2, "w", b, false, "succeeded", true, ""),
                act(3, "w", a, false, "succeeded", true, ""),
            ]
        };
        assert!(promotions(&base("alice", "alice")).is_empty());
        let mut rejected = base("alice", "bob");
        rejected.push(act(4, "w", "carol", false, "rejected", true, "rejection"));
        assert!(promotions(&rejected).is_empty());
        let mut failed = base("alice", "bob");
        failed.push(act(4, "w", "bob", false, "failed", true, ""));
        assert!(promotions(&failed).is_empty());
        let mut undry = base("alice", "bob");
        undry.push(act(4, "w", "bob", false, "succeeded", false, ""));
        assert!(promotions(&undry).is_empty());
        assert!(promotions(&base("alice", "bob")[..2]).is_empty());
    }

    #[test]
    fn a_standing_approval_that_failed_suggests_demotion() {
        let rs =
            vec![act(1, "w", "alice", true, "succeeded", true, ""), act(2, "w", "alice", true, "failed", true, "")];
        let p = promotions(&rs);
        assert_eq!(p.len(), 1);
        assert_eq!(p[0].rule, "demote");
        assert_eq!(p[0].policy["mode"], "manual");
    }

    #[test]
    fn the_id_is_stable_and_tenant_bound() {
        let a = suggestion_id(&tenant(), Kind::Risk, "alice", "k8s.exec_attach");
        assert_eq!(a, suggestion_id(&tenant(), Kind::Risk, "alice", "k8s.exec_attach"));
        let other = TenantId::from_record("globex").unwrap_or_else(|_| unreachable!());
        assert_ne!(a, suggestion_id(&other, Kind::Risk, "alice", "k8s.exec_attach"));
    }

    fn cloudtrail_records() -> Vec<Record> {
        let key = naksha_core::privacy::PiiKey::from_secret(b"t");
        let dir = format!("{}/../../data/shared/cloudtrail/CloudTrail", env!("CARGO_MANIFEST_DIR"));
        let mut out = Vec::new();
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let text = std::fs::read_to_string(entry.path()).unwrap_or_default();
            out.extend(crate::records::parse_lines(&text, &tenant(), &key.for_tenant("acme")).records);
        }
        out
    }

    #[test]
    fn least_privilege_from_cloudtrail_lists_what_was_used_and_flags_errors() {
        let rs = cloudtrail_records();
        let drafts = learn(&tenant(), &rs);
        let bert = drafts
            .iter()
            .find(|d| d.rule == "iam_policy" && d.subject.ends_with(":user/bert-jan"))
            .unwrap_or_else(|| unreachable!("no policy for bert-jan"));
        let actions: Vec<String> = bert.policy["Statement"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|s| s["Action"].as_array().cloned().unwrap_or_default())
            .filter_map(|a| a.as_str().map(str::to_owned))
            .collect();
        assert!(actions.contains(&"kms:Decrypt".to_owned()));
        assert!(!bert.complete, "bert-jan has errored records");
        assert_eq!(bert.evidence.count, rs.iter().filter(|r| r.principal == bert.subject).count());
        let role = drafts.iter().find(|d| {
            d.rule == "iam_policy" && d.subject.contains(":role/stratus-red-team-ec2-get-password-data-role")
        });
        assert!(role.is_some(), "assumed-role sessions are learned as their role");
        // Service principals and service-linked roles are not ours to restrict; every policy names its principal.
        assert!(!drafts.iter().any(|d| d.rule == "iam_policy" && d.subject.ends_with(".amazonaws.com")));
        assert!(
            !drafts
                .iter()
                .any(|d| d.rule == "iam_policy" && (d.subject.is_empty() || d.subject.contains("aws-service-role")))
        );
        assert_eq!(bert.evidence.count, 2642, "every record of bert-jan, the console sign-in included");
    }

    #[test]
    fn rbac_role_from_kubernetes_audit() {
        let key = naksha_core::privacy::PiiKey::from_secret(b"t");
        let lines = [
            r#"{"kind":"Event","apiVersion":"audit.k8s.io/v1","auditID":"a1","verb":"get","user":{"username":"system:serviceaccount:shop:api"},"objectRef":{"resource":"configmaps","namespace":"shop"},"responseStatus":{"code":200},"requestReceivedTimestamp":"2026-01-01T00:00:00Z"}"#,
            r#"{"kind":"Event","apiVersion":"audit.k8s.io/v1","auditID":"a2","verb":"list","user":{"username":"system:serviceaccount:shop:api"},"objectRef":{"resource":"pods","namespace":"shop"},"responseStatus":{"code":200},"requestReceivedTimestamp":"2026-01-01T00:01:00Z"}"#,
        ];
        let rs = crate::records::parse_lines(&lines.join("\n"), &tenant(), &key.for_tenant("acme")).records;
        let d = learn(&tenant(), &rs);
        let role = d.iter().find(|d| d.rule == "rbac_role").unwrap_or_else(|| unreachable!());
        assert_eq!(role.policy["kind"], "Role");
        assert_eq!(role.policy["metadata"]["namespace"], "shop");
        assert_eq!(role.policy["rules"].as_array().map(Vec::len), Some(2));
        assert!(role.complete);
    }

    #[test]
    fn lifecycle_moves_one_step_at_a_time() {
        assert_eq!(State::Suggested.next(), Some(State::Dryrun));
        assert_eq!(State::Dryrun.next(), Some(State::Warn));
        assert_eq!(State::Warn.next(), Some(State::Enforced));
        assert_eq!(State::Enforced.next(), None);
        assert_eq!(State::Rejected.next(), None);
        assert!(!State::Rejected.can_reject() && !State::Enforced.can_reject() && State::Warn.can_reject());
    }

    #[test]
    fn an_advanced_suggestion_keeps_its_policy_when_learned_again() {
        let rs = cloudtrail_records();
        let d = learn(&tenant(), &rs).into_iter().find(|d| d.rule == "iam_policy").unwrap_or_else(|| unreachable!());
        let mut s = Suggestion::new(&tenant(), d.clone(), Utc::now());
        s.state = State::Warn;
        let mut changed = d;
        changed.policy = json!({"other": true});
        changed.evidence.count += 1;
        s.refresh(changed);
        assert_ne!(s.draft.policy, json!({"other": true}));
        assert_eq!(s.draft.evidence.count, rs.iter().filter(|r| r.principal == s.draft.subject).count() + 1);
    }

    #[test]
    fn would_block_names_actions_outside_the_learned_policy() {
        let rs = cloudtrail_records();
        let d = learn(&tenant(), &rs[..rs.len() / 2])
            .into_iter()
            .find(|d| d.rule == "iam_policy" && d.subject.ends_with("bert-jan"))
            .unwrap_or_else(|| unreachable!());
        let s = Suggestion::new(&tenant(), d, DateTime::<Utc>::MIN_UTC);
        let blocked = would_block(&s, &rs);
        assert!(!blocked.is_empty());
        let by_id: BTreeMap<&str, &Record> = rs.iter().map(|r| (r.id.as_str(), r)).collect();
        let allowed: BTreeSet<String> = s.draft.policy["Statement"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|st| st["Action"].as_array().cloned().unwrap_or_default())
            .filter_map(|a| a.as_str().map(str::to_owned))
            .collect();
        for id in blocked {
            assert!(!allowed.contains(&by_id[id.as_str()].action));
        }
    }
}
