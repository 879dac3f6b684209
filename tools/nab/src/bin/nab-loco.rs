//! `make nab-loco DATA=<dir> LABELS=<windows.json> [GRID=<grid.json>]`: choose the detector's
//! parameters honestly. Every setting in GRID (a JSON object `{param: [values…]}` over
//! `DetectorParams`, applied on top of the defaults) runs the production detector over every
//! file once; then, for each category in turn, the setting with the best standard score on the
//! *other* categories is scored on the held-out one. The held-out folds pooled are the estimate
//! of what the chosen settings do on data they were never chosen on; the setting best on all
//! categories is the candidate for the defaults. The threshold is 0.5, fixed.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::ExitCode;

use naksha_detector::detector::{Params, State};
use naksha_nab::{FileScoring, baselines, parse_time, profiles, raw_score, window_rows};

const THRESHOLD: f64 = 0.5;

struct File {
    category: String,
    points: Vec<(i64, f64)>,
    windows: Vec<(usize, usize)>,
}

fn load(data: &Path, labels: &Path) -> Result<Vec<File>, String> {
    let text = std::fs::read_to_string(labels).map_err(|e| format!("{}: {e}", labels.display()))?;
    let windows: BTreeMap<String, Vec<(String, String)>> = serde_json::from_str(&text).map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    let mut cats: Vec<_> = std::fs::read_dir(data)
        .map_err(|e| format!("{}: {e}", data.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_dir())
        .collect();
    cats.sort();
    for cat in cats {
        let category = cat.file_name().unwrap_or_default().to_string_lossy().to_string();
        let mut files: Vec<_> = std::fs::read_dir(&cat)
            .map_err(|e| e.to_string())?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "csv"))
            .collect();
        files.sort();
        for f in files {
            let rel = format!("{category}/{}", f.file_name().unwrap_or_default().to_string_lossy());
            let text = std::fs::read_to_string(&f).map_err(|e| format!("{rel}: {e}"))?;
            let mut times = Vec::new();
            let mut points = Vec::new();
            for line in text.lines().skip(1) {
                let Some((t, v)) = line.split_once(',') else { continue };
                let Some(time) = parse_time(t) else { continue };
                times.push(time);
                points.push((time.and_utc().timestamp(), v.trim().parse::<f64>().unwrap_or(f64::NAN)));
            }
            let labelled: Vec<_> = windows
                .get(&rel)
                .map(|w| w.iter().filter_map(|(a, b)| Some((parse_time(a)?, parse_time(b)?))).collect())
                .unwrap_or_default();
            out.push(File { category: category.clone(), points, windows: window_rows(&times, &labelled) });
        }
    }
    if out.is_empty() {
        return Err(format!("no <category>/<file>.csv under {}", data.display()));
    }
    Ok(out)
}

/// Per category, per profile (standard, low FP, low FN): summed (raw, null, perfect).
type Sums = BTreeMap<String, [(f64, f64, f64); 3]>;

fn evaluate(files: &[File], p: &Params) -> Sums {
    let mut sums: Sums = BTreeMap::new();
    for f in files {
        let mut s = State::default();
        let det: Vec<bool> = f.points.iter().map(|(t, v)| s.update(p, *t, *v) >= THRESHOLD).collect();
        let e = sums.entry(f.category.clone()).or_insert([(0.0, 0.0, 0.0); 3]);
        for (k, (_, cost)) in profiles().iter().enumerate() {
            let (null, perfect) = baselines(det.len(), &f.windows, cost);
            e[k].0 += raw_score(&FileScoring { detections: &det, windows: &f.windows }, cost);
            e[k].1 += null;
            e[k].2 += perfect;
        }
    }
    sums
}

/// Normalised score of the categories `keep` selects; a category without windows (null =
/// perfect = 0) has no normalised score, so its raw score (false positives, ≤ 0) × 100 is shown.
fn norm(sums: &Sums, keep: impl Fn(&str) -> bool, k: usize) -> f64 {
    let (mut r, mut n, mut p) = (0.0, 0.0, 0.0);
    for (c, v) in sums {
        if keep(c) {
            r += v[k].0;
            n += v[k].1;
            p += v[k].2;
        }
    }
    if (p - n).abs() < 1e-12 { 100.0 * r } else { 100.0 * (r - n) / (p - n) }
}

fn grid_configs(grid: &BTreeMap<String, Vec<serde_json::Value>>) -> Result<Vec<(serde_json::Value, Params)>, String> {
    let mut configs = vec![serde_json::to_value(Params::default()).map_err(|e| e.to_string())?];
    for (k, vals) in grid {
        if configs[0].get(k).is_none() {
            return Err(format!("GRID: {k} is not a detector parameter"));
        }
        configs = configs
            .iter()
            .flat_map(|c| {
                vals.iter().map(move |v| {
                    let mut c = c.clone();
                    c[k.as_str()] = v.clone();
                    c
                })
            })
            .collect();
    }
    configs
        .into_iter()
        .map(|c| serde_json::from_value(c.clone()).map(|p| (c, p)).map_err(|e| format!("GRID: {e}")))
        .collect()
}

