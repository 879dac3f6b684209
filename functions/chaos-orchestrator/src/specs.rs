//! Chaos experiment specs: the fault, the steady state that must hold before and after, the
//! recovery deadline, the blast radius and the rollbacks. The built-in ones are
//! `chaos_specs.yaml`; a tenant adds its own (native, or imported: [`crate::import`]).

use naksha_act::faults::FaultKind;
use naksha_contracts::input::FieldError;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// The built-in specs, as shipped.
pub const BUILTIN_YAML: &str = include_str!("../chaos_specs.yaml");

/// Longest recovery deadline a spec may set.
pub const MAX_DEADLINE_S: u64 = 3600;

/// The faults an experiment can inject: the simulated world's ([`FaultKind`]) into a deployment,
/// and `hub-partition` (the federation hub stops answering one edge node for `duration_s`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Fault {
    KillPod,
    CrashLoop,
    CpuSpike,
    Latency,
    DependencyThrottle,
    HubPartition,
}

/// The blast-radius kind of edge nodes.
pub const EDGE_NODE: &str = "edge-node";

impl Fault {
    pub const ALL: [Fault; 6] = [
        Fault::KillPod,
        Fault::CrashLoop,
        Fault::CpuSpike,
        Fault::Latency,
        Fault::DependencyThrottle,
        Fault::HubPartition,
    ];

    /// The simulated world's fault, for faults that go into a deployment.
    pub fn world(self) -> Option<FaultKind> {
        match self {
            Fault::KillPod => Some(FaultKind::KillPod),
            Fault::CrashLoop => Some(FaultKind::CrashLoop),
            Fault::CpuSpike => Some(FaultKind::CpuSpike),
            Fault::Latency => Some(FaultKind::Latency),
            Fault::DependencyThrottle => Some(FaultKind::DependencyThrottle),
            Fault::HubPartition => None,
        }
    }

    /// Whether it goes into an edge node (rather than the simulated cluster).
    pub fn on_edge(self) -> bool {
        self == Fault::HubPartition
    }
}

impl From<FaultKind> for Fault {
    fn from(k: FaultKind) -> Self {
        match k {
            FaultKind::KillPod => Fault::KillPod,
            FaultKind::CrashLoop => Fault::CrashLoop,
            FaultKind::CpuSpike => Fault::CpuSpike,
            FaultKind::Latency => Fault::Latency,
            FaultKind::DependencyThrottle => Fault::DependencyThrottle,
        }
    }
}

/// Longest partition a `hub-partition` may ask for.
pub const MAX_PARTITION_S: u64 = 1800;

/// What is injected.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultSpec {
    pub kind: Fault,
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub params: Map<String, Value>,
}

/// A steady-state probe, checked before the fault and again after.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Probe {
    /// The target is healthy (ready pods, no crash loop, metrics within their limits).
    ResourceHealth,
    /// The target's latest per-minute mean of `metric` (D.1 aggregates) is within bounds.
    Telemetry {
        metric: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        min: Option<f64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        max: Option<f64>,
    },
    /// An HTTP GET answers `status` (only to hosts the deployment allows).
    Http {
        url: String,
        #[serde(default = "ok_status")]
        status: u16,
    },
    /// No edge result lost: every trigger sent to the target node since the run started has
    /// its result (none expired or pending). Edge-node targets only.
    EdgeResults,
}

fn ok_status() -> u16 {
    200
}

/// Which resources an experiment may touch: chaos targets of `kind`, at most `count` of them (or
/// `percent` of the tenant's) in experiments of this spec at once.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BlastRadius {
    #[serde(default = "deployment")]
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub percent: Option<u32>,
}

fn deployment() -> String {
    "deployment".into()
}

impl BlastRadius {
    /// How many of `targets` matching chaos targets may be in an experiment at once.
    pub fn allowed(&self, targets: usize) -> usize {
        match (self.count, self.percent) {
            (Some(c), _) => c as usize,
            (None, Some(p)) => ((targets * p as usize).div_ceil(100)).max(1),
            (None, None) => 1,
        }
    }
}

/// A rollback: what runs after the method, whatever happened.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Rollback {
    /// Undo what is left of the injected fault (restores exactly what it replaced).
    RevertFault,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Spec {
    pub id: String,
    pub title: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub fault: FaultSpec,
    pub blast_radius: BlastRadius,
    pub steady_state: Vec<Probe>,
    pub recovery_deadline_s: u64,
    #[serde(default = "revert")]
    pub rollbacks: Vec<Rollback>,
}

fn revert() -> Vec<Rollback> {
    vec![Rollback::RevertFault]
}

#[derive(Debug, Deserialize)]
struct Catalog {
    version: u32,
    specs: Vec<Spec>,
}

/// A spec id: 1 to 64 of `a-z 0-9 - _ .`, starting with a letter or digit.
pub fn is_spec_id(s: &str) -> bool {
    (1..=64).contains(&s.len())
        && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'-' | b'_' | b'.'))
        && s.as_bytes()[0].is_ascii_alphanumeric()
}

