//! Tables and lines for people (kubectl's style: a header row, aligned columns, no borders).
//! `--output json` bypasses all of this and prints the API's answer as it came.

use comfy_table::{ContentArrangement, Table, presets};
use serde_json::Value;

/// Write a line to stdout; a closed pipe (`naksha … | head`) ends the output quietly.
pub fn out(line: &str) {
    use std::io::Write;
    if writeln!(std::io::stdout().lock(), "{line}").is_err() {
        std::process::exit(0);
    }
}

pub fn print_json(v: &Value) {
    out(&serde_json::to_string_pretty(v).unwrap_or_else(|_| v.to_string()));
}

/// A cell: strings as they are, null as `-`, anything else as compact JSON.
pub fn cell(v: &Value) -> String {
    match v {
        Value::Null => "-".into(),
        Value::String(s) if s.is_empty() => "-".into(),
        Value::String(s) => s.clone(),
        Value::Number(n) if n.is_f64() => {
            let f = n.as_f64().unwrap_or(0.0);
            if f.fract() == 0.0 && f.abs() < 1e15 {
                format!("{f:.0}")
            } else {
                format!("{f:.3}").trim_end_matches('0').to_owned()
            }
        }
        Value::Array(a) if a.iter().all(Value::is_string) => {
            a.iter().filter_map(Value::as_str).collect::<Vec<_>>().join(",")
        }
        Value::Object(m) if m.values().all(|x| x.is_string()) && !m.is_empty() => {
            m.iter().map(|(k, x)| format!("{k}={}", x.as_str().unwrap_or_default())).collect::<Vec<_>>().join(",")
        }
        other => other.to_string(),
    }
}

/// A table of `rows`, one column per `(header, pointer)` (JSON pointers into each row).
pub fn table(rows: &[Value], columns: &[(&str, &str)]) -> String {
    if rows.is_empty() {
        return "(none)".into();
    }
    let mut t = Table::new();
    t.load_preset(presets::NOTHING).set_content_arrangement(ContentArrangement::Disabled);
    t.set_header(columns.iter().map(|(h, _)| h.to_uppercase()));
    for r in rows {
        t.add_row(columns.iter().map(|(_, p)| cell(r.pointer(p).unwrap_or(&Value::Null))));
    }
    // comfy-table pads the first column with a leading space under the NOTHING preset.
    t.to_string().lines().map(|l| l.strip_prefix(' ').unwrap_or(l).trim_end()).collect::<Vec<_>>().join("\n")
}

/// `key: value` lines of the named fields.
pub fn fields(v: &Value, names: &[&str]) -> String {
    let width = names.iter().map(|n| n.len()).max().unwrap_or(0);
    names
        .iter()
        .map(|n| format!("{n:<width$}  {}", cell(v.get(*n).unwrap_or(&Value::Null))))
        .collect::<Vec<_>>()
        .join("\n")
}

fn list<'a>(v: &'a Value, key: &str) -> &'a [Value] {
    v.get(key).and_then(Value::as_array).map_or(&[], Vec::as_slice)
}

pub fn generic(v: &Value) -> String {
    serde_json::to_string_pretty(v).unwrap_or_default()
}

pub fn health(v: &Value) -> String {
    let mut out = fields(v, &["status", "backend"]);
    if let Some(services) = v.get("services").and_then(Value::as_object) {
        for (name, s) in services {
            out.push_str(&format!("\n  {name:<12} {}", cell(s.get("status").unwrap_or(s))));
        }
    }
    out
}

pub fn ingested(v: &Value) -> String {
    let mut out = format!(
        "accepted {} of {} events from {} ({} requests, {} s, {} events/s)",
        cell(&v["accepted"]),
        cell(&v["read"]),
        cell(&v["file"]),
        cell(&v["requests"]),
        cell(&v["seconds"]),
        cell(&v["events_per_second"])
    );
    let rejected = list(v, "rejected");
    if !rejected.is_empty() {
        out.push_str(&format!("\nrejected {} lines (not written):\n", rejected.len()));
        out.push_str(&table(&rejected[..rejected.len().min(20)], &[("line", "/line"), ("reason", "/reason")]));
        if rejected.len() > 20 {
            out.push_str(&format!("\n… and {} more (-o json lists them all)", rejected.len() - 20));
        }
    }
    let unsent = list(v, "unsent_lines");
    if !unsent.is_empty() {
        out.push_str(&format!("\n{} lines were not delivered (the API could not be reached)", unsent.len()));
    }
    out
}

