//! D.5 end to end: chaos experiments on the local stack, each in its own tenant seeded with
//! `POST /sim/scenarios/{name}`. A fault goes into the simulated world; the world reports it
//! through the real ingest path, the detector and insight-stream raise a signal, the agent heals
//! the resource with a signed WPK; the orchestrator only watches, rolls back and reports the
//! figures. Each ending is shown to run the rollbacks and leave the world as it was.
//!
//! Most of a run is waiting on the real clock (see docs/chaos.md), so the experiments run side by
//! side as tasks of one test (the test harness would run only two at a time on a 2-core machine);
//! each failure is reported by name.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::time::Duration;

use naksha_e2e::edge::chaos_pair;
use naksha_e2e::{Stack, Team, eventually};
use serde_json::{Value, json};

/// Long enough for any run to reach its deadline (240 s for the built-in specs) and roll back.
const RUN_TIMEOUT: Duration = Duration::from_secs(480);

async fn seed(stack: &Stack, team: &Team, scenario: &str) -> Value {
    let r = stack.post_json(&format!("/sim/scenarios/{scenario}"), Some(&team.admin), &json!({})).await;
    assert_eq!(r.status, 201, "{}", r.text);
    r.json()
}

async fn start(stack: &Stack, team: &Team, body: Value) -> Value {
    let r = stack.post_json("/chaos/run", Some(&team.admin), &body).await;
    assert_eq!(r.status, 202, "{}", r.text);
    r.json()
}

async fn chaos_run(stack: &Stack, team: &Team, id: &str) -> Value {
    let r = stack.get(&format!("/chaos/runs/{id}"), Some(&team.operator)).await;
    assert_eq!(r.status, 200, "{}", r.text);
    r.json()
}

async fn until(stack: &Stack, team: &Team, id: &str, what: &str, check: impl Fn(&Value) -> bool) -> Value {
    eventually(&format!("chaos run {id}: {what}"), RUN_TIMEOUT, || async {
        let run = chaos_run(stack, team, id).await;
        check(&run).then_some(run)
    })
    .await
}

async fn finished(stack: &Stack, team: &Team, id: &str) -> Value {
    until(stack, team, id, "done", |r| r["stage"] == "done").await
}

fn events(run: &Value) -> Vec<&str> {
    run["timeline"].as_array().unwrap().iter().map(|e| e["event"].as_str().unwrap()).collect()
}

fn has(run: &Value, event: &str) -> bool {
    events(run).contains(&event)
}

/// What a resource looks like to a steady-state check: the fields a fault changes.
fn shape(state: &Value) -> Value {
    json!({
        "healthy": state["healthy"], "replicas": state["replicas"], "version": state["version"],
        "condition": state["condition"],
    })
}

/// Healthy, and no fault of any chaos run left in the resource.
fn clean(state: &Value) -> bool {
    state["healthy"] == true && state["condition"]["faults"].as_object().is_none_or(|f| f.is_empty())
}

/// Every run, whatever its ending: the rollbacks ran, then the steady state was checked again.
fn assert_rolled_back(run: &Value) {
    let rollbacks = run["rollbacks"].as_array().unwrap();
    assert!(!rollbacks.is_empty(), "no rollback recorded: {run}");
    assert!(rollbacks.iter().all(|r| r["result"].as_str().is_some()), "{run}");
    assert!(has(run, "rollbacks_done"), "{:?}", events(run));
    assert!(
        has(run, "steady_state_after_rollback"),
        "the steady state is checked after the rollbacks: {:?}",
        events(run)
    );
    assert_eq!(run["status"], if run["verdict"] == "aborted" { "aborted" } else { "completed" }, "{run}");
}

fn figure(run: &Value, name: &str) -> f64 {
    let v = run["recovery"][name].as_f64().unwrap_or_else(|| panic!("{name} missing: {}", run["recovery"]));
    assert!(v >= 0.0, "{name} = {v}");
    v
}

