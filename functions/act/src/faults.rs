//! Faults in the simulated world (D.5 chaos): what a fault does to a resource, how a chaos
//! rollback undoes what is left of it, and what the world reports about a resource — its metrics,
//! and the warnings a cluster and its monitoring would emit (Kubernetes events, Prometheus alerts).
//!
//! The world does not know who injected what: a fault changes the resource's [`Condition`]; the
//! reports follow from the condition alone, as a real cluster's would.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// The faults the simulated world knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FaultKind {
    /// Pods of the deployment are killed and do not come back by themselves.
    KillPod,
    /// A bad version: containers start and crash, again and again.
    CrashLoop,
    /// CPU saturates (a hot loop, a traffic burst).
    CpuSpike,
    /// Requests slow down (a leak that a restart clears).
    Latency,
    /// A dependency throttles: requests fail until traffic fails over.
    DependencyThrottle,
}

impl FaultKind {
    pub const ALL: [FaultKind; 5] = [
        FaultKind::KillPod,
        FaultKind::CrashLoop,
        FaultKind::CpuSpike,
        FaultKind::Latency,
        FaultKind::DependencyThrottle,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            FaultKind::KillPod => "kill-pod",
            FaultKind::CrashLoop => "crash-loop",
            FaultKind::CpuSpike => "cpu-spike",
            FaultKind::Latency => "latency",
            FaultKind::DependencyThrottle => "dependency-throttle",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// Normal values a resource returns to.
pub const BASE_CPU_PCT: u32 = 35;
pub const BASE_LATENCY_MS: u32 = 80;

/// Thresholds past which the world complains (and a resource is not healthy).
pub const CPU_ALERT_PCT: u32 = 85;
pub const LATENCY_ALERT_MS: u32 = 400;
pub const ERROR_ALERT_PERMILLE: u32 = 50;

fn base_cpu() -> u32 {
    BASE_CPU_PCT
}

fn base_latency() -> u32 {
    BASE_LATENCY_MS
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// A fault as recorded on the resource it was injected into, with what it replaced, so a chaos
/// rollback restores exactly that.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fault {
    pub kind: FaultKind,
    pub injected_at: String,
    /// The resource's version before a crash-loop fault.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version_before: Option<String>,
    /// The resource's previous version before a crash-loop fault (none: it had none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_version_before: Option<String>,
}

/// How a simulated resource is doing, beyond its spec.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Condition {
    /// Marked as a chaos target: only these may be chosen by an experiment.
    #[serde(default, skip_serializing_if = "is_false")]
    pub chaos_target: bool,
    /// Pods ready, when fewer than the replicas.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ready: Option<u32>,
    #[serde(default, skip_serializing_if = "is_false")]
    pub crash_looping: bool,
    #[serde(default = "base_cpu")]
    pub cpu_pct: u32,
    #[serde(default = "base_latency")]
    pub latency_ms: u32,
    /// Failed requests per thousand.
    #[serde(default)]
    pub error_permille: u32,
    /// A dependency throttles this resource's calls.
    #[serde(default, skip_serializing_if = "is_false")]
    pub throttled: bool,
    /// Traffic fails over to a secondary dependency (what heals a throttled one).
    #[serde(default, skip_serializing_if = "is_false")]
    pub failover: bool,
    /// Faults injected and not rolled back yet, by chaos run id.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub faults: BTreeMap<String, Fault>,
}

impl Default for Condition {
    fn default() -> Self {
        Self {
            chaos_target: false,
            ready: None,
            crash_looping: false,
            cpu_pct: BASE_CPU_PCT,
            latency_ms: BASE_LATENCY_MS,
            error_permille: 0,
            throttled: false,
            failover: false,
            faults: BTreeMap::new(),
        }
    }
}

impl Condition {
    /// Whether anything about the resource is off (a fault's effects, or one still recorded).
    pub fn is_disturbed(&self) -> bool {
        !self.faults.is_empty()
            || self.ready.is_some()
            || self.crash_looping
            || self.cpu_pct >= CPU_ALERT_PCT
            || self.latency_ms >= LATENCY_ALERT_MS
            || self.error_permille >= ERROR_ALERT_PERMILLE
    }

