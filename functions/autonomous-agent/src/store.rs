//! DynamoDB and Kinesis adapters for the agent's ports.
//!
//! | table | key | items |
//! |---|---|---|
//! | runs | `pk` = `<tenant>#<run id>`, `sk` | `run` (state, status, plan digest), `step#000001`… (checkpoints) |
//! | wpks | `pk` = tenant, `sk` = `<id>#<version, 10 digits>` | canonical document, sha256, signature, key, standing approval |
//! | audit | `pk` = tenant, `seq` | `seq` 0 is the chain head; 1… the records (append-only) |
//! | agent-state | `pk` | `halt#<tenant>`, `limit#<tenant>#<resource>#<wpk>#<hour>`, `stats#<tenant>#<signal>`, `receipt#<tenant>#<key>` |
//! | sim | `pk` = `<tenant>#<resource>` | the simulated resource |

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem, Update};
use naksha_core::aws::describe_error;
use serde_json::Value;

use crate::act::Receipts;
use crate::act::sim::{SimResource, SimStore};
use crate::audit::{AuditEntry, AuditRecord};
use crate::observe::telemetry::{AggregateQuery, MinuteRow};
use crate::ports::{AuditLog, Checkpoint, Control, RunQueue, RunStore, StoreError, WpkStore};
use crate::state::{Approval, RunState, RunStatus};
use crate::wpk::{StandingApproval, StoredWpk};

type Item = HashMap<String, AttributeValue>;

fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

fn n(v: impl ToString) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

fn get_s<'a>(item: &'a Item, name: &str) -> Option<&'a str> {
    item.get(name).and_then(|v| v.as_s().ok()).map(String::as_str)
}

fn get_n<T: std::str::FromStr>(item: &Item, name: &str) -> Option<T> {
    item.get(name).and_then(|v| v.as_n().ok()).and_then(|v| v.parse().ok())
}

fn failed<E>(e: aws_sdk_dynamodb::error::SdkError<E>) -> StoreError
where
    E: std::error::Error + aws_sdk_dynamodb::error::ProvideErrorMetadata,
{
    StoreError::Failed(describe_error(&e))
}

fn strings(item: &Item, name: &str) -> Vec<String> {
    item.get(name)
        .and_then(|v| v.as_l().ok())
        .map(|l| l.iter().filter_map(|v| v.as_s().ok().cloned()).collect())
        .unwrap_or_default()
}

fn json_of<T: serde::Serialize>(v: &T) -> Result<String, StoreError> {
    serde_json::to_string(v).map_err(|e| StoreError::Failed(e.to_string()))
}

/// Names of the agent's tables.
#[derive(Debug, Clone)]
pub struct Tables {
    pub runs: String,
    pub wpks: String,
    pub audit: String,
    pub state: String,
}

impl Tables {
    /// `RUNS_TABLE`, `WPKS_TABLE`, `AUDIT_TABLE`, `AGENT_STATE_TABLE`.
    pub fn from_config(r: &mut naksha_core::config::ConfigReader) -> Self {
        Self {
            runs: r.required("RUNS_TABLE"),
            wpks: r.required("WPKS_TABLE"),
            audit: r.required("AUDIT_TABLE"),
            state: r.required("AGENT_STATE_TABLE"),
        }
    }
}

#[derive(Debug, Clone)]
pub struct DynamoAgentStore {
    db: aws_sdk_dynamodb::Client,
    t: Tables,
}

impl DynamoAgentStore {
    pub fn new(db: aws_sdk_dynamodb::Client, tables: Tables) -> Self {
        Self { db, t: tables }
    }

    fn run_key(tenant: &str, run_id: &str) -> Item {
        HashMap::from([("pk".to_owned(), s(format!("{tenant}#{run_id}"))), ("sk".to_owned(), s("run"))])
    }

