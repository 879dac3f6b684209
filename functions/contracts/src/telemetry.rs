//! Telemetry as other services read it: a series' identity and its per-minute aggregates, written
//! by insight-stream's consumer, read by the agent's telemetry observer and by the trainer.
//!
//! | record | table | key |
//! |---|---|---|
//! | [`AggregateRow`] | `naksha.aggregates` | `pk` = [`AggregateRow::pk`] = `<tenant>#<series id>`, `minute` (epoch seconds) |
//! | by source | index `by_source` | `tenant_source` = [`AggregateRow::source_key`] = `<tenant>#<source>`, `minute` |
//! | a series | `naksha.series` (the consumer's detector state) | `pk` = [`series_pk`] = `<tenant>#<series id>`; index `by_tenant` on `tenant` |
//!
//! The field names of [`AggregateRow`] are the item's attribute names.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::identity::TenantId;
use crate::signing::{canonical, sha256};

/// What identifies a series within a tenant.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct SeriesMeta {
    pub source: String,
    pub name: String,
    pub labels: BTreeMap<String, String>,
}

impl SeriesMeta {
    /// A stable id: 32 hex digits of SHA-256 over the canonical JSON `[source, name, labels]`.
    pub fn id(&self) -> String {
        let digest = sha256(&canonical(&(&self.source, &self.name, &self.labels)));
        crate::signing::hex(&digest[..16])
    }
}

/// The series table's partition key.
pub fn series_pk(tenant: &TenantId, series_id: &str) -> String {
    tenant.key(&[series_id])
}

/// One series' summary statistics for one minute, as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AggregateRow {
    pub tenant: TenantId,
    pub series_id: String,
    pub source: String,
    pub name: String,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Start of the minute, epoch seconds.
    pub minute: i64,
    pub count: u64,
    pub sum: f64,
    pub min: f64,
    pub max: f64,
    pub sumsq: f64,
    pub first_ts: i64,
    pub last_ts: i64,
}

impl AggregateRow {
    /// The item's partition key.
    pub fn pk(tenant: &TenantId, series_id: &str) -> String {
        tenant.key(&[series_id])
    }

    /// The `by_source` index key: a resource's series are those whose source is the resource.
    pub fn source_key(tenant: &TenantId, source: &str) -> String {
        tenant.key(&[source])
    }

    pub fn mean(&self) -> f64 {
        if self.count == 0 { 0.0 } else { self.sum / self.count as f64 }
    }
}

/// The part of an [`AggregateRow`] the trainer reads (a projection): the minute's mean.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct AggregateMinute {
    /// Start of the minute, epoch seconds.
    pub minute: i64,
    pub count: u64,
    pub sum: f64,
}

impl AggregateMinute {
    /// The attributes to project (by these names, through expression attribute names).
    pub const ATTRIBUTES: [&'static str; 3] = ["minute", "count", "sum"];

    /// (minutes since the epoch, the minute's mean); `None` for an empty minute.
    pub fn mean_by_minute(&self) -> Option<(i64, f64)> {
        (self.count > 0).then(|| (self.minute.div_euclid(60), self.sum / self.count as f64))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(labels: &[(&str, &str)]) -> SeriesMeta {
        SeriesMeta {
            source: "s".into(),
            name: "n".into(),
            labels: labels.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect(),
        }
    }

    #[test]
    fn series_id_ignores_label_order_and_separates_series() {
        let a = meta(&[("a", "1"), ("b", "2")]);
        let b = meta(&[("b", "2"), ("a", "1")]);
        assert_eq!(a.id(), b.id());
        assert_eq!(a.id().len(), 32);
        assert_ne!(a.id(), SeriesMeta { name: "m".into(), ..a.clone() }.id());
        assert_ne!(a.id(), meta(&[("a", "1")]).id());
    }

    #[test]
    fn rows_round_trip_and_keys_start_with_the_tenant() {
        let t = TenantId::from_record("acme").unwrap();
        let row = AggregateRow {
            tenant: t.clone(),
            series_id: meta(&[]).id(),
            source: "web".into(),
            name: "cpu".into(),
            labels: BTreeMap::new(),
            minute: 1_764_072_000,
            count: 2,
            sum: 3.0,
            min: 1.0,
            max: 2.0,
            sumsq: 5.0,
            first_ts: 1_764_072_000_000,
            last_ts: 1_764_072_010_000,
        };
        let back: AggregateRow = serde_json::from_str(&serde_json::to_string(&row).unwrap()).unwrap();
        assert_eq!(back, row);
        assert!((row.mean() - 1.5).abs() < 1e-12);
        assert_eq!(AggregateRow::pk(&t, "abc"), "acme#abc");
        // The trainer's projection reads the same attributes out of a whole row.
        let minute: AggregateMinute = serde_json::from_value(serde_json::to_value(&row).unwrap()).unwrap();
        assert_eq!(minute, AggregateMinute { minute: row.minute, count: 2, sum: 3.0 });
        assert_eq!(minute.mean_by_minute(), Some((row.minute / 60, 1.5)));
        assert_eq!(AggregateMinute { count: 0, ..minute }.mean_by_minute(), None);
        assert_eq!(AggregateRow::source_key(&t, "web"), "acme#web");
    }
}
