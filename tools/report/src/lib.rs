//! The operations report: one self-contained HTML page (no network), each chart an inline SVG
//! drawn by plotters' SVG backend, each with a caption that says what it shows and a table of the
//! figures behind it.
//!
//! | section | from | chart |
//! |---|---|---|
//! | an agent run | `GET /agent/status/{id}` (JSON) | its steps on a timeline, coloured by outcome, the approval wait |
//! | chaos recovery | `GET /chaos/runs/{id}` (one JSON each) | MTTD inside MTTR per spec, mean over its runs |
//! | detection | a `make nab` result (`timestamp,value,anomaly_score,label`) | the series, the score, NAB's labelled windows, the alarms (score ≥ 0.5) |
//! | compliance | `GET /compliance` (JSON) | P-1…P-6 × service, coloured by status |
//! | edge fleet | `GET /federation/nodes` (JSON) | nodes by status |

use std::collections::BTreeMap;
use std::fmt::Write as _;

use chrono::{DateTime, NaiveDateTime, Utc};
use plotters::coord::Shift;
use plotters::prelude::*;
use serde_json::Value;

/// The threshold at which a detector score is an alarm (the production threshold).
pub const THRESHOLD: f64 = 0.5;

/// What the report is drawn from; a missing part becomes a section that says what is missing.
#[derive(Debug, Default)]
pub struct Inputs {
    pub run: Option<Value>,
    pub chaos_runs: Vec<Value>,
    /// A NAB result: the series' name and its rows.
    pub nab: Option<(String, Vec<ScoredPoint>)>,
    pub compliance: Option<Value>,
    pub nodes: Option<Value>,
    /// Shown in the header: when and from what commit.
    pub generated_at: String,
    pub commit: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ScoredPoint {
    pub at: DateTime<Utc>,
    pub value: f64,
    pub score: f64,
    pub label: bool,
}

/// Read a `make nab` result file: `timestamp,value,anomaly_score,label`.
pub fn read_nab(text: &str) -> Result<Vec<ScoredPoint>, String> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate().skip(1) {
        if line.trim().is_empty() {
            continue;
        }
        let cols: Vec<&str> = line.split(',').collect();
        let [ts, value, score, label] = cols[..] else {
            return Err(format!("line {}: expected timestamp,value,anomaly_score,label", i + 1));
        };
        let at = NaiveDateTime::parse_from_str(ts.trim(), "%Y-%m-%d %H:%M:%S")
            .map(|t| t.and_utc())
            .map_err(|e| format!("line {}: {e}", i + 1))?;
        let num = |s: &str| s.trim().parse::<f64>().map_err(|e| format!("line {}: {e}", i + 1));
        out.push(ScoredPoint { at, value: num(value)?, score: num(score)?, label: num(label)? > 0.0 });
    }
    if out.is_empty() {
        return Err("no rows".into());
    }
    Ok(out)
}

type Draw = Result<(), String>;

fn err<E: std::fmt::Display>(e: E) -> String {
    e.to_string()
}

/// Draw into an SVG string of `size`.
fn svg(size: (u32, u32), draw: impl FnOnce(&DrawingArea<SVGBackend, Shift>) -> Draw) -> Result<String, String> {
    let mut out = String::new();
    {
        let root = SVGBackend::with_string(&mut out, size).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        draw(&root)?;
        root.present().map_err(err)?;
    }
    // Marked so the page's own check (and anyone's CSS) can find the charts.
    Ok(out.replacen("<svg ", "<svg class=\"chart\" role=\"img\" ", 1))
}

