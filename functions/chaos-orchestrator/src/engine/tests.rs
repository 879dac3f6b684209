//! The engine on in-memory ports: each ending, and that rollbacks always run.

use std::collections::BTreeMap;

use naksha_act::sim::{SimResource, apply};
use naksha_contracts::runs::RunProgress;
use serde_json::Map;

use super::*;
use crate::memory::{MemoryAgentRuns, MemoryHalt, MemoryRuns, MemoryTelemetry, MemoryWorld, StaticHttp};
use crate::ports::ChaosMessage;
use crate::specs::builtin;

fn t() -> TenantId {
    TenantId::from_record("acme").unwrap()
}

#[derive(Default)]
struct Env {
    world: MemoryWorld,
    runs: MemoryRuns,
    agent: MemoryAgentRuns,
    telemetry: MemoryTelemetry,
    halt: MemoryHalt,
    http: StaticHttp,
}

impl Env {
    fn with_targets(names: &[&str]) -> Self {
        let env = Env::default();
        for n in names {
            let mut r = SimResource::new("deployment", 3, true, "v1");
            r.condition.chaos_target = true;
            env.world.resources.lock().unwrap().insert((t(), (*n).to_owned()), r);
        }
        env
    }

    fn ports(&self) -> Ports<'_, MemoryWorld, MemoryRuns, MemoryAgentRuns, MemoryTelemetry, MemoryHalt, StaticHttp> {
        Ports {
            world: &self.world,
            runs: &self.runs,
            agent: &self.agent,
            telemetry: &self.telemetry,
            halt: &self.halt,
            http: &self.http,
        }
    }

    fn resource(&self, name: &str) -> SimResource {
        self.world.resources.lock().unwrap()[&(t(), name.to_owned())].clone()
    }

    fn set(&self, name: &str, r: SimResource) {
        self.world.resources.lock().unwrap().insert((t(), name.to_owned()), r);
    }

    async fn start(&self, spec_id: &str, target: Option<&str>) -> Result<ChaosRun, StartError> {
        let spec = builtin().unwrap().into_iter().find(|s| s.id == spec_id).unwrap();
        let req = StartRequest { spec, target: target.map(str::to_owned), dry_run: false, by: "ada".into() };
        start(&self.world, &self.runs, &self.halt, &t(), req, Utc::now()).await
    }

    /// Steps until the run is over or `n` steps passed; the time moves by `dt` seconds a step.
    async fn steps(&self, run: &mut ChaosRun, n: usize, from: DateTime<Utc>, dt: i64) -> DateTime<Utc> {
        let mut now = from;
        for _ in 0..n {
            if !step(&self.ports(), run, now).await.unwrap() {
                break;
            }
            now += Duration::seconds(dt);
        }
        now
    }

    /// The agent noticed and healed `target` with `action` (as a run would, with its progress).
    fn agent_heals(&self, target: &str, action: &str, args: serde_json::Value, standing: bool, at: DateTime<Utc>) {
        let healed = apply(action, args.as_object().unwrap(), &self.resource(target)).unwrap();
        self.set(target, healed);
        let ts = |s: i64| stamp(at + Duration::seconds(s));
        let mut milestones = BTreeMap::new();
        milestones.insert("decide".to_owned(), ts(2));
        milestones.insert("gate".to_owned(), ts(3));
        milestones.insert("act".to_owned(), ts(9));
        let p = RunProgress {
            run_id: "agent-run-1".into(),
            signal: "deployment_unhealthy".into(),
            resource: target.into(),
            status: "succeeded".into(),
            requested_by: "cluster-warning".into(),
            signal_raised_at: Some(ts(1)),
            created_at: ts(1),
            updated_at: ts(10),
            wpk_id: Some("heal".into()),
            wpk_version: Some(1),
            milestones,
            approved_at: Some(if standing { ts(3) } else { ts(8) }),
            approved_by: Some(if standing { "scenario".into() } else { "bob".into() }),
            standing_approval: standing,
            acted_at: Some(ts(9)),
            reason: Some("acted and verified".into()),
            audit_seq: Some(1),
            trace_id: None,
        };
        self.agent.runs.lock().unwrap().push((t(), p));
    }
}

