//! `make load`: concurrent clients drive `POST /ingest` on the local stack for a bounded time
//! while faults hit it in turn: the stream pollers are killed (SIGKILL) and started again, the
//! stream consumer dies mid-batch (its crash point), every connection to the emulator is reset
//! (`ss -K`); poison records go straight onto the stream and agent runs act. Then it
//! proves from the tables that nothing was lost or counted twice:
//!
//! - per series, the sum of the aggregates' `count` equals the events the API accepted (202);
//! - the dead-letter table holds exactly the poison records put during the run;
//! - no batch of ours went to the on-failure destination;
//! - every agent run started during the load succeeded and acted exactly once.
//!
//! Settings come from the environment (defaults in brackets): `LOAD_SECONDS` [180],
//! `LOAD_CLIENTS` [8], `LOAD_BATCH` events per request [100], `LOAD_SERIES` [40],
//! `LOAD_POISON` [20], `LOAD_RUNS` [6], `LOAD_FAULT_EVERY` seconds [10], `LOAD_FAULTS`
//! [pollers,consumer,connections], `LOAD_MAX_EVENTS` [3000000], `LOAD_REPORT` [reports/load.md].
//! Loopback only: it talks to the API on :9000 and the emulator on :4566 and nothing else.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod cost;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::{Command, ExitCode};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_sdk_kinesis::primitives::Blob;
use naksha_e2e::{API_URL, Stack, Team, n, s, unique_tenant};
use serde_json::{Value, json};

const RES_PREFIX: &str = "deployment/load-";

#[derive(Debug, Clone)]
struct Config {
    seconds: u64,
    clients: usize,
    batch: usize,
    series: usize,
    poison: usize,
    runs: usize,
    fault_every: u64,
    faults: Vec<String>,
    max_events: u64,
    report: PathBuf,
}

fn env<T: std::str::FromStr>(name: &str, default: T) -> T {
    match std::env::var(name) {
        Ok(v) if !v.trim().is_empty() => {
            v.trim().parse().unwrap_or_else(|_| panic!("{name}={v:?} is not a valid value"))
        }
        _ => default,
    }
}

impl Config {
    fn from_env(root: &std::path::Path) -> Self {
        // Set and empty means no faults (the cost runs).
        let faults = std::env::var("LOAD_FAULTS").unwrap_or_else(|_| "pollers,consumer,connections".to_owned());
        let faults: Vec<String> =
            faults.split(',').map(str::trim).filter(|f| !f.is_empty()).map(str::to_owned).collect();
        for f in &faults {
            assert!(
                ["pollers", "consumer", "connections"].contains(&f.as_str()),
                "LOAD_FAULTS: unknown fault {f:?} (pollers, consumer, connections)"
            );
        }
        let report: String = env("LOAD_REPORT", "reports/load.md".to_owned());
        Self {
            seconds: env("LOAD_SECONDS", 180u64).clamp(5, 1800),
            clients: env("LOAD_CLIENTS", 8usize).clamp(1, 64),
            batch: env("LOAD_BATCH", 100usize).clamp(1, 500),
            series: env("LOAD_SERIES", 40usize).clamp(1, 1000),
            poison: env("LOAD_POISON", 20usize).min(1000),
            runs: env("LOAD_RUNS", 6usize).min(50),
            fault_every: env("LOAD_FAULT_EVERY", 10u64).max(2),
            faults,
            max_events: env("LOAD_MAX_EVENTS", 3_000_000u64),
            report: root.join(report),
        }
    }
}

