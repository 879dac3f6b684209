//! `reports/cost.md`: what ingest → aggregates costs at us-east-1 list prices, from what load runs
//! at 1, 50 and 500 events per request counted (`make cost`).

use std::fmt::Write as _;

use aws_sdk_dynamodb::types::AttributeValue;
use naksha_e2e::Item;
use serde::{Deserialize, Serialize};

/// us-east-1 list prices (USD). From AWS's pricing pages as last read (2025); this machine has no
/// internet to check them again, so the date is the reader's to verify.
pub const PRICES_AS_OF: &str = "2025 (AWS pricing pages, us-east-1; not re-checked from this machine)";
const API_PER_REQUEST: f64 = 1.00 / 1e6; // HTTP API, first 300 million a month
const LAMBDA_PER_REQUEST: f64 = 0.20 / 1e6;
const LAMBDA_PER_GB_S_ARM: f64 = 0.000_013_333_4;
const KINESIS_PER_PUT_UNIT: f64 = 0.014 / 1e6; // 25 KB PUT payload unit, provisioned mode
const KINESIS_SHARD_HOUR: f64 = 0.015;
const DDB_PER_WRU: f64 = 0.625 / 1e6; // on-demand
const DDB_PER_RRU: f64 = 0.125 / 1e6;

/// What one load run counted.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Measured {
    pub batch: usize,
    pub seconds: f64,
    /// Events the API accepted.
    pub events: u64,
    /// HTTP requests on `/ingest` (retries included): API Gateway requests and ingest invocations.
    pub api_requests: u64,
    /// Sum over those requests of the time to the answer, ms: an upper bound of ingest's billed
    /// duration (it includes the local API emulator).
    pub ingest_ms: f64,
    pub ingest_memory_mb: u64,
    pub consumer_invocations: u64,
    /// Sum of the consumer's invocation times as the pollers saw them, ms.
    pub consumer_ms: f64,
    pub consumer_memory_mb: u64,
    /// The run's records on the stream (copies included) and their PUT payload units.
    pub stream_records: u64,
    pub put_payload_units: u64,
    pub aggregate_writes: u64,
    pub aggregate_item_bytes: f64,
    pub detector_writes: u64,
    pub detector_item_bytes: f64,
    pub window_item_bytes: f64,
    /// The mean 202 answer.
    pub answer_bytes: f64,
    /// The mean 202 answer as the idempotency store keeps it for a keyed request (deflated from
    /// 1 KB up); 0 in runs from before it was measured, which count `answer_bytes` instead.
    #[serde(default)]
    pub kept_answer_bytes: f64,
    pub telemetry_shards: u64,
}

/// DynamoDB's item size: attribute names plus values (numbers about one byte per two digits).
pub fn item_bytes(item: &Item) -> usize {
    item.iter().map(|(k, v)| k.len() + value_bytes(v)).sum()
}

fn value_bytes(v: &AttributeValue) -> usize {
    match v {
        AttributeValue::S(s) => s.len(),
        AttributeValue::N(n) => n.len().div_ceil(2) + 1,
        AttributeValue::B(b) => b.as_ref().len(),
        AttributeValue::Bool(_) | AttributeValue::Null(_) => 1,
        AttributeValue::M(m) => 3 + m.iter().map(|(k, v)| k.len() + value_bytes(v) + 1).sum::<usize>(),
        AttributeValue::L(l) => 3 + l.iter().map(|v| value_bytes(v) + 1).sum::<usize>(),
        AttributeValue::Ss(l) => l.iter().map(String::len).sum(),
        AttributeValue::Ns(l) => l.iter().map(|n| n.len().div_ceil(2) + 1).sum(),
        AttributeValue::Bs(l) => l.iter().map(|b| b.as_ref().len()).sum(),
        _ => 0,
    }
}

fn wru(bytes: f64) -> f64 {
    (bytes / 1024.0).ceil().max(1.0)
}
fn rru(bytes: f64) -> f64 {
    (bytes / 4096.0).ceil().max(1.0)
}

