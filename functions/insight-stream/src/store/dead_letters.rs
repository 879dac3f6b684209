//! Poison records set aside by the consumer: metadata only, never the payload.
//!
//! | attribute | value |
//! |---|---|
//! | `pk` | `shard#<shard id>` — not tenant-owned: a poison record's tenant cannot be trusted (it may not decode at all) |
//! | `seq` | the record's sequence number (sort key); written only if absent, so a redelivery records nothing twice |
//! | `reason`, `size`, `sha256` | why it was refused (at most 500 characters), its size and digest |
//! | `recorded_at`, `expires_at` | epoch seconds; TTL after [`DEAD_LETTER_RETENTION_SECS`] |

use naksha_core::aws::describe_error;
use naksha_core::ddb::{condition_failed, n, s};

use crate::ports::{DeadLetterStore, PoisonRecord, StoreError};

/// How long dead letters are kept.
pub const DEAD_LETTER_RETENTION_SECS: i64 = 14 * 24 * 3600;

/// The partition key of a shard's dead letters.
pub fn shard_pk(shard: &str) -> String {
    format!("shard#{shard}")
}

#[derive(Debug, Clone)]
pub struct DynamoDeadLetters {
    client: aws_sdk_dynamodb::Client,
    table: String,
}

impl DynamoDeadLetters {
    pub fn new(client: aws_sdk_dynamodb::Client, table: impl Into<String>) -> Self {
        Self { client, table: table.into() }
    }
}

impl DeadLetterStore for DynamoDeadLetters {
    async fn record(&self, letters: &[PoisonRecord]) -> Result<usize, StoreError> {
        let mut new = 0;
        let now = super::now_secs();
        for l in letters {
            let put = self
                .client
                .put_item()
                .table_name(&self.table)
                .item("pk", s(shard_pk(&l.shard)))
                .item("seq", s(&l.seq))
                .item("reason", s(l.reason.chars().take(500).collect::<String>()))
                .item("size", n(l.size))
                .item("sha256", s(&l.sha256))
                .item("recorded_at", n(now))
                .item("expires_at", n(now + DEAD_LETTER_RETENTION_SECS))
                .condition_expression("attribute_not_exists(pk)")
                .send()
                .await;
            match put {
                Ok(_) => new += 1,
                Err(e) if condition_failed(&e) => {}
                Err(e) => return Err(StoreError(describe_error(&e))),
            }
        }
        Ok(new)
    }
}
