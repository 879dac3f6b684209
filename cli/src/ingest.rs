//! `naksha ingest FILE`: a CSV in NAB's `timestamp,value` shape or JSON lines, sent in batches.
//!
//! Each batch carries an `Idempotency-Key` derived from the file's content and the batch's place
//! in it, so a batch retried after a lost answer, or the whole command run again, never counts
//! an event twice. The API takes a batch all or nothing:
//! - 429, 5xx, no answer: the same batch again, same key (the client's retries);
//! - 413: the batch is split in two and each half sent;
//! - 400 naming events (`/events/<i>/...`): those events are set aside as rejected and exactly
//!   the others are sent again, under a new key (the request differs);
//! - anything else (401, 403): the command stops.

use std::collections::BTreeSet;
use std::time::Instant;

use chrono::{DateTime, NaiveDateTime, Utc};
use indicatif::{ProgressBar, ProgressStyle};
use naksha_contracts::signing::sha256_hex;
use reqwest::Method;
use serde_json::{Map, Value, json};

use crate::client::{Body, CliError, Client};

/// Most events one request takes (API.md).
pub const MAX_BATCH: usize = 500;

/// One event to send, and the line of the file it came from (1-based).
#[derive(Debug, Clone, PartialEq)]
pub struct Line {
    pub line: usize,
    pub event: Value,
}

/// A line that was not sent, and why.
#[derive(Debug, Clone, PartialEq)]
pub struct Rejected {
    pub line: usize,
    pub reason: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Csv,
    Jsonl,
}

/// How to read a file and name its series.
#[derive(Debug, Clone)]
pub struct Shape {
    pub format: Format,
    /// CSV: the series' `source` and `name` (JSON lines carry their own).
    pub source: String,
    pub name: String,
    pub labels: Map<String, Value>,
    /// Move every time so the last one is now (replaying a recorded series as if live).
    pub shift_to_now: bool,
}

/// Guess the format from the file name: `.csv` is CSV, anything else JSON lines.
pub fn format_of(path: &std::path::Path) -> Format {
    match path.extension().and_then(|e| e.to_str()) {
        Some(e) if e.eq_ignore_ascii_case("csv") => Format::Csv,
        _ => Format::Jsonl,
    }
}

/// Read the file's events; lines that cannot become events are rejected here, never sent.
pub fn read(text: &str, shape: &Shape) -> (Vec<Line>, Vec<Rejected>) {
    let mut lines = Vec::new();
    let mut rejected = Vec::new();
    match shape.format {
        Format::Csv => {
            for (i, raw) in text.lines().enumerate() {
                let n = i + 1;
                let row = raw.trim();
                if row.is_empty() || (n == 1 && row.to_ascii_lowercase().starts_with("timestamp")) {
                    continue;
                }
                match csv_event(row, shape) {
                    Ok(event) => lines.push(Line { line: n, event }),
                    Err(reason) => rejected.push(Rejected { line: n, reason }),
                }
            }
        }
        Format::Jsonl => {
            for (i, raw) in text.lines().enumerate() {
                let n = i + 1;
                if raw.trim().is_empty() {
                    continue;
                }
                match serde_json::from_str::<Value>(raw) {
                    Ok(mut v @ Value::Object(_)) => {
                        if let Some(obj) = v.as_object_mut()
                            && !shape.labels.is_empty()
                        {
                            let labels = obj.entry("labels").or_insert_with(|| json!({}));
                            if let Some(l) = labels.as_object_mut() {
                                for (k, val) in &shape.labels {
                                    l.entry(k.clone()).or_insert_with(|| val.clone());
                                }
                            }
                        }
                        lines.push(Line { line: n, event: v })
                    }
                    Ok(_) => rejected.push(Rejected { line: n, reason: "not a JSON object".into() }),
                    Err(e) => rejected.push(Rejected { line: n, reason: format!("not JSON: {e}") }),
                }
            }
        }
    }
    if shape.shift_to_now {
        shift_to_now(&mut lines, Utc::now());
    }
    (lines, rejected)
}

fn csv_event(row: &str, shape: &Shape) -> Result<Value, String> {
    let mut cols = row.split(',');
    let (Some(ts), Some(value), None) = (cols.next(), cols.next(), cols.next()) else {
        return Err("expected two columns: timestamp,value".into());
    };
    let ts = parse_time(ts.trim().trim_matches('"')).ok_or_else(|| format!("{ts:?} is not a time"))?;
    let value: f64 = value
        .trim()
        .parse()
        .ok()
        .filter(|v: &f64| v.is_finite())
        .ok_or_else(|| format!("{value:?} is not a number"))?;
    let mut event = json!({"source": shape.source, "name": shape.name, "value": value, "ts": ts.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)});
    if !shape.labels.is_empty() {
        event["labels"] = Value::Object(shape.labels.clone());
    }
    Ok(event)
}