/// What the clients saw.
#[derive(Debug, Default)]
struct Tally {
    /// Events the API accepted, per series source.
    accepted: BTreeMap<String, u64>,
    /// Wall time of each request that was answered 202, in ms (one attempt).
    latency_ms: Vec<f64>,
    /// Every attempt on `/ingest` and their summed time to the answer (for the cost report).
    attempts: u64,
    attempt_ms: f64,
    /// Sum of the 202 answers' lengths.
    answer_bytes: u64,
    kept_answer_bytes: u64,
    /// Answers by kind ("202", "emulator 500", "409 pending", "503", "transport error", ...).
    answers: BTreeMap<String, u64>,
    /// The first answer that was not a 202: seconds into the run and what it was.
    first_trouble: Option<(f64, String)>,
    /// Requests given up on: their events may or may not be on the stream.
    unresolved: u64,
    /// Answers that mean the driver or the API is wrong (a 4xx other than 409/429).
    wrong: Vec<String>,
}

#[derive(Debug)]
struct Shared {
    tally: Mutex<Tally>,
    start: Instant,
    stop: AtomicBool,
    events_sent: AtomicU64,
}

impl Shared {
    fn note(&self, kind: &str) {
        let mut t = self.tally.lock().unwrap();
        *t.answers.entry(kind.to_owned()).or_default() += 1;
        if kind != "202" && t.first_trouble.is_none() {
            t.first_trouble = Some((self.start.elapsed().as_secs_f64(), kind.to_owned()));
        }
    }
}

fn source_of(i: usize) -> String {
    format!("load-host-{i:03}")
}

/// One client: requests of `batch` events, each for one series, until told to stop. Every
/// request carries an `Idempotency-Key`, and a lost or failed answer is retried with the same
/// key, so a retry never puts the same events on the stream twice.
async fn client(id: usize, cfg: Config, http: reqwest::Client, token: String, shared: Arc<Shared>) {
    let mut i = id;
    while !shared.stop.load(Ordering::Relaxed) {
        if shared.events_sent.fetch_add(cfg.batch as u64, Ordering::Relaxed) >= cfg.max_events {
            break;
        }
        let source = source_of(i % cfg.series);
        i += cfg.clients;
        let events: Vec<Value> =
            (0..cfg.batch).map(|k| json!({"source": source, "name": "rps", "value": (k % 17) as f64})).collect();
        send_until_answered(&http, &token, &source, events, &shared).await;
    }
}

async fn send_until_answered(http: &reqwest::Client, token: &str, source: &str, events: Vec<Value>, shared: &Shared) {
    let mut body = json!({ "events": events }).to_string();
    let mut count = events.len() as u64;
    let mut key = format!("load-{}", uuid::Uuid::now_v7());
    for attempt in 0..40u32 {
        let sent = Instant::now();
        let answer = http
            .post(format!("{API_URL}/ingest"))
            .header("authorization", format!("Bearer {token}"))
            .header("content-type", "application/json")
            .header("idempotency-key", &key)
            .body(body.clone())
            .send()
            .await;
        let (status, text) = match answer {
            Ok(r) => {
                let status = r.status().as_u16();
                (status, r.text().await.unwrap_or_default())
            }
            Err(e) => {
                shared.note("transport error");
                eprintln!("[load] transport error: {e}");
                tokio::time::sleep(Duration::from_millis(500)).await;
                continue;
            }
        };
        let ms = sent.elapsed().as_secs_f64() * 1000.0;
        {
            let mut t = shared.tally.lock().unwrap();
            t.attempts += 1;
            t.attempt_ms += ms;
        }
        let doc: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        match status {
            202 => {
                shared.note("202");
                let accepted = doc["accepted"].as_u64().unwrap_or(0);
                let mut t = shared.tally.lock().unwrap();
                *t.accepted.entry(source.to_owned()).or_default() += accepted;
                t.latency_ms.push(ms);
                t.answer_bytes += text.len() as u64;
                t.kept_answer_bytes += naksha_core::idempotency::stored_body(text.as_bytes()).0.len() as u64;
                if accepted != count {
                    t.wrong.push(format!("202 accepted {accepted} of {count}: {text}"));
                }
                return;
            }
            500 if text.contains("https://httpstatuses.com/500") => shared.note("emulator 500"),
            // The first attempt with this key still runs (its answer was lost): wait for it.
            409 if text.contains("still running") => shared.note("409 still running"),
            429 => shared.note("429"),
            503 if doc["failed_event_ids"].is_array() => {
                // Part of the request was written: count it, send the rest as a new request.
                shared.note("503 partial");
                let accepted = doc["accepted_event_ids"].as_array().map_or(0, Vec::len) as u64;
                let failed = doc["failed_event_ids"].as_array().map_or(0, Vec::len) as u64;
                *shared.tally.lock().unwrap().accepted.entry(source.to_owned()).or_default() += accepted;
                if failed == 0 {
                    return;
                }
                count = failed;
                let events: Vec<Value> =
                    (0..failed).map(|k| json!({"source": source, "name": "rps", "value": (k % 17) as f64})).collect();
                body = json!({ "events": events }).to_string();
                key = format!("load-{}", uuid::Uuid::now_v7());
            }
            s if s >= 500 => {
                shared.note(&format!("{s}"));
                eprintln!("[load] {s}: {}", text.chars().take(300).collect::<String>());
            }
            s => {
                shared.note(&format!("{s}"));
                let mut t = shared.tally.lock().unwrap();
                t.wrong.push(format!("{s}: {}", text.chars().take(300).collect::<String>()));
                t.unresolved += count;
                return;
            }
        }
        tokio::time::sleep(Duration::from_millis(250 * u64::from(attempt.min(8) + 1))).await;
    }
    shared.tally.lock().unwrap().unresolved += count;
}

