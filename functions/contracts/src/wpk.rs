//! WPKs: versioned, signed remediation playbooks.
//!
//! A WPK document is validated with every problem named ([`validate`]), normalised (defaults
//! made explicit) and signed over its canonical bytes. A stored WPK becomes a [`SignedWpk`] —
//! the only form the agent acts on — once its bytes and signature are verified against the
//! trusted keys.

use std::collections::BTreeMap;

use crate::identity::TenantId;
use crate::input::FieldError;
use crate::signing::{
    Purpose, SealError, Sealed, Signature, SignatureError, TrustedKeys, Verified, canonical_json, sealed_bytes,
    sha256_hex,
};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Adapters and the actions each supports.
pub const ADAPTERS: &[(&str, &[&str])] =
    &[("sim", &["restart", "scale", "rollback", "failover"]), ("k8s", &["restart", "scale", "delete_pod"])];

/// Most steps in one WPK.
pub const MAX_STEPS: usize = 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    #[default]
    Manual,
    Auto,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Match {
    pub signals: Vec<String>,
    /// Resource globs (`deployment/*`); empty means any resource.
    #[serde(default)]
    pub resources: Vec<String>,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Safety {
    #[serde(default)]
    pub mode: Mode,
    #[serde(default = "yes")]
    pub dry_run: bool,
}

impl Default for Safety {
    fn default() -> Self {
        Self { mode: Mode::Manual, dry_run: true }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Step {
    pub adapter: String,
    pub action: String,
    #[serde(default)]
    pub args: Map<String, Value>,
    /// The resource this step acts on; default: the run's resource.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
}

/// What must hold after acting.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Verify {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub healthy: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replicas: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
}

impl Verify {
    /// What does not hold on `state` (a resource as an adapter describes it); empty when all do.
    pub fn failures(&self, state: &Value) -> Vec<String> {
        let mut failures = Vec::new();
        if let Some(h) = self.healthy
            && state["healthy"] != Value::Bool(h)
        {
            failures.push(format!("healthy is {} (expected {h})", state["healthy"]));
        }
        if let Some(r) = self.replicas
            && state["replicas"] != r
        {
            failures.push(format!("replicas is {} (expected {r})", state["replicas"]));
        }
        if let Some(ver) = &self.version
            && state["version"] != Value::String(ver.clone())
        {
            failures.push(format!("version is {} (expected {ver:?})", state["version"]));
        }
        failures
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    /// Most distinct resources one run may act on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blast_radius: Option<u32>,
    /// Most runs that act per resource per hour.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_runs_per_hour: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Wpk {
    pub id: String,
    pub version: u32,
    pub title: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(rename = "match")]
    pub matcher: Match,
    #[serde(default)]
    pub safety: Safety,
    pub steps: Vec<Step>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verify: Option<Verify>,
    #[serde(default)]
    pub limits: Limits,
}

impl Wpk {
    /// Whether this WPK handles `signal` on `resource`.
    pub fn matches(&self, signal: &str, resource: &str) -> bool {
        self.matcher.signals.iter().any(|s| s == signal)
            && (self.matcher.resources.is_empty() || self.matcher.resources.iter().any(|g| glob_match(g, resource)))
    }

    /// The canonical bytes that are signed: the normalised document, keys sorted, compact.
    pub fn canonical_bytes(&self) -> Vec<u8> {
        canonical_json(&serde_json::to_value(self).unwrap_or(Value::Null))
    }

    /// Distinct resources the steps act on.
    pub fn targets(&self, resource: &str) -> Vec<String> {
        let mut t: Vec<String> =
            self.steps.iter().map(|s| s.target.clone().unwrap_or_else(|| resource.to_owned())).collect();
        t.sort();
        t.dedup();
        t
    }
}

/// A DNS-1123 label (`[a-z0-9]([-a-z0-9]*[a-z0-9])?`, at most 63 characters): a Kubernetes
/// namespace.
pub fn is_dns_label(s: &str) -> bool {
    let b = s.as_bytes();
    (1..=63).contains(&b.len())
        && b.iter().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
        && b[0] != b'-'
        && b[b.len() - 1] != b'-'
}

/// A DNS-1123 subdomain (dot-separated labels, at most 253 characters): a deployment or pod name.
pub fn is_dns_subdomain(s: &str) -> bool {
    (1..=253).contains(&s.len()) && s.split('.').all(is_dns_label)
}

/// `*` matches any run of characters; everything else is literal.
pub fn glob_match(pattern: &str, text: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == text;
    }
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if !text.starts_with(first) || !text[first.len()..].ends_with(last) || text.len() < first.len() + last.len() {
        return false;
    }
    let mut rest = &text[first.len()..text.len() - last.len()];
    for middle in &parts[1..parts.len() - 1] {
        match rest.find(middle) {
            Some(i) => rest = &rest[i + middle.len()..],
            None => return false,
        }
    }
    true
}

fn is_name(s: &str, max: usize) -> bool {
    (1..=max).contains(&s.len())
        && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'-' | b'_' | b'.' | b':'))
        && s.as_bytes()[0].is_ascii_alphanumeric()
}

fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a mapping",
    }
}

fn unknown_fields(obj: &Map<String, Value>, allowed: &[&str], at: &str, errors: &mut Vec<FieldError>) {
    for k in obj.keys().filter(|k| !allowed.contains(&k.as_str())) {
        errors.push(FieldError::new(
            format!("{at}/{k}"),
            format!("unknown field (expected one of: {})", allowed.join(", ")),
        ));
    }
}

fn positive(v: Option<&Value>, at: String, errors: &mut Vec<FieldError>) {
    if let Some(v) = v
        && !v.as_u64().is_some_and(|n| (1..=10_000).contains(&n))
    {
        errors.push(FieldError::new(at, "must be a whole number from 1 to 10000"));
    }
}

/// Every problem with a WPK document, each located by a JSON pointer.
pub fn validate(doc: &Value) -> Vec<FieldError> {
    let mut errors = Vec::new();
    let Some(obj) = doc.as_object() else {
        return vec![FieldError::new("", format!("a WPK is a mapping, not {}", kind_of(doc)))];
    };
    unknown_fields(
        obj,
        &["id", "version", "title", "description", "match", "safety", "steps", "verify", "limits"],
        "",
        &mut errors,
    );
    match obj.get("id").and_then(Value::as_str) {
        Some(id) if is_name(id, 64) => {}
        _ => {
            errors.push(FieldError::new("/id", "required: 1 to 64 of a-z 0-9 - _ . : starting with a letter or digit"))
        }
    }
    if !obj.get("version").and_then(Value::as_u64).is_some_and(|v| (1..=u64::from(u32::MAX)).contains(&v)) {
        errors.push(FieldError::new("/version", "required: a whole number of at least 1"));
    }
    if !obj.get("title").and_then(Value::as_str).is_some_and(|t| !t.trim().is_empty() && t.len() <= 200) {
        errors.push(FieldError::new("/title", "required: 1 to 200 characters"));
    }
    if let Some(d) = obj.get("description")
        && d.as_str().is_none_or(|d| d.len() > 2000)
    {
        errors.push(FieldError::new("/description", "must be text of at most 2000 characters"));
    }
    match obj.get("match") {
        Some(Value::Object(m)) => {
            unknown_fields(m, &["signals", "resources"], "/match", &mut errors);
            match m.get("signals").and_then(Value::as_array) {
                Some(s) if !s.is_empty() => {
                    for (i, sig) in s.iter().enumerate() {
                        if !sig.as_str().is_some_and(|s| is_name(s, 128)) {
                            errors.push(FieldError::new(
                                format!("/match/signals/{i}"),
                                "signal names are 1 to 128 of a-z 0-9 - _ . :",
                            ));
                        }
                    }
                }
                _ => errors.push(FieldError::new("/match/signals", "required: a non-empty list of signal names")),
            }
            if let Some(r) = m.get("resources") {
                match r.as_array() {
                    Some(r) => {
                        for (i, g) in r.iter().enumerate() {
                            if !g.as_str().is_some_and(|g| !g.is_empty() && g.len() <= 256) {
                                errors.push(FieldError::new(
                                    format!("/match/resources/{i}"),
                                    "resource patterns are 1 to 256 characters",
                                ));
                            }
                        }
                    }
                    None => errors.push(FieldError::new("/match/resources", "must be a list of resource patterns")),
                }
            }
        }
        Some(other) => errors.push(FieldError::new("/match", format!("must be a mapping, not {}", kind_of(other)))),
        None => errors.push(FieldError::new("/match", "required: {signals: [...], resources: [...]}")),
    }
    if let Some(s) = obj.get("safety") {
        match s.as_object() {
            Some(s) => {
                unknown_fields(s, &["mode", "dry_run"], "/safety", &mut errors);
                if let Some(m) = s.get("mode")
                    && !matches!(m.as_str(), Some("manual") | Some("auto"))
                {
                    errors.push(FieldError::new("/safety/mode", "must be manual or auto"));
                }
                if s.get("dry_run").is_some_and(|d| !d.is_boolean()) {
                    errors.push(FieldError::new("/safety/dry_run", "must be true or false"));
                }
            }
            None => errors.push(FieldError::new("/safety", "must be a mapping")),
        }
    }
    match obj.get("steps").and_then(Value::as_array) {
        Some(steps) if !steps.is_empty() && steps.len() <= MAX_STEPS => {
            for (i, step) in steps.iter().enumerate() {
                validate_step(step, &format!("/steps/{i}"), &mut errors);
            }
        }
        _ => errors.push(FieldError::new("/steps", format!("required: a list of 1 to {MAX_STEPS} steps"))),
    }
    if let Some(v) = obj.get("verify") {
        match v.as_object() {
            Some(v) => {
                unknown_fields(v, &["healthy", "replicas", "version"], "/verify", &mut errors);
                if v.get("healthy").is_some_and(|h| !h.is_boolean()) {
                    errors.push(FieldError::new("/verify/healthy", "must be true or false"));
                }
                if v.get("replicas").is_some_and(|r| r.as_u64().is_none_or(|r| r > 1000)) {
                    errors.push(FieldError::new("/verify/replicas", "must be a whole number from 0 to 1000"));
                }
                if v.get("version").is_some_and(|r| !r.is_string()) {
                    errors.push(FieldError::new("/verify/version", "must be text"));
                }
            }
            None => errors.push(FieldError::new("/verify", "must be a mapping")),
        }
    }
    if let Some(l) = obj.get("limits") {
        match l.as_object() {
            Some(l) => {
                unknown_fields(l, &["blast_radius", "max_runs_per_hour"], "/limits", &mut errors);
                positive(l.get("blast_radius"), "/limits/blast_radius".into(), &mut errors);
                positive(l.get("max_runs_per_hour"), "/limits/max_runs_per_hour".into(), &mut errors);
            }
            None => errors.push(FieldError::new("/limits", "must be a mapping")),
        }
    }
    errors
}

