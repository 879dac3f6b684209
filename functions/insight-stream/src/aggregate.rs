//! Per-minute aggregates: a batch's samples folded in memory per (tenant, series, minute), then
//! exactly one conditional write per aggregate key, never one write per event.
//!
//! Idempotence comes from sequence numbers: each aggregate remembers, per shard, the highest
//! sequence number folded into it (its watermark). A redelivered record is at or below the
//! watermark and is skipped, so a redelivered batch changes nothing. Writes are conditional on
//! the version that was read, so two deliveries racing cannot both apply.

use std::collections::{BTreeMap, BTreeSet};

use futures::StreamExt;
use naksha_contracts::TenantId;
use naksha_contracts::telemetry::{AggregateRow, SeriesMeta};

use crate::ports::{AggregateStore, CommitError};
use crate::series::SeqNo;

/// How many aggregate writes are in flight at once.
const WRITE_CONCURRENCY: usize = 16;
/// How often a write that lost a race is re-read and retried before the record is reported.
const CONFLICT_RETRIES: usize = 4;

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct AggKey {
    pub tenant: TenantId,
    pub series_id: String,
    /// Start of the minute, seconds since the Unix epoch.
    pub minute: i64,
}

impl AggKey {
    /// The DynamoDB partition key: every key starts with the tenant (P-5).
    pub fn pk(&self) -> String {
        AggregateRow::pk(&self.tenant, &self.series_id)
    }
}

/// Summary statistics of one series in one minute.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Stats {
    pub count: u64,
    pub sum: f64,
    pub min: f64,
    pub max: f64,
    pub sumsq: f64,
    pub first_ts: i64,
    pub last_ts: i64,
}

impl Stats {
    pub fn of(value: f64, ts: i64) -> Self {
        Self { count: 1, sum: value, min: value, max: value, sumsq: value * value, first_ts: ts, last_ts: ts }
    }

    pub fn add(&mut self, value: f64, ts: i64) {
        self.count += 1;
        self.sum += value;
        self.min = self.min.min(value);
        self.max = self.max.max(value);
        self.sumsq += value * value;
        self.first_ts = self.first_ts.min(ts);
        self.last_ts = self.last_ts.max(ts);
    }

    pub fn mean(&self) -> f64 {
        if self.count == 0 { 0.0 } else { self.sum / self.count as f64 }
    }

    /// Population variance, clamped at 0 against rounding.
    pub fn variance(&self) -> f64 {
        if self.count == 0 {
            return 0.0;
        }
        let m = self.mean();
        (self.sumsq / self.count as f64 - m * m).max(0.0)
    }
}

/// An aggregate as stored, with this shard's watermark.
#[derive(Debug, Clone, PartialEq)]
pub struct Stored {
    pub stats: Stats,
    pub version: u64,
    pub watermark: Option<SeqNo>,
}

/// One conditional write.
#[derive(Debug, Clone, PartialEq)]
pub struct AggWrite {
    pub key: AggKey,
    pub meta: SeriesMeta,
    pub stats: Stats,
    /// The version read; 0 means the item must not exist yet.
    pub expected_version: u64,
    pub shard: String,
    pub watermark: SeqNo,
}

impl AggWrite {
    /// The row other services read (insight-stream writes it; the agent and the trainer read it).
    pub fn row(&self) -> AggregateRow {
        AggregateRow {
            tenant: self.key.tenant.clone(),
            series_id: self.key.series_id.clone(),
            source: self.meta.source.clone(),
            name: self.meta.name.clone(),
            labels: self.meta.labels.clone(),
            minute: self.key.minute,
            count: self.stats.count,
            sum: self.stats.sum,
            min: self.stats.min,
            max: self.stats.max,
            sumsq: self.stats.sumsq,
            first_ts: self.stats.first_ts,
            last_ts: self.stats.last_ts,
        }
    }
}

/// One sample's part in an aggregate.
#[derive(Debug, Clone)]
pub struct Contribution {
    pub record: usize,
    pub seq: SeqNo,
    pub value: f64,
    pub ts: i64,
}

/// Everything a batch adds to one aggregate.
#[derive(Debug, Clone)]
pub struct Group {
    pub meta: SeriesMeta,
    pub contributions: Vec<Contribution>,
}

/// What folding a batch's groups did.
#[derive(Debug, Default)]
pub struct Folded {
    pub writes: usize,
    pub applied_samples: usize,
    pub duplicate_samples: usize,
    pub applied_records: BTreeSet<usize>,
    /// Records whose aggregate could not be written (retry from the earliest).
    pub failed: BTreeSet<usize>,
    /// Records whose aggregate the store refused as invalid (dead letters), with the reason.
    pub rejected: BTreeMap<usize, String>,
}