fn time(v: &Value) -> Option<DateTime<Utc>> {
    v.as_str().and_then(|s| DateTime::parse_from_rfc3339(s).ok()).map(|t| t.with_timezone(&Utc))
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

fn text(v: &Value) -> String {
    match v {
        Value::Null => "–".into(),
        Value::String(s) => s.clone(),
        Value::Number(n) => n
            .as_f64()
            .map_or_else(|| n.to_string(), |f| if f.fract() == 0.0 { format!("{f:.0}") } else { format!("{f:.1}") }),
        other => other.to_string(),
    }
}

const OK: RGBColor = RGBColor(46, 139, 87);
const BAD: RGBColor = RGBColor(200, 55, 55);
const GREY: RGBColor = RGBColor(160, 160, 160);
const BLUE: RGBColor = RGBColor(50, 100, 180);
const LIGHT_BLUE: RGBColor = RGBColor(160, 190, 230);
const AMBER: RGBColor = RGBColor(230, 160, 40);

/// The label of a segment on a category axis: its name, none for the end.
fn segment_label(names: &[String], v: &SegmentValue<usize>) -> String {
    match v {
        SegmentValue::CenterOf(i) | SegmentValue::Exact(i) => names.get(*i).cloned().unwrap_or_default(),
        SegmentValue::Last => String::new(),
    }
}

/// A run's steps as bars from start to end, seconds since the run was created.
pub fn run_timeline(run: &Value) -> Result<String, String> {
    let steps = run["steps"].as_array().cloned().unwrap_or_default();
    let t0 = time(&run["created_at"])
        .or_else(|| steps.first().and_then(|s| time(&s["started_at"])))
        .ok_or("the run has no times")?;
    let rows: Vec<(String, f64, f64, bool)> = steps
        .iter()
        .filter_map(|s| {
            let a = (time(&s["started_at"])? - t0).num_milliseconds() as f64 / 1000.0;
            let b = (time(&s["ended_at"])? - t0).num_milliseconds() as f64 / 1000.0;
            Some((text(&s["node"]), a, b.max(a + 0.01), s["status"] == "ok"))
        })
        .collect();
    if rows.is_empty() {
        return Err("the run has no steps".into());
    }
    let end = rows.iter().map(|r| r.2).fold(0.0, f64::max) * 1.05;
    let n = rows.len();
    svg((900, 60 + 28 * n as u32), |root| {
        let mut chart = ChartBuilder::on(root)
            .margin(10)
            .x_label_area_size(30)
            .y_label_area_size(90)
            .build_cartesian_2d(0f64..end, (0..n.saturating_sub(1)).into_segmented())
            .map_err(err)?;
        let labels: Vec<String> = rows.iter().enumerate().map(|(i, r)| format!("{}. {}", i + 1, r.0)).collect();
        chart
            .configure_mesh()
            .disable_y_mesh()
            .x_desc("seconds since the run was created")
            .y_labels(n)
            .y_label_formatter(&|v| segment_label(&labels, v))
            .draw()
            .map_err(err)?;
        chart
            .draw_series(rows.iter().enumerate().map(|(i, (_, a, b, ok))| {
                let colour = if *ok { OK } else { BAD };
                let mut bar =
                    Rectangle::new([(*a, SegmentValue::Exact(i)), (*b, SegmentValue::Exact(i + 1))], colour.filled());
                bar.set_margin(4, 4, 0, 0);
                bar
            }))
            .map_err(err)?;
        Ok(())
    })
}

/// Mean MTTD (dark, narrow) inside mean MTTR (light, wide) per spec, over its recovered runs.
/// One spec's recovered runs: its name, how many, mean MTTD and mean MTTR in seconds.
pub type SpecRecovery = (String, usize, f64, f64);

pub fn chaos_recovery(runs: &[Value]) -> Result<(String, Vec<SpecRecovery>), String> {
    let mut by_spec: BTreeMap<String, Vec<(f64, f64)>> = BTreeMap::new();
    for r in runs.iter().filter(|r| r["verdict"] == "recovered") {
        if let (Some(d), Some(m)) = (r["recovery"]["mttd_s"].as_f64(), r["recovery"]["mttr_s"].as_f64()) {
            by_spec.entry(text(&r["spec"])).or_default().push((d, m));
        }
    }
    if by_spec.is_empty() {
        return Err("no recovered chaos run with MTTD and MTTR".into());
    }
    let rows: Vec<SpecRecovery> = by_spec
        .into_iter()
        .map(|(spec, v)| {
            let n = v.len();
            let mean = |f: fn(&(f64, f64)) -> f64| v.iter().map(f).sum::<f64>() / n as f64;
            (spec, n, mean(|p| p.0), mean(|p| p.1))
        })
        .collect();
    let top = rows.iter().map(|r| r.3.max(r.2)).fold(0.0, f64::max) * 1.15;
    let n = rows.len();
    let chart = svg((900, 360), |root| {
        let mut chart = ChartBuilder::on(root)
            .margin(10)
            .x_label_area_size(40)
            .y_label_area_size(60)
            .build_cartesian_2d((0..n.saturating_sub(1)).into_segmented(), 0f64..top.max(1.0))
            .map_err(err)?;
        let names: Vec<String> = rows.iter().map(|r| r.0.clone()).collect();
        chart
            .configure_mesh()
            .disable_x_mesh()
            .y_desc("seconds")
            .x_labels(n)
            .x_label_formatter(&|v| segment_label(&names, v))
            .draw()
            .map_err(err)?;
        let bar = |i: usize, v: f64, margin: u32, colour: RGBColor| {
            let mut r =
                Rectangle::new([(SegmentValue::Exact(i), 0.0), (SegmentValue::Exact(i + 1), v)], colour.filled());
            r.set_margin(0, 0, margin, margin);
            r
        };
        chart
            .draw_series(rows.iter().enumerate().map(|(i, r)| bar(i, r.3, 20, LIGHT_BLUE)))
            .map_err(err)?
            .label("MTTR (fault injected → healthy)")
            .legend(|(x, y)| Rectangle::new([(x, y - 5), (x + 14, y + 5)], LIGHT_BLUE.filled()));
        chart
            .draw_series(rows.iter().enumerate().map(|(i, r)| bar(i, r.2, 50, BLUE)))
            .map_err(err)?
            .label("MTTD (fault injected → first anomaly)")
            .legend(|(x, y)| Rectangle::new([(x, y - 5), (x + 14, y + 5)], BLUE.filled()));
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperLeft)
            .background_style(WHITE.mix(0.9))
            .border_style(BLACK)
            .draw()
            .map_err(err)?;
        Ok(())
    })?;
    Ok((chart, rows))
}

