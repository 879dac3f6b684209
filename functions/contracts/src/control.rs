//! A tenant's kill switch (P-3): written by the agent (`POST /agent/halt`, `POST /agent/resume`),
//! read by everything that acts or hands out work for the tenant — the agent's worker before each
//! act, and the federation hub before it gives an edge node a trigger (so one switch stops the
//! edge too).
//!
//! | item | table | `pk` | attributes |
//! |---|---|---|---|
//! | kill switch | `naksha.agent-state` | [`halt_pk`] = `<tenant>#halt` | `reason`, `at` (RFC 3339); absent = not halted |

use crate::identity::TenantId;

/// The key of a tenant's kill switch item.
pub fn halt_pk(tenant: &TenantId) -> String {
    tenant.key(&["halt"])
}

/// The attribute holding why the tenant was halted (present only while halted).
pub const HALT_REASON: &str = "reason";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_halt_key_starts_with_its_tenant() {
        let t = TenantId::from_record("acme").unwrap();
        assert_eq!(halt_pk(&t), "acme#halt");
        assert_eq!(
            TenantId::split_key(&halt_pk(&t)).map(|(t, rest)| (t.as_str().to_owned(), rest)),
            Some(("acme".into(), "halt"))
        );
    }
}
