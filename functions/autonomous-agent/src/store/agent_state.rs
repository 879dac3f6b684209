//! The agent's control state: the kill switch, rate-limit slots, outcome counts per signal, and
//! the receipts of acts that cannot share a transaction with their target.
//!
//! | item | `pk` | attributes |
//! |---|---|---|
//! | kill switch | [`halt_pk`] = `<tenant>#halt` | `reason`, `at` |
//! | safety settings | [`settings_pk`] = `<tenant>#settings` | `sealed` (the signed `TenantSettings`) |
//! | rate-limit slots | [`limit_pk`] = `<tenant>#limit#<resource>#<wpk>#<hour>` | `runs` (string set of run ids), `expires_at` |
//! | outcome counts | [`stats_pk`] = `<tenant>#stats#<signal>` | `ok#<wpk>`, `fail#<wpk>` (numbers) |
//! | act receipt | [`receipt_pk`] = `<tenant>#receipt#<idempotency key>` | `done`, `result` (JSON), `at` |

use aws_sdk_dynamodb::types::AttributeValue;
use naksha_contracts::TenantId;
use naksha_core::aws::describe_error;
use naksha_core::ddb::{Item, condition_failed, get_s, n, s};
use serde_json::Value;
use std::collections::BTreeMap;

use super::{DynamoAgentStore, failed};
use crate::act::Receipts;
use crate::ports::{ActError, Control, StoreError};
use naksha_contracts::control::HALT_REASON;
use naksha_contracts::signing::Sealed;

/// The kill switch's key is naksha-contracts' (the federation hub reads it too).
pub use naksha_contracts::control::halt_pk;

pub fn settings_pk(tenant: &TenantId) -> String {
    tenant.key(&["settings"])
}

pub fn limit_pk(tenant: &TenantId, resource: &str, wpk: &str, hour: i64) -> String {
    tenant.key(&["limit", resource, wpk, &hour.to_string()])
}

pub fn stats_pk(tenant: &TenantId, signal: &str) -> String {
    tenant.key(&["stats", signal])
}

pub fn receipt_pk(tenant: &TenantId, idempotency_key: &str) -> String {
    tenant.key(&["receipt", idempotency_key])
}

fn unavailable(e: StoreError) -> ActError {
    ActError::Unavailable(e.to_string())
}

impl DynamoAgentStore {
    async fn get_state(&self, pk: String) -> Result<Option<Item>, StoreError> {
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
    async fn settings(&self, tenant: &TenantId) -> Result<Option<Sealed>, StoreError> {
        Ok(self
            .get_state(settings_pk(tenant))
            .await?
            .and_then(|i| get_s(&i, "sealed").and_then(|j| serde_json::from_str(j).ok())))
    }

    async fn set_settings(&self, tenant: &TenantId, settings: &Sealed) -> Result<(), StoreError> {
        self.db
            .put_item()
            .table_name(&self.t.state)
            .item("pk", s(settings_pk(tenant)))
            .item("sealed", s(super::json_of(settings)?))
            .send()
            .await
            .map_err(failed)?;
        Ok(())
    }

    async fn halted(&self, tenant: &TenantId) -> Result<Option<String>, StoreError> {
        Ok(self.get_state(halt_pk(tenant)).await?.and_then(|i| get_s(&i, HALT_REASON).map(str::to_owned)))
    }

    async fn set_halted(&self, tenant: &TenantId, reason: Option<&str>) -> Result<(), StoreError> {
        match reason {
            Some(r) => {
                self.db
                    .put_item()
                    .table_name(&self.t.state)
                    .item("pk", s(halt_pk(tenant)))
                    .item(HALT_REASON, s(r))
                    .item("at", s(chrono::Utc::now().to_rfc3339()))
                    .send()
                    .await
                    .map_err(failed)?;
            }
            None => {
                self.db
                    .delete_item()
                    .table_name(&self.t.state)
                    .key("pk", s(halt_pk(tenant)))
                    .send()
                    .await
                    .map_err(failed)?;
            }
        }
        Ok(())
    }

    async fn runs_in_hour(&self, tenant: &TenantId, resource: &str, wpk: &str, hour: i64) -> Result<u32, StoreError> {
        let item = self.get_state(limit_pk(tenant, resource, wpk, hour)).await?;
        Ok(item.and_then(|i| i.get("runs").and_then(|r| r.as_ss().ok()).map(|ss| ss.len() as u32)).unwrap_or(0))
    }

    async fn take_slot(
        &self,
        tenant: &TenantId,
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
            .key("pk", s(limit_pk(tenant, resource, wpk, hour)))
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
            Err(e) if condition_failed(&e) => Ok(false),
            Err(e) => Err(failed(e)),
        }
    }