    fn run_item(state: &RunState) -> Result<Item, StoreError> {
        let mut item = Self::run_key(&state.tenant, &state.run_id);
        item.insert("tenant".into(), s(&state.tenant));
        item.insert("run_id".into(), s(&state.run_id));
        item.insert("status".into(), s(state.status.as_str()));
        item.insert("signal".into(), s(&state.request.signal));
        item.insert("resource".into(), s(&state.request.resource));
        item.insert("state".into(), s(json_of(state)?));
        item.insert("updated_at".into(), s(&state.updated_at));
        if let Some(p) = &state.plan {
            item.insert("plan_sha256".into(), s(&p.sha256));
        }
        Ok(item)
    }

    fn parse_wpk(item: &Item) -> Option<StoredWpk> {
        Some(StoredWpk {
            id: get_s(item, "id")?.to_owned(),
            version: get_n(item, "version")?,
            doc: get_s(item, "doc")?.to_owned(),
            sha256: get_s(item, "sha256")?.to_owned(),
            signature: get_s(item, "signature")?.to_owned(),
            key_id: get_s(item, "key_id")?.to_owned(),
            created_at: get_s(item, "created_at").unwrap_or_default().to_owned(),
            created_by: get_s(item, "created_by").unwrap_or_default().to_owned(),
            standing_approval: get_s(item, "standing_approval").and_then(|j| serde_json::from_str(j).ok()),
            signals: strings(item, "signals"),
            resources: strings(item, "resources"),
        })
    }

    /// Change the run item only if it is awaiting approval for exactly `plan_sha256`.
    async fn conclude_approval(
        &self,
        tenant: &str,
        run_id: &str,
        plan_sha256: Option<&str>,
        update: impl FnOnce(&mut RunState),
    ) -> Result<RunState, StoreError> {
        let mut state = self.load_run(tenant, run_id).await?.ok_or(StoreError::NotFound)?;
        if state.status != RunStatus::AwaitingApproval {
            return Err(StoreError::Conflict);
        }
        if let Some(sha) = plan_sha256
            && state.plan.as_ref().is_none_or(|p| p.sha256 != sha)
        {
            return Err(StoreError::Conflict);
        }
        update(&mut state);
        let mut put = self
            .db
            .put_item()
            .table_name(&self.t.runs)
            .set_item(Some(Self::run_item(&state)?))
            .condition_expression("#status = :awaiting")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":awaiting", s("awaiting_approval"));
        if let Some(sha) = plan_sha256 {
            put = put
                .condition_expression("#status = :awaiting AND plan_sha256 = :sha")
                .expression_attribute_values(":sha", s(sha));
        }
        match put.send().await {
            Ok(_) => Ok(state),
            Err(e) if e.as_service_error().is_some_and(|x| x.is_conditional_check_failed_exception()) => {
                Err(StoreError::Conflict)
            }
            Err(e) => Err(failed(e)),
        }
    }
}

