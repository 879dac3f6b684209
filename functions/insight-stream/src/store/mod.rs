//! The AWS adapters of insight-stream's ports, one file per table or stream; each opens with its
//! key table.
//!
//! | file | what | writes |
//! |---|---|---|
//! | [`aggregates`] | `naksha.aggregates` | this service only (the agent and the trainer read it) |
//! | [`dead_letters`] | `naksha.deadletters` | this service only |
//! | [`series`] | `naksha.series` | this service only (the trainer lists it) |
//! | [`telemetry_stream`] | Kinesis `naksha.telemetry` | ingest |
//! | [`runs_stream`] | Kinesis `naksha.agent-runs` | signals (the agent's own runs share it) |

pub mod aggregates;
pub mod dead_letters;
pub mod runs_stream;
pub mod series;
pub mod telemetry_stream;

pub use aggregates::DynamoAggregates;
pub use dead_letters::DynamoDeadLetters;
pub use runs_stream::KinesisSignals;
pub use series::DynamoSeries;
pub use telemetry_stream::KinesisSink;

/// Seconds since the epoch, for `updated_at` and TTLs.
fn now_secs() -> i64 {
    chrono::Utc::now().timestamp()
}

#[cfg(test)]
mod tests {
    use naksha_contracts::TenantId;
    use proptest::prelude::*;

    use crate::aggregate::AggKey;
    use crate::series::SeriesKey;

    proptest! {
        /// Every key this service writes for a tenant is that tenant's, whatever the series id.
        #[test]
        fn no_key_function_can_name_another_tenant(
            a in "[a-z0-9][a-z0-9_-]{0,16}",
            b in "[a-z0-9][a-z0-9_-]{0,16}",
            id in ".{0,40}",
            minute in any::<i64>(),
        ) {
            let (ta, tb) = (TenantId::from_record(&a).unwrap(), TenantId::from_record(&b).unwrap());
            let keys = [
                AggKey { tenant: ta.clone(), series_id: id.clone(), minute }.pk(),
                SeriesKey { tenant: ta.clone(), series_id: id.clone() }.pk(),
            ];
            for key in keys {
                prop_assert_eq!(TenantId::split_key(&key).map(|(t, _)| t), Some(ta.clone()));
                if a != b {
                    prop_assert!(!key.starts_with(&tb.key_prefix()));
                }
            }
        }
    }
}
