//! `srt-graph scrape-metrics`: reads every target's `/metrics` each interval and appends the body,
//! unparsed, as one JSON line per target and sweep — srtctl's `raw_prometheus.jsonl` shape
//! (`timestamp_ns`, `endpoint_url`, `role`, `worker_id`, `text`) — plus one host sample of this node
//! per sweep (CPU busy, memory, open files, load). Best effort by design: a target that does not answer
//! is a missing line and a message in the step's log, never an exit; only SIGTERM/SIGINT end it.

use serde_json::json;
use std::io::Write;
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// One endpoint to read.
#[derive(Debug, Clone, PartialEq)]
pub struct Target {
    pub role: String,
    pub worker_id: Option<String>,
    pub url: String,
}

impl Target {
    /// `ROLE=WORKER=URL` (WORKER empty for a frontend).
    pub fn parse(s: &str) -> Result<Target, String> {
        let mut parts = s.splitn(3, '=');
        match (parts.next(), parts.next(), parts.next()) {
            (Some(role), Some(worker), Some(url))
                if !role.is_empty() && url.starts_with("http") =>
            {
                Ok(Target {
                    role: role.into(),
                    worker_id: (!worker.is_empty()).then(|| worker.to_string()),
                    url: url.into(),
                })
            }
            _ => Err(format!(
                "`{s}` is not ROLE=WORKER=URL (e.g. decode=node1=http://10.0.0.2:30000/metrics)"
            )),
        }
    }
}

/// Log a target's failure on its first and every 20th in a row: a worker that died does not flood the log.
const WARN_EVERY: u64 = 20;

fn now_ns() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos()
}

/// (busy, total) jiffies of all CPUs, from /proc/stat.
fn cpu_jiffies() -> Option<(u64, u64)> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let line = stat.lines().next()?.strip_prefix("cpu ")?;
    let v: Vec<u64> = line
        .split_whitespace()
        .filter_map(|x| x.parse().ok())
        .collect();
    let total: u64 = v.iter().sum();
    // idle + iowait are not busy.
    let idle = v.get(3).copied().unwrap_or(0) + v.get(4).copied().unwrap_or(0);
    Some((total - idle, total))
}

fn meminfo(key: &str) -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    text.lines()
        .find_map(|l| {
            l.strip_prefix(key)?
                .trim()
                .strip_suffix("kB")?
                .trim()
                .parse::<u64>()
                .ok()
        })
        .map(|kb| kb * 1024)
}

fn first_number(path: &str) -> Option<f64> {
    std::fs::read_to_string(path)
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// Reads the targets every `interval` until a signal; returns (sweeps, lines written).
pub async fn run(
    out: Option<&Path>,
    host_out: &Path,
    interval: Duration,
    targets: &[Target],
) -> Result<(u64, u64), String> {
    let open = |p: &Path| {
        if let Some(parent) = p.parent() {
            let _ = std::fs::create_dir_all(parent);
        }
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(p)
            .map_err(|e| format!("{}: {e}", p.display()))
    };
    // A node with nothing to scrape still samples its host (`--out` only with targets).
    let mut raw = match out {
        Some(p) => Some(std::io::BufWriter::new(open(p)?)),
        None if targets.is_empty() => None,
        None => return Err("--out is needed to hold what the targets answer".into()),
    };
    let mut hosts = std::io::BufWriter::new(open(host_out)?);
    let host = nix::unistd::gethostname()
        .map(|h| h.to_string_lossy().into_owned())
        .unwrap_or_default();
    let http = reqwest::Client::builder()
        .timeout(interval.min(Duration::from_secs(5)))
        .build()
        .map_err(|e| e.to_string())?;
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .map_err(|e| e.to_string())?;
    let mut failures = vec![0u64; targets.len()];
    let (mut sweeps, mut lines) = (0u64, 0u64);
    let mut last_cpu = cpu_jiffies();
    log_line!(
        "scrape-metrics: {} target(s) every {:?}",
        targets.len(),
        interval
    );
    for t in targets {
        log_line!("  {:<9} {}", t.role, t.url);
    }
    let mut next = tokio::time::Instant::now();
    loop {
        let fetched = futures_util::future::join_all(targets.iter().map(|t| {
            let http = http.clone();
            async move {
                let resp = http
                    .get(&t.url)
                    .send()
                    .await
                    .and_then(reqwest::Response::error_for_status);
                match resp {
                    Ok(r) => r.text().await.map_err(|e| e.to_string()),
                    Err(e) => Err(e.to_string()),
                }
            }
        }))
        .await;
        for ((t, result), fails) in targets.iter().zip(fetched).zip(failures.iter_mut()) {
            match result {
                Ok(text) => {
                    *fails = 0;
                    let line = json!({"timestamp_ns": now_ns() as u64, "endpoint_url": t.url, "role": t.role,
                        "worker_id": t.worker_id, "text": text});
                    if let Some(raw) = raw.as_mut() {
                        let _ = writeln!(raw, "{line}");
                        lines += 1;
                    }
                }
                Err(e) => {
                    *fails += 1;
                    if *fails == 1 || fails.is_multiple_of(WARN_EVERY) {
                        log_line!(
                            "scrape-metrics: {} ({}) did not answer ({} in a row): {e}",
                            t.url,
                            t.role,
                            fails
                        );
                    }
                }
            }
        }
        let cpu = cpu_jiffies();
        let busy = match (last_cpu, cpu) {
            (Some((b0, t0)), Some((b1, t1))) if t1 > t0 => {
                Some((b1 - b0) as f64 / (t1 - t0) as f64)
            }
            _ => None,
        };
        last_cpu = cpu;
        let sample = json!({"timestamp_ns": now_ns() as u64, "host": host, "cpu_busy": busy,
            "mem_total_bytes": meminfo("MemTotal:"), "mem_available_bytes": meminfo("MemAvailable:"),
            "open_files": first_number("/proc/sys/fs/file-nr"), "load1": first_number("/proc/loadavg")});
        let _ = writeln!(hosts, "{sample}");
        // Flushed per sweep: the files can be read while the run goes on.
        if let Some(raw) = raw.as_mut() {
            let _ = raw.flush();
        }
        let _ = hosts.flush();
        sweeps += 1;
        next += interval;
        tokio::select! {
            _ = tokio::time::sleep_until(next) => {}
            _ = term.recv() => break,
            _ = tokio::signal::ctrl_c() => break,
        }
        // A sweep slower than the interval runs the next at once instead of queueing.
        next = next.max(tokio::time::Instant::now());
    }
    if let Some(raw) = raw.as_mut() {
        let _ = raw.flush();
    }
    let _ = hosts.flush();
    log_line!(
        "scrape-metrics: stopped after {sweeps} sweep(s), {lines} line(s) to {}",
        out.map_or_else(|| host_out.display(), Path::display)
    );
    Ok((sweeps, lines))
}

#[cfg(test)]
mod tests {
    use super::Target;

    #[test]
    fn targets_parse_and_bad_ones_say_the_shape() {
        let t = Target::parse("decode=node1=http://10.0.0.2:30000/metrics").unwrap();
        assert_eq!(t.worker_id.as_deref(), Some("node1"));
        assert_eq!(t.url, "http://10.0.0.2:30000/metrics");
        let f = Target::parse("frontend==http://a:29000/metrics").unwrap();
        assert_eq!(f.worker_id, None);
        assert!(Target::parse("decode:http://x")
            .unwrap_err()
            .contains("ROLE=WORKER=URL"));
    }
}
