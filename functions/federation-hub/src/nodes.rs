//! Edge nodes: what registers, how labels look, and when a node counts as stale or offline.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};
use naksha_contracts::edge::{key_fingerprint, p256_spki_from_pem};
use naksha_contracts::input::FieldError;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Most labels one node carries.
pub const MAX_LABELS: usize = 32;

/// Liveness as the hub last recorded it (the sweep moves it; a heartbeat makes it `online`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NodeStatus {
    Online,
    Stale,
    Offline,
}

impl NodeStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            NodeStatus::Online => "online",
            NodeStatus::Stale => "stale",
            NodeStatus::Offline => "offline",
        }
    }
}

/// When a node not heard from becomes stale, then offline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Liveness {
    pub stale_after: Duration,
    pub offline_after: Duration,
}

impl Default for Liveness {
    fn default() -> Self {
        Self { stale_after: Duration::seconds(90), offline_after: Duration::seconds(600) }
    }
}

impl Liveness {
    pub fn status(&self, last_seen: DateTime<Utc>, now: DateTime<Utc>) -> NodeStatus {
        let silent = now - last_seen;
        if silent >= self.offline_after {
            NodeStatus::Offline
        } else if silent >= self.stale_after {
            NodeStatus::Stale
        } else {
            NodeStatus::Online
        }
    }
}

/// A registered node, as the hub keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Node {
    pub node_id: String,
    /// The id of its public key (`node-<16 hex of the key's sha256>`), named by its signed results.
    pub kid: String,
    pub public_key_pem: String,
    pub labels: BTreeMap<String, String>,
    pub version: String,
    pub registered_at: DateTime<Utc>,
    pub last_seen: DateTime<Utc>,
    pub status: NodeStatus,
    /// What the node said about the kill switch in its last heartbeat: it has seen the halt.
    #[serde(default)]
    pub halt_seen: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub halt_seen_at: Option<DateTime<Utc>>,
    /// A chaos run (D.5 `hub-partition`) that has the hub ignore this node until `partition_until`.
    /// Only the chaos orchestrator writes it; the hub only reads it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partition_run: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partition_until: Option<DateTime<Utc>>,
}

impl Node {
    /// Until when the hub ignores this node, if a partition is in force at `now`.
    pub fn partitioned(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.partition_until.filter(|until| *until > now)
    }

    /// The node as `GET /federation/nodes` shows it.
    pub fn view(&self) -> Value {
        serde_json::json!({
            "node_id": self.node_id,
            "status": self.status.as_str(),
            "last_seen": self.last_seen.to_rfc3339(),
            "registered_at": self.registered_at.to_rfc3339(),
            "labels": self.labels,
            "version": self.version,
            "kid": self.kid,
            "public_key_pem": self.public_key_pem,
            "halt_seen": self.halt_seen,
            "halt_seen_at": self.halt_seen_at.map(|t| t.to_rfc3339()),
            "partitioned_until": self.partition_until.map(|t| t.to_rfc3339()),
        })
    }
}

/// The body of `POST /federation/register`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registration {
    pub public_key_pem: String,
    pub kid: String,
    pub labels: BTreeMap<String, String>,
    pub version: String,
}

/// A label key: 1 to 63 of `a-z 0-9 . _ / -`, starting with a letter or digit.
pub fn is_label_key(k: &str) -> bool {
    (1..=63).contains(&k.len())
        && k.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_' | b'/' | b'-'))
        && k.as_bytes()[0].is_ascii_alphanumeric()
}

