//! The use cases: learn from posted lines (`POST /learn`) or from the tenant's own audit chain
//! (the nightly job), and move a suggestion along its lifecycle.
//!
//! Learning is idempotent by record: a record already stored is not stored again, and a
//! suggestion whose content did not change is not written again.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;

use chrono::{DateTime, Utc};
use naksha_agent::ports::AuditLog;
use naksha_contracts::TenantId;
use naksha_contracts::audit::AuditEntry;
use naksha_core::privacy::PiiKey;
use serde::Serialize;
use serde_json::{Value, json};

use crate::ports::{Policies, StoreError, record_key};
use crate::records::{BadLine, Format, Record, from_chain, parse_lines};
use crate::suggest::{self, Kind, State, Suggestion, Transition};

#[derive(Debug, Serialize)]
pub struct Learned {
    /// Records stored for the first time.
    pub ingested: usize,
    /// Records seen before (re-posted), not stored again.
    pub duplicates: usize,
    pub by_format: BTreeMap<&'static str, usize>,
    pub skipped: Vec<BadLine>,
    /// Every suggestion the tenant's records support now.
    pub suggestions: Vec<Suggestion>,
    /// How many suggestions were new or changed by this learning.
    pub changed: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum LearnError {
    #[error("{} line(s) could not be read", .0.len())]
    Invalid(Vec<BadLine>),
    #[error("the body holds no records")]
    Empty,
    #[error("{0}")]
    Unavailable(String),
}

impl From<StoreError> for LearnError {
    fn from(e: StoreError) -> Self {
        LearnError::Unavailable(e.0)
    }
}

/// `POST /learn`: read, check (Naksha records must be in the tenant's stored chain), then learn.
pub async fn learn_lines<P: Policies, A: AuditLog>(
    store: &P,
    chain: &A,
    pii: &PiiKey,
    tenant: &TenantId,
    text: &str,
    skip_invalid: bool,
    now: DateTime<Utc>,
) -> Result<Learned, LearnError> {
    let mut parsed = parse_lines(text, tenant, &pii.for_tenant(tenant.as_str()));
    if !parsed.chain.is_empty() {
        // A posted Naksha record counts only if it is the record the chain holds at its seq:
        // approvals are evidence, not claims.
        // A record the chain does not hold (exported from elsewhere, or made up) is kept apart,
        // marked unverified, and never counts towards autonomy.
        let stored = chain.records(tenant).await.map_err(|e| LearnError::Unavailable(e.to_string()))?;
        let hashes: BTreeMap<u64, &str> = stored.iter().map(|r| (r.seq, r.hash.as_str())).collect();
        let unverified: BTreeMap<String, String> = parsed
            .chain
            .iter()
            .filter(|(_, r)| hashes.get(&r.seq) != Some(&r.hash.as_str()))
            .map(|(_, r)| (format!("naksha-audit/{}", r.seq), r.hash.clone()))
            .collect();
        for r in parsed.records.iter_mut().filter(|r| r.format == Format::NakshaAudit) {
            if let Some(hash) = unverified.get(&r.id) {
                r.id = format!("naksha-audit/unverified/{}", &hash[..hash.len().min(16)]);
                r.facts.insert("unverified".into(), json!(true));
            }
        }
    }
    parsed.bad.sort_by_key(|b| b.line);
    if !parsed.bad.is_empty() && !skip_invalid {
        return Err(LearnError::Invalid(parsed.bad));
    }
    if parsed.records.is_empty() {
        return if parsed.bad.is_empty() { Err(LearnError::Empty) } else { Err(LearnError::Invalid(parsed.bad)) };
    }
    let mut out = learn_records(store, tenant, parsed.records, now).await?;
    out.skipped = parsed.bad;
    Ok(out)
}

/// Store the new records and bring the tenant's suggestions up to date.
pub async fn learn_records<P: Policies>(
    store: &P,
    tenant: &TenantId,
    mut records: Vec<Record>,
    now: DateTime<Utc>,
) -> Result<Learned, LearnError> {
    let mut seen = BTreeSet::new();
    records.retain(|r| seen.insert(record_key(r)));
    let mut by_format: BTreeMap<&'static str, usize> = BTreeMap::new();
    for r in &records {
        *by_format.entry(r.format.as_str()).or_default() += 1;
    }
    let keys: Vec<String> = records.iter().map(record_key).collect();
    let existing = store.existing(tenant, &keys).await?;
    let fresh: Vec<Record> = records.into_iter().filter(|r| !existing.contains(&record_key(r))).collect();
    if !fresh.is_empty() {
        store.put_records(tenant, &fresh).await?;
    }
    let all = store.records(tenant).await?;
    let drafts = suggest::learn(tenant, &all);
    let current: BTreeMap<String, Suggestion> =
        store.suggestions(tenant).await?.into_iter().map(|s| (s.draft.id.clone(), s)).collect();
    let mut changed = 0;
    let mut out = Vec::with_capacity(drafts.len());
    for draft in drafts {
        let (next, seen) = match current.get(&draft.id) {
            Some(s) => {
                let mut next = s.clone();
                next.refresh(draft);
                (next, Some(s.state))
            }
            None => (Suggestion::new(tenant, draft, now), None),
        };
        let unchanged = seen.is_some() && current.get(&next.draft.id) == Some(&next);
        if !unchanged && store.save(&next, seen).await? {
            changed += 1;
        }
        out.push(next);
    }
    Ok(Learned {
        ingested: fresh.len(),
        duplicates: existing.len(),
        by_format,
        skipped: Vec::new(),
        suggestions: out,
        changed,
    })
}

/// The nightly job for one tenant: its own audit chain, without anyone posting it.
pub async fn learn_from_chain<P: Policies, A: AuditLog>(
    store: &P,
    chain: &A,
    tenant: &TenantId,
    now: DateTime<Utc>,
) -> Result<Learned, LearnError> {
    let records: Vec<Record> = chain
        .records(tenant)
        .await
        .map_err(|e| LearnError::Unavailable(e.to_string()))?
        .iter()
        .filter_map(from_chain)
        .collect();
    learn_records(store, tenant, records, now).await
}

// ------------------------------------------------------------------------------- lifecycle

/// What enforcing an autonomy suggestion does, through the agent's own paths.
pub trait Autonomy: Send + Sync {
    /// A signed standing approval of an `auto` WPK version, in `approver`'s name.
    fn promote(
        &self,
        tenant: &TenantId,
        approver: &str,
        wpk_id: &str,
        version: u32,
        justification: &str,
    ) -> impl Future<Output = Result<String, ChangeError>> + Send;
    /// Withdraw a version's standing approval.
    fn demote(
        &self,
        tenant: &TenantId,
        wpk_id: &str,
        version: u32,
    ) -> impl Future<Output = Result<(), ChangeError>> + Send;
}

#[derive(Debug, thiserror::Error)]
pub enum ChangeError {
    #[error("no suggestion with that id")]
    NotFound,
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    Unavailable(String),
    /// The agent refused (its problem, passed on as it is).
    #[error("{}", .0.body())]
    Agent(naksha_core::problem::Problem),
}

/// Who moves a suggestion, and why.
#[derive(Debug, Clone)]
pub struct Decision {
    pub by: String,
    pub justification: String,
    /// The caller also holds `approver` (enforcing a promotion makes a standing approval).
    pub approver: bool,
}

/// Advance one step (`to: None`) or reject (`to: Some(Rejected)`). The step is recorded in the
/// audit chain before the suggestion changes; enforcing an autonomy suggestion first performs it
/// through the agent's promote path.
#[allow(clippy::too_many_arguments)]
pub async fn change<P: Policies, A: AuditLog, U: Autonomy>(
    store: &P,
    chain: &A,
    autonomy: &U,
    tenant: &TenantId,
    id: &str,
    reject: bool,
    d: &Decision,
    now: DateTime<Utc>,
) -> Result<Suggestion, ChangeError> {
    let s =
        store.suggestion(tenant, id).await.map_err(|e| ChangeError::Unavailable(e.0))?.ok_or(ChangeError::NotFound)?;
    let to = if reject {
        if !s.state.can_reject() {
            return Err(ChangeError::Conflict(format!("a suggestion that is {} cannot be rejected", s.state.as_str())));
        }
        State::Rejected
    } else {
        s.state
            .next()
            .ok_or_else(|| ChangeError::Conflict(format!("a suggestion that is {} cannot advance", s.state.as_str())))?
    };
    let mut effect = Value::Null;
    if to == State::Enforced && s.draft.kind == Kind::Autonomy {
        let wpk = s.draft.policy["wpk_id"].as_str().unwrap_or_default().to_owned();
        let version = s.draft.policy["version"].as_u64().and_then(|v| u32::try_from(v).ok()).unwrap_or(0);
        if s.draft.rule == "promote" {
            if !d.approver {
                return Err(ChangeError::Forbidden(
                    "enforcing a promotion records a standing approval in your name: it needs the approver role too"
                        .into(),
                ));
            }
            let sha = autonomy.promote(tenant, &d.by, &wpk, version, &d.justification).await?;
            effect = json!({"standing_approval_sha256": sha, "wpk_id": wpk, "version": version});
        } else {
            autonomy.demote(tenant, &wpk, version).await?;
            effect = json!({"standing_approval_withdrawn": true, "wpk_id": wpk, "version": version});
        }
    }
    let entry = AuditEntry {
        kind: "policy".into(),
        run_id: format!("policy-{}-{}-{}", s.draft.id, s.history.len() + 1, to.as_str()),
        wpk_id: if s.draft.kind == Kind::Autonomy {
            s.draft.policy["wpk_id"].as_str().unwrap_or_default().to_owned()
        } else {
            String::new()
        },
        wpk_version: 0,
        wpk_sha256: String::new(),
        approver: d.by.clone(),
        justification: d.justification.clone(),
        standing_approval: false,
        plan_sha256: String::new(),
        before_sha256: String::new(),
        after_sha256: naksha_contracts::signing::sha256_hex(&naksha_contracts::signing::canonical_json(
            &s.draft.policy,
        )),
        actions: vec![
            json!({"suggestion": s.draft.id, "kind": s.draft.kind, "rule": s.draft.rule, "subject": s.draft.subject,
                             "from": s.state, "to": to, "effect": effect}),
        ],
        outcome: to.as_str().to_owned(),
        at: now.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        approval_sha256: String::new(),
        dry_run_passed: false,
    };
    let record = chain.append(tenant, entry).await.map_err(|e| ChangeError::Unavailable(e.to_string()))?;
    let mut next = s.clone();
    next.history.push(Transition {
        from: s.state,
        to,
        by: d.by.clone(),
        justification: d.justification.clone(),
        at: now,
        audit_seq: Some(record.seq),
    });
    next.state = to;
    next.state_since = now;
    if !store.save(&next, Some(s.state)).await.map_err(|e| ChangeError::Unavailable(e.0))? {
        return Err(ChangeError::Conflict("someone else moved this suggestion meanwhile; read it again".into()));
    }
    Ok(next)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::memory::MemoryPolicies;
    use naksha_agent::memory::Memory;
    use std::sync::Mutex;

    fn tenant() -> TenantId {
        TenantId::from_record("acme").unwrap_or_else(|_| unreachable!())
    }

    fn pii() -> PiiKey {
        PiiKey::from_secret(b"k")
    }

    fn k8s_lines() -> String {
        let dir = format!("{}/../../data/shared/k8s-audit/events", env!("CARGO_MANIFEST_DIR"));
        let mut names: Vec<_> = std::fs::read_dir(&dir).into_iter().flatten().flatten().map(|e| e.path()).collect();
        names.sort();
        names
            .into_iter()
            .filter(|p| !p.ends_with("fal_01_003.json"))
            .map(|p| std::fs::read_to_string(p).unwrap_or_default())
            .collect::<Vec<_>>()
            .join("\n")
    }

    fn now() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-12-01T00:00:00Z").map(|t| t.with_timezone(&Utc)).unwrap_or_default()
    }

