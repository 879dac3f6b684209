//! `make nab DATA=<dir> OUT=<dir> [LABELS=<windows.json>]`: run the production detector over
//! every `<category>/<file>.csv` under DATA (NAB's `timestamp,value`), write NAB result files
//! `OUT/naksha/<category>/naksha_<file>.csv` (`timestamp,value,anomaly_score,label`), and with
//! LABELS print the normalised NAB score for each profile. The alert threshold is 0.5, fixed.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use naksha_detector::detector::{Params, score_series};
use naksha_nab::{FileScoring, baselines, normalised, parse_time, profiles, raw_score, window_rows};

const THRESHOLD: f64 = 0.5;

fn arg(args: &[String], name: &str) -> Option<String> {
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).cloned()
}

fn csv_files(data: &Path) -> std::io::Result<Vec<(String, PathBuf)>> {
    let mut out = Vec::new();
    for cat in std::fs::read_dir(data)? {
        let cat = cat?.path();
        if !cat.is_dir() {
            continue;
        }
        for f in std::fs::read_dir(&cat)? {
            let f = f?.path();
            if f.extension().is_some_and(|e| e == "csv") {
                let rel = format!(
                    "{}/{}",
                    cat.file_name().unwrap_or_default().to_string_lossy(),
                    f.file_name().unwrap_or_default().to_string_lossy()
                );
                out.push((rel, f));
            }
        }
    }
    out.sort();
    Ok(out)
}