fn validate_step(step: &Value, at: &str, errors: &mut Vec<FieldError>) {
    let Some(s) = step.as_object() else {
        errors.push(FieldError::new(at, "a step is a mapping {adapter, action, args}"));
        return;
    };
    unknown_fields(s, &["adapter", "action", "args", "target"], at, errors);
    let adapter = s.get("adapter").and_then(Value::as_str).unwrap_or_default();
    let Some((_, actions)) = ADAPTERS.iter().find(|(a, _)| *a == adapter) else {
        let known: Vec<_> = ADAPTERS.iter().map(|(a, _)| *a).collect();
        errors.push(FieldError::new(
            format!("{at}/adapter"),
            format!("unknown adapter {adapter:?} (known: {})", known.join(", ")),
        ));
        return;
    };
    let action = s.get("action").and_then(Value::as_str).unwrap_or_default();
    if !actions.contains(&action) {
        errors.push(FieldError::new(
            format!("{at}/action"),
            format!("unknown action {action:?} for adapter {adapter} (known: {})", actions.join(", ")),
        ));
        return;
    }
    let empty = Map::new();
    let args = match s.get("args") {
        None => &empty,
        Some(Value::Object(a)) => a,
        Some(other) => {
            errors.push(FieldError::new(format!("{at}/args"), format!("must be a mapping, not {}", kind_of(other))));
            return;
        }
    };
    if let Some(t) = s.get("target")
        && !t.as_str().is_some_and(|t| !t.is_empty() && t.len() <= 256 && !t.contains('*'))
    {
        errors.push(FieldError::new(format!("{at}/target"), "must name one resource (no patterns)"));
    }
    let allowed: &[&str] = match (adapter, action) {
        ("sim", "restart") => &[],
        ("sim", "scale") => &["replicas"],
        ("sim", "rollback") => &["to_version"],
        ("k8s", "restart") => &["namespace"],
        ("k8s", "scale") => &["replicas", "namespace"],
        ("k8s", "delete_pod") => &["pod", "namespace"],
        _ => &[],
    };
    unknown_fields(args, allowed, &format!("{at}/args"), errors);
    if action == "scale" && args.get("replicas").and_then(Value::as_u64).is_none_or(|r| r > 1000) {
        errors.push(FieldError::new(format!("{at}/args/replicas"), "required: a whole number from 0 to 1000"));
    }
    if action == "delete_pod" && !args.get("pod").and_then(Value::as_str).is_some_and(is_dns_subdomain) {
        errors.push(FieldError::new(format!("{at}/args/pod"), "required: the pod's name (a DNS-1123 name)"));
    }
    if args.get("namespace").is_some_and(|v| !v.as_str().is_some_and(is_dns_label)) {
        errors
            .push(FieldError::new(format!("{at}/args/namespace"), "must be a DNS-1123 label (a-z 0-9 -, at most 63)"));
    }
    if args.get("to_version").is_some_and(|v| !v.as_str().is_some_and(|v| !v.is_empty() && v.len() <= 253)) {
        errors.push(FieldError::new(format!("{at}/args/to_version"), "must be non-empty text"));
    }
    if adapter == "k8s"
        && let Some(t) = s.get("target").and_then(Value::as_str)
        && !t.strip_prefix("deployment/").is_some_and(is_dns_subdomain)
    {
        errors.push(FieldError::new(format!("{at}/target"), "a k8s target is deployment/<a DNS-1123 name>"));
    }
}

