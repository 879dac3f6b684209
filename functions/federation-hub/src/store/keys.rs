//! The keys an edge node trusts, as the hub serves them (`GET /federation/keys`, and the answer
//! to a first registration): the trigger keys' and WPK keys' public halves (KMS, read once per
//! cold start) and trigger keys announced since (`naksha.federation`, partition `#fleet`, each
//! with the statement signed by a key nodes already trust).

use naksha_contracts::edge::HubKey;
use naksha_contracts::signing::{Sealed, SignatureError, public_key_pem};
use naksha_core::aws::describe_error;
use naksha_core::ddb::{get_s, query_all, s};
use serde::{Deserialize, Serialize};

use super::failed;
use super::federation::{FLEET_PK, key_sk};
use crate::ports::StoreError;

/// A public key by id (a WPK key).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublicKey {
    pub kid: String,
    pub public_key_pem: String,
}

/// A trigger key announced after the first ones, with the statement that vouches for it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Announced {
    pub key: HubKey,
    pub announcement: Sealed,
}

/// The keys loaded at cold start.
#[derive(Debug, Clone, Default)]
pub struct KeyRing {
    /// The trigger keys (the first is the one that signs now).
    pub trigger: Vec<HubKey>,
    pub wpk: Vec<PublicKey>,
}

async fn public_keys(kms: &aws_sdk_kms::Client, ids: &[String]) -> Result<Vec<PublicKey>, SignatureError> {
    let mut out = Vec::with_capacity(ids.len());
    for id in ids {
        let got = kms.get_public_key().key_id(id).send().await.map_err(|e| SignatureError::Keys(describe_error(&e)))?;
        let spki = got.public_key().ok_or_else(|| SignatureError::Keys(format!("{id} has no public key")))?;
        // The ARN is what a KMS signature names, so nodes know the key by it (KMS answers
        // GetPublicKey with the ARN; some emulators with the bare id, so the configured ARN wins).
        let kid = match got.key_id() {
            Some(arn) if arn.starts_with("arn:") => arn.to_owned(),
            _ => id.clone(),
        };
        out.push(PublicKey { kid, public_key_pem: public_key_pem(spki.as_ref()) });
    }
    Ok(out)
}

impl KeyRing {
    pub async fn load(
        kms: &aws_sdk_kms::Client,
        trigger_ids: &[String],
        wpk_ids: &[String],
    ) -> Result<Self, SignatureError> {
        let trigger = public_keys(kms, trigger_ids)
            .await?
            .into_iter()
            .map(|k| HubKey { kid: k.kid, public_key_pem: k.public_key_pem, not_before: None, not_after: None })
            .collect();
        Ok(Self { trigger, wpk: public_keys(kms, wpk_ids).await? })
    }

    /// The key id the signer's signatures carry.
    pub fn signing_kid(&self) -> Option<&str> {
        self.trigger.first().map(|k| k.kid.as_str())
    }
}

/// Trigger keys announced since the first ones.
pub async fn announced(db: &aws_sdk_dynamodb::Client, table: &str) -> Result<Vec<Announced>, StoreError> {
    let items = query_all(
        db.query()
            .table_name(table)
            .key_condition_expression("pk = :pk AND begins_with(sk, :p)")
            .expression_attribute_values(":pk", s(FLEET_PK))
            .expression_attribute_values(":p", s("key#")),
    )
    .await?;
    Ok(items
        .iter()
        .filter_map(|i| {
            let key = serde_json::from_str(get_s(i, "key")?).ok()?;
            let announcement = serde_json::from_str(get_s(i, "announcement")?).ok()?;
            Some(Announced { key, announcement })
        })
        .collect())
}

/// Record an announcement (the rotation runbook's step; nodes verify it, not the hub).
pub async fn announce(db: &aws_sdk_dynamodb::Client, table: &str, a: &Announced) -> Result<(), StoreError> {
    let key = serde_json::to_string(&a.key).map_err(|e| StoreError(e.to_string()))?;
    let announcement = serde_json::to_string(&a.announcement).map_err(|e| StoreError(e.to_string()))?;
    db.put_item()
        .table_name(table)
        .item("pk", s(FLEET_PK))
        .item("sk", s(key_sk(&a.key.kid)))
        .item("key", s(key))
        .item("announcement", s(announcement))
        .send()
        .await
        .map_err(failed)?;
    Ok(())
}