/// A fault and when it happened.
#[derive(Debug, Clone)]
struct Injected {
    at_s: f64,
    fault: String,
    outcome: String,
}

fn run(cmd: &mut Command) -> String {
    match cmd.output() {
        Ok(o) => {
            let text = format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
            if o.status.success() { text } else { format!("failed ({}): {text}", o.status) }
        }
        Err(e) => format!("could not run: {e}"),
    }
}

fn inject(root: &std::path::Path, fault: &str) -> String {
    match fault {
        "pollers" => {
            let stack = root.join("local/stack.sh");
            let crashed = run(Command::new(&stack).arg("crash").arg("pollers"));
            std::thread::sleep(Duration::from_secs(2));
            let started = run(Command::new(&stack).arg("pollers"));
            format!("{} / {}", crashed.trim(), started.trim()).replace("[stack] ", "")
        }
        "consumer" => {
            // Not SIGKILL: `cargo lambda watch` 1.9.2 never replaces a killed instance (its pool
            // keeps the dead one busy, and with one instance per function every later batch
            // waits forever). The consumer's crash point dies the same way for the data: after
            // its aggregates are written, before it answers, so the batch comes again.
            let dir = root.join(".local/crash");
            let file = dir.join("telemetry-consumer");
            if let Err(e) = std::fs::create_dir_all(&dir).and_then(|()| std::fs::write(&file, b"load")) {
                return format!("could not arm the crash point: {e}");
            }
            let armed = Instant::now();
            while file.exists() && armed.elapsed() < Duration::from_secs(20) {
                std::thread::sleep(Duration::from_millis(50));
            }
            if file.exists() {
                let _ = std::fs::remove_file(&file);
                "no batch reached the consumer within 20 s".into()
            } else {
                format!(
                    "the consumer died mid-batch {:.1} s later (panic after its aggregates were written)",
                    armed.elapsed().as_secs_f64()
                )
            }
        }
        "connections" => {
            // Every TCP connection to the emulator (from functions, pollers and this driver),
            // twenty times over two seconds: the emulator closes idle connections, so what a cut
            // finds is mostly requests in flight.
            let mut cut = 0;
            for _ in 0..20 {
                let out = run(Command::new("ss").args(["-K", "-t", "dst", "127.0.0.1", "dport", "=", "4566"]));
                if out.starts_with("failed") || out.starts_with("could not") {
                    return format!("could not cut connections: {}", out.lines().next().unwrap_or_default());
                }
                cut += out.lines().filter(|l| l.contains(":4566")).count();
                std::thread::sleep(Duration::from_millis(100));
            }
            format!("{cut} connections to :4566 reset in 2 s")
        }
        other => format!("unknown fault {other}"),
    }
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * (sorted.len() as f64 - 1.0)).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

