//! Every subcommand: its arguments, the request it makes, and how its answer is shown.

use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;

use clap::{Args, Subcommand};
use naksha_contracts::signing::sha256_hex;
use reqwest::Method;
use serde_json::{Map, Value, json};

use crate::client::{Body, CliError, enc};
use crate::ingest::{self, Format, Shape};
use crate::render::{self, print_json};
use crate::{Command, Ctx, Output, verify, watch};

#[derive(Debug, Args)]
pub struct IngestArgs {
    /// The file: `.csv` (timestamp,value) or JSON lines (one event per line); `-` is stdin.
    pub file: PathBuf,
    /// The file's format (default: from its name).
    #[arg(long, value_enum)]
    pub format: Option<Format>,
    /// CSV: the series' source.
    #[arg(long, default_value = "cli")]
    pub source: String,
    /// CSV: the series' name (default: the file's name without extension).
    #[arg(long)]
    pub name: Option<String>,
    /// A label for every event (`key=value`, repeatable).
    #[arg(long = "label", short = 'l', value_parser = key_value)]
    pub labels: Vec<(String, String)>,
    /// Events per request (1–500).
    #[arg(long, default_value_t = 500, value_parser = clap::value_parser!(u16).range(1..=500))]
    pub batch: u16,
    /// Move the times so the last event is now (replay a recorded series as if live).
    #[arg(long)]
    pub shift_to_now: bool,
}

fn key_value(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_owned(), v.to_owned())),
        _ => Err(format!("{s:?} is not key=value")),
    }
}

