//! `edge-node`: a Naksha edge node. It keeps its own P-256 key and state in `--state DIR`,
//! registers with the federation hub using the token in `--token-file` (role `edge`; the node id
//! is the token's `sub`), and then heartbeats, polls for work, verifies every trigger (the hub's
//! signature and the WPK's, tenant, node, time, replay, downgrade, the kill switch) before it
//! acts, and reports results signed with its key. It keeps working while the hub is unreachable
//! and delivers held results once it answers. SIGTERM or Ctrl-C stop it cleanly between steps.
//!
//! ```text
//! edge-node --hub http://127.0.0.1:9000 --token-file node.jwt --state ./edge-a --labels site=store-1,tier=edge
//! edge-node status --state ./edge-a        # what the node holds, as JSON (never its key)
//! ```

mod hub;
mod node;
mod store;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use clap::{Parser, Subcommand};
use naksha_act::k8s::K8sAdapter;
use naksha_contracts::edge::HubKey;

#[derive(Debug, Parser)]
#[command(name = "edge-node", version, about = "A Naksha edge node: verified, signed remediation far from the cloud.")]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    run: RunArgs,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Print what the node holds (identity, pinned keys, triggers, refusals, results, world) as JSON.
    Status {
        #[arg(long)]
        state: PathBuf,
    },
}

#[derive(Debug, clap::Args)]
struct RunArgs {
    /// The federation hub's API (the API Gateway URL; locally http://127.0.0.1:9000).
    #[arg(long, env = "NAKSHA_HUB")]
    hub: Option<String>,
    /// A file holding the node's JWT (role edge); re-read on every call.
    #[arg(long, env = "NAKSHA_EDGE_TOKEN_FILE")]
    token_file: Option<PathBuf>,
    /// The node's state directory (its key, what it has run, its simulated world).
    #[arg(long)]
    state: Option<PathBuf>,
    /// Labels, `k=v,k=v` (rollouts select nodes by them).
    #[arg(long, default_value = "")]
    labels: String,
    /// Milliseconds between polls when there is nothing to do (jittered).
    #[arg(long, default_value_t = 2000)]
    poll_interval_ms: u64,
    /// Seconds the hub may hold a poll open waiting for work (0 to 20).
    #[arg(long, default_value_t = 0)]
    wait: u64,
    /// Seconds between heartbeats.
    #[arg(long, default_value_t = 15)]
    heartbeat_secs: u64,
    /// A JSON file of hub keys to pin (`[{"kid","public_key_pem"}]`) instead of trusting the
    /// ones a first registration hands out.
    #[arg(long)]
    hub_keys: Option<PathBuf>,
    /// A JSON file of simulated resources to put in the local world where absent
    /// (`{"deployment/payments": {"kind","replicas","healthy","version"}}`).
    #[arg(long)]
    world: Option<PathBuf>,
    /// Milliseconds to wait before each act (simulates slow work).
    #[arg(long, default_value_t = 0)]
    act_delay_ms: u64,
    /// A Kubernetes API server for `k8s` steps, with `--k8s-token-file` and `--k8s-namespace`.
    #[arg(long)]
    k8s_url: Option<String>,
    #[arg(long)]
    k8s_token_file: Option<PathBuf>,
    #[arg(long, default_value = "default")]
    k8s_namespace: String,
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("EDGE_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ =
        tracing_subscriber::fmt().json().with_target(false).with_current_span(false).with_env_filter(filter).try_init();
}

fn labels(raw: &str) -> Result<BTreeMap<String, String>, String> {
    raw.split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(|p| {
            p.split_once('=')
                .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
                .ok_or_else(|| format!("label {p:?} is not k=v"))
        })
        .collect()
}

fn settings(a: &RunArgs) -> Result<node::Settings, String> {
    let hub_keys = match &a.hub_keys {
        None => None,
        Some(p) => {
            let text = std::fs::read_to_string(p).map_err(|e| format!("{}: {e}", p.display()))?;
            Some(serde_json::from_str::<Vec<HubKey>>(&text).map_err(|e| format!("{}: {e}", p.display()))?)
        }
    };
    let k8s = match &a.k8s_url {
        None => None,
        Some(url) => {
            let token = match &a.k8s_token_file {
                Some(p) => {
                    Some(std::fs::read_to_string(p).map_err(|e| format!("{}: {e}", p.display()))?.trim().to_owned())
                }
                None => None,
            };
            Some(K8sAdapter::new(url.clone(), token, a.k8s_namespace.clone()))
        }
    };
    Ok(node::Settings {
        labels: labels(&a.labels)?,
        version: env!("CARGO_PKG_VERSION").to_owned(),
        poll_interval: Duration::from_millis(a.poll_interval_ms.max(50)),
        wait: a.wait.min(20),
        heartbeat: Duration::from_secs(a.heartbeat_secs.max(1)),
        hub_keys,
        act_delay: Duration::from_millis(a.act_delay_ms),
        k8s,
        world: a.world.clone(),
    })
}

async fn run(a: RunArgs) -> Result<(), String> {
    let (Some(hub), Some(token_file), Some(state_dir)) = (&a.hub, &a.token_file, &a.state) else {
        return Err("--hub, --token-file and --state are required (see --help)".into());
    };
    let settings = settings(&a)?;
    let state = store::State::open(state_dir).map_err(|e| e.to_string())?;
    let hub = hub::Hub::new(hub, token_file.clone()).map_err(|e| e.to_string())?;
    let stop = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&stop);
    tokio::spawn(async move {
        let term = async {
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(mut s) => {
                    s.recv().await;
                }
                Err(_) => std::future::pending::<()>().await,
            }
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {},
            _ = term => {},
        }
        tracing::info!("stop requested; finishing the current step");
        flag.store(true, Ordering::Relaxed);
    });
    let node = node::start(hub, state, settings, Arc::clone(&stop)).await.map_err(|e| e.to_string())?;
    node.run().await.map_err(|e| e.to_string())
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging();
    let outcome = match cli.command {
        Some(Command::Status { state }) => store::State::open(&state)
            .and_then(|s| s.status())
            .map(|v| println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default()))
            .map_err(|e| e.to_string()),
        None => run(cli.run).await,
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "edge-node failed");
            eprintln!("edge-node: {e}");
            ExitCode::FAILURE
        }
    }
}