impl RunStore for DynamoAgentStore {
    async fn create_run(&self, state: &RunState) -> Result<(), StoreError> {
        match self
            .db
            .put_item()
            .table_name(&self.t.runs)
            .set_item(Some(Self::run_item(state)?))
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if e.as_service_error().is_some_and(|x| x.is_conditional_check_failed_exception()) => {
                Err(StoreError::Exists)
            }
            Err(e) => Err(failed(e)),
        }
    }

    async fn load_run(&self, tenant: &str, run_id: &str) -> Result<Option<RunState>, StoreError> {
        let out = self
            .db
            .get_item()
            .table_name(&self.t.runs)
            .set_key(Some(Self::run_key(tenant, run_id)))
            .consistent_read(true)
            .send()
            .await
            .map_err(failed)?;
        let Some(item) = out.item() else { return Ok(None) };
        let text = get_s(item, "state").ok_or_else(|| StoreError::Failed("run item without state".into()))?;
        let state: RunState = serde_json::from_str(text).map_err(|e| StoreError::Failed(e.to_string()))?;
        // The key already names the tenant; the state must agree (defence in depth).
        Ok((state.tenant == tenant).then_some(state))
    }

    async fn save_step(&self, state: &RunState, c: &Checkpoint) -> Result<(), StoreError> {
        let step = Put::builder()
            .table_name(&self.t.runs)
            .item("pk", s(format!("{}#{}", state.tenant, state.run_id)))
            .item("sk", s(format!("step#{:06}", c.step)))
            .item("node", s(&c.node))
            .item("checkpoint", s(json_of(c)?))
            .build()
            .map_err(|e| StoreError::Failed(e.to_string()))?;
        let run = Put::builder()
            .table_name(&self.t.runs)
            .set_item(Some(Self::run_item(state)?))
            .build()
            .map_err(|e| StoreError::Failed(e.to_string()))?;
        self.db
            .transact_write_items()
            .transact_items(TransactWriteItem::builder().put(step).build())
            .transact_items(TransactWriteItem::builder().put(run).build())
            .send()
            .await
            .map_err(failed)?;
        Ok(())
    }

    async fn save_run(&self, state: &RunState) -> Result<(), StoreError> {
        self.db
            .put_item()
            .table_name(&self.t.runs)
            .set_item(Some(Self::run_item(state)?))
            .send()
            .await
            .map_err(failed)?;
        Ok(())
    }

    async fn checkpoints(&self, tenant: &str, run_id: &str) -> Result<Vec<Checkpoint>, StoreError> {
        let mut out = Vec::new();
        let mut pages = self
            .db
            .query()
            .table_name(&self.t.runs)
            .key_condition_expression("pk = :pk AND begins_with(sk, :step)")
            .expression_attribute_values(":pk", s(format!("{tenant}#{run_id}")))
            .expression_attribute_values(":step", s("step#"))
            .consistent_read(true)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            for item in page.map_err(failed)?.items() {
                if let Some(c) = get_s(item, "checkpoint").and_then(|j| serde_json::from_str(j).ok()) {
                    out.push(c);
                }
            }
        }
        Ok(out)
    }

    async fn approve(&self, tenant: &str, run_id: &str, approval: &Approval) -> Result<RunState, StoreError> {
        self.conclude_approval(tenant, run_id, Some(&approval.plan_sha256), |st| {
            st.approval = Some(approval.clone());
            st.status = RunStatus::Queued;
        })
        .await
    }

    async fn reject(&self, tenant: &str, run_id: &str, rejection: &Approval) -> Result<RunState, StoreError> {
        self.conclude_approval(tenant, run_id, None, |st| {
            st.rejection = Some(rejection.clone());
            st.conclude(
                RunStatus::Rejected,
                format!("rejected by {}: {}", rejection.approver, rejection.justification),
            );
            st.status = RunStatus::Rejected;
            st.cursor = None;
        })
        .await
    }
}

impl WpkStore for DynamoAgentStore {
    async fn put_wpk(&self, tenant: &str, w: &StoredWpk) -> Result<(), StoreError> {
        let mut put = self
            .db
            .put_item()
            .table_name(&self.t.wpks)
            .item("pk", s(tenant))
            .item("sk", s(format!("{}#{:010}", w.id, w.version)))
            .item("id", s(&w.id))
            .item("version", n(w.version))
            .item("doc", s(&w.doc))
            .item("sha256", s(&w.sha256))
            .item("signature", s(&w.signature))
            .item("key_id", s(&w.key_id))
            .item("created_at", s(&w.created_at))
            .item("created_by", s(&w.created_by))
            .item("signals", AttributeValue::L(w.signals.iter().map(s).collect()))
            .item("resources", AttributeValue::L(w.resources.iter().map(s).collect()))
            .condition_expression("attribute_not_exists(sk)");
        if let Some(a) = &w.standing_approval {
            put = put.item("standing_approval", s(json_of(a)?));
        }
        match put.send().await {
            Ok(_) => Ok(()),
            Err(e) if e.as_service_error().is_some_and(|x| x.is_conditional_check_failed_exception()) => {
                Err(StoreError::Exists)
            }
            Err(e) => Err(failed(e)),
        }
    }