#[tokio::test]
async fn a_fault_the_agent_heals_is_recovered_with_every_figure_and_the_rollbacks_run() {
    let env = Env::with_targets(&["deployment/a", "deployment/b"]);
    let mut run = env.start("kill-pod", Some("deployment/a")).await.unwrap();
    let t0 = Utc::now();
    let now = env.steps(&mut run, 2, t0, 1).await;
    assert_eq!(run.stage, Stage::Watch);
    assert!(!env.resource("deployment/a").healthy, "the fault is in");
    assert_eq!(run.bystanders, ["deployment/b"]);
    env.steps(&mut run, 1, now, 1).await;
    assert_eq!(run.verdict, None, "nothing happened yet");
    env.agent_heals("deployment/a", "restart", serde_json::json!({}), true, now);
    env.steps(&mut run, 10, now + Duration::seconds(10), 1).await;
    assert_eq!(
        (run.verdict, run.status, run.stage),
        (Some(Verdict::Recovered), Status::Completed, Stage::Done),
        "{:?}",
        run.reason
    );
    let f = run.recovery();
    assert!(
        f.mttd_s.is_some()
            && f.time_to_decide_s.is_some()
            && f.time_to_act_s.is_some()
            && f.mttr_s.is_some()
            && f.time_to_steady_state_s.is_some(),
        "{f:?}"
    );
    assert_eq!(f.approval_wait_s, None, "a standing approval: nobody waited");
    assert_eq!(run.rollbacks.len(), 1);
    assert!(run.at(events::STEADY_AFTER_ROLLBACK).is_some());
    let a = env.resource("deployment/a");
    assert!(a.healthy && a.condition.faults.is_empty(), "the fault's record is gone: {a:?}");
    assert!(env.runs.locks.lock().unwrap().is_empty(), "the target is free again");
    assert_eq!(run.agent_runs[0].wpk.as_deref(), Some("heal"));
}

/// Found by a red end-to-end run: the agent's change heals the world a moment before its run
/// records that it acted. A step that sees the healthy target in between must not conclude
/// without the act (the run would report no time to act); it concludes once the act is read.
#[tokio::test]
async fn a_target_healed_before_the_act_is_on_record_is_recovered_once_it_is_with_every_figure() {
    let env = Env::with_targets(&["deployment/a"]);
    let mut run = env.start("kill-pod", None).await.unwrap();
    let now = env.steps(&mut run, 2, Utc::now(), 1).await;
    env.agent_heals("deployment/a", "restart", serde_json::json!({}), true, now);
    // The run's progress as it stood a moment before it recorded the act.
    let complete = env.agent.runs.lock().unwrap()[0].1.clone();
    {
        let mut runs = env.agent.runs.lock().unwrap();
        runs[0].1.acted_at = None;
        runs[0].1.milestones.remove("act");
    }
    let later = env.steps(&mut run, 3, now + Duration::seconds(10), 1).await;
    assert_eq!((run.verdict, run.stage), (None, Stage::Watch), "healthy, but the act is not on record yet");
    assert!(run.at(events::RESOURCE_HEALTHY).is_some());
    env.agent.runs.lock().unwrap()[0].1 = complete;
    env.steps(&mut run, 10, later, 1).await;
    assert_eq!(run.verdict, Some(Verdict::Recovered), "{:?}", run.reason);
    let f = run.recovery();
    assert!(f.time_to_act_s.is_some() && f.mttr_s.is_some() && f.time_to_steady_state_s.is_some(), "{f:?}");
}

