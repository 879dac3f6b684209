//! The report in a real headless browser (Debian's `chromium`, installed by `make tools`): it
//! renders every chart, logs no error, and a screenshot of it is an image. The page checks itself
//! on load (`#render-check`); a page with a broken chart or a script error shows the check works.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::Command;

use chrono::{DateTime, Duration, Utc};
use naksha_report::{Inputs, ScoredPoint, render};
use serde_json::{Value, json};

fn chromium() -> PathBuf {
    for name in ["chromium", "chromium-browser", "google-chrome"] {
        for dir in std::env::var("PATH").unwrap_or_default().split(':') {
            let p = Path::new(dir).join(name);
            if p.exists() {
                return p;
            }
        }
    }
    panic!("no chromium on PATH: `make tools` installs Debian's chromium");
}

fn headless(page: &Path, extra: &[&str]) -> (String, String) {
    let dir = page.parent().unwrap();
    let out = Command::new(chromium())
        .args(["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-extensions"])
        .arg(format!("--user-data-dir={}", dir.join("profile").display()))
        .args(["--enable-logging=stderr", "--v=0", "--window-size=1100,3400", "--virtual-time-budget=3000"])
        .args(extra)
        .arg(format!("file://{}", page.display()))
        .output()
        .expect("chromium runs");
    (String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
}

/// The `#render-check` JSON of the page after it loaded.
fn check(page: &Path) -> (Value, String) {
    let (dom, log) = headless(page, &["--dump-dom"]);
    let start = dom.find("<pre id=\"render-check\">").expect("the check element") + "<pre id=\"render-check\">".len();
    let end = start + dom[start..].find("</pre>").unwrap();
    let text = dom[start..end].replace("&quot;", "\"");
    (serde_json::from_str(&text).unwrap_or_else(|e| panic!("check not run ({e}): {text:?}\n{log}")), log)
}

fn temp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("naksha-report-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn inputs() -> Inputs {
    let t0: DateTime<Utc> = "2026-12-04T10:00:00Z".parse().unwrap();
    let at = |ms: i64| (t0 + Duration::milliseconds(ms)).to_rfc3339();
    let steps: Vec<Value> = ["observe", "decide", "plan", "gate", "gate", "act", "verify", "record"]
        .iter()
        .enumerate()
        .map(|(i, n)| {
            let start = if i < 4 { 100 * i as i64 } else { 20_000 + 100 * i as i64 };
            json!({"node": n, "status": "ok", "started_at": at(start), "ended_at": at(start + 60)})
        })
        .collect();
    let run = json!({"run_id": "r1", "status": "succeeded", "signal": "deployment_unhealthy", "resource": "deployment/payments",
        "created_at": at(0), "wpk": {"id": "restart", "version": 1}, "approval": {"approver": "bob", "justification": "INC-1"}, "steps": steps});
    let chaos = ["kill-pod", "latency", "kill-pod"]
        .iter()
        .enumerate()
        .map(|(i, s)| json!({"spec": s, "verdict": "recovered", "recovery": {"mttd_s": 5.0 + i as f64, "mttr_s": 30.0 + 10.0 * i as f64}}))
        .collect();
    let points = (0..2000)
        .map(|i| {
            let label = (1200..1300).contains(&i);
            let score = if i == 1210 {
                0.9
            } else if i == 400 {
                0.6
            } else {
                0.05
            };
            ScoredPoint { at: t0 + Duration::minutes(5 * i), value: 40.0 + (i as f64 / 50.0).sin() * 5.0, score, label }
        })
        .collect();
    let compliance = json!({"score": 0.75, "compliant": 3, "non_compliant": 1, "insufficient_data": 0, "policies": [
        {"id": "P-1", "cells": [{"service": "insight-stream", "status": "COMPLIANT"}, {"service": "autonomous-agent", "status": "COMPLIANT"}]},
        {"id": "P-2", "cells": [{"service": "autonomous-agent", "status": "NON_COMPLIANT"}, {"service": "cll-trainer", "status": "COMPLIANT"}]}]});
    let nodes = json!({"nodes": [{"node_id": "store-1", "status": "online"}, {"node_id": "store-2", "status": "stale"}, {"node_id": "store-3", "status": "online"}]});
    Inputs {
        run: Some(run),
        chaos_runs: chaos,
        nab: Some(("ec2_cpu".into(), points)),
        compliance: Some(compliance),
        nodes: Some(nodes),
        generated_at: at(0),
        commit: "test".into(),
    }
}

fn console_errors(log: &str) -> Vec<&str> {
    log.lines()
        .filter(|l| l.contains("CONSOLE") && (l.contains("Uncaught") || l.contains("ERROR") || l.contains("Error")))
        .collect()
}

#[test]
fn every_chart_renders_in_a_real_browser_with_no_error() {
    let dir = temp("full");
    let page = dir.join("index.html");
    std::fs::write(&page, render(&inputs())).unwrap();
    let (result, log) = check(&page);
    assert_eq!(result["sections"], 5, "{result}");
    assert_eq!(result["charts"], 5, "{result}");
    assert_eq!(result["drawn"], 5, "every chart has a size and drawn elements: {result}");
    assert_eq!(result["missing"], 0, "{result}");
    assert_eq!(result["errors"], json!([]), "{result}");
    assert!(console_errors(&log).is_empty(), "console: {:?}", console_errors(&log));

    let shot = dir.join("shot.png");
    headless(&page, &[&format!("--screenshot={}", shot.display())]);
    let png = std::fs::read(&shot).expect("a screenshot");
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    assert!(png.len() > 50_000, "a page of charts, not a blank one: {} bytes", png.len());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_check_sees_a_broken_chart_and_a_script_error() {
    let dir = temp("broken");
    let page = dir.join("index.html");
    let html = render(&inputs())
        .replacen("<svg class=\"chart\"", "<svg class=\"chart\" style=\"display:none\"", 1)
        .replace("</body>", "<script>undefinedFunction();</script></body>");
    std::fs::write(&page, html).unwrap();
    let (result, log) = check(&page);
    assert_eq!((result["charts"].as_u64(), result["drawn"].as_u64()), (Some(5), Some(4)), "{result}");
    assert!(
        result["errors"]
            .as_array()
            .is_some_and(|e| e.iter().any(|m| m.as_str().unwrap_or("").contains("undefinedFunction"))),
        "{result}"
    );
    assert!(!console_errors(&log).is_empty(), "the browser logged the error too:\n{log}");
    let _ = std::fs::remove_dir_all(&dir);
}