    /// Health as the world would judge it from the condition alone.
    pub fn healthy(&self, replicas: u32) -> bool {
        self.ready.is_none_or(|r| r >= replicas)
            && !self.crash_looping
            && self.cpu_pct < CPU_ALERT_PCT
            && self.latency_ms < LATENCY_ALERT_MS
            && self.error_permille < ERROR_ALERT_PERMILLE
    }
}

/// What the world reports about one resource: metrics, and warnings.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    /// `(metric name, value)`.
    pub metrics: Vec<(&'static str, f64)>,
    pub warnings: Vec<Warning>,
}

/// A warning as a cluster emits it (a Kubernetes event) or as its monitoring fires it (an alert).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    /// `k8s_event` or `alert`.
    pub source: &'static str,
    /// The event reason or the alert name.
    pub reason: &'static str,
    pub message: String,
}

/// What the cluster and its monitoring report about a resource in this condition.
pub fn report(replicas: u32, restarts: u32, c: &Condition) -> Report {
    let ready = c.ready.unwrap_or(replicas).min(replicas);
    let ratio = if replicas == 0 { 1.0 } else { f64::from(ready) / f64::from(replicas) };
    let metrics = vec![
        ("ready_ratio", ratio),
        ("cpu_pct", f64::from(c.cpu_pct)),
        ("latency_ms", f64::from(c.latency_ms)),
        ("error_rate", f64::from(c.error_permille) / 1000.0),
        ("restarts", f64::from(restarts)),
    ];
    let mut warnings = Vec::new();
    if ready < replicas && !c.crash_looping {
        warnings.push(Warning {
            source: "k8s_event",
            reason: "Unhealthy",
            message: format!("Readiness probe failed: {ready} of {replicas} pods ready"),
        });
    }
    if c.crash_looping {
        warnings.push(Warning {
            source: "k8s_event",
            reason: "BackOff",
            message: "Back-off restarting failed container".into(),
        });
    }
    if c.cpu_pct >= CPU_ALERT_PCT {
        warnings.push(Warning {
            source: "alert",
            reason: "CPUThrottlingHigh",
            message: format!("CPU at {}% of requests", c.cpu_pct),
        });
    }
    if c.latency_ms >= LATENCY_ALERT_MS {
        warnings.push(Warning {
            source: "alert",
            reason: "LatencySLOBreach",
            message: format!("p50 latency {} ms", c.latency_ms),
        });
    }
    if c.error_permille >= ERROR_ALERT_PERMILLE {
        warnings.push(Warning {
            source: "alert",
            reason: if c.throttled { "DependencyThrottled" } else { "HighErrorRate" },
            message: format!("{}‰ of requests fail", c.error_permille),
        });
    }
    Report { metrics, warnings }
}

/// The fault's parameters, with defaults.
pub fn param(params: &Map<String, Value>, name: &str, default: u64) -> u64 {
    params.get(name).and_then(Value::as_u64).unwrap_or(default)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_normal_resource_reports_no_warning_and_each_disturbance_its_own() {
        let normal = Condition::default();
        assert!(normal.healthy(3) && !normal.is_disturbed());
        assert!(report(3, 0, &normal).warnings.is_empty());
        let reasons = |c: &Condition| report(3, 0, c).warnings.iter().map(|w| w.reason).collect::<Vec<_>>();
        assert_eq!(reasons(&Condition { ready: Some(1), ..Condition::default() }), ["Unhealthy"]);
        assert_eq!(reasons(&Condition { crash_looping: true, ready: Some(0), ..Condition::default() }), ["BackOff"]);
        assert_eq!(reasons(&Condition { cpu_pct: 95, ..Condition::default() }), ["CPUThrottlingHigh"]);
        assert_eq!(reasons(&Condition { latency_ms: 900, ..Condition::default() }), ["LatencySLOBreach"]);
        assert_eq!(
            reasons(&Condition { throttled: true, error_permille: 250, ..Condition::default() }),
            ["DependencyThrottled"]
        );
        let r = report(4, 2, &Condition { ready: Some(2), ..Condition::default() });
        assert!(r.metrics.contains(&("ready_ratio", 0.5)) && r.metrics.contains(&("restarts", 2.0)));
    }

    #[test]
    fn fault_kinds_round_trip_their_names() {
        for k in FaultKind::ALL {
            assert_eq!(FaultKind::parse(k.as_str()), Some(k));
        }
        assert_eq!(FaultKind::parse("meteor"), None);
    }
}
