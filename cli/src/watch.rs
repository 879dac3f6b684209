//! Live views of long work, by polling: a run's graph step by step, a training job's progress, a
//! chaos experiment's timeline. Each prints only what is new since the last poll.

use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};
use serde_json::Value;

use crate::client::{CliError, enc};
use crate::{Ctx, Output, render};

const POLL: Duration = Duration::from_millis(700);

fn live(ctx: &Ctx) -> bool {
    !ctx.quiet && ctx.output == Output::Table
}

/// Follow a run until it ends or reaches one of `until`; prints each step as it completes.
pub async fn run(ctx: &Ctx, run_id: &str, until: &[String], timeout_s: u64) -> Result<Value, CliError> {
    let started = Instant::now();
    let mut shown_steps = 0usize;
    let mut last_status = String::new();
    let path = format!("/agent/status/{}", enc(run_id));
    loop {
        let run = ctx.client.get(&path).await?;
        let status = run["status"].as_str().unwrap_or_default().to_owned();
        let steps = run["steps"].as_array().cloned().unwrap_or_default();
        if live(ctx) {
            if shown_steps == 0 && last_status.is_empty() {
                render::out(&format!(
                    "run {run_id}: {} on {}",
                    run["signal"].as_str().unwrap_or("?"),
                    run["resource"].as_str().unwrap_or("?")
                ));
            }
            for step in steps.iter().skip(shown_steps) {
                render::out(&render::step_line(step));
            }
            if status != last_status {
                render::out(&render::status_line(&run));
            }
        }
        shown_steps = steps.len();
        last_status = status.clone();
        let is_final = matches!(status.as_str(), "succeeded" | "failed" | "rejected" | "aborted");
        if is_final || until.contains(&status) {
            return Ok(run);
        }
        if started.elapsed() > Duration::from_secs(timeout_s) {
            return Err(CliError::failed(format!("run {run_id} is still {status} after {timeout_s} s")));
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Follow a training job with a progress bar driven by its `progress` (0..1) and `stage`.
pub async fn job(ctx: &Ctx, job_id: &str) -> Result<Value, CliError> {
    let bar = if live(ctx) { ProgressBar::new(1000) } else { ProgressBar::hidden() };
    bar.set_style(
        ProgressStyle::with_template("{spinner} [{elapsed_precise}] {wide_bar} {percent:>3}%  {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let path = format!("/jobs/{}", enc(job_id));
    loop {
        let job = ctx.client.get(&path).await?;
        let progress = job["progress"].as_f64().unwrap_or(0.0).clamp(0.0, 1.0);
        bar.set_position((progress * 1000.0).round() as u64);
        bar.set_message(format!("{} {}", job["status"].as_str().unwrap_or(""), job["stage"].as_str().unwrap_or("")));
        if matches!(job["status"].as_str(), Some("succeeded" | "failed")) {
            bar.finish_and_clear();
            return Ok(job);
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Follow a chaos run: each timeline event as it happens, then its recovery times.
pub async fn chaos(ctx: &Ctx, run_id: &str, timeout_s: u64) -> Result<Value, CliError> {
    let started = Instant::now();
    let mut shown = 0usize;
    let path = format!("/chaos/runs/{}", enc(run_id));
    loop {
        let run = ctx.client.get(&path).await?;
        let timeline = run["timeline"].as_array().cloned().unwrap_or_default();
        if live(ctx) {
            if shown == 0 && !timeline.is_empty() {
                render::out(&format!(
                    "chaos run {run_id}: {} on {}",
                    run["spec"].as_str().unwrap_or("?"),
                    run["target"].as_str().unwrap_or("?")
                ));
            }
            let t0 = timeline.first().and_then(|e| e["at"].as_str()).unwrap_or_default().to_owned();
            for e in timeline.iter().skip(shown) {
                render::out(&render::timeline_line(e, &t0));
            }
        }
        shown = timeline.len();
        if matches!(run["status"].as_str(), Some("completed" | "aborted")) {
            return Ok(run);
        }
        if started.elapsed() > Duration::from_secs(timeout_s) {
            return Err(CliError::failed(format!("chaos run {run_id} has not finished after {timeout_s} s")));
        }
        tokio::time::sleep(POLL).await;
    }
}
