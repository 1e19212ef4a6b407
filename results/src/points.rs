//! The sa-bench result files of a run (`sa-bench_*/results_*.json`, the layout srt-slurm's tools read):
//! one point per concurrency, with the figures the report, the rollup and `diff` use.

use serde_json::Value;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone)]
pub struct Point {
    /// `sa-bench_isl_1024_osl_128` (or `sa-bench_custom_…`).
    pub group: String,
    pub file: PathBuf,
    pub concurrency: u64,
    pub json: Value,
}

impl Point {
    /// A number of the result (`NaN` when absent).
    pub fn get(&self, key: &str) -> f64 {
        self.json
            .get(key)
            .and_then(Value::as_f64)
            .unwrap_or(f64::NAN)
    }
    /// Tokens per second one user sees: 1000 / median TPOT (ms), as srt-slurm's rollup.
    pub fn tokens_per_user(&self) -> f64 {
        1000.0 / self.get("median_tpot_ms")
    }
    /// What timed a simulated point (`None` = measured): its result's `simulated.timing`.
    pub fn simulated(&self) -> Option<&str> {
        self.json
            .pointer("/simulated/timing")
            .and_then(Value::as_str)
    }
    /// The label of a point in a comparison: `isl 1024 / osl 128, c=64`.
    pub fn key(&self) -> (String, u64) {
        (self.group.clone(), self.concurrency)
    }
}

/// Every `sa-bench_*/results_*.json` of the run, by group then concurrency. Files that do not parse are
/// returned as errors beside the points, not dropped silently.
pub fn read(run_dir: &Path) -> (Vec<Point>, Vec<String>) {
    let mut points = Vec::new();
    let mut errors = Vec::new();
    let Ok(dirs) = std::fs::read_dir(run_dir) else {
        return (points, errors);
    };
    for d in dirs.flatten() {
        let group = d.file_name().to_string_lossy().into_owned();
        if !group.starts_with("sa-bench_") || !d.path().is_dir() {
            continue;
        }
        for f in std::fs::read_dir(d.path()).into_iter().flatten().flatten() {
            let name = f.file_name().to_string_lossy().into_owned();
            if !(name.starts_with("results_") && name.ends_with(".json")) {
                continue;
            }
            match crate::read_json(&f.path()) {
                Ok(json) => points.push(Point {
                    group: group.clone(),
                    file: f.path(),
                    concurrency: json
                        .get("max_concurrency")
                        .and_then(Value::as_u64)
                        .unwrap_or(0),
                    json,
                }),
                Err(e) => errors.push(e.to_string()),
            }
        }
    }
    points.sort_by(|a, b| (&a.group, a.concurrency).cmp(&(&b.group, b.concurrency)));
    (points, errors)
}
