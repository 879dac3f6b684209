//! `POST /ingest`: parse, validate, anonymise, then one `PutRecords` for the whole request.

use naksha_contracts::signing::{hex, sha256};
use naksha_contracts::{Principal, TenantId};
use naksha_core::metrics::CounterStore;
use naksha_core::privacy::PiiKey;
use serde::Serialize;

use crate::event::{Event, InvalidBody, parse_body};
use crate::ports::{RecordSink, SinkError};

/// Kinesis limits a partition key to 256 characters.
const MAX_PARTITION_KEY: usize = 256;

/// One record for the stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutRecord {
    pub event_id: String,
    pub partition_key: String,
    pub data: Vec<u8>,
}

#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct Accepted {
    pub accepted: usize,
    pub event_ids: Vec<String>,
}

/// The ingest use case, generic over where records and counters go.
#[derive(Debug)]
pub struct Ingest<S, C> {
    sink: S,
    counters: C,
    pii: PiiKey,
}

/// The partition key keeps one source's events in order on one shard and spreads a tenant's
/// sources over shards (Kinesis hashes the key with MD5).
pub fn partition_key(tenant: &TenantId, source: &str) -> String {
    let key = format!("{tenant}/{source}");
    if key.chars().count() <= MAX_PARTITION_KEY {
        return key;
    }
    format!("{tenant}/#{}", hex(&sha256(source.as_bytes())[..16]))
}

/// Why events were not (all) accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IngestError {
    /// The body is not valid; nothing was written.
    #[error("{0}")]
    Invalid(#[from] InvalidBody),
    /// An event could not be encoded as a stream record; nothing was written.
    #[error("encoding a record failed: {0}")]
    Encode(String),
    /// The stream took nothing; a retry may succeed.
    #[error("no record was written: {0}")]
    Unavailable(String),
    /// The stream took some events and not others.
    #[error("{} of {total} events were written", accepted.len())]
    Partial { accepted: Vec<String>, failed: Vec<String>, total: usize, cause: String },
}

/// Parse, validate, anonymise and encode a body: the CPU-only part of ingest.
pub fn prepare(pii: &PiiKey, tenant: &TenantId, body: &[u8], now_ms: i64) -> Result<Vec<OutRecord>, IngestError> {
    let events: Vec<Event> = parse_body(body, now_ms)?;
    let p = pii.for_tenant(tenant.as_str());
    events
        .into_iter()
        .map(|event| {
            let id = uuid::Uuid::now_v7().to_string();
            let record = event.into_record(id.clone(), tenant, &p);
            let data = serde_json::to_vec(&record).map_err(|e| IngestError::Encode(e.to_string()))?;
            Ok(OutRecord { partition_key: partition_key(tenant, &record.source), event_id: id, data })
        })
        .collect()
}

impl<S: RecordSink, C: CounterStore> Ingest<S, C> {
    pub fn new(sink: S, counters: C, pii: PiiKey) -> Self {
        Self { sink, counters, pii }
    }

    pub async fn ingest(&self, principal: &Principal, body: &[u8], now_ms: i64) -> Result<Accepted, IngestError> {
        let records = prepare(&self.pii, &principal.tenant, body, now_ms)?;
        match self.sink.put(&records).await {
            Ok(()) => {}
            Err(SinkError::Failed(cause)) => return Err(IngestError::Unavailable(cause)),
            Err(SinkError::Partial { failed_event_ids, cause }) => {
                let accepted: Vec<String> =
                    records.iter().map(|r| &r.event_id).filter(|id| !failed_event_ids.contains(id)).cloned().collect();
                self.count(accepted.len()).await;
                return Err(IngestError::Partial { accepted, failed: failed_event_ids, total: records.len(), cause });
            }
        }
        self.count(records.len()).await;
        Ok(Accepted { accepted: records.len(), event_ids: records.into_iter().map(|r| r.event_id).collect() })
    }

