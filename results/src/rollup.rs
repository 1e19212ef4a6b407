//! `benchmark-rollup.json` and `benchmark-rollup.csv`: srt-slurm's sa-bench rollup
//! (`src/srtctl/benchmarks/scripts/sa-bench/rollup.py`), same keys, units, GPU counting and CSV number
//! format, so its tooling reads srt-graph's runs. A test runs the real script on a run and compares.

use crate::job::{Job, Resources};
use crate::points::Point;
use serde_json::{json, Map, Value};
use std::path::Path;

pub const JSON_FILE: &str = "benchmark-rollup.json";
pub const CSV_FILE: &str = "benchmark-rollup.csv";

const CSV_FIELDS: [&str; 15] = [
    "Config",
    "Total GPU Count",
    "Decode GPU Count",
    "Total Working GPU Count",
    "Decode Working GPU Count",
    "Prefill Working GPU Count",
    "Concurrency",
    "Total Token Throughput",
    "Output Token Throughput",
    "Median TTFT",
    "Median TPOT",
    "Median ITL",
    "P90 Decode Running Requests",
    "Output Token Throughput per User",
    "Total Token Throughput per GPU",
];

fn positive(x: u32) -> Option<u32> {
    (x > 0).then_some(x)
}

/// (total GPUs, decode GPUs) from the node counts, as `_compute_gpu_counts`.
fn gpu_counts(r: &Resources) -> (Option<u32>, Option<u32>) {
    let Some(per_node) = positive(r.gpus_per_node) else {
        return (None, None);
    };
    let total = if r.prefill_nodes > 0 || r.decode_nodes > 0 {
        (r.prefill_nodes + r.decode_nodes) * per_node
    } else if r.agg_nodes > 0 {
        r.agg_nodes * per_node
    } else {
        per_node
    };
    if r.decode_nodes > 0 {
        return (Some(total), Some(r.decode_nodes * per_node));
    }
    if r.decode_workers > 0 && r.gpus_per_decode > 0 {
        return (Some(total), Some(r.decode_workers * r.gpus_per_decode));
    }
    if r.agg_workers > 0 && r.gpus_per_agg > 0 {
        return (Some(total), Some(r.agg_workers * r.gpus_per_agg));
    }
    if r.agg_nodes > 0 {
        return (Some(total), Some(total));
    }
    (Some(total), None)
}

/// (prefill, decode, total) working GPUs from the worker counts, as `_compute_working_gpu_counts`.
fn working_counts(r: &Resources) -> (Option<u32>, Option<u32>, Option<u32>) {
    let prefill = (r.prefill_workers > 0 && r.gpus_per_prefill > 0)
        .then(|| r.prefill_workers * r.gpus_per_prefill);
    let decode = (r.decode_workers > 0 && r.gpus_per_decode > 0)
        .then(|| r.decode_workers * r.gpus_per_decode);
    let total = match (prefill, decode) {
        (Some(p), Some(d)) => Some(p + d),
        (p, d) => p.or(d),
    };
    (prefill, decode, total)
}

fn ratio(num: Option<f64>, den: Option<f64>) -> Option<f64> {
    match (num, den) {
        (Some(n), Some(d)) if d != 0.0 => Some(n / d),
        _ => None,
    }
}

