//! `naksha.federation`: nodes, triggers, executions, the envelopes handed out, and refusals. The
//! hub is its only writer.
//!
//! | item | `pk` | `sk` | attributes |
//! |---|---|---|---|
//! | node | the tenant | [`node_sk`] = `node#<node id>` | the [`Node`] fields, `last_seen_ms` (epoch ms: what the sweep's condition compares), `next_seq` (the last seq handed out) |
//! | trigger | the tenant | [`trigger_sk`] = `trigger#<trigger id>` | `spec` (JSON), `state`, `n_succeeded` … `n_cancelled`, `win_minute`, `win_count`, `ended_at`, `abort_reason` |
//! | execution | [`execution_pk`] = `<tenant>#trigger#<trigger id>` | [`node_sk`] | `state`, `seq`, `queued_at`, `delivered_at`, `finished_at`, `reason`, `result` (the signed result, JSON) |
//! | queued for a node | [`inbox_pk`] = `<tenant>#node#<node id>` | [`queued_sk`] = `queued#<trigger id>` | `expires_epoch` (TTL) |
//! | delivery | [`inbox_pk`] | [`delivery_sk`] = `env#<seq, 20 digits>` | `delivery` (JSON), `expires_at`, `expires_epoch` (TTL) |
//! | refusal | [`inbox_pk`] | [`refusal_sk`] = `refusal#<time>#<trigger id>#<seq>` | `result` (JSON), `sealed` (JSON), `expires_epoch` (TTL, 30 days) |
//! | announced trigger key | [`FLEET_PK`] = `#fleet` (no tenant owns it) | `key#<kid>` | `key` (JSON of a `HubKey`), `announcement` (JSON of the signed statement) |

use aws_sdk_dynamodb::types::{AttributeValue, Delete, Put, ReturnValue, TransactWriteItem, Update};
use chrono::{DateTime, Utc};
use naksha_contracts::TenantId;
use naksha_contracts::edge::{Delivery, EdgeResult};
use naksha_contracts::signing::Sealed;
use naksha_core::aws::describe_error;
use naksha_core::ddb::{
    Item, condition_failed, from_item, get_n, get_s, n, query_all, s, scan_all, to_item, transaction_cancelled,
};

use super::failed;
use crate::nodes::{Node, NodeStatus};
use crate::ports::{Ending, Finished, Nodes, Registered, StoreError, Work};
use crate::triggers::{Counts, ExecState, Execution, Trigger, TriggerSpec, TriggerState};

/// The partition of what belongs to the whole fleet (announced trigger keys): `#` cannot start a
/// tenant id, so no tenant's items share it.
pub const FLEET_PK: &str = "#fleet";

pub fn node_sk(node_id: &str) -> String {
    format!("node#{node_id}")
}

pub fn trigger_sk(trigger_id: &str) -> String {
    format!("trigger#{trigger_id}")
}

pub fn execution_pk(tenant: &TenantId, trigger_id: &str) -> String {
    tenant.key(&["trigger", trigger_id])
}

pub fn inbox_pk(tenant: &TenantId, node_id: &str) -> String {
    tenant.key(&["node", node_id])
}

pub fn queued_sk(trigger_id: &str) -> String {
    format!("queued#{trigger_id}")
}

pub fn delivery_sk(seq: u64) -> String {
    format!("env#{seq:020}")
}

pub fn refusal_sk(at: DateTime<Utc>, trigger_id: &str, seq: u64) -> String {
    format!("refusal#{}#{trigger_id}#{seq}", at.format("%Y-%m-%dT%H:%M:%S%.6fZ"))
}

pub fn key_sk(kid: &str) -> String {
    format!("key#{kid}")
}

/// How long a trigger and its executions are kept after they expire, and refusals after they
/// were reported.
const KEEP: i64 = 90 * 24 * 3600;
const KEEP_REFUSALS: i64 = 30 * 24 * 3600;

