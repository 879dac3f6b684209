//! The game-day schedule (`template.yaml`, off unless `GameDayEnabled` is `true`): start one run of
//! each named spec (all built-in ones by default) in one tenant, each on the target it broke least
//! recently. What cannot start now (no free target, the tenant halted, the blast radius full) is
//! reported and skipped; the next game day tries again.

use chrono::Utc;
use naksha_contracts::TenantId;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::api::find_spec;
use crate::engine::{StartError, StartRequest, start};
use crate::ports::{ChaosMessage, Halt, Queue, Runs, World};
use crate::specs::builtin;

/// The schedule's input: `{"tenant", "specs"?}` (EventBridge's `Input`), or the same under
/// `detail`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GameDay {
    pub tenant: String,
    #[serde(default)]
    pub specs: Option<Vec<String>>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Outcome {
    pub started: Vec<Started>,
    pub skipped: Vec<Skipped>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Started {
    pub spec: String,
    pub run_id: String,
    pub target: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Skipped {
    pub spec: String,
    pub reason: String,
}

/// Read the schedule's event: the input itself, or a scheduled event carrying it in `detail`.
pub fn parse(event: &Value) -> Result<GameDay, String> {
    let body = if event.get("tenant").is_some() { event.clone() } else { event["detail"].clone() };
    let g: GameDay =
        serde_json::from_value(body).map_err(|e| format!("the game day needs {{\"tenant\", \"specs\"?}}: {e}"))?;
    TenantId::from_record(&g.tenant).map_err(|_| format!("{} is not a tenant id", g.tenant))?;
    Ok(g)
}

pub async fn run<W: World, R: Runs, H: Halt, Q: Queue>(
    world: &W,
    runs: &R,
    halt: &H,
    queue: &Q,
    g: &GameDay,
) -> Outcome {
    let mut out = Outcome::default();
    let Ok(tenant) = TenantId::from_record(&g.tenant) else { return out };
    let ids: Vec<String> = match &g.specs {
        Some(ids) => ids.clone(),
        None => builtin().unwrap_or_default().into_iter().map(|s| s.id).collect(),
    };
    for id in ids {
        let skip = |reason: String| Skipped { spec: id.clone(), reason };
        let spec = match find_spec(runs, &tenant, &id).await {
            Ok(Some(s)) => s,
            Ok(None) => {
                out.skipped.push(skip("no such spec".into()));
                continue;
            }
            Err(e) => {
                out.skipped.push(skip(e.to_string()));
                continue;
            }
        };
        let req = StartRequest { spec, target: None, dry_run: false, by: "game-day".into() };
        match start(world, runs, halt, &tenant, req, Utc::now()).await {
            Ok(run) => {
                let msg = ChaosMessage { tenant: tenant.clone(), run_id: run.run_id.clone() };
                if let Err(e) = queue.send(&msg).await {
                    let _ = runs.delete(&tenant, &run.run_id).await;
                    let _ = runs.unlock(&tenant, &run.target, &run.run_id).await;
                    out.skipped.push(skip(format!("could not queue the run: {e}")));
                } else {
                    out.started.push(Started { spec: id.clone(), run_id: run.run_id, target: run.target });
                }
            }
            Err(StartError::Invalid(r) | StartError::Conflict(r)) => out.skipped.push(skip(r)),
            Err(StartError::Unavailable(e)) => out.skipped.push(skip(e.to_string())),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::memory::{MemoryHalt, MemoryQueue, MemoryRuns, MemoryWorld};
    use naksha_act::sim::SimResource;
    use serde_json::json;

    #[tokio::test]
    async fn a_game_day_starts_what_it_can_and_says_why_not_the_rest() {
        let (world, runs, halt, queue) =
            (MemoryWorld::default(), MemoryRuns::default(), MemoryHalt::default(), MemoryQueue::default());
        let t = TenantId::from_record("acme").unwrap();
        for n in ["deployment/a", "deployment/b"] {
            let mut r = SimResource::new("deployment", 3, true, "v1");
            r.condition.chaos_target = true;
            world.resources.lock().unwrap().insert((t.clone(), n.into()), r);
        }
        let g = parse(&json!({"detail-type": "Scheduled Event", "detail": {"tenant": "acme"}})).unwrap();
        let out = run(&world, &runs, &halt, &queue, &g).await;
        assert_eq!(out.started.len(), 2, "two targets: {out:?}");
        assert_eq!(out.skipped.len(), 4, "{out:?}");
        assert!(out.skipped.iter().any(|s| s.spec == "hub-partition" && s.reason.contains("edge nodes")));
        assert_eq!(queue.sent.lock().unwrap().len(), 2);
        assert!(parse(&json!({"tenant": "acme", "spec": "x"})).is_err());
        assert!(parse(&json!({})).is_err());
        let only = parse(&json!({"tenant": "acme", "specs": ["nope"]})).unwrap();
        assert_eq!(run(&world, &runs, &halt, &queue, &only).await.skipped[0].reason, "no such spec");
    }
}