    async fn get_wpk(&self, tenant: &str, id: &str, version: u32) -> Result<Option<StoredWpk>, StoreError> {
        let out = self
            .db
            .get_item()
            .table_name(&self.t.wpks)
            .key("pk", s(tenant))
            .key("sk", s(format!("{id}#{version:010}")))
            .consistent_read(true)
            .send()
            .await
            .map_err(failed)?;
        Ok(out.item().and_then(Self::parse_wpk))
    }

    async fn list_wpks(&self, tenant: &str) -> Result<Vec<StoredWpk>, StoreError> {
        let mut out = Vec::new();
        let mut pages = self
            .db
            .query()
            .table_name(&self.t.wpks)
            .key_condition_expression("pk = :pk")
            .expression_attribute_values(":pk", s(tenant))
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            out.extend(page.map_err(failed)?.items().iter().filter_map(Self::parse_wpk));
        }
        Ok(out)
    }

    async fn set_standing_approval(
        &self,
        tenant: &str,
        id: &str,
        version: u32,
        a: &StandingApproval,
    ) -> Result<(), StoreError> {
        match self
            .db
            .update_item()
            .table_name(&self.t.wpks)
            .key("pk", s(tenant))
            .key("sk", s(format!("{id}#{version:010}")))
            .update_expression("SET standing_approval = :a")
            .condition_expression("attribute_exists(sk)")
            .expression_attribute_values(":a", s(json_of(a)?))
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if e.as_service_error().is_some_and(|x| x.is_conditional_check_failed_exception()) => {
                Err(StoreError::NotFound)
            }
            Err(e) => Err(failed(e)),
        }
    }
}

impl AuditLog for DynamoAgentStore {
    async fn append(&self, tenant: &str, entry: AuditEntry) -> Result<AuditRecord, StoreError> {
        // Optimistic: read the head, seal after it, and write record + new head in one
        // transaction conditional on the head not having moved.
        for attempt in 0..8u32 {
            let head = self
                .db
                .get_item()
                .table_name(&self.t.audit)
                .key("pk", s(tenant))
                .key("seq", n(0))
                .consistent_read(true)
                .send()
                .await
                .map_err(failed)?;
            let prev = head.item().and_then(|h| {
                let seq: u64 = get_n(h, "head_seq")?;
                let record = get_s(h, "head_record")?;
                serde_json::from_str::<AuditRecord>(record).ok().filter(|r| r.seq == seq)
            });
            let record = AuditRecord::seal(tenant, entry.clone(), prev.as_ref());
            let text = json_of(&record)?;
            let put_record = Put::builder()
                .table_name(&self.t.audit)
                .item("pk", s(tenant))
                .item("seq", n(record.seq))
                .item("run_id", s(&record.entry.run_id))
                .item("hash", s(&record.hash))
                .item("prev_hash", s(&record.prev_hash))
                .item("record", s(text.clone()))
                .condition_expression("attribute_not_exists(seq)")
                .build()
                .map_err(|e| StoreError::Failed(e.to_string()))?;
            let mut head_put = Put::builder()
                .table_name(&self.t.audit)
                .item("pk", s(tenant))
                .item("seq", n(0))
                .item("head_seq", n(record.seq))
                .item("head_record", s(text));
            head_put = match &prev {
                None => head_put.condition_expression("attribute_not_exists(seq)"),
                Some(p) => {
                    head_put.condition_expression("head_seq = :prev").expression_attribute_values(":prev", n(p.seq))
                }
            };
            let head_put = head_put.build().map_err(|e| StoreError::Failed(e.to_string()))?;
            // One record per run: a run resumed after a crash must not append twice.
            let marker = Put::builder()
                .table_name(&self.t.audit)
                .item("pk", s(format!("{tenant}#run#{}", record.entry.run_id)))
                .item("seq", n(0))
                .item("record_seq", n(record.seq))
                .condition_expression("attribute_not_exists(pk)")
                .build()
                .map_err(|e| StoreError::Failed(e.to_string()))?;
            let result = self
                .db
                .transact_write_items()
                .transact_items(TransactWriteItem::builder().put(put_record).build())
                .transact_items(TransactWriteItem::builder().put(head_put).build())
                .transact_items(TransactWriteItem::builder().put(marker).build())
                .send()
                .await;
            match result {
                Ok(_) => return Ok(record),
                Err(e) if e.as_service_error().is_some_and(|x| x.is_transaction_canceled_exception()) => {
                    if let Some(existing) = self.record_of_run(tenant, &record.entry.run_id).await? {
                        return Ok(existing);
                    }
                    tokio::time::sleep(Duration::from_millis(20 << attempt.min(5))).await;
                }
                Err(e) => return Err(failed(e)),
            }
        }
        Err(StoreError::Conflict)
    }

