//! The consumer Lambda's event adapter: `KinesisEvent` in, partial batch response out.

use aws_lambda_events::event::kinesis::KinesisEvent;
use aws_lambda_events::event::streams::{KinesisBatchItemFailure, KinesisEventResponse};
use naksha_core::metrics::CounterStore;

use crate::consumer::{BatchReport, Consumer};
use crate::detection::SeriesWatch;
use crate::ports::{AggregateStore, DeadLetterStore};
use crate::series::InRecord;

/// The shard a record came from: its event id is `<shard id>:<sequence number>`.
fn shard_of(event_id: Option<&str>) -> &str {
    event_id.and_then(|id| id.split_once(':')).map_or("unknown", |(shard, _)| shard)
}

/// Process a delivery. Records are grouped by shard in delivery order (Lambda sends one
/// shard per batch; the grouping only guards against a hand-made event), and the response
/// names the first record to retry, if any.
pub async fn handle<S, D, C, W>(
    consumer: &Consumer<S, D, C, W>,
    event: &KinesisEvent,
) -> (KinesisEventResponse, Vec<BatchReport>)
where
    S: AggregateStore,
    D: DeadLetterStore,
    C: CounterStore,
    W: SeriesWatch,
{
    let mut shards: Vec<(&str, Vec<InRecord<'_>>)> = Vec::new();
    for r in &event.records {
        let shard = shard_of(r.event_id.as_deref());
        let record = InRecord { seq: &r.kinesis.sequence_number, data: &r.kinesis.data.0 };
        match shards.iter_mut().find(|(s, _)| *s == shard) {
            Some((_, records)) => records.push(record),
            None => shards.push((shard, vec![record])),
        }
    }
    let mut response = KinesisEventResponse::default();
    let mut reports = Vec::with_capacity(shards.len());
    for (shard, records) in shards {
        let report = consumer.process(shard, &records).await;
        tracing::info!(
            shard,
            records = report.records,
            applied_samples = report.applied_samples,
            duplicate_samples = report.duplicate_samples,
            writes = report.writes,
            poison = report.poison,
            scored_minutes = report.scored_minutes,
            signals = report.signals,
            failed_from = report.failed_from.as_deref().unwrap_or(""),
            "batch processed"
        );
        if let Some(seq) = &report.failed_from {
            let mut failure = KinesisBatchItemFailure::default();
            failure.item_identifier = Some(seq.clone());
            response.batch_item_failures.push(failure);
        }
        reports.push(report);
    }
    (response, reports)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::memory::{MemoryAggregates, MemoryDeadLetters};
    use naksha_core::metrics::MemoryCounters;

    #[tokio::test]
    async fn reports_the_failed_record_by_sequence_number() {
        let event: KinesisEvent = serde_json::from_value(serde_json::json!({"Records": [
            {"eventID": "shardId-000000000001:11", "kinesis": {"approximateArrivalTimestamp": 1.0, "data": "e30=", "partitionKey": "p", "sequenceNumber": "11"}},
            {"eventID": "shardId-000000000001:12", "kinesis": {"approximateArrivalTimestamp": 1.0,
             "data": "eyJ2IjoxLCJpZCI6IngiLCJ0ZW5hbnQiOiJhY21lIiwic291cmNlIjoicyIsImtpbmQiOiJtZXRyaWMiLCJ0cyI6MTc2NDA3MjAwMDAwMCwic2FtcGxlcyI6W1siY3B1IiwxLjBdXX0=",
             "partitionKey": "p", "sequenceNumber": "12"}}
        ]}))
        .unwrap();
        let aggregates = MemoryAggregates::default();
        *aggregates.fail_series.lock().unwrap() = Some("cpu".into());
        let consumer = Consumer::new(aggregates, MemoryDeadLetters::default(), MemoryCounters::default());
        let (response, reports) = handle(&consumer, &event).await;
        assert_eq!(reports[0].poison, 1, "the empty object is poison and is set aside");
        assert_eq!(response.batch_item_failures.len(), 1);
        assert_eq!(response.batch_item_failures[0].item_identifier.as_deref(), Some("12"));
        let json = serde_json::to_value(&response).unwrap();
        assert_eq!(json["batchItemFailures"][0]["itemIdentifier"], "12");
    }

    #[tokio::test]
    async fn the_sample_event_in_events_folds_into_aggregates() {
        let text =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../events/telemetry-consumer.json"))
                .unwrap();
        let event: KinesisEvent = serde_json::from_str(&text).unwrap();
        let consumer =
            Consumer::new(MemoryAggregates::default(), MemoryDeadLetters::default(), MemoryCounters::default());
        let (response, reports) = handle(&consumer, &event).await;
        assert!(response.batch_item_failures.is_empty());
        assert_eq!((reports[0].poison, reports[0].applied_samples, reports[0].writes), (0, 3, 2));
    }
}