pub fn signals(v: &Value) -> String {
    table(
        list(v, "signals"),
        &[
            ("signal", "/signal"),
            ("series", "/series/id"),
            ("score", "/score"),
            ("now", "/current_score"),
            ("opened", "/opened_at"),
            ("run", "/run_id"),
        ],
    )
}

pub fn runs(v: &Value) -> String {
    table(
        list(v, "runs"),
        &[
            ("run", "/run_id"),
            ("status", "/status"),
            ("signal", "/signal"),
            ("resource", "/resource"),
            ("wpk", "/wpk_id"),
            ("by", "/requested_by"),
            ("updated", "/updated_at"),
        ],
    )
}

pub fn step_line(s: &Value) -> String {
    let ms = s["latency_ms"].as_f64().map(|l| format!("{l:.0} ms")).unwrap_or_default();
    let err = s["error"].as_str().map(|e| format!("  {e}")).unwrap_or_default();
    format!("  {:<8} {:<10} {:>8}  {}{err}", cell(&s["node"]), cell(&s["status"]), ms, cell(&s["ended_at"]))
}

pub fn status_line(run: &Value) -> String {
    let status = run["status"].as_str().unwrap_or("?");
    match status {
        "awaiting_approval" => format!(
            "→ awaiting approval of plan {} (wpk {}): naksha runs approve {} -j \"…\"",
            run["plan"]["sha256"].as_str().map(|s| &s[..s.len().min(12)]).unwrap_or("?"),
            cell(&run["wpk"]["id"]),
            cell(&run["run_id"])
        ),
        "succeeded" | "failed" | "rejected" | "aborted" => {
            let why = run["outcome"]["reason"].as_str().map(|r| format!(": {r}")).unwrap_or_default();
            format!("→ {status}{why}")
        }
        other => format!("→ {other}"),
    }
}

pub fn run(v: &Value) -> String {
    let mut out =
        fields(v, &["run_id", "status", "signal", "resource", "requested_by", "dry_run", "created_at", "updated_at"]);
    out.push_str(&format!("\nwpk           {}@{}", cell(&v["wpk"]["id"]), cell(&v["wpk"]["version"])));
    if let Some(sha) = v["plan"]["sha256"].as_str() {
        out.push_str(&format!("\nplan          {sha}"));
    }
    if let Some(a) = v["approval"].as_object() {
        out.push_str(&format!(
            "\napproved by   {} ({})",
            cell(&a["approver"].clone()),
            cell(&a["justification"].clone())
        ));
    }
    let steps = list(v, "steps");
    if !steps.is_empty() {
        out.push_str("\nsteps:\n");
        out.push_str(&steps.iter().map(step_line).collect::<Vec<_>>().join("\n"));
    }
    for r in list(v, "audit") {
        out.push_str(&format!("\naudit record  #{} {}", cell(&r["seq"]), cell(&r["hash"])));
    }
    out
}

/// What an approver sees before saying yes: the WPK, the digest, and each action's change.
pub fn plan(run: &Value) -> String {
    let mut out = format!(
        "run {} wants to act on {} for {}\n  wpk   {}@{}\n  plan  {}\n  dry-run performed: {}",
        cell(&run["run_id"]),
        cell(&run["resource"]),
        cell(&run["signal"]),
        cell(&run["wpk"]["id"]),
        cell(&run["wpk"]["version"]),
        cell(&run["plan"]["sha256"]),
        cell(&run["plan"]["dry_run_performed"]),
    );
    for (i, a) in list(&run["plan"], "actions").iter().enumerate() {
        let what = [a.get("adapter"), a.get("action"), a.get("resource")]
            .into_iter()
            .flatten()
            .map(cell)
            .collect::<Vec<_>>()
            .join(" ");
        out.push_str(&format!("\n  {}. {what}: {}", i + 1, change(&a["change"])));
    }
    out
}

pub fn wpks(v: &Value) -> String {
    table(
        list(v, "wpks"),
        &[
            ("id", "/id"),
            ("version", "/version"),
            ("mode", "/mode"),
            ("title", "/title"),
            ("signals", "/signals"),
            ("created", "/created_at"),
        ],
    )
}

pub fn wpk_versions(v: &Value) -> String {
    table(
        list(v, "versions"),
        &[
            ("id", "/id"),
            ("version", "/version"),
            ("mode", "/mode"),
            ("sha256", "/sha256"),
            ("by", "/created_by"),
            ("created", "/created_at"),
        ],
    )
}

