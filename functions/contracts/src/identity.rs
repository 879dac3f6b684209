//! Who is asking: a tenant, the roles a token grants, and the verified caller.
//!
//! A [`TenantId`] is only ever built from a verified token's claim (the JWT verifier in
//! naksha-core) or from a record this system wrote after verifying one. Its alphabet has no `#`,
//! so it can lead every DynamoDB key followed by `#` without ambiguity (P-5).

use std::collections::BTreeSet;
use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A tenant: lowercase letters, digits, `-` and `_`; 1 to 64 characters; starts with a letter or digit.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TenantId(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a tenant id (1 to 64 of a-z 0-9 - _, starting with a letter or digit)")]
pub struct InvalidTenant(pub String);

impl TenantId {
    fn parse(raw: &str) -> Result<Self, InvalidTenant> {
        let ok = (1..=64).contains(&raw.len())
            && raw.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
            && raw.as_bytes()[0].is_ascii_alphanumeric();
        if ok { Ok(Self(raw.to_owned())) } else { Err(InvalidTenant(raw.chars().take(80).collect())) }
    }

    /// The tenant claim of a token whose signature, issuer, audience and lifetime were checked.
    pub fn from_verified_claim(raw: &str) -> Result<Self, InvalidTenant> {
        Self::parse(raw)
    }

    /// A tenant named by a record this system wrote after verifying a token (a stream record, a
    /// stored item). Never call this with request input.
    pub fn from_record(raw: &str) -> Result<Self, InvalidTenant> {
        Self::parse(raw)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The start of every key this tenant owns: `<tenant>#`.
    pub fn key_prefix(&self) -> String {
        format!("{}#", self.0)
    }

    /// A key owned by this tenant: `<tenant>#<part>#<part>…`. Every tenant-owned key that is not
    /// the bare tenant is built here, so none can start with another tenant's prefix.
    pub fn key(&self, parts: &[&str]) -> String {
        let mut key = String::with_capacity(self.0.len() + 1 + parts.iter().map(|p| p.len() + 1).sum::<usize>());
        key.push_str(&self.0);
        for p in parts {
            key.push('#');
            key.push_str(p);
        }
        key
    }

    /// The tenant a key built by [`TenantId::key`] belongs to, and the rest of the key.
    pub fn split_key(key: &str) -> Option<(TenantId, &str)> {
        let (tenant, rest) = key.split_once('#')?;
        Some((Self::parse(tenant).ok()?, rest))
    }
}

impl fmt::Display for TenantId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for TenantId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl Serialize for TenantId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

/// Records are checked as they are read: a stored tenant that is not a tenant id fails to decode.
impl<'de> Deserialize<'de> for TenantId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(d)?;
        Self::from_record(&raw).map_err(serde::de::Error::custom)
    }
}

/// What a token may allow. Roles are not hierarchical: each route names the role it needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Operator,
    Approver,
    Admin,
    Edge,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Operator => "operator",
            Role::Approver => "approver",
            Role::Admin => "admin",
            Role::Edge => "edge",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "operator" => Some(Role::Operator),
            "approver" => Some(Role::Approver),
            "admin" => Some(Role::Admin),
            "edge" => Some(Role::Edge),
            _ => None,
        }
    }
}

/// The roles that may read a tenant's objects.
pub const READERS: &[Role] = &[Role::Operator, Role::Approver, Role::Admin];

/// The caller lacks every role the action accepts.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("this action needs {}", describe(.0))]
pub struct MissingRole(pub Vec<Role>);

fn describe(roles: &[Role]) -> String {
    match roles {
        [one] => format!("the {} role", one.as_str()),
        many => format!("one of the roles: {}", many.iter().map(|r| r.as_str()).collect::<Vec<_>>().join(", ")),
    }
}

/// The verified caller: built by the JWT verifier only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub tenant: TenantId,
    /// The token's `sub`: the person or node acting (an approver's id, an edge node's id).
    pub subject: String,
    pub roles: BTreeSet<Role>,
}

impl Principal {
    pub fn has(&self, role: Role) -> bool {
        self.roles.contains(&role)
    }

    /// `Err` unless the caller holds `role`.
    pub fn require(&self, role: Role) -> Result<(), MissingRole> {
        self.require_any(&[role])
    }

    /// `Err` unless the caller holds at least one of `roles`.
    pub fn require_any(&self, roles: &[Role]) -> Result<(), MissingRole> {
        if roles.iter().any(|r| self.has(*r)) { Ok(()) } else { Err(MissingRole(roles.to_vec())) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn tenant_ids_refuse_anything_that_could_break_a_key() {
        for bad in ["acme#other", "ACME", "", "a/b", "-x", "a b", &"a".repeat(65)] {
            assert!(TenantId::from_verified_claim(bad).is_err(), "{bad}");
        }
        assert_eq!(TenantId::from_record("acme-1_x").unwrap().as_str(), "acme-1_x");
    }

    #[test]
    fn tenants_round_trip_through_json_and_bad_ones_do_not_decode() {
        let t = TenantId::from_record("acme").unwrap();
        assert_eq!(serde_json::to_string(&t).unwrap(), "\"acme\"");
        assert_eq!(serde_json::from_str::<TenantId>("\"acme\"").unwrap(), t);
        assert!(serde_json::from_str::<TenantId>("\"acme#beta\"").is_err());
    }

    #[test]
    fn roles_are_checked_by_name() {
        let p = Principal {
            tenant: TenantId::from_record("acme").unwrap(),
            subject: "bob".into(),
            roles: [Role::Operator].into(),
        };
        assert!(p.require(Role::Operator).is_ok());
        assert_eq!(p.require(Role::Approver).unwrap_err().to_string(), "this action needs the approver role");
        assert!(p.require_any(&[Role::Admin, Role::Operator]).is_ok());
        assert!(p.require_any(&[Role::Admin, Role::Edge]).unwrap_err().to_string().contains("admin, edge"));
    }

    proptest! {
        /// No key of one tenant starts with another tenant's prefix, whatever the parts hold.
        #[test]
        fn keys_of_one_tenant_never_carry_another_tenants_prefix(
            a in "[a-z0-9][a-z0-9_-]{0,20}",
            b in "[a-z0-9][a-z0-9_-]{0,20}",
            parts in proptest::collection::vec(".{0,12}", 0..4),
        ) {
            let (ta, tb) = (TenantId::from_record(&a).unwrap(), TenantId::from_record(&b).unwrap());
            let refs: Vec<&str> = parts.iter().map(String::as_str).collect();
            let key = ta.key(&refs);
            prop_assert!(key.starts_with(&ta.key_prefix()) || parts.is_empty());
            prop_assert_eq!(TenantId::split_key(&key).map(|(t, _)| t).unwrap_or_else(|| ta.clone()), ta.clone());
            if a != b {
                prop_assert!(!key.starts_with(&tb.key_prefix()));
                prop_assert!(key != tb.as_str());
            }
        }
    }
}