impl Spec {
    /// How long a `hub-partition` lasts (`params.duration_s`).
    pub fn partition_s(&self) -> Option<u64> {
        self.fault.params.get("duration_s").and_then(Value::as_u64)
    }

    /// Every problem with a spec, named by JSON pointer.
    pub fn problems(&self, http_hosts: &[String]) -> Vec<FieldError> {
        let mut errors = Vec::new();
        let edge = self.fault.kind.on_edge();
        if edge != (self.blast_radius.kind == EDGE_NODE) {
            errors.push(FieldError::new(
                "/blast_radius/kind",
                if edge {
                    "hub-partition goes into edge nodes: edge-node"
                } else {
                    "edge-node takes only hub-partition"
                },
            ));
        }
        if edge {
            match self.partition_s() {
                Some(d) if (5..=MAX_PARTITION_S).contains(&d) && d < self.recovery_deadline_s => {}
                _ => errors.push(FieldError::new(
                    "/fault/params/duration_s",
                    format!("5 to {MAX_PARTITION_S} seconds, shorter than recovery_deadline_s"),
                )),
            }
        }
        if !is_spec_id(&self.id) {
            errors.push(FieldError::new("/id", "1 to 64 of a-z 0-9 - _ . starting with a letter or digit"));
        }
        if self.title.trim().is_empty() || self.title.len() > 200 {
            errors.push(FieldError::new("/title", "1 to 200 characters"));
        }
        if self.steady_state.is_empty() || self.steady_state.len() > 10 {
            errors.push(FieldError::new("/steady_state", "1 to 10 probes"));
        }
        for (i, p) in self.steady_state.iter().enumerate() {
            match p {
                Probe::ResourceHealth => {}
                Probe::EdgeResults if !edge => {
                    errors.push(FieldError::new(format!("/steady_state/{i}"), "edge-results probes edge nodes only"));
                }
                Probe::EdgeResults => {}
                Probe::Telemetry { metric, min, max } => {
                    if metric.is_empty() || metric.len() > 128 {
                        errors.push(FieldError::new(format!("/steady_state/{i}/metric"), "1 to 128 characters"));
                    }
                    if min.is_none() && max.is_none() {
                        errors.push(FieldError::new(
                            format!("/steady_state/{i}"),
                            "a telemetry probe needs min, max or both",
                        ));
                    }
                }
                Probe::Http { url, status } => {
                    if !http_allowed(url, http_hosts) {
                        errors.push(FieldError::new(
                            format!("/steady_state/{i}/url"),
                            "an HTTP probe may only call the hosts this deployment allows (CHAOS_HTTP_PROBE_HOSTS)",
                        ));
                    }
                    if !(100..=599).contains(status) {
                        errors.push(FieldError::new(format!("/steady_state/{i}/status"), "an HTTP status"));
                    }
                }
            }
        }
        if !(10..=MAX_DEADLINE_S).contains(&self.recovery_deadline_s) {
            errors.push(FieldError::new("/recovery_deadline_s", format!("10 to {MAX_DEADLINE_S} seconds")));
        }
        let b = &self.blast_radius;
        if b.kind.is_empty() || b.kind.len() > 64 {
            errors.push(FieldError::new("/blast_radius/kind", "a resource kind, e.g. deployment"));
        }
        match (b.count, b.percent) {
            (Some(c), None) if (1..=100).contains(&c) => {}
            (None, Some(p)) if (1..=100).contains(&p) => {}
            (None, None) => errors.push(FieldError::new("/blast_radius", "a count (1 to 100) or a percent (1 to 100)")),
            _ => errors.push(FieldError::new("/blast_radius", "a count (1 to 100) or a percent (1 to 100), not both")),
        }
        if self.rollbacks.is_empty() {
            errors.push(FieldError::new("/rollbacks", "at least one rollback: rollbacks always run"));
        }
        if serde_json::to_string(&self.fault.params).map_or(0, |p| p.len()) > 2048 {
            errors.push(FieldError::new("/fault/params", "at most 2 KiB"));
        }
        errors
    }

    /// Parse and check a native spec document.
    pub fn parse(doc: &Value, http_hosts: &[String]) -> Result<Self, Vec<FieldError>> {
        let spec: Spec = serde_json::from_value(doc.clone()).map_err(|e| vec![FieldError::new("", e.to_string())])?;
        let problems = spec.problems(http_hosts);
        if problems.is_empty() { Ok(spec) } else { Err(problems) }
    }
}

/// Whether an HTTP probe's URL is on an allowed host (`host` or `host:port`); nothing is allowed
/// unless the deployment says so.
pub fn http_allowed(url: &str, hosts: &[String]) -> bool {
    let Some(rest) = url.strip_prefix("https://").or_else(|| url.strip_prefix("http://")) else { return false };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    !authority.is_empty() && !authority.contains('@') && hosts.iter().any(|h| h == authority)
}

