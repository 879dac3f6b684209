//! The `naksha` CLI, the built binary, against the running stack: the README's walk-through
//! (ingest a NAB series, a run watched, approved after its plan is shown, the audit verified, a
//! model trained and its signature checked against KMS), a chaos experiment followed live, and
//! exit codes that mean something (0 ok, 1 failed, 2 usage, 3 refused by the API).
//!
//! Named to run after the `d*` suites (cargo runs test binaries in name order): the scenarios
//! seeded here are chaos targets, which the simulated world's exporter reports every minute, and
//! the d1–d4 bad-input tests compare snapshots of every table.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;
use std::time::Duration;

use assert_cmd::Command;
use naksha_e2e::{Stack, Team, daily, eventually, n, s};
use serde_json::Value;

fn naksha(stack: &Stack, token: &str) -> Command {
    let bin = stack.paths.root.join("target/debug/naksha");
    assert!(bin.exists(), "{} is not built (make e2e builds every binary)", bin.display());
    let mut cmd = Command::new(bin);
    cmd.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("NAKSHA_API", naksha_e2e::API_URL)
        .env("NAKSHA_TOKEN", token)
        .env("HOME", std::env::temp_dir())
        .timeout(Duration::from_secs(240));
    cmd
}

struct Ran {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Ran {
    fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}\n{}", self.stdout, self.stderr))
    }
}