type Windows = BTreeMap<String, Vec<(String, String)>>;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let (Some(data), Some(out)) = (arg(&args, "--data"), arg(&args, "--out")) else {
        eprintln!("usage: nab --data <dir> --out <dir> [--labels <windows.json>]");
        return ExitCode::from(2);
    };
    let labels: Option<Windows> = match arg(&args, "--labels") {
        None => None,
        Some(path) => match std::fs::read_to_string(&path)
            .map_err(|e| e.to_string())
            .and_then(|t| serde_json::from_str(&t).map_err(|e| e.to_string()))
        {
            Ok(w) => Some(w),
            Err(e) => {
                eprintln!("nab: cannot read labels {path}: {e}");
                return ExitCode::FAILURE;
            }
        },
    };
    let files = match csv_files(Path::new(&data)) {
        Ok(f) if !f.is_empty() => f,
        Ok(_) => {
            eprintln!("nab: no <category>/<file>.csv under {data}");
            return ExitCode::FAILURE;
        }
        Err(e) => {
            eprintln!("nab: reading {data}: {e}");
            return ExitCode::FAILURE;
        }
    };
    // NAB_PARAMS (a JSON object) overrides some of the defaults for experiments; results in
    // reports use the defaults.
    let params: Params = match std::env::var("NAB_PARAMS") {
        Ok(json) => match serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(&json).and_then(|o| {
            let mut p = serde_json::to_value(Params::default())?;
            for (k, v) in o {
                p[k.as_str()] = v;
            }
            serde_json::from_value(p)
        }) {
            Ok(p) => p,
            Err(e) => {
                eprintln!("nab: NAB_PARAMS: {e}");
                return ExitCode::from(2);
            }
        },
        Err(_) => Params::default(),
    };
    let mut totals: BTreeMap<&str, (f64, f64, f64)> = BTreeMap::new();
    // Windows, windows detected, false positives (after probation), for the standard profile.
    let mut counts = (0usize, 0usize, 0usize);
    let mut tp_sum = 0.0f64;
    // Standard-profile raw/null/perfect sums per category (NAB_CATEGORIES=1 prints them).
    let mut by_category: BTreeMap<String, (f64, f64, f64)> = BTreeMap::new();
    let mut per_file = String::new();
    for (rel, path) in &files {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) => {
                eprintln!("nab: {rel}: {e}");
                return ExitCode::FAILURE;
            }
        };
        let mut stamps = Vec::new();
        let mut times = Vec::new();
        let mut points = Vec::new();
        for line in text.lines().skip(1).filter(|l| !l.trim().is_empty()) {
            let Some((t, v)) = line.split_once(',') else { continue };
            let Some(time) = parse_time(t) else { continue };
            let value = v.trim().parse::<f64>().unwrap_or(f64::NAN);
            stamps.push(t.trim().to_owned());
            times.push(time);
            points.push((time.and_utc().timestamp(), value));
        }
        let scores = score_series(&params, &points);
        let windows: Vec<(usize, usize)> = labels
            .as_ref()
            .and_then(|l| l.get(rel))
            .map(|w| {
                let parsed: Vec<_> = w.iter().filter_map(|(a, b)| Some((parse_time(a)?, parse_time(b)?))).collect();
                window_rows(&times, &parsed)
            })
            .unwrap_or_default();
        let mut label = vec![0u8; times.len()];
        for (l, r) in &windows {
            for x in label.iter_mut().take(r + 1).skip(*l) {
                *x = 1;
            }
        }
        let (category, file) = rel.split_once('/').unwrap_or(("", rel.as_str()));
        let dir = Path::new(&out).join("naksha").join(category);
        let mut csv = String::from("timestamp,value,anomaly_score,label\n");
        for i in 0..times.len() {
            let _ = writeln!(csv, "{},{},{:.6},{}", stamps[i], points[i].1, scores[i], label[i]);
        }
        if let Err(e) =
            std::fs::create_dir_all(&dir).and_then(|()| std::fs::write(dir.join(format!("naksha_{file}")), csv))
        {
            eprintln!("nab: writing results for {rel}: {e}");
            return ExitCode::FAILURE;
        }
        if labels.is_some() {
            let detections: Vec<bool> = scores.iter().map(|s| *s >= THRESHOLD).collect();
            let f = FileScoring { detections: &detections, windows: &windows };
            for (name, cost) in profiles() {
                let raw = raw_score(&f, &cost);
                let (null, perfect) = baselines(times.len(), &windows, &cost);
                let t = totals.entry(name).or_default();
                t.0 += raw;
                t.1 += null;
                t.2 += perfect;
            }
            if std::env::var("NAB_DEBUG").is_ok_and(|d| rel.contains(&d)) {
                let alarms: Vec<usize> = detections.iter().enumerate().filter(|(_, d)| **d).map(|(i, _)| i).collect();
                eprintln!(
                    "{rel}: rows {} probation {} windows {windows:?} alarms {alarms:?}",
                    times.len(),
                    naksha_nab::probationary_length(times.len())
                );
            }
            let probation = naksha_nab::probationary_length(times.len());
            counts.0 += windows.len();
            counts.1 += windows.iter().filter(|(l, r)| detections[*l..=*r].iter().any(|d| *d)).count();
            counts.2 += (probation..times.len())
                .filter(|i| detections[*i] && !windows.iter().any(|(l, r)| l <= i && i <= r))
                .count();
            for (l, r) in &windows {
                if let Some(first) = (*l..=*r).find(|i| detections[*i] && *i >= probation) {
                    tp_sum += naksha_nab::scaled_sigmoid(-((r - first + 1) as f64) / ((r - l + 1) as f64));
                }
            }
            let std_raw = raw_score(&f, &profiles()[0].1);
            let (null, perfect) = baselines(times.len(), &windows, &profiles()[0].1);
            let c = by_category.entry(category.to_owned()).or_insert((0.0, 0.0, 0.0));
            c.0 += std_raw;
            c.1 += null;
            c.2 += perfect;
            let _ = writeln!(
                per_file,
                "  {rel:<60} windows {:>2}  alarms {:>3}  raw {std_raw:>7.3}",
                windows.len(),
                detections.iter().filter(|d| **d).count()
            );
        }
    }
    println!("wrote {} result files under {}/naksha/", files.len(), out);
    if labels.is_some() {
        if std::env::var("NAB_VERBOSE").is_ok() {
            print!("{per_file}");
        }
        println!(
            "windows {}  detected {}  false positives {}  mean reward of detected windows {:.3}",
            counts.0,
            counts.1,
            counts.2,
            tp_sum / counts.1.max(1) as f64
        );
        if std::env::var("NAB_CATEGORIES").is_ok() {
            for (c, (raw, null, perfect)) in &by_category {
                println!("category {c} {raw:.4} {null:.4} {perfect:.4}");
            }
        }
        for (name, (raw, null, perfect)) in &totals {
            println!("{name:<20} {:6.2}", normalised(*raw, *null, *perfect));
        }
    }
    ExitCode::SUCCESS
}