    async fn records(&self, tenant: &str) -> Result<Vec<AuditRecord>, StoreError> {
        let mut out = Vec::new();
        let mut pages = self
            .db
            .query()
            .table_name(&self.t.audit)
            .key_condition_expression("pk = :pk AND seq > :zero")
            .expression_attribute_values(":pk", s(tenant))
            .expression_attribute_values(":zero", n(0))
            .consistent_read(true)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            for item in page.map_err(failed)?.items() {
                let text = get_s(item, "record").unwrap_or_default();
                // A record that no longer parses is kept as a broken shell, so verification
                // names it instead of silently skipping it.
                let record = serde_json::from_str::<AuditRecord>(text).unwrap_or_else(|_| AuditRecord {
                    tenant: tenant.to_owned(),
                    seq: get_n(item, "seq").unwrap_or(0),
                    entry: AuditEntry {
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
                    },
                    prev_hash: get_s(item, "prev_hash").unwrap_or_default().to_owned(),
                    hash: String::new(),
                });
                out.push(record);
            }
        }
        out.sort_by_key(|r| r.seq);
        Ok(out)
    }
}

impl DynamoAgentStore {
    /// The audit record a run already appended, if any.
    async fn record_of_run(&self, tenant: &str, run_id: &str) -> Result<Option<AuditRecord>, StoreError> {
        let marker = self
            .db
            .get_item()
            .table_name(&self.t.audit)
            .key("pk", s(format!("{tenant}#run#{run_id}")))
            .key("seq", n(0))
            .consistent_read(true)
            .send()
            .await
            .map_err(failed)?;
        let Some(seq) = marker.item().and_then(|m| get_n::<u64>(m, "record_seq")) else { return Ok(None) };
        let item = self
            .db
            .get_item()
            .table_name(&self.t.audit)
            .key("pk", s(tenant))
            .key("seq", n(seq))
            .consistent_read(true)
            .send()
            .await
            .map_err(failed)?;
        Ok(item.item().and_then(|i| get_s(i, "record")).and_then(|r| serde_json::from_str(r).ok()))
    }

    async fn get_state(&self, pk: &str) -> Result<Option<Item>, StoreError> {
        let out = self
            .db
            .get_item()
            .table_name(&self.t.state)
            .key("pk", s(pk))
            .consistent_read(true)
            .send()
            .await
            .map_err(failed)?;
        Ok(out.item().cloned())
    }
}

impl Control for DynamoAgentStore {
    async fn halted(&self, tenant: &str) -> Result<Option<String>, StoreError> {
        Ok(self.get_state(&format!("halt#{tenant}")).await?.and_then(|i| get_s(&i, "reason").map(str::to_owned)))
    }

    async fn set_halted(&self, tenant: &str, reason: Option<&str>) -> Result<(), StoreError> {
        let pk = format!("halt#{tenant}");
        match reason {
            Some(r) => {
                self.db
                    .put_item()
                    .table_name(&self.t.state)
                    .item("pk", s(pk))
                    .item("reason", s(r))
                    .item("at", s(chrono::Utc::now().to_rfc3339()))
                    .send()
                    .await
                    .map_err(failed)?;
            }
            None => {
                self.db.delete_item().table_name(&self.t.state).key("pk", s(pk)).send().await.map_err(failed)?;
            }
        }
        Ok(())
    }