#[tokio::test]
async fn a_manual_wpk_reports_the_wait_for_its_approval_separately() {
    let env = Env::with_targets(&["deployment/a"]);
    let mut run = env.start("kill-pod", None).await.unwrap();
    let now = env.steps(&mut run, 2, Utc::now(), 1).await;
    env.agent_heals("deployment/a", "restart", serde_json::json!({}), false, now);
    env.steps(&mut run, 10, now + Duration::seconds(10), 1).await;
    let f = run.recovery();
    assert_eq!(f.approval_wait_s, Some(5.0), "gate at +3 s, approved at +8 s");
    assert_eq!(run.agent_runs[0].approved_by.as_deref(), Some("bob"));
}

#[tokio::test]
async fn a_fault_nothing_heals_ends_not_recovered_naming_the_missing_stage_and_is_rolled_back() {
    let env = Env::with_targets(&["deployment/a"]);
    let mut run = env.start("crash-loop", None).await.unwrap();
    let t0 = Utc::now();
    env.steps(&mut run, 2, t0, 1).await;
    assert_eq!(env.resource("deployment/a").version, "v1-bad");
    // Past the deadline with no agent run at all.
    let late = t0 + Duration::seconds(run.spec.recovery_deadline_s as i64 + 5);
    env.steps(&mut run, 10, late, 1).await;
    assert_eq!((run.verdict, run.status), (Some(Verdict::NotRecovered), Status::Completed));
    assert!(run.reason.as_deref().unwrap().starts_with("first_anomaly never happened"), "{:?}", run.reason);
    let a = env.resource("deployment/a");
    assert!(a.healthy && a.version == "v1" && a.condition.faults.is_empty(), "rolled back: {a:?}");
    assert_eq!(run.rollbacks[0].result, "reverted what was left of the fault");
}

#[tokio::test]
async fn an_abort_or_the_kill_switch_stops_a_run_and_rolls_back() {
    for via_kill_switch in [false, true] {
        let env = Env::with_targets(&["deployment/a"]);
        let mut run = env.start("latency", None).await.unwrap();
        let now = env.steps(&mut run, 2, Utc::now(), 1).await;
        assert_eq!(env.resource("deployment/a").condition.latency_ms, 900);
        if via_kill_switch {
            env.halt.halted.lock().unwrap().insert(t(), "incident".into());
        } else {
            run.abort_requested = Some("game day over".into());
        }
        env.steps(&mut run, 10, now, 1).await;
        assert_eq!((run.verdict, run.status), (Some(Verdict::Aborted), Status::Aborted), "{via_kill_switch}");
        assert!(run.at(events::ABORTED).is_some() && run.at(events::ROLLBACKS_DONE).is_some());
        assert!(env.resource("deployment/a").healthy, "rolled back");
    }
}

#[tokio::test]
async fn a_bystander_failing_stops_the_run() {
    let env = Env::with_targets(&["deployment/a", "deployment/b"]);
    let mut run = env.start("kill-pod", Some("deployment/a")).await.unwrap();
    let now = env.steps(&mut run, 2, Utc::now(), 1).await;
    let mut b = env.resource("deployment/b");
    b.healthy = false;
    env.set("deployment/b", b);
    env.steps(&mut run, 10, now, 1).await;
    assert_eq!(run.verdict, Some(Verdict::Aborted));
    assert!(run.reason.as_deref().unwrap().contains("deployment/b"), "{:?}", run.reason);
    assert!(env.resource("deployment/a").healthy);
}

#[tokio::test]
async fn another_experiments_target_is_not_a_bystander_gone_wrong() {
    let env = Env::with_targets(&["deployment/a", "deployment/b"]);
    let mut first = env.start("latency", Some("deployment/a")).await.unwrap();
    let now = env.steps(&mut first, 2, Utc::now(), 1).await;
    assert_eq!(first.bystanders, ["deployment/b"]);
    env.runs.save(&first).await.unwrap();
    let mut second = env.start("kill-pod", Some("deployment/b")).await.unwrap();
    env.steps(&mut second, 2, now, 1).await;
    env.runs.save(&second).await.unwrap();
    assert!(!env.resource("deployment/b").healthy);
    env.steps(&mut first, 3, now, 1).await;
    assert_eq!((first.verdict, first.stage), (None, Stage::Watch), "{:?}", first.reason);
}

