//! Fleet-wide counters (P-4) kept in DynamoDB and rendered as Prometheus text.
//!
//! Lambda instances come and go, so an in-process counter would reset and split across
//! instances. Each counter group is one DynamoDB item; a function adds to several counters of
//! its group with one `UpdateItem ... ADD`. `GET /metrics` scans the (small) table and renders
//! every series in the [`CATALOG`], so promtool sees `HELP` and `TYPE` for each family.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::future::Future;

use aws_sdk_dynamodb::types::AttributeValue;

/// A documented counter family.
#[derive(Debug, Clone, Copy)]
pub struct MetricSpec {
    pub name: &'static str,
    pub help: &'static str,
}

/// Every counter the product exposes. A series must belong to a family listed here to be shown.
pub const CATALOG: &[MetricSpec] = &[
    MetricSpec { name: "insight_ingested_total", help: "Telemetry events accepted by POST /ingest, fleet-wide." },
    MetricSpec { name: "insight_ingest_requests_total", help: "POST /ingest requests that wrote events, fleet-wide." },
    MetricSpec {
        name: "insight_stream_records_total",
        help: "Stream records applied by the telemetry consumer (redeliveries excluded).",
    },
    MetricSpec {
        name: "insight_aggregated_samples_total",
        help: "Samples folded into per-minute aggregates (redeliveries excluded).",
    },
    MetricSpec { name: "insight_aggregate_writes_total", help: "Aggregate items written by the telemetry consumer." },
    MetricSpec {
        name: "insight_poison_records_total",
        help: "Undecodable stream records set aside in the dead-letter table.",
    },
    MetricSpec {
        name: "insight_duplicate_records_total",
        help: "Events skipped as a second copy of one already counted (a retried put).",
    },
    MetricSpec {
        name: "insight_detector_scored_total",
        help: "Per-series minutes scored by the streaming anomaly detector.",
    },
    MetricSpec {
        name: "insight_detector_writes_total",
        help: "Detector state items written by the telemetry consumer (one per series and batch).",
    },
    MetricSpec { name: "insight_consumer_batches_total", help: "Stream batches the telemetry consumer finished." },
    MetricSpec {
        name: "insight_signals_total",
        help: "Anomaly signals raised by the streaming detector (each starts an agent run).",
    },
    MetricSpec { name: "trainer_jobs_total", help: "Training jobs finished, by status (succeeded, failed)." },
    MetricSpec { name: "trainer_models_registered_total", help: "Model versions registered (signed, immutable)." },
    MetricSpec { name: "trainer_models_promoted_total", help: "Model versions promoted to champion by the gate." },
    MetricSpec {
        name: "trainer_models_refused_total",
        help: "Champion versions refused by the trainer because they failed verification.",
    },
];

#[derive(Debug, thiserror::Error)]
#[error("counter store: {0}")]
pub struct CounterError(pub String);

/// Where counters live. Implemented by DynamoDB in production and by memory in unit tests.
pub trait CounterStore: Send + Sync {
    /// Add to several counters of one group at once (one write).
    fn add(&self, group: &str, increments: &[(&str, u64)]) -> impl Future<Output = Result<(), CounterError>> + Send;
    /// Every series and its fleet-wide value.
    fn read_all(&self) -> impl Future<Output = Result<BTreeMap<String, u64>, CounterError>> + Send;
}

/// Counters in a DynamoDB table keyed by `pk` (the group); each series is a numeric attribute.
#[derive(Debug, Clone)]
pub struct DynamoCounters {
    client: aws_sdk_dynamodb::Client,
    table: String,
}

impl DynamoCounters {
    pub fn new(client: aws_sdk_dynamodb::Client, table: impl Into<String>) -> Self {
        Self { client, table: table.into() }
    }
}

impl CounterStore for DynamoCounters {
    async fn add(&self, group: &str, increments: &[(&str, u64)]) -> Result<(), CounterError> {
        let nonzero: Vec<_> = increments.iter().filter(|(_, n)| *n > 0).collect();
        if nonzero.is_empty() {
            return Ok(());
        }
        let mut update =
            self.client.update_item().table_name(&self.table).key("pk", AttributeValue::S(group.to_owned()));
        let mut clauses = Vec::with_capacity(nonzero.len());
        for (i, (series, n)) in nonzero.iter().enumerate() {
            clauses.push(format!("#c{i} :v{i}"));
            update = update
                .expression_attribute_names(format!("#c{i}"), (*series).to_owned())
                .expression_attribute_values(format!(":v{i}"), AttributeValue::N(n.to_string()));
        }
        update
            .update_expression(format!("ADD {}", clauses.join(", ")))
            .send()
            .await
            .map_err(|e| CounterError(crate::aws::describe_error(&e)))?;
        Ok(())
    }

