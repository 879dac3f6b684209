//! What training reads from other services' tables, decoded into naksha-contracts types (never
//! JSON pointers into another service's state), and only aggregates, never raw events (P-1).
//!
//! | table | read | key |
//! |---|---|---|
//! | `naksha.series` | a scan of `tenant` (the tenants), the `by_tenant` index (their series) | `pk` = [`series_pk`] = `<tenant>#<series id>` |
//! | `naksha.aggregates` | [`AggregateMinute`] (minute, count, sum) per series and window | `pk` = [`AggregateRow::pk`], `minute` (epoch s) |
//! | `naksha.runs` | the [`RunOutcome`] attribute of finished runs, through `by_tenant` (`tenant`, `updated_at`) | |

use std::collections::BTreeSet;

use naksha_contracts::TenantId;
use naksha_contracts::runs::{OUTCOME_ATTRIBUTE, RunOutcome};
use naksha_contracts::telemetry::{AggregateMinute, AggregateRow};
use naksha_core::ddb::{Item, from_item, get_s, n, query_all, s, scan_all};

use crate::ports::{StoreError, TrainingSource};
use crate::train::{Outcome, SeriesData, TrainingData};

/// Minutes since the epoch of an RFC 3339 time.
pub fn minute_of_rfc3339(t: &str) -> Option<i64> {
    chrono::DateTime::parse_from_rfc3339(t).ok().map(|d| d.timestamp().div_euclid(60))
}

