//! The append-only audit log (P-3): each act's record carries the hash of the one before it, so
//! an edited, removed or reordered record breaks the chain at a point [`verify_chain`] names.
//! Written by the agent; read by the agent's API and, later, by the policy learner.
//!
//! | item | table `naksha.audit` | key |
//! |---|---|---|
//! | the chain head | | `pk` = tenant, `seq` = 0 |
//! | an [`AuditRecord`] | written only if absent, in one transaction with the head | `pk` = tenant, `seq` = 1, 2, … |
//! | a run's marker (one record per run) | | `pk` = [`run_marker_pk`] = `<tenant>#run#<run id>`, `seq` = 0 |
//! | a signed [`Checkpoint`] of the head, one per append | same transaction | `pk` = [`checkpoint_pk`] = `<tenant>#checkpoint`, `seq` = the record's |
//!
//! [`verify_anchored`] checks the chain against its head, its signed checkpoints and the runs
//! that say they acted, so a deleted, truncated or rewritten record is named.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::identity::TenantId;
use crate::signing::{Purpose, Sealed, TrustedKeys, canonical_json, sha256_hex};

/// `prev_hash` of the first record of a tenant's chain.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// The `seq` of the chain head item.
pub const HEAD_SEQ: u64 = 0;

/// The marker that a run has appended its record.
pub fn run_marker_pk(tenant: &TenantId, run_id: &str) -> String {
    tenant.key(&["run", run_id])
}

/// The partition of a tenant's signed checkpoints.
pub fn checkpoint_pk(tenant: &TenantId) -> String {
    tenant.key(&["checkpoint"])
}

/// A signed statement ([`Purpose::AuditCheckpoint`]) that record `seq` with `hash` was the head.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    pub seq: u64,
    pub hash: String,
    pub at: String,
}

impl Checkpoint {
    pub const PURPOSE: Purpose = Purpose::AuditCheckpoint;
}

/// What the agent asks to record; the log assigns `seq`, `prev_hash` and `hash`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditEntry {
    /// `setting` for a change of the tenant's safety settings; empty for an act.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub kind: String,
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
    /// sha256 of the signed approval (run or standing) that allowed the act: the evidence.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub approval_sha256: String,
    /// The act's plan was dry-run first and the dry-run passed (absent on older records and on
    /// records that are not acts; the policy learner counts it before suggesting `auto`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub dry_run_passed: bool,
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

/// What the chain should end at, from outside its records.
#[derive(Debug, Clone, Default)]
pub struct Anchors {
    /// The head item: the newest record's sequence number and hash.
    pub head: Option<(u64, String)>,
    /// The signed checkpoints, one per append.
    pub checkpoints: Vec<Sealed>,
    /// Runs that say they acted, and the record they name (`RunOutcome::audit_seq`).
    pub acted: Vec<(String, u64)>,
}