#[tokio::test]
async fn no_fault_goes_into_a_world_that_is_not_steady_and_a_dry_run_injects_nothing() {
    let env = Env::with_targets(&["deployment/a"]);
    let mut sick = env.resource("deployment/a");
    sick.healthy = false;
    env.set("deployment/a", sick.clone());
    let mut run = env.start("kill-pod", None).await.unwrap();
    env.steps(&mut run, 10, Utc::now(), 1).await;
    assert_eq!(run.verdict, Some(Verdict::Aborted));
    assert_eq!(env.resource("deployment/a"), sick, "nothing was injected");
    assert!(run.at(events::INJECTED).is_none() && run.at(events::ROLLBACKS_DONE).is_some());

    let env = Env::with_targets(&["deployment/a"]);
    let spec = builtin().unwrap().remove(0);
    let req = StartRequest { spec, target: None, dry_run: true, by: "ada".into() };
    let mut run = start(&env.world, &env.runs, &env.halt, &t(), req, Utc::now()).await.unwrap();
    let before = env.resource("deployment/a");
    env.steps(&mut run, 10, Utc::now(), 1).await;
    assert_eq!((run.status, run.verdict), (Status::Completed, None));
    assert_eq!(env.resource("deployment/a"), before);
    assert!(run.at(events::DRY_RUN).is_some());
}

#[tokio::test]
async fn a_run_whose_step_was_lost_repeats_it_without_a_second_fault_or_rollback() {
    let env = Env::with_targets(&["deployment/a"]);
    let mut run = env.start("cpu-spike", None).await.unwrap();
    let now = env.steps(&mut run, 1, Utc::now(), 1).await;
    // The worker injects, then dies before saving: the next delivery runs the inject step again.
    let mut lost = run.clone();
    step(&env.ports(), &mut lost, now).await.unwrap();
    step(&env.ports(), &mut run, now).await.unwrap();
    assert_eq!(env.resource("deployment/a").condition.faults.len(), 1);
    // The same for the rollback: the stop and its rollback run, and the state is lost.
    run.abort_requested = Some("stop".into());
    let mut lost = run.clone();
    step(&env.ports(), &mut lost, now).await.unwrap();
    assert_eq!(lost.rollbacks[0].result, "reverted what was left of the fault");
    step(&env.ports(), &mut run, now).await.unwrap();
    assert_eq!(run.rollbacks.len(), 1);
    assert_eq!(run.rollbacks[0].result, "nothing left to revert", "the lost step had reverted it already");
    assert!(env.resource("deployment/a").healthy);
}

#[tokio::test]
async fn a_run_starts_only_on_a_free_chaos_target_inside_the_blast_radius() {
    let env = Env::with_targets(&["deployment/a"]);
    env.set("deployment/plain", SimResource::new("deployment", 1, true, "v1"));
    assert!(matches!(env.start("kill-pod", Some("deployment/plain")).await, Err(StartError::Invalid(_))));
    assert!(matches!(env.start("kill-pod", Some("deployment/none")).await, Err(StartError::Invalid(_))));
    env.start("kill-pod", Some("deployment/a")).await.unwrap();
    assert!(
        matches!(env.start("latency", Some("deployment/a")).await, Err(StartError::Conflict(_))),
        "one run per resource"
    );
    assert!(matches!(env.start("kill-pod", None).await, Err(StartError::Conflict(_))), "the blast radius allows one");
    env.halt.halted.lock().unwrap().insert(t(), "incident".into());
    let env2 = Env::with_targets(&["deployment/a"]);
    env2.halt.halted.lock().unwrap().insert(t(), "incident".into());
    assert!(
        matches!(env2.start("kill-pod", None).await, Err(StartError::Conflict(_))),
        "a halted tenant starts no chaos"
    );
    let _ = Map::<String, serde_json::Value>::new();
}