    async fn outcome_stats(&self, tenant: &TenantId, signal: &str) -> Result<BTreeMap<String, (u32, u32)>, StoreError> {
        let mut out: BTreeMap<String, (u32, u32)> = BTreeMap::new();
        if let Some(item) = self.get_state(stats_pk(tenant, signal)).await? {
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

    async fn record_outcome(&self, tenant: &TenantId, signal: &str, wpk: &str, ok: bool) -> Result<(), StoreError> {
        self.db
            .update_item()
            .table_name(&self.t.state)
            .key("pk", s(stats_pk(tenant, signal)))
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
    async fn get(&self, tenant: &TenantId, key: &str) -> Result<Option<(bool, Value)>, ActError> {
        let item = self.get_state(receipt_pk(tenant, key)).await.map_err(unavailable)?;
        Ok(item.map(|i| {
            let done = i.get("done").and_then(|d| d.as_bool().ok()).copied().unwrap_or(false);
            let result = get_s(&i, "result").and_then(|r| serde_json::from_str(r).ok()).unwrap_or(Value::Null);
            (done, result)
        }))
    }

    async fn begin(&self, tenant: &TenantId, key: &str) -> Result<bool, ActError> {
        match self
            .db
            .put_item()
            .table_name(&self.t.state)
            .item("pk", s(receipt_pk(tenant, key)))
            .item("done", AttributeValue::Bool(false))
            .item("at", s(chrono::Utc::now().to_rfc3339()))
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .await
        {
            Ok(_) => Ok(true),
            Err(e) if condition_failed(&e) => Ok(false),
            Err(e) => Err(ActError::Unavailable(describe_error(&e))),
        }
    }

    async fn finish(&self, tenant: &TenantId, key: &str, result: &Value) -> Result<(), ActError> {
        self.db
            .put_item()
            .table_name(&self.t.state)
            .item("pk", s(receipt_pk(tenant, key)))
            .item("done", AttributeValue::Bool(true))
            .item("result", s(result.to_string()))
            .item("at", s(chrono::Utc::now().to_rfc3339()))
            .send()
            .await
            .map_err(|e| ActError::Unavailable(describe_error(&e)))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Whatever a resource, WPK, signal or key holds, the key is the tenant's own.
        #[test]
        fn no_control_key_can_name_another_tenant(
            a in "[a-z0-9][a-z0-9_-]{0,16}",
            b in "[a-z0-9][a-z0-9_-]{0,16}",
            part in ".{0,40}",
            hour in any::<i64>(),
        ) {
            let (ta, tb) = (TenantId::from_record(&a).unwrap(), TenantId::from_record(&b).unwrap());
            for key in [
                halt_pk(&ta),
                settings_pk(&ta),
                limit_pk(&ta, &part, &part, hour),
                stats_pk(&ta, &part),
                receipt_pk(&ta, &part),
            ] {
                prop_assert_eq!(TenantId::split_key(&key).map(|(t, _)| t), Some(ta.clone()));
                if a != b {
                    prop_assert!(!key.starts_with(&tb.key_prefix()));
                }
            }
        }
    }
}