/// Check the chain ([`verify_chain`]), then that nothing was cut from or rewritten at its end:
/// the head names the newest record; every checkpoint is genuine (signed for this tenant and
/// purpose by a trusted key) and matches the record it names; the newest record has a
/// checkpoint; and every run that acted finds its record.
pub fn verify_anchored(
    tenant: &TenantId,
    records: &[AuditRecord],
    anchors: &Anchors,
    keys: &TrustedKeys,
) -> Result<(), BrokenLink> {
    verify_chain(records)?;
    let end = records.last().map_or(0, |r| r.seq);
    let hash_at = |seq: u64| records.get((seq as usize).wrapping_sub(1)).map(|r| r.hash.as_str());
    match &anchors.head {
        None if end > 0 => {
            return Err(BrokenLink { seq: end, reason: "the chain head is missing".into() });
        }
        None => {}
        Some((seq, _)) if *seq > end => {
            return Err(BrokenLink {
                seq: end + 1,
                reason: format!("truncated: the head names record {seq}, the chain ends at {end}"),
            });
        }
        Some((seq, _)) if *seq < end => {
            return Err(BrokenLink {
                seq: seq + 1,
                reason: format!("records after the head ({seq}) were written outside an append"),
            });
        }
        Some((seq, hash)) if hash_at(*seq) != Some(hash.as_str()) => {
            return Err(BrokenLink {
                seq: *seq,
                reason: "the newest record was rewritten (the head names another hash)".into(),
            });
        }
        Some(_) => {}
    }
    let mut newest_checkpoint = 0;
    for sealed in &anchors.checkpoints {
        let cp = sealed
            .open::<Checkpoint>(Checkpoint::PURPOSE, tenant, keys)
            .map_err(|e| BrokenLink { seq: 0, reason: format!("a checkpoint is not genuine: {e}") })?;
        if cp.seq > end {
            return Err(BrokenLink {
                seq: end + 1,
                reason: format!("truncated: record {} was checkpointed, the chain ends at {end}", cp.seq),
            });
        }
        if hash_at(cp.seq) != Some(cp.hash.as_str()) {
            return Err(BrokenLink {
                seq: cp.seq,
                reason: "the record was rewritten after it was checkpointed".into(),
            });
        }
        newest_checkpoint = newest_checkpoint.max(cp.seq);
    }
    if end > newest_checkpoint {
        return Err(BrokenLink {
            seq: newest_checkpoint + 1,
            reason: format!(
                "records {}..={end} have no signed checkpoint (written outside an append)",
                newest_checkpoint + 1
            ),
        });
    }
    for (run_id, seq) in &anchors.acted {
        match records.get((*seq as usize).wrapping_sub(1)) {
            None => {
                return Err(BrokenLink {
                    seq: *seq,
                    reason: format!("deleted: run {run_id} acted with record {seq}, which is gone"),
                });
            }
            Some(r) if r.entry.run_id != *run_id => {
                return Err(BrokenLink { seq: *seq, reason: format!("record {seq} should be run {run_id}'s") });
            }
            Some(_) => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signing::{sealed_bytes, tests::test_key};

    fn entry(run: &str) -> AuditEntry {
        AuditEntry {
            kind: String::new(),
            approval_sha256: String::new(),
            dry_run_passed: false,
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

    fn anchored(n: usize, key: &crate::signing::LocalKey) -> (Vec<AuditRecord>, Anchors) {
        let c = chain(n);
        let tenant = c[0].tenant.clone();
        let checkpoints = c
            .iter()
            .map(|r| {
                let cp = Checkpoint { seq: r.seq, hash: r.hash.clone(), at: "t".into() };
                let bytes = sealed_bytes(Checkpoint::PURPOSE, &tenant, &cp);
                Sealed::new(&bytes, &key.sign(&bytes).unwrap())
            })
            .collect();
        let last = c.last().unwrap();
        let acted = c.iter().map(|r| (r.entry.run_id.clone(), r.seq)).collect();
        (c.clone(), Anchors { head: Some((last.seq, last.hash.clone())), checkpoints, acted })
    }

    #[test]
    fn an_anchored_chain_verifies_and_its_end_cannot_be_cut_or_rewritten() {
        let key = test_key("audit");
        let (c, anchors) = anchored(4, &key);
        let tenant = c[0].tenant.clone();
        assert_eq!(verify_anchored(&tenant, &c, &anchors, &key.trusted()), Ok(()));

        // The newest record deleted: the head still names it.
        let cut = &c[..3];
        let broken = verify_anchored(&tenant, cut, &anchors, &key.trusted()).unwrap_err();
        assert!(broken.reason.contains("truncated"), "{broken:?}");

        // Deleted with the head rolled back and its checkpoint removed: the run that acted with it.
        let mut rolled = anchors.clone();
        rolled.head = Some((3, c[2].hash.clone()));
        rolled.checkpoints.pop();
        let broken = verify_anchored(&tenant, cut, &rolled, &key.trusted()).unwrap_err();
        assert_eq!(broken.seq, 4);
        assert!(broken.reason.contains("deleted"), "{broken:?}");

        // The newest record rewritten with recomputed hashes and a matching head: its checkpoint.
        let mut rewritten = c.clone();
        rewritten[3].entry.approver = "mallory".into();
        rewritten[3].hash = rewritten[3].compute_hash();
        let mut head_too = anchors.clone();
        head_too.head = Some((4, rewritten[3].hash.clone()));
        let broken = verify_anchored(&tenant, &rewritten, &head_too, &key.trusted()).unwrap_err();
        assert_eq!(broken.seq, 4);
        assert!(broken.reason.contains("rewritten after it was checkpointed"), "{broken:?}");

        // A checkpoint signed by another key, or for another tenant, is not genuine.
        let other = test_key("audit");
        let (_, foreign) = anchored(4, &other);
        assert!(verify_anchored(&tenant, &c, &foreign, &key.trusted()).unwrap_err().reason.contains("not genuine"));
        let beta = TenantId::from_record("beta").unwrap();
        assert!(verify_anchored(&beta, &c, &anchors, &key.trusted()).is_err());

        // A record appended by hand, with a head moved to it but no checkpoint.
        let mut extra = c.clone();
        extra.push(AuditRecord::seal(&tenant, entry("run-x"), c.last()));
        let mut moved = anchors.clone();
        moved.head = Some((5, extra[4].hash.clone()));
        assert!(
            verify_anchored(&tenant, &extra, &moved, &key.trusted())
                .unwrap_err()
                .reason
                .contains("no signed checkpoint")
        );
    }
}
