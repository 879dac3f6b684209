//! `naksha-report`: write the operations report (`make demo` runs it last).
//!
//! ```text
//! naksha-report --out reports/index.html [--run FILE] [--chaos-dir DIR] [--nab FILE] [--compliance FILE] [--nodes FILE]
//! ```
//! Each input is a JSON answer of the API (or, for `--nab`, a `make nab` result CSV); a missing
//! one leaves its section saying so.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use naksha_report::{Inputs, read_nab, render};
use serde_json::Value;

fn flag(args: &[String], name: &str) -> Option<String> {
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).cloned()
}

fn json(path: Option<String>) -> Result<Option<Value>, String> {
    let Some(p) = path else { return Ok(None) };
    if !Path::new(&p).exists() {
        return Ok(None);
    }
    let text = std::fs::read_to_string(&p).map_err(|e| format!("{p}: {e}"))?;
    serde_json::from_str(&text).map(Some).map_err(|e| format!("{p}: {e}"))
}

fn run() -> Result<PathBuf, String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let out =
        PathBuf::from(flag(&args, "--out").ok_or(
            "usage: naksha-report --out FILE [--run F] [--chaos-dir D] [--nab F] [--compliance F] [--nodes F]",
        )?);
    let mut chaos_runs = Vec::new();
    if let Some(dir) = flag(&args, "--chaos-dir").filter(|d| Path::new(d).is_dir()) {
        let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
            .map_err(|e| format!("{dir}: {e}"))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .collect();
        files.sort();
        for f in files {
            if let Some(v) = json(Some(f.display().to_string()))? {
                chaos_runs.push(v);
            }
        }
    }
    let nab = match flag(&args, "--nab").filter(|p| Path::new(p).exists()) {
        Some(p) => {
            let text = std::fs::read_to_string(&p).map_err(|e| format!("{p}: {e}"))?;
            let name = Path::new(&p)
                .file_stem()
                .and_then(|s| s.to_str())
                .unwrap_or("series")
                .trim_start_matches("naksha_")
                .to_owned();
            Some((name, read_nab(&text).map_err(|e| format!("{p}: {e}"))?))
        }
        None => None,
    };
    let commit = std::process::Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "unknown".into());
    let inputs = Inputs {
        run: json(flag(&args, "--run"))?,
        chaos_runs,
        nab,
        compliance: json(flag(&args, "--compliance"))?,
        nodes: json(flag(&args, "--nodes"))?,
        generated_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        commit,
    };
    if let Some(dir) = out.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    std::fs::write(&out, render(&inputs)).map_err(|e| format!("{}: {e}", out.display()))?;
    Ok(out)
}

fn main() -> ExitCode {
    match run() {
        Ok(out) => {
            println!("wrote {}", out.display());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("naksha-report: {e}");
            ExitCode::FAILURE
        }
    }
}