impl Env {
    fn with_nodes(names: &[(&str, bool)]) -> Self {
        let env = Env::default();
        for (n, target) in names {
            let node = EdgeTarget {
                node_id: (*n).to_owned(),
                chaos_target: *target,
                status: "online".into(),
                last_seen: Utc::now(),
                partition_run: None,
                partition_until: None,
            };
            env.world.nodes.lock().unwrap().insert((t(), (*n).to_owned()), node);
        }
        env
    }

    fn node(&self, name: &str) -> EdgeTarget {
        self.world.nodes.lock().unwrap()[&(t(), name.to_owned())].clone()
    }

    fn edit_node(&self, name: &str, edit: impl FnOnce(&mut EdgeTarget)) {
        edit(self.world.nodes.lock().unwrap().get_mut(&(t(), name.to_owned())).unwrap());
    }

    fn execution(&self, node: &str, trigger: &str, state: &str, created: DateTime<Utc>) {
        let e = crate::ports::EdgeExecution { trigger_id: trigger.into(), state: state.into() };
        self.world.executions.lock().unwrap().push((t(), node.into(), created, e));
    }
}

#[tokio::test]
async fn a_partitioned_node_that_is_heard_again_and_loses_nothing_is_recovered() {
    let env = Env::with_nodes(&[("store-1", true), ("store-2", true), ("plain", false)]);
    assert!(
        matches!(env.start("hub-partition", Some("plain")).await, Err(StartError::Invalid(_))),
        "only nodes labelled chaos-target=true"
    );
    let mut run = env.start("hub-partition", Some("store-1")).await.unwrap();
    let t0 = run.created_at;
    env.steps(&mut run, 2, t0, 1).await;
    let n = env.node("store-1");
    assert_eq!(n.partition_run.as_deref(), Some(run.run_id.as_str()), "the partition is on the node");
    let ends = run.at(events::INJECTED).unwrap() + Duration::seconds(150);
    assert_eq!(n.partition_until, Some(ends));
    assert_eq!(run.bystanders, ["store-2"]);
    // Triggers sent during the partition wait; the hub's sweep marks the silent node stale.
    env.execution("store-1", "trg-1", "queued", t0 + Duration::seconds(10));
    env.edit_node("store-1", |n| n.status = "stale".into());
    env.steps(&mut run, 1, t0 + Duration::seconds(100), 1).await;
    assert!(run.at(events::FIRST_ANOMALY).is_some(), "the hub noticed");
    // The partition ends; the node is heard again but its result is not in yet.
    env.edit_node("store-1", |n| {
        n.status = "online".into();
        n.last_seen = ends + Duration::seconds(3);
    });
    env.steps(&mut run, 1, ends + Duration::seconds(4), 1).await;
    assert!(run.at(events::RESOURCE_HEALTHY).is_some());
    assert_eq!(run.verdict, None, "a pending result is not yet a steady state");
    env.world.executions.lock().unwrap()[0].3.state = "succeeded".into();
    env.steps(&mut run, 10, ends + Duration::seconds(8), 1).await;
    assert_eq!((run.verdict, run.status), (Some(Verdict::Recovered), Status::Completed), "{:?}", run.reason);
    let f = run.recovery();
    assert!(f.mttd_s.is_some() && f.mttr_s.is_some() && f.time_to_steady_state_s.is_some(), "{f:?}");
    assert_eq!((f.time_to_decide_s, f.time_to_act_s), (None, None), "no agent involved");
    assert_eq!(run.rollbacks[0].result, "lifted the partition");
    assert_eq!(env.node("store-1").partition_run, None);
}

