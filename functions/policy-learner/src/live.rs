//! What `GET /compliance` reads from the live system: the tables (scanned for the tenant's
//! items), the signed registries, the audit chain, the runs and jobs, and the API's own
//! `/health` and `/metrics`.

use naksha_agent::ports::{AuditLog, RunStore, WpkStore};
use naksha_agent::state::RunState;
use naksha_agent::store::DynamoAgentStore;
use naksha_contracts::TenantId;
use naksha_contracts::audit::verify_anchored;
use naksha_contracts::models::StoredModel;
use naksha_core::ddb::{from_item, get_s, query_all, s};
use naksha_core::signing::TrustedKeys;
use serde_json::Value;

use crate::compliance::{Check, Observed, RunLatency, TableScan, check_item};

/// The most items one table scan reads (a cut scan says so in the matrix).
pub const SCAN_LIMIT: usize = 20_000;

/// The tables holding tenants' data, by service: `service:table,service:table`.
pub fn parse_tables(raw: &str) -> Vec<(String, String)> {
    raw.split(',')
        .filter_map(|pair| pair.split_once(':'))
        .map(|(s, t)| (s.trim().to_owned(), t.trim().to_owned()))
        .filter(|(s, t)| !s.is_empty() && !t.is_empty())
        .collect()
}

#[derive(Debug)]
pub struct Live {
    pub db: aws_sdk_dynamodb::Client,
    pub tables: Vec<(String, String)>,
    pub agent: DynamoAgentStore,
    pub runs_table: String,
    pub models_table: String,
    pub jobs_table: String,
    pub wpk_keys: TrustedKeys,
    pub model_keys: TrustedKeys,
    pub audit_keys: TrustedKeys,
    /// Where `/health` and `/metrics` are checked; `None`: P-4 has no data.
    pub api: Option<String>,
    pub http: reqwest::Client,
}

fn ms(t: &str) -> Option<i64> {
    chrono::DateTime::parse_from_rfc3339(t).ok().map(|t| t.timestamp_millis())
}

/// A run's step latencies from its milestones.
pub fn latency(r: &RunState) -> RunLatency {
    let created = ms(&r.created_at);
    let at = |node: &str| r.milestones.get(node).and_then(|t| ms(t));
    let decide_ms = created.zip(at("decide")).map(|(c, d)| d - c);
    let approved = r.approval.as_ref().filter(|a| !a.standing).and_then(|a| ms(&a.at)).or_else(|| at("gate"));
    let act_ms = approved.zip(at("act")).map(|(a, x)| (x - a).max(0));
    RunLatency { run_id: r.run_id.clone(), decide_ms, act_ms }
}

impl Live {
    async fn scan(&self, tenant: &TenantId, service: &str, table: &str) -> TableScan {
        let mut out = TableScan { service: service.to_owned(), table: table.to_owned(), ..TableScan::default() };
        let mut start = None;
        // Only the items that are the tenant's by key or name the tenant in their content come
        // back (the scan still reads the table; the filter saves the transfer).
        let needle = format!("\"tenant\":\"{}\"", tenant.as_str());
        loop {
            let scan = self
                .db
                .scan()
                .table_name(table)
                .filter_expression(
                    "begins_with(pk, :t) OR #tenant = :t OR contains(#doc, :n) OR contains(#record, :n) OR contains(#state, :n)",
                )
                .expression_attribute_names("#tenant", "tenant")
                .expression_attribute_names("#doc", "doc")
                .expression_attribute_names("#record", "record")
                .expression_attribute_names("#state", "state")
                .expression_attribute_values(":t", s(tenant.as_str()))
                .expression_attribute_values(":n", s(needle.clone()))
                .set_exclusive_start_key(start.take());
            let resp = match scan.send().await {
                Ok(r) => r,
                Err(e) => {
                    out.misplaced
                        .push(format!("the table could not be scanned: {}", naksha_core::aws::describe_error(&e)));
                    return out;
                }
            };
            out.scanned += usize::try_from(resp.scanned_count()).unwrap_or(0);
            for item in resp.items() {
                check_item(tenant, item, &mut out);
            }
            match resp.last_evaluated_key() {
                Some(k) if out.scanned < SCAN_LIMIT => start = Some(k.clone()),
                Some(_) => {
                    out.truncated = true;
                    break;
                }
                None => break,
            }
        }
        out
    }

    async fn wpks(&self, tenant: &TenantId) -> Option<Vec<Check>> {
        let all = self.agent.list_wpks(tenant).await.ok()?;
        Some(
            all.iter()
                .map(|w| match w.verify(&self.wpk_keys, tenant) {
                    Ok(_) => Check::new(format!("{} v{}", w.id, w.version), true, "signature verifies"),
                    Err(e) => Check::new(format!("{} v{}", w.id, w.version), false, e.to_string()),
                })
                .collect(),
        )
    }