    #[derive(Default)]
    struct FakeAgent {
        promoted: Mutex<Vec<(String, u32, String)>>,
    }

    impl Autonomy for FakeAgent {
        async fn promote(
            &self,
            _: &TenantId,
            approver: &str,
            wpk: &str,
            v: u32,
            _: &str,
        ) -> Result<String, ChangeError> {
            self.promoted.lock().map_err(|_| ChangeError::Unavailable("poisoned".into()))?.push((
                wpk.into(),
                v,
                approver.into(),
            ));
            Ok("sha".into())
        }
        async fn demote(&self, _: &TenantId, _: &str, _: u32) -> Result<(), ChangeError> {
            Ok(())
        }
    }

    #[tokio::test]
    async fn learning_the_same_lines_twice_changes_nothing() {
        let (store, chain) = (MemoryPolicies::default(), Memory::default());
        let first = learn_lines(&store, &chain, &pii(), &tenant(), &k8s_lines(), false, now()).await;
        let first = first.unwrap_or_else(|e| unreachable!("{e}"));
        assert_eq!((first.ingested, first.duplicates), (35, 0));
        assert!(first.changed > 0);
        let writes = *store.writes.lock().unwrap_or_else(|_| unreachable!());
        let again = learn_lines(&store, &chain, &pii(), &tenant(), &k8s_lines(), false, now()).await;
        let again = again.unwrap_or_else(|e| unreachable!("{e}"));
        assert_eq!((again.ingested, again.duplicates, again.changed), (0, 35, 0));
        assert_eq!(*store.writes.lock().unwrap_or_else(|_| unreachable!()), writes);
        assert_eq!(again.suggestions, first.suggestions);
    }