/// Parse a WPK from JSON or YAML text, validating it completely.
pub fn parse(text: &str, yaml: bool) -> Result<Wpk, Vec<FieldError>> {
    let doc: Value = if yaml {
        serde_yaml::from_str(text).map_err(|e| vec![FieldError::new("", format!("not valid YAML: {e}"))])?
    } else {
        serde_json::from_str(text).map_err(|e| vec![FieldError::new("", format!("not valid JSON: {e}"))])?
    };
    let errors = validate(&doc);
    if !errors.is_empty() {
        return Err(errors);
    }
    serde_json::from_value(doc).map_err(|e| vec![FieldError::new("", e.to_string())])
}

/// What a WPK version's signature covers, inside its sealed envelope ([`Purpose::Wpk`], the tenant).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WpkStatement {
    pub wpk: Wpk,
    /// Who registered it (the token's `sub`): a standing approval must come from someone else.
    pub registered_by: String,
    pub registered_at: String,
}

/// A WPK as stored: its signed bytes (the sealed [`WpkStatement`]) and signature, not yet trusted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredWpk {
    pub id: String,
    pub version: u32,
    /// The signed bytes: `{"payload": {"wpk": …, "registered_by", "registered_at"}, "purpose", "tenant"}`.
    pub doc: String,
    pub sha256: String,
    pub signature: String,
    pub key_id: String,
    pub created_at: String,
    pub created_by: String,
    /// The signed standing approval of an `auto` version, if an approver gave one.
    pub standing_approval: Option<Sealed>,
    /// `match.signals` and `match.resources`, copied from the document at registration so the
    /// registry can be searched without parsing every document. Only for choosing candidates:
    /// the chosen WPK is verified and must match by its signed document before anything acts.
    pub signals: Vec<String>,
    pub resources: Vec<String>,
}

