//! The run's scraped `/metrics` (`raw_prometheus.jsonl`, srtctl's shape) as time series per worker:
//! running and queued requests, KV-cache usage and generation throughput, in seconds since the run
//! started (the step timeline's clock). Lines that cannot be read are skipped: the scrape is best effort.

use serde_json::Value;
use std::collections::BTreeMap;
use std::path::Path;

/// The gauges charted: a worker's by SGLang's names, then a frontend's (sglang-router's open HTTP
/// connections, Dynamo's in-flight and queued requests).
pub const GAUGES: [&str; 7] = [
    "sglang:num_running_reqs",
    "sglang:num_queue_reqs",
    "sglang:token_usage",
    "sglang:gen_throughput",
    ROUTER_IN_FLIGHT,
    DYNAMO_IN_FLIGHT,
    DYNAMO_QUEUED,
];
pub const ROUTER_IN_FLIGHT: &str = "smg_http_connections_active";
pub const DYNAMO_IN_FLIGHT: &str = "dynamo_frontend_inflight_requests";
pub const DYNAMO_QUEUED: &str = "dynamo_frontend_queued_requests";

/// One endpoint's samples: per gauge, (seconds since the run started, value).
#[derive(Debug, Default, Clone)]
pub struct EndpointSeries {
    /// `role worker` (or the URL for a frontend).
    pub label: String,
    pub role: String,
    pub gauges: BTreeMap<&'static str, Vec<(f64, f64)>>,
}

/// The sum over label sets of each charted gauge in one exposition text (a worker's DP ranks add up).
pub fn gauges(text: &str) -> BTreeMap<&'static str, f64> {
    let mut out = BTreeMap::new();
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        for name in GAUGES {
            let Some(rest) = line.strip_prefix(name) else {
                continue;
            };
            if !(rest.starts_with('{') || rest.starts_with(' ')) {
                continue;
            }
            // `name{labels} value [timestamp]`: the value follows the labels.
            let after = rest.rsplit_once('}').map_or(rest, |(_, v)| v);
            if let Some(v) = after
                .split_whitespace()
                .next()
                .and_then(|v| v.parse::<f64>().ok())
            {
                *out.entry(name).or_insert(0.0) += v;
            }
        }
    }
    out
}

/// When the run started (epoch seconds): its journal's first `run_started`.
pub(crate) fn run_start(run_dir: &Path) -> Option<f64> {
    let text = std::fs::read_to_string(run_dir.join("journal.jsonl")).ok()?;
    text.lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|v| v["event"] == "run_started")
        .and_then(|v| v["t"].as_f64())
}

/// The scrape file the plan's `scrape_metrics` step writes (`--out`), else srtctl's default name.
fn scrape_file(run_dir: &Path, plan: &Value) -> std::path::PathBuf {
    plan["steps"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|s| s["kind"] == "scrape_metrics")
        .and_then(|s| {
            let argv = s["command"].as_array()?;
            let i = argv.iter().position(|a| a == "--out")?;
            let out = argv.get(i + 1)?.as_str()?;
            Path::new(out).file_name().map(|n| run_dir.join(n))
        })
        .unwrap_or_else(|| run_dir.join("raw_prometheus.jsonl"))
}

/// Every endpoint with at least one charted gauge, workers first, in the order they were scraped.
pub fn read(run_dir: &Path, plan: &Value) -> Vec<EndpointSeries> {
    let Ok(text) = std::fs::read_to_string(scrape_file(run_dir, plan)) else {
        return Vec::new();
    };
    let Some(t0) = run_start(run_dir) else {
        return Vec::new();
    };
    let mut by_url: Vec<(String, EndpointSeries)> = Vec::new();
    for line in text.lines() {
        let Ok(v) = serde_json::from_str::<Value>(line) else {
            continue;
        };
        let (Some(url), Some(body), Some(ns)) = (
            v["endpoint_url"].as_str(),
            v["text"].as_str(),
            v["timestamp_ns"].as_f64(),
        ) else {
            continue;
        };
        let t = ns / 1e9 - t0;
        let found = gauges(body);
        if found.is_empty() {
            continue;
        }
        let idx = match by_url.iter().position(|(u, _)| u == url) {
            Some(i) => i,
            None => {
                let role = v["role"].as_str().unwrap_or("").to_string();
                let label = match v["worker_id"].as_str() {
                    Some(w) => format!("{role} {w} ({})", url.trim_end_matches("/metrics")),
                    None => url.to_string(),
                };
                by_url.push((
                    url.to_string(),
                    EndpointSeries {
                        label,
                        role,
                        ..Default::default()
                    },
                ));
                by_url.len() - 1
            }
        };
        for (name, value) in found {
            by_url[idx]
                .1
                .gauges
                .entry(name)
                .or_default()
                .push((t, value));
        }
    }
    let mut out: Vec<EndpointSeries> = by_url.into_iter().map(|(_, s)| s).collect();
    out.sort_by_key(|s| s.role == "frontend");
    out
}

/// A scrape target that missed sweeps: never answered, or went silent for longer than a few intervals.
#[derive(Debug, Clone, PartialEq)]
pub struct Gap {
    pub role: String,
    pub url: String,
    /// Lines it answered with.
    pub lines: usize,
    /// Its longest silence in seconds (from the scrape's first to its last sweep); `None`: it never
    /// answered.
    pub longest_secs: Option<f64>,
}

