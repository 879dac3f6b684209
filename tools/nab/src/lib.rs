//! NAB scoring (Lavin & Ahmad 2015), reimplemented: the normalised score of a detector over a
//! corpus, for the three standard profiles.
//!
//! Per file: the first 15% of rows (at most 750) are a probationary period and are not scored.
//! A detection (score ≥ threshold) inside a window earns `tp · σ(pos)`, where `pos` is its
//! position in the window, from −1 at the first row to ~0 at the last, and
//! `σ(p) = 2/(1+e^{5p}) − 1`; only the best (earliest) detection of a window counts. A window
//! with no detection costs `fn`. A detection outside every window costs `fp · σ(d)`, where `d`
//! is its distance past the end of the preceding window in units of that window's width (−1 when
//! there is no preceding window or `d > 3`). The raw scores of all files are summed and
//! normalised: `100 · (raw − null) / (perfect − null)`, where the null detector never fires and
//! the perfect one fires on the first row of every window.

use chrono::NaiveDateTime;
use serde::Deserialize;

#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
pub struct CostMatrix {
    #[serde(rename = "tpWeight")]
    pub tp: f64,
    #[serde(rename = "fnWeight")]
    pub fn_: f64,
    #[serde(rename = "fpWeight")]
    pub fp: f64,
}

/// The three profiles of NAB v1.0.
pub fn profiles() -> [(&'static str, CostMatrix); 3] {
    [
        ("standard", CostMatrix { tp: 1.0, fn_: 1.0, fp: 0.11 }),
        ("reward_low_FP_rate", CostMatrix { tp: 1.0, fn_: 1.0, fp: 0.22 }),
        ("reward_low_FN_rate", CostMatrix { tp: 1.0, fn_: 2.0, fp: 0.11 }),
    ]
}

/// NAB's scaled sigmoid of a relative position.
pub fn scaled_sigmoid(position: f64) -> f64 {
    if position > 3.0 { -1.0 } else { 2.0 / (1.0 + (5.0 * position).exp()) - 1.0 }
}

/// Rows before this index are not scored.
pub fn probationary_length(rows: usize) -> usize {
    ((0.15 * rows as f64).floor() as usize).min(750)
}

/// One file: detections per row, and windows as inclusive row index ranges.
#[derive(Debug, Clone)]
pub struct FileScoring<'a> {
    pub detections: &'a [bool],
    pub windows: &'a [(usize, usize)],
}

/// Raw score of one file under `cost`.
pub fn raw_score(file: &FileScoring<'_>, cost: &CostMatrix) -> f64 {
    let n = file.detections.len();
    let probation = probationary_length(n);
    let mut best_in_window: Vec<Option<f64>> = vec![None; file.windows.len()];
    let mut fp_total = 0.0;
    let mut prev: Option<(usize, usize)> = None; // (right index, width) of the last window passed
    let mut w = 0;
    for i in 0..n {
        while w < file.windows.len() && file.windows[w].1 < i {
            let (l, r) = file.windows[w];
            prev = Some((r, r - l + 1));
            w += 1;
        }
        let inside = w < file.windows.len() && file.windows[w].0 <= i && i <= file.windows[w].1;
        if i < probation || !file.detections[i] {
            continue;
        }
        if inside {
            let (l, r) = file.windows[w];
            let width = (r - l + 1) as f64;
            let position = -((r - i + 1) as f64) / width;
            let s = scaled_sigmoid(position) * cost.tp;
            best_in_window[w] = Some(best_in_window[w].map_or(s, |b: f64| b.max(s)));
        } else {
            let unweighted = match prev {
                None => -1.0,
                Some((right, width)) => {
                    let denominator = (width as f64 - 1.0).max(1.0);
                    scaled_sigmoid((i - right) as f64 / denominator)
                }
            };
            fp_total += unweighted * cost.fp;
        }
    }
    let tp: f64 = best_in_window.iter().flatten().sum();
    let missed = best_in_window.iter().filter(|b| b.is_none()).count() as f64;
    tp + fp_total - missed * cost.fn_
}

/// Raw scores of the null (never fires) and perfect (first row of each window) detectors.
pub fn baselines(rows: usize, windows: &[(usize, usize)], cost: &CostMatrix) -> (f64, f64) {
    let never = vec![false; rows];
    let mut perfect = vec![false; rows];
    for (l, _) in windows {
        if *l < rows {
            perfect[*l] = true;
        }
    }
    (
        raw_score(&FileScoring { detections: &never, windows }, cost),
        raw_score(&FileScoring { detections: &perfect, windows }, cost),
    )
}

/// `100 · (raw − null) / (perfect − null)` over summed raw scores.
pub fn normalised(raw: f64, null: f64, perfect: f64) -> f64 {
    if (perfect - null).abs() < f64::EPSILON { 0.0 } else { 100.0 * (raw - null) / (perfect - null) }
}

