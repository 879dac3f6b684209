//! Checks done here rather than taken on the API's word: a model version's signature against a
//! public key fetched from KMS (or a file), and the audit chain's hashes and links.

use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use naksha_contracts::TenantId;
use naksha_contracts::audit::{AuditRecord, verify_chain};
use naksha_contracts::models::StoredModel;
use naksha_contracts::signing::{TrustedKeys, sha256_hex};
use serde_json::{Value, json};

use crate::client::{CliError, Client};

/// The token's claims, decoded but not verified (only to name the caller's tenant).
pub fn claims(token: &str) -> Value {
    token
        .split('.')
        .nth(1)
        .and_then(|p| URL_SAFE_NO_PAD.decode(p.trim_end_matches('=')).ok())
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or(Value::Null)
}

/// A public key file: PEM (`BEGIN PUBLIC KEY`) or DER SubjectPublicKeyInfo.
pub fn public_key_from_file(path: &Path) -> Result<Vec<u8>, CliError> {
    let bytes = std::fs::read(path).map_err(|e| CliError::usage(format!("cannot read {}: {e}", path.display())))?;
    public_key_from_bytes(&bytes)
        .ok_or_else(|| CliError::usage(format!("{} is not a PEM or DER public key", path.display())))
}

fn public_key_from_bytes(bytes: &[u8]) -> Option<Vec<u8>> {
    let text = std::str::from_utf8(bytes).ok();
    match text.filter(|t| t.contains("-----BEGIN PUBLIC KEY-----")) {
        Some(t) => {
            let b64: String = t
                .lines()
                .skip_while(|l| !l.starts_with("-----BEGIN PUBLIC KEY-----"))
                .skip(1)
                .take_while(|l| !l.starts_with("-----END"))
                .collect();
            STANDARD.decode(b64.trim()).ok()
        }
        None => (bytes.first() == Some(&0x30)).then(|| bytes.to_vec()),
    }
}

/// The public key of a KMS key (id, ARN or alias), through the standard AWS configuration.
pub async fn public_key_from_kms(key_id: &str) -> Result<Vec<u8>, CliError> {
    let config = aws_config::defaults(aws_config::BehaviorVersion::latest()).load().await;
    let kms = aws_sdk_kms::Client::new(&config);
    let out = kms.get_public_key().key_id(key_id).send().await.map_err(|e| {
        let why = aws_sdk_kms::error::DisplayErrorContext(&e).to_string();
        let why: String = why.split(" (").next().unwrap_or(&why).chars().take(200).collect();
        CliError::failed(format!(
            "cannot read the public key of {key_id} from KMS ({why}); pass --public-key FILE instead"
        ))
    })?;
    out.public_key()
        .map(|b| b.as_ref().to_vec())
        .ok_or_else(|| CliError::failed(format!("KMS returned no public key for {key_id}")))
}

/// Check a `GET /models/{id}` answer against `public_key`: the signature over the manifest, the
/// document against the signed digest, id and tenant against the signed ones, and the tenant
/// against the caller's.
pub fn model(answer: &Value, public_key: &[u8], claims: &Value) -> Value {
    let text = |k: &str| answer.get(k).and_then(Value::as_str).unwrap_or_default().to_owned();
    let manifest: Value = serde_json::from_str(&text("manifest")).unwrap_or(Value::Null);
    let mut report = json!({
        "model_id": text("model_id"),
        "key_id": text("key_id"),
        "manifest_sha256": manifest["sha256"],
        "document_sha256": sha256_hex(text("document_json").as_bytes()),
        "verified": false,
    });
    let tenant = match manifest.get("tenant").and_then(Value::as_str).and_then(|t| TenantId::from_record(t).ok()) {
        Some(t) => t,
        None => {
            report["error"] = json!("the manifest names no valid tenant");
            return report;
        }
    };
    if let Some(mine) = claims.get("tenant").and_then(Value::as_str)
        && mine != tenant.as_str()
    {
        report["error"] = json!(format!("signed for tenant {tenant}, not yours ({mine})"));
        return report;
    }
    let stored = StoredModel {
        model_id: text("model_id"),
        tenant,
        created_at: text("created_at"),
        doc: text("document_json"),
        manifest: text("manifest"),
        sha256: text("sha256"),
        signature: text("signature"),
        key_id: text("key_id"),
    };
    // The key fetched out of band is trusted under whatever id the answer names: a wrong key
    // fails the signature, whatever it is called.
    let keys = TrustedKeys::from_public_keys([(stored.key_id.clone(), public_key.to_vec())]);
    match stored.verify(&keys) {
        Ok(v) => {
            report["verified"] = json!(true);
            report["signed_sha256"] = json!(v.sha256());
        }
        Err(e) => report["error"] = json!(e.to_string()),
    }
    report
}

