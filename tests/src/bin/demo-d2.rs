//! `make demo` (D.2): walk the agent through every path on the running stack and write
//! `reports/D.2_agent_framework.md` from what actually came back.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::fmt::Write as _;

use aws_sdk_dynamodb::types::AttributeValue;
use naksha_agent::spec::{Graph, Target};
use naksha_core::signing::sha256_hex;
use naksha_e2e::{Stack, Team, test_summary_for};
use serde_json::{Value, json};

fn pretty(v: &Value) -> String {
    serde_json::to_string_pretty(v).unwrap()
}

fn read(path: &str) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|_| format!("({path} was not written)"))
}

fn steps_table(run: &Value) -> String {
    let mut t = String::from("| # | node | status | latency (ms) | started | graph |\n|---|---|---|---|---|---|\n");
    for s in run["steps"].as_array().unwrap() {
        let _ = writeln!(
            t,
            "| {} | {} | {} | {:.1} | {} | {} |",
            s["step"],
            s["node"].as_str().unwrap(),
            s["status"].as_str().unwrap(),
            s["latency_ms"].as_f64().unwrap_or(0.0),
            s["started_at"].as_str().unwrap(),
            s["graph_version"].as_str().unwrap()
        );
    }
    t
}

async fn run_to(stack: &Stack, team: &Team, signal: &str, resource: &str, statuses: &[&str]) -> (String, Value) {
    let id = stack.start_run(team, signal, resource).await;
    let doc = stack.run_until(team, &id, statuses).await;
    (id, doc)
}

