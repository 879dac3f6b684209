//! The run worker: consumes `naksha.chaos-runs`; each message advances its run by one step and,
//! while the run is not over, is put back (after a short pause), so no invocation waits minutes
//! and a worker that dies mid-run is simply delivered the message again (every step is safe to
//! repeat: a fault and its rollback are keyed by the run).

use std::time::Duration;

use aws_lambda_events::event::kinesis::KinesisEvent;
use aws_lambda_events::event::streams::{KinesisBatchItemFailure, KinesisEventResponse};
use chrono::Utc;

use crate::engine::{Ports, step};
use crate::ports::{AgentRuns, ChaosMessage, Halt, Http, Queue, Runs, Telemetry, World};

/// The pause before a run's message goes back on the stream.
pub const TICK: Duration = Duration::from_millis(1000);

/// Count the step and the time spent in it on the run, then save it.
async fn save_with_cost<R: Runs>(
    runs: &R,
    run: &mut crate::run::ChaosRun,
    started: std::time::Instant,
) -> Result<(), crate::ports::StoreError> {
    run.steps += 1;
    run.worker_ms += started.elapsed().as_millis() as u64;
    runs.save(run).await
}

/// Process messages in order; one run's failure never blocks the others. The runs still going
/// are put back after the whole batch, once at least [`TICK`] has passed since it began: a batch
/// of many concurrent runs takes one pause, not one per run.
pub async fn handle<W: World, R: Runs, A: AgentRuns, T: Telemetry, H: Halt, X: Http, Q: Queue>(
    ports: &Ports<'_, W, R, A, T, H, X>,
    queue: &Q,
    event: &KinesisEvent,
) -> KinesisEventResponse {
    let batch_started = std::time::Instant::now();
    let mut response = KinesisEventResponse::default();
    // (sequence number, message) of each run to put back, in order.
    let mut again: Vec<(&String, ChaosMessage)> = Vec::new();
    let mut failed_from: Option<&String> = None;
    for record in &event.records {
        let seq = &record.kinesis.sequence_number;
        let Ok(msg) = serde_json::from_slice::<ChaosMessage>(&record.kinesis.data.0) else {
            tracing::warn!(seq = %seq, size = record.kinesis.data.0.len(), "undecodable chaos message skipped");
            continue;
        };
        let started = std::time::Instant::now();
        let more = match ports.runs.load(&msg.tenant, &msg.run_id).await {
            Ok(None) => {
                tracing::warn!(run_id = %msg.run_id, "message for an unknown chaos run skipped");
                false
            }
            Ok(Some(mut run)) => match step(ports, &mut run, Utc::now()).await {
                Ok(more) => match save_with_cost(ports.runs, &mut run, started).await {
                    Ok(()) => {
                        // Right after saving a step and before putting the message back.
                        naksha_core::crash::point(&run.run_id, &format!("chaos run {}", run.run_id));
                        if !more {
                            tracing::info!(run_id = %run.run_id, verdict = ?run.verdict, reason = run.reason.as_deref().unwrap_or(""), "chaos run over");
                        }
                        more
                    }
                    Err(e) => {
                        tracing::warn!(run_id = %run.run_id, error = %e, "chaos run not saved; the step runs again");
                        true
                    }
                },
                // Every step is safe to repeat: try again on the next tick.
                Err(e) => {
                    tracing::warn!(run_id = %msg.run_id, error = %e, "chaos step failed; retrying");
                    true
                }
            },
            Err(e) => {
                tracing::error!(run_id = %msg.run_id, error = %e, "chaos store unavailable; retrying the batch from this message");
                failed_from = Some(seq);
                break;
            }
        };
        if more {
            again.push((seq, msg));
        }
    }
    if !again.is_empty() {
        tokio::time::sleep(TICK.saturating_sub(batch_started.elapsed())).await;
    }
    for (seq, msg) in &again {
        if let Err(e) = queue.send(msg).await {
            tracing::error!(run_id = %msg.run_id, error = %e, "could not put the run back; retrying the batch from it");
            failed_from = Some(seq);
            break;
        }
    }
    if let Some(seq) = failed_from {
        let mut f = KinesisBatchItemFailure::default();
        f.item_identifier = Some(seq.clone());
        response.batch_item_failures.push(f);
    }
    response
}