    async fn read_all(&self) -> Result<BTreeMap<String, u64>, CounterError> {
        let mut totals = BTreeMap::new();
        let mut pages = self.client.scan().table_name(&self.table).consistent_read(true).into_paginator().send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| CounterError(crate::aws::describe_error(&e)))?;
            for item in page.items() {
                for (name, value) in item {
                    if let AttributeValue::N(n) = value
                        && let Ok(n) = n.parse::<u64>()
                    {
                        *totals.entry(name.clone()).or_insert(0) += n;
                    }
                }
            }
        }
        Ok(totals)
    }
}

/// The family of a series: `name{labels}` → `name`.
fn family(series: &str) -> &str {
    series.split_once('{').map_or(series, |(name, _)| name)
}

/// Prometheus text exposition format 0.0.4.
pub fn render(values: &BTreeMap<String, u64>, version: &str) -> String {
    let mut out = String::with_capacity(256 * CATALOG.len());
    let _ = writeln!(out, "# HELP naksha_build_info Build of the function that rendered these metrics.");
    let _ = writeln!(out, "# TYPE naksha_build_info gauge");
    let _ = writeln!(out, "naksha_build_info{{version=\"{}\"}} 1", version.replace(['"', '\\', '\n'], ""));
    for spec in CATALOG {
        let _ = writeln!(out, "# HELP {} {}", spec.name, spec.help);
        let _ = writeln!(out, "# TYPE {} counter", spec.name);
        let mut any_unlabelled = false;
        for (series, value) in values.iter().filter(|(s, _)| family(s) == spec.name) {
            any_unlabelled |= series.as_str() == spec.name;
            let _ = writeln!(out, "{series} {value}");
        }
        if !any_unlabelled && !values.keys().any(|s| family(s) == spec.name) {
            let _ = writeln!(out, "{} 0", spec.name);
        }
    }
    out
}

/// In-memory counters for unit tests of code that counts.
#[derive(Debug, Default)]
pub struct MemoryCounters {
    values: std::sync::Mutex<BTreeMap<String, u64>>,
    /// How many `add` calls wrote something (one per DynamoDB UpdateItem in production).
    pub writes: std::sync::atomic::AtomicUsize,
}

impl MemoryCounters {
    pub fn get(&self, series: &str) -> u64 {
        self.values.lock().map(|v| v.get(series).copied().unwrap_or(0)).unwrap_or(0)
    }
}

impl CounterStore for MemoryCounters {
    async fn add(&self, _group: &str, increments: &[(&str, u64)]) -> Result<(), CounterError> {
        if increments.iter().all(|(_, n)| *n == 0) {
            return Ok(());
        }
        let mut values = self.values.lock().map_err(|_| CounterError("poisoned".into()))?;
        for (series, n) in increments {
            *values.entry((*series).to_owned()).or_insert(0) += n;
        }
        self.writes.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Ok(())
    }

    async fn read_all(&self) -> Result<BTreeMap<String, u64>, CounterError> {
        self.values.lock().map(|v| v.clone()).map_err(|_| CounterError("poisoned".into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_every_catalog_family_with_help_and_type() {
        let mut values = BTreeMap::new();
        values.insert("insight_ingested_total".to_owned(), 7);
        let text = render(&values, "0.1.0");
        assert!(text.contains("insight_ingested_total 7\n"));
        for spec in CATALOG {
            assert!(text.contains(&format!("# TYPE {} counter\n", spec.name)));
            assert!(text.contains(&format!("# HELP {} ", spec.name)));
        }
        assert!(text.contains("insight_poison_records_total 0\n"));
        assert!(text.contains("naksha_build_info{version=\"0.1.0\"} 1\n"));
    }

    #[test]
    fn labelled_series_render_under_their_family_without_a_zero_line() {
        let mut values = BTreeMap::new();
        values.insert("insight_aggregate_writes_total{outcome=\"ok\"}".to_owned(), 3);
        let text = render(&values, "x");
        assert!(text.contains("insight_aggregate_writes_total{outcome=\"ok\"} 3\n"));
        assert!(!text.contains("insight_aggregate_writes_total 0\n"));
    }

    #[test]
    fn unknown_families_are_not_rendered() {
        let mut values = BTreeMap::new();
        values.insert("mystery_total".to_owned(), 1);
        assert!(!render(&values, "x").contains("mystery_total"));
    }

    #[tokio::test]
    async fn memory_counters_add_and_skip_zero_writes() {
        let c = MemoryCounters::default();
        c.add("g", &[("a_total", 2), ("b_total", 0)]).await.unwrap();
        c.add("g", &[("a_total", 0)]).await.unwrap();
        assert_eq!(c.get("a_total"), 2);
        assert_eq!(c.writes.load(std::sync::atomic::Ordering::Relaxed), 1);
    }
}
