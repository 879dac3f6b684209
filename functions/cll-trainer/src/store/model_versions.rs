//! The model registry, written only here; the layout and key functions are
//! naksha-contracts' [`naksha_contracts::models`], and reads go through naksha-core's
//! [`ModelReader`] (the same one the consumer and the agent use).
//!
//! | item | `pk` | `sk` | attributes |
//! |---|---|---|---|
//! | a version ([`StoredModel`]) | the tenant | [`version_sk`] = `v#<model id>` | `model_id`, `created_at`, `doc`, `manifest`, `sha256`, `signature`, `key_id`; written once, conditionally |
//! | an alias ([`Alias`]) | the tenant | [`alias_sk`] = `alias#champion` | `model_id`, `history`, `version` (every move is conditional on it), `updated_at` |

use naksha_contracts::TenantId;
use naksha_contracts::models::{Alias, StoredModel, VERSION_PREFIX, alias_sk, version_sk};
use naksha_contracts::signing::TrustedKeys;
use naksha_core::ddb::{condition_failed, from_item, n, query_all, s, to_item};
use naksha_core::models::{Loaded, ModelReader};

use super::failed;
use crate::ports::{Registry, StoreError};

/// Earlier champions kept on the alias (the fallback chain).
const HISTORY_LIMIT: usize = 20;

#[derive(Debug, Clone)]
pub struct DynamoRegistry {
    db: aws_sdk_dynamodb::Client,
    table: String,
    reader: ModelReader,
}

impl DynamoRegistry {
    pub fn new(db: aws_sdk_dynamodb::Client, table: impl Into<String>) -> Self {
        let table = table.into();
        Self { reader: ModelReader::new(db.clone(), table.clone()), db, table }
    }
}

fn read_failed(e: naksha_core::models::RegistryError) -> StoreError {
    StoreError(e.to_string())
}

/// The alias after moving it to `model_id`: the previous champion joins the history.
pub fn moved(seen: Option<&Alias>, model_id: &str, now: &str) -> Alias {
    let mut history: Vec<String> = seen.map(|a| a.history.clone()).unwrap_or_default();
    if let Some(a) = seen {
        history.retain(|h| h != &a.model_id);
        history.push(a.model_id.clone());
    }
    history.retain(|h| h != model_id);
    if history.len() > HISTORY_LIMIT {
        history.drain(..history.len() - HISTORY_LIMIT);
    }
    Alias {
        model_id: model_id.to_owned(),
        history,
        version: seen.map_or(0, |a| a.version) + 1,
        updated_at: now.to_owned(),
    }
}

impl Registry for DynamoRegistry {
    async fn get(&self, tenant: &TenantId, model_id: &str) -> Result<Option<StoredModel>, StoreError> {
        self.reader.get(tenant, model_id).await.map_err(read_failed)
    }

    async fn list(&self, tenant: &TenantId) -> Result<Vec<StoredModel>, StoreError> {
        let query = self
            .db
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk AND begins_with(sk, :v)")
            .expression_attribute_values(":pk", s(tenant.as_str()))
            .expression_attribute_values(":v", s(VERSION_PREFIX));
        let items = query_all(query).await?;
        let mut out: Vec<StoredModel> = items.into_iter().filter_map(|i| from_item(i).ok()).collect();
        out.sort_by(|a, b| b.created_at.cmp(&a.created_at).then_with(|| b.model_id.cmp(&a.model_id)));
        Ok(out)
    }

    async fn alias(&self, tenant: &TenantId, alias: &str) -> Result<Option<Alias>, StoreError> {
        self.reader.alias(tenant, alias).await.map_err(read_failed)
    }

    async fn load_champion(&self, tenant: &TenantId, keys: &TrustedKeys) -> Result<Loaded, StoreError> {
        self.reader.load_champion(tenant, keys).await.map_err(read_failed)
    }

    async fn put(&self, m: &StoredModel) -> Result<bool, StoreError> {
        let mut item = to_item(m)?;
        item.insert("sk".into(), s(version_sk(&m.model_id)));
        match self
            .db
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .await
        {
            Ok(_) => Ok(true),
            Err(e) if condition_failed(&e) => Ok(false),
            Err(e) => Err(failed(e)),
        }
    }

    async fn move_alias(
        &self,
        tenant: &TenantId,
        alias: &str,
        model_id: &str,
        seen: Option<&Alias>,
        now: &str,
    ) -> Result<bool, StoreError> {
        let mut item = to_item(&moved(seen, model_id, now))?;
        item.insert("pk".into(), s(tenant.as_str()));
        item.insert("sk".into(), s(alias_sk(alias)));
        let mut put = self.db.put_item().table_name(&self.table).set_item(Some(item));
        put = match seen {
            Some(a) => put.condition_expression("version = :v").expression_attribute_values(":v", n(a.version)),
            None => put.condition_expression("attribute_not_exists(pk)"),
        };
        match put.send().await {
            Ok(_) => Ok(true),
            Err(e) if condition_failed(&e) => Ok(false),
            Err(e) => Err(failed(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_dynamodb::types::AttributeValue;

    #[test]
    fn a_move_keeps_the_previous_champions_and_bumps_the_version() {
        let first = moved(None, "m-a", "t1");
        assert_eq!((first.history.len(), first.version), (0, 1));
        let second = moved(Some(&first), "m-b", "t2");
        assert_eq!((second.model_id.as_str(), second.history.clone(), second.version), ("m-b", vec!["m-a".into()], 2));
        let back = moved(Some(&second), "m-a", "t3");
        assert_eq!(back.history, vec!["m-b".to_owned()], "a returning champion leaves the history");
        let item = to_item(&second).unwrap();
        assert_eq!(item["history"], AttributeValue::L(vec![s("m-a")]));
        assert_eq!(from_item::<Alias>(item).unwrap(), second);
    }
}