const COUNTERS: [&str; 5] = ["n_succeeded", "n_failed", "n_rejected", "n_expired", "n_cancelled"];

#[derive(Debug, Clone)]
pub struct DynamoFleet {
    db: aws_sdk_dynamodb::Client,
    table: String,
}

impl DynamoFleet {
    pub fn new(db: aws_sdk_dynamodb::Client, table: impl Into<String>) -> Self {
        Self { db, table: table.into() }
    }

    async fn get(&self, pk: String, sk: String) -> Result<Option<Item>, StoreError> {
        let out = self
            .db
            .get_item()
            .table_name(&self.table)
            .key("pk", s(pk))
            .key("sk", s(sk))
            .consistent_read(true)
            .send()
            .await
            .map_err(failed)?;
        Ok(out.item().cloned())
    }

    async fn query_prefix(&self, pk: String, prefix: &str) -> Result<Vec<Item>, StoreError> {
        query_all(
            self.db
                .query()
                .table_name(&self.table)
                .consistent_read(true)
                .key_condition_expression("pk = :pk AND begins_with(sk, :p)")
                .expression_attribute_values(":pk", s(pk))
                .expression_attribute_values(":p", s(prefix)),
        )
        .await
    }

    async fn transact(&self, items: Vec<TransactWriteItem>) -> Result<bool, StoreError> {
        match self.db.transact_write_items().set_transact_items(Some(items)).send().await {
            Ok(_) => Ok(true),
            Err(e) if transaction_cancelled(&e) && !naksha_core::ddb::rejected(&e) => Ok(false),
            Err(e) => Err(failed(e)),
        }
    }
}

/// What a chaos experiment (D.5 `hub-partition`) does to the fleet: the only writes to this table
/// that are not the hub's. The hub reads `partition_run` and `partition_until` on the node item.
impl DynamoFleet {
    /// Have the hub ignore `node_id` until `until`, for chaos run `run_id`. `false`: no such node,
    /// or another run holds a partition on it.
    pub async fn set_partition(
        &self,
        tenant: &TenantId,
        node_id: &str,
        run_id: &str,
        until: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let r = self
            .db
            .update_item()
            .table_name(&self.table)
            .key("pk", s(tenant.as_str()))
            .key("sk", s(node_sk(node_id)))
            .update_expression("SET partition_run = :run, partition_until = :until")
            .condition_expression(
                "attribute_exists(pk) AND (attribute_not_exists(partition_run) OR partition_run = :run)",
            )
            .expression_attribute_values(":run", s(run_id))
            .expression_attribute_values(":until", s(until.to_rfc3339()))
            .send()
            .await;
        match r {
            Ok(_) => Ok(true),
            Err(e) if condition_failed(&e) => Ok(false),
            Err(e) => Err(failed(e)),
        }
    }

    /// Lift run `run_id`'s partition of `node_id` (`false`: there was none of this run's).
    pub async fn clear_partition(&self, tenant: &TenantId, node_id: &str, run_id: &str) -> Result<bool, StoreError> {
        let r = self
            .db
            .update_item()
            .table_name(&self.table)
            .key("pk", s(tenant.as_str()))
            .key("sk", s(node_sk(node_id)))
            .update_expression("REMOVE partition_run, partition_until")
            .condition_expression("partition_run = :run")
            .expression_attribute_values(":run", s(run_id))
            .send()
            .await;
        match r {
            Ok(_) => Ok(true),
            Err(e) if condition_failed(&e) => Ok(false),
            Err(e) => Err(failed(e)),
        }
    }

    /// Every trigger of the tenant created at or after `since`, running or ended.
    pub async fn triggers_since(&self, tenant: &TenantId, since: DateTime<Utc>) -> Result<Vec<Trigger>, StoreError> {
        let items = self.query_prefix(tenant.as_str().to_owned(), "trigger#").await?;
        Ok(items
            .iter()
            .filter_map(|i| trigger_of(i).map_err(|e| tracing::warn!(error = %e, "trigger skipped")).ok())
            .filter(|t| t.spec.created_at >= since)
            .collect())
    }
}

