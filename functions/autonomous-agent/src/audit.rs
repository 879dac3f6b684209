//! The append-only audit log: each act's record carries the hash of the one before it, so an
//! edited, removed or reordered record breaks the chain at a point [`verify_chain`] names.

use naksha_core::signing::{canonical_json, sha256_hex};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// `prev_hash` of the first record of a tenant's chain.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

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
    pub tenant: String,
    pub seq: u64,
    #[serde(flatten)]
    pub entry: AuditEntry,
    pub prev_hash: String,
    pub hash: String,
}

impl AuditRecord {
    /// Seal an entry as the record after `prev` (`None`: the first record).
    pub fn seal(tenant: &str, entry: AuditEntry, prev: Option<&AuditRecord>) -> Self {
        let mut r = Self {
            tenant: tenant.to_owned(),
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

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
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
        let mut out: Vec<AuditRecord> = Vec::new();
        for i in 0..n {
            let r = AuditRecord::seal("acme", entry(&format!("run-{i}")), out.last());
            out.push(r);
        }
        out
    }

    #[test]
    fn an_intact_chain_verifies() {
        assert_eq!(verify_chain(&chain(5)), Ok(()));
        assert_eq!(chain(3)[0].prev_hash, GENESIS);
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