fn run(cmd: &mut Command) -> Ran {
    let out = cmd.output().unwrap();
    Ran {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn ok(cmd: &mut Command) -> Ran {
    let r = run(cmd);
    assert_eq!(r.code, 0, "stdout:\n{}\nstderr:\n{}", r.stdout, r.stderr);
    r
}

/// A CSV in NAB's shape (`timestamp,value`, 5-minute steps, a daily cycle), `rows` rows.
fn nab_csv(name: &str, rows: usize) -> PathBuf {
    let start = chrono::DateTime::parse_from_rfc3339("2026-11-01T00:00:00Z").unwrap();
    let mut text = String::from("timestamp,value\n");
    for i in 0..rows {
        let t = start + chrono::Duration::minutes(5 * i as i64);
        text.push_str(&format!("{},{:.3}\n", t.format("%Y-%m-%d %H:%M:%S"), daily(5 * i as i64, 40.0, 10.0, 1.0)));
    }
    let path = std::env::temp_dir().join(format!("{name}.csv"));
    std::fs::write(&path, text).unwrap();
    path
}

async fn seeded(stack: &Stack, prefix: &str) -> Team {
    let team = stack.team(prefix);
    ok(naksha(stack, &team.admin).args(["sim", "scenario", "default"]));
    team
}

#[tokio::test]
async fn the_walk_through_with_the_cli_alone() {
    let stack = Stack::connect().await;
    let team = seeded(&stack, "cli").await;

    // Ingest a NAB series: every row is counted in the aggregates.
    let rows = 300;
    let file = nab_csv(&team.tenant, rows);
    let ingested = ok(naksha(&stack, &team.operator)
        .args(["-o", "json", "ingest"])
        .arg(&file)
        .args(["--source", "nab", "--batch", "100"]))
    .json();
    assert_eq!(ingested["accepted"].as_u64(), Some(rows as u64), "{ingested}");
    assert_eq!(ingested["requests"].as_u64(), Some(rows.div_ceil(100) as u64), "batches of 100");
    eventually("every ingested row in the aggregates", Duration::from_secs(240), || async {
        // The scenario seeded telemetry of its own: count only the series ingested here.
        let aggregates = stack.aggregates_of(&team.tenant).await;
        let sum: f64 = aggregates.iter().filter(|i| s(i, "source") == "nab").map(|i| n(i, "count")).sum();
        (sum == rows as f64).then_some(())
    })
    .await;

    // A run on a manual WPK: watched until it awaits approval.
    let started = ok(naksha(&stack, &team.operator).args([
        "-o",
        "json",
        "runs",
        "start",
        "--signal",
        "cpu_saturation",
        "--resource",
        "deployment/payments",
    ]))
    .json();
    let run_id = started["run_id"].as_str().unwrap().to_owned();
    let watched = ok(naksha(&stack, &team.operator).args(["runs", "watch", &run_id, "--until", "awaiting_approval"]));
    for expected in ["observe", "decide", "plan", "gate", "awaiting approval of plan"] {
        assert!(watched.stdout.contains(expected), "{expected} not shown:\n{}", watched.stdout);
    }
    let listed = ok(naksha(&stack, &team.operator).args(["runs", "list", "--status", "awaiting_approval"]));
    assert!(listed.stdout.starts_with("RUN") && listed.stdout.contains(&run_id), "{}", listed.stdout);

    // Approve: the plan is shown first; answering no sends nothing.
    let refused = run(naksha(&stack, &team.approver)
        .args(["runs", "approve", &run_id, "-j", "INC-7: scale out"])
        .write_stdin("n\n"));
    assert_eq!(refused.code, 1, "{}", refused.stderr);
    assert!(
        refused.stderr.contains("heal-cpu-saturation@1") && refused.stderr.contains("replicas 3→6"),
        "{}",
        refused.stderr
    );
    let status = stack.get(&format!("/agent/status/{run_id}"), Some(&team.operator)).await.json();
    assert_eq!(
        (status["status"].as_str(), status["approval"].is_null()),
        (Some("awaiting_approval"), true),
        "{status}"
    );
    ok(naksha(&stack, &team.approver).args(["runs", "approve", &run_id, "-j", "INC-7: scale out"]).write_stdin("y\n"));
    let done = ok(naksha(&stack, &team.operator).args(["runs", "watch", &run_id]));
    assert!(done.stdout.contains("act ") && done.stdout.contains("→ succeeded"), "{}", done.stdout);
    let shown = ok(naksha(&stack, &team.operator).args(["-o", "json", "runs", "show", &run_id])).json();
    assert_eq!(shown["audit"][0]["approver"], "bob");
    assert_eq!(shown["audit"][0]["justification"], "INC-7: scale out");
    // A second approval is refused by the API: the run no longer awaits one.
    let again = run(naksha(&stack, &team.approver).args(["runs", "approve", &run_id, "-j", "x", "--yes"]));
    assert_eq!(again.code, 3, "{}", again.stderr);

    // The audit chain checks out here and on the server.
    let verified = ok(naksha(&stack, &team.operator).args(["-o", "json", "audit", "verify"])).json();
    assert_eq!((verified["verified"].as_bool(), verified["records"].as_u64()), (Some(true), Some(1)), "{verified}");

    // A model trained (progress followed to the end) and its signature checked against KMS.
    let job = ok(naksha(&stack, &team.admin).args(["-o", "json", "models", "train", "--wait"])).json();
    assert_eq!(job["status"], "succeeded", "{job}");
    let model = job["result"]["model_id"].as_str().unwrap().to_owned();
    let kms = |cmd: &mut Command| {
        cmd.env("AWS_ENDPOINT_URL", "http://127.0.0.1:4566")
            .env("AWS_ACCESS_KEY_ID", "test")
            .env("AWS_SECRET_ACCESS_KEY", "test")
            .env("AWS_REGION", "us-east-1");
    };
    let mut verify = naksha(&stack, &team.operator);
    kms(&mut verify);
    let checked = ok(verify.args(["-o", "json", "models", "verify", &model])).json();
    assert_eq!(checked["verified"], true, "{checked}");
    // Against another key (the WPK signing key) it does not verify: exit 1.
    let mut wrong = naksha(&stack, &team.operator);
    kms(&mut wrong);
    let r = run(wrong.args(["models", "verify", &model, "--kms-key", "alias/naksha/wpk-signing"]));
    assert_eq!(r.code, 1, "{}\n{}", r.stdout, r.stderr);
    assert!(r.stdout.contains("NOT verified"), "{}", r.stdout);
}

#[tokio::test]
async fn a_chaos_experiment_followed_live_ends_with_its_recovery_times() {
    let stack = Stack::connect().await;
    let team = seeded(&stack, "cli-chaos").await;
    let r = ok(naksha(&stack, &team.admin).args(["chaos", "run", "kill-pod", "--wait"]));
    for expected in ["injected", "first_anomaly", "acted", "steady_state_after", ": recovered", "MTTD", "MTTR"] {
        assert!(r.stdout.contains(expected), "{expected} not shown:\n{}", r.stdout);
    }
    let runs = ok(naksha(&stack, &team.operator).args(["-o", "json", "chaos", "list"])).json();
    assert_eq!(runs["runs"][0]["verdict"], "recovered", "{runs}");
}

#[tokio::test]
async fn exit_codes_and_errors_mean_something() {
    let stack = Stack::connect().await;
    let team = stack.team("cli-err");
    let other = stack.team("cli-err-other");

    // 3: refused by the API, shown as one line naming the status.
    let mut anonymous = naksha(&stack, "");
    anonymous.env_remove("NAKSHA_TOKEN");
    let r = run(anonymous.args(["runs", "list"]));
    assert_eq!(r.code, 3, "{}", r.stderr);
    assert!(r.stderr.starts_with("naksha: refused: 401 ") && r.stderr.trim_end().lines().count() == 1, "{}", r.stderr);
    let wpk = std::env::temp_dir().join(format!("{}-wpk.json", team.tenant));
    std::fs::write(&wpk, r#"{"id":"restart","version":1,"title":"Restart","match":{"signals":["down"]},"steps":[{"adapter":"sim","action":"restart"}]}"#).unwrap();
    let r = run(naksha(&stack, &team.operator).args(["wpk", "register"]).arg(&wpk));
    assert_eq!(r.code, 3, "an operator cannot register a WPK: {}", r.stderr);
    assert!(r.stderr.contains("403"), "{}", r.stderr);
    let registered = ok(naksha(&stack, &team.admin).args(["-o", "json", "wpk", "register"]).arg(&wpk)).json();
    assert_eq!(registered["version"], 1);
    let r = run(naksha(&stack, &other.operator).args(["wpk", "show", "restart"]));
    assert_eq!(r.code, 3, "another tenant's WPK is not found: {}", r.stderr);
    assert!(r.stderr.contains("404"), "{}", r.stderr);

    // Ingest: the events the API refuses are named by line; exactly the others are written.
    let events = std::env::temp_dir().join(format!("{}-events.jsonl", team.tenant));
    std::fs::write(
        &events,
        "{\"source\":\"a\",\"name\":\"b\",\"value\":1}\n{\"source\":\"a\",\"name\":\"b\",\"value\":\"high\"}\n{\"source\":\"a\",\"name\":\"b\",\"value\":3}\nnot json\n",
    )
    .unwrap();
    let r = run(naksha(&stack, &team.operator).args(["-o", "json", "ingest"]).arg(&events));
    assert_eq!(r.code, 3, "{}", r.stderr);
    let report = r.json();
    assert_eq!(report["accepted"], 2, "{report}");
    let lines: Vec<u64> = report["rejected"].as_array().unwrap().iter().map(|x| x["line"].as_u64().unwrap()).collect();
    assert_eq!(lines, [2, 4], "{report}");
    eventually("the two good events in the aggregates", Duration::from_secs(90), || async {
        let sum: f64 = stack.aggregates_of(&team.tenant).await.iter().map(|i| n(i, "count")).sum();
        (sum == 2.0).then_some(())
    })
    .await;

    // The kill switch: an admin's, not an operator's; the stack sees it.
    assert_eq!(run(naksha(&stack, &team.operator).args(["halt", "-r", "INC-9"])).code, 3);
    ok(naksha(&stack, &team.admin).args(["halt", "-r", "INC-9"]));
    let nodes = stack.get("/federation/nodes", Some(&team.operator)).await.json();
    assert_eq!(nodes["halted"], true, "{nodes}");
    ok(naksha(&stack, &team.admin).arg("resume"));
    let nodes = stack.get("/federation/nodes", Some(&team.operator)).await.json();
    assert_eq!(nodes["halted"], false, "{nodes}");

    // A simulated resource written and read back through its path.
    ok(naksha(&stack, &team.admin).args(["sim", "put", "deployment/web", "--healthy", "false", "--replicas", "2"]));
    let state = ok(naksha(&stack, &team.admin).args(["-o", "json", "sim", "get", "deployment/web"])).json();
    assert_eq!(
        (state["state"]["healthy"].as_bool(), state["state"]["replicas"].as_u64()),
        (Some(false), Some(2)),
        "{state}"
    );

    // 2: usage.
    assert_eq!(run(naksha(&stack, &team.operator).arg("runs")).code, 2);
    assert_eq!(run(naksha(&stack, &team.operator).args(["ingest", "/no/such/file.csv"])).code, 2);
    assert_eq!(run(naksha(&stack, &team.operator).args(["runs", "list", "--output", "yaml"])).code, 2);

    // 1: the API cannot be reached.
    let r = run(naksha(&stack, &team.operator).args(["--api", "http://127.0.0.1:9", "--retries", "0", "health"]));
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(r.stderr.contains("no answer from http://127.0.0.1:9"), "{}", r.stderr);

    // Completions for the shells people use.
    let bash = ok(naksha(&stack, "").args(["completions", "bash"]));
    assert!(bash.stdout.contains("naksha") && bash.stdout.contains("approve"));
}