pub fn models(v: &Value) -> String {
    let rows = v.get("models").and_then(Value::as_array).map_or(&[][..], Vec::as_slice);
    table(
        rows,
        &[
            ("model", "/model_id"),
            ("status", "/status"),
            ("created", "/created_at"),
            ("verified", "/verified"),
            ("sha256", "/sha256"),
        ],
    )
}

pub fn model(v: &Value) -> String {
    let mut out =
        fields(v, &["model_id", "status", "created_at", "code_version", "data_digest", "sha256", "key_id", "verified"]);
    if let Some(m) = v.get("metrics") {
        out.push_str(&format!("\nmetrics       {}", cell(m)));
    }
    out
}

pub fn job(v: &Value) -> String {
    let mut out = fields(v, &["job_id", "status", "stage", "progress", "requested_at", "updated_at"]);
    if let Some(r) = v.get("result").filter(|r| !r.is_null()) {
        out.push_str(&format!(
            "\nmodel         {} ({}{})",
            cell(&r["model_id"]),
            cell(&r["alias"]),
            r["reason"].as_str().map(|x| format!(": {x}")).unwrap_or_default()
        ));
    }
    if let Some(e) = v["error"].as_str() {
        out.push_str(&format!("\nerror         {e}"));
    }
    out
}

pub fn verification(v: &Value) -> String {
    let ok = v["verified"] == true;
    let mut out = format!("{} {}\n", if ok { "✔" } else { "✘" }, if ok { "verified" } else { "NOT verified" });
    if let Some(obj) = v.as_object() {
        let rest: Vec<&str> = obj.keys().filter(|k| *k != "verified").map(String::as_str).collect();
        out.push_str(&fields(v, &rest));
    }
    out
}

pub fn nodes(v: &Value) -> String {
    let mut out = table(
        list(v, "nodes"),
        &[
            ("node", "/node_id"),
            ("status", "/status"),
            ("last seen", "/last_seen"),
            ("version", "/version"),
            ("labels", "/labels"),
            ("halt seen", "/halt_seen"),
        ],
    );
    if v["halted"] == true {
        out.push_str("\n(the tenant is halted)");
    }
    out
}

pub fn keys(v: &Value) -> String {
    let mut out =
        table(list(v, "keys"), &[("trigger key", "/kid"), ("not before", "/not_before"), ("not after", "/not_after")]);
    out.push('\n');
    out.push_str(&table(list(v, "wpk_keys"), &[("wpk key", "/kid")]));
    out
}

pub fn trigger(v: &Value) -> String {
    let mut out = fields(v, &["trigger_id", "state", "nodes", "created_at", "expires_at", "ended_at", "abort_reason"]);
    out.push_str(&format!(
        "\nwpk           {}@{}\ncounts        {}\n",
        cell(&v["wpk"]["id"]),
        cell(&v["wpk"]["version"]),
        cell(&v["counts"])
    ));
    out.push_str(&table(
        list(v, "executions"),
        &[
            ("node", "/node_id"),
            ("state", "/state"),
            ("delivered", "/delivered_at"),
            ("finished", "/finished_at"),
            ("reason", "/reason"),
        ],
    ));
    out
}

pub fn learned(v: &Value) -> String {
    let mut out = format!(
        "ingested {} records ({} seen before) {}\n",
        cell(&v["ingested"]),
        cell(&v["duplicates"]),
        cell(&v["by_format"])
    );
    let skipped = list(v, "skipped");
    if !skipped.is_empty() {
        out.push_str(&format!(
            "skipped {} lines:\n{}\n",
            skipped.len(),
            table(skipped, &[("line", "/line"), ("reason", "/reason")])
        ));
    }
    out.push_str(&suggestions(v));
    out
}

pub fn suggestions(v: &Value) -> String {
    table(
        list(v, "suggestions"),
        &[
            ("id", "/id"),
            ("kind", "/kind"),
            ("state", "/state"),
            ("subject", "/subject"),
            ("evidence", "/evidence/count"),
            ("complete", "/complete"),
            ("confidence", "/confidence"),
        ],
    )
}