    #[tokio::test]
    async fn a_bad_line_refuses_the_request_and_writes_nothing_unless_skipped() {
        let (store, chain) = (MemoryPolicies::default(), Memory::default());
        let body = format!("{}\n{{\"kind\": 0}}\n", k8s_lines());
        let lines = body.lines().filter(|l| !l.trim().is_empty()).count();
        match learn_lines(&store, &chain, &pii(), &tenant(), &body, false, now()).await {
            Err(LearnError::Invalid(bad)) => {
                assert_eq!(bad.iter().map(|b| b.line).collect::<Vec<_>>(), vec![body.lines().count()])
            }
            other => unreachable!("{other:?}"),
        }
        assert_eq!(*store.writes.lock().unwrap_or_else(|_| unreachable!()), 0);
        let skipped = learn_lines(&store, &chain, &pii(), &tenant(), &body, true, now())
            .await
            .unwrap_or_else(|e| unreachable!("{e}"));
        assert_eq!((skipped.ingested, skipped.skipped.len()), (lines - 1, 1));
    }

    #[tokio::test]
    async fn a_naksha_record_not_in_the_stored_chain_is_kept_unverified_and_never_promotes() {
        let (store, chain) = (MemoryPolicies::default(), Memory::default());
        let entry = naksha_contracts::audit::AuditEntry {
            kind: String::new(),
            run_id: "r".into(),
            wpk_id: "w".into(),
            wpk_version: 1,
            wpk_sha256: String::new(),
            approver: "alice".into(),
            justification: "j".into(),
            standing_approval: false,
            plan_sha256: String::new(),
            before_sha256: String::new(),
            after_sha256: String::new(),
            actions: vec![],
            outcome: "succeeded".into(),
            at: "2026-01-01T00:00:00Z".into(),
            approval_sha256: String::new(),
            dry_run_passed: true,
        };
        // Three approvals by two people, well formed, but not in this tenant's chain.
        let mut lines = Vec::new();
        let mut prev = None;
        for (i, approver) in ["alice", "bob", "alice"].iter().enumerate() {
            let mut e = entry.clone();
            e.approver = (*approver).to_owned();
            e.run_id = format!("r{i}");
            let r = naksha_contracts::audit::AuditRecord::seal(&tenant(), e, prev.as_ref());
            lines.push(serde_json::to_string(&r).unwrap_or_default());
            prev = Some(r);
        }
        let learned = learn_lines(&store, &chain, &pii(), &tenant(), &lines.join("\n"), false, now()).await;
        let learned = learned.unwrap_or_else(|e| unreachable!("{e}"));
        assert_eq!(learned.ingested, 3);
        assert!(learned.suggestions.iter().all(|s| s.draft.kind != Kind::Autonomy), "{:?}", learned.suggestions);
        let stored = store.records(&tenant()).await.unwrap_or_default();
        assert!(stored.iter().all(|r| r.id.starts_with("naksha-audit/unverified/") && r.fact_bool("unverified")));
    }