#[tokio::main]
async fn main() {
    let stack = Stack::connect().await;
    let team = stack.team("demo2");
    let mut md = String::new();
    let _ = writeln!(md, "# D.2 autonomous-agent — verification report\n");
    let _ = writeln!(
        md,
        "Written by `make demo` on {} from the answers of the running local stack (tenant `{}`); nothing here is typed by hand.\n",
        chrono::Utc::now().to_rfc3339(),
        team.tenant
    );

    // The graph.
    let graph = Graph::builtin().unwrap();
    let _ = writeln!(
        md,
        "## The graph (`agentspec.yaml`, version `{}`)\n\n| from | to | when |\n|---|---|---|",
        graph.version
    );
    for (from, edges) in &graph.edges {
        for e in edges {
            let to = match &e.to {
                Target::Node(n) => n.clone(),
                Target::Pause => "$pause".into(),
                Target::End => "$end".into(),
            };
            let _ = writeln!(md, "| {from} | {to} | {} |", e.when.map_or("(default)", |c| c.name()));
        }
    }

    // Playbooks.
    let restart = std::fs::read_to_string("events/wpk/restart-unhealthy.yaml").unwrap();
    let reg1 = stack.send_raw("POST", "/wpk", Some(&team.admin), "application/yaml", restart.clone()).await;
    let scale: Value =
        serde_json::from_str(&std::fs::read_to_string("events/wpk/scale-up-on-saturation.json").unwrap()).unwrap();
    let reg2 = stack.register(&team, &scale).await;
    let _ = writeln!(
        md,
        "\n## Registering signed playbooks (`POST /wpk`, role admin)\n\n`events/wpk/restart-unhealthy.yaml` (YAML, manual) → HTTP {}:\n\n```json\n{}\n```\n",
        reg1.status,
        pretty(&reg1.json())
    );
    let _ = writeln!(
        md,
        "`events/wpk/scale-up-on-saturation.json` (auto) → HTTP {}: sha256 `{}`\n",
        reg2.status,
        reg2.json()["sha256"].as_str().unwrap_or("?")
    );
    let dup = stack.send_raw("POST", "/wpk", Some(&team.admin), "application/yaml", restart).await;
    let _ = writeln!(
        md,
        "Registering the same version again → HTTP {} `{}`\n",
        dup.status,
        dup.json()["detail"].as_str().unwrap_or("")
    );

    // Manual path.
    stack.sim_deployment(&team, "deployment/payments", false).await;
    let before = stack.sim_state(&team, "deployment/payments").await;
    let (run, waiting) =
        run_to(&stack, &team, "deployment_unhealthy", "deployment/payments", &["awaiting_approval", "failed"]).await;
    let _ = writeln!(
        md,
        "## A manual run: signal `deployment_unhealthy` on `deployment/payments`\n\nSimulated resource before: `{before}`\n\nThe run stops at the gate, `{}`, with this plan:\n\n```json\n{}\n```\n",
        waiting["status"],
        pretty(&waiting["plan"])
    );
    let sha = waiting["plan"]["sha256"].as_str().unwrap().to_owned();
    let wrong = stack.approve(&team, &run, &"0".repeat(64)).await;
    let _ = writeln!(
        md,
        "Approving another digest → HTTP {}: {}\n",
        wrong.status,
        wrong.json()["detail"].as_str().unwrap_or("")
    );
    let op_try = stack
        .post_json(
            &format!("/agent/runs/{run}/approve"),
            Some(&team.operator),
            &json!({"justification": "x", "plan_sha256": sha}),
        )
        .await;
    let _ = writeln!(
        md,
        "Approving with an operator's token → HTTP {}: {}\n",
        op_try.status,
        op_try.json()["detail"].as_str().unwrap_or("")
    );
    let ok = stack.approve(&team, &run, &sha).await;
    let done = stack.run_until(&team, &run, &["succeeded", "failed", "aborted"]).await;
    // The operations report (reports/index.html) draws this run's steps on a timeline.
    std::fs::create_dir_all("reports/data").unwrap();
    std::fs::write("reports/data/run.json", serde_json::to_string_pretty(&done).unwrap() + "\n").unwrap();
    let after = stack.sim_state(&team, "deployment/payments").await;
    let _ = writeln!(
        md,
        "Approving the plan (approver `bob`) → HTTP {}. The run ends **{}** ({}).\n\nSimulated resource after: `{after}`\n\nSteps (each checkpointed in DynamoDB with its latency):\n\n{}",
        ok.status,
        done["status"].as_str().unwrap(),
        done["outcome"]["reason"].as_str().unwrap_or(""),
        steps_table(&done)
    );
    let _ = writeln!(md, "The audit record of the act:\n\n```json\n{}\n```\n", pretty(&done["audit"][0]));

    // Auto path with a standing approval.
    let checkout = "deployment/checkout";
    stack.sim_deployment(&team, checkout, true).await;
    let (_, waits) =
        run_to(&stack, &team, "cpu_saturation", checkout, &["awaiting_approval", "succeeded", "failed"]).await;
    let promote = stack
        .post_json(
            "/wpk/scale-up-on-saturation/promote",
            Some(&team.approver),
            &json!({"version": 1, "justification": "scaling out is always safe"}),
        )
        .await;
    let (_, auto) =
        run_to(&stack, &team, "cpu_saturation", checkout, &["succeeded", "failed", "awaiting_approval"]).await;
    let _ = writeln!(
        md,
        "## An auto playbook\n\nWithout a standing approval the auto WPK waits like a manual one: **{}**.\n\nAfter `POST /wpk/scale-up-on-saturation/promote` (approver `bob`, HTTP {}), the next run acts unattended: **{}**, approval `{}`; replicas now `{}`.\n\n{}",
        waits["status"].as_str().unwrap(),
        promote.status,
        auto["status"].as_str().unwrap(),
        auto["approval"],
        stack.sim_state(&team, checkout).await["replicas"],
        steps_table(&auto)
    );

    // Refusals.
    let (_, none) = run_to(&stack, &team, "disk_full", "deployment/payments", &["rejected", "failed"]).await;
    let _ = writeln!(
        md,
        "## Refusals and stops\n\n- No playbook fits: **{}** — {}",
        none["status"].as_str().unwrap(),
        none["outcome"]["reason"].as_str().unwrap()
    );
    stack.sim_deployment(&team, "deployment/payments", false).await;
    let halt = stack.post_json("/agent/halt", Some(&team.admin), &json!({"reason": "demo change freeze"})).await;
    let (run, w) = run_to(&stack, &team, "deployment_unhealthy", "deployment/payments", &["awaiting_approval"]).await;
    stack.approve(&team, &run, w["plan"]["sha256"].as_str().unwrap()).await;
    let aborted = stack.run_until(&team, &run, &["aborted", "succeeded"]).await;
    let resume = stack.post("/agent/resume", Some(&team.admin), "").await;
    let _ = writeln!(
        md,
        "- Kill switch (`POST /agent/halt` → {}), then an approved run: **{}** — {}; `POST /agent/resume` → {}",
        halt.status,
        aborted["status"].as_str().unwrap(),
        aborted["outcome"]["reason"].as_str().unwrap(),
        resume.status
    );
    // A tampered playbook.
    let tamper = json!({"id": "tamper-demo", "version": 1, "title": "Tamper demo", "match": {"signals": ["tamper_demo"]}, "safety": {"mode": "auto"}, "steps": [{"adapter": "sim", "action": "restart"}]});
    stack.register(&team, &tamper).await;
    let key = std::collections::HashMap::from([
        ("pk".to_owned(), AttributeValue::S(team.tenant.clone())),
        ("sk".to_owned(), AttributeValue::S("tamper-demo#0000000001".into())),
    ]);
    let item =
        stack.db.get_item().table_name(stack.table("WpksTable")).set_key(Some(key.clone())).send().await.unwrap();
    let doc = item.item().unwrap()["doc"].as_s().unwrap().replace("restart", "rollback");
    stack
        .db
        .update_item()
        .table_name(stack.table("WpksTable"))
        .set_key(Some(key))
        .update_expression("SET doc = :d, sha256 = :s")
        .expression_attribute_values(":d", AttributeValue::S(doc.clone()))
        .expression_attribute_values(":s", AttributeValue::S(sha256_hex(doc.as_bytes())))
        .send()
        .await
        .unwrap();
    let (_, tampered) =
        run_to(&stack, &team, "tamper_demo", "deployment/payments", &["failed", "succeeded", "awaiting_approval"])
            .await;
    let _ = writeln!(
        md,
        "- A stored WPK edited in DynamoDB (action and digest rewritten): **{}** — {}; receipts: {}\n",
        tampered["status"].as_str().unwrap(),
        tampered["outcome"]["reason"].as_str().unwrap(),
        tampered["receipts"]
    );

    // Audit chain and persisted runs.
    let audit = stack.get("/agent/audit?verify=true", Some(&team.operator)).await.json();
    let _ = writeln!(
        md,
        "## The audit chain (`GET /agent/audit?verify=true`)\n\n{} records, verified: **{}**.\n\n| seq | run | approver | standing | outcome | prev_hash | hash |\n|---|---|---|---|---|---|---|",
        audit["count"], audit["verified"]
    );
    for r in audit["records"].as_array().unwrap() {
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {} | `{}…` | `{}…` |",
            r["seq"],
            r["run_id"].as_str().unwrap(),
            r["approver"].as_str().unwrap(),
            r["standing_approval"],
            r["outcome"].as_str().unwrap(),
            &r["prev_hash"].as_str().unwrap()[..12],
            &r["hash"].as_str().unwrap()[..12]
        );
    }
    let items = stack.scan(&stack.table("RunsTable")).await;
    let ours: Vec<_> =
        items.iter().filter(|i| i["pk"].as_s().unwrap().starts_with(&format!("{}#", team.tenant))).collect();
    let runs = ours.iter().filter(|i| i["sk"].as_s().unwrap() == "run").count();
    let _ = writeln!(
        md,
        "\n## Runs are persisted\n\nThe seed asked for run files under `/tmp/agent_runs/`; here every run and every step is an item in `{}`: {} items for this demo's tenant ({} runs, {} checkpoints).\n",
        stack.table("RunsTable"),
        ours.len(),
        runs,
        ours.len() - runs
    );

    // Tests.
    let d2 = |binary: &str| binary.starts_with("naksha_agent") || binary.starts_with("d2_");
    let (table, passed, failed) = test_summary_for(&read("reports/logs/tests.log"), d2);
    let _ = writeln!(
        md,
        "## D.2 tests (`reports/logs/tests.log`)\n\n**{passed} passed, {failed} failed.**\n\n| test binary | passed | failed |\n|---|---|---|\n{table}"
    );
    let bench = read("reports/bench_D2.md");
    let figures: Vec<&str> = bench.lines().filter(|l| l.contains("p99") || l.contains("per step")).collect();
    if !figures.is_empty() {
        let _ = writeln!(md, "## Benchmarks (`make bench`, reports/bench_D2.md)\n\n```\n{}\n```\n", figures.join("\n"));
    }
    let _ = writeln!(md, "## BLOCKED or simulated here\n");
    let _ = writeln!(
        md,
        "- **A Kubernetes cluster**: none runs here. The `k8s` adapter is tested against a local server that checks every request (method, path, `dryRun=All`, patch content types and bodies, bearer token) — `tests/tests/d2_plugins.rs` — including a full run driven through it. The local stack acts on the `sim` adapter."
    );
    let _ = writeln!(
        md,
        "- **Prometheus in the local stack**: the observe plugin is tested against a real Prometheus server (Debian's package) that the test starts and stops, scraping the stack's `/metrics`; `make up` does not run one, so local runs observe D.1 telemetry only (`PrometheusUrl` is empty)."
    );
    let _ = writeln!(md, "- **LocalStack** (needs Docker) and **`sam deploy`** (no AWS account): as in D.1.");
    std::fs::write("reports/D.2_agent_framework.md", md).unwrap();
    println!("wrote reports/D.2_agent_framework.md ({passed} passed, {failed} failed D.2 tests)");
    if failed > 0 || done["status"] != "succeeded" || auto["status"] != "succeeded" || tampered["status"] != "failed" {
        std::process::exit(1);
    }
}