/// Read the whole chain page by page and check it here; ask the server to check it against its
/// head, signed checkpoints and the runs that acted. Both must pass.
pub async fn audit(client: &Client) -> Result<Value, CliError> {
    let mut records: Vec<AuditRecord> = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/agent/audit?limit=500&cursor={}", crate::client::enc(c)),
            None => "/agent/audit?limit=500".to_owned(),
        };
        let page = client.get(&path).await?;
        for r in page["records"].as_array().into_iter().flatten() {
            let rec: AuditRecord = serde_json::from_value(r.clone())
                .map_err(|e| CliError::failed(format!("an audit record does not decode: {e}")))?;
            records.push(rec);
        }
        match page["next_cursor"].as_str() {
            Some(c) if !c.is_empty() && cursor.as_deref() != Some(c) => cursor = Some(c.to_owned()),
            _ => break,
        }
    }
    records.sort_by_key(|r| r.seq);
    let local = verify_chain(&records);
    let server = client.get("/agent/audit?limit=1&verify=true").await?;
    let server_ok = server["verified"] == true;
    let total = server["total"].as_u64();
    let counts_agree = total.is_none_or(|t| t == records.len() as u64);
    let mut report = json!({
        "records": records.len(),
        "head": records.last().map(|r| json!({"seq": r.seq, "hash": r.hash})),
        "chain_checked_here": local.is_ok(),
        "server_verified": server_ok,
        "server_total": total,
        "verified": local.is_ok() && server_ok && counts_agree,
    });
    if let Err(b) = local {
        report["first_broken"] = json!({"seq": b.seq, "reason": b.reason, "found_by": "naksha"});
    } else if !server_ok {
        report["first_broken"] = server["first_broken"].clone();
    } else if !counts_agree {
        report["error"] =
            json!(format!("the server counts {} records, the pages held {}", total.unwrap_or(0), records.len()));
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use naksha_contracts::signing::{LocalKey, canonical, public_key_pem};

    fn artifact_answer(key: &LocalKey, tenant: &str) -> Value {
        let manifest = json!({"purpose": "naksha/model/v1", "model_id": "m-1", "tenant": tenant, "created_at": "2026-12-04T00:00:00Z",
            "code_version": "c", "data_digest": "d", "sha256": "0"});
        let sig = key.sign(&canonical(&manifest)).unwrap().to_base64();
        json!({"model_id": "m-1", "manifest": String::from_utf8_lossy(&canonical(&manifest)), "signature": sig,
            "key_id": key.id(), "document_json": "{}", "sha256": "0", "created_at": "2026-12-04T00:00:00Z"})
    }

    #[test]
    fn a_model_signed_by_another_key_or_for_another_tenant_does_not_verify() {
        let (signer, other) = (LocalKey::generate("k1").unwrap(), LocalKey::generate("k2").unwrap());
        let answer = artifact_answer(&signer, "acme");
        let mine = json!({"tenant": "acme"});
        // The signature holds but the document's digest is not the signed one: refused.
        let r = model(&answer, &signer.public_key_der(), &mine);
        assert_eq!(r["verified"], false, "{r}");
        assert!(r["error"].as_str().is_some_and(|e| !e.is_empty()), "{r}");
        let r = model(&answer, &other.public_key_der(), &mine);
        assert_eq!(r["verified"], false);
        assert!(r["error"].as_str().is_some_and(|e| e.to_lowercase().contains("signature")), "{r}");
        let r = model(&answer, &signer.public_key_der(), &json!({"tenant": "globex"}));
        assert!(r["error"].as_str().is_some_and(|e| e.contains("not yours")), "{r}");
    }

    #[test]
    fn public_keys_read_from_pem_or_der() {
        let k = LocalKey::generate("k").unwrap();
        let der = k.public_key_der();
        assert_eq!(public_key_from_bytes(public_key_pem(&der).as_bytes()), Some(der.clone()));
        assert_eq!(public_key_from_bytes(&der), Some(der));
        assert_eq!(public_key_from_bytes(b"hello"), None);
    }

    #[test]
    fn claims_are_read_from_the_token_without_trusting_them() {
        let payload = URL_SAFE_NO_PAD.encode(br#"{"tenant":"acme","sub":"alice"}"#);
        assert_eq!(claims(&format!("h.{payload}.s"))["tenant"], "acme");
        assert_eq!(claims("garbage"), Value::Null);
    }
}
