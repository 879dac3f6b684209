//! The hash-chained audit log; the layout is naksha-contracts' [`naksha_contracts::audit`].
//!
//! | item | `pk` | `seq` | attributes |
//! |---|---|---|---|
//! | the head | the tenant | 0 | `head_seq`, `head_record` (the newest record) |
//! | a record | the tenant | 1, 2, … | `record` (JSON), `run_id`, `hash`, `prev_hash` |
//! | a run's marker | [`run_marker_pk`] = `<tenant>#run#<run id>` | 0 | `record_seq` |
//! | a checkpoint | [`checkpoint_pk`] = `<tenant>#checkpoint` | the record's | `sealed` (the signed `Checkpoint`) |
//!
//! An append writes record, head, marker and a KMS-signed checkpoint of the new head in one
//! transaction, each only if absent (the head only if it has not moved): a record cannot be
//! overwritten, a run appends once, and the end of the chain is anchored by a signature.

use std::time::Duration;

use aws_sdk_dynamodb::types::{Put, TransactWriteItem};
use naksha_contracts::TenantId;
use naksha_contracts::audit::{Anchors, AuditEntry, AuditRecord, Checkpoint, HEAD_SEQ, checkpoint_pk, run_marker_pk};
use naksha_contracts::signing::Sealed;
use naksha_core::ddb::{Item, get_n, get_s, n, query_all, s, transaction_cancelled};
use naksha_core::signing::seal;

use super::{DynamoAgentStore, built, failed, json_of};
use crate::ports::{AuditLog, StoreError};

/// A stored record; one that no longer parses is kept as a broken shell, so verification names it
/// instead of silently skipping it.
fn decode_record(tenant: &TenantId, item: &Item) -> AuditRecord {
    let text = get_s(item, "record").unwrap_or_default();
    serde_json::from_str::<AuditRecord>(text).unwrap_or_else(|_| AuditRecord {
        tenant: tenant.clone(),
        seq: get_n(item, "seq").unwrap_or(0),
        entry: AuditEntry {
            kind: String::new(),
            run_id: get_s(item, "run_id").unwrap_or_default().to_owned(),
            wpk_id: String::new(),
            wpk_version: 0,
            wpk_sha256: String::new(),
            approver: String::new(),
            justification: String::new(),
            standing_approval: false,
            plan_sha256: String::new(),
            before_sha256: String::new(),
            after_sha256: String::new(),
            actions: Vec::new(),
            outcome: "unreadable".into(),
            at: String::new(),
            approval_sha256: String::new(),
            dry_run_passed: false,
        },
        prev_hash: get_s(item, "prev_hash").unwrap_or_default().to_owned(),
        hash: String::new(),
    })
}

impl DynamoAgentStore {
    /// The audit record a run already appended, if any.
    async fn appended_by(&self, tenant: &TenantId, run_id: &str) -> Result<Option<AuditRecord>, StoreError> {
        let marker = self
            .db
            .get_item()
            .table_name(&self.t.audit)
            .key("pk", s(run_marker_pk(tenant, run_id)))
            .key("seq", n(HEAD_SEQ))
            .consistent_read(true)
            .send()
            .await
            .map_err(failed)?;
        let Some(seq) = marker.item().and_then(|m| get_n::<u64>(m, "record_seq")) else { return Ok(None) };
        let item = self
            .db
            .get_item()
            .table_name(&self.t.audit)
            .key("pk", s(tenant.as_str()))
            .key("seq", n(seq))
            .consistent_read(true)
            .send()
            .await
            .map_err(failed)?;
        Ok(item.item().and_then(|i| get_s(i, "record")).and_then(|r| serde_json::from_str(r).ok()))
    }
}

impl DynamoAgentStore {
    /// The chain's head item: the sequence number it names and the record it holds (if that
    /// still parses). `None` when the chain is empty.
    async fn head(&self, tenant: &TenantId) -> Result<Option<(u64, Option<AuditRecord>)>, StoreError> {
        let out = self
            .db
            .get_item()
            .table_name(&self.t.audit)
            .key("pk", s(tenant.as_str()))
            .key("seq", n(HEAD_SEQ))
            .consistent_read(true)
            .send()
            .await
            .map_err(failed)?;
        Ok(out.item().and_then(|h| {
            let seq: u64 = get_n(h, "head_seq")?;
            Some((seq, get_s(h, "head_record").and_then(|r| serde_json::from_str(r).ok())))
        }))
    }
}