async fn every_spec_with_an_auto_wpk_recovers_without_a_human_and_reports_every_figure() {
    let stack = Stack::connect().await;
    let team = stack.team("d5auto");
    seed(&stack, &team, "default").await;
    let expected = [
        ("kill-pod", "heal-kill-pod"),
        ("crash-loop", "heal-crash-loop"),
        ("latency", "heal-latency"),
        ("dependency-throttle", "heal-dependency-throttle"),
    ];
    // Four experiments at once: each goes to its own chaos target (one run per resource).
    let mut started = BTreeMap::new();
    for (spec, wpk) in expected {
        let r = start(&stack, &team, json!({"spec": spec})).await;
        let target = r["target"].as_str().unwrap().to_owned();
        assert!(target.starts_with("deployment/") && target != "deployment/ledger", "{r}");
        started.insert(spec, (r["run_id"].as_str().unwrap().to_owned(), target, wpk));
    }
    let targets: std::collections::BTreeSet<&String> = started.values().map(|(_, t, _)| t).collect();
    assert_eq!(targets.len(), 4, "one run per resource: {started:?}");
    for (spec, (id, target, wpk)) in &started {
        let run = finished(&stack, &team, id).await;
        eprintln!("{spec}: {}", run["recovery"]);
        assert_eq!(run["verdict"], "recovered", "{spec}: {run}");
        assert_eq!(run["recovery"]["clock"], "real");
        for name in ["mttd_s", "time_to_decide_s", "time_to_act_s", "mttr_s", "time_to_steady_state_s"] {
            figure(&run, name);
        }
        assert!(run["recovery"]["approval_wait_s"].is_null(), "no one approved anything: {run}");
        assert!(figure(&run, "mttd_s") <= figure(&run, "mttr_s"));
        assert!(
            run["cost"]["steps"].as_u64().unwrap() >= 4 && run["cost"]["worker_ms"].as_u64().unwrap() > 0,
            "{}",
            run["cost"]
        );
        assert!(figure(&run, "mttr_s") <= figure(&run, "time_to_steady_state_s"));
        // The agent healed it with the spec's WPK, under a standing approval: no human.
        let healer = run["agent_runs"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["wpk"] == *wpk && a["status"] == "succeeded")
            .unwrap_or_else(|| panic!("{spec}: no succeeded agent run with {wpk}: {}", run["agent_runs"]));
        assert_eq!(healer["standing_approval"], true, "{healer}");
        assert!(healer["audit_seq"].as_u64().is_some(), "the agent's act is in the audit chain: {healer}");
        let agent =
            stack.get(&format!("/agent/status/{}", healer["run_id"].as_str().unwrap()), Some(&team.operator)).await;
        assert_eq!(agent.json()["status"], "succeeded", "{}", agent.text);
        assert_rolled_back(&run);
        let state = stack.sim_state(&team, target).await;
        assert!(clean(&state), "{spec}: healthy and no fault left: {state}");
    }
    // The listing shows all four with their figures.
    let list = stack.get("/chaos/runs", Some(&team.operator)).await.json();
    assert_eq!(list["count"], 4, "{list}");
    assert!(
        list["runs"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["verdict"] == "recovered" && r["recovery"]["mttr_s"].as_f64().is_some())
    );
    // The bystander was never touched.
    let ledger = stack.sim_state(&team, "deployment/ledger").await;
    assert!(clean(&ledger), "{ledger}");
}