fn json<T: serde::Serialize>(v: &T) -> Result<String, StoreError> {
    serde_json::to_string(v).map_err(|e| StoreError(e.to_string()))
}

fn built<T, E: std::fmt::Display>(r: Result<T, E>) -> Result<T, StoreError> {
    r.map_err(|e| StoreError(e.to_string()))
}

fn time(item: &Item, name: &str) -> Option<DateTime<Utc>> {
    get_s(item, name).and_then(|t| DateTime::parse_from_rfc3339(t).ok()).map(|t| t.with_timezone(&Utc))
}

fn node_of(item: &Item) -> Result<Node, StoreError> {
    from_item(item.clone())
}

fn trigger_of(item: &Item) -> Result<Trigger, StoreError> {
    let spec: TriggerSpec = serde_json::from_str(get_s(item, "spec").unwrap_or_default())
        .map_err(|e| StoreError(format!("a trigger item does not decode: {e}")))?;
    let c = |name: &str| get_n::<u32>(item, name).unwrap_or(0);
    Ok(Trigger {
        spec,
        state: get_s(item, "state").and_then(TriggerState::parse).unwrap_or(TriggerState::Running),
        counts: Counts {
            succeeded: c("n_succeeded"),
            failed: c("n_failed"),
            rejected: c("n_rejected"),
            expired: c("n_expired"),
            cancelled: c("n_cancelled"),
        },
        ended_at: time(item, "ended_at"),
        abort_reason: get_s(item, "abort_reason").map(str::to_owned),
    })
}

fn execution_of(item: &Item) -> Result<Execution, StoreError> {
    let bad = || StoreError("an execution item does not decode".into());
    Ok(Execution {
        trigger_id: get_s(item, "trigger_id").ok_or_else(bad)?.to_owned(),
        node_id: get_s(item, "node_id").ok_or_else(bad)?.to_owned(),
        state: get_s(item, "state").and_then(ExecState::parse).ok_or_else(bad)?,
        seq: get_n(item, "seq"),
        queued_at: time(item, "queued_at").ok_or_else(bad)?,
        delivered_at: time(item, "delivered_at"),
        finished_at: time(item, "finished_at"),
        reason: get_s(item, "reason").map(str::to_owned),
        result: get_s(item, "result").and_then(|j| serde_json::from_str(j).ok()),
    })
}