/// The labelled windows of a scored series: contiguous runs of `label`.
pub fn windows(points: &[ScoredPoint]) -> Vec<(DateTime<Utc>, DateTime<Utc>)> {
    let mut out = Vec::new();
    let mut open: Option<DateTime<Utc>> = None;
    for (i, p) in points.iter().enumerate() {
        match (p.label, open) {
            (true, None) => open = Some(p.at),
            (false, Some(start)) => {
                out.push((start, points[i - 1].at));
                open = None;
            }
            _ => {}
        }
    }
    if let (Some(start), Some(last)) = (open, points.last()) {
        out.push((start, last.at));
    }
    out
}

/// What the detection chart shows, in numbers.
#[derive(Debug, Clone, PartialEq)]
pub struct DetectionSummary {
    pub points: usize,
    pub windows: usize,
    pub alarms: usize,
    pub alarms_in_windows: usize,
    pub windows_caught: usize,
}

/// The series (top) and the detector's score (bottom) with NAB's labelled windows shaded and the
/// alarms (score ≥ 0.5) marked on both.
pub fn detection(points: &[ScoredPoint]) -> Result<(String, DetectionSummary), String> {
    let t0 = points.first().ok_or("no points")?.at;
    let day = |t: DateTime<Utc>| (t - t0).num_seconds() as f64 / 86_400.0;
    let end = day(points.last().map_or(t0, |p| p.at)).max(1e-3);
    let wins = windows(points);
    let alarms: Vec<&ScoredPoint> = points.iter().filter(|p| p.score >= THRESHOLD).collect();
    let in_window = |t: DateTime<Utc>| wins.iter().any(|(a, b)| t >= *a && t <= *b);
    let summary = DetectionSummary {
        points: points.len(),
        windows: wins.len(),
        alarms: alarms.len(),
        alarms_in_windows: alarms.iter().filter(|p| in_window(p.at)).count(),
        windows_caught: wins.iter().filter(|(a, b)| alarms.iter().any(|p| p.at >= *a && p.at <= *b)).count(),
    };
    let (lo, hi) = points.iter().fold((f64::MAX, f64::MIN), |(l, h), p| (l.min(p.value), h.max(p.value)));
    let pad = ((hi - lo) * 0.05).max(1e-6);
    let date = move |d: &f64| (t0 + chrono::Duration::seconds((d * 86_400.0) as i64)).format("%m-%d").to_string();
    let chart = svg((900, 460), |root| {
        let (upper, lower) = root.split_vertically(250);
        let shade = RGBColor(240, 120, 120).mix(0.25);
        let mut top = ChartBuilder::on(&upper)
            .margin(10)
            .x_label_area_size(20)
            .y_label_area_size(60)
            .build_cartesian_2d(0f64..end, (lo - pad)..(hi + pad))
            .map_err(err)?;
        top.configure_mesh().x_label_formatter(&date).y_desc("value").draw().map_err(err)?;
        top.draw_series(
            wins.iter().map(|(a, b)| Rectangle::new([(day(*a), lo - pad), (day(*b), hi + pad)], shade.filled())),
        )
        .map_err(err)?;
        top.draw_series(LineSeries::new(points.iter().map(|p| (day(p.at), p.value)), BLUE.stroke_width(1)))
            .map_err(err)?;
        top.draw_series(alarms.iter().map(|p| TriangleMarker::new((day(p.at), p.value), 6, BAD.filled())))
            .map_err(err)?;

        let mut bottom = ChartBuilder::on(&lower)
            .margin(10)
            .x_label_area_size(30)
            .y_label_area_size(60)
            .build_cartesian_2d(0f64..end, 0f64..1.05)
            .map_err(err)?;
        bottom.configure_mesh().x_label_formatter(&date).x_desc("date (UTC)").y_desc("score").draw().map_err(err)?;
        bottom
            .draw_series(wins.iter().map(|(a, b)| Rectangle::new([(day(*a), 0.0), (day(*b), 1.05)], shade.filled())))
            .map_err(err)?
            .label("NAB labelled window")
            .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 14, y + 5)], shade.filled()));
        bottom
            .draw_series(LineSeries::new(points.iter().map(|p| (day(p.at), p.score)), AMBER.stroke_width(1)))
            .map_err(err)?
            .label("detector score")
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 14, y)], AMBER));
        bottom
            .draw_series(LineSeries::new([(0.0, THRESHOLD), (end, THRESHOLD)], BLACK.mix(0.6).stroke_width(1)))
            .map_err(err)?
            .label("threshold 0.5")
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 14, y)], BLACK));
        bottom
            .draw_series(alarms.iter().map(|p| Circle::new((day(p.at), p.score), 3, BAD.filled())))
            .map_err(err)?
            .label("alarm")
            .legend(|(x, y)| Circle::new((x + 7, y), 3, BAD.filled()));
        bottom
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperLeft)
            .background_style(WHITE.mix(0.9))
            .border_style(BLACK)
            .draw()
            .map_err(err)?;
        Ok(())
    })?;
    Ok((chart, summary))
}