/// Dollars per million accepted events, by line.
#[derive(Debug, Clone, Default)]
pub struct Cost {
    pub api: f64,
    pub lambda_requests: f64,
    pub lambda_duration_measured: f64,
    pub kinesis: f64,
    pub ddb_writes: f64,
    pub ddb_reads: f64,
    pub idempotency: f64,
    pub wru_per_event: f64,
}

impl Cost {
    /// Everything per event except Lambda's duration (see the report for why it is apart).
    pub fn variable_without_duration(&self) -> f64 {
        self.api + self.lambda_requests + self.kinesis + self.ddb_writes + self.ddb_reads
    }
}

pub fn cost(m: &Measured) -> Cost {
    let per_million = 1e6 / (m.events.max(1) as f64);
    let requests = m.api_requests as f64;
    let batches = m.consumer_invocations as f64;
    // Writes per request on the ingest path: its counters item and the tenant's requests-per-second
    // item; with an Idempotency-Key, the claim and then the kept answer.
    let kept = if m.kept_answer_bytes > 0.0 { m.kept_answer_bytes } else { m.answer_bytes };
    let idem_wru = requests * (1.0 + wru(kept + 160.0));
    let ingest_wru = requests * 2.0;
    // Per consumer batch: its counters item and the shard's dedup window; per key, the aggregate
    // row and the series' detector state.
    let consumer_wru = batches * (1.0 + wru(m.window_item_bytes))
        + m.aggregate_writes as f64 * wru(m.aggregate_item_bytes)
        + m.detector_writes as f64 * wru(m.detector_item_bytes);
    let consumer_rru = batches * rru(m.window_item_bytes)
        + m.aggregate_writes as f64 * rru(m.aggregate_item_bytes)
        + m.detector_writes as f64 * rru(m.detector_item_bytes);
    let gb_s = m.ingest_ms / 1000.0 * m.ingest_memory_mb as f64 / 1024.0
        + m.consumer_ms / 1000.0 * m.consumer_memory_mb as f64 / 1024.0;
    Cost {
        api: requests * API_PER_REQUEST * per_million,
        lambda_requests: (requests + batches) * LAMBDA_PER_REQUEST * per_million,
        lambda_duration_measured: gb_s * LAMBDA_PER_GB_S_ARM * per_million,
        kinesis: m.put_payload_units as f64 * KINESIS_PER_PUT_UNIT * per_million,
        ddb_writes: (ingest_wru + consumer_wru) * DDB_PER_WRU * per_million,
        ddb_reads: consumer_rru * DDB_PER_RRU * per_million,
        idempotency: idem_wru * DDB_PER_WRU * per_million,
        wru_per_event: (ingest_wru + consumer_wru) / m.events.max(1) as f64,
    }
}

fn money(x: f64) -> String {
    if x >= 1.0 { format!("${x:.2}") } else { format!("${x:.4}") }
}

