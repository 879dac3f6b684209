//! Runs and their step checkpoints.
//!
//! | item | `pk` | `sk` | attributes |
//! |---|---|---|---|
//! | a run | [`run_pk`] = `<tenant>#<run id>` | `run` | `state` (the [`RunState`] as JSON), `tenant`, `run_id`, `status`, `signal`, `resource`, `plan_sha256`, `updated_at`, `progress` (`RunProgress` JSON); `outcome` ([`RunOutcome`] JSON) once a run that acted has ended |
//! | a checkpoint | the same | [`step_sk`] = `step#000001`… | `node`, `checkpoint` (JSON) |
//!
//! The `by_tenant` index (`tenant`, `updated_at`) is how the trainer reads outcomes and
//! `GET /agent/runs` lists the newest runs.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::{Put, TransactWriteItem};
use naksha_contracts::TenantId;
use naksha_contracts::runs::{OUTCOME_ATTRIBUTE, PROGRESS_ATTRIBUTE, RunOutcome, RunProgress, run_pk};
use naksha_core::ddb::{Item, condition_failed, get_s, s};

use super::{DynamoAgentStore, built, failed, json_of};
use crate::ports::{Checkpoint, RunStore, StoreError};
use crate::state::{Approval, RunState, RunStatus};

/// Items read per page when listing runs, and pages read at most.
const LIST_PAGE: i32 = 100;
const MAX_LIST_PAGES: usize = 10;

/// The sort key of the run item itself.
pub const RUN_SK: &str = "run";

/// The sort key of a step's checkpoint.
pub fn step_sk(step: u32) -> String {
    format!("step#{step:06}")
}

fn run_key(tenant: &TenantId, run_id: &str) -> Item {
    HashMap::from([("pk".to_owned(), s(run_pk(tenant, run_id))), ("sk".to_owned(), s(RUN_SK))])
}

/// The run item: the state, and what conditional writes and the indexes need beside it.
pub fn run_item(state: &RunState) -> Result<Item, StoreError> {
    let mut item = run_key(&state.tenant, &state.run_id);
    item.insert("tenant".into(), s(state.tenant.as_str()));
    item.insert("run_id".into(), s(&state.run_id));
    item.insert("status".into(), s(state.status.as_str()));
    item.insert("signal".into(), s(&state.request.signal));
    item.insert("resource".into(), s(&state.request.resource));
    item.insert("state".into(), s(json_of(state)?));
    item.insert("updated_at".into(), s(&state.updated_at));
    if let Some(p) = &state.plan {
        item.insert("plan_sha256".into(), s(&p.sha256));
    }
    item.insert(PROGRESS_ATTRIBUTE.into(), s(json_of(&state.progress())?));
    if let Some(outcome) = state.training_outcome() {
        item.insert(OUTCOME_ATTRIBUTE.into(), s(json_of::<RunOutcome>(&outcome)?));
    }
    Ok(item)
}