    async fn runs_in_hour(&self, tenant: &str, resource: &str, wpk: &str, hour: i64) -> Result<u32, StoreError> {
        let item = self.get_state(&format!("limit#{tenant}#{resource}#{wpk}#{hour}")).await?;
        Ok(item.and_then(|i| i.get("runs").and_then(|r| r.as_ss().ok()).map(|ss| ss.len() as u32)).unwrap_or(0))
    }

    async fn take_slot(
        &self,
        tenant: &str,
        resource: &str,
        wpk_run: &str,
        hour: i64,
        max: u32,
    ) -> Result<bool, StoreError> {
        let (wpk, run) = wpk_run.split_once('#').unwrap_or((wpk_run, ""));
        let result = self
            .db
            .update_item()
            .table_name(&self.t.state)
            .key("pk", s(format!("limit#{tenant}#{resource}#{wpk}#{hour}")))
            .update_expression("ADD runs :run SET expires_at = :exp")
            .condition_expression("attribute_not_exists(runs) OR size(runs) < :max OR contains(runs, :one)")
            .expression_attribute_values(":run", AttributeValue::Ss(vec![run.to_owned()]))
            .expression_attribute_values(":one", s(run))
            .expression_attribute_values(":max", n(max))
            .expression_attribute_values(":exp", n((hour + 2) * 3600))
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(e) if e.as_service_error().is_some_and(|x| x.is_conditional_check_failed_exception()) => Ok(false),
            Err(e) => Err(failed(e)),
        }
    }

    async fn outcome_stats(&self, tenant: &str, signal: &str) -> Result<BTreeMap<String, (u32, u32)>, StoreError> {
        let mut out: BTreeMap<String, (u32, u32)> = BTreeMap::new();
        if let Some(item) = self.get_state(&format!("stats#{tenant}#{signal}")).await? {
            for (k, v) in &item {
                let Some(count) = v.as_n().ok().and_then(|n| n.parse::<u32>().ok()) else { continue };
                if let Some(w) = k.strip_prefix("ok#") {
                    out.entry(w.to_owned()).or_default().0 = count;
                } else if let Some(w) = k.strip_prefix("fail#") {
                    out.entry(w.to_owned()).or_default().1 = count;
                }
            }
        }
        Ok(out)
    }

    async fn record_outcome(&self, tenant: &str, signal: &str, wpk: &str, ok: bool) -> Result<(), StoreError> {
        self.db
            .update_item()
            .table_name(&self.t.state)
            .key("pk", s(format!("stats#{tenant}#{signal}")))
            .update_expression("ADD #c :one")
            .expression_attribute_names("#c", format!("{}#{wpk}", if ok { "ok" } else { "fail" }))
            .expression_attribute_values(":one", n(1))
            .send()
            .await
            .map_err(failed)?;
        Ok(())
    }
}

impl Receipts for DynamoAgentStore {
    async fn get(&self, tenant: &str, key: &str) -> Result<Option<(bool, Value)>, String> {
        let item = self.get_state(&format!("receipt#{tenant}#{key}")).await.map_err(|e| e.to_string())?;
        Ok(item.map(|i| {
            let done = i.get("done").and_then(|d| d.as_bool().ok()).copied().unwrap_or(false);
            let result = get_s(&i, "result").and_then(|r| serde_json::from_str(r).ok()).unwrap_or(Value::Null);
            (done, result)
        }))
    }

    async fn begin(&self, tenant: &str, key: &str) -> Result<bool, String> {
        match self
            .db
            .put_item()
            .table_name(&self.t.state)
            .item("pk", s(format!("receipt#{tenant}#{key}")))
            .item("done", AttributeValue::Bool(false))
            .item("at", s(chrono::Utc::now().to_rfc3339()))
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .await
        {
            Ok(_) => Ok(true),
            Err(e) if e.as_service_error().is_some_and(|x| x.is_conditional_check_failed_exception()) => Ok(false),
            Err(e) => Err(describe_error(&e)),
        }
    }