/// The report over several runs (one per batch size).
pub fn report(runs: &[Measured]) -> String {
    let mut r = String::new();
    let _ = writeln!(r, "# Cost per million events: ingest → aggregates\n");
    let _ = writeln!(
        r,
        "Written by `make cost` on {} from three fault-free `make load` runs against the local stack \
         (moto, `cargo lambda watch`, debug builds). Counts are measured; units follow from them and \
         from the sizes of the items the runs wrote. Prices: us-east-1 list prices, {PRICES_AS_OF}: \
         HTTP API $1.00 per million requests; Lambda $0.20 per million requests and \
         $0.0000133334 per GB-second (arm64); Kinesis $0.014 per million 25 KB PUT payload units and \
         $0.015 per shard-hour (provisioned); DynamoDB on demand $0.625 per million write and $0.125 \
         per million read request units.\n",
        chrono::Utc::now().format("%Y-%m-%d")
    );
    let _ = writeln!(r, "## Measured\n");
    let _ = writeln!(
        r,
        "| events per request | events | API requests | consumer batches | stream records | PUT units | aggregate writes (bytes) | detector writes (bytes) | window (bytes) | 202 answer (bytes) | kept answer (bytes) |\n|---|---|---|---|---|---|---|---|---|---|---|"
    );
    for m in runs {
        let _ = writeln!(
            r,
            "| {} | {} | {} | {} | {} | {} | {} ({:.0}) | {} ({:.0}) | {:.0} | {:.0} | {:.0} |",
            m.batch,
            m.events,
            m.api_requests,
            m.consumer_invocations,
            m.stream_records,
            m.put_payload_units,
            m.aggregate_writes,
            m.aggregate_item_bytes,
            m.detector_writes,
            m.detector_item_bytes,
            m.window_item_bytes,
            m.answer_bytes,
            m.kept_answer_bytes
        );
    }
    let _ = writeln!(r, "\n## Dollars per million events (variable part)\n");
    let _ = writeln!(
        r,
        "| events per request | API Gateway | Lambda requests | Kinesis PUT units | DynamoDB writes | DynamoDB reads | **total without Lambda duration** | with `Idempotency-Key` (kept answers) | Lambda duration as measured here (upper bound) |\n|---|---|---|---|---|---|---|---|---|"
    );
    for m in runs {
        let c = cost(m);
        let _ = writeln!(
            r,
            "| {} | {} | {} | {} | {} ({:.3} WRU per event) | {} | **{}** | +{} | {} |",
            m.batch,
            money(c.api),
            money(c.lambda_requests),
            money(c.kinesis),
            money(c.ddb_writes),
            c.wru_per_event,
            money(c.ddb_reads),
            money(c.variable_without_duration()),
            money(c.idempotency),
            money(c.lambda_duration_measured)
        );
    }
    let _ = writeln!(
        r,
        "\nStream records: ingest packs a request's events of one source into records of up to 25 KB, one PUT \
         payload unit each, so the Kinesis line falls with the events per request; at 1 event per request \
         every event is a record. Kept answers (the `Idempotency-Key` column) are stored deflated from 1 KB up."
    );
    let shards = runs.first().map_or(2, |m| m.telemetry_shards);
    let _ = writeln!(
        r,
        "\n## Fixed, apart\n\n- Kinesis: {shards} shards (`TelemetryShardCount`) × 730 h × $0.015 = {} a month, whatever the traffic.\n- Not counted: CloudWatch Logs ingestion ($0.50 per GB) of the functions' JSON lines, X-Ray traces (`Tracing: Active`), DynamoDB storage and the other services' tables.\n",
        money(shards as f64 * 730.0 * KINESIS_SHARD_HOUR)
    );
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_round_up_per_item_and_scale_to_a_million_events() {
        let m = Measured {
            events: 500,
            api_requests: 1,
            consumer_invocations: 1,
            put_payload_units: 500,
            aggregate_writes: 10,
            aggregate_item_bytes: 1500.0,
            detector_writes: 0,
            window_item_bytes: 100.0,
            answer_bytes: 20_000.0,
            ..Default::default()
        };
        let c = cost(&m);
        // 2,000 requests per million events at $1 per million.
        assert!((c.api - 0.002).abs() < 1e-12);
        // One PUT unit per event.
        assert!((c.kinesis - 0.014).abs() < 1e-12);
        // Per request 2 WRU; per batch 1 + 1; 10 rows of 1.5 KB are 2 WRU each: 24 WRU per 500 events.
        assert!((c.wru_per_event - 24.0 / 500.0).abs() < 1e-12);
        // The kept answer: claim 1 + 20 KB (20 WRU) per request.
        assert!((c.idempotency - 2000.0 * 21.0 * DDB_PER_WRU).abs() < 1e-12);
        // Kept deflated in 3 KB: claim 1 + 4 WRU (3 KB and the item's other attributes).
        let c = cost(&Measured { kept_answer_bytes: 3000.0, ..m });
        assert!((c.idempotency - 2000.0 * 5.0 * DDB_PER_WRU).abs() < 1e-12);
    }
}