impl Nodes for DynamoFleet {
    async fn register(&self, tenant: &TenantId, node: &Node) -> Result<Registered, StoreError> {
        let mut item = to_item(node)?;
        item.insert("pk".into(), s(tenant.as_str()));
        item.insert("sk".into(), s(node_sk(&node.node_id)));
        item.insert("next_seq".into(), n(0));
        item.insert("last_seen_ms".into(), n(node.last_seen.timestamp_millis()));
        let put = self
            .db
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .await;
        match put {
            Ok(_) => return Ok(Registered::New),
            Err(e) if condition_failed(&e) => {}
            Err(e) => return Err(failed(e)),
        }
        let updated = self
            .db
            .update_item()
            .table_name(&self.table)
            .key("pk", s(tenant.as_str()))
            .key("sk", s(node_sk(&node.node_id)))
            .update_expression(
                "SET labels = :labels, version = :version, last_seen = :now, last_seen_ms = :now_ms, #status = :online",
            )
            .condition_expression("kid = :kid")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":labels", to_item(&node.labels).map(AttributeValue::M)?)
            .expression_attribute_values(":version", s(&node.version))
            .expression_attribute_values(":now", s(node.last_seen.to_rfc3339()))
            .expression_attribute_values(":now_ms", n(node.last_seen.timestamp_millis()))
            .expression_attribute_values(":online", s(NodeStatus::Online.as_str()))
            .expression_attribute_values(":kid", s(&node.kid))
            .send()
            .await;
        match updated {
            Ok(_) => Ok(Registered::Again),
            Err(e) if condition_failed(&e) => {
                let existing = self.node(tenant, &node.node_id).await?;
                Ok(Registered::OtherKey { kid: existing.map(|n| n.kid).unwrap_or_default() })
            }
            Err(e) => Err(failed(e)),
        }
    }

    async fn node(&self, tenant: &TenantId, node_id: &str) -> Result<Option<Node>, StoreError> {
        self.get(tenant.as_str().to_owned(), node_sk(node_id)).await?.map(|i| node_of(&i)).transpose()
    }

    async fn nodes(&self, tenant: &TenantId) -> Result<Vec<Node>, StoreError> {
        self.query_prefix(tenant.as_str().to_owned(), "node#").await?.iter().map(node_of).collect()
    }

    async fn all_nodes(&self) -> Result<Vec<(TenantId, Node)>, StoreError> {
        let items = scan_all(
            self.db
                .scan()
                .table_name(&self.table)
                .consistent_read(true)
                // Node items sit under the bare tenant; a trigger's executions (pk
                // `{tenant}#trigger#{id}`) share the `node#` sort key and are not nodes.
                .filter_expression("begins_with(sk, :p) AND NOT contains(pk, :h)")
                .expression_attribute_values(":p", s("node#"))
                .expression_attribute_values(":h", s("#")),
        )
        .await?;
        let mut out = Vec::with_capacity(items.len());
        for item in &items {
            let tenant = get_s(item, "pk").and_then(|t| TenantId::from_record(t).ok());
            match (tenant, node_of(item)) {
                (Some(t), Ok(node)) => out.push((t, node)),
                // One bad item must not stop the sweep for everyone else.
                _ => tracing::warn!("a node item does not decode; skipped"),
            }
        }
        Ok(out)
    }

    async fn heartbeat(
        &self,
        tenant: &TenantId,
        node_id: &str,
        now: DateTime<Utc>,
        halt_seen: Option<bool>,
    ) -> Result<Option<Node>, StoreError> {
        let mut expr = "SET last_seen = :now, last_seen_ms = :now_ms, #status = :online".to_owned();
        let mut update = self
            .db
            .update_item()
            .table_name(&self.table)
            .key("pk", s(tenant.as_str()))
            .key("sk", s(node_sk(node_id)))
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":now", s(now.to_rfc3339()))
            .expression_attribute_values(":now_ms", n(now.timestamp_millis()))
            .expression_attribute_values(":online", s(NodeStatus::Online.as_str()))
            .return_values(ReturnValue::AllNew);
        match halt_seen {
            Some(true) => {
                expr.push_str(", halt_seen = :t, halt_seen_at = if_not_exists(halt_seen_at, :now)");
                update = update.expression_attribute_values(":t", AttributeValue::Bool(true));
            }
            Some(false) => {
                expr.push_str(", halt_seen = :f REMOVE halt_seen_at");
                update = update.expression_attribute_values(":f", AttributeValue::Bool(false));
            }
            None => {}
        }
        match update.update_expression(expr).send().await {
            Ok(out) => out.attributes().map(node_of).transpose(),
            Err(e) if condition_failed(&e) => Ok(None),
            Err(e) => Err(failed(e)),
        }
    }

    async fn set_status(
        &self,
        tenant: &TenantId,
        node_id: &str,
        status: NodeStatus,
        last_seen: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let out = self
            .db
            .update_item()
            .table_name(&self.table)
            .key("pk", s(tenant.as_str()))
            .key("sk", s(node_sk(node_id)))
            .update_expression("SET #status = :s")
            // Not heard from since it was read (milliseconds: the text form of a time may differ).
            .condition_expression("last_seen_ms = :seen")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":s", s(status.as_str()))
            .expression_attribute_values(":seen", n(last_seen.timestamp_millis()))
            .send()
            .await;
        match out {
            Ok(_) => Ok(true),
            Err(e) if condition_failed(&e) => Ok(false),
            Err(e) => Err(failed(e)),
        }
    }

    async fn next_seq(&self, tenant: &TenantId, node_id: &str) -> Result<u64, StoreError> {
        let out = self
            .db
            .update_item()
            .table_name(&self.table)
            .key("pk", s(tenant.as_str()))
            .key("sk", s(node_sk(node_id)))
            .update_expression("ADD next_seq :one")
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_values(":one", n(1))
            .return_values(ReturnValue::UpdatedNew)
            .send()
            .await
            .map_err(failed)?;
        out.attributes()
            .and_then(|a| get_n(a, "next_seq"))
            .ok_or_else(|| StoreError("the node's sequence number did not come back".into()))
    }
}

