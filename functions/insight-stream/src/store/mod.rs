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