impl AuditLog for DynamoAgentStore {
    async fn append(&self, tenant: &TenantId, entry: AuditEntry) -> Result<AuditRecord, StoreError> {
        let signer = self
            .audit_signer
            .as_ref()
            .ok_or_else(|| StoreError::Failed("no audit signing key is configured".into()))?;
        // Optimistic: read the head, seal after it, and write record + new head in one
        // transaction conditional on the head not having moved.
        for attempt in 0..8u32 {
            let prev = self.head(tenant).await?.and_then(|(seq, record)| record.filter(|r| r.seq == seq));
            let record = AuditRecord::seal(tenant, entry.clone(), prev.as_ref());
            let text = json_of(&record)?;
            let checkpoint = Checkpoint { seq: record.seq, hash: record.hash.clone(), at: record.entry.at.clone() };
            let sealed = seal(signer, Checkpoint::PURPOSE, tenant, &checkpoint)
                .await
                .map_err(|e| StoreError::Failed(format!("signing the audit checkpoint: {e}")))?;
            let put_checkpoint = built(
                Put::builder()
                    .table_name(&self.t.audit)
                    .item("pk", s(checkpoint_pk(tenant)))
                    .item("seq", n(record.seq))
                    .item("sealed", s(json_of(&sealed)?))
                    .condition_expression("attribute_not_exists(seq)")
                    .build(),
            )?;
            let put_record = built(
                Put::builder()
                    .table_name(&self.t.audit)
                    .item("pk", s(tenant.as_str()))
                    .item("seq", n(record.seq))
                    .item("run_id", s(&record.entry.run_id))
                    .item("hash", s(&record.hash))
                    .item("prev_hash", s(&record.prev_hash))
                    .item("record", s(text.clone()))
                    .condition_expression("attribute_not_exists(seq)")
                    .build(),
            )?;
            let mut head_put = Put::builder()
                .table_name(&self.t.audit)
                .item("pk", s(tenant.as_str()))
                .item("seq", n(HEAD_SEQ))
                .item("head_seq", n(record.seq))
                .item("head_record", s(text));
            head_put = match &prev {
                None => head_put.condition_expression("attribute_not_exists(seq)"),
                Some(p) => {
                    head_put.condition_expression("head_seq = :prev").expression_attribute_values(":prev", n(p.seq))
                }
            };
            let head_put = built(head_put.build())?;
            // One record per run: a run resumed after a crash must not append twice.
            let marker = built(
                Put::builder()
                    .table_name(&self.t.audit)
                    .item("pk", s(run_marker_pk(tenant, &record.entry.run_id)))
                    .item("seq", n(HEAD_SEQ))
                    .item("record_seq", n(record.seq))
                    .condition_expression("attribute_not_exists(pk)")
                    .build(),
            )?;
            let result = self
                .db
                .transact_write_items()
                .transact_items(TransactWriteItem::builder().put(put_record).build())
                .transact_items(TransactWriteItem::builder().put(head_put).build())
                .transact_items(TransactWriteItem::builder().put(marker).build())
                .transact_items(TransactWriteItem::builder().put(put_checkpoint).build())
                .send()
                .await;
            match result {
                Ok(_) => return Ok(record),
                Err(e) if transaction_cancelled(&e) => {
                    if let Some(existing) = self.appended_by(tenant, &record.entry.run_id).await? {
                        return Ok(existing);
                    }
                    tokio::time::sleep(Duration::from_millis(20 << attempt.min(5))).await;
                }
                Err(e) => return Err(failed(e)),
            }
        }
        Err(StoreError::Conflict)
    }

    async fn records(&self, tenant: &TenantId) -> Result<Vec<AuditRecord>, StoreError> {
        let mut out = Vec::new();
        let mut after = HEAD_SEQ;
        loop {
            let (page, next) = self.page(tenant, after, 1000).await?;
            out.extend(page);
            match next {
                Some(n) => after = n,
                None => return Ok(out),
            }
        }
    }

    async fn page(
        &self,
        tenant: &TenantId,
        after: u64,
        limit: usize,
    ) -> Result<(Vec<AuditRecord>, Option<u64>), StoreError> {
        let limit = limit.clamp(1, 1000);
        let out = self
            .db
            .query()
            .table_name(&self.t.audit)
            .key_condition_expression("pk = :pk AND seq > :after")
            .expression_attribute_values(":pk", s(tenant.as_str()))
            .expression_attribute_values(":after", n(after))
            .limit(i32::try_from(limit + 1).unwrap_or(1001))
            .consistent_read(true)
            .send()
            .await
            .map_err(failed)?;
        let mut records: Vec<AuditRecord> = out.items().iter().map(|i| decode_record(tenant, i)).collect();
        records.sort_by_key(|r| r.seq);
        let next = (records.len() > limit).then(|| records[limit - 1].seq);
        records.truncate(limit);
        Ok((records, next))
    }

    async fn record_of_run(&self, tenant: &TenantId, run_id: &str) -> Result<Option<AuditRecord>, StoreError> {
        self.appended_by(tenant, run_id).await
    }

    async fn anchors(&self, tenant: &TenantId) -> Result<Anchors, StoreError> {
        let head = self.head(tenant).await?.and_then(|(seq, record)| Some((seq, record?.hash)));
        let query = self
            .db
            .query()
            .table_name(&self.t.audit)
            .key_condition_expression("pk = :pk")
            .expression_attribute_values(":pk", s(checkpoint_pk(tenant)))
            .consistent_read(true);
        let checkpoints: Vec<Sealed> = query_all(query)
            .await?
            .iter()
            .filter_map(|i| get_s(i, "sealed").and_then(|j| serde_json::from_str(j).ok()))
            .collect();
        Ok(Anchors { head, checkpoints, acted: Vec::new() })
    }
}