enum GroupOutcome {
    Applied { records: Vec<usize>, samples: usize, duplicates: usize },
    AllDuplicate { samples: usize },
    Failed { first_record: usize },
    Rejected { records: Vec<usize>, reason: String },
}

/// Fold every group of a batch into its stored aggregate: one read for all, one write each.
pub async fn fold_groups<S: AggregateStore>(store: &S, shard: &str, groups: &BTreeMap<AggKey, Group>) -> Folded {
    let mut out = Folded::default();
    if groups.is_empty() {
        return out;
    }
    let keys: Vec<AggKey> = groups.keys().cloned().collect();
    let stored = match store.load(shard, &keys).await {
        Ok(stored) => stored,
        Err(e) => {
            tracing::warn!(error = %e, "could not read aggregates; the batch will be retried");
            out.failed.extend(groups.values().flat_map(|g| g.contributions.iter().map(|c| c.record)));
            return out;
        }
    };
    // The futures are made first: a stream mapping over borrowed pairs would not be `Send`.
    let work: Vec<_> = groups.iter().map(|(key, group)| fold_one(store, shard, key, group, stored.get(key))).collect();
    let outcomes: Vec<GroupOutcome> = futures::stream::iter(work).buffer_unordered(WRITE_CONCURRENCY).collect().await;
    for outcome in outcomes {
        match outcome {
            GroupOutcome::Applied { records, samples, duplicates } => {
                out.writes += 1;
                out.applied_samples += samples;
                out.duplicate_samples += duplicates;
                out.applied_records.extend(records);
            }
            GroupOutcome::AllDuplicate { samples } => out.duplicate_samples += samples,
            GroupOutcome::Failed { first_record } => {
                out.failed.insert(first_record);
            }
            GroupOutcome::Rejected { records, reason } => {
                for r in records {
                    out.rejected.entry(r).or_insert_with(|| reason.clone());
                }
            }
        }
    }
    out
}

async fn fold_one<S: AggregateStore>(
    store: &S,
    shard: &str,
    key: &AggKey,
    group: &Group,
    stored: Option<&Stored>,
) -> GroupOutcome {
    let mut current = stored.cloned();
    for _ in 0..=CONFLICT_RETRIES {
        let watermark = current.as_ref().and_then(|s| s.watermark.clone());
        let fresh: Vec<&Contribution> =
            group.contributions.iter().filter(|c| watermark.as_ref().is_none_or(|w| c.seq > *w)).collect();
        let duplicates = group.contributions.len() - fresh.len();
        let Some(last) = fresh.last() else {
            return GroupOutcome::AllDuplicate { samples: duplicates };
        };
        let mut stats = current.as_ref().map(|s| s.stats);
        for c in &fresh {
            match stats.as_mut() {
                Some(s) => s.add(c.value, c.ts),
                None => stats = Some(Stats::of(c.value, c.ts)),
            }
        }
        let Some(stats) = stats else { return GroupOutcome::AllDuplicate { samples: duplicates } };
        let write = AggWrite {
            key: key.clone(),
            meta: group.meta.clone(),
            stats,
            expected_version: current.as_ref().map_or(0, |s| s.version),
            shard: shard.to_owned(),
            watermark: last.seq.clone(),
        };
        match store.commit(&write).await {
            Ok(()) => {
                return GroupOutcome::Applied {
                    records: fresh.iter().map(|c| c.record).collect(),
                    samples: fresh.len(),
                    duplicates,
                };
            }
            Err(CommitError::Conflict) => match store.load(shard, std::slice::from_ref(key)).await {
                Ok(mut reread) => current = reread.remove(key),
                Err(_) => break,
            },
            Err(CommitError::Rejected(e)) => {
                tracing::warn!(error = %e, series = %key.series_id, minute = key.minute, "aggregate write refused; its records become dead letters");
                return GroupOutcome::Rejected {
                    records: fresh.iter().map(|c| c.record).collect(),
                    reason: format!(
                        "the aggregate of series {} at minute {} was refused by the store as invalid",
                        key.series_id, key.minute
                    ),
                };
            }
            Err(CommitError::Failed(e)) => {
                tracing::warn!(error = %e, "aggregate write failed");
                break;
            }
        }
    }
    let first_record = group.contributions.iter().map(|c| c.record).min().unwrap_or(0);
    GroupOutcome::Failed { first_record }
}