    async fn finish(&self, tenant: &str, key: &str, result: &Value) -> Result<(), String> {
        self.db
            .put_item()
            .table_name(&self.t.state)
            .item("pk", s(format!("receipt#{tenant}#{key}")))
            .item("done", AttributeValue::Bool(true))
            .item("result", s(result.to_string()))
            .item("at", s(chrono::Utc::now().to_rfc3339()))
            .send()
            .await
            .map_err(|e| describe_error(&e))?;
        Ok(())
    }
}

/// The simulated cluster, with receipts in the agent-state table.
#[derive(Debug, Clone)]
pub struct DynamoSim {
    db: aws_sdk_dynamodb::Client,
    table: String,
    state_table: String,
}

impl DynamoSim {
    pub fn new(db: aws_sdk_dynamodb::Client, table: impl Into<String>, state_table: impl Into<String>) -> Self {
        Self { db, table: table.into(), state_table: state_table.into() }
    }
}

fn sim_item(tenant: &str, resource: &str, r: &SimResource) -> Result<Item, StoreError> {
    Ok(HashMap::from([
        ("pk".to_owned(), s(format!("{tenant}#{resource}"))),
        ("tenant".to_owned(), s(tenant)),
        ("resource".to_owned(), s(resource)),
        ("doc".to_owned(), s(json_of(r)?)),
    ]))
}

impl SimStore for DynamoSim {
    async fn get(&self, tenant: &str, resource: &str) -> Result<Option<SimResource>, String> {
        let out = self
            .db
            .get_item()
            .table_name(&self.table)
            .key("pk", s(format!("{tenant}#{resource}")))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| describe_error(&e))?;
        Ok(out.item().and_then(|i| get_s(i, "doc")).and_then(|d| serde_json::from_str(d).ok()))
    }

    async fn put(&self, tenant: &str, resource: &str, r: &SimResource) -> Result<(), String> {
        self.db
            .put_item()
            .table_name(&self.table)
            .set_item(Some(sim_item(tenant, resource, r).map_err(|e| e.to_string())?))
            .send()
            .await
            .map_err(|e| describe_error(&e))?;
        Ok(())
    }

    async fn apply(
        &self,
        tenant: &str,
        resource: &str,
        before: &SimResource,
        after: &SimResource,
        key: &str,
        receipt: &Value,
    ) -> Result<(Value, bool), String> {
        let before_doc = serde_json::to_string(before).map_err(|e| e.to_string())?;
        let update = Update::builder()
            .table_name(&self.table)
            .key("pk", s(format!("{tenant}#{resource}")))
            .update_expression("SET doc = :after")
            .condition_expression("doc = :before")
            .expression_attribute_values(":after", s(serde_json::to_string(after).map_err(|e| e.to_string())?))
            .expression_attribute_values(":before", s(before_doc))
            .build()
            .map_err(|e| e.to_string())?;
        let put_receipt = Put::builder()
            .table_name(&self.state_table)
            .item("pk", s(format!("receipt#{tenant}#{key}")))
            .item("done", AttributeValue::Bool(true))
            .item("result", s(receipt.to_string()))
            .item("at", s(chrono::Utc::now().to_rfc3339()))
            .condition_expression("attribute_not_exists(pk)")
            .build()
            .map_err(|e| e.to_string())?;
        let result = self
            .db
            .transact_write_items()
            .transact_items(TransactWriteItem::builder().update(update).build())
            .transact_items(TransactWriteItem::builder().put(put_receipt).build())
            .send()
            .await;
        match result {
            Ok(_) => Ok((receipt.clone(), false)),
            Err(e) if e.as_service_error().is_some_and(|x| x.is_transaction_canceled_exception()) => {
                // Either the receipt exists (the act already happened: reuse it) or the
                // resource moved under us (refuse).
                let stored = self
                    .db
                    .get_item()
                    .table_name(&self.state_table)
                    .key("pk", s(format!("receipt#{tenant}#{key}")))
                    .consistent_read(true)
                    .send()
                    .await
                    .map_err(|e| describe_error(&e))?;
                match stored.item().and_then(|i| get_s(i, "result")).and_then(|r| serde_json::from_str(r).ok()) {
                    Some(previous) => Ok((previous, true)),
                    None => Err("the resource changed while acting".into()),
                }
            }
            Err(e) => Err(describe_error(&e)),
        }
    }
}