    #[tokio::test]
    async fn the_lifecycle_advances_one_step_records_each_in_the_chain_and_stops_at_the_end() {
        let store = MemoryPolicies::default();
        let chain = Memory::with_audit_key(
            naksha_contracts::signing::LocalKey::generate("audit").unwrap_or_else(|_| unreachable!()),
        );
        let learned = learn_lines(&store, &chain, &pii(), &tenant(), &k8s_lines(), false, now())
            .await
            .unwrap_or_else(|e| unreachable!("{e}"));
        let id = learned
            .suggestions
            .iter()
            .find(|s| s.draft.kind == Kind::Risk)
            .map(|s| s.draft.id.clone())
            .unwrap_or_default();
        let d = Decision { by: "root".into(), justification: "reviewed".into(), approver: false };
        let agent = FakeAgent::default();
        let mut states = Vec::new();
        for _ in 0..3 {
            let s = change(&store, &chain, &agent, &tenant(), &id, false, &d, now())
                .await
                .unwrap_or_else(|e| unreachable!("{e}"));
            states.push(s.state);
        }
        assert_eq!(states, vec![State::Dryrun, State::Warn, State::Enforced]);
        assert!(matches!(
            change(&store, &chain, &agent, &tenant(), &id, false, &d, now()).await,
            Err(ChangeError::Conflict(_))
        ));
        assert!(matches!(
            change(&store, &chain, &agent, &tenant(), &id, true, &d, now()).await,
            Err(ChangeError::Conflict(_))
        ));
        let records = chain.records(&tenant()).await.unwrap_or_default();
        assert_eq!(records.iter().filter(|r| r.entry.kind == "policy").count(), 3);
        assert!(matches!(
            change(&store, &chain, &agent, &tenant(), "sg-nope", false, &d, now()).await,
            Err(ChangeError::NotFound)
        ));
        let other = TenantId::from_record("globex").unwrap_or_else(|_| unreachable!());
        assert!(matches!(
            change(&store, &chain, &agent, &other, &id, false, &d, now()).await,
            Err(ChangeError::NotFound)
        ));
    }