/// The aggregates' sum of counts per series source for the tenant.
async fn counted(stack: &Stack, tenant: &str) -> BTreeMap<String, u64> {
    let mut out = BTreeMap::new();
    for item in stack.aggregates_of(tenant).await {
        *out.entry(s(&item, "source").to_owned()).or_default() += n(&item, "count") as u64;
    }
    out
}

fn wpk() -> Value {
    json!({
        "id": "restart-under-load", "version": 1, "title": "Restart an unhealthy deployment (load test)",
        "match": {"signals": ["deployment_unhealthy"], "resources": ["deployment/*"]},
        "safety": {"mode": "auto", "dry_run": true},
        "steps": [{"adapter": "sim", "action": "restart"}],
        "verify": {"healthy": true},
        "limits": {"blast_radius": 1, "max_runs_per_hour": 60}
    })
}

async fn prepare_runs(stack: &Stack, cfg: &Config) -> Option<Team> {
    if cfg.runs == 0 {
        return None;
    }
    let team = stack.team("load-agent");
    for i in 0..cfg.runs {
        stack.sim_deployment(&team, &format!("{RES_PREFIX}{i}"), false).await;
    }
    let r = stack.register(&team, &wpk()).await;
    assert_eq!(r.status, 201, "registering the load WPK: {}", r.text);
    let r = stack
        .post_json(
            "/wpk/restart-under-load/promote",
            Some(&team.approver),
            &json!({"version": 1, "justification": "load test: unattended restarts"}),
        )
        .await;
    assert_eq!(r.status, 200, "promoting the load WPK: {}", r.text);
    Some(team)
}

/// What this run counted, for `reports/cost.md`.
async fn measure(
    stack: &Stack,
    cfg: &Config,
    tenant: &str,
    tally: &Tally,
    seconds: f64,
    started_ms: i64,
    delta: &dyn Fn(&str) -> f64,
) -> cost::Measured {
    let memory = |binary: &str| {
        stack
            .template
            .functions()
            .ok()
            .and_then(|fs| fs.into_iter().find(|f| f.binary == binary))
            .and_then(|f| f.memory_mb)
    };
    let consumer = stack.local.name("TelemetryConsumerFunction").unwrap_or("telemetry-consumer").to_owned();
    let (mut invocations, mut consumer_ms) = (0u64, 0.0);
    for line in std::fs::read_to_string(stack.paths.invocations()).unwrap_or_default().lines() {
        let Ok(v) = serde_json::from_str::<Value>(line) else { continue };
        if v["function"] == consumer.as_str() && v["ts_ms"].as_i64().unwrap_or(0) >= started_ms {
            invocations += 1;
            consumer_ms += v["ms"].as_f64().unwrap_or(0.0);
        }
    }
    let records = stack.tenant_records(tenant).await;
    let put_payload_units: u64 = records
        .iter()
        .map(|(_, r, _)| {
            ((r.data().as_ref().len() + r.partition_key().unwrap_or_default().len()) as u64).div_ceil(25 * 1024)
        })
        .sum();
    let mean = |items: &[naksha_e2e::Item]| {
        if items.is_empty() {
            0.0
        } else {
            items.iter().map(cost::item_bytes).sum::<usize>() as f64 / items.len() as f64
        }
    };
    let aggregates = stack.aggregates_of(tenant).await;
    let windows: Vec<_> = stack
        .scan(&stack.table("AggregatesTable"))
        .await
        .into_iter()
        .filter(|i| s(i, "pk").starts_with("~dedup#"))
        .collect();
    let prefix = format!("{tenant}#");
    let series: Vec<_> =
        stack.scan(&stack.table("SeriesTable")).await.into_iter().filter(|i| s(i, "pk").starts_with(&prefix)).collect();
    cost::Measured {
        batch: cfg.batch,
        seconds,
        events: tally.accepted.values().sum(),
        api_requests: tally.attempts,
        ingest_ms: tally.attempt_ms,
        ingest_memory_mb: memory("ingest").unwrap_or(128),
        consumer_invocations: invocations,
        consumer_ms,
        consumer_memory_mb: memory("telemetry-consumer").unwrap_or(128),
        stream_records: records.len() as u64,
        put_payload_units,
        aggregate_writes: delta("insight_aggregate_writes_total") as u64,
        aggregate_item_bytes: mean(&aggregates),
        detector_writes: delta("insight_detector_writes_total") as u64,
        detector_item_bytes: mean(&series),
        window_item_bytes: mean(&windows),
        answer_bytes: if tally.latency_ms.is_empty() {
            0.0
        } else {
            tally.answer_bytes as f64 / tally.latency_ms.len() as f64
        },
        kept_answer_bytes: if tally.latency_ms.is_empty() {
            0.0
        } else {
            tally.kept_answer_bytes as f64 / tally.latency_ms.len() as f64
        },
        telemetry_shards: stack
            .template
            .parameters
            .get("TelemetryShardCount")
            .cloned()
            .flatten()
            .and_then(|v| v.parse().ok())
            .unwrap_or(2),
    }
}

