//! The run worker: consumes the runs stream and advances each run through the graph.

use aws_lambda_events::event::kinesis::KinesisEvent;
use aws_lambda_events::event::streams::{KinesisBatchItemFailure, KinesisEventResponse};
use tracing::Instrument;

use crate::agent::{Agent, AgentStore, now};
use crate::ports::{Actuator, Observer, RemediationModel, RunQueue};
use crate::ports::{RunStore, StoreError};
use crate::state::RunStatus;
use crate::state::{RunRequest, RunState};
use naksha_contracts::runs::RunMessage;

/// How often a message whose run hit a failure a retry could fix is put back on the stream
/// before the run is failed with the reason.
pub const MAX_ATTEMPTS: u32 = 5;

/// What became of one message.
enum Next {
    /// Done with it (the run advanced, paused, ended, or the message was a duplicate).
    Done,
    /// Put it back: the run must be tried again (an audit append still pending).
    Again,
    /// A failure a retry may fix (the store was unreachable).
    Retry(StoreError),
}

/// Process messages in order. A message for an unknown or already concluded run, or one
/// awaiting approval, is a duplicate and is skipped. One message never blocks the others: a
/// failure a retry may fix puts the message back at the end of its shard (up to
/// [`MAX_ATTEMPTS`], then the run fails with the reason), and a run whose state cannot be saved
/// at all fails with the reason. Only when the stream itself cannot take a message back is the
/// batch reported for retry, from that message.
pub async fn handle<S, A, O, M, Q>(agent: &Agent<S, A, O, M>, queue: &Q, event: &KinesisEvent) -> KinesisEventResponse
where
    S: AgentStore,
    A: Actuator,
    O: Observer,
    M: RemediationModel,
    Q: RunQueue,
{
    let mut response = KinesisEventResponse::default();
    for record in &event.records {
        let seq = &record.kinesis.sequence_number;
        let Ok(msg) = RunMessage::decode(&record.kinesis.data.0) else {
            tracing::warn!(seq = %seq, size = record.kinesis.data.0.len(), "undecodable run message skipped");
            continue;
        };
        let again = match process(agent, &msg).await {
            Next::Done => None,
            Next::Again => Some(RunMessage { attempt: 0, ..msg.clone() }),
            Next::Retry(e) if msg.attempt + 1 >= MAX_ATTEMPTS => match give_up(&agent.store, &msg, &e).await {
                Ok(GaveUp::Failed) => None,
                // An act waiting for its audit record is never given up: it goes round again.
                Ok(GaveUp::AuditPending) => Some(RunMessage { attempt: 0, ..msg.clone() }),
                Err(e) => {
                    // Not even the failure can be recorded: the store is down. Lambda retries
                    // the batch from here rather than lose the run.
                    tracing::error!(run_id = %msg.run_id, error = %e, "store unavailable; retrying the batch from this message");
                    let mut f = KinesisBatchItemFailure::default();
                    f.item_identifier = Some(seq.clone());
                    response.batch_item_failures.push(f);
                    return response;
                }
            },
            Next::Retry(e) => {
                tracing::warn!(run_id = %msg.run_id, attempt = msg.attempt + 1, error = %e, "run put back on the stream");
                Some(RunMessage { attempt: msg.attempt + 1, ..msg.clone() })
            }
        };
        if let Some(again) = again {
            // A short pause, so a run that waits for something does not spin.
            tokio::time::sleep(std::time::Duration::from_millis(200 * u64::from(again.attempt.clamp(1, 5)))).await;
            let resource = resource_of(&agent.store, &again).await;
            if let Err(e) = queue.send(&again, &resource).await {
                tracing::error!(run_id = %again.run_id, error = %e, "could not put the run back; retrying the batch from it");
                let mut f = KinesisBatchItemFailure::default();
                f.item_identifier = Some(seq.clone());
                response.batch_item_failures.push(f);
                return response;
            }
        }
    }
    response
}

