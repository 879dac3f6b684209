//! The append-only audit log (P-3): each act's record carries the hash of the one before it, so
//! an edited, removed or reordered record breaks the chain at a point [`verify_chain`] names.
//! Written by the agent; read by the agent's API and, later, by the policy learner.
//!
//! | item | table `naksha.audit` | key |
//! |---|---|---|
//! | the chain head | | `pk` = tenant, `seq` = 0 |
//! | an [`AuditRecord`] | written only if absent, in one transaction with the head | `pk` = tenant, `seq` = 1, 2, … |
//! | a run's marker (one record per run) | | `pk` = [`run_marker_pk`] = `<tenant>#run#<run id>`, `seq` = 0 |

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::identity::TenantId;
use crate::signing::{canonical_json, sha256_hex};

/// `prev_hash` of the first record of a tenant's chain.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// The `seq` of the chain head item.
pub const HEAD_SEQ: u64 = 0;

/// The marker that a run has appended its record.
pub fn run_marker_pk(tenant: &TenantId, run_id: &str) -> String {
    tenant.key(&["run", run_id])
}

/// What the agent asks to record; the log assigns `seq`, `prev_hash` and `hash`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditEntry {
    pub run_id: String,
    pub wpk_id: String,
    pub wpk_version: u32,
    pub wpk_sha256: String,
    pub approver: String,
    pub justification: String,
    pub standing_approval: bool,
    pub plan_sha256: String,
    pub before_sha256: String,
    pub after_sha256: String,
    pub actions: Vec<Value>,
    pub outcome: String,
    pub at: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditRecord {
    pub tenant: TenantId,
    pub seq: u64,
    #[serde(flatten)]
    pub entry: AuditEntry,
    pub prev_hash: String,
    pub hash: String,
}

impl AuditRecord {
    /// Seal an entry as the record after `prev` (`None`: the first record).
    pub fn seal(tenant: &TenantId, entry: AuditEntry, prev: Option<&AuditRecord>) -> Self {
        let mut r = Self {
            tenant: tenant.clone(),
            seq: prev.map_or(1, |p| p.seq + 1),
            entry,
            prev_hash: prev.map_or(GENESIS.to_owned(), |p| p.hash.clone()),
            hash: String::new(),
        };
        r.hash = r.compute_hash();
        r
    }

    /// sha256 over the canonical record without its own hash.
    pub fn compute_hash(&self) -> String {
        let mut doc = serde_json::to_value(self).unwrap_or(Value::Null);
        if let Some(obj) = doc.as_object_mut() {
            obj.remove("hash");
        }
        sha256_hex(&canonical_json(&doc))
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BrokenLink {
    pub seq: u64,
    pub reason: String,
}

/// Check a chain (sorted by `seq`): each record's hash, its link to the previous one, and that
/// no sequence number is missing.
pub fn verify_chain(records: &[AuditRecord]) -> Result<(), BrokenLink> {
    let mut prev_hash = GENESIS.to_owned();
    for (i, r) in records.iter().enumerate() {
        let expected_seq = i as u64 + 1;
        if r.seq != expected_seq {
            return Err(BrokenLink {
                seq: expected_seq,
                reason: format!("record {expected_seq} is missing (found {})", r.seq),
            });
        }
        if r.prev_hash != prev_hash {
            return Err(BrokenLink {
                seq: r.seq,
                reason: "prev_hash does not match the previous record's hash".into(),
            });
        }
        if r.compute_hash() != r.hash {
            return Err(BrokenLink {
                seq: r.seq,
                reason: "the record's content does not match its hash (edited)".into(),
            });
        }
        prev_hash = r.hash.clone();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(run: &str) -> AuditEntry {
        AuditEntry {
            run_id: run.into(),
            wpk_id: "restart".into(),
            wpk_version: 1,
            wpk_sha256: "s".into(),
            approver: "bob".into(),
            justification: "pager 123".into(),
            standing_approval: false,
            plan_sha256: "p".into(),
            before_sha256: "b".into(),
            after_sha256: "a".into(),
            actions: vec![serde_json::json!({"action": "restart"})],
            outcome: "succeeded".into(),
            at: "2026-11-25T12:00:00Z".into(),
        }
    }

    fn chain(n: usize) -> Vec<AuditRecord> {
        let tenant = TenantId::from_record("acme").unwrap();
        let mut out: Vec<AuditRecord> = Vec::new();
        for i in 0..n {
            let r = AuditRecord::seal(&tenant, entry(&format!("run-{i}")), out.last());
            out.push(r);
        }
        out
    }

    #[test]
    fn an_intact_chain_verifies_and_round_trips() {
        let c = chain(5);
        assert_eq!(verify_chain(&c), Ok(()));
        assert_eq!(c[0].prev_hash, GENESIS);
        let back: Vec<AuditRecord> = serde_json::from_str(&serde_json::to_string(&c).unwrap()).unwrap();
        assert_eq!(back, c);
        assert_eq!(run_marker_pk(&c[0].tenant, "r1"), "acme#run#r1");
    }

    #[test]
    fn an_edited_record_is_named() {
        let mut c = chain(5);
        c[2].entry.approver = "mallory".into();
        assert_eq!(verify_chain(&c).unwrap_err().seq, 3);
    }

    #[test]
    fn a_rehashed_edit_breaks_the_next_link() {
        let mut c = chain(5);
        c[2].entry.justification = "nothing to see".into();
        c[2].hash = c[2].compute_hash();
        let broken = verify_chain(&c).unwrap_err();
        assert_eq!(broken.seq, 4);
        assert!(broken.reason.contains("prev_hash"));
    }

    #[test]
    fn a_removed_record_is_named() {
        let mut c = chain(5);
        c.remove(1);
        assert_eq!(verify_chain(&c).unwrap_err().seq, 2);
    }
}