/// Python's `f"{value:.3f}".rstrip("0").rstrip(".")` for floats, `str()` for ints, "" for None.
fn csv_value(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::Number(n) if n.is_f64() => {
            let s = format!("{:.3}", n.as_f64().unwrap_or(f64::NAN));
            s.trim_end_matches('0').trim_end_matches('.').to_string()
        }
        Value::Number(n) => n.to_string(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn p99(data: &Value, metric: &str) -> Value {
    data.get(format!("p99_{metric}_ms"))
        .cloned()
        .unwrap_or(Value::Null)
}

fn first_of(data: &Value, keys: &[&str]) -> Value {
    keys.iter()
        .find_map(|k| data.get(*k).filter(|v| !v.is_null()).cloned())
        .unwrap_or(Value::Null)
}

/// The rollup's JSON document and CSV rows for `points` of the run described by `job`.
pub fn build(job: Option<&Job>, points: &[Point], timestamp: &str) -> (Value, Vec<Vec<String>>) {
    let g = |p: &Point, k: &str| p.json.get(k).cloned().unwrap_or(Value::Null);
    let resources = job.map(|j| &j.resources);
    let (total, decode) = resources.map_or((None, None), gpu_counts);
    let (prefill_w, decode_w, total_w) = resources.map_or((None, None, None), working_counts);
    let (isl, osl) = job
        .and_then(|j| j.benchmark.as_ref())
        .map_or((Value::Null, Value::Null), |b| (json!(b.isl), json!(b.osl)));
    let mut runs = Vec::new();
    let mut rows: Vec<(i64, Vec<String>)> = Vec::new();
    // `runs` in the order rollup.py globs the files (by path); the CSV by concurrency.
    let mut by_path: Vec<&Point> = points.iter().collect();
    by_path.sort_by(|a, b| a.file.cmp(&b.file));
    for p in by_path {
        runs.push(json!({
            "concurrency": g(p, "max_concurrency"),
            "throughput_toks": g(p, "output_throughput"),
            "request_throughput": g(p, "request_throughput"),
            "ttft_mean_ms": g(p, "mean_ttft_ms"),
            "ttft_p99_ms": p99(&p.json, "ttft"),
            "tpot_mean_ms": g(p, "mean_tpot_ms"),
            "tpot_p99_ms": p99(&p.json, "tpot"),
            "itl_mean_ms": g(p, "mean_itl_ms"),
            "itl_p99_ms": p99(&p.json, "itl"),
            "e2el_mean_ms": g(p, "mean_e2el_ms"),
            "completed_requests": g(p, "completed"),
            "total_input_tokens": first_of(&p.json, &["total_input_tokens", "total_input"]),
            "total_output_tokens": first_of(&p.json, &["total_output_tokens", "total_output"]),
            // Simulated points say so (and what timed them); measured ones carry null.
            "simulated": p.json.get("simulated").cloned().unwrap_or(Value::Null),
        }));
        let eff_total = total_w.or(total);
        let eff_decode = decode_w.or(decode);
        let eff_prefill = prefill_w.or(total.map(|_| 0));
        let total_tput = g(p, "total_token_throughput");
        let tpot = g(p, "median_tpot_ms");
        let config = job
            .map(|j| j.job_name.clone())
            .filter(|n| !n.is_empty())
            .or_else(|| g(p, "model_id").as_str().map(String::from))
            .unwrap_or_else(|| "unknown".into());
        let row = [
            json!(config),
            json!(total),
            json!(decode),
            json!(eff_total),
            json!(eff_decode),
            json!(eff_prefill),
            g(p, "max_concurrency"),
            total_tput.clone(),
            g(p, "output_throughput"),
            g(p, "median_ttft_ms"),
            tpot.clone(),
            g(p, "median_itl_ms"),
            // sa-bench's rollup counts `#running-req` in SGLang decode logs; no engine, no figure.
            Value::Null,
            json!(ratio(Some(1000.0), tpot.as_f64())),
            json!(ratio(total_tput.as_f64(), eff_total.map(f64::from))),
        ];
        let order = g(p, "max_concurrency").as_i64().unwrap_or(-1);
        rows.push((order, row.iter().map(csv_value).collect()));
    }
    rows.sort_by_key(|(c, _)| *c);
    let mut config = Map::new();
    config.insert(
        "model".into(),
        points.first().map_or(Value::Null, |p| g(p, "model_id")),
    );
    config.insert("isl".into(), isl);
    config.insert("osl".into(), osl);
    config.insert(
        "simulated".into(),
        json!(points.iter().any(|p| p.simulated().is_some())),
    );
    let doc = json!({
        "benchmark_type": "sa-bench",
        "timestamp": timestamp,
        "config": config,
        "runs": runs,
    });
    (doc, rows.into_iter().map(|(_, r)| r).collect())
}

/// Writes both files into the run directory when it has sa-bench results; returns whether it did.
pub fn write(run_dir: &Path) -> Result<bool, crate::ResultsError> {
    let (points, _) = crate::points::read(run_dir);
    if points.is_empty() {
        return Ok(false);
    }
    let job = Job::read(run_dir).ok();
    let (doc, rows) = build(
        job.as_ref(),
        &points,
        &srt_graph_engine::rundir::utc_iso8601(),
    );
    let json = serde_json::to_string_pretty(&doc).unwrap_or_default();
    crate::write(&run_dir.join(JSON_FILE), json.as_bytes())?;
    crate::write(&run_dir.join(CSV_FILE), csv(&rows).as_bytes())?;
    Ok(true)
}

/// RFC 4180 as Python's `csv` module writes it (`\r\n` line ends, quotes only where needed).
fn csv(rows: &[Vec<String>]) -> String {
    let field = |f: &str| {
        if f.contains([',', '"', '\n', '\r']) {
            format!("\"{}\"", f.replace('"', "\"\""))
        } else {
            f.to_string()
        }
    };
    let mut out = CSV_FIELDS.map(field).join(",");
    out.push_str("\r\n");
    for r in rows {
        out.push_str(&r.iter().map(|f| field(f)).collect::<Vec<_>>().join(","));
        out.push_str("\r\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_numbers_follow_pythons_format() {
        assert_eq!(csv_value(&json!(1.5)), "1.5");
        assert_eq!(csv_value(&json!(2.0)), "2");
        assert_eq!(csv_value(&json!(0.12345)), "0.123");
        assert_eq!(csv_value(&json!(16)), "16");
        assert_eq!(csv_value(&Value::Null), "");
    }

    #[test]
    fn gpu_counts_follow_the_rollup() {
        let disagg = Resources {
            gpus_per_node: 4,
            prefill_nodes: 2,
            decode_nodes: 2,
            prefill_workers: 2,
            decode_workers: 2,
            gpus_per_prefill: 4,
            gpus_per_decode: 4,
            ..Resources::default()
        };
        assert_eq!(gpu_counts(&disagg), (Some(16), Some(8)));
        assert_eq!(working_counts(&disagg), (Some(8), Some(8), Some(16)));
        let agg = Resources {
            gpus_per_node: 8,
            agg_nodes: 1,
            agg_workers: 2,
            gpus_per_agg: 4,
            ..Resources::default()
        };
        assert_eq!(gpu_counts(&agg), (Some(8), Some(8)));
        assert_eq!(working_counts(&agg), (None, None, None));
    }
}
