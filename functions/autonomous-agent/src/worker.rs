//! The run worker: consumes the runs stream and advances each run through the graph.

use aws_lambda_events::event::kinesis::KinesisEvent;
use aws_lambda_events::event::streams::{KinesisBatchItemFailure, KinesisEventResponse};

use crate::agent::{Agent, AgentStore, now};
use crate::ports::{Actuator, Observer, RemediationModel};
use crate::ports::{RunStore, StoreError};
use crate::state::RunStatus;
use crate::state::{RunRequest, RunState};
use naksha_contracts::runs::RunMessage;

/// Process messages in order. A message for an unknown or already concluded run, or one
/// awaiting approval, is a duplicate and is skipped; a store failure is reported so the batch
/// is retried from that message (the run resumes from its last checkpoint).
pub async fn handle<S, A, O, M>(agent: &Agent<S, A, O, M>, event: &KinesisEvent) -> KinesisEventResponse
where
    S: AgentStore,
    A: Actuator,
    O: Observer,
    M: RemediationModel,
{
    let mut response = KinesisEventResponse::default();
    for record in &event.records {
        let seq = &record.kinesis.sequence_number;
        let Ok(msg) = RunMessage::decode(&record.kinesis.data.0) else {
            tracing::warn!(seq = %seq, "undecodable run message skipped");
            continue;
        };
        let loaded = match agent.store.load_run(&msg.tenant, &msg.run_id).await {
            Ok(None) if msg.start.is_some() => create_from_signal(&agent.store, &msg).await,
            other => other,
        };
        let state = match loaded {
            Ok(Some(s)) => s,
            Ok(None) => {
                tracing::warn!(run_id = %msg.run_id, "message for an unknown run skipped");
                continue;
            }
            Err(e) => {
                tracing::warn!(error = %e, "could not load the run; retrying the batch from it");
                let mut f = KinesisBatchItemFailure::default();
                f.item_identifier = Some(seq.clone());
                response.batch_item_failures.push(f);
                return response;
            }
        };
        if !matches!(state.status, RunStatus::Queued | RunStatus::Running) {
            tracing::info!(run_id = %msg.run_id, status = state.status.as_str(), "duplicate delivery skipped");
            continue;
        }
        let mut state = state;
        match agent.advance(&mut state).await {
            Ok(()) => tracing::info!(
                run_id = %state.run_id,
                status = state.status.as_str(),
                steps = state.steps_taken,
                reason = state.outcome.as_ref().map(|o| o.reason.as_str()).unwrap_or(""),
                "run advanced"
            ),
            Err(e) => {
                tracing::warn!(run_id = %state.run_id, error = %e, "run step could not be saved; retrying from this message");
                let mut f = KinesisBatchItemFailure::default();
                f.item_identifier = Some(seq.clone());
                response.batch_item_failures.push(f);
                return response;
            }
        }
    }
    response
}

/// A run started by a message (a detector signal): created with the message's id, so a
/// redelivered message finds the run instead of creating a second one.
async fn create_from_signal<S: RunStore>(store: &S, msg: &RunMessage) -> Result<Option<RunState>, StoreError> {
    let Some(start) = &msg.start else { return Ok(None) };
    let request = RunRequest {
        signal: start.signal.clone(),
        resource: start.resource.clone(),
        telemetry: start.telemetry.clone(),
        dry_run: false,
    };
    let state = RunState::new(msg.run_id.clone(), msg.tenant.clone(), start.requested_by.clone(), request, now());
    match store.create_run(&state).await {
        Ok(()) => {
            tracing::info!(run_id = %state.run_id, signal = %start.signal, resource = %start.resource, "run created from a signal");
            Ok(Some(state))
        }
        Err(StoreError::Exists) => store.load_run(&msg.tenant, &msg.run_id).await,
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use aws_lambda_events::encodings::Base64Data;
    use aws_lambda_events::event::kinesis::{KinesisEvent, KinesisEventRecord};
    use naksha_contracts::TenantId;
    use naksha_contracts::runs::RunStart;
    use naksha_contracts::signing::TrustedKeys;

    use super::*;
    use crate::act::Adapters;
    use crate::act::sim::SimAdapter;
    use crate::memory::Memory;
    use crate::observe::Observers;
    use crate::observe::telemetry::{AggregateQuery, ObserveError};
    use crate::ports::OutcomeHistory;
    use crate::spec::Graph;
    use crate::state::RunStatus;
    use naksha_contracts::telemetry::AggregateRow;

    struct NoAggregates;
    impl AggregateQuery for NoAggregates {
        async fn by_source(&self, _: &TenantId, _: &str, _: i64) -> Result<Vec<AggregateRow>, ObserveError> {
            Ok(vec![])
        }
    }

    fn event(msgs: &[RunMessage]) -> KinesisEvent {
        raw_event(&msgs.iter().map(|m| serde_json::to_vec(m).unwrap()).collect::<Vec<_>>())
    }

    fn raw_event(datas: &[Vec<u8>]) -> KinesisEvent {
        let mut e = KinesisEvent::default();
        for (i, d) in datas.iter().enumerate() {
            let mut r = KinesisEventRecord::default();
            let mut data = Base64Data::default();
            data.extend_from_slice(d);
            r.kinesis.data = data;
            r.kinesis.sequence_number = (i + 1).to_string();
            e.records.push(r);
        }
        e
    }

    #[tokio::test]
    async fn a_signal_message_creates_its_run_once_even_when_redelivered() {
        let mem = Arc::new(Memory::default());
        let agent = Agent {
            store: Arc::clone(&mem),
            actuator: Adapters {
                sim: Some(SimAdapter { store: Arc::clone(&mem) }),
                k8s: None,
                receipts: Arc::clone(&mem),
            },
            observer: Observers::<NoAggregates> { telemetry: None, prometheus: None },
            model: OutcomeHistory,
            keys: TrustedKeys::default(),
            graph: Graph::builtin().unwrap(),
            default_adapter: "sim".into(),
        };
        let msg = RunMessage {
            tenant: TenantId::from_record("acme").unwrap(),
            run_id: "run-from-signal".into(),
            start: Some(RunStart {
                signal: "anomaly.error_rate".into(),
                resource: "deployment/payments".into(),
                requested_by: "detector".into(),
                telemetry: Some(serde_json::json!({"score": 0.93})),
            }),
        };
        let response = handle(&agent, &event(&[msg.clone(), msg.clone()])).await;
        assert!(response.batch_item_failures.is_empty());
        let runs = mem.runs.lock().unwrap().clone();
        assert_eq!(runs.len(), 1);
        let run = runs.values().next().unwrap();
        assert_eq!((run.requested_by.as_str(), run.request.signal.as_str()), ("detector", "anomaly.error_rate"));
        // No WPK handles the signal: the run is refused with the reason, which is still a record.
        assert_eq!(run.status, RunStatus::Rejected);
        let mut bad = serde_json::to_value(&msg).unwrap();
        bad["tenant"] = "ACME#x".into();
        bad["run_id"] = "another-run".into();
        handle(&agent, &raw_event(&[serde_json::to_vec(&bad).unwrap()])).await;
        assert_eq!(mem.runs.lock().unwrap().len(), 1, "an invalid tenant creates nothing");
    }
}
