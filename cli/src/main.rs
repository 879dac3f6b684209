//! `naksha`: the command line for the Naksha API.
//!
//! Configured by `--api`/`--token`, else `NAKSHA_API`/`NAKSHA_TOKEN`, else the config file
//! (`--config`, `NAKSHA_CONFIG`, or `~/.config/naksha/config.yaml`). Tables for people,
//! `--output json` for scripts. Exit codes: 0 ok, 1 failed, 2 usage, 3 refused by the API.

mod client;
mod commands;
mod ingest;
mod render;
mod verify;
mod watch;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, CommandFactory, Parser, Subcommand, ValueEnum};

use crate::client::{CliError, Client, ConfigFile};

#[derive(Debug, Parser)]
#[command(
    name = "naksha",
    version,
    about = "Operate Naksha: ingest telemetry, watch and approve runs, sign and promote playbooks, train and verify models, run chaos experiments, steer edge nodes, learn policy."
)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args)]
pub struct Global {
    /// The API's base URL [default: http://127.0.0.1:9000]
    #[arg(long, global = true, env = "NAKSHA_API")]
    pub api: Option<String>,
    /// A bearer token (JWT). Prefer NAKSHA_TOKEN or a config file to keeping it in shell history.
    #[arg(long, global = true, env = "NAKSHA_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// A file that holds the token.
    #[arg(long, global = true, env = "NAKSHA_TOKEN_FILE")]
    pub token_file: Option<PathBuf>,
    /// The config file (YAML: api, token or token_file, output).
    #[arg(long, global = true, env = "NAKSHA_CONFIG")]
    pub config: Option<PathBuf>,
    /// How to print answers.
    #[arg(long, short = 'o', global = true, value_enum)]
    pub output: Option<Output>,
    /// Retries of a request a retry can help (429, 5xx, no answer); writes keep one idempotency key.
    #[arg(long, global = true, env = "NAKSHA_RETRIES", default_value_t = 5)]
    pub retries: u32,
    /// No progress bars or live views; only the final answer.
    #[arg(long, short = 'q', global = true)]
    pub quiet: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Output {
    Table,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Is the API up, and its dependencies (with a token, each one is named).
    Health,
    /// Send telemetry from a file: a CSV in NAB's timestamp,value shape, or JSON lines.
    Ingest(commands::IngestArgs),
    /// The fleet-wide counters, in Prometheus text.
    Metrics,
    /// Series with an open anomaly signal.
    Signals {
        #[arg(long, default_value_t = 100)]
        limit: u32,
    },
    /// Agent runs: list, start, show, watch, approve, reject.
    #[command(subcommand)]
    Runs(commands::Runs),
    /// Signed playbooks (WPKs): register, list, show, promote.
    #[command(subcommand)]
    Wpk(commands::Wpk),
    /// Detector and remediation models: train, list, show, verify.
    #[command(subcommand)]
    Models(commands::Models),
    /// A training job's progress.
    #[command(subcommand)]
    Jobs(commands::Jobs),
    /// Chaos experiments: specs, runs, aborts.
    #[command(subcommand)]
    Chaos(commands::Chaos),
    /// Simulation mode: seed the tenant with a scenario's deployments, telemetry and WPKs.
    #[command(subcommand)]
    Sim(commands::Sim),
    /// Edge nodes and the hub's keys.
    #[command(subcommand)]
    Edge(commands::Edge),
    /// Signed triggers to edge nodes: send one, show its rollout.
    #[command(subcommand)]
    Triggers(commands::Triggers),
    /// Policy suggestions learned from audit logs: learn, list, show, advance, reject.
    #[command(subcommand)]
    Policies(commands::Policies),
    /// Where each service stands against P-1…P-6.
    Compliance {
        /// The API's markdown table instead.
        #[arg(long)]
        markdown: bool,
    },
    /// The tenant's hash-chained audit log: list it, or verify it here and on the server.
    #[command(subcommand)]
    Audit(commands::Audit),
    /// Engage the tenant's kill switch: every act is refused until `naksha resume`.
    Halt {
        #[arg(long, short = 'r', default_value = "halted from the naksha CLI")]
        reason: String,
    },
    /// Release the kill switch.
    Resume,
    /// The tenant's safety settings.
    #[command(subcommand)]
    Settings(commands::Settings),
    /// Every API route and the command that calls it.
    Routes,
    /// Print shell completions (bash, zsh, fish, elvish, powershell).
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
}

/// What every command is given: the client and how to print.
#[derive(Debug)]
pub struct Ctx {
    pub client: Client,
    pub output: Output,
    pub quiet: bool,
    /// The token's claims, read (not verified: the API does that) to name the caller.
    pub claims: serde_json::Value,
}

fn context(global: &Global) -> Result<Ctx, CliError> {
    let file = ConfigFile::load(global.config.as_deref())?;
    let api = global.api.clone().or(file.api).unwrap_or_else(|| "http://127.0.0.1:9000".to_owned());
    let token_file = global.token_file.clone().or(file.token_file);
    let token = match (global.token.clone(), token_file) {
        (Some(t), _) => Some(t),
        (None, Some(path)) => Some(
            std::fs::read_to_string(&path)
                .map_err(|e| CliError::usage(format!("cannot read the token file {}: {e}", path.display())))?
                .trim()
                .to_owned(),
        ),
        (None, None) => file.token,
    }
    .filter(|t| !t.is_empty());
    let output = match (global.output, file.output.as_deref()) {
        (Some(o), _) => o,
        (None, Some("json")) => Output::Json,
        (None, Some("table") | None) => Output::Table,
        (None, Some(other)) => {
            return Err(CliError::usage(format!("output {other:?} in the config file: use table or json")));
        }
    };
    let claims = token.as_deref().map(verify::claims).unwrap_or_default();
    let mut client = Client::new(&api, token)?;
    client.attempts = global.retries.saturating_add(1);
    Ok(Ctx { client, output, quiet: global.quiet, claims })
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Command::Completions { shell } = cli.command {
        clap_complete::generate(shell, &mut Cli::command(), "naksha", &mut std::io::stdout());
        return ExitCode::SUCCESS;
    }
    let result = context(&cli.global).and_then(|ctx| {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| CliError::failed(format!("cannot start the runtime: {e}")))?;
        rt.block_on(commands::run(&ctx, cli.command))
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let label = match e {
                CliError::Refused { .. } => "refused",
                CliError::Usage(_) => "usage",
                CliError::Failed(_) => "error",
            };
            eprintln!("naksha: {label}: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_command_line_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn completions_name_every_command() {
        let mut out = Vec::new();
        clap_complete::generate(clap_complete::Shell::Bash, &mut Cli::command(), "naksha", &mut out);
        let text = String::from_utf8_lossy(&out);
        for cmd in [
            "ingest",
            "runs",
            "approve",
            "wpk",
            "models",
            "verify",
            "chaos",
            "triggers",
            "policies",
            "compliance",
            "halt",
        ] {
            assert!(text.contains(cmd), "{cmd} missing from bash completions");
        }
    }
}