    /// Counting is best effort: the events are already on the stream, so a counter outage
    /// must not turn an accepted request into an error.
    async fn count(&self, events: usize) {
        let increments = [("insight_ingested_total", events as u64), ("insight_ingest_requests_total", 1)];
        if let Err(e) = self.counters.add("insight-ingest", &increments).await {
            tracing::warn!(error = %e, "could not update the ingest counters");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::memory::MemorySink;
    use naksha_contracts::Role;
    use naksha_core::metrics::MemoryCounters;

    fn principal(tenant: &str) -> Principal {
        Principal {
            tenant: TenantId::from_record(tenant).unwrap(),
            subject: "alice".into(),
            roles: [Role::Operator].into(),
        }
    }

    const NOW: i64 = 1_764_072_000_000;

    #[tokio::test]
    async fn one_put_per_request_and_counters_follow() {
        let ingest = Ingest::new(MemorySink::default(), MemoryCounters::default(), PiiKey::from_secret(b"k"));
        let body = serde_json::json!({"events": [{"m": 1}, {"m": 2}, {"source": "db", "q": 3}]}).to_string();
        let accepted = ingest.ingest(&principal("acme"), body.as_bytes(), NOW).await.unwrap();
        assert_eq!(accepted.accepted, 3);
        let puts = ingest.sink.puts.lock().unwrap();
        assert_eq!(puts.len(), 1);
        assert_eq!(puts[0].len(), 3);
        assert_eq!(puts[0][2].partition_key, "acme/db");
        assert_eq!(ingest.counters.get("insight_ingested_total"), 3);
        assert_eq!(ingest.counters.writes.load(std::sync::atomic::Ordering::Relaxed), 1);
    }

    #[tokio::test]
    async fn invalid_body_writes_nothing_and_counts_nothing() {
        let ingest = Ingest::new(MemorySink::default(), MemoryCounters::default(), PiiKey::from_secret(b"k"));
        let body = serde_json::json!({"events": [{"m": 1}, {"name": 5}]}).to_string();
        let err = ingest.ingest(&principal("acme"), body.as_bytes(), NOW).await.unwrap_err();
        assert!(matches!(err, IngestError::Invalid(ref e) if e.errors[0].pointer == "/events/1/name"), "{err:?}");
        assert!(ingest.sink.puts.lock().unwrap().is_empty());
        assert_eq!(ingest.counters.get("insight_ingested_total"), 0);
    }

    #[tokio::test]
    async fn stream_outage_is_503_and_partial_failure_names_the_failed_events() {
        let sink = MemorySink { fail: Some(|_| SinkError::Failed("throttled".into())), ..Default::default() };
        let ingest = Ingest::new(sink, MemoryCounters::default(), PiiKey::from_secret(b"k"));
        let err = ingest.ingest(&principal("acme"), b"{\"m\":1}", NOW).await.unwrap_err();
        assert_eq!(err, IngestError::Unavailable("throttled".into()));

        let sink = MemorySink {
            fail: Some(|r| SinkError::Partial { failed_event_ids: vec![r[1].event_id.clone()], cause: "x".into() }),
            ..Default::default()
        };
        let ingest = Ingest::new(sink, MemoryCounters::default(), PiiKey::from_secret(b"k"));
        let err = ingest.ingest(&principal("acme"), br#"{"events":[{"m":1},{"m":2},{"m":3}]}"#, NOW).await.unwrap_err();
        let IngestError::Partial { accepted, failed, total, .. } = err else { panic!("{err:?}") };
        assert_eq!((accepted.len(), failed.len(), total), (2, 1, 3));
        assert_eq!(ingest.counters.get("insight_ingested_total"), 2);
    }

    #[test]
    fn partition_keys_spread_sources_and_stay_within_kinesis_limits() {
        let acme = TenantId::from_record("acme").unwrap();
        assert_ne!(partition_key(&acme, "web-1"), partition_key(&acme, "web-2"));
        let long = "s".repeat(400);
        let k = partition_key(&acme, &long);
        assert!(k.chars().count() <= MAX_PARTITION_KEY);
        assert_eq!(k, partition_key(&acme, &long));
    }
}