async fn process<S, A, O, M>(agent: &Agent<S, A, O, M>, msg: &RunMessage) -> Next
where
    S: AgentStore,
    A: Actuator,
    O: Observer,
    M: RemediationModel,
{
    let loaded = match agent.store.load_run(&msg.tenant, &msg.run_id).await {
        Ok(None) if msg.start.is_some() => create_from_signal(&agent.store, msg).await,
        other => other,
    };
    let mut state = match loaded {
        Ok(Some(s)) => s,
        Ok(None) => {
            tracing::warn!(run_id = %msg.run_id, "message for an unknown run skipped");
            return Next::Done;
        }
        Err(e) => return Next::Retry(e),
    };
    if !matches!(state.status, RunStatus::Queued | RunStatus::Running) {
        tracing::info!(run_id = %msg.run_id, status = state.status.as_str(), "duplicate delivery skipped");
        return Next::Done;
    }
    // P-4: every line logged while the run advances (its nodes, its acts) names its trace.
    let trace_id = state.trace.as_deref().and_then(naksha_contracts::trace::trace_id_of).unwrap_or_default();
    let span = tracing::info_span!("run", run_id = %state.run_id, trace_id = %trace_id);
    let began = std::time::SystemTime::now();
    let advanced = agent.advance(&mut state).instrument(span.clone()).await;
    // ... and X-Ray finds the advance under the worker's invocation by the same id.
    naksha_core::xray::subsegment(
        "run",
        began,
        &[("naksha_trace_id", &trace_id), ("run_id", &state.run_id), ("status", state.status.as_str())],
        advanced.is_err(),
    );
    match advanced {
        Ok(()) if state.audit_pending.is_some() => Next::Again,
        Ok(()) => {
            span.in_scope(|| {
                tracing::info!(
                    run_id = %state.run_id,
                    status = state.status.as_str(),
                    steps = state.steps_taken,
                    reason = state.outcome.as_ref().map(|o| o.reason.as_str()).unwrap_or(""),
                    "run advanced"
                )
            });
            Next::Done
        }
        Err(StoreError::Rejected(why)) => {
            // The state can never be saved as it is (too large): fail the run with the reason,
            // keeping what is needed to know what happened.
            state.observation = None;
            state.request.telemetry = None;
            state.conclude(
                RunStatus::Failed,
                format!("the run's state could not be saved ({why}); its observation was dropped"),
            );
            state.status = RunStatus::Failed;
            state.cursor = None;
            state.updated_at = now();
            if let Err(e) = agent.store.save_run(&state).await {
                tracing::error!(run_id = %state.run_id, error = %e, "a run that cannot be saved could not be failed either");
            }
            Next::Done
        }
        Err(e) => Next::Retry(e),
    }
}

/// The resource a message's run is about (its partition key names it).
async fn resource_of<S: RunStore>(store: &S, msg: &RunMessage) -> String {
    if let Some(start) = &msg.start {
        return start.resource.clone();
    }
    match store.load_run(&msg.tenant, &msg.run_id).await {
        Ok(Some(run)) => run.request.resource,
        _ => String::new(),
    }
}

enum GaveUp {
    Failed,
    AuditPending,
}

/// After [`MAX_ATTEMPTS`], the run fails with the reason instead of blocking the shard.
async fn give_up<S: RunStore>(store: &S, msg: &RunMessage, e: &StoreError) -> Result<GaveUp, StoreError> {
    tracing::error!(run_id = %msg.run_id, attempts = MAX_ATTEMPTS, error = %e, "giving up on a run");
    let Some(mut run) = store.load_run(&msg.tenant, &msg.run_id).await? else { return Ok(GaveUp::Failed) };
    if run.audit_pending.is_some() {
        return Ok(GaveUp::AuditPending);
    }
    if !run.status.is_final() {
        run.conclude(RunStatus::Failed, format!("could not be processed after {MAX_ATTEMPTS} attempts: {e}"));
        run.status = RunStatus::Failed;
        run.cursor = None;
        run.updated_at = now();
        store.save_run(&run).await?;
    }
    Ok(GaveUp::Failed)
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
    let mut state = RunState::new(msg.run_id.clone(), msg.tenant.clone(), start.requested_by.clone(), request, now());
    state.trace = start.trace.clone();
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

    use super::*;
    use crate::act::Adapters;
    use crate::act::sim::SimAdapter;
    use crate::agent::AgentKeys;
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
            keys: AgentKeys::default(),
            graph: Graph::builtin().unwrap(),
            default_adapter: "sim".into(),
        };
        let msg = RunMessage {
            tenant: TenantId::from_record("acme").unwrap(),
            run_id: "run-from-signal".into(),
            attempt: 0,
            start: Some(RunStart {
                signal: "anomaly.error_rate".into(),
                resource: "deployment/payments".into(),
                requested_by: "detector".into(),
                telemetry: Some(serde_json::json!({"score": 0.93})),
                trace: Some("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".into()),
            }),
        };
        let response = handle(&agent, mem.as_ref(), &event(&[msg.clone(), msg.clone()])).await;
        assert!(response.batch_item_failures.is_empty());
        let runs = mem.runs.lock().unwrap().clone();
        assert_eq!(runs.len(), 1);
        let run = runs.values().next().unwrap();
        assert_eq!((run.requested_by.as_str(), run.request.signal.as_str()), ("detector", "anomaly.error_rate"));
        assert_eq!(
            run.trace.as_deref(),
            Some("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
            "the signal's trace"
        );
        // No WPK handles the signal: the run is refused with the reason, which is still a record.
        assert_eq!(run.status, RunStatus::Rejected);
        let mut bad = serde_json::to_value(&msg).unwrap();
        bad["tenant"] = "ACME#x".into();
        bad["run_id"] = "another-run".into();
        handle(&agent, mem.as_ref(), &raw_event(&[serde_json::to_vec(&bad).unwrap()])).await;
        assert_eq!(mem.runs.lock().unwrap().len(), 1, "an invalid tenant creates nothing");
    }
}