/// A label value: 0 to 63 of `A-Z a-z 0-9 . _ -`.
pub fn is_label_value(v: &str) -> bool {
    v.len() <= 63 && v.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// Labels from a JSON object, every problem named under `at`.
pub fn parse_labels(v: Option<&Value>, at: &str, errors: &mut Vec<FieldError>) -> BTreeMap<String, String> {
    let mut labels = BTreeMap::new();
    let Some(v) = v else { return labels };
    let Some(obj) = v.as_object() else {
        errors.push(FieldError::new(at, "must be an object of label names to values"));
        return labels;
    };
    if obj.len() > MAX_LABELS {
        errors.push(FieldError::new(at, format!("at most {MAX_LABELS} labels")));
    }
    for (k, v) in obj {
        let value = v.as_str();
        if !is_label_key(k) {
            errors.push(FieldError::new(
                at.to_owned(),
                format!("label name {:?} is not 1 to 63 of a-z 0-9 . _ / -", trim(k)),
            ));
        } else if !value.is_some_and(is_label_value) {
            errors.push(FieldError::new(format!("{at}/{k}"), "must be text of at most 63 of A-Z a-z 0-9 . _ -"));
        } else if let Some(value) = value {
            labels.insert(k.clone(), value.to_owned());
        }
    }
    labels
}

fn trim(s: &str) -> String {
    s.chars().take(64).collect()
}

impl Registration {
    pub fn parse(body: &Value) -> Result<Self, Vec<FieldError>> {
        let mut errors = Vec::new();
        let Some(obj) = body.as_object() else {
            return Err(vec![FieldError::new("", "expected {\"public_key\", \"labels\", \"version\"}")]);
        };
        for k in obj.keys().filter(|k| !["public_key", "labels", "version"].contains(&k.as_str())) {
            errors
                .push(FieldError::new(format!("/{}", trim(k)), "unknown field (expected public_key, labels, version)"));
        }
        let pem = obj.get("public_key").and_then(Value::as_str).unwrap_or_default();
        let spki = match p256_spki_from_pem(pem) {
            Ok(der) => Some(der),
            Err(_) => {
                errors.push(FieldError::new(
                    "/public_key",
                    "required: the node's P-256 public key as PEM (BEGIN PUBLIC KEY)",
                ));
                None
            }
        };
        let labels = parse_labels(obj.get("labels"), "/labels", &mut errors);
        let version = obj.get("version").and_then(Value::as_str).unwrap_or_default();
        if !(1..=64).contains(&version.len()) || !version.bytes().all(|b| b.is_ascii_graphic()) {
            errors.push(FieldError::new("/version", "required: the node's version, 1 to 64 visible characters"));
        }
        match spki {
            Some(spki) if errors.is_empty() => Ok(Self {
                public_key_pem: naksha_contracts::signing::public_key_pem(&spki),
                kid: key_fingerprint("node", &spki),
                labels,
                version: version.to_owned(),
            }),
            _ => Err(errors),
        }
    }
}

/// Whether `labels` carry every pair of `selector`.
pub fn selects(selector: &BTreeMap<String, String>, labels: &BTreeMap<String, String>) -> bool {
    selector.iter().all(|(k, v)| labels.get(k) == Some(v))
}

#[cfg(test)]
mod tests {
    use super::*;
    use naksha_contracts::signing::{LocalKey, public_key_pem};
    use serde_json::json;

    fn pem() -> String {
        public_key_pem(&LocalKey::generate("n").unwrap().public_key_der())
    }

    #[test]
    fn a_registration_names_its_key_by_fingerprint_and_keeps_its_labels() {
        let r = Registration::parse(
            &json!({"public_key": pem(), "labels": {"site": "store-1", "tier": "edge"}, "version": "0.1.0"}),
        )
        .unwrap();
        assert!(r.kid.starts_with("node-") && r.kid.len() == 21);
        assert_eq!(r.labels.get("site").map(String::as_str), Some("store-1"));
        assert_eq!(r.public_key_pem, pem_roundtrip(&r.public_key_pem));
    }

    fn pem_roundtrip(p: &str) -> String {
        public_key_pem(&p256_spki_from_pem(p).unwrap())
    }

    #[test]
    fn every_problem_with_a_registration_is_named() {
        let errs =
            Registration::parse(&json!({"public_key": "x", "labels": {"Bad Key": "v", "ok": "has space"}, "extra": 1}))
                .unwrap_err();
        let mut pointers: Vec<_> = errs.into_iter().map(|e| e.pointer).collect();
        pointers.sort();
        assert_eq!(pointers, ["/extra", "/labels", "/labels/ok", "/public_key", "/version"]);
        assert!(Registration::parse(&json!([1])).is_err());
        let many: serde_json::Map<String, Value> = (0..=MAX_LABELS).map(|i| (format!("k{i}"), json!("v"))).collect();
        assert!(Registration::parse(&json!({"public_key": pem(), "labels": many, "version": "1"})).is_err());
    }

    #[test]
    fn a_node_goes_stale_then_offline_as_it_stays_silent() {
        let l = Liveness { stale_after: Duration::seconds(60), offline_after: Duration::seconds(300) };
        let t0 = Utc::now();
        assert_eq!(l.status(t0, t0 + Duration::seconds(59)), NodeStatus::Online);
        assert_eq!(l.status(t0, t0 + Duration::seconds(60)), NodeStatus::Stale);
        assert_eq!(l.status(t0, t0 + Duration::seconds(300)), NodeStatus::Offline);
    }

    #[test]
    fn a_selector_matches_nodes_carrying_all_its_labels() {
        let labels: BTreeMap<String, String> = [("site".into(), "a".into()), ("tier".into(), "edge".into())].into();
        let sel = |pairs: &[(&str, &str)]| pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        assert!(selects(&sel(&[("tier", "edge")]), &labels));
        assert!(selects(&sel(&[]), &labels));
        assert!(!selects(&sel(&[("tier", "edge"), ("site", "b")]), &labels));
        assert!(!selects(&sel(&[("zone", "x")]), &labels));
    }
}