/// Queued runs on the runs stream, partitioned by tenant and resource so that two runs on one
/// resource are processed in order, never at once.
#[derive(Debug, Clone)]
pub struct KinesisRunQueue {
    kinesis: aws_sdk_kinesis::Client,
    stream: String,
}

impl KinesisRunQueue {
    pub fn new(kinesis: aws_sdk_kinesis::Client, stream: impl Into<String>) -> Self {
        Self { kinesis, stream: stream.into() }
    }
}

pub use naksha_core::runs::RunMessage;

impl RunQueue for KinesisRunQueue {
    async fn enqueue(&self, tenant: &str, resource: &str, run_id: &str) -> Result<(), StoreError> {
        let body = json_of(&RunMessage { tenant: tenant.to_owned(), run_id: run_id.to_owned(), start: None })?;
        let key = naksha_core::runs::partition_key(tenant, resource);
        self.kinesis
            .put_record()
            .stream_name(&self.stream)
            .partition_key(key)
            .data(aws_sdk_kinesis::primitives::Blob::new(body.into_bytes()))
            .send()
            .await
            .map_err(|e| StoreError::Failed(describe_error(&e)))?;
        Ok(())
    }
}

/// D.1 aggregates by source, through the aggregates table's `by_source` index.
#[derive(Debug, Clone)]
pub struct DynamoAggregateQuery {
    db: aws_sdk_dynamodb::Client,
    table: String,
}

impl DynamoAggregateQuery {
    pub fn new(db: aws_sdk_dynamodb::Client, table: impl Into<String>) -> Self {
        Self { db, table: table.into() }
    }
}

impl AggregateQuery for DynamoAggregateQuery {
    async fn by_source(&self, tenant: &str, source: &str, since_minute: i64) -> Result<Vec<MinuteRow>, String> {
        let mut rows = Vec::new();
        let mut pages = self
            .db
            .query()
            .table_name(&self.table)
            .index_name("by_source")
            .key_condition_expression("tenant_source = :ts AND #minute >= :since")
            .expression_attribute_names("#minute", "minute")
            .expression_attribute_values(":ts", s(format!("{tenant}#{source}")))
            .expression_attribute_values(":since", n(since_minute))
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            for item in page.map_err(|e| describe_error(&e))?.items() {
                let labels = item
                    .get("labels")
                    .and_then(|l| l.as_m().ok())
                    .map(|m| m.iter().filter_map(|(k, v)| Some((k.clone(), v.as_s().ok()?.clone()))).collect())
                    .unwrap_or_default();
                rows.push(MinuteRow {
                    name: get_s(item, "name").unwrap_or_default().to_owned(),
                    labels,
                    minute: get_n(item, "minute").unwrap_or(0),
                    count: get_n(item, "count").unwrap_or(0.0),
                    sum: get_n(item, "sum").unwrap_or(0.0),
                    min: get_n(item, "min").unwrap_or(0.0),
                    max: get_n(item, "max").unwrap_or(0.0),
                });
            }
        }
        Ok(rows)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_items_carry_what_conditional_writes_need() {
        let req = crate::state::RunRequest {
            signal: "s".into(),
            resource: "deployment/a".into(),
            telemetry: None,
            dry_run: false,
        };
        let st = RunState::new("r1".into(), "acme".into(), "u".into(), req, "now".into());
        let item = DynamoAgentStore::run_item(&st).unwrap();
        assert_eq!(get_s(&item, "pk"), Some("acme#r1"));
        assert_eq!(get_s(&item, "status"), Some("queued"));
        let back: RunState = serde_json::from_str(get_s(&item, "state").unwrap()).unwrap();
        assert_eq!(back, st);
    }
}