/// The built-in specs.
pub fn builtin() -> Result<Vec<Spec>, String> {
    let catalog: Catalog = serde_yaml::from_str(BUILTIN_YAML).map_err(|e| format!("chaos_specs.yaml: {e}"))?;
    if catalog.version != 1 {
        return Err(format!("chaos_specs.yaml: version {} is not 1", catalog.version));
    }
    for s in &catalog.specs {
        let problems = s.problems(&[]);
        if !problems.is_empty() {
            return Err(format!("chaos_specs.yaml: {}: {problems:?}", s.id));
        }
    }
    Ok(catalog.specs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_builtin_specs_load_and_cover_every_fault() {
        let specs = builtin().unwrap();
        let ids: Vec<&str> = specs.iter().map(|s| s.id.as_str()).collect();
        for want in ["kill-pod", "crash-loop", "cpu-spike", "latency", "dependency-throttle", "hub-partition"] {
            assert!(ids.contains(&want), "{want} in {ids:?}");
        }
        for kind in Fault::ALL {
            assert!(specs.iter().any(|s| s.fault.kind == kind), "{kind:?}");
        }
        assert!(specs.iter().all(|s| !s.steady_state.is_empty() && !s.rollbacks.is_empty()));
    }

    #[test]
    fn every_problem_with_a_spec_is_named() {
        let bad = json!({
            "id": "Bad Id", "title": "", "fault": {"kind": "latency"},
            "blast_radius": {"count": 1, "percent": 5}, "steady_state": [{"type": "telemetry", "metric": "x"},
            {"type": "http", "url": "http://169.254.169.254/latest/meta-data", "status": 200}],
            "recovery_deadline_s": 1, "rollbacks": []
        });
        let errs = Spec::parse(&bad, &["127.0.0.1:9000".into()]).unwrap_err();
        let mut p: Vec<_> = errs.into_iter().map(|e| e.pointer).collect();
        p.sort();
        assert_eq!(
            p,
            [
                "/blast_radius",
                "/id",
                "/recovery_deadline_s",
                "/rollbacks",
                "/steady_state/0",
                "/steady_state/1/url",
                "/title"
            ]
        );
        assert!(Spec::parse(&json!({"id": "x", "fault": {"kind": "meteor"}}), &[]).is_err());
    }

    #[test]
    fn a_partition_goes_into_edge_nodes_for_a_while_and_edge_probes_only_there() {
        let spec = |kind: &str, radius: &str, params: Value, probe: &str| {
            json!({
                "id": "p", "title": "t", "fault": {"kind": kind, "params": params},
                "blast_radius": {"kind": radius, "count": 1}, "steady_state": [{"type": probe}],
                "recovery_deadline_s": 120
            })
        };
        let pointers = |doc: Value| -> Vec<String> {
            Spec::parse(&doc, &[]).err().unwrap_or_default().into_iter().map(|e| e.pointer).collect()
        };
        assert!(pointers(spec("hub-partition", "edge-node", json!({"duration_s": 30}), "edge-results")).is_empty());
        assert_eq!(
            pointers(spec("hub-partition", "deployment", json!({"duration_s": 30}), "edge-results")),
            ["/blast_radius/kind"]
        );
        assert_eq!(
            pointers(spec("hub-partition", "edge-node", json!({"duration_s": 300}), "edge-results")),
            ["/fault/params/duration_s"],
            "a partition must end before the deadline"
        );
        assert_eq!(
            pointers(spec("hub-partition", "edge-node", json!({}), "edge-results")),
            ["/fault/params/duration_s"]
        );
        assert_eq!(pointers(spec("latency", "deployment", json!({}), "edge-results")), ["/steady_state/0"]);
        assert_eq!(pointers(spec("latency", "edge-node", json!({}), "resource-health")), ["/blast_radius/kind"]);
    }

    #[test]
    fn http_probes_reach_only_allowed_hosts() {
        let hosts = vec!["127.0.0.1:9000".to_owned()];
        assert!(http_allowed("http://127.0.0.1:9000/health", &hosts));
        assert!(!http_allowed("http://127.0.0.1:9001/health", &hosts));
        assert!(!http_allowed("http://evil@127.0.0.1:9000/", &hosts));
        assert!(!http_allowed("file:///etc/passwd", &hosts));
        assert!(!http_allowed("http://127.0.0.1:9000/health", &[]));
    }

    #[test]
    fn a_blast_radius_allows_a_count_or_a_share_of_the_targets() {
        let b = |count, percent| BlastRadius { kind: "deployment".into(), count, percent };
        assert_eq!(b(Some(2), None).allowed(10), 2);
        assert_eq!(b(None, Some(25)).allowed(10), 3);
        assert_eq!(b(None, Some(25)).allowed(1), 1);
        assert_eq!(b(None, None).allowed(10), 1);
    }
}