impl StoredWpk {
    /// The bytes a version is signed over: its statement sealed for `tenant` and [`Purpose::Wpk`].
    pub fn signing_bytes(wpk: &Wpk, tenant: &TenantId, registered_by: &str, registered_at: &str) -> Vec<u8> {
        let statement = WpkStatement {
            wpk: wpk.clone(),
            registered_by: registered_by.to_owned(),
            registered_at: registered_at.to_owned(),
        };
        sealed_bytes(Purpose::Wpk, tenant, &statement)
    }

    /// A freshly signed version, ready to store: `bytes` from [`StoredWpk::signing_bytes`].
    pub fn signed(wpk: &Wpk, bytes: &[u8], signature: &Signature, registered_by: &str, registered_at: &str) -> Self {
        Self {
            id: wpk.id.clone(),
            version: wpk.version,
            doc: String::from_utf8_lossy(bytes).into_owned(),
            sha256: sha256_hex(bytes),
            signature: signature.to_base64(),
            key_id: signature.key_id.clone(),
            created_at: registered_at.to_owned(),
            created_by: registered_by.to_owned(),
            standing_approval: None,
            signals: wpk.matcher.signals.clone(),
            resources: wpk.matcher.resources.clone(),
        }
    }

    /// Whether the registry metadata says this WPK handles `signal` on `resource`.
    pub fn matches(&self, signal: &str, resource: &str) -> bool {
        self.signals.iter().any(|s| s == signal)
            && (self.resources.is_empty() || self.resources.iter().any(|g| glob_match(g, resource)))
    }
}

/// The sort key of a WPK version in `naksha.wpks` (partition: the tenant); versions sort
/// numerically within an id. Written by the agent, read by the federation hub.
pub fn wpk_sk(id: &str, version: u32) -> String {
    format!("{id}#{version:010}")
}

/// Why a stored WPK may not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WpkIntegrityError {
    #[error("WPK {0} v{1}: its bytes were altered after signing (sha256 mismatch)")]
    DigestMismatch(String, u32),
    #[error("WPK {0} v{1}: signature verification failed: {2}")]
    BadSignature(String, u32, SignatureError),
    #[error("WPK {0} v{1}: {2}")]
    NotForHere(String, u32, String),
    #[error("WPK {0} v{1}: the signed document does not parse or names another WPK")]
    Inconsistent(String, u32),
}

/// A WPK whose bytes and signature were verified for this tenant: the only form the agent acts
/// on. The fields are private, so one exists only through [`StoredWpk::verify`].
#[derive(Debug, Clone, PartialEq)]
pub struct SignedWpk {
    statement: Verified<WpkStatement>,
    standing_approval: Option<Sealed>,
}

impl SignedWpk {
    pub fn wpk(&self) -> &Wpk {
        &self.statement.wpk
    }

    /// Who registered it, as signed.
    pub fn registered_by(&self) -> &str {
        &self.statement.registered_by
    }

    /// sha256 of the signed bytes.
    pub fn sha256(&self) -> &str {
        self.statement.sha256()
    }

    pub fn key_id(&self) -> &str {
        self.statement.key_id()
    }

    /// The standing approval as stored: evidence only once it has been opened and checked.
    pub fn standing_approval(&self) -> Option<&Sealed> {
        self.standing_approval.as_ref()
    }
}