    async fn models(&self, tenant: &TenantId) -> Option<Vec<Check>> {
        let q = self
            .db
            .query()
            .table_name(&self.models_table)
            .key_condition_expression("pk = :pk AND begins_with(sk, :v)")
            .expression_attribute_values(":pk", s(tenant.as_str()))
            .expression_attribute_values(":v", s(naksha_contracts::models::VERSION_PREFIX));
        let items = query_all(q).await.ok()?;
        Some(
            items
                .into_iter()
                .map(|i| {
                    let sk = get_s(&i, "sk").unwrap_or_default().to_owned();
                    match from_item::<StoredModel>(i) {
                        Ok(m) => match m.verify(&self.model_keys) {
                            Ok(_) => Check::new(m.model_id.clone(), true, "signature and digest verify"),
                            Err(e) => Check::new(m.model_id.clone(), false, e.to_string()),
                        },
                        Err(e) => Check::new(sk, false, format!("does not decode: {e}")),
                    }
                })
                .collect(),
        )
    }

    async fn audit(&self, tenant: &TenantId) -> Option<(Result<usize, String>, Vec<Check>)> {
        let records = self.agent.records(tenant).await.ok()?;
        let mut anchors = self.agent.anchors(tenant).await.ok()?;
        anchors.acted = self.agent.acted_runs(tenant).await.ok()?;
        let verified = verify_anchored(tenant, &records, &anchors, &self.audit_keys)
            .map(|()| records.len())
            .map_err(|b| format!("record {}: {}", b.seq, b.reason));
        let incomplete = records
            .iter()
            .filter(|r| r.entry.kind.is_empty())
            .filter_map(|r| {
                let e = &r.entry;
                let missing: Vec<&str> = [
                    ("approver", e.approver.is_empty()),
                    ("justification", e.justification.is_empty()),
                    ("approval_sha256", e.approval_sha256.is_empty()),
                    ("before_sha256", e.before_sha256.is_empty()),
                    ("after_sha256", e.after_sha256.is_empty()),
                ]
                .into_iter()
                .filter(|(_, m)| *m)
                .map(|(n, _)| n)
                .collect();
                (!missing.is_empty()).then(|| {
                    Check::new(
                        format!("act {} (run {})", r.seq, e.run_id),
                        false,
                        format!("missing {}", missing.join(", ")),
                    )
                })
            })
            .collect();
        Some((verified, incomplete))
    }

    async fn endpoints(&self) -> Option<Vec<Check>> {
        let base = self.api.as_deref()?.trim_end_matches('/');
        let mut out = Vec::new();
        for (path, expect) in [("/health", "\"status\""), ("/metrics", "# TYPE")] {
            let check = match self.http.get(format!("{base}{path}")).send().await {
                Ok(r) => {
                    let status = r.status().as_u16();
                    let body = r.text().await.unwrap_or_default();
                    Check::new(path, status == 200 && body.contains(expect), format!("HTTP {status}"))
                }
                Err(e) => Check::new(path, false, format!("no answer: {}", e.without_url())),
            };
            out.push(check);
        }
        Some(out)
    }

    async fn runs(&self, tenant: &TenantId) -> Option<Vec<RunLatency>> {
        let resp = self
            .db
            .query()
            .table_name(&self.runs_table)
            .index_name("by_tenant")
            .key_condition_expression("#t = :t")
            .expression_attribute_names("#t", "tenant")
            .expression_attribute_values(":t", s(tenant.as_str()))
            .scan_index_forward(false)
            .limit(500)
            .send()
            .await
            .ok()?;
        Some(
            resp.items()
                .iter()
                .filter_map(|i| serde_json::from_str::<RunState>(get_s(i, "state")?).ok())
                .filter(|r| &r.tenant == tenant)
                .map(|r| latency(&r))
                .collect(),
        )
    }

    async fn jobs(&self, tenant: &TenantId) -> Option<Vec<Check>> {
        let q = self
            .db
            .query()
            .table_name(&self.jobs_table)
            .key_condition_expression("pk = :pk")
            .expression_attribute_values(":pk", s(tenant.as_str()));
        let items = query_all(q).await.ok()?;
        Some(
            items
                .iter()
                .filter_map(|i| serde_json::from_str::<Value>(get_s(i, "doc")?).ok())
                .map(|doc| {
                    let id = doc["job_id"].as_str().unwrap_or("?").to_owned();
                    let ok = doc["status"].is_string() && doc["progress"].is_number();
                    Check::new(
                        format!("job {id}"),
                        ok,
                        if ok { "status and progress reported" } else { "no status or progress" },
                    )
                })
                .collect(),
        )
    }

    /// Everything the matrix needs, read concurrently.
    pub async fn observe(&self, tenant: &TenantId) -> Observed {
        let scans = futures::future::join_all(self.tables.iter().map(|(svc, table)| self.scan(tenant, svc, table)));
        let (tables, wpks, models, audit, endpoints, runs, jobs) = tokio::join!(
            scans,
            self.wpks(tenant),
            self.models(tenant),
            self.audit(tenant),
            self.endpoints(),
            self.runs(tenant),
            self.jobs(tenant)
        );
        Observed { tables, wpks, models, audit, endpoints, runs, jobs }
    }
}