#[derive(Debug, Subcommand)]
pub enum Runs {
    /// The newest runs.
    List {
        #[arg(long)]
        status: Option<String>,
        #[arg(long, default_value_t = 20)]
        limit: u32,
    },
    /// Start a run for a signal on a resource.
    Start {
        #[arg(long)]
        signal: String,
        #[arg(long)]
        resource: String,
        /// Plan and dry-run only: never act.
        #[arg(long)]
        dry_run: bool,
        /// Telemetry to attach (a JSON object).
        #[arg(long)]
        telemetry: Option<String>,
    },
    /// A run with its steps, plan, approval and audit record.
    Show { run_id: String },
    /// Follow a run live, a line per step, until it ends (or reaches a status given with --until).
    Watch {
        run_id: String,
        /// Stop at this status too (repeatable), e.g. awaiting_approval.
        #[arg(long)]
        until: Vec<String>,
        /// Give up after this many seconds (exit 1).
        #[arg(long, default_value_t = 600)]
        timeout: u64,
    },
    /// Approve exactly the plan the run awaits: shows it, asks, sends its digest.
    Approve {
        run_id: String,
        #[arg(long, short = 'j')]
        justification: String,
        /// Do not ask.
        #[arg(long, short = 'y')]
        yes: bool,
    },
    /// Reject a run awaiting approval.
    Reject {
        run_id: String,
        #[arg(long, short = 'j')]
        justification: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum Wpk {
    /// Register a WPK (a JSON or YAML file): validated, signed, immutable.
    Register { file: PathBuf },
    /// The latest version of each WPK.
    List,
    /// Every version of one WPK, with its signed document.
    Show { id: String },
    /// Record a signed standing approval for an `auto` WPK version (role approver).
    Promote {
        id: String,
        #[arg(long)]
        version: u32,
        #[arg(long, short = 'j')]
        justification: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum Models {
    /// Start a training job (role admin).
    Train {
        /// Hours of history to train on (1–720).
        #[arg(long)]
        window_hours: Option<u32>,
        /// Follow the job with a progress bar until it ends.
        #[arg(long)]
        wait: bool,
    },
    /// Every version, newest first.
    List,
    /// One version with its manifest and document.
    Show { model_id: String },
    /// Check a version's signature here, with a public key from KMS or a file, not the API's word.
    Verify {
        model_id: String,
        /// The signing key's public key (PEM or DER SubjectPublicKeyInfo).
        #[arg(long, conflicts_with = "kms_key")]
        public_key: Option<PathBuf>,
        /// Fetch the public key from KMS (standard AWS configuration; AWS_ENDPOINT_URL for the emulator).
        #[arg(long, default_value = "alias/naksha/model-signing")]
        kms_key: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum Jobs {
    /// A job's status and progress.
    Show { job_id: String },
}

#[derive(Debug, Subcommand)]
pub enum Chaos {
    /// Run an experiment.
    Run {
        spec: String,
        #[arg(long)]
        target: Option<String>,
        #[arg(long)]
        dry_run: bool,
        /// Follow it live and end with its recovery times (exit 1 unless it recovered).
        #[arg(long)]
        wait: bool,
        /// With --wait: give up after this many seconds.
        #[arg(long, default_value_t = 900)]
        timeout: u64,
    },
    /// The runs of the tenant.
    List,
    /// One run: timeline, recovery, agent runs, rollbacks.
    Show { run_id: String },
    /// Stop a run and roll its fault back.
    Abort { run_id: String },
    /// Experiment specs.
    #[command(subcommand)]
    Specs(ChaosSpecs),
}

#[derive(Debug, Subcommand)]
pub enum ChaosSpecs {
    List,
    /// Add a spec: native, Chaos Toolkit or AWS FIS JSON.
    Add {
        file: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
pub enum Sim {
    /// Seed the tenant with a scenario (`default` always exists).
    Scenario {
        #[arg(default_value = "default")]
        name: String,
    },
    /// A simulated resource's state.
    Get { resource: String },
    /// Create or replace a simulated resource (role admin).
    Put {
        resource: String,
        #[arg(long, default_value = "deployment")]
        kind: String,
        #[arg(long, default_value_t = 3)]
        replicas: u32,
        /// Healthy (`--healthy true`) or not.
        #[arg(long, action = clap::ArgAction::Set, default_value_t = true)]
        healthy: bool,
        #[arg(long, default_value = "v1")]
        version: String,
        /// A target chaos experiments may inject faults into.
        #[arg(long)]
        chaos_target: bool,
    },
}

/// Every route of `docs/openapi.yaml` and the command that calls it; the routes only an edge node
/// calls are the `edge-node` binary's (`make edge`). A test keeps this true to the spec.
pub const ROUTES: &[(&str, &str, &str)] = &[
    ("get", "/health", "naksha health"),
    ("get", "/metrics", "naksha metrics"),
    ("post", "/ingest", "naksha ingest FILE"),
    ("get", "/signals", "naksha signals"),
    ("post", "/models/train", "naksha models train [--wait]"),
    ("get", "/jobs/{job_id}", "naksha jobs show ID"),
    ("get", "/models", "naksha models list"),
    ("get", "/models/{model_id}", "naksha models show|verify ID"),
    ("post", "/agent/run", "naksha runs start"),
    ("get", "/agent/status/{run_id}", "naksha runs show|watch ID"),
    ("get", "/agent/runs", "naksha runs list"),
    ("post", "/agent/runs/{run_id}/approve", "naksha runs approve ID"),
    ("post", "/agent/runs/{run_id}/reject", "naksha runs reject ID"),
    ("post", "/agent/halt", "naksha halt"),
    ("post", "/agent/resume", "naksha resume"),
    ("get", "/agent/audit", "naksha audit list|verify"),
    ("get", "/agent/settings", "naksha settings show"),
    ("post", "/agent/settings", "naksha settings set"),
    ("post", "/wpk", "naksha wpk register FILE"),
    ("get", "/wpk", "naksha wpk list"),
    ("get", "/wpk/{id}", "naksha wpk show ID"),
    ("post", "/wpk/{id}/promote", "naksha wpk promote ID"),
    ("post", "/federation/register", "edge-node"),
    ("post", "/federation/heartbeat", "edge-node"),
    ("get", "/federation/nodes", "naksha edge nodes"),
    ("get", "/federation/nodes/{node_id}", "naksha edge nodes ID"),
    ("post", "/federation/triggers", "naksha triggers send"),
    ("get", "/federation/triggers", "edge-node"),
    ("get", "/federation/triggers/{trigger_id}", "naksha triggers show ID"),
    ("post", "/federation/triggers/{trigger_id}/result", "edge-node"),
    ("get", "/federation/keys", "naksha edge keys"),
    ("get", "/sim/resources/{resource}", "naksha sim get RESOURCE"),
    ("put", "/sim/resources/{resource}", "naksha sim put RESOURCE"),
    ("post", "/chaos/run", "naksha chaos run SPEC [--wait]"),
    ("get", "/chaos/runs", "naksha chaos list"),
    ("get", "/chaos/runs/{run_id}", "naksha chaos show ID"),
    ("post", "/chaos/runs/{run_id}/abort", "naksha chaos abort ID"),
    ("get", "/chaos/specs", "naksha chaos specs list"),
    ("post", "/chaos/specs", "naksha chaos specs add FILE"),
    ("post", "/sim/scenarios/{name}", "naksha sim scenario NAME"),
    ("post", "/learn", "naksha policies learn FILE"),
    ("get", "/policies/suggestions", "naksha policies list"),
    ("get", "/policies/suggestions/{id}", "naksha policies show ID"),
    ("post", "/policies/suggestions/{id}/advance", "naksha policies advance ID"),
    ("post", "/policies/suggestions/{id}/reject", "naksha policies reject ID"),
    ("get", "/compliance", "naksha compliance [--markdown]"),
];

#[derive(Debug, Subcommand)]
pub enum Edge {
    /// The fleet, or one node.
    Nodes { node_id: Option<String> },
    /// The keys nodes trust.
    Keys,
}

#[derive(Debug, Subcommand)]
pub enum Triggers {
    /// Send a signed WPK to one node or to the nodes with given labels.
    Send {
        /// The WPK id, optionally `id@version`.
        #[arg(long)]
        wpk: String,
        #[arg(long, conflicts_with = "labels", required_unless_present = "labels")]
        node: Option<String>,
        /// Target the nodes with these labels (`key=value`, repeatable).
        #[arg(long = "label", value_parser = key_value)]
        labels: Vec<(String, String)>,
        /// Parameters (a JSON object).
        #[arg(long, default_value = "{}")]
        params: String,
        #[arg(long, default_value_t = 600)]
        ttl: u64,
        /// Rollout: at most this many nodes a minute.
        #[arg(long)]
        max_per_minute: Option<u32>,
        /// Rollout: abort when this percentage of finished nodes failed.
        #[arg(long)]
        abort_failure_percent: Option<u32>,
    },
    /// A trigger's rollout and each node's execution.
    Show { trigger_id: String },
}

#[derive(Debug, Subcommand)]
pub enum Policies {
    /// Learn from audit logs (JSON lines: Naksha audit, CloudTrail, Kubernetes audit), ≤ 1 MiB.
    Learn {
        file: PathBuf,
        /// Learn from the lines that can be read and list the others.
        #[arg(long)]
        skip_invalid: bool,
    },
    /// Every suggestion.
    List,
    /// One suggestion with its evidence and history.
    Show { id: String },
    /// Move a suggestion one step: suggested → dryrun → warn → enforced.
    Advance {
        id: String,
        #[arg(long, short = 'j')]
        justification: String,
    },
    Reject {
        id: String,
        #[arg(long, short = 'j')]
        justification: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum Audit {
    /// A page of the chain.
    List {
        #[arg(long, default_value_t = 100)]
        limit: u32,
    },
    /// Check every hash and link here, and the server's head, signed checkpoints and acted runs.
    Verify,
}

#[derive(Debug, Subcommand)]
pub enum Settings {
    Show,
    /// Change the settings (role admin); signed and audited.
    Set {
        #[arg(long)]
        allow_self_approval: bool,
        #[arg(long, short = 'j')]
        justification: String,
    },
}

/// A resource name is a path (`deployment/payments`): each segment encoded, the slashes kept.
fn sim_path(resource: &str) -> String {
    format!("/sim/resources/{}", resource.split('/').map(enc).collect::<Vec<_>>().join("/"))
}

fn read_file(path: &PathBuf) -> Result<Vec<u8>, CliError> {
    if path.as_os_str() == "-" {
        let mut buf = Vec::new();
        std::io::Read::read_to_end(&mut std::io::stdin(), &mut buf)
            .map_err(|e| CliError::usage(format!("cannot read stdin: {e}")))?;
        return Ok(buf);
    }
    std::fs::read(path).map_err(|e| CliError::usage(format!("cannot read {}: {e}", path.display())))
}

fn json_arg(what: &str, text: &str) -> Result<Value, CliError> {
    match serde_json::from_str::<Value>(text) {
        Ok(v @ Value::Object(_)) => Ok(v),
        _ => Err(CliError::usage(format!("{what} must be a JSON object"))),
    }
}

/// Print an answer: JSON as it came, or the table `table` draws.
fn show(ctx: &Ctx, body: &Value, table: impl FnOnce(&Value) -> String) {
    match ctx.output {
        Output::Json => print_json(body),
        Output::Table => render::out(table(body).trim_end()),
    }
}

pub async fn run(ctx: &Ctx, command: Command) -> Result<(), CliError> {
    let c = &ctx.client;
    match command {
        Command::Health => {
            let a = c.send(Method::GET, "/health", Body::None, None).await?;
            show(ctx, &a.body, render::health);
        }
        Command::Ingest(args) => ingest_file(ctx, args).await?,
        Command::Signals { limit } => {
            let body = c.get(&format!("/signals?limit={limit}")).await?;
            show(ctx, &body, render::signals);
        }
        Command::Runs(r) => runs(ctx, r).await?,
        Command::Wpk(w) => match w {
            Wpk::Register { file } => {
                let bytes = read_file(&file)?;
                let is_json = bytes.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{');
                let content_type = if is_json { "application/json" } else { "application/yaml" };
                let a = c.post("/wpk", Body::Raw { bytes, content_type }).await?;
                show(ctx, &a.body, |b| render::fields(b, &["id", "version", "sha256", "key_id"]));
            }
            Wpk::List => show(ctx, &c.get("/wpk").await?, render::wpks),
            Wpk::Show { id } => show(ctx, &c.get(&format!("/wpk/{}", enc(&id))).await?, render::wpk_versions),
            Wpk::Promote { id, version, justification } => {
                let a = c
                    .post(
                        &format!("/wpk/{}/promote", enc(&id)),
                        Body::Json(json!({"version": version, "justification": justification})),
                    )
                    .await?;
                show(ctx, &a.body, |b| render::fields(b, &["approver", "justification", "at"]));
            }
        },
        Command::Models(m) => match m {
            Models::Train { window_hours, wait } => {
                let body = window_hours.map_or(json!({}), |h| json!({"window_hours": h}));
                let a = c.post("/models/train", Body::Json(body)).await?;
                let job = a.body["job_id"].as_str().unwrap_or_default().to_owned();
                if wait {
                    let done = watch::job(ctx, &job).await?;
                    show(ctx, &done, render::job);
                    if done["status"] != "succeeded" {
                        return Err(CliError::failed(format!(
                            "training job {job} {}: {}",
                            done["status"].as_str().unwrap_or("?"),
                            done["error"].as_str().unwrap_or("no reason given")
                        )));
                    }
                } else {
                    show(ctx, &a.body, |b| {
                        format!(
                            "{}\nfollow it: naksha jobs show {job}  (or naksha models train --wait)",
                            render::fields(b, &["job_id", "status"])
                        )
                    });
                }
            }
            Models::List => show(ctx, &c.get("/models").await?, render::models),
            Models::Show { model_id } => {
                show(ctx, &c.get(&format!("/models/{}", enc(&model_id))).await?, render::model)
            }
            Models::Verify { model_id, public_key, kms_key } => {
                let answer = c.get(&format!("/models/{}", enc(&model_id))).await?;
                let key = match public_key {
                    Some(path) => verify::public_key_from_file(&path)?,
                    None => verify::public_key_from_kms(&kms_key).await?,
                };
                let report = verify::model(&answer, &key, &ctx.claims);
                show(ctx, &report, render::verification);
                if report["verified"] != true {
                    return Err(CliError::failed(format!(
                        "model {model_id} does not verify: {}",
                        report["error"].as_str().unwrap_or("?")
                    )));
                }
            }
        },
        Command::Jobs(Jobs::Show { job_id }) => {
            show(ctx, &c.get(&format!("/jobs/{}", enc(&job_id))).await?, render::job)
        }
        Command::Chaos(ch) => chaos(ctx, ch).await?,
        Command::Sim(Sim::Scenario { name }) => {
            let a = c.post(&format!("/sim/scenarios/{}", enc(&name)), Body::Json(json!({}))).await?;
            show(ctx, &a.body, render::scenario);
        }
        Command::Sim(Sim::Get { resource }) => show(ctx, &c.get(&sim_path(&resource)).await?, render::generic),
        Command::Sim(Sim::Put { resource, kind, replicas, healthy, version, chaos_target }) => {
            let body = json!({"kind": kind, "replicas": replicas, "healthy": healthy, "version": version, "chaos_target": chaos_target});
            let key = uuid::Uuid::now_v7().to_string();
            let a = c.send(Method::PUT, &sim_path(&resource), Body::Json(body), Some(&key)).await?;
            show(ctx, &a.body, render::generic);
        }
        Command::Routes => {
            let rows: Vec<Value> = ROUTES
                .iter()
                .map(|(m, p, cmd)| json!({"method": m.to_uppercase(), "path": p, "command": cmd}))
                .collect();
            show(ctx, &json!({"routes": rows}), |v| {
                render::table(
                    v["routes"].as_array().map_or(&[][..], Vec::as_slice),
                    &[("method", "/method"), ("path", "/path"), ("command", "/command")],
                )
            });
        }
        Command::Metrics => {
            let a = c.send(Method::GET, "/metrics", Body::None, None).await?;
            render::out(a.text.trim_end());
        }
        Command::Edge(e) => match e {
            Edge::Nodes { node_id: None } => show(ctx, &c.get("/federation/nodes").await?, render::nodes),
            Edge::Nodes { node_id: Some(id) } => {
                show(ctx, &c.get(&format!("/federation/nodes/{}", enc(&id))).await?, |b| {
                    render::fields(
                        b,
                        &["node_id", "status", "last_seen", "registered_at", "version", "kid", "labels", "halt_seen"],
                    )
                })
            }
            Edge::Keys => show(ctx, &c.get("/federation/keys").await?, render::keys),
        },
        Command::Triggers(t) => match t {
            Triggers::Send { wpk, node, labels, params, ttl, max_per_minute, abort_failure_percent } => {
                let (id, version) =
                    match wpk.split_once('@') {
                        Some((i, v)) => (
                            i.to_owned(),
                            Some(v.parse::<u32>().map_err(|_| {
                                CliError::usage(format!("{wpk:?}: the version after @ must be a number"))
                            })?),
                        ),
                        None => (wpk.clone(), None),
                    };
                let mut wpk_ref = json!({"id": id});
                if let Some(v) = version {
                    wpk_ref["version"] = json!(v);
                }
                let target = match node {
                    Some(n) => json!({"node_id": n}),
                    None => {
                        json!({"labels": labels.into_iter().map(|(k, v)| (k, Value::String(v))).collect::<Map<String, Value>>()})
                    }
                };
                let mut body = json!({"wpk": wpk_ref, "target": target, "params": json_arg("--params", &params)?, "ttl_seconds": ttl});
                if max_per_minute.is_some() || abort_failure_percent.is_some() {
                    let mut rollout = Map::new();
                    if let Some(m) = max_per_minute {
                        rollout.insert("max_per_minute".into(), json!(m));
                    }
                    if let Some(p) = abort_failure_percent {
                        rollout.insert("abort_failure_percent".into(), json!(p));
                    }
                    body["rollout"] = Value::Object(rollout);
                }
                let a = c.post("/federation/triggers", Body::Json(body)).await?;
                show(ctx, &a.body, |b| render::fields(b, &["trigger_id", "nodes"]));
            }
            Triggers::Show { trigger_id } => {
                show(ctx, &c.get(&format!("/federation/triggers/{}", enc(&trigger_id))).await?, render::trigger)
            }
        },
        Command::Policies(p) => match p {
            Policies::Learn { file, skip_invalid } => {
                let bytes = read_file(&file)?;
                let path = if skip_invalid { "/learn?skip_invalid=true" } else { "/learn" };
                let a = c.post(path, Body::Raw { bytes, content_type: "application/x-ndjson" }).await?;
                show(ctx, &a.body, render::learned);
            }
            Policies::List => show(ctx, &c.get("/policies/suggestions").await?, render::suggestions),
            Policies::Show { id } => {
                show(ctx, &c.get(&format!("/policies/suggestions/{}", enc(&id))).await?, render::suggestion)
            }
            Policies::Advance { id, justification } => {
                let a = c
                    .post(
                        &format!("/policies/suggestions/{}/advance", enc(&id)),
                        Body::Json(json!({"justification": justification})),
                    )
                    .await?;
                show(ctx, &a.body, render::suggestion);
            }
            Policies::Reject { id, justification } => {
                let a = c
                    .post(
                        &format!("/policies/suggestions/{}/reject", enc(&id)),
                        Body::Json(json!({"justification": justification})),
                    )
                    .await?;
                show(ctx, &a.body, render::suggestion);
            }
        },
        Command::Compliance { markdown } => {
            if markdown {
                let a = c.send(Method::GET, "/compliance?format=markdown", Body::None, None).await?;
                render::out(a.text.trim_end());
            } else {
                show(ctx, &c.get("/compliance").await?, render::compliance);
            }
        }
        Command::Audit(a) => match a {
            Audit::List { limit } => show(ctx, &c.get(&format!("/agent/audit?limit={limit}")).await?, render::audit),
            Audit::Verify => {
                let report = verify::audit(c).await?;
                show(ctx, &report, render::verification);
                if report["verified"] != true {
                    return Err(CliError::failed("the audit chain does not verify"));
                }
            }
        },
        Command::Halt { reason } => {
            let a = c.post("/agent/halt", Body::Json(json!({"reason": reason}))).await?;
            show(ctx, &a.body, |b| render::fields(b, &["halted", "reason"]));
        }
        Command::Resume => {
            let a = c.post("/agent/resume", Body::None).await?;
            show(ctx, &a.body, |b| render::fields(b, &["halted"]));
        }
        Command::Settings(s) => match s {
            Settings::Show => show(ctx, &c.get("/agent/settings").await?, render::generic),
            Settings::Set { allow_self_approval, justification } => {
                let a = c
                    .post(
                        "/agent/settings",
                        Body::Json(json!({"allow_self_approval": allow_self_approval, "justification": justification})),
                    )
                    .await?;
                show(ctx, &a.body, render::generic);
            }
        },
        Command::Completions { .. } => {}
    }
    Ok(())
}

async fn ingest_file(ctx: &Ctx, args: IngestArgs) -> Result<(), CliError> {
    let bytes = read_file(&args.file)?;
    let text =
        String::from_utf8(bytes).map_err(|_| CliError::usage(format!("{} is not UTF-8 text", args.file.display())))?;
    let name = args.name.clone().unwrap_or_else(|| {
        args.file.file_stem().and_then(|s| s.to_str()).filter(|s| *s != "-").unwrap_or("series").to_owned()
    });
    let shape = Shape {
        format: args.format.unwrap_or_else(|| ingest::format_of(&args.file)),
        source: args.source.clone(),
        name,
        labels: args.labels.iter().map(|(k, v)| (k.clone(), Value::String(v.clone()))).collect(),
        shift_to_now: args.shift_to_now,
    };
    let (lines, mut rejected) = ingest::read(&text, &shape);
    if lines.is_empty() && rejected.is_empty() {
        return Err(CliError::usage(format!("{} holds no events", args.file.display())));
    }
    // Keys from the content sent (after shifting, the times differ and so do the keys).
    let sent: Vec<&Value> = lines.iter().map(|l| &l.event).collect();
    let digest = sha256_hex(&serde_json::to_vec(&sent).unwrap_or_default());
    let quiet = ctx.quiet || ctx.output == Output::Json || !std::io::stderr().is_terminal();
    let mut outcome = ingest::send(&ctx.client, lines, usize::from(args.batch), &digest[..24], quiet).await?;
    let unreadable = rejected.len();
    let refused = outcome.rejected.len();
    rejected.append(&mut outcome.rejected);
    rejected.sort_by_key(|r| r.line);
    let eps = if outcome.seconds > 0.0 { outcome.accepted as f64 / outcome.seconds } else { 0.0 };
    let report = json!({
        "file": args.file.display().to_string(),
        "read": outcome.read + unreadable,
        "accepted": outcome.accepted,
        "requests": outcome.requests,
        "seconds": (outcome.seconds * 1000.0).round() / 1000.0,
        "events_per_second": eps.round(),
        "rejected": rejected.iter().map(|r| json!({"line": r.line, "reason": r.reason})).collect::<Vec<_>>(),
        "unsent_lines": outcome.unsent,
    });
    show(ctx, &report, render::ingested);
    if !outcome.unsent.is_empty() {
        return Err(CliError::failed(format!(
            "{} events could not be delivered; run the same command again to send exactly those (the others are not counted twice)",
            outcome.unsent.len()
        )));
    }
    if refused > 0 {
        return Err(CliError::Refused {
            status: 400,
            title: "Some events were rejected".into(),
            detail: format!("{} of {} lines were not written (listed); the rest were", rejected.len(), report["read"]),
            errors: Vec::new(),
        });
    }
    if unreadable > 0 {
        return Err(CliError::usage(format!(
            "{unreadable} of {} lines could not be read and were not sent (listed); the rest were written",
            report["read"]
        )));
    }
    Ok(())
}

async fn runs(ctx: &Ctx, r: Runs) -> Result<(), CliError> {
    let c = &ctx.client;
    match r {
        Runs::List { status, limit } => {
            let mut path = format!("/agent/runs?limit={limit}");
            if let Some(s) = status {
                path.push_str(&format!("&status={}", enc(&s)));
            }
            show(ctx, &c.get(&path).await?, render::runs);
        }
        Runs::Start { signal, resource, dry_run, telemetry } => {
            let mut body = json!({"signal": signal, "resource": resource, "dry_run": dry_run});
            if let Some(t) = telemetry {
                body["telemetry"] = json_arg("--telemetry", &t)?;
            }
            let a = c.post("/agent/run", Body::Json(body)).await?;
            show(ctx, &a.body, |b| {
                let id = b["run_id"].as_str().unwrap_or_default();
                format!("{}\nfollow it: naksha runs watch {id}", render::fields(b, &["run_id", "status"]))
            });
        }
        Runs::Show { run_id } => show(ctx, &c.get(&format!("/agent/status/{}", enc(&run_id))).await?, render::run),
        Runs::Watch { run_id, until, timeout } => {
            let end = watch::run(ctx, &run_id, &until, timeout).await?;
            if ctx.output == Output::Json {
                print_json(&end);
            }
            let status = end["status"].as_str().unwrap_or_default();
            if matches!(status, "failed" | "rejected" | "aborted") && !until.iter().any(|u| u == status) {
                return Err(CliError::failed(format!(
                    "run {run_id} {status}: {}",
                    end["outcome"]["reason"].as_str().or(end["outcome"].as_str()).unwrap_or("see naksha runs show")
                )));
            }
        }
        Runs::Approve { run_id, justification, yes } => {
            let run = c.get(&format!("/agent/status/{}", enc(&run_id))).await?;
            if run["status"] != "awaiting_approval" {
                return Err(CliError::Refused {
                    status: 409,
                    title: "Not awaiting approval".into(),
                    detail: format!("run {run_id} is {}", run["status"].as_str().unwrap_or("?")),
                    errors: Vec::new(),
                });
            }
            let sha = run["plan"]["sha256"].as_str().unwrap_or_default().to_owned();
            // The plan goes to stderr so that `-o json` keeps stdout for the answer.
            eprintln!("{}", render::plan(&run));
            if !yes && !confirm(&format!("Approve this plan ({})?", &sha[..sha.len().min(12)]))? {
                return Err(CliError::failed("not approved: nothing was sent"));
            }
            let a = c
                .post(
                    &format!("/agent/runs/{}/approve", enc(&run_id)),
                    Body::Json(json!({"justification": justification, "plan_sha256": sha})),
                )
                .await?;
            show(ctx, &a.body, |b| {
                format!("{}\nfollow it: naksha runs watch {run_id}", render::fields(b, &["run_id", "status"]))
            });
        }
        Runs::Reject { run_id, justification } => {
            let a = c
                .post(
                    &format!("/agent/runs/{}/reject", enc(&run_id)),
                    Body::Json(json!({"justification": justification})),
                )
                .await?;
            show(ctx, &a.body, |b| render::fields(b, &["run_id", "status"]));
        }
    }
    Ok(())
}

/// Ask on stderr, read a line from stdin: only `y` or `yes` is a yes.
fn confirm(question: &str) -> Result<bool, CliError> {
    eprint!("{question} [y/N] ");
    let _ = std::io::stderr().flush();
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .map_err(|e| CliError::failed(format!("cannot read the answer: {e}")))?;
    Ok(matches!(line.trim().to_ascii_lowercase().as_str(), "y" | "yes"))
}

async fn chaos(ctx: &Ctx, ch: Chaos) -> Result<(), CliError> {
    let c = &ctx.client;
    match ch {
        Chaos::Run { spec, target, dry_run, wait, timeout } => {
            let mut body = json!({"spec": spec, "dry_run": dry_run});
            if let Some(t) = target {
                body["target"] = json!(t);
            }
            let a = c.post("/chaos/run", Body::Json(body)).await?;
            let id = a.body["run_id"].as_str().unwrap_or_default().to_owned();
            if !wait {
                show(ctx, &a.body, |b| {
                    format!("{}\nfollow it: naksha chaos show {id}", render::fields(b, &["run_id", "status"]))
                });
                return Ok(());
            }
            let done = watch::chaos(ctx, &id, timeout).await?;
            show(ctx, &done, render::chaos_recovery);
            if done["verdict"] != "recovered" && !dry_run {
                return Err(CliError::failed(format!(
                    "chaos run {id}: {}{}",
                    done["verdict"].as_str().unwrap_or("no verdict"),
                    done["reason"].as_str().map(|r| format!(" ({r})")).unwrap_or_default()
                )));
            }
        }
        Chaos::List => show(ctx, &c.get("/chaos/runs").await?, render::chaos_runs),
        Chaos::Show { run_id } => show(ctx, &c.get(&format!("/chaos/runs/{}", enc(&run_id))).await?, render::chaos_run),
        Chaos::Abort { run_id } => {
            let a = c.post(&format!("/chaos/runs/{}/abort", enc(&run_id)), Body::None).await?;
            show(ctx, &a.body, render::generic);
        }
        Chaos::Specs(ChaosSpecs::List) => show(ctx, &c.get("/chaos/specs").await?, render::chaos_specs),
        Chaos::Specs(ChaosSpecs::Add { file }) => {
            let bytes = read_file(&file)?;
            let a = c.post("/chaos/specs", Body::Raw { bytes, content_type: "application/json" }).await?;
            show(ctx, &a.body, render::generic);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::ROUTES;

    /// `(method, path)` of every operation in docs/openapi.yaml.
    fn spec_routes() -> Vec<(String, String)> {
        let text = include_str!("../../docs/openapi.yaml");
        let mut out = Vec::new();
        let mut in_paths = false;
        let mut path = String::new();
        for line in text.lines() {
            if line.starts_with("paths:") {
                in_paths = true;
                continue;
            }
            if in_paths && !line.starts_with(' ') && !line.is_empty() {
                break;
            }
            if let Some(p) = line.strip_prefix("  /") {
                path = format!("/{}", p.trim_end_matches(':'));
            } else if let Some(m) = line.strip_prefix("    ").and_then(|m| m.strip_suffix(':'))
                && ["get", "post", "put", "delete", "patch"].contains(&m)
            {
                out.push((m.to_owned(), path.clone()));
            }
        }
        out
    }

    #[test]
    fn every_route_of_the_spec_has_a_command_or_is_the_edge_nodes() {
        let spec = spec_routes();
        assert!(spec.len() > 40, "the spec was read: {spec:?}");
        for (m, p) in &spec {
            assert!(ROUTES.iter().any(|(rm, rp, _)| rm == m && rp == p), "{m} {p} has no command in ROUTES");
        }
        for (m, p, _) in ROUTES {
            assert!(spec.iter().any(|(sm, sp)| sm == m && sp == p), "{m} {p} in ROUTES is not in the spec");
        }
    }

    #[test]
    fn simulated_resources_keep_their_slashes() {
        assert_eq!(super::sim_path("deployment/pay ments"), "/sim/resources/deployment/pay%20ments");
    }
}