/// `naksha-load cost-report OUT RUN.json...`: reports/cost.md from the runs' counts.
fn cost_report(args: &[String]) -> ExitCode {
    let [out, runs @ ..] = args else {
        eprintln!("usage: naksha-load cost-report OUT RUN.json...");
        return ExitCode::from(2);
    };
    let mut measured: Vec<cost::Measured> = runs
        .iter()
        .map(|f| serde_json::from_str(&std::fs::read_to_string(f).unwrap_or_else(|e| panic!("{f}: {e}"))).unwrap())
        .collect();
    measured.sort_by_key(|m| m.batch);
    let text = cost::report(&measured);
    std::fs::write(out, &text).unwrap();
    println!("{text}");
    ExitCode::SUCCESS
}

#[tokio::main]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("cost-report") {
        return cost_report(&args[1..]);
    }
    let stack = Stack::connect().await;
    let root = stack.paths.root.clone();
    let cfg = Config::from_env(&root);
    let tenant = unique_tenant("load");
    let token = stack.key.token(&tenant, "loader", &["operator"], (cfg.seconds + 3600) as i64).unwrap();
    let team = prepare_runs(&stack, &cfg).await;
    let failures_before = std::fs::read_to_string(stack.paths.failures()).unwrap_or_default().lines().count();
    let (_, metrics_before) = stack.metrics().await;
    let started_epoch = chrono::Utc::now().timestamp();
    let started_ms = chrono::Utc::now().timestamp_millis();
    eprintln!(
        "[load] {} s, {} clients, {} events per request over {} series; faults {:?} every {} s; {} poison records; {} agent runs",
        cfg.seconds, cfg.clients, cfg.batch, cfg.series, cfg.faults, cfg.fault_every, cfg.poison, cfg.runs
    );

    let shared = Arc::new(Shared {
        tally: Mutex::default(),
        start: Instant::now(),
        stop: AtomicBool::new(false),
        events_sent: AtomicU64::new(0),
    });
    let http = reqwest::Client::builder().timeout(Duration::from_secs(120)).pool_max_idle_per_host(64).build().unwrap();
    let mut clients = tokio::task::JoinSet::new();
    for id in 0..cfg.clients {
        clients.spawn(client(id, cfg.clone(), http.clone(), token.clone(), Arc::clone(&shared)));
    }

    // Poison records and agent runs spread over the run, faults every `fault_every` seconds.
    let deadline = Duration::from_secs(cfg.seconds);
    let mut poison: BTreeSet<(String, String)> = BTreeSet::new();
    let mut runs: Vec<(String, String)> = Vec::new();
    let mut injected: Vec<Injected> = Vec::new();
    let mut next_fault = Duration::from_secs(cfg.fault_every.min(cfg.seconds / 3).max(2));
    let tick = Duration::from_millis(250);
    let mut k = 0usize;
    while shared.start.elapsed() < deadline && !clients.is_empty() {
        let elapsed = shared.start.elapsed();
        let frac = elapsed.as_secs_f64() / deadline.as_secs_f64();
        while poison.len() < cfg.poison && (poison.len() as f64) < frac * cfg.poison as f64 + 1.0 {
            let put = stack
                .kinesis
                .put_record()
                .stream_name(stack.stream_name())
                .partition_key(format!("{tenant}/poison-{}", poison.len()))
                .data(Blob::new(
                    format!(
                        r#"{{"v":1,"id":"p{}","tenant":"{tenant}","source":"s","kind":"poison","ts":1}}"#,
                        poison.len()
                    )
                    .into_bytes(),
                ))
                .send()
                .await;
            match put {
                Ok(p) => {
                    poison.insert((p.shard_id().to_owned(), p.sequence_number().to_owned()));
                }
                Err(e) => {
                    eprintln!("[load] putting a poison record failed ({e}); trying again");
                    break;
                }
            }
        }
        if let Some(team) = &team {
            while runs.len() < cfg.runs && (runs.len() as f64) < frac * cfg.runs as f64 + 0.5 {
                let resource = format!("{RES_PREFIX}{}", runs.len());
                let id = stack.start_run(team, "deployment_unhealthy", &resource).await;
                runs.push((id, resource));
            }
        }
        if !cfg.faults.is_empty() && elapsed >= next_fault {
            let fault = cfg.faults[k % cfg.faults.len()].clone();
            k += 1;
            let at_s = elapsed.as_secs_f64();
            let root = root.clone();
            let name = fault.clone();
            let outcome = tokio::task::spawn_blocking(move || inject(&root, &name)).await.unwrap();
            eprintln!("[load] t={at_s:.1}s fault {fault}: {outcome}");
            injected.push(Injected { at_s, fault, outcome });
            next_fault += Duration::from_secs(cfg.fault_every);
        }
        tokio::time::sleep(tick).await;
    }
    shared.stop.store(true, Ordering::Relaxed);
    while clients.join_next().await.is_some() {}
    let load_secs = shared.start.elapsed().as_secs_f64();
    // The pollers must be running for the stream to drain, whatever the last fault left.
    let _ = run(Command::new(root.join("local/stack.sh")).arg("pollers"));

    // Settle: the aggregates reach the accepted counts, and never pass them.
    let tally = std::mem::take(&mut *shared.tally.lock().unwrap());
    let accepted_total: u64 = tally.accepted.values().sum();
    let settle_start = Instant::now();
    let mut problems: Vec<String> = Vec::new();
    let mut last;
    let settled = loop {
        last = counted(&stack, &tenant).await;
        if last == tally.accepted {
            break Some(settle_start.elapsed().as_secs_f64());
        }
        if settle_start.elapsed() > Duration::from_secs(240) {
            break None;
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    };
    let counted_total: u64 = last.values().sum();
    for (source, want) in &tally.accepted {
        let got = last.get(source).copied().unwrap_or(0);
        if got != *want {
            problems.push(format!("series {source}: {want} accepted, {got} counted"));
        }
    }
    for (source, got) in &last {
        if !tally.accepted.contains_key(source) {
            problems.push(format!("series {source}: nothing accepted, {got} counted"));
        }
    }
    if tally.unresolved > 0 {
        problems.push(format!("{} events in requests that never got a final answer", tally.unresolved));
    }
    problems.extend(tally.wrong.iter().take(10).map(|w| format!("unexpected answer: {w}")));

    // Dead letters: exactly the poison records among those written since the run began.
    let stream = stack.stream_name();
    let dead: BTreeSet<(String, String)> = stack
        .scan(&stack.table("DeadLetterTable"))
        .await
        .iter()
        .filter(|i| n(i, "recorded_at") as i64 >= started_epoch)
        .map(|i| (s(i, "pk").trim_start_matches("shard#").to_owned(), s(i, "seq").to_owned()))
        .collect();
    let dead_ok = dead == poison;
    if !dead_ok {
        let missing: Vec<_> = poison.difference(&dead).collect();
        let extra: Vec<_> = dead.difference(&poison).collect();
        problems.push(format!("dead letters: poison not set aside {missing:?}; set aside but not poison {extra:?}"));
    }
    // No batch of the telemetry stream exhausted its retries during the run.
    let failures: Vec<String> = std::fs::read_to_string(stack.paths.failures())
        .unwrap_or_default()
        .lines()
        .skip(failures_before)
        .filter(|l| l.contains(&format!("/{stream}\"")))
        .map(str::to_owned)
        .collect();
    if !failures.is_empty() {
        problems.push(format!(
            "{} telemetry batches went to the on-failure destination: {}",
            failures.len(),
            failures[0]
        ));
    }

    // Agent runs: each finished, succeeded, and its resource was restarted exactly once.
    let mut run_rows = Vec::new();
    if let Some(team) = &team {
        for (id, resource) in &runs {
            let doc = stack.run_until(team, id, &["succeeded", "failed", "aborted", "rejected"]).await;
            let restarts = stack.sim_state(team, resource).await["restarts"].as_u64().unwrap_or(0);
            let status = doc["status"].as_str().unwrap_or_default().to_owned();
            if status != "succeeded" || restarts != 1 {
                problems.push(format!("run {id} on {resource}: {status}, {restarts} restarts"));
            }
            run_rows.push((id.clone(), resource.clone(), status, restarts));
        }
        let audit = stack.get("/agent/audit?verify=true", Some(&team.operator)).await.json();
        if audit["count"].as_u64() != Some(runs.len() as u64) || audit["verified"] != true {
            problems.push(format!("audit: {} records, verified {}", audit["count"], audit["verified"]));
        }
    }

    // What the fleet's counters saw over the run (the whole stack's, this run dominating).
    let (_, metrics_after) = stack.metrics().await;
    let delta =
        |name: &str| metrics_after.get(name).copied().unwrap_or(0.0) - metrics_before.get(name).copied().unwrap_or(0.0);

    // The report.
    let mut lat = tally.latency_ms.clone();
    lat.sort_by(f64::total_cmp);
    let rate = accepted_total as f64 / load_secs;
    let mut r = String::new();
    let _ = writeln!(r, "# Load with faults (`make load`)\n");
    let _ = writeln!(
        r,
        "Written by `tests/src/bin/naksha-load.rs` on {} against the local stack ({} on :4566, `cargo lambda watch` on :9000, debug builds), 2-core machine.\n",
        chrono::Utc::now().format("%Y-%m-%d %H:%M UTC"),
        if std::process::Command::new("curl")
            .args(["-sf", "-m", "2", "http://127.0.0.1:4566/moto-api/"])
            .output()
            .is_ok_and(|o| o.status.success())
        {
            "moto"
        } else {
            "the emulator"
        }
    );
    let _ = writeln!(
        r,
        "**Verdict: {}**\n",
        if problems.is_empty() { "nothing lost, nothing counted twice" } else { "FAILED" }
    );
    let _ = writeln!(r, "| setting | value |\n|---|---|");
    let _ = writeln!(
        r,
        "| duration | {load_secs:.0} s |\n| clients | {} |\n| events per request | {} |\n| series | {} |",
        cfg.clients, cfg.batch, cfg.series
    );
    let _ = writeln!(
        r,
        "| faults | {} every {} s |\n| poison records | {} |\n| agent runs | {} |\n",
        cfg.faults.join(", "),
        cfg.fault_every,
        poison.len(),
        runs.len()
    );
    let _ = writeln!(r, "| figure | value |\n|---|---|");
    let _ =
        writeln!(r, "| events accepted | {accepted_total} |\n| events counted in the aggregates | {counted_total} |");
    let _ = writeln!(r, "| sustained ingest | {rate:.0} events/s ({:.1} requests/s) |", lat.len() as f64 / load_secs);
    let _ = writeln!(
        r,
        "| ingest latency (202 answers) | p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms |",
        percentile(&lat, 50.0),
        percentile(&lat, 99.0),
        lat.last().copied().unwrap_or(f64::NAN)
    );
    let _ = writeln!(
        r,
        "| stream drained after the clients stopped | {} |",
        settled.map_or("not within 240 s".to_owned(), |s| format!("{s:.0} s"))
    );
    let _ = writeln!(r, "| dead letters since the start | {} (poison put: {}) |", dead.len(), poison.len());
    let _ = writeln!(r, "| telemetry batches to on-failure | {} |\n", failures.len());
    let _ =
        writeln!(r, "Counters over the run (`GET /metrics`, the whole stack):\n\n| counter | increase |\n|---|---|");
    for name in [
        "insight_ingest_requests_total",
        "insight_ingested_total",
        "insight_stream_records_total",
        "insight_duplicate_records_total",
        "insight_aggregate_writes_total",
        "insight_poison_records_total",
    ] {
        let _ = writeln!(r, "| `{name}` | {:.0} |", delta(name));
    }
    let _ = writeln!(r);
    let _ = writeln!(r, "## What the clients saw\n\n| answer | count |\n|---|---|");
    for (k, v) in &tally.answers {
        let _ = writeln!(r, "| {k} | {v} |");
    }
    let _ = writeln!(
        r,
        "\nFirst answer that was not a 202: {}.\n",
        tally.first_trouble.as_ref().map_or("none".to_owned(), |(t, k)| format!("`{k}` at t={t:.1} s"))
    );
    let _ = writeln!(r, "## Faults\n\n| t (s) | fault | outcome |\n|---|---|---|");
    for f in &injected {
        let _ = writeln!(r, "| {:.1} | {} | {} |", f.at_s, f.fault, f.outcome.replace('|', "/").replace('\n', " "));
    }
    if !run_rows.is_empty() {
        let _ = writeln!(r, "\n## Agent runs in flight\n\n| run | resource | status | restarts |\n|---|---|---|---|");
        for (id, res, status, restarts) in &run_rows {
            let _ = writeln!(r, "| `{id}` | {res} | {status} | {restarts} |");
        }
    }
    if !problems.is_empty() {
        let _ = writeln!(r, "\n## Problems\n");
        for p in &problems {
            let _ = writeln!(r, "- {p}");
        }
    }
    if let Ok(out) = std::env::var("LOAD_COST_OUT") {
        let m = measure(&stack, &cfg, &tenant, &tally, load_secs, started_ms, &delta).await;
        std::fs::write(&out, serde_json::to_string_pretty(&m).unwrap()).unwrap();
        eprintln!("[load] counts for the cost report: {out}");
    }
    if let Some(dir) = cfg.report.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    std::fs::write(&cfg.report, &r).unwrap();
    println!("{r}");
    eprintln!("[load] report: {}", cfg.report.display());
    if problems.is_empty() { ExitCode::SUCCESS } else { ExitCode::FAILURE }
}