fn status_colour(s: &str) -> RGBColor {
    match s {
        "COMPLIANT" | "online" => OK,
        "NON_COMPLIANT" | "offline" => BAD,
        "stale" => AMBER,
        _ => GREY,
    }
}

/// P-1…P-6 × service, one coloured cell each.
pub fn compliance_grid(doc: &Value) -> Result<String, String> {
    let policies: Vec<&Value> = doc["policies"].as_array().map(|p| p.iter().collect()).unwrap_or_default();
    let mut services: Vec<String> = policies
        .iter()
        .flat_map(|p| p["cells"].as_array().into_iter().flatten().map(|c| text(&c["service"])))
        .collect();
    services.sort();
    services.dedup();
    if policies.is_empty() || services.is_empty() {
        return Err("the compliance answer has no cells".into());
    }
    let (rows, cols) = (policies.len(), services.len());
    let cell_w = 130i32;
    let cell_h = 34i32;
    let (left, top) = (70i32, 40i32);
    svg(((left + cell_w * cols as i32 + 20) as u32, (top + cell_h * rows as i32 + 60) as u32), |root| {
        let label = ("sans-serif", 13).into_font();
        for (j, s) in services.iter().enumerate() {
            root.draw(&Text::new(s.clone(), (left + cell_w * j as i32 + 4, top - 20), label.clone())).map_err(err)?;
        }
        for (i, p) in policies.iter().enumerate() {
            let y = top + cell_h * i as i32;
            root.draw(&Text::new(text(&p["id"]), (8, y + 10), label.clone())).map_err(err)?;
            for (j, s) in services.iter().enumerate() {
                let x = left + cell_w * j as i32;
                let cell = p["cells"].as_array().and_then(|cs| cs.iter().find(|c| text(&c["service"]) == *s));
                let status = cell.map(|c| text(&c["status"])).unwrap_or_else(|| "n/a".into());
                let colour = if cell.is_some() { status_colour(&status) } else { WHITE };
                root.draw(&Rectangle::new(
                    [(x + 2, y + 2), (x + cell_w - 2, y + cell_h - 2)],
                    colour.mix(0.85).filled(),
                ))
                .map_err(err)?;
                root.draw(&Rectangle::new([(x + 2, y + 2), (x + cell_w - 2, y + cell_h - 2)], BLACK.mix(0.3)))
                    .map_err(err)?;
                let short = match status.as_str() {
                    "COMPLIANT" => "compliant",
                    "NON_COMPLIANT" => "NOT compliant",
                    "INSUFFICIENT_DATA" => "no data",
                    _ => "",
                };
                root.draw(&Text::new(short.to_owned(), (x + 8, y + 11), ("sans-serif", 12).into_font().color(&WHITE)))
                    .map_err(err)?;
            }
        }
        let legend_y = top + cell_h * rows as i32 + 15;
        for (k, (name, c)) in
            [("compliant", OK), ("not compliant", BAD), ("insufficient data", GREY)].iter().enumerate()
        {
            let x = left + 160 * k as i32;
            root.draw(&Rectangle::new([(x, legend_y), (x + 14, legend_y + 14)], c.filled())).map_err(err)?;
            root.draw(&Text::new((*name).to_owned(), (x + 20, legend_y + 1), label.clone())).map_err(err)?;
        }
        Ok(())
    })
}

