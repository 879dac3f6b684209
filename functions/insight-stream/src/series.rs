//! The consumer's view of a batch: Kinesis sequence numbers, and each series' samples in order.
//! Shared by the aggregates and the detector, which never depend on each other.

use std::collections::BTreeMap;

use naksha_contracts::TenantId;
use naksha_contracts::telemetry::SeriesMeta;

/// A Kinesis sequence number, zero-padded so that string order is numeric order (DynamoDB
/// compares strings bytewise, and sequence numbers can be up to 128 digits).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SeqNo(String);

impl SeqNo {
    pub const WIDTH: usize = 128;

    pub fn parse(raw: &str) -> Option<Self> {
        let ok = !raw.is_empty() && raw.len() <= Self::WIDTH && raw.bytes().all(|b| b.is_ascii_digit());
        ok.then(|| Self(format!("{raw:0>width$}", width = Self::WIDTH)))
    }

    /// The padded form, as stored.
    pub fn padded(&self) -> &str {
        &self.0
    }

    pub fn from_padded(s: &str) -> Option<Self> {
        Self::parse(s)
    }
}

/// The item attribute that holds a shard's watermark.
pub fn watermark_attr(shard: &str) -> String {
    format!("wm#{shard}")
}

/// One record of a batch, as delivered.
#[derive(Debug, Clone, Copy)]
pub struct InRecord<'a> {
    pub seq: &'a str,
    pub data: &'a [u8],
}

/// A series of one tenant.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SeriesKey {
    pub tenant: TenantId,
    pub series_id: String,
}

impl SeriesKey {
    /// The series table's partition key (tenant first, P-5).
    pub fn pk(&self) -> String {
        naksha_contracts::telemetry::series_pk(&self.tenant, &self.series_id)
    }
}

/// One sample of a series in a batch: record index, sequence number, minute, value.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub record: usize,
    pub seq: SeqNo,
    pub minute: i64,
    pub value: f64,
    /// The `traceparent` of the record it came from (shared by the record's samples).
    pub trace: Option<std::sync::Arc<str>>,
}

/// A series' samples in one batch, in sequence order.
#[derive(Debug, Clone)]
pub struct SeriesInput {
    pub meta: SeriesMeta,
    pub samples: Vec<Sample>,
}

/// Every series of a batch.
pub type BatchSeries = BTreeMap<SeriesKey, SeriesInput>;

/// Start of the minute holding `ts_ms`, in epoch seconds.
pub fn minute_of(ts_ms: i64) -> i64 {
    ts_ms.div_euclid(60_000) * 60
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sequence_numbers_compare_numerically_once_padded() {
        let a = SeqNo::parse("9").unwrap();
        let b = SeqNo::parse("10").unwrap();
        assert!(a < b);
        assert!(a.padded() < b.padded());
        assert!(SeqNo::parse("12a").is_none());
        assert!(SeqNo::parse("").is_none());
        assert_eq!(minute_of(-1), -60);
    }
}