impl Work for DynamoFleet {
    async fn create(&self, tenant: &TenantId, trigger: &Trigger, executions: &[Execution]) -> Result<(), StoreError> {
        let id = &trigger.spec.trigger_id;
        let expires = trigger.spec.expires_at.timestamp();
        // Executions and their queue markers first, 50 nodes per transaction; the trigger item
        // last, so a half-written trigger is never visible (markers of a missing trigger are
        // dropped by the next poll, and expire anyway).
        for chunk in executions.chunks(50) {
            let mut items = Vec::with_capacity(chunk.len() * 2);
            for e in chunk {
                let exec = Put::builder()
                    .table_name(&self.table)
                    .item("pk", s(execution_pk(tenant, id)))
                    .item("sk", s(node_sk(&e.node_id)))
                    .item("trigger_id", s(id))
                    .item("node_id", s(&e.node_id))
                    .item("state", s(e.state.as_str()))
                    .item("queued_at", s(e.queued_at.to_rfc3339()))
                    .item("expires_epoch", n(expires + KEEP))
                    .condition_expression("attribute_not_exists(pk)");
                let marker = Put::builder()
                    .table_name(&self.table)
                    .item("pk", s(inbox_pk(tenant, &e.node_id)))
                    .item("sk", s(queued_sk(id)))
                    .item("trigger_id", s(id))
                    .item("expires_epoch", n(expires + 3600));
                items.push(TransactWriteItem::builder().put(built(exec.build())?).build());
                items.push(TransactWriteItem::builder().put(built(marker.build())?).build());
            }
            if !self.transact(items).await? {
                return Err(StoreError(format!("trigger {id}: an execution exists already")));
            }
        }
        let mut put = self
            .db
            .put_item()
            .table_name(&self.table)
            .item("pk", s(tenant.as_str()))
            .item("sk", s(trigger_sk(id)))
            .item("spec", s(json(&trigger.spec)?))
            .item("state", s(trigger.state.as_str()))
            .item("created_at", s(trigger.spec.created_at.to_rfc3339()))
            .item("expires_epoch", n(expires + KEEP))
            .condition_expression("attribute_not_exists(pk)");
        for c in COUNTERS {
            put = put.item(c, n(0));
        }
        put.send().await.map_err(failed)?;
        Ok(())
    }

    async fn trigger(&self, tenant: &TenantId, id: &str) -> Result<Option<Trigger>, StoreError> {
        self.get(tenant.as_str().to_owned(), trigger_sk(id)).await?.map(|i| trigger_of(&i)).transpose()
    }

    async fn running(&self, tenant: &TenantId) -> Result<Vec<Trigger>, StoreError> {
        let items = self.query_prefix(tenant.as_str().to_owned(), "trigger#").await?;
        Ok(items
            .iter()
            .filter(|i| get_s(i, "state") == Some(TriggerState::Running.as_str()))
            .filter_map(|i| trigger_of(i).map_err(|e| tracing::warn!(error = %e, "trigger skipped")).ok())
            .collect())
    }

    async fn executions(&self, tenant: &TenantId, trigger_id: &str) -> Result<Vec<Execution>, StoreError> {
        self.query_prefix(execution_pk(tenant, trigger_id), "node#").await?.iter().map(execution_of).collect()
    }