/// Every target of the plan's scrape that left a gap, in the plan's order. A gap is longer than 2.5
/// intervals plus a second: one slow sweep is not a gap.
pub fn gaps(run_dir: &Path, plan: &Value) -> Vec<Gap> {
    let Some(argv) = plan["steps"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|s| s["kind"] == "scrape_metrics")
        .and_then(|s| s["command"].as_array())
    else {
        return Vec::new();
    };
    let arg_after = |i: usize| argv.get(i + 1).and_then(Value::as_str);
    let interval = argv
        .iter()
        .position(|a| a == "--interval")
        .and_then(arg_after)
        .and_then(|v| v.trim_end_matches('s').parse::<f64>().ok())
        .unwrap_or(1.0);
    let targets: Vec<(String, String)> = argv
        .iter()
        .enumerate()
        .filter(|(_, a)| *a == "--target")
        .filter_map(|(i, _)| {
            let mut p = arg_after(i)?.splitn(3, '=');
            Some((p.next()?.to_string(), p.nth(1)?.to_string()))
        })
        .collect();
    let Ok(text) = std::fs::read_to_string(scrape_file(run_dir, plan)) else {
        return Vec::new();
    };
    let mut seen: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    let (mut first, mut last) = (f64::MAX, f64::MIN);
    for v in text
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
    {
        let (Some(url), Some(ns)) = (v["endpoint_url"].as_str(), v["timestamp_ns"].as_f64()) else {
            continue;
        };
        let t = ns / 1e9;
        first = first.min(t);
        last = last.max(t);
        seen.entry(url.to_string()).or_default().push(t);
    }
    let allowed = 2.5 * interval + 1.0;
    targets
        .into_iter()
        .filter_map(|(role, url)| {
            let Some(times) = seen.get(&url) else {
                return Some(Gap {
                    role,
                    url,
                    lines: 0,
                    longest_secs: None,
                });
            };
            let mut edges = vec![first];
            edges.extend(times.iter().copied());
            edges.push(last);
            let longest = edges.windows(2).map(|w| w[1] - w[0]).fold(0.0, f64::max);
            (longest > allowed).then_some(Gap {
                role,
                url,
                lines: times.len(),
                longest_secs: Some(longest),
            })
        })
        .collect()
}

/// The tail of a scrape file read for the live view: enough for the latest sweep of hundreds of
/// endpoints, without reading an hour of samples every refresh.
const TAIL_BYTES: u64 = 4 << 20;

/// Each worker's latest gauges (frontends left out), from the end of the scrape file at `path`.
pub fn latest(path: &Path) -> Vec<(String, BTreeMap<&'static str, f64>)> {
    use std::io::{Read, Seek, SeekFrom};
    let Ok(mut f) = std::fs::File::open(path) else {
        return Vec::new();
    };
    let len = f.metadata().map(|m| m.len()).unwrap_or(0);
    let from = len.saturating_sub(TAIL_BYTES);
    let mut text = String::new();
    if f.seek(SeekFrom::Start(from)).is_err() || f.read_to_string(&mut text).is_err() {
        return Vec::new();
    }
    // A cut first line is not JSON and is skipped.
    let mut out: Vec<(String, BTreeMap<&'static str, f64>)> = Vec::new();
    for v in text
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
    {
        if v["role"] == "frontend" {
            continue;
        }
        let label = format!(
            "{} {}",
            v["role"].as_str().unwrap_or(""),
            v["worker_id"]
                .as_str()
                .unwrap_or(v["endpoint_url"].as_str().unwrap_or(""))
        );
        let g = gauges(v["text"].as_str().unwrap_or(""));
        match out.iter_mut().find(|(l, _)| *l == label) {
            Some(slot) => slot.1 = g,
            None => out.push((label, g)),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::{gaps, gauges};

    #[test]
    fn a_target_that_never_answered_or_went_silent_is_a_gap() {
        let dir = tempfile::tempdir().unwrap();
        let plan = serde_json::json!({"steps": [{"kind": "scrape_metrics", "command": [
            "srt-graph", "scrape-metrics", "--out", "raw_prometheus.jsonl", "--interval", "1s",
            "--target", "decode=n1=http://a/metrics", "--target", "prefill=n0=http://b/metrics",
            "--target", "frontend==http://c/metrics"]}]});
        let line = |url: &str, t: u64| {
            format!(
                "{{\"timestamp_ns\": {}, \"endpoint_url\": \"{url}\", \"text\": \"\"}}\n",
                t * 1_000_000_000
            )
        };
        // a answers every second for 10 s; b only at 0 and 10; c never.
        let mut text = String::new();
        for t in 0..=10 {
            text += &line("http://a/metrics", t);
        }
        text += &line("http://b/metrics", 0);
        text += &line("http://b/metrics", 10);
        std::fs::write(dir.path().join("raw_prometheus.jsonl"), text).unwrap();
        let g = gaps(dir.path(), &plan);
        assert_eq!(g.len(), 2, "{g:?}");
        assert_eq!(
            (g[0].url.as_str(), g[0].longest_secs),
            ("http://b/metrics", Some(10.0))
        );
        assert_eq!((g[1].role.as_str(), g[1].longest_secs), ("frontend", None));
    }

    #[test]
    fn gauges_sum_over_ranks_and_skip_lookalikes() {
        let text = "# HELP sglang:num_running_reqs x\n\
                    sglang:num_running_reqs{model_name=\"m\",dp_rank=\"0\"} 3\n\
                    sglang:num_running_reqs{model_name=\"m\",dp_rank=\"1\"} 4 1700000000\n\
                    sglang:num_running_reqs_total 99\n\
                    sglang:token_usage 0.25\n";
        let g = gauges(text);
        assert_eq!(g["sglang:num_running_reqs"], 7.0);
        assert_eq!(g["sglang:token_usage"], 0.25);
        assert!(!g.contains_key("sglang:num_queue_reqs"));
    }
}