pub fn suggestion(v: &Value) -> String {
    let mut out = fields(v, &["id", "kind", "rule", "state", "subject", "title", "complete", "confidence"]);
    out.push_str(&format!(
        "\nevidence      {} records from {} to {}",
        cell(&v["evidence"]["count"]),
        cell(&v["evidence"]["window"]["from"]),
        cell(&v["evidence"]["window"]["to"])
    ));
    out.push_str(&format!("\npolicy\n{}", serde_json::to_string_pretty(&v["policy"]).unwrap_or_default()));
    out
}

pub fn compliance(v: &Value) -> String {
    let mut rows = Vec::new();
    for p in list(v, "policies") {
        for c in list(p, "cells") {
            let failing: Vec<String> =
                list(c, "evidence").iter().filter(|e| e["ok"] == false).map(|e| cell(&e["name"])).collect();
            rows.push(serde_json::json!({"policy": p["id"], "service": c["service"], "status": c["status"], "failing": failing.join(", ")}));
        }
    }
    format!(
        "score {}  ({} compliant, {} not, {} without data)\n{}",
        cell(&v["score"]),
        cell(&v["compliant"]),
        cell(&v["non_compliant"]),
        cell(&v["insufficient_data"]),
        table(
            &rows,
            &[("policy", "/policy"), ("service", "/service"), ("status", "/status"), ("failing checks", "/failing")]
        )
    )
}

pub fn audit(v: &Value) -> String {
    table(
        list(v, "records"),
        &[
            ("seq", "/seq"),
            ("at", "/at"),
            ("run", "/run_id"),
            ("wpk", "/wpk_id"),
            ("approver", "/approver"),
            ("outcome", "/outcome"),
            ("hash", "/hash"),
        ],
    )
}

pub fn chaos_runs(v: &Value) -> String {
    table(
        list(v, "runs"),
        &[
            ("run", "/run_id"),
            ("spec", "/spec"),
            ("status", "/status"),
            ("verdict", "/verdict"),
            ("mttd s", "/recovery/mttd_s"),
            ("mttr s", "/recovery/mttr_s"),
            ("created", "/created_at"),
        ],
    )
}

pub fn chaos_specs(v: &Value) -> String {
    table(
        list(v, "specs"),
        &[("id", "/spec/id"), ("source", "/source"), ("fault", "/spec/fault/kind"), ("title", "/spec/title")],
    )
}

/// A detail in a few words: probes as `n/m probes ok`, objects as their scalar fields (a nested
/// object by its `kind`), at most 100 characters.
pub fn brief(d: &Value) -> String {
    let probes = |a: &[Value]| {
        let ok = a.iter().filter(|p| p["ok"] == true).count();
        format!("{ok}/{} probes ok", a.len())
    };
    let text = match d {
        Value::Null => String::new(),
        Value::Array(a) if a.iter().all(|p| p.get("ok").is_some()) => probes(a),
        Value::Object(m) if m.get("probes").and_then(Value::as_array).is_some() => {
            probes(m.get("probes").and_then(Value::as_array).map_or(&[][..], Vec::as_slice))
        }
        Value::Object(m) => m
            .iter()
            .filter_map(|(k, v)| match v {
                Value::Object(inner) => inner.get("kind").map(|kind| format!("{k}={}", cell(kind))),
                Value::Array(_) => None,
                other => Some(format!("{k}={}", cell(other))),
            })
            .collect::<Vec<_>>()
            .join(" "),
        other => cell(other),
    };
    if text.chars().count() > 100 { format!("{}…", text.chars().take(99).collect::<String>()) } else { text }
}

/// A change as `field before→after`, for each field that is a `[before, after]` pair.
pub fn change(c: &Value) -> String {
    match c.as_object() {
        Some(m) => m
            .iter()
            .map(|(k, v)| match v.as_array().map(Vec::as_slice) {
                Some([before, after]) if !before.is_object() && !before.is_array() => {
                    format!("{k} {}→{}", cell(before), cell(after))
                }
                _ => format!("{k} changes"),
            })
            .collect::<Vec<_>>()
            .join(", "),
        None => cell(c),
    }
}

pub fn scenario(v: &Value) -> String {
    let mut out = format!(
        "{}
",
        cell(&v["description"])
    );
    out.push_str(&table(
        list(&v["seeded"], "resources"),
        &[("resource", "/name"), ("chaos target", "/chaos_target"), ("outcome", "/outcome")],
    ));
    out.push_str(&format!(
        "
history events: {}",
        cell(&v["seeded"]["history_events"])
    ));
    out
}

