//! The run worker: consumes the runs stream and advances each run through the graph.

use aws_lambda_events::event::kinesis::KinesisEvent;
use aws_lambda_events::event::streams::{KinesisBatchItemFailure, KinesisEventResponse};

use crate::agent::{Agent, AgentStore};
use crate::ports::{Actuator, Observer, RemediationModel};
use crate::state::RunStatus;
use crate::store::RunMessage;

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
        let Ok(msg) = serde_json::from_slice::<RunMessage>(&record.kinesis.data.0) else {
            tracing::warn!(seq = %seq, "undecodable run message skipped");
            continue;
        };
        let state = match agent.store.load_run(&msg.tenant, &msg.run_id).await {
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
