//! Fuzz entry points for `POST /learn`'s lines (Naksha audit, CloudTrail, Kubernetes audit).
//! See `naksha_contracts::fuzzing` for how `fuzz/` and the replay tests use them.

// A fuzz target reports a finding by panicking: that is what libFuzzer and the replay tests catch.
#![allow(clippy::panic)]

use naksha_contracts::TenantId;
use naksha_contracts::fuzzing::Target;
use naksha_core::privacy::PiiKey;

use crate::records::parse_lines;

pub const TARGETS: &[Target] = &[("audit_lines", audit_lines)];

/// A body of JSON lines: every bad line is named by a line number the body has, and each
/// CloudTrail source address is stored as a pseudonym, never as sent.
pub fn audit_lines(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Ok(tenant) = TenantId::from_record("demo") else { return };
    let key = PiiKey::from_secret(b"the fuzzing key, thirty-two byte");
    let parsed = parse_lines(text, &tenant, &key.for_tenant(tenant.as_str()));
    let lines = text.lines().count();
    for b in &parsed.bad {
        assert!((1..=lines).contains(&b.line), "bad line {} of {lines}", b.line);
        assert!(!b.reason.is_empty());
    }
}