impl DynamoAgentStore {
    /// Change the run item only if it is awaiting approval for exactly `plan_sha256`.
    async fn conclude_approval(
        &self,
        tenant: &TenantId,
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
            .set_item(Some(run_item(&state)?))
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
            Err(e) if condition_failed(&e) => Err(StoreError::Conflict),
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
            .set_item(Some(run_item(state)?))
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if condition_failed(&e) => Err(StoreError::Exists),
            Err(e) => Err(failed(e)),
        }
    }

    async fn load_run(&self, tenant: &TenantId, run_id: &str) -> Result<Option<RunState>, StoreError> {
        let out = self
            .db
            .get_item()
            .table_name(&self.t.runs)
            .set_key(Some(run_key(tenant, run_id)))
            .consistent_read(true)
            .send()
            .await
            .map_err(failed)?;
        let Some(item) = out.item() else { return Ok(None) };
        let text = get_s(item, "state").ok_or_else(|| StoreError::Failed("run item without state".into()))?;
        let state: RunState = serde_json::from_str(text).map_err(|e| StoreError::Failed(e.to_string()))?;
        // The key already names the tenant; the state must agree (defence in depth).
        Ok((state.tenant == *tenant).then_some(state))
    }

    async fn save_step(&self, state: &RunState, c: &Checkpoint) -> Result<(), StoreError> {
        let step = built(
            Put::builder()
                .table_name(&self.t.runs)
                .item("pk", s(run_pk(&state.tenant, &state.run_id)))
                .item("sk", s(step_sk(c.step)))
                .item("node", s(&c.node))
                .item("checkpoint", s(json_of(c)?))
                .build(),
        )?;
        let run = built(Put::builder().table_name(&self.t.runs).set_item(Some(run_item(state)?)).build())?;
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
        self.db.put_item().table_name(&self.t.runs).set_item(Some(run_item(state)?)).send().await.map_err(failed)?;
        Ok(())
    }

    async fn checkpoints(&self, tenant: &TenantId, run_id: &str) -> Result<Vec<Checkpoint>, StoreError> {
        let mut out = Vec::new();
        let mut pages = self
            .db
            .query()
            .table_name(&self.t.runs)
            .key_condition_expression("pk = :pk AND begins_with(sk, :step)")
            .expression_attribute_values(":pk", s(run_pk(tenant, run_id)))
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

    async fn acted_runs(&self, tenant: &TenantId) -> Result<Vec<(String, u64)>, StoreError> {
        let query = self
            .db
            .query()
            .table_name(&self.t.runs)
            .index_name("by_tenant")
            .key_condition_expression("#t = :t")
            .filter_expression("attribute_exists(#o)")
            .projection_expression("#o")
            .expression_attribute_names("#t", "tenant")
            .expression_attribute_names("#o", OUTCOME_ATTRIBUTE)
            .expression_attribute_values(":t", s(tenant.as_str()));
        let items = naksha_core::ddb::query_all(query).await?;
        Ok(items
            .iter()
            .filter_map(|i| serde_json::from_str::<RunOutcome>(get_s(i, OUTCOME_ATTRIBUTE)?).ok())
            .map(|o| (o.run_id, o.audit_seq))
            .collect())
    }

    async fn recent_runs(
        &self,
        tenant: &TenantId,
        status: Option<&str>,
        limit: usize,
    ) -> Result<Vec<RunProgress>, StoreError> {
        // Newest first through the index; a status filter applies after each page is read, so
        // read pages until enough match (bounded: a tenant with many runs of other statuses gets
        // what the first pages held).
        let mut out = Vec::new();
        let mut start: Option<Item> = None;
        for _ in 0..MAX_LIST_PAGES {
            let mut query = self
                .db
                .query()
                .table_name(&self.t.runs)
                .index_name("by_tenant")
                .key_condition_expression("#t = :t")
                .scan_index_forward(false)
                .limit(LIST_PAGE)
                .projection_expression("#p")
                .expression_attribute_names("#t", "tenant")
                .expression_attribute_names("#p", PROGRESS_ATTRIBUTE)
                .expression_attribute_values(":t", s(tenant.as_str()))
                .set_exclusive_start_key(start.take());
            if let Some(status) = status {
                query = query
                    .filter_expression("#s = :s")
                    .expression_attribute_names("#s", "status")
                    .expression_attribute_values(":s", s(status));
            }
            let page = query.send().await.map_err(failed)?;
            for item in page.items() {
                if let Some(p) =
                    get_s(item, PROGRESS_ATTRIBUTE).and_then(|j| serde_json::from_str::<RunProgress>(j).ok())
                {
                    out.push(p);
                }
            }
            match page.last_evaluated_key() {
                Some(k) if out.len() < limit => start = Some(k.clone()),
                _ => break,
            }
        }
        out.truncate(limit);
        Ok(out)
    }

    async fn approve(&self, tenant: &TenantId, run_id: &str, approval: &Approval) -> Result<RunState, StoreError> {
        self.conclude_approval(tenant, run_id, Some(&approval.plan_sha256), |st| {
            st.approval = Some(approval.clone());
            st.status = RunStatus::Queued;
        })
        .await
    }

    async fn reject(&self, tenant: &TenantId, run_id: &str, rejection: &Approval) -> Result<RunState, StoreError> {
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
        let tenant = TenantId::from_record("acme").unwrap();
        let st = RunState::new("r1".into(), tenant, "u".into(), req, "now".into());
        let item = run_item(&st).unwrap();
        assert_eq!(get_s(&item, "pk"), Some("acme#r1"));
        assert_eq!(get_s(&item, "status"), Some("queued"));
        assert!(!item.contains_key(OUTCOME_ATTRIBUTE), "a run that has not acted teaches the trainer nothing");
        let back: RunState = serde_json::from_str(get_s(&item, "state").unwrap()).unwrap();
        assert_eq!(back, st);
        assert_eq!(step_sk(7), "step#000007");
    }
}
