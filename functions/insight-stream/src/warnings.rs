//! Warnings a cluster or its monitoring sends as telemetry — Kubernetes Warning events and firing
//! alerts — raise a signal at once, without the detector: they are someone's judgement already.
//!
//! A warning arrives as an event of its resource:
//!
//! ```json
//! {"source": "deployment/payments", "name": "k8s_event", "kind": "event", "value": 1,
//!  "labels": {"type": "Warning", "reason": "BackOff"}}
//! {"source": "deployment/payments", "name": "alert", "kind": "event", "value": 1,
//!  "labels": {"alertname": "CPUThrottlingHigh", "severity": "warning"}}
//! ```
//!
//! Repeats of one warning within [`QUIET_MINUTES`] are one incident (one signal, one run); a
//! warning after that long a quiet is a new incident.

use naksha_contracts::telemetry::SeriesMeta;

/// Minutes without the warning after which it counts as a new incident.
pub const QUIET_MINUTES: i64 = 15;

/// The signal a series of warnings raises, if it is one.
pub fn signal_for(meta: &SeriesMeta) -> Option<String> {
    let label = |k: &str| meta.labels.get(k).map(String::as_str);
    match meta.name.as_str() {
        "k8s_event" if label("type") == Some("Warning") => {
            let reason = label("reason")?;
            Some(match reason {
                "Unhealthy" | "Killing" => "deployment_unhealthy".to_owned(),
                "BackOff" | "CrashLoopBackOff" => "crash_loop".to_owned(),
                "FailedScheduling" => "unschedulable".to_owned(),
                other => format!("k8s.{}", snake(other)),
            })
        }
        "alert" if matches!(label("severity"), Some("warning" | "critical")) => {
            let name = label("alertname")?;
            Some(match name {
                "CPUThrottlingHigh" => "cpu_saturation".to_owned(),
                "LatencySLOBreach" => "latency_high".to_owned(),
                "DependencyThrottled" => "dependency_throttled".to_owned(),
                "HighErrorRate" => "error_rate_high".to_owned(),
                "KubePodCrashLooping" => "crash_loop".to_owned(),
                other => format!("alert.{}", snake(other)),
            })
        }
        _ => None,
    }
}

/// `CPUThrottlingHigh` → `cpu_throttling_high`, in the characters WPK signals allow.
fn snake(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 4);
    let mut prev_lower = false;
    for c in s.chars().take(80) {
        if c.is_ascii_uppercase() {
            if prev_lower {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
            prev_lower = false;
        } else if c.is_ascii_alphanumeric() {
            out.push(c);
            prev_lower = c.is_ascii_lowercase() || c.is_ascii_digit();
        } else {
            out.push('_');
            prev_lower = false;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn meta(name: &str, labels: &[(&str, &str)]) -> SeriesMeta {
        SeriesMeta {
            source: "deployment/payments".into(),
            name: name.into(),
            labels: labels.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect::<BTreeMap<_, _>>(),
        }
    }

    #[test]
    fn warnings_name_their_signal_and_everything_else_is_left_to_the_detector() {
        assert_eq!(
            signal_for(&meta("k8s_event", &[("type", "Warning"), ("reason", "BackOff")])).as_deref(),
            Some("crash_loop")
        );
        assert_eq!(
            signal_for(&meta("k8s_event", &[("type", "Warning"), ("reason", "Unhealthy")])).as_deref(),
            Some("deployment_unhealthy")
        );
        assert_eq!(
            signal_for(&meta("k8s_event", &[("type", "Warning"), ("reason", "OOMKilled")])).as_deref(),
            Some("k8s.oomkilled")
        );
        assert_eq!(
            signal_for(&meta("alert", &[("alertname", "CPUThrottlingHigh"), ("severity", "warning")])).as_deref(),
            Some("cpu_saturation")
        );
        assert_eq!(
            signal_for(&meta("alert", &[("alertname", "DiskFillingUp"), ("severity", "critical")])).as_deref(),
            Some("alert.disk_filling_up")
        );
        assert_eq!(signal_for(&meta("k8s_event", &[("type", "Normal"), ("reason", "Scheduled")])), None);
        assert_eq!(signal_for(&meta("alert", &[("alertname", "Watchdog"), ("severity", "none")])), None);
        assert_eq!(signal_for(&meta("latency_ms", &[])), None);
        assert_eq!(signal_for(&meta("k8s_event", &[("type", "Warning")])), None, "no reason, no signal");
    }
}
