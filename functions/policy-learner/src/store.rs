//! `naksha.policies`: the records the learner keeps and its suggestions.
//!
//! | item | `pk` | `sk` | attributes |
//! |---|---|---|---|
//! | a record ([`Record`], normalised: P-1) | [`records_pk`] = `<tenant>#rec` | [`record_key`] = `<format>#<source id>` | `doc` (JSON), `at_ms`, `expires_epoch` (TTL, [`KEEP_RECORDS_DAYS`]) |
//! | a suggestion ([`Suggestion`]) | the tenant | [`suggestion_sk`] = `sugg#<id>` | `doc` (JSON), `state` (every write is conditional on it) |

use std::collections::BTreeSet;
use std::time::Duration;

use aws_sdk_dynamodb::types::{PutRequest, WriteRequest};
use naksha_contracts::TenantId;
use naksha_core::aws::describe_error;
use naksha_core::ddb::{Item, batch_get, condition_failed, get_s, n, query_all, s};

use crate::ports::{Policies, StoreError, record_key};
use crate::records::Record;
use crate::suggest::{State, Suggestion};

/// Records are kept this long: the evidence window of what is learned.
pub const KEEP_RECORDS_DAYS: i64 = 400;

pub fn records_pk(tenant: &TenantId) -> String {
    tenant.key(&["rec"])
}

pub fn suggestion_sk(id: &str) -> String {
    format!("sugg#{id}")
}

fn failed<E>(e: aws_sdk_dynamodb::error::SdkError<E>) -> StoreError
where
    E: std::error::Error + aws_sdk_dynamodb::error::ProvideErrorMetadata,
{
    StoreError(describe_error(&e))
}

fn json<T: serde::Serialize>(v: &T) -> Result<String, StoreError> {
    serde_json::to_string(v).map_err(|e| StoreError(e.to_string()))
}

#[derive(Debug, Clone)]
pub struct DynamoPolicies {
    db: aws_sdk_dynamodb::Client,
    table: String,
}

impl DynamoPolicies {
    pub fn new(db: aws_sdk_dynamodb::Client, table: impl Into<String>) -> Self {
        Self { db, table: table.into() }
    }

    fn record_item(tenant: &TenantId, r: &Record) -> Result<Item, StoreError> {
        Ok(Item::from([
            ("pk".to_owned(), s(records_pk(tenant))),
            ("sk".to_owned(), s(record_key(r))),
            ("doc".to_owned(), s(json(r)?)),
            ("at_ms".to_owned(), n(r.at.timestamp_millis())),
            ("expires_epoch".to_owned(), n(chrono::Utc::now().timestamp() + KEEP_RECORDS_DAYS * 86_400)),
        ]))
    }

    /// BatchWriteItem, 25 at a time, unprocessed items retried with backoff.
    async fn batch_put(&self, items: Vec<Item>) -> Result<(), StoreError> {
        for chunk in items.chunks(25) {
            let mut pending: Vec<WriteRequest> = chunk
                .iter()
                .map(|i| {
                    PutRequest::builder()
                        .set_item(Some(i.clone()))
                        .build()
                        .map(|p| WriteRequest::builder().put_request(p).build())
                        .map_err(|e| StoreError(e.to_string()))
                })
                .collect::<Result<_, _>>()?;
            let mut attempt = 0u32;
            while !pending.is_empty() {
                let out = self
                    .db
                    .batch_write_item()
                    .request_items(&self.table, pending.clone())
                    .send()
                    .await
                    .map_err(failed)?;
                pending = out.unprocessed_items().and_then(|u| u.get(&self.table)).cloned().unwrap_or_default();
                if !pending.is_empty() {
                    attempt += 1;
                    if attempt > 8 {
                        return Err(StoreError("BatchWriteItem kept returning unprocessed items".into()));
                    }
                    tokio::time::sleep(Duration::from_millis(25 << attempt.min(6))).await;
                }
            }
        }
        Ok(())
    }
}

fn suggestion_of(item: &Item) -> Option<Suggestion> {
    serde_json::from_str(get_s(item, "doc")?).ok()
}

impl Policies for DynamoPolicies {
    async fn existing(&self, tenant: &TenantId, keys: &[String]) -> Result<BTreeSet<String>, StoreError> {
        let pk = records_pk(tenant);
        let keys: Vec<Item> = keys
            .iter()
            .map(|k| Item::from([("pk".to_owned(), s(pk.clone())), ("sk".to_owned(), s(k.clone()))]))
            .collect();
        let items = batch_get(&self.db, &self.table, keys, |b| b.projection_expression("sk").consistent_read(true))
            .await
            .map_err(|e| StoreError(e.0))?;
        Ok(items.iter().filter_map(|i| get_s(i, "sk").map(str::to_owned)).collect())
    }

    async fn put_records(&self, tenant: &TenantId, records: &[Record]) -> Result<(), StoreError> {
        let items = records.iter().map(|r| Self::record_item(tenant, r)).collect::<Result<Vec<_>, _>>()?;
        self.batch_put(items).await
    }

    async fn records(&self, tenant: &TenantId) -> Result<Vec<Record>, StoreError> {
        let q = self
            .db
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk")
            .expression_attribute_values(":pk", s(records_pk(tenant)));
        let items = query_all(q).await.map_err(|e| StoreError(e.0))?;
        Ok(items.iter().filter_map(|i| serde_json::from_str(get_s(i, "doc")?).ok()).collect())
    }

    async fn suggestions(&self, tenant: &TenantId) -> Result<Vec<Suggestion>, StoreError> {
        let q = self
            .db
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk AND begins_with(sk, :p)")
            .expression_attribute_values(":pk", s(tenant.as_str()))
            .expression_attribute_values(":p", s("sugg#"));
        let items = query_all(q).await.map_err(|e| StoreError(e.0))?;
        // A suggestion is believed only under its own tenant's key.
        Ok(items.iter().filter_map(suggestion_of).filter(|s| &s.tenant == tenant).collect())
    }

    async fn suggestion(&self, tenant: &TenantId, id: &str) -> Result<Option<Suggestion>, StoreError> {
        let out = self
            .db
            .get_item()
            .table_name(&self.table)
            .key("pk", s(tenant.as_str()))
            .key("sk", s(suggestion_sk(id)))
            .consistent_read(true)
            .send()
            .await
            .map_err(failed)?;
        Ok(out.item().and_then(suggestion_of).filter(|s| &s.tenant == tenant && s.draft.id == id))
    }

    async fn save(&self, sg: &Suggestion, seen: Option<State>) -> Result<bool, StoreError> {
        let put = self
            .db
            .put_item()
            .table_name(&self.table)
            .item("pk", s(sg.tenant.as_str()))
            .item("sk", s(suggestion_sk(&sg.draft.id)))
            .item("doc", s(json(sg)?))
            .item("state", s(sg.state.as_str()));
        let put = match seen {
            None => put.condition_expression("attribute_not_exists(sk)"),
            Some(state) => put
                .condition_expression("#s = :seen")
                .expression_attribute_names("#s", "state")
                .expression_attribute_values(":seen", s(state.as_str())),
        };
        match put.send().await {
            Ok(_) => Ok(true),
            Err(e) if condition_failed(&e) => Ok(false),
            Err(e) => Err(failed(e)),
        }
    }
}