/// NAB's `2014-04-01 00:00:00` (UTC), RFC 3339, or epoch seconds.
fn parse_time(s: &str) -> Option<DateTime<Utc>> {
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.with_timezone(&Utc));
    }
    for f in ["%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M"] {
        if let Ok(t) = NaiveDateTime::parse_from_str(s, f) {
            return Some(t.and_utc());
        }
    }
    s.parse::<i64>().ok().and_then(|secs| DateTime::from_timestamp(secs, 0))
}

fn shift_to_now(lines: &mut [Line], now: DateTime<Utc>) {
    let times: Vec<Option<DateTime<Utc>>> =
        lines.iter().map(|l| l.event.get("ts").and_then(Value::as_str).and_then(parse_time)).collect();
    let Some(last) = times.iter().flatten().max().copied() else { return };
    let delta = now - last;
    for (l, t) in lines.iter_mut().zip(times) {
        if let Some(t) = t {
            l.event["ts"] = json!((t + delta).to_rfc3339_opts(chrono::SecondsFormat::Secs, true));
        }
    }
}

/// The indices of the events a 400 names (`/events/<i>...`, or `/...` for a one-event body).
pub fn named_events(problem: &Value, batch_len: usize) -> BTreeSet<usize> {
    let mut out = BTreeSet::new();
    for e in problem.get("errors").and_then(Value::as_array).into_iter().flatten() {
        let p = e.get("pointer").and_then(Value::as_str).unwrap_or("");
        if let Some(rest) = p.strip_prefix("/events/")
            && let Some(i) = rest.split('/').next().and_then(|i| i.parse::<usize>().ok()).filter(|i| *i < batch_len)
        {
            out.insert(i);
        }
    }
    out
}

/// What an ingest did.
#[derive(Debug, Default)]
pub struct Outcome {
    pub read: usize,
    pub accepted: usize,
    pub requests: usize,
    pub rejected: Vec<Rejected>,
    /// Lines whose batch could not be delivered at all (the API was unreachable or kept failing).
    pub unsent: Vec<usize>,
    pub seconds: f64,
}