/// NAB timestamps: `2014-04-10 07:15:00` (data) or `2014-04-10 07:15:00.000000` (windows).
pub fn parse_time(s: &str) -> Option<NaiveDateTime> {
    let s = s.trim();
    NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S%.f")
        .or_else(|_| NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S"))
        .ok()
}

/// Window timestamps → inclusive row ranges over `times` (sorted).
pub fn window_rows(times: &[NaiveDateTime], windows: &[(NaiveDateTime, NaiveDateTime)]) -> Vec<(usize, usize)> {
    windows
        .iter()
        .filter_map(|(start, end)| {
            let l = times.partition_point(|t| t < start);
            let r = times.partition_point(|t| t <= end);
            (r > l).then(|| (l, r - 1))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const STD: CostMatrix = CostMatrix { tp: 1.0, fn_: 1.0, fp: 0.11 };

    fn approx(a: f64, b: f64) {
        assert!((a - b).abs() < 1e-9, "{a} != {b}");
    }

    #[test]
    fn the_scaled_sigmoid_has_nabs_shape() {
        approx(scaled_sigmoid(-1.0), 2.0 / (1.0 + (-5.0f64).exp()) - 1.0); // 0.98661…
        approx(scaled_sigmoid(0.0), 0.0);
        approx(scaled_sigmoid(3.0), 2.0 / (1.0 + 15f64.exp()) - 1.0);
        approx(scaled_sigmoid(3.1), -1.0);
        assert!(scaled_sigmoid(-0.5) > 0.84 && scaled_sigmoid(-0.5) < 0.85);
    }

    #[test]
    fn probation_is_15_percent_capped_at_750() {
        assert_eq!(probationary_length(1000), 150);
        assert_eq!(probationary_length(10_000), 750);
        assert_eq!(probationary_length(7), 1);
    }

    /// 100 rows (probation 15), one window over rows 40..=49 (width 10).
    fn file(det: &[usize]) -> Vec<bool> {
        let mut d = vec![false; 100];
        for i in det {
            d[*i] = true;
        }
        d
    }

    #[test]
    fn hand_computed_cases() {
        let w = [(40usize, 49usize)];
        // Null: one missed window.
        approx(raw_score(&FileScoring { detections: &file(&[]), windows: &w }, &STD), -1.0);
        // First row of the window: position −10/10 = −1.
        approx(raw_score(&FileScoring { detections: &file(&[40]), windows: &w }, &STD), scaled_sigmoid(-1.0));
        // Row 45: position −(49−45+1)/10 = −0.5; a later detection in the window adds nothing.
        approx(raw_score(&FileScoring { detections: &file(&[45, 48]), windows: &w }, &STD), scaled_sigmoid(-0.5));
        // Before any window: a full false positive, −0.11; the window is still missed.
        approx(raw_score(&FileScoring { detections: &file(&[20]), windows: &w }, &STD), -0.11 - 1.0);
        // In probation: ignored.
        approx(raw_score(&FileScoring { detections: &file(&[3]), windows: &w }, &STD), -1.0);
        // After the window: d = (52 − 49)/(10 − 1) = 1/3, σ(1/3) = 2/(1+e^{5/3}) − 1 (negative).
        let fp = (2.0 / (1.0 + (5.0f64 / 3.0).exp()) - 1.0) * 0.11;
        approx(raw_score(&FileScoring { detections: &file(&[40, 52]), windows: &w }, &STD), scaled_sigmoid(-1.0) + fp);
        // Far past the window (d > 3): −0.11.
        approx(
            raw_score(&FileScoring { detections: &file(&[40, 90]), windows: &w }, &STD),
            scaled_sigmoid(-1.0) - 0.11,
        );
    }

    #[test]
    fn profiles_weigh_misses_and_false_positives_differently() {
        let w = [(40usize, 49usize)];
        let [_, low_fp, low_fn] = profiles();
        approx(raw_score(&FileScoring { detections: &file(&[20]), windows: &w }, &low_fp.1), -0.22 - 1.0);
        approx(raw_score(&FileScoring { detections: &file(&[20]), windows: &w }, &low_fn.1), -0.11 - 2.0);
    }

    #[test]
    fn normalisation_puts_null_at_0_and_perfect_at_100() {
        let w = [(40usize, 49usize), (70, 79)];
        let (null, perfect) = baselines(100, &w, &STD);
        approx(null, -2.0);
        approx(perfect, 2.0 * scaled_sigmoid(-1.0));
        approx(normalised(null, null, perfect), 0.0);
        approx(normalised(perfect, null, perfect), 100.0);
        let half = raw_score(&FileScoring { detections: &file(&[40]), windows: &w }, &STD);
        assert!((normalised(half, null, perfect) - 50.0).abs() < 1e-9);
    }

    #[test]
    fn window_timestamps_map_to_inclusive_rows() {
        let times: Vec<_> = (0..10).map(|m| parse_time(&format!("2014-04-10 07:{:02}:00", m * 5)).unwrap()).collect();
        let w =
            [(parse_time("2014-04-10 07:10:00.000000").unwrap(), parse_time("2014-04-10 07:20:00.000000").unwrap())];
        assert_eq!(window_rows(&times, &w), [(2, 4)]);
    }
}