/// Nodes by status.
pub fn fleet(doc: &Value) -> Result<(String, BTreeMap<String, usize>), String> {
    let nodes = doc["nodes"].as_array().cloned().unwrap_or_default();
    if nodes.is_empty() {
        return Err("no edge nodes".into());
    }
    let mut counts: BTreeMap<String, usize> =
        ["online", "stale", "offline"].iter().map(|s| ((*s).to_owned(), 0)).collect();
    for n in &nodes {
        *counts.entry(text(&n["status"])).or_default() += 1;
    }
    // Liveness order, then anything else the hub reports.
    let mut keys: Vec<String> = ["online", "stale", "offline"].iter().map(|s| (*s).to_owned()).collect();
    keys.extend(counts.keys().filter(|k| !keys.contains(k)).cloned().collect::<Vec<_>>());
    let top = counts.values().copied().max().unwrap_or(1) as f64 + 1.0;
    let chart = svg((600, 300), |root| {
        let mut chart = ChartBuilder::on(root)
            .margin(10)
            .x_label_area_size(30)
            .y_label_area_size(40)
            .build_cartesian_2d((0..keys.len().saturating_sub(1)).into_segmented(), 0f64..top)
            .map_err(err)?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .y_desc("nodes")
            .x_labels(keys.len())
            .x_label_formatter(&|v| segment_label(&keys, v))
            .draw()
            .map_err(err)?;
        chart
            .draw_series(keys.iter().enumerate().map(|(i, k)| {
                let mut r = Rectangle::new(
                    [(SegmentValue::Exact(i), 0.0), (SegmentValue::Exact(i + 1), counts[k] as f64)],
                    status_colour(k).filled(),
                );
                r.set_margin(0, 0, 30, 30);
                r
            }))
            .map_err(err)?;
        Ok(())
    })?;
    Ok((chart, counts))
}