    async fn execution(
        &self,
        tenant: &TenantId,
        trigger_id: &str,
        node_id: &str,
    ) -> Result<Option<Execution>, StoreError> {
        self.get(execution_pk(tenant, trigger_id), node_sk(node_id)).await?.map(|i| execution_of(&i)).transpose()
    }

    async fn pending(&self, tenant: &TenantId, node_id: &str) -> Result<Vec<String>, StoreError> {
        let items = self.query_prefix(inbox_pk(tenant, node_id), "queued#").await?;
        Ok(items.iter().filter_map(|i| get_s(i, "trigger_id").map(str::to_owned)).collect())
    }

    async fn take_slot(&self, tenant: &TenantId, trigger_id: &str, minute: i64, max: u32) -> Result<bool, StoreError> {
        let update = || {
            self.db
                .update_item()
                .table_name(&self.table)
                .key("pk", s(tenant.as_str()))
                .key("sk", s(trigger_sk(trigger_id)))
                .expression_attribute_names("#state", "state")
                .expression_attribute_values(":running", s(TriggerState::Running.as_str()))
                .expression_attribute_values(":m", n(minute))
                .expression_attribute_values(":one", n(1))
        };
        // A new minute: the window restarts with this slot.
        let fresh = update()
            .update_expression("SET win_minute = :m, win_count = :one")
            .condition_expression("#state = :running AND (attribute_not_exists(win_minute) OR win_minute <> :m)")
            .send()
            .await;
        match fresh {
            Ok(_) => return Ok(true),
            Err(e) if condition_failed(&e) => {}
            Err(e) => return Err(failed(e)),
        }
        let more = update()
            .update_expression("ADD win_count :one")
            .condition_expression("#state = :running AND win_minute = :m AND win_count < :max")
            .expression_attribute_values(":max", n(max))
            .send()
            .await;
        match more {
            Ok(_) => Ok(true),
            Err(e) if condition_failed(&e) => Ok(false),
            Err(e) => Err(failed(e)),
        }
    }

    async fn deliver(
        &self,
        tenant: &TenantId,
        node_id: &str,
        delivery: &Delivery,
        at: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let id = &delivery.trigger_id;
        let exec = Update::builder()
            .table_name(&self.table)
            .key("pk", s(execution_pk(tenant, id)))
            .key("sk", s(node_sk(node_id)))
            .update_expression("SET #state = :delivered, seq = :seq, delivered_at = :at")
            .condition_expression("#state = :queued")
            .expression_attribute_names("#state", "state")
            .expression_attribute_values(":delivered", s(ExecState::Delivered.as_str()))
            .expression_attribute_values(":queued", s(ExecState::Queued.as_str()))
            .expression_attribute_values(":seq", n(delivery.seq))
            .expression_attribute_values(":at", s(at.to_rfc3339()));
        let envelope = Put::builder()
            .table_name(&self.table)
            .item("pk", s(inbox_pk(tenant, node_id)))
            .item("sk", s(delivery_sk(delivery.seq)))
            .item("trigger_id", s(id))
            .item("delivery", s(json(delivery)?))
            .item("expires_at", s(expires_at.to_rfc3339()))
            .item("expires_epoch", n(expires_at.timestamp() + 24 * 3600))
            .condition_expression("attribute_not_exists(pk)");
        let marker = Delete::builder()
            .table_name(&self.table)
            .key("pk", s(inbox_pk(tenant, node_id)))
            .key("sk", s(queued_sk(id)));
        self.transact(vec![
            TransactWriteItem::builder().update(built(exec.build())?).build(),
            TransactWriteItem::builder().put(built(envelope.build())?).build(),
            TransactWriteItem::builder().delete(built(marker.build())?).build(),
        ])
        .await
    }