/// One timeline event, with seconds since the first.
pub fn timeline_line(e: &Value, t0: &str) -> String {
    let at = e["at"].as_str().unwrap_or_default();
    let since = match (chrono::DateTime::parse_from_rfc3339(t0), chrono::DateTime::parse_from_rfc3339(at)) {
        (Ok(a), Ok(b)) => format!("+{:.1}s", (b - a).num_milliseconds() as f64 / 1000.0),
        _ => String::new(),
    };
    format!("  {since:>8}  {:<28}  {}", cell(&e["event"]), brief(&e["detail"])).trim_end().to_owned()
}

pub fn chaos_recovery(v: &Value) -> String {
    let r = &v["recovery"];
    let secs = |k: &str| r[k].as_f64().map(|s| format!("{s:.1} s")).unwrap_or_else(|| "-".into());
    format!(
        "{}: {}{}\n  MTTD {}   decide {}   act {}   MTTR {}   steady {}   ({} clock)",
        cell(&v["run_id"]),
        cell(&v["verdict"]),
        v["reason"].as_str().map(|x| format!(" ({x})")).unwrap_or_default(),
        secs("mttd_s"),
        secs("time_to_decide_s"),
        secs("time_to_act_s"),
        secs("mttr_s"),
        secs("time_to_steady_state_s"),
        cell(&r["clock"]),
    )
}

pub fn chaos_run(v: &Value) -> String {
    let mut out = fields(v, &["run_id", "spec", "target", "status", "stage", "verdict", "reason", "created_at"]);
    let timeline = list(v, "timeline");
    let t0 = timeline.first().and_then(|e| e["at"].as_str()).unwrap_or_default();
    out.push_str("\ntimeline:\n");
    out.push_str(&timeline.iter().map(|e| timeline_line(e, t0)).collect::<Vec<_>>().join("\n"));
    out.push('\n');
    out.push_str(&chaos_recovery(v));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn tables_align_columns_and_show_missing_values_as_a_dash() {
        let rows = [json!({"id": "a", "n": 1, "l": {"env": "prod"}}), json!({"id": "bbbb", "n": null})];
        let t = table(&rows, &[("id", "/id"), ("n", "/n"), ("labels", "/l")]);
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines.len(), 3, "{t}");
        assert!(lines[0].starts_with("ID"), "{t}");
        assert!(lines[1].contains("env=prod"), "{t}");
        assert!(lines[2].starts_with("bbbb") && lines[2].contains('-'), "{t}");
        let col = lines[0].find('N').unwrap_or(0);
        assert_eq!(lines[1].find('1'), Some(col), "columns line up:\n{t}");
        assert_eq!(table(&[], &[("id", "/id")]), "(none)");
    }

    #[test]
    fn a_plan_names_each_action_and_its_change() {
        let run = json!({"run_id": "r1", "resource": "deployment/a", "signal": "down",
            "wpk": {"id": "restart", "version": 2},
            "plan": {"sha256": "ab12", "dry_run_performed": true,
                "actions": [{"adapter": "sim", "action": "restart", "resource": "deployment/a", "change": {"healthy": [false, true]}}]}});
        let p = plan(&run);
        assert!(p.contains("restart@2") && p.contains("ab12"), "{p}");
        assert!(p.contains("1. sim restart deployment/a: healthy false→true"), "{p}");
    }

    #[test]
    fn details_are_brief() {
        let probes = json!([{"ok": true, "probe": {}}, {"ok": false}]);
        assert_eq!(brief(&probes), "1/2 probes ok");
        assert_eq!(brief(&json!({"ok": true, "probes": [{"ok": true}]})), "1/1 probes ok");
        let injected = json!({"fault": {"kind": "kill-pod", "params": {"pods": 1}}, "target": "deployment/a"});
        assert_eq!(brief(&injected), "fault=kill-pod target=deployment/a");
        assert_eq!(brief(&json!("x".repeat(300))).chars().count(), 100);
        assert_eq!(
            change(&json!({"replicas": [3, 6], "condition": [{"a": 1}, {"a": 2}]})),
            "condition changes, replicas 3→6"
        );
    }

    #[test]
    fn recovery_times_read_in_seconds() {
        let v = json!({"run_id": "c1", "verdict": "recovered", "recovery": {"mttd_s": 61.0, "mttr_s": 125.25, "clock": "real"}});
        let s = chaos_recovery(&v);
        assert!(s.contains("MTTD 61.0 s") && s.contains("MTTR 125.2 s") && s.contains("decide -"), "{s}");
    }
}
