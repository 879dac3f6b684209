//! The template's schedules, fired as EventBridge would fire them: each function with a
//! `Schedule` event whose expression is `rate(...)` is invoked through `cargo lambda watch`'s
//! invoke API with a scheduled event, once per period (the first one period after start). `cron`
//! expressions and schedules that are not plainly enabled are left alone (tests and the demo
//! invoke those functions directly).

use std::time::Duration;

use serde_json::{Value, json};

/// The period of a `rate(N unit)` expression.
pub fn period(expression: &str) -> Option<Duration> {
    let inner = expression.trim().strip_prefix("rate(")?.strip_suffix(')')?;
    let (n, unit) = inner.trim().split_once(' ')?;
    let n: u64 = n.parse().ok().filter(|n| *n > 0)?;
    let secs = match unit.trim() {
        "minute" | "minutes" => 60,
        "hour" | "hours" => 3600,
        "day" | "days" => 86_400,
        _ => return None,
    };
    Some(Duration::from_secs(n * secs))
}

/// Local periods that replace the template's, from `NAKSHA_SCHEDULE_PERIODS`
/// (`LogicalId=seconds,...`): the local stack fires some schedules faster than the cloud can.
pub fn overrides(spec: &str) -> std::collections::BTreeMap<String, Duration> {
    spec.split(',')
        .filter_map(|pair| {
            let (id, secs) = pair.trim().split_once('=')?;
            let secs: u64 = secs.trim().parse().ok().filter(|s| *s > 0)?;
            Some((id.trim().to_owned(), Duration::from_secs(secs)))
        })
        .collect()
}

/// Whether a schedule's `Enabled`/`State` says it runs (absent: it does).
pub fn enabled(flag: Option<&serde_yaml::Value>) -> bool {
    match flag {
        None => true,
        Some(serde_yaml::Value::Bool(b)) => *b,
        Some(serde_yaml::Value::String(s)) => s.eq_ignore_ascii_case("ENABLED") || s.eq_ignore_ascii_case("true"),
        Some(_) => false,
    }
}

/// The event EventBridge sends a scheduled function.
pub fn scheduled_event(rule: &str, input: Option<&str>) -> Value {
    if let Some(custom) = input.and_then(|i| serde_json::from_str::<Value>(i).ok()) {
        return custom;
    }
    json!({
        "version": "0",
        "id": format!("local-{}", chrono::Utc::now().timestamp_millis()),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": "123456789012",
        "time": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        "region": "us-east-1",
        "resources": [format!("arn:aws:events:us-east-1:123456789012:rule/{rule}")],
        "detail": {}
    })
}

/// Fire `function` every `period` until the process ends.
pub async fn run(
    http: reqwest::Client,
    invoke_url: String,
    function: String,
    rule: String,
    input: Option<String>,
    period: Duration,
) {
    let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        let event = scheduled_event(&rule, input.as_deref());
        match http.post(&invoke_url).json(&event).send().await {
            Ok(r) => tracing::info!(function = %function, rule = %rule, status = r.status().as_u16(), "schedule fired"),
            Err(e) => tracing::warn!(function = %function, rule = %rule, error = %e, "schedule could not fire"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_are_read_and_anything_else_is_not() {
        assert_eq!(period("rate(1 minute)"), Some(Duration::from_secs(60)));
        assert_eq!(period("rate(5 minutes)"), Some(Duration::from_secs(300)));
        assert_eq!(period("rate(1 hour)"), Some(Duration::from_secs(3600)));
        assert_eq!(period("rate(2 days)"), Some(Duration::from_secs(172_800)));
        assert_eq!(period("cron(0 9 ? * MON *)"), None);
        assert_eq!(period("rate(0 minutes)"), None);
        assert_eq!(period("rate(1 fortnight)"), None);
    }

    #[test]
    fn local_periods_override_the_templates_by_logical_id() {
        let o = overrides("SimExporterFunction=5, Other=x,Zero=0,,FederationSweepFunction = 20");
        assert_eq!(o.len(), 2);
        assert_eq!(o["SimExporterFunction"], Duration::from_secs(5));
        assert_eq!(o["FederationSweepFunction"], Duration::from_secs(20));
        assert!(overrides("").is_empty());
    }

    #[test]
    fn only_plainly_enabled_schedules_fire() {
        let yaml = |s: &str| serde_yaml::from_str::<serde_yaml::Value>(s).unwrap();
        assert!(enabled(None));
        assert!(enabled(Some(&yaml("true"))) && enabled(Some(&yaml("ENABLED"))));
        assert!(!enabled(Some(&yaml("false"))) && !enabled(Some(&yaml("DISABLED"))));
        assert!(!enabled(Some(&yaml("{Ref: GameDayEnabled}"))), "a parameter decides in the cloud, not here");
        assert_eq!(scheduled_event("r", None)["detail-type"], "Scheduled Event");
        assert_eq!(scheduled_event("r", Some(r#"{"spec":"kill-pod"}"#))["spec"], "kill-pod");
    }
}
