//! The D.1 aggregates of a resource's series: every series whose `source` is the resource, over
//! the last minutes.

use std::collections::BTreeMap;
use std::future::Future;

use naksha_contracts::TenantId;
use naksha_contracts::telemetry::AggregateRow;
use serde_json::{Value, json};

/// An observe plugin could not see what it was asked to; its output names why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ObserveError(pub String);

pub trait AggregateQuery: Send + Sync {
    /// Rows of `tenant`'s series with `source`, from `since_minute` (epoch s) on.
    fn by_source(
        &self,
        tenant: &TenantId,
        source: &str,
        since_minute: i64,
    ) -> impl Future<Output = Result<Vec<AggregateRow>, ObserveError>> + Send;
}

#[derive(Debug, Clone)]
pub struct TelemetryObserver<T> {
    pub query: T,
}

impl<T: AggregateQuery> TelemetryObserver<T> {
    pub async fn observe(&self, tenant: &TenantId, resource: &str, window_minutes: i64) -> Result<Value, ObserveError> {
        let since = (chrono::Utc::now().timestamp() / 60 - window_minutes) * 60;
        let rows = self.query.by_source(tenant, resource, since).await?;
        Ok(summarise(&rows))
    }
}

/// Most series one observation summarises (the busiest first); the rest are counted.
pub const MAX_SERIES: usize = 50;

/// Per series: samples, mean, min, max over the window, and the latest minute's mean — for at
/// most [`MAX_SERIES`] series, those with the most samples.
pub fn summarise(rows: &[AggregateRow]) -> Value {
    let mut by_series: BTreeMap<(String, String), Vec<&AggregateRow>> = BTreeMap::new();
    for r in rows {
        let labels = serde_json::to_string(&r.labels).unwrap_or_default();
        by_series.entry((r.name.clone(), labels)).or_default().push(r);
    }
    let series: Vec<Value> = by_series
        .into_values()
        .map(|mut rs| {
            rs.sort_by_key(|r| r.minute);
            let count: f64 = rs.iter().map(|r| r.count as f64).sum();
            let sum: f64 = rs.iter().map(|r| r.sum).sum();
            let last = rs[rs.len() - 1];
            json!({
                "name": last.name,
                "labels": last.labels,
                "minutes": rs.len(),
                "samples": count,
                "mean": if count > 0.0 { sum / count } else { 0.0 },
                "min": rs.iter().map(|r| r.min).fold(f64::INFINITY, f64::min),
                "max": rs.iter().map(|r| r.max).fold(f64::NEG_INFINITY, f64::max),
                "latest_minute": last.minute,
                "latest_mean": last.mean(),
            })
        })
        .collect();
    let total = series.len();
    let mut series = series;
    series.sort_by(|a, b| b["samples"].as_f64().unwrap_or(0.0).total_cmp(&a["samples"].as_f64().unwrap_or(0.0)));
    series.truncate(MAX_SERIES);
    if total > MAX_SERIES {
        json!({ "series": series, "series_total": total, "truncated": true })
    } else {
        json!({ "series": series })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(name: &str, minute: i64, count: u64, sum: f64) -> AggregateRow {
        let mean = sum / count as f64;
        AggregateRow {
            tenant: TenantId::from_record("acme").unwrap(),
            series_id: name.into(),
            source: "deployment/a".into(),
            name: name.into(),
            labels: BTreeMap::new(),
            minute,
            count,
            sum,
            min: mean,
            max: mean,
            sumsq: mean * sum,
            first_ts: minute * 1000,
            last_ts: minute * 1000,
        }
    }

    #[test]
    fn summarises_each_series_over_the_window() {
        let v = summarise(&[row("errors", 60, 2, 4.0), row("errors", 120, 1, 10.0), row("latency", 60, 1, 5.0)]);
        let errors = &v["series"][0];
        assert_eq!(errors["name"], "errors");
        assert_eq!((errors["samples"].as_f64(), errors["mean"].as_f64()), (Some(3.0), Some(14.0 / 3.0)));
        assert_eq!((errors["latest_minute"].as_i64(), errors["latest_mean"].as_f64()), (Some(120), Some(10.0)));
        assert_eq!(v["series"].as_array().unwrap().len(), 2);
    }

    #[test]
    fn a_resource_with_many_series_is_summarised_by_its_busiest() {
        let rows: Vec<AggregateRow> = (0..400).map(|i| row(&format!("s{i}"), 60, 1 + i % 7, 1.0)).collect();
        let v = summarise(&rows);
        assert_eq!(v["series"].as_array().unwrap().len(), MAX_SERIES);
        assert_eq!((v["series_total"].as_u64(), v["truncated"].as_bool()), (Some(400), Some(true)));
        assert_eq!(v["series"][0]["samples"], 7.0);
    }
}