impl StoredWpk {
    /// Check bytes and signature before use: signed by a trusted WPK key, for this tenant, as a
    /// WPK, naming this id and version.
    pub fn verify(&self, keys: &TrustedKeys, tenant: &TenantId) -> Result<SignedWpk, WpkIntegrityError> {
        let (id, v) = (self.id.clone(), self.version);
        if sha256_hex(self.doc.as_bytes()) != self.sha256 {
            return Err(WpkIntegrityError::DigestMismatch(id, v));
        }
        let sealed =
            Sealed { signed: self.doc.clone(), signature: self.signature.clone(), key_id: self.key_id.clone() };
        let statement = sealed.open::<WpkStatement>(Purpose::Wpk, tenant, keys).map_err(|e| match e {
            SealError::Signature(s) => WpkIntegrityError::BadSignature(id.clone(), v, s),
            SealError::WrongTenant { .. } | SealError::WrongPurpose { .. } => {
                WpkIntegrityError::NotForHere(id.clone(), v, e.to_string())
            }
            SealError::NotSealed | SealError::Payload(_) => WpkIntegrityError::Inconsistent(id.clone(), v),
        })?;
        if statement.wpk.id != self.id || statement.wpk.version != self.version {
            return Err(WpkIntegrityError::Inconsistent(id, v));
        }
        Ok(SignedWpk { statement, standing_approval: self.standing_approval.clone() })
    }

    /// The unverified document, for ranking and listing (never for acting).
    pub fn peek(&self) -> Option<Wpk> {
        let envelope: Value = serde_json::from_str(&self.doc).ok()?;
        serde_json::from_value(envelope.get("payload")?.get("wpk")?.clone()).ok()
    }
}