/// Send `lines` in batches of `batch`, with a progress bar on stderr unless `quiet`.
pub async fn send(
    client: &Client,
    lines: Vec<Line>,
    batch: usize,
    file_digest: &str,
    quiet: bool,
) -> Result<Outcome, CliError> {
    let started = Instant::now();
    let mut outcome = Outcome { read: lines.len(), ..Outcome::default() };
    let bar = if quiet { ProgressBar::hidden() } else { ProgressBar::new(lines.len() as u64) };
    bar.set_style(
        ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {wide_bar} {pos}/{len} events  {per_sec}  eta {eta}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let mut pending: Vec<(String, Vec<Line>)> = lines
        .chunks(batch.clamp(1, MAX_BATCH))
        .enumerate()
        .map(|(i, c)| (format!("{file_digest}-{i}"), c.to_vec()))
        .rev()
        .collect();
    while let Some((key_base, chunk)) = pending.pop() {
        if chunk.is_empty() {
            continue;
        }
        let events: Vec<Value> = chunk.iter().map(|l| l.event.clone()).collect();
        let key = sha256_hex(format!("naksha-cli ingest\0{key_base}\0{}", chunk.len()).as_bytes());
        outcome.requests += 1;
        let answer =
            client.send(Method::POST, "/ingest", Body::Json(json!({"events": events})), Some(&key[..32])).await;
        match answer {
            Ok(a) => {
                let n = a.body.get("accepted").and_then(Value::as_u64).unwrap_or(chunk.len() as u64) as usize;
                outcome.accepted += n;
                bar.inc(chunk.len() as u64);
            }
            Err(CliError::Refused { status: 413, .. }) if chunk.len() > 1 => {
                let (a, b) = chunk.split_at(chunk.len() / 2);
                pending.push((format!("{key_base}b"), b.to_vec()));
                pending.push((format!("{key_base}a"), a.to_vec()));
            }
            Err(CliError::Refused { status: 400, detail, errors, title }) => {
                let problem = json!({"errors": errors.iter().map(|e| {
                    let (p, m) = e.split_once(": ").unwrap_or((e.as_str(), ""));
                    json!({"pointer": p, "detail": m})
                }).collect::<Vec<_>>()});
                let named = named_events(&problem, chunk.len());
                if named.is_empty() {
                    // Nothing to set aside: the whole batch was refused.
                    for l in &chunk {
                        outcome.rejected.push(Rejected { line: l.line, reason: format!("{title}: {detail}") });
                    }
                    bar.inc(chunk.len() as u64);
                    continue;
                }
                let reasons = |i: usize| -> String {
                    let prefix = format!("/events/{i}");
                    let mine: Vec<&str> = errors
                        .iter()
                        .filter(|e| e.starts_with(&format!("{prefix}/")) || e.starts_with(&format!("{prefix}:")))
                        .map(String::as_str)
                        .collect();
                    mine.join("; ").replace(&prefix, "")
                };
                let mut rest = Vec::new();
                for (i, l) in chunk.into_iter().enumerate() {
                    if named.contains(&i) {
                        outcome.rejected.push(Rejected { line: l.line, reason: reasons(i) });
                        bar.inc(1);
                    } else {
                        rest.push(l);
                    }
                }
                pending.push((format!("{key_base}r"), rest));
            }
            Err(e @ CliError::Refused { .. }) => {
                bar.abandon();
                return Err(e);
            }
            Err(CliError::Failed(why)) => {
                outcome.unsent.extend(chunk.iter().map(|l| l.line));
                bar.inc(chunk.len() as u64);
                if !quiet {
                    bar.println(format!("a batch of {} events was not delivered: {why}", chunk.len()));
                }
            }
            Err(e) => return Err(e),
        }
    }
    bar.finish_and_clear();
    outcome.seconds = started.elapsed().as_secs_f64();
    outcome.rejected.sort_by_key(|r| r.line);
    Ok(outcome)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn csv_shape() -> Shape {
        Shape { format: Format::Csv, source: "nab".into(), name: "cpu".into(), labels: Map::new(), shift_to_now: false }
    }

    #[test]
    fn nab_csv_rows_become_events_and_bad_rows_are_named_by_line() {
        let text = "timestamp,value\n2014-04-01 00:00:00,3.5\n2014-04-01 00:05:00,x\n\n2014-04-01 00:10:00,4,5\nnot a time,1\n2014-04-01T00:15:00Z,-2e3\n";
        let (lines, rejected) = read(text, &csv_shape());
        assert_eq!(lines.len(), 2);
        assert_eq!(
            lines[0],
            Line { line: 2, event: json!({"source":"nab","name":"cpu","value":3.5,"ts":"2014-04-01T00:00:00Z"}) }
        );
        assert_eq!(lines[1].line, 7);
        assert_eq!(lines[1].event["value"], -2000.0);
        let bad: Vec<usize> = rejected.iter().map(|r| r.line).collect();
        assert_eq!(bad, [3, 5, 6]);
        assert!(rejected[0].reason.contains("not a number"));
    }

    #[test]
    fn json_lines_keep_their_fields_and_take_extra_labels_without_overriding() {
        let mut shape = Shape { format: Format::Jsonl, ..csv_shape() };
        shape.labels.insert("env".into(), json!("prod"));
        shape.labels.insert("team".into(), json!("sre"));
        let text =
            "{\"source\":\"a\",\"name\":\"b\",\"value\":1,\"labels\":{\"env\":\"dev\"}}\n[1]\n{oops\n{\"m\":2}\n";
        let (lines, rejected) = read(text, &shape);
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0].event["labels"], json!({"env": "dev", "team": "sre"}));
        assert_eq!(lines[1].event, json!({"m": 2, "labels": {"env": "prod", "team": "sre"}}));
        assert_eq!(rejected.iter().map(|r| r.line).collect::<Vec<_>>(), [2, 3]);
    }

    #[test]
    fn shifting_to_now_keeps_the_spacing_and_ends_now() {
        let text = "timestamp,value\n2014-04-01 00:00:00,1\n2014-04-01 00:05:00,2\n";
        let (mut lines, _) = read(text, &csv_shape());
        let now = DateTime::parse_from_rfc3339("2026-12-04T10:00:00Z").unwrap().with_timezone(&Utc);
        shift_to_now(&mut lines, now);
        assert_eq!(lines[0].event["ts"], "2026-12-04T09:55:00Z");
        assert_eq!(lines[1].event["ts"], "2026-12-04T10:00:00Z");
    }

    #[test]
    fn a_problem_names_the_events_to_set_aside() {
        let p = json!({"errors": [
            {"pointer": "/events/3/value", "detail": "x"}, {"pointer": "/events/3/name", "detail": "y"},
            {"pointer": "/events/0", "detail": "z"}, {"pointer": "/events/900/ts", "detail": "out of range"},
            {"pointer": "/events", "detail": "too many"}
        ]});
        assert_eq!(named_events(&p, 10).into_iter().collect::<Vec<_>>(), [0, 3]);
    }

    #[test]
    fn the_format_follows_the_file_name() {
        assert_eq!(format_of(std::path::Path::new("a/b.CSV")), Format::Csv);
        assert_eq!(format_of(std::path::Path::new("events.jsonl")), Format::Jsonl);
    }
}
