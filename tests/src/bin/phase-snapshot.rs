//! `generate_phase_snapshot` (the seed's finalisation step): `reports/PhaseD_Snapshot.json` with
//! the commit, every report under `reports/` (size and sha256), each task's test counts from the
//! demo's `cargo test` log (`reports/logs/tests.log`), and the benchmark figures (every table of
//! `reports/bench_*.md`, row by row). `make demo` runs it last.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use naksha_core::signing::sha256_hex;
use naksha_e2e::test_summary_for;
use serde_json::{Map, Value, json};

/// The task a test binary ("crate: target") belongs to.
fn task_of(binary: &str) -> &'static str {
    let crate_name = binary.split(':').next().unwrap_or(binary).trim();
    let target = binary.rsplit('/').next().unwrap_or(binary);
    let is = |prefixes: &[&str]| prefixes.iter().any(|p| crate_name.starts_with(p) || target.starts_with(p));
    if is(&["naksha_insight_stream", "d1_"]) {
        "D.1"
    } else if is(&["naksha_agent", "naksha_act", "d2_"]) {
        "D.2"
    } else if is(&["naksha_trainer", "naksha_detector", "naksha_nab", "d3_"]) {
        "D.3"
    } else if is(&["naksha_federation", "edge_node", "d4_"]) {
        "D.4"
    } else if is(&["naksha_chaos", "d5_"]) {
        "D.5"
    } else if is(&["naksha_policy", "policy_check", "d6_"]) {
        "D.6"
    } else {
        "shared"
    }
}

/// Every Markdown table of a document: each row an object keyed by the header's cells.
fn tables(md: &str) -> Vec<Vec<Map<String, Value>>> {
    let mut out = Vec::new();
    let mut header: Option<Vec<String>> = None;
    let mut rows: Vec<Map<String, Value>> = Vec::new();
    let cells = |line: &str| -> Vec<String> {
        line.trim().trim_matches('|').split('|').map(|c| c.trim().trim_matches('`').to_owned()).collect()
    };
    for line in md.lines().chain(std::iter::once("")) {
        let t = line.trim();
        if t.starts_with('|') {
            let cs = cells(t);
            if cs.iter().all(|c| !c.is_empty() && c.chars().all(|ch| matches!(ch, '-' | ':' | ' '))) {
                continue;
            }
            match &header {
                None => header = Some(cs),
                Some(h) => rows.push(h.iter().cloned().zip(cs.into_iter().map(Value::String)).collect()),
            }
        } else if header.is_some() {
            if !rows.is_empty() {
                out.push(std::mem::take(&mut rows));
            }
            header = None;
        }
    }
    out
}

fn files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            files(&p, out);
        } else {
            out.push(p);
        }
    }
}

fn git(args: &[&str]) -> String {
    std::process::Command::new("git")
        .args(args)
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default()
}

fn main() {
    let root = Path::new("reports");
    let mut all = Vec::new();
    files(root, &mut all);
    all.sort();
    let reports: Vec<Value> = all
        .iter()
        .filter(|p| !p.starts_with("reports/logs") && p.file_name().is_some_and(|n| n != "PhaseD_Snapshot.json"))
        .map(|p| {
            let bytes = std::fs::read(p).unwrap_or_default();
            json!({"path": p.display().to_string(), "bytes": bytes.len(), "sha256": sha256_hex(&bytes)})
        })
        .collect();

    let log = std::fs::read_to_string("reports/logs/tests.log").unwrap_or_default();
    let mut tests = BTreeMap::new();
    for task in ["D.1", "D.2", "D.3", "D.4", "D.5", "D.6", "shared"] {
        let (rows, passed, failed) = test_summary_for(&log, |b| task_of(b) == task);
        let binaries: Vec<&str> = rows.lines().filter_map(|r| r.split('`').nth(1)).collect();
        tests.insert(task, json!({"passed": passed, "failed": failed, "binaries": binaries}));
    }
    let (_, passed, failed) = test_summary_for(&log, |_| true);
    tests.insert("total", json!({"passed": passed, "failed": failed}));

    let mut benchmarks = Map::new();
    for p in all.iter().filter(|p| {
        p.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with("bench_") && n.ends_with(".md"))
    }) {
        let md = std::fs::read_to_string(p).unwrap_or_default();
        benchmarks.insert(p.display().to_string(), json!(tables(&md)));
    }

    let snapshot = json!({
        "phase": "D",
        "version": env!("CARGO_PKG_VERSION"),
        "commit": git(&["rev-parse", "HEAD"]),
        "commit_time": git(&["show", "-s", "--format=%cI", "HEAD"]),
        "generated_at": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        "tasks": ["D.1 insight-stream", "D.2 autonomous-agent", "D.3 cll-trainer", "D.4 federation", "D.5 chaos", "D.6 policy-learner"],
        "reports": reports,
        "tests": tests,
        "benchmarks": benchmarks,
    });
    std::fs::write("reports/PhaseD_Snapshot.json", serde_json::to_string_pretty(&snapshot).unwrap() + "\n").unwrap();
    println!(
        "wrote reports/PhaseD_Snapshot.json: {} reports, {passed} tests passed, {failed} failed, {} benchmark files",
        reports.len(),
        benchmarks.len()
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_binaries_belong_to_their_task() {
        assert_eq!(task_of("naksha_insight_stream: unittests src/lib.rs"), "D.1");
        assert_eq!(task_of("d2_agent: tests/d2_agent.rs"), "D.2");
        assert_eq!(task_of("naksha_detector: unittests src/lib.rs"), "D.3");
        assert_eq!(task_of("edge_node: unittests src/main.rs"), "D.4");
        assert_eq!(task_of("d5_chaos: tests/d5_chaos.rs"), "D.5");
        assert_eq!(task_of("naksha_policy: tests/fuzz_replay.rs"), "D.6");
        assert_eq!(task_of("naksha_core: unittests src/lib.rs"), "shared");
        assert_eq!(task_of("ops_cli: tests/ops_cli.rs"), "shared");
    }

    #[test]
    fn markdown_tables_become_rows_keyed_by_their_header() {
        let md = "# x\n\n| bench | ns |\n|---|---:|\n| `parse` | 120 |\n| fold | 80 |\n\ntext\n| a |\n|---|\n| 1 |\n";
        let t = tables(md);
        assert_eq!(t.len(), 2);
        assert_eq!(t[0][0]["bench"], "parse");
        assert_eq!(t[0][1]["ns"], "80");
        assert_eq!(t[1][0]["a"], "1");
    }
}