    async fn deliveries(
        &self,
        tenant: &TenantId,
        node_id: &str,
        after: u64,
        now: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<Delivery>, StoreError> {
        let out = self
            .db
            .query()
            .table_name(&self.table)
            .consistent_read(true)
            .key_condition_expression("pk = :pk AND sk BETWEEN :from AND :to")
            .expression_attribute_values(":pk", s(inbox_pk(tenant, node_id)))
            .expression_attribute_values(":from", s(delivery_sk(after.saturating_add(1))))
            .expression_attribute_values(":to", s(delivery_sk(u64::MAX)))
            .limit(i32::try_from(limit).unwrap_or(50))
            .send()
            .await
            .map_err(failed)?;
        let mut deliveries = Vec::new();
        for item in out.items() {
            if time(item, "expires_at").is_some_and(|t| t <= now) {
                continue;
            }
            // What is stored is only handed on: the node verifies it, whoever wrote it.
            match get_s(item, "delivery").map(serde_json::from_str::<Delivery>) {
                Some(Ok(d)) => deliveries.push(d),
                _ => tracing::warn!(
                    node_id,
                    sk = get_s(item, "sk").unwrap_or(""),
                    "a delivery item does not decode; skipped"
                ),
            }
        }
        Ok(deliveries)
    }

    async fn finish(
        &self,
        tenant: &TenantId,
        trigger_id: &str,
        node_id: &str,
        ending: Ending<'_>,
    ) -> Result<Finished, StoreError> {
        let Ending { state, reason, result, delivery, at } = ending;
        let counter = state.counter().ok_or_else(|| StoreError(format!("{} is not a final state", state.as_str())))?;
        let mut exec = Update::builder()
            .table_name(&self.table)
            .key("pk", s(execution_pk(tenant, trigger_id)))
            .key("sk", s(node_sk(node_id)))
            .condition_expression("#state IN (:queued, :delivered)")
            .expression_attribute_names("#state", "state")
            .expression_attribute_values(":final", s(state.as_str()))
            .expression_attribute_values(":queued", s(ExecState::Queued.as_str()))
            .expression_attribute_values(":delivered", s(ExecState::Delivered.as_str()))
            .expression_attribute_values(":at", s(at.to_rfc3339()))
            .expression_attribute_values(":reason", s(reason.chars().take(1000).collect::<String>()));
        exec = match result {
            Some(r) => exec
                .update_expression("SET #state = :final, finished_at = :at, reason = :reason, #result = :result")
                .expression_attribute_names("#result", "result")
                .expression_attribute_values(":result", s(json(r)?)),
            None => exec.update_expression("SET #state = :final, finished_at = :at, reason = :reason"),
        };
        let count = Update::builder()
            .table_name(&self.table)
            .key("pk", s(tenant.as_str()))
            .key("sk", s(trigger_sk(trigger_id)))
            .update_expression(format!("ADD {counter} :one"))
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_values(":one", n(1));
        let marker = Delete::builder()
            .table_name(&self.table)
            .key("pk", s(inbox_pk(tenant, node_id)))
            .key("sk", s(queued_sk(trigger_id)));
        let mut items = vec![
            TransactWriteItem::builder().update(built(exec.build())?).build(),
            TransactWriteItem::builder().update(built(count.build())?).build(),
            TransactWriteItem::builder().delete(built(marker.build())?).build(),
        ];
        if let Some(seq) = delivery {
            // Ended: the envelope is no longer handed out.
            let envelope = Delete::builder()
                .table_name(&self.table)
                .key("pk", s(inbox_pk(tenant, node_id)))
                .key("sk", s(delivery_sk(seq)));
            items.push(TransactWriteItem::builder().delete(built(envelope.build())?).build());
        }
        let done = self.transact(items).await?;
        if done {
            return Ok(Finished::Now);
        }
        let existing = self
            .execution(tenant, trigger_id, node_id)
            .await?
            .ok_or_else(|| StoreError(format!("no execution of {trigger_id} on {node_id}")))?;
        if !existing.state.is_final() {
            return Err(StoreError(format!("trigger {trigger_id} is missing; its execution cannot be counted")));
        }
        Ok(if existing.state == state && existing.result.as_ref() == result {
            Finished::Same
        } else {
            Finished::Already(existing.state)
        })
    }

    async fn end(
        &self,
        tenant: &TenantId,
        trigger_id: &str,
        aborted: Option<&str>,
        at: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let mut update = self
            .db
            .update_item()
            .table_name(&self.table)
            .key("pk", s(tenant.as_str()))
            .key("sk", s(trigger_sk(trigger_id)))
            .condition_expression("#state = :running")
            .expression_attribute_names("#state", "state")
            .expression_attribute_values(":running", s(TriggerState::Running.as_str()))
            .expression_attribute_values(":at", s(at.to_rfc3339()));
        update = match aborted {
            Some(reason) => update
                .update_expression("SET #state = :s, ended_at = :at, abort_reason = :why")
                .expression_attribute_values(":s", s(TriggerState::Aborted.as_str()))
                .expression_attribute_values(":why", s(reason)),
            None => update
                .update_expression("SET #state = :s, ended_at = :at")
                .expression_attribute_values(":s", s(TriggerState::Completed.as_str())),
        };
        match update.send().await {
            Ok(_) => Ok(true),
            Err(e) if condition_failed(&e) => Ok(false),
            Err(e) => Err(failed(e)),
        }
    }

    async fn record_refusal(
        &self,
        tenant: &TenantId,
        node_id: &str,
        result: &EdgeResult,
        sealed: &Sealed,
    ) -> Result<(), StoreError> {
        self.db
            .put_item()
            .table_name(&self.table)
            .item("pk", s(inbox_pk(tenant, node_id)))
            .item("sk", s(refusal_sk(result.finished_at, &result.trigger_id, result.seq)))
            .item("result", s(json(result)?))
            .item("sealed", s(json(sealed)?))
            .item("expires_epoch", n(Utc::now().timestamp() + KEEP_REFUSALS))
            .send()
            .await
            .map_err(failed)?;
        Ok(())
    }

    async fn refusals(&self, tenant: &TenantId, node_id: &str, limit: usize) -> Result<Vec<EdgeResult>, StoreError> {
        let out = self
            .db
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk AND begins_with(sk, :p)")
            .expression_attribute_values(":pk", s(inbox_pk(tenant, node_id)))
            .expression_attribute_values(":p", s("refusal#"))
            .scan_index_forward(false)
            .limit(i32::try_from(limit).unwrap_or(20))
            .send()
            .await
            .map_err(|e| StoreError(describe_error(&e)))?;
        Ok(out.items().iter().filter_map(|i| get_s(i, "result").and_then(|j| serde_json::from_str(j).ok())).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// No key function of this table can produce another tenant's prefix, whatever ids it gets.
        #[test]
        fn no_key_can_name_another_tenant(
            a in "[a-z0-9][a-z0-9_-]{0,16}",
            b in "[a-z0-9][a-z0-9_-]{0,16}",
            part in ".{0,40}",
        ) {
            let (ta, tb) = (TenantId::from_record(&a).unwrap(), TenantId::from_record(&b).unwrap());
            for key in [execution_pk(&ta, &part), inbox_pk(&ta, &part)] {
                prop_assert_eq!(TenantId::split_key(&key).map(|(t, _)| t), Some(ta.clone()));
                if a != b {
                    prop_assert!(!key.starts_with(&tb.key_prefix()));
                }
            }
            prop_assert!(TenantId::split_key(FLEET_PK).is_none(), "the fleet's partition is no tenant's");
        }
    }

    #[test]
    fn delivery_keys_sort_by_seq() {
        let mut keys = [delivery_sk(10), delivery_sk(9), delivery_sk(100), delivery_sk(u64::MAX)];
        keys.sort();
        assert_eq!(keys, [delivery_sk(9), delivery_sk(10), delivery_sk(100), delivery_sk(u64::MAX)]);
    }
}