pub fn rfc3339_of_minute(minute: i64) -> String {
    chrono::DateTime::from_timestamp(minute * 60, 0)
        .map(|d| d.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_default()
}

/// One aggregate item (the projection) as (minute since the epoch, mean of the minute).
pub fn decode_aggregate(item: Item) -> Option<(i64, f64)> {
    from_item::<AggregateMinute>(item).ok()?.mean_by_minute()
}

/// A run item's outcome, if the run acted and has ended.
pub fn decode_outcome(item: &Item) -> Option<Outcome> {
    let outcome: RunOutcome = serde_json::from_str(get_s(item, OUTCOME_ATTRIBUTE)?).ok()?;
    Some(Outcome {
        minute: minute_of_rfc3339(&outcome.finished_at)?,
        run_id: outcome.run_id,
        signal: outcome.signal,
        wpk: outcome.wpk_id,
        ok: outcome.succeeded,
    })
}

#[derive(Debug, Clone)]
pub struct DynamoTrainingSource {
    db: aws_sdk_dynamodb::Client,
    series: String,
    aggregates: String,
    runs: String,
}

impl DynamoTrainingSource {
    pub fn new(db: aws_sdk_dynamodb::Client, series: String, aggregates: String, runs: String) -> Self {
        Self { db, series, aggregates, runs }
    }

    /// The tenant's series ids (sparse `by_tenant` index on the series table).
    pub async fn series_ids(&self, tenant: &TenantId) -> Result<Vec<String>, StoreError> {
        let q = self
            .db
            .query()
            .table_name(&self.series)
            .index_name("by_tenant")
            .key_condition_expression("#t = :t")
            .expression_attribute_names("#t", "tenant")
            .expression_attribute_values(":t", s(tenant.as_str()));
        let mut ids: Vec<String> = query_all(q)
            .await?
            .iter()
            .filter_map(|i| TenantId::split_key(get_s(i, "pk")?))
            .filter(|(t, _)| t == tenant)
            .map(|(_, id)| id.to_owned())
            .collect();
        ids.sort();
        ids.dedup();
        Ok(ids)
    }

    /// One series' minute means in [from, to].
    pub async fn aggregates(
        &self,
        tenant: &TenantId,
        series_id: &str,
        from: i64,
        to: i64,
    ) -> Result<Vec<(i64, f64)>, StoreError> {
        let [minute, count, sum] = AggregateMinute::ATTRIBUTES;
        let q = self
            .db
            .query()
            .table_name(&self.aggregates)
            .key_condition_expression("pk = :pk AND #m BETWEEN :from AND :to")
            .projection_expression("#m, #c, #s")
            .expression_attribute_names("#m", minute)
            .expression_attribute_names("#c", count)
            .expression_attribute_names("#s", sum)
            .expression_attribute_values(":pk", s(AggregateRow::pk(tenant, series_id)))
            .expression_attribute_values(":from", n(from * 60))
            .expression_attribute_values(":to", n(to * 60));
        Ok(query_all(q).await?.into_iter().filter_map(decode_aggregate).collect())
    }

    /// Runs of the tenant last updated in [from, to] that acted and finished.
    pub async fn outcomes(&self, tenant: &TenantId, from: i64, to: i64) -> Result<Vec<Outcome>, StoreError> {
        let q = self
            .db
            .query()
            .table_name(&self.runs)
            .index_name("by_tenant")
            .key_condition_expression("#t = :t AND #u BETWEEN :from AND :to")
            .expression_attribute_names("#t", "tenant")
            .expression_attribute_names("#u", "updated_at")
            .expression_attribute_values(":t", s(tenant.as_str()))
            .expression_attribute_values(":from", s(rfc3339_of_minute(from)))
            // Runs store milliseconds: the whole last minute is included.
            .expression_attribute_values(":to", s(rfc3339_of_minute(to + 1)));
        let items = query_all(q).await?;
        Ok(items
            .iter()
            .filter(|i| get_s(i, "tenant") == Some(tenant.as_str()))
            .filter_map(decode_outcome)
            .filter(|o| (from..=to).contains(&o.minute))
            .collect())
    }
}

impl TrainingSource for DynamoTrainingSource {
    async fn tenants(&self) -> Result<BTreeSet<TenantId>, StoreError> {
        let scan = self
            .db
            .scan()
            .table_name(&self.series)
            .projection_expression("#t")
            .expression_attribute_names("#t", "tenant");
        let items = scan_all(scan).await?;
        Ok(items.iter().filter_map(|i| TenantId::from_record(get_s(i, "tenant")?).ok()).collect())
    }

    async fn load(&self, tenant: &TenantId, from: i64, to: i64) -> Result<TrainingData, StoreError> {
        let mut data = TrainingData::new(tenant.clone());
        for id in self.series_ids(tenant).await? {
            let points = self.aggregates(tenant, &id, from, to).await?;
            data.series.push(SeriesData { series_id: id, points });
        }
        data.outcomes = self.outcomes(tenant, from, to).await?;
        data.normalise();
        Ok(data)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn aggregates_decode_to_minute_means_and_empty_minutes_are_skipped() {
        let item = |pairs: &[(&str, i64)]| -> Item { pairs.iter().map(|(k, v)| ((*k).to_owned(), n(*v))).collect() };
        let a = item(&[("minute", 29_000_000 * 60), ("count", 4), ("sum", 10)]);
        assert_eq!(decode_aggregate(a), Some((29_000_000, 2.5)));
        assert_eq!(decode_aggregate(item(&[("minute", 1), ("count", 0), ("sum", 0)])), None);
        assert_eq!(decode_aggregate(item(&[("minute", 1)])), None);
    }

    #[test]
    fn only_runs_that_carry_an_outcome_are_outcomes() {
        let outcome = RunOutcome {
            run_id: "r1".into(),
            signal: "anomaly.latency".into(),
            wpk_id: "shed".into(),
            wpk_version: 1,
            succeeded: true,
            audit_seq: 3,
            finished_at: "2026-11-25T10:00:30.123Z".into(),
        };
        let run = |o: Option<&RunOutcome>| -> Item {
            let mut item = HashMap::from([("run_id".to_owned(), s("r1"))]);
            if let Some(o) = o {
                item.insert(OUTCOME_ATTRIBUTE.to_owned(), s(serde_json::to_string(o).unwrap()));
            }
            item
        };
        let o = decode_outcome(&run(Some(&outcome))).unwrap();
        assert_eq!((o.signal.as_str(), o.wpk.as_str(), o.ok), ("anomaly.latency", "shed", true));
        assert_eq!(o.minute, minute_of_rfc3339("2026-11-25T10:00:00Z").unwrap());
        let failed = RunOutcome { succeeded: false, ..outcome };
        assert!(!decode_outcome(&run(Some(&failed))).unwrap().ok);
        assert_eq!(decode_outcome(&run(None)), None, "never acted: nothing to learn");
    }

    #[test]
    fn minutes_round_trip_through_rfc3339() {
        assert_eq!(minute_of_rfc3339(&rfc3339_of_minute(29_400_000)), Some(29_400_000));
    }
}