fn arg(args: &[String], name: &str) -> Option<String> {
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).cloned()
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let (Some(data), Some(labels)) = (arg(&args, "--data"), arg(&args, "--labels")) else {
        eprintln!("usage: nab-loco --data <dir> --labels <windows.json> [--grid <grid.json>]");
        return ExitCode::from(2);
    };
    let files = match load(Path::new(&data), Path::new(&labels)) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("nab-loco: {e}");
            return ExitCode::FAILURE;
        }
    };
    let grid: BTreeMap<String, Vec<serde_json::Value>> = match arg(&args, "--grid") {
        None => BTreeMap::new(),
        Some(path) => match std::fs::read_to_string(&path)
            .map_err(|e| e.to_string())
            .and_then(|t| serde_json::from_str(&t).map_err(|e| e.to_string()))
        {
            Ok(g) => g,
            Err(e) => {
                eprintln!("nab-loco: {path}: {e}");
                return ExitCode::from(2);
            }
        },
    };
    let configs = match grid_configs(&grid) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("nab-loco: {e}");
            return ExitCode::from(2);
        }
    };
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).min(configs.len());
    let results: Vec<(serde_json::Value, Sums)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let (configs, files) = (&configs, &files);
                s.spawn(move || {
                    configs
                        .iter()
                        .enumerate()
                        .filter(|(i, _)| i % threads == t)
                        .map(|(i, (c, p))| (i, c.clone(), evaluate(files, p)))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        let mut all: Vec<_> = handles.into_iter().flat_map(|h| h.join().unwrap_or_default()).collect();
        all.sort_by_key(|(i, _, _)| *i);
        all.into_iter().map(|(_, c, s)| (c, s)).collect()
    });
    let cats: Vec<String> = results[0].1.keys().cloned().collect();
    let describe = |c: &serde_json::Value| {
        let d: Vec<String> = grid.keys().map(|k| format!("{k}={}", c[k.as_str()])).collect();
        if d.is_empty() { "defaults".to_owned() } else { d.join(" ") }
    };
    let table = |s: &Sums| {
        println!("  | category | standard | reward low FP | reward low FN |");
        println!("  |---|---|---|---|");
        for c in &cats {
            println!(
                "  | {c} | {:.1} | {:.1} | {:.1} |",
                norm(s, |x| x == c, 0),
                norm(s, |x| x == c, 1),
                norm(s, |x| x == c, 2)
            );
        }
        println!(
            "  | **all ({} files)** | **{:.2}** | **{:.2}** | **{:.2}** |",
            files.len(),
            norm(s, |_| true, 0),
            norm(s, |_| true, 1),
            norm(s, |_| true, 2)
        );
    };
    println!("{} settings × {} files; threshold {THRESHOLD}", results.len(), files.len());
    println!("\nleave one category out (each fold: the setting best on the other categories, scored on this one):");
    let mut pooled = [(0.0, 0.0, 0.0); 3];
    for held in &cats {
        let Some(best) =
            results.iter().max_by(|a, b| norm(&a.1, |x| x != held, 0).total_cmp(&norm(&b.1, |x| x != held, 0)))
        else {
            continue;
        };
        println!(
            "  held out {held:<22} chosen [{}]  others {:.2} | held out: standard {:.2}  low FP {:.2}  low FN {:.2}",
            describe(&best.0),
            norm(&best.1, |x| x != held, 0),
            norm(&best.1, |x| x == held, 0),
            norm(&best.1, |x| x == held, 1),
            norm(&best.1, |x| x == held, 2)
        );
        for (k, acc) in pooled.iter_mut().enumerate() {
            let v = best.1[held][k];
            acc.0 += v.0;
            acc.1 += v.1;
            acc.2 += v.2;
        }
    }
    let n = |k: usize| 100.0 * (pooled[k].0 - pooled[k].1) / (pooled[k].2 - pooled[k].1);
    println!("  pooled held-out folds: standard {:.2}  low FP {:.2}  low FN {:.2}", n(0), n(1), n(2));
    let best = results.iter().max_by(|a, b| norm(&a.1, |_| true, 0).total_cmp(&norm(&b.1, |_| true, 0)));
    if let Some(best) = best {
        println!("\nbest on all categories: [{}]", describe(&best.0));
        table(&best.1);
    }
    if let Some(defaults) =
        results.iter().find(|(c, _)| serde_json::from_value::<Params>(c.clone()).ok() == Some(Params::default()))
    {
        println!("\nthe defaults (Params::default):");
        table(&defaults.1);
    }
    ExitCode::SUCCESS
}