    #[tokio::test]
    async fn a_rejected_suggestion_stays_rejected_when_learned_again() {
        let store = MemoryPolicies::default();
        let chain = Memory::with_audit_key(
            naksha_contracts::signing::LocalKey::generate("audit").unwrap_or_else(|_| unreachable!()),
        );
        let learned = learn_lines(&store, &chain, &pii(), &tenant(), &k8s_lines(), false, now())
            .await
            .unwrap_or_else(|e| unreachable!("{e}"));
        let id = learned.suggestions[0].draft.id.clone();
        let d = Decision { by: "root".into(), justification: "not for us".into(), approver: false };
        let s = change(&store, &chain, &FakeAgent::default(), &tenant(), &id, true, &d, now())
            .await
            .unwrap_or_else(|e| unreachable!("{e}"));
        assert_eq!(s.state, State::Rejected);
        let again = learn_lines(&store, &chain, &pii(), &tenant(), &k8s_lines(), false, now())
            .await
            .unwrap_or_else(|e| unreachable!("{e}"));
        assert_eq!(again.suggestions.iter().find(|s| s.draft.id == id).map(|s| s.state), Some(State::Rejected));
        assert!(matches!(
            change(&store, &chain, &FakeAgent::default(), &tenant(), &id, false, &d, now()).await,
            Err(ChangeError::Conflict(_))
        ));
    }

    #[tokio::test]
    async fn enforcing_a_promotion_needs_the_approver_role_and_goes_through_the_agent() {
        let store = MemoryPolicies::default();
        let chain = Memory::with_audit_key(
            naksha_contracts::signing::LocalKey::generate("audit").unwrap_or_else(|_| unreachable!()),
        );
        let draft = suggest::Draft {
            id: "sg-1".into(),
            kind: Kind::Autonomy,
            rule: "promote".into(),
            subject: "wpk/restart".into(),
            title: String::new(),
            policy: json!({"wpk_id": "restart", "version": 2}),
            evidence: suggest::Evidence {
                window: suggest::Window { from: now(), to: now() },
                count: 3,
                record_ids: vec![],
                record_ids_truncated: false,
            },
            complete: true,
            confidence: 0.7,
        };
        let mut s = Suggestion::new(&tenant(), draft, now());
        s.state = State::Warn;
        assert!(store.save(&s, None).await.unwrap_or(false));
        let agent = FakeAgent::default();
        let admin_only = Decision { by: "root".into(), justification: "ok".into(), approver: false };
        assert!(matches!(
            change(&store, &chain, &agent, &tenant(), "sg-1", false, &admin_only, now()).await,
            Err(ChangeError::Forbidden(_))
        ));
        assert!(agent.promoted.lock().map(|p| p.is_empty()).unwrap_or(false));
        let both = Decision { by: "carol".into(), justification: "ok".into(), approver: true };
        let done = change(&store, &chain, &agent, &tenant(), "sg-1", false, &both, now())
            .await
            .unwrap_or_else(|e| unreachable!("{e}"));
        assert_eq!(done.state, State::Enforced);
        assert_eq!(
            agent.promoted.lock().map(|p| p.clone()).unwrap_or_default(),
            vec![("restart".to_owned(), 2, "carol".to_owned())]
        );
    }
}