/// The latest version of each WPK id.
pub fn latest_versions(all: Vec<StoredWpk>) -> Vec<StoredWpk> {
    let mut latest: BTreeMap<String, StoredWpk> = BTreeMap::new();
    for w in all {
        match latest.get(&w.id) {
            Some(existing) if existing.version >= w.version => {}
            _ => {
                latest.insert(w.id.clone(), w);
            }
        }
    }
    latest.into_values().collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn good() -> Value {
        json!({
            "id": "restart-unhealthy", "version": 1, "title": "Restart an unhealthy deployment",
            "match": {"signals": ["deployment_unhealthy"], "resources": ["deployment/*"]},
            "steps": [{"adapter": "sim", "action": "restart"}],
            "verify": {"healthy": true},
            "limits": {"blast_radius": 1, "max_runs_per_hour": 3}
        })
    }

    #[test]
    fn a_good_document_parses_with_safe_defaults() {
        let w = parse(&good().to_string(), false).unwrap();
        assert_eq!(w.safety, Safety { mode: Mode::Manual, dry_run: true });
        assert!(w.matches("deployment_unhealthy", "deployment/payments"));
        assert!(!w.matches("deployment_unhealthy", "statefulset/db"));
        assert!(!w.matches("disk_full", "deployment/payments"));
    }

    #[test]
    fn yaml_and_json_give_the_same_canonical_bytes() {
        let yaml = "id: restart-unhealthy\nversion: 1\ntitle: Restart an unhealthy deployment\nmatch:\n  signals: [deployment_unhealthy]\n  resources: ['deployment/*']\nsteps:\n  - {adapter: sim, action: restart}\nverify: {healthy: true}\nlimits: {blast_radius: 1, max_runs_per_hour: 3}\n";
        let a = parse(yaml, true).unwrap();
        let b = parse(&good().to_string(), false).unwrap();
        assert_eq!(a.canonical_bytes(), b.canonical_bytes());
        assert!(
            String::from_utf8(a.canonical_bytes()).unwrap().contains(r#""safety":{"dry_run":true,"mode":"manual"}"#)
        );
    }

    #[test]
    fn names_every_problem_in_a_bad_document() {
        let bad = json!({
            "id": "Bad Id!", "version": 0, "title": "",
            "match": {"signals": []},
            "safety": {"mode": "yolo", "dry_run": "no"},
            "steps": [
                {"adapter": "ssh", "action": "rm -rf"},
                {"adapter": "sim", "action": "reboot"},
                {"adapter": "sim", "action": "scale", "args": {"replicas": -1, "force": true}},
                {"adapter": "k8s", "action": "delete_pod"}
            ],
            "verify": {"healthy": "yes"},
            "limits": {"blast_radius": 0},
            "stepz": []
        });
        let mut pointers: Vec<String> = validate(&bad).into_iter().map(|e| e.pointer).collect();
        pointers.sort();
        assert_eq!(
            pointers,
            [
                "/id",
                "/limits/blast_radius",
                "/match/signals",
                "/safety/dry_run",
                "/safety/mode",
                "/steps/0/adapter",
                "/steps/1/action",
                "/steps/2/args/force",
                "/steps/2/args/replicas",
                "/steps/3/args/pod",
                "/stepz",
                "/title",
                "/verify/healthy",
                "/version"
            ]
        );
    }

    #[test]
    fn kubernetes_names_and_namespaces_must_be_dns_1123() {
        let mut doc = good();
        doc["steps"] = json!([
            {"adapter": "k8s", "action": "restart", "args": {"namespace": "../../api/v1/secrets"}},
            {"adapter": "k8s", "action": "delete_pod", "args": {"pod": "x?dryRun=None"}},
            {"adapter": "k8s", "action": "restart", "target": "deployment/Bad_Name"},
            {"adapter": "k8s", "action": "scale", "args": {"replicas": 2, "namespace": "shop"}, "target": "deployment/cart"}
        ]);
        let mut pointers: Vec<String> = validate(&doc).into_iter().map(|e| e.pointer).collect();
        pointers.sort();
        assert_eq!(pointers, ["/steps/0/args/namespace", "/steps/1/args/pod", "/steps/2/target"]);
    }

    #[test]
    fn rejects_non_mappings_and_empty_step_lists() {
        assert_eq!(validate(&json!([1, 2]))[0].pointer, "");
        let mut doc = good();
        doc["steps"] = json!([]);
        assert_eq!(validate(&doc)[0].pointer, "/steps");
        assert!(parse("{not json", false).is_err());
        assert!(parse("id: [unclosed", true).is_err());
    }

    #[test]
    fn globs_match_literally_except_stars() {
        assert!(glob_match("deployment/*", "deployment/payments"));
        assert!(glob_match("*", "anything"));
        assert!(glob_match("deployment/pay*-eu", "deployment/payments-eu"));
        assert!(!glob_match("deployment/pay*-eu", "deployment/payments-us"));
        assert!(!glob_match("deployment/payments", "deployment/payments-2"));
        assert!(glob_match("a*b*c", "axxbyyc") && !glob_match("a*b*c", "axxcyyb"));
    }

    #[test]
    fn targets_default_to_the_run_resource_and_are_distinct() {
        let mut w = parse(&good().to_string(), false).unwrap();
        w.steps.push(Step {
            adapter: "sim".into(),
            action: "restart".into(),
            args: Map::new(),
            target: Some("deployment/b".into()),
        });
        w.steps.push(Step { adapter: "sim".into(), action: "restart".into(), args: Map::new(), target: None });
        assert_eq!(w.targets("deployment/a"), ["deployment/a", "deployment/b"]);
    }

    #[test]
    fn latest_versions_keeps_the_highest_of_each_id() {
        let s = |id: &str, v: u32| StoredWpk {
            id: id.into(),
            version: v,
            doc: String::new(),
            sha256: String::new(),
            signature: String::new(),
            key_id: String::new(),
            created_at: String::new(),
            created_by: String::new(),
            standing_approval: None,
            signals: vec!["down".into()],
            resources: vec![],
        };
        let got: Vec<_> = latest_versions(vec![s("a", 1), s("a", 3), s("b", 2), s("a", 2)])
            .into_iter()
            .map(|w| (w.id, w.version))
            .collect();
        assert_eq!(got, [("a".to_owned(), 3), ("b".to_owned(), 2)]);
    }
}
