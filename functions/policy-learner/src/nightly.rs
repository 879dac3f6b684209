//! The nightly job: learn from every tenant's own audit chain, without anyone posting it.

use chrono::Utc;
use naksha_agent::ports::AuditLog;
use naksha_contracts::TenantId;
use naksha_core::ddb::{get_s, n, scan_all};
use serde::Serialize;

use crate::learn::learn_from_chain;
use crate::ports::Policies;

/// The tenants with an audit chain: the head items (`seq` 0 under a bare tenant key).
pub async fn tenants(db: &aws_sdk_dynamodb::Client, audit_table: &str) -> Result<Vec<TenantId>, String> {
    let scan = db
        .scan()
        .table_name(audit_table)
        .filter_expression("seq = :zero AND NOT contains(pk, :hash)")
        .expression_attribute_values(":zero", n(0))
        .expression_attribute_values(":hash", naksha_core::ddb::s("#"))
        .projection_expression("pk");
    let items = scan_all(scan).await.map_err(|e| e.0)?;
    Ok(items.iter().filter_map(|i| TenantId::from_record(get_s(i, "pk")?).ok()).collect())
}

#[derive(Debug, Default, Serialize)]
pub struct Night {
    pub tenants: usize,
    pub ingested: usize,
    pub changed: usize,
    pub failed: Vec<String>,
}

/// Learn for each tenant in turn; one tenant's failure does not stop the others.
pub async fn run<P: Policies, A: AuditLog>(store: &P, chain: &A, tenants: &[TenantId]) -> Night {
    let mut out = Night { tenants: tenants.len(), ..Night::default() };
    for t in tenants {
        match learn_from_chain(store, chain, t, Utc::now()).await {
            Ok(l) => {
                out.ingested += l.ingested;
                out.changed += l.changed;
            }
            Err(e) => {
                tracing::error!(tenant = %t.as_str(), error = %e, "nightly learning failed for a tenant");
                out.failed.push(t.as_str().to_owned());
            }
        }
    }
    out
}