#[tokio::test]
async fn a_lost_edge_result_is_not_a_recovery_and_the_partition_is_lifted_all_the_same() {
    let env = Env::with_nodes(&[("store-1", true)]);
    let mut run = env.start("hub-partition", None).await.unwrap();
    let t0 = run.created_at;
    env.steps(&mut run, 2, t0, 1).await;
    env.execution("store-1", "trg-9", "expired", t0 + Duration::seconds(5));
    let ends = run.at(events::INJECTED).unwrap() + Duration::seconds(150);
    env.edit_node("store-1", |n| n.last_seen = ends + Duration::seconds(1));
    let late = t0 + Duration::seconds(run.spec.recovery_deadline_s as i64 + 5);
    // A steady state that does not come back after the rollbacks is waited for, then reported.
    env.steps(&mut run, 10, late, 60).await;
    assert_eq!((run.verdict, run.stage), (Some(Verdict::NotRecovered), Stage::Done));
    assert!(run.reason.as_deref().unwrap().starts_with("steady_state_after never happened"), "{:?}", run.reason);
    let after = run.timeline.iter().find(|e| e.event == events::STEADY_AFTER_ROLLBACK).unwrap();
    assert!(after.detail.to_string().contains("trg-9"), "the lost trigger is named: {}", after.detail);
    assert_eq!(env.node("store-1").partition_run, None, "rolled back");
}

#[tokio::test]
async fn a_run_picks_the_target_broken_least_recently() {
    let env = Env::with_targets(&["deployment/a", "deployment/b"]);
    let mut first = env.start("kill-pod", None).await.unwrap();
    assert_eq!(first.target, "deployment/a");
    first.stage = Stage::Done;
    env.runs.save(&first).await.unwrap();
    env.runs.unlock(&t(), "deployment/a", &first.run_id).await.unwrap();
    let second = env.start("kill-pod", None).await.unwrap();
    assert_eq!(second.target, "deployment/b", "a was broken a moment ago");
}

fn kinesis(msgs: &[ChaosMessage]) -> aws_lambda_events::event::kinesis::KinesisEvent {
    let mut event = aws_lambda_events::event::kinesis::KinesisEvent::default();
    for (i, m) in msgs.iter().enumerate() {
        let mut r = aws_lambda_events::event::kinesis::KinesisEventRecord::default();
        r.kinesis.sequence_number = format!("{i}");
        r.kinesis.data.0 = serde_json::to_vec(m).unwrap();
        event.records.push(r);
    }
    event
}

#[tokio::test]
async fn a_batch_steps_every_run_puts_back_those_still_going_with_one_pause_and_counts_the_cost() {
    let env = Env::with_targets(&["deployment/a", "deployment/b", "deployment/c"]);
    let mut msgs = Vec::new();
    for (spec, target) in [("kill-pod", "deployment/a"), ("latency", "deployment/b"), ("crash-loop", "deployment/c")] {
        let run = env.start(spec, Some(target)).await.unwrap();
        msgs.push(ChaosMessage { tenant: t(), run_id: run.run_id });
    }
    msgs.insert(1, ChaosMessage { tenant: t(), run_id: "gone".into() });
    let queue = crate::memory::MemoryQueue::default();
    let began = std::time::Instant::now();
    let out = crate::worker::handle(&env.ports(), &queue, &kinesis(&msgs)).await;
    let took = began.elapsed();
    assert!(out.batch_item_failures.is_empty());
    let back: Vec<String> = queue.sent.lock().unwrap().iter().map(|m| m.run_id.clone()).collect();
    let live: Vec<String> = msgs.iter().filter(|m| m.run_id != "gone").map(|m| m.run_id.clone()).collect();
    assert_eq!(back, live, "each live run once, in order; the unknown one dropped");
    assert!(took < crate::worker::TICK * 3, "one pause for the batch, not one per live run: {took:?}");
    for id in &live {
        let run = env.runs.load(&t(), id).await.unwrap().unwrap();
        assert_eq!((run.steps, run.stage), (1, Stage::Inject), "{id}: one step, counted");
    }
}
