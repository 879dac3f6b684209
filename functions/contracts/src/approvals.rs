//! Decisions people make, as signed evidence (P-3): approving one run's plan, standing behind one
//! `auto` WPK version, and a tenant's safety settings. Each is sealed
//! ([`crate::signing::Sealed`]) with the approval key for its own [`Purpose`], so an approval
//! written into a table by hand, moved to another tenant or another run, never acts.
//!
//! Separation of duties is in the signed facts: a run approval names who requested the run, a
//! standing approval who registered the WPK; the approver must be someone else unless the
//! tenant's signed [`TenantSettings`] allow self-approval.

use serde::{Deserialize, Serialize};

use crate::signing::Purpose;

/// An approver's approval of exactly one plan of one run ([`Purpose::RunApproval`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunApproval {
    pub run_id: String,
    pub plan_sha256: String,
    pub approver: String,
    /// Who started the run (the token's `sub` at `POST /agent/run`, or `detector`).
    pub requested_by: String,
    pub justification: String,
    pub at: String,
}

/// An approver's standing approval of one `auto` WPK version ([`Purpose::StandingApproval`]):
/// runs may act unattended with it, after their dry-run passed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StandingApproval {
    pub wpk_id: String,
    pub wpk_version: u32,
    /// sha256 of the WPK version's signed bytes: the approval is of exactly that version.
    pub wpk_sha256: String,
    pub approver: String,
    /// Who registered the WPK (from its signed bytes).
    pub wpk_author: String,
    pub justification: String,
    pub at: String,
}

/// A tenant's safety settings ([`Purpose::Settings`]), changed by an admin and audited.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TenantSettings {
    /// Whether the person who requested a run (or registered a WPK) may approve it. Off unless set.
    pub allow_self_approval: bool,
    pub set_by: String,
    pub justification: String,
    pub at: String,
}

impl RunApproval {
    pub const PURPOSE: Purpose = Purpose::RunApproval;

    /// Whether the approver is the requester, which the tenant must have allowed explicitly.
    pub fn is_self_approval(&self) -> bool {
        self.approver == self.requested_by
    }
}

impl StandingApproval {
    pub const PURPOSE: Purpose = Purpose::StandingApproval;

    pub fn is_self_approval(&self) -> bool {
        self.approver == self.wpk_author
    }
}

impl TenantSettings {
    pub const PURPOSE: Purpose = Purpose::Settings;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::TenantId;
    use crate::signing::{Sealed, sealed_bytes, tests::test_key};

    #[test]
    fn a_run_approval_is_evidence_only_for_its_tenant_and_purpose() {
        let key = test_key("approvals");
        let acme = TenantId::from_record("acme").unwrap();
        let approval = RunApproval {
            run_id: "r1".into(),
            plan_sha256: "ab".repeat(32),
            approver: "bob".into(),
            requested_by: "olivia".into(),
            justification: "INC-1".into(),
            at: "2026-12-01T00:00:00Z".into(),
        };
        let bytes = sealed_bytes(RunApproval::PURPOSE, &acme, &approval);
        let sealed = Sealed::new(&bytes, &key.sign(&bytes).unwrap());
        let opened = sealed.open::<RunApproval>(RunApproval::PURPOSE, &acme, &key.trusted()).unwrap();
        assert_eq!(*opened, approval);
        assert!(!opened.is_self_approval());
        // The same signature does not stand for a standing approval.
        assert!(sealed.open::<StandingApproval>(StandingApproval::PURPOSE, &acme, &key.trusted()).is_err());
        let round: Sealed = serde_json::from_str(&serde_json::to_string(&sealed).unwrap()).unwrap();
        assert_eq!(round, sealed);
    }

    #[test]
    fn self_approval_is_named_by_the_signed_facts() {
        let s = StandingApproval {
            wpk_id: "w".into(),
            wpk_version: 1,
            wpk_sha256: "x".into(),
            approver: "ada".into(),
            wpk_author: "ada".into(),
            justification: "j".into(),
            at: "t".into(),
        };
        assert!(s.is_self_approval());
        assert!(!TenantSettings::default().allow_self_approval, "off unless set");
    }
}