async fn a_manual_wpk_recovers_after_an_approval_and_the_wait_is_reported_apart() {
    let stack = Stack::connect().await;
    let team = stack.team("d5manual");
    seed(&stack, &team, "default").await;
    let r = start(&stack, &team, json!({"spec_id": "cpu-spike", "target": "deployment/search"})).await;
    let id = r["run_id"].as_str().unwrap().to_owned();
    assert_eq!(r["target"], "deployment/search");
    let waiting = until(&stack, &team, &id, "an agent run awaiting approval", |r| {
        r["agent_runs"].as_array().unwrap().iter().any(|a| a["status"] == "awaiting_approval")
    })
    .await;
    let agent_id = waiting["agent_runs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["status"] == "awaiting_approval")
        .unwrap()["run_id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(has(&waiting, "awaiting_approval"), "{:?}", events(&waiting));
    // A person looks at the plan for a while, then approves exactly that plan.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let agent = stack.get(&format!("/agent/status/{agent_id}"), Some(&team.operator)).await.json();
    assert_eq!(agent["wpk"]["id"], "heal-cpu-saturation", "{agent}");
    let sha = agent["plan"]["sha256"].as_str().or(agent["plan_sha256"].as_str()).unwrap().to_owned();
    let ok = stack.approve(&team, &agent_id, &sha).await;
    assert_eq!(ok.status, 202, "{}", ok.text);
    let run = finished(&stack, &team, &id).await;
    assert_eq!(run["verdict"], "recovered", "{run}");
    let wait = figure(&run, "approval_wait_s");
    assert!(wait >= 3.0, "the wait for the person is its own figure: {}", run["recovery"]);
    assert!(figure(&run, "time_to_act_s") >= wait, "acting came after the approval: {}", run["recovery"]);
    let healer = run["agent_runs"].as_array().unwrap().iter().find(|a| a["run_id"] == agent_id.as_str()).unwrap();
    assert_eq!((healer["standing_approval"].as_bool(), healer["approved_by"].as_str()), (Some(false), Some("bob")));
    assert_rolled_back(&run);
    // The scale-out stays (it is the agent's fix); the fault the run put in is gone.
    let state = stack.sim_state(&team, "deployment/search").await;
    assert!(clean(&state) && state["replicas"] == 6, "{state}");
}

async fn a_fault_nothing_heals_ends_not_recovered_naming_the_missing_stage_with_the_world_restored() {
    let stack = Stack::connect().await;
    let team = stack.team("d5bare");
    seed(&stack, &team, "bare").await;
    // The tenant's own spec: a kill-pod with a short deadline.
    let spec = json!({
        "id": "kill-pod-quick", "title": "kill a pod, 100 s to heal",
        "fault": {"kind": "kill-pod", "params": {"pods": 2}},
        "blast_radius": {"kind": "deployment", "count": 1},
        "steady_state": [{"type": "resource-health"}],
        "recovery_deadline_s": 100, "rollbacks": [{"type": "revert-fault"}]
    });
    let added = stack.post_json("/chaos/specs", Some(&team.admin), &spec).await;
    assert_eq!(added.status, 201, "{}", added.text);
    let r = start(&stack, &team, json!({"spec": "kill-pod-quick", "target": "deployment/orders"})).await;
    let id = r["run_id"].as_str().unwrap().to_owned();
    let before = shape(&stack.sim_state(&team, "deployment/orders").await);
    let hit = until(&stack, &team, &id, "the fault in", |r| has(r, "injected")).await;
    assert!(!has(&hit, "rollbacks_done"));
    let during = stack.sim_state(&team, "deployment/orders").await;
    assert_eq!(during["healthy"], false, "the fault is real in the world: {during}");
    assert!(during["condition"]["ready"].as_u64().unwrap() < during["replicas"].as_u64().unwrap(), "{during}");

    let run = finished(&stack, &team, &id).await;
    assert_eq!(run["verdict"], "not_recovered", "{run}");
    // No WPK heals it: the system noticed, but nothing was chosen.
    assert!(has(&run, "first_anomaly"), "the fault was noticed: {:?}", events(&run));
    assert!(!has(&run, "wpk_chosen"), "{:?}", events(&run));
    let reason = run["reason"].as_str().unwrap();
    assert!(
        reason.contains("wpk_chosen") || reason.contains("agent_run_started"),
        "the reason names the stage: {reason}"
    );
    assert!(run["recovery"]["mttr_s"].is_null() && run["recovery"]["mttd_s"].as_f64().is_some(), "{}", run["recovery"]);
    assert_rolled_back(&run);
    let after = stack.sim_state(&team, "deployment/orders").await;
    assert_eq!(shape(&after), before, "the rollback restores the world");
    assert_eq!(after["healthy"], true);
}

async fn the_kill_switch_aborts_a_run_rolls_back_and_starts_no_chaos_while_halted() {
    let stack = Stack::connect().await;
    let team = stack.team("d5halt");
    seed(&stack, &team, "default").await;
    let r = start(&stack, &team, json!({"spec": "crash-loop", "target": "deployment/payments"})).await;
    let id = r["run_id"].as_str().unwrap().to_owned();
    until(&stack, &team, &id, "the fault in", |r| has(r, "injected")).await;
    let halt = stack.post_json("/agent/halt", Some(&team.admin), &json!({"reason": "game day over"})).await;
    assert_eq!(halt.status, 200, "{}", halt.text);
    let run = finished(&stack, &team, &id).await;
    assert_eq!((run["verdict"].as_str(), run["status"].as_str()), (Some("aborted"), Some("aborted")), "{run}");
    assert!(run["reason"].as_str().unwrap().contains("kill switch"), "{}", run["reason"]);
    assert!(has(&run, "aborted"));
    assert_rolled_back(&run);
    let after = stack.sim_state(&team, "deployment/payments").await;
    assert!(clean(&after), "whatever the agent did or not, the fault is reverted: {after}");
    // A halted tenant starts no chaos, and nothing is written.
    let refused = stack.post_json("/chaos/run", Some(&team.admin), &json!({"spec": "kill-pod"})).await;
    let problem = refused.assert_problem(409);
    assert!(problem["detail"].as_str().unwrap().contains("halt"), "{problem}");
    assert_eq!(stack.get("/chaos/runs", Some(&team.operator)).await.json()["count"], 1);
    assert_eq!(stack.post("/agent/resume", Some(&team.admin), "").await.status, 200);
}

async fn an_abort_rolls_back_and_a_dry_run_injects_nothing() {
    let stack = Stack::connect().await;
    let team = stack.team("d5abort");
    seed(&stack, &team, "default").await;
    // Dry run: what would go where, nothing injected.
    let before = shape(&stack.sim_state(&team, "deployment/checkout").await);
    let dry = start(&stack, &team, json!({"spec": "latency", "target": "deployment/checkout", "dry_run": true})).await;
    let dry = finished(&stack, &team, dry["run_id"].as_str().unwrap()).await;
    assert!(has(&dry, "dry_run") && !has(&dry, "injected"), "{:?}", events(&dry));
    let plan = &dry["timeline"].as_array().unwrap().iter().find(|e| e["event"] == "dry_run").unwrap()["detail"];
    assert!(plan.to_string().contains("deployment/checkout") && plan.to_string().contains("latency"), "{plan}");
    assert_eq!(shape(&stack.sim_state(&team, "deployment/checkout").await), before, "a dry run changes nothing");
    // A real run, aborted once the fault is in: rolled back at once.
    let r = start(&stack, &team, json!({"spec": "latency", "target": "deployment/checkout"})).await;
    let id = r["run_id"].as_str().unwrap().to_owned();
    until(&stack, &team, &id, "the fault in", |r| has(r, "injected")).await;
    let a = stack
        .post_json(&format!("/chaos/runs/{id}/abort"), Some(&team.admin), &json!({"reason": "pager went off"}))
        .await;
    assert_eq!(a.status, 202, "{}", a.text);
    let run = finished(&stack, &team, &id).await;
    assert_eq!(run["verdict"], "aborted", "{run}");
    assert!(run["reason"].as_str().unwrap().contains("pager went off (by ada)"), "{}", run["reason"]);
    assert_rolled_back(&run);
    let after = stack.sim_state(&team, "deployment/checkout").await;
    assert!(clean(&after), "{after}");
    // Aborting a finished run is a conflict, and changes nothing.
    stack.post_json(&format!("/chaos/runs/{id}/abort"), Some(&team.admin), &json!({})).await.assert_problem(409);
}

/// The chaos worker dies mid-run (right after saving a step, before putting its message back):
/// the invocation fails, the stream delivers the batch again, and the run carries on to its
/// rollbacks. (The worker dies by panicking through the runtime's invocation: `cargo lambda
/// watch` does not start a new instance after one is SIGKILLed mid-invocation, see docs/chaos.md.)
async fn a_worker_killed_mid_run_resumes_and_rolls_back() {
    let stack = Stack::connect().await;
    let team = stack.team("d5crash");
    seed(&stack, &team, "default").await;
    let r = start(&stack, &team, json!({"spec": "kill-pod", "target": "deployment/orders"})).await;
    let id = r["run_id"].as_str().unwrap().to_owned();
    until(&stack, &team, &id, "the fault in", |r| has(r, "injected")).await;
    // The next worker to save a step of this run dies before it puts the message back.
    let crash_dir = stack.paths.root.join(".local/crash");
    std::fs::create_dir_all(&crash_dir).unwrap();
    std::fs::write(crash_dir.join(&id), b"die once").unwrap();
    eventually("the worker to crash", Duration::from_secs(60), || async {
        (!crash_dir.join(&id).exists()).then_some(())
    })
    .await;
    let run = finished(&stack, &team, &id).await;
    assert_eq!(run["verdict"], "recovered", "{run}");
    assert_rolled_back(&run);
    let state = stack.sim_state(&team, "deployment/orders").await;
    assert!(clean(&state), "{state}");
}

/// `hub-partition` with real edge-node processes: the hub stops answering one node; triggers sent
/// to it meanwhile are delivered and their results arrive once it is heard again: none is lost.
async fn a_hub_partition_with_running_edge_nodes_loses_no_result() {
    let stack = Stack::connect().await;
    let root = stack.paths.root.clone();
    let team = stack.team("d5edge");
    let (mut target, mut other) = chaos_pair(&stack, &team).await;
    let spec = json!({
        "id": "hub-partition-quick", "title": "the hub ignores a node for 20 s",
        "fault": {"kind": "hub-partition", "params": {"duration_s": 20}},
        "blast_radius": {"kind": "edge-node", "count": 1},
        "steady_state": [{"type": "resource-health"}, {"type": "edge-results"}],
        "recovery_deadline_s": 150, "rollbacks": [{"type": "revert-fault"}]
    });
    let added = stack.post_json("/chaos/specs", Some(&team.admin), &spec).await;
    assert_eq!(added.status, 201, "{}", added.text);
    let r = start(&stack, &team, json!({"spec": "hub-partition-quick"})).await;
    assert_eq!(r["target"], "store-x", "only the node labelled chaos-target=true: {r}");
    let id = r["run_id"].as_str().unwrap().to_owned();
    until(&stack, &team, &id, "the partition in", |r| has(r, "injected")).await;
    // While partitioned: the hub refuses the node, and triggers to it wait.
    let node = stack.get("/federation/nodes/store-x", Some(&team.operator)).await.json();
    assert!(node["partitioned_until"].as_str().is_some(), "{node}");
    let mut triggers = Vec::new();
    for _ in 0..3 {
        let t = stack
            .post_json(
                "/federation/triggers",
                Some(&team.admin),
                &json!({"wpk": {"id": "restart-edge"}, "target": {"node_id": "store-x"}, "params": {"resource": "deployment/pos"}}),
            )
            .await;
        assert_eq!(t.status, 202, "{}", t.text);
        triggers.push(t.json()["trigger_id"].as_str().unwrap().to_owned());
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    let queued = stack.get(&format!("/federation/triggers/{}", triggers[0]), Some(&team.operator)).await.json();
    assert_ne!(queued["executions"][0]["state"], "succeeded", "nothing reaches a partitioned node: {queued}");
    let run = finished(&stack, &team, &id).await;
    assert_eq!(run["verdict"], "recovered", "{run}");
    assert!(figure(&run, "mttr_s") >= 15.0, "recovery came after the partition: {}", run["recovery"]);
    assert_rolled_back(&run);
    for t in &triggers {
        let view = stack.get(&format!("/federation/triggers/{t}"), Some(&team.operator)).await.json();
        assert_eq!(view["executions"][0]["state"], "succeeded", "no result lost: {view}");
    }
    let status = target.status(&root);
    assert_eq!(status["world"][0]["doc"]["restarts"], 3, "each trigger acted once: {status}");
    let node = stack.get("/federation/nodes/store-x", Some(&team.operator)).await.json();
    assert!(node["partitioned_until"].is_null() && node["status"] == "online", "{node}");
    target.terminate();
    other.terminate();
}

/// The game day, fired locally as its schedule would fire it (`make gameday` does the same): it
/// starts one run per named spec in the tenant, each on its own target, and they recover.
async fn a_game_day_fired_locally_starts_its_runs_and_they_recover() {
    let stack = Stack::connect().await;
    let team = stack.team("d5gameday");
    seed(&stack, &team, "default").await;
    let event = json!({
        "version": "0", "id": "gameday", "detail-type": "Scheduled Event", "source": "aws.events",
        "account": "000000000000", "time": "2026-12-04T10:00:00Z", "region": "us-east-1", "resources": [],
        "detail": {"tenant": team.tenant, "specs": ["latency", "dependency-throttle", "hub-partition"]}
    });
    let (status, out) = stack.invoke("chaos-gameday", &event).await;
    assert_eq!(status, 200, "{out}");
    let started = out["started"].as_array().unwrap();
    assert_eq!(started.len(), 2, "{out}");
    let skipped = out["skipped"].as_array().unwrap();
    assert!(skipped.len() == 1 && skipped[0]["spec"] == "hub-partition", "no edge node to partition here: {out}");
    let targets: std::collections::BTreeSet<&str> = started.iter().map(|s| s["target"].as_str().unwrap()).collect();
    assert_eq!(targets.len(), 2, "each on its own target: {out}");
    for s in started {
        let run = finished(&stack, &team, s["run_id"].as_str().unwrap()).await;
        assert_eq!(run["verdict"], "recovered", "{run}");
        assert_eq!(run["created_by"], "game-day", "{run}");
        assert_rolled_back(&run);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn chaos_experiments_end_to_end() {
    let cases = [
        (
            "every_spec_with_an_auto_wpk_recovers_without_a_human_and_reports_every_figure",
            tokio::spawn(every_spec_with_an_auto_wpk_recovers_without_a_human_and_reports_every_figure()),
        ),
        (
            "a_manual_wpk_recovers_after_an_approval_and_the_wait_is_reported_apart",
            tokio::spawn(a_manual_wpk_recovers_after_an_approval_and_the_wait_is_reported_apart()),
        ),
        (
            "a_fault_nothing_heals_ends_not_recovered_naming_the_missing_stage_with_the_world_restored",
            tokio::spawn(a_fault_nothing_heals_ends_not_recovered_naming_the_missing_stage_with_the_world_restored()),
        ),
        (
            "the_kill_switch_aborts_a_run_rolls_back_and_starts_no_chaos_while_halted",
            tokio::spawn(the_kill_switch_aborts_a_run_rolls_back_and_starts_no_chaos_while_halted()),
        ),
        (
            "an_abort_rolls_back_and_a_dry_run_injects_nothing",
            tokio::spawn(an_abort_rolls_back_and_a_dry_run_injects_nothing()),
        ),
        (
            "a_worker_killed_mid_run_resumes_and_rolls_back",
            tokio::spawn(a_worker_killed_mid_run_resumes_and_rolls_back()),
        ),
        (
            "a_hub_partition_with_running_edge_nodes_loses_no_result",
            tokio::spawn(a_hub_partition_with_running_edge_nodes_loses_no_result()),
        ),
        (
            "a_game_day_fired_locally_starts_its_runs_and_they_recover",
            tokio::spawn(a_game_day_fired_locally_starts_its_runs_and_they_recover()),
        ),
    ];
    let mut failed = Vec::new();
    for (name, task) in cases {
        if let Err(e) = task.await {
            let why = e.try_into_panic().ok().and_then(|p| {
                p.downcast_ref::<String>().cloned().or_else(|| p.downcast_ref::<&str>().map(|s| (*s).to_owned()))
            });
            failed.push(format!("{name}: {}", why.unwrap_or_default().chars().take(2000).collect::<String>()));
        }
    }
    assert!(failed.is_empty(), "{} of the chaos experiments failed:\n{}", failed.len(), failed.join("\n"));
}