fn section(html: &mut String, id: &str, title: &str, body: Result<String, String>) {
    let _ = write!(html, "<section id=\"{id}\"><h2>{}</h2>", esc(title));
    match body {
        Ok(b) => html.push_str(&b),
        Err(why) => {
            let _ = write!(html, "<p class=\"missing\">Not drawn: {}</p>", esc(&why));
        }
    }
    html.push_str("</section>\n");
}

fn table(head: &[&str], rows: Vec<Vec<String>>) -> String {
    let mut t = String::from("<table><tr>");
    for h in head {
        let _ = write!(t, "<th>{}</th>", esc(h));
    }
    t.push_str("</tr>");
    for r in rows {
        t.push_str("<tr>");
        for c in r {
            let _ = write!(t, "<td>{}</td>", esc(&c));
        }
        t.push_str("</tr>");
    }
    t.push_str("</table>");
    t
}

/// The page checks itself when it loads: every chart is an SVG with drawn elements and a size,
/// and no script error happened; the result is written into `#render-check` (JSON), where a
/// headless browser's DOM dump finds it.
const CHECK: &str = r#"<script>
(function () {
  var errors = [];
  window.addEventListener('error', function (e) { errors.push(String(e.message || e)); });
  window.addEventListener('load', function () {
    var charts = Array.prototype.slice.call(document.querySelectorAll('svg.chart'));
    var drawn = charts.filter(function (s) {
      var r = s.getBoundingClientRect();
      return r.width > 50 && r.height > 50 && s.querySelectorAll('rect,path,polyline,circle,line,text').length > 5;
    }).length;
    var out = {charts: charts.length, drawn: drawn, sections: document.querySelectorAll('section').length,
               missing: document.querySelectorAll('.missing').length, errors: errors};
    document.getElementById('render-check').textContent = JSON.stringify(out);
  });
})();
</script>"#;

/// The whole page.
pub fn render(inputs: &Inputs) -> String {
    let mut html = String::from(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>Naksha — operations report</title>\n\
         <meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:\">\n<style>\n\
         body{font-family:system-ui,sans-serif;margin:2em auto;max-width:980px;color:#222}\n\
         section{margin:2.5em 0;border-top:1px solid #ddd;padding-top:1em}\n\
         table{border-collapse:collapse;margin:.8em 0;font-size:14px}td,th{border:1px solid #ccc;padding:3px 8px;text-align:left}\n\
         .missing{color:#a33}.caption{color:#555;font-size:14px}#render-check{display:none}\n</style></head><body>\n",
    );
    let _ = writeln!(
        html,
        "<h1>Naksha Phase D — operations report</h1><p class=\"caption\">Written by <code>make demo</code> at {} from commit <code>{}</code>. Every chart is drawn from what the running stack answered.</p>",
        esc(&inputs.generated_at),
        esc(&inputs.commit)
    );

    let run = inputs.run.as_ref().ok_or_else(|| "no run recorded".to_owned()).and_then(|run| {
        let chart = run_timeline(run)?;
        let approval = run["approval"].as_object().map(|a| {
            format!(" Approved by {} (\"{}\").", text(&a["approver"].clone()), text(&a["justification"].clone()))
        });
        Ok(format!(
            "<p class=\"caption\">Run <code>{}</code>: <b>{}</b> on <code>{}</code> → <b>{}</b>, WPK <code>{}@{}</code>. Each bar is one step of the agent's graph (green: ok); the gap before the second <i>gate</i> is the wait for a person's approval.{}</p>{chart}",
            esc(&text(&run["run_id"])),
            esc(&text(&run["signal"])),
            esc(&text(&run["resource"])),
            esc(&text(&run["status"])),
            esc(&text(&run["wpk"]["id"])),
            esc(&text(&run["wpk"]["version"])),
            esc(&approval.unwrap_or_default()),
        ))
    });
    section(&mut html, "run", "An agent run, step by step", run);

    let chaos = chaos_recovery(&inputs.chaos_runs).map(|(chart, rows)| {
        let t = table(
            &["spec", "recovered runs", "mean MTTD s", "mean MTTR s"],
            rows.iter().map(|r| vec![r.0.clone(), r.1.to_string(), format!("{:.1}", r.2), format!("{:.1}", r.3)]).collect(),
        );
        format!(
            "<p class=\"caption\">Chaos experiments that recovered ({} runs in all): mean time to detect inside mean time to recover, per spec.</p>{chart}{t}",
            inputs.chaos_runs.len()
        )
    });
    section(&mut html, "chaos", "Chaos experiments: how fast the system heals", chaos);

    let detection = inputs.nab.as_ref().ok_or_else(|| "no NAB result (make demo scores NAB when ../shared/data/nab is present)".to_owned()).and_then(|(name, pts)| {
        let (chart, s) = detection(pts)?;
        Ok(format!(
            "<p class=\"caption\">The production detector over the NAB series <code>{}</code> ({} points, scored online, each from the past only). Shaded: NAB's {} labelled anomaly windows. {} alarms (score ≥ {THRESHOLD}), {} of them inside a window; {} of {} windows caught.</p>{chart}",
            esc(name), s.points, s.windows, s.alarms, s.alarms_in_windows, s.windows_caught, s.windows
        ))
    });
    section(&mut html, "detection", "Detection on a real series", detection);

    let compliance = inputs.compliance.as_ref().ok_or_else(|| "no compliance answer recorded".to_owned()).and_then(|doc| {
        let chart = compliance_grid(doc)?;
        Ok(format!(
            "<p class=\"caption\">GET /compliance: score {}, {} compliant, {} not, {} without enough data.</p>{chart}",
            esc(&text(&doc["score"])),
            esc(&text(&doc["compliant"])),
            esc(&text(&doc["non_compliant"])),
            esc(&text(&doc["insufficient_data"]))
        ))
    });
    section(&mut html, "compliance", "Compliance with P-1…P-6", compliance);

    let edge = inputs.nodes.as_ref().ok_or_else(|| "no edge fleet recorded".to_owned()).and_then(|doc| {
        let (chart, _) = fleet(doc)?;
        let nodes = doc["nodes"].as_array().cloned().unwrap_or_default();
        let t = table(
            &["node", "status", "last seen", "labels", "saw the halt"],
            nodes
                .iter()
                .map(|n| {
                    vec![
                        text(&n["node_id"]),
                        text(&n["status"]),
                        text(&n["last_seen"]),
                        n["labels"].to_string(),
                        text(&n["halt_seen"]),
                    ]
                })
                .collect(),
        );
        Ok(format!("<p class=\"caption\">The edge fleet by liveness (GET /federation/nodes).</p>{chart}{t}"))
    });
    section(&mut html, "edge", "Edge fleet", edge);

    html.push_str("<pre id=\"render-check\"></pre>\n");
    html.push_str(CHECK);
    html.push_str("\n</body></html>\n");
    html
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn point(i: i64, score: f64, label: bool) -> ScoredPoint {
        let t0 = DateTime::parse_from_rfc3339("2014-04-01T00:00:00Z").unwrap().with_timezone(&Utc);
        ScoredPoint { at: t0 + chrono::Duration::minutes(5 * i), value: i as f64, score, label }
    }

    #[test]
    fn windows_are_the_runs_of_labelled_points() {
        let pts: Vec<ScoredPoint> =
            [false, true, true, false, false, true].iter().enumerate().map(|(i, l)| point(i as i64, 0.0, *l)).collect();
        let w = windows(&pts);
        assert_eq!(w, vec![(pts[1].at, pts[2].at), (pts[5].at, pts[5].at)]);
    }

    #[test]
    fn the_detection_summary_counts_alarms_inside_windows() {
        let pts = vec![
            point(0, 0.1, false),
            point(1, 0.7, false),
            point(2, 0.2, true),
            point(3, 0.9, true),
            point(4, 0.1, false),
            point(5, 0.0, true),
        ];
        let (svg, s) = detection(&pts).unwrap();
        assert_eq!(s, DetectionSummary { points: 6, windows: 2, alarms: 2, alarms_in_windows: 1, windows_caught: 1 });
        assert!(svg.starts_with("<svg class=\"chart\""), "{}", &svg[..80]);
        assert_eq!(svg.matches("<circle").count(), 2 + 1, "two alarms and the legend's marker");
    }

    #[test]
    fn nab_results_are_read_and_bad_rows_named() {
        let ok = read_nab(
            "timestamp,value,anomaly_score,label\n2014-04-01 00:00:00,1.5,0.25,0\n2014-04-01 00:05:00,2,0.75,1\n",
        )
        .unwrap();
        assert_eq!((ok.len(), ok[1].label, ok[1].score), (2, true, 0.75));
        assert!(
            read_nab("timestamp,value,anomaly_score,label\n2014-04-01 00:00:00,x,0,0\n")
                .unwrap_err()
                .contains("line 2")
        );
        assert!(read_nab("timestamp,value\n").is_err());
    }

    #[test]
    fn a_missing_part_is_said_not_drawn_and_the_rest_still_is() {
        let inputs = Inputs {
            compliance: Some(
                json!({"score": 0.5, "policies": [{"id": "P-1", "cells": [{"service": "a", "status": "COMPLIANT"}, {"service": "b", "status": "NON_COMPLIANT"}]}]}),
            ),
            ..Inputs::default()
        };
        let html = render(&inputs);
        assert_eq!(html.matches("<svg class=\"chart\"").count(), 1);
        assert_eq!(html.matches("class=\"missing\"").count(), 4);
        assert!(html.contains("NOT compliant"));
        for remote in ["src=\"http", "href=\"http", "url(http", "@import", "<link"] {
            assert!(!html.contains(remote), "self-contained: {remote}");
        }
    }

    #[test]
    fn chaos_recovery_means_only_recovered_runs() {
        let runs = vec![
            json!({"spec": "kill-pod", "verdict": "recovered", "recovery": {"mttd_s": 2.0, "mttr_s": 10.0}}),
            json!({"spec": "kill-pod", "verdict": "recovered", "recovery": {"mttd_s": 4.0, "mttr_s": 20.0}}),
            json!({"spec": "latency", "verdict": "not_recovered", "recovery": {"mttd_s": 1.0, "mttr_s": null}}),
        ];
        let (_, rows) = chaos_recovery(&runs).unwrap();
        assert_eq!(rows, vec![("kill-pod".to_owned(), 2, 3.0, 15.0)]);
    }
}
