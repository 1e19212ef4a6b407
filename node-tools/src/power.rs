//! `srt-graph collect-power` and `srt-graph wait-power`: srtctl's DCGM power collector. Every period all
//! exporters are read at once; each GPU's `DCGM_FI_DEV_POWER_USAGE` (labels `gpu`, `UUID`) becomes a
//! row of `samples.csv`, stamped on this node's clock (the benchmark's: it runs here too). The manifest
//! says what is expected and, until then, which GPUs have not reported; once one sweep covers every
//! expected GPU it records `ready_at_unix`, which `wait-power` gates the benchmark on. When stopped it
//! takes a last sweep, marks windows still `running` as `interrupted`, audits every expected window
//! (`srt_graph_results::power::audit`) and writes the terminal manifest. A missing sample is a reason
//! code, never an exit.

use serde_json::{json, Value};
use srt_graph_results::power::{
    self as artifacts, Device, ExpectedWindow, SampleRow, MANIFEST_FILE, SAMPLES_FILE,
    SAMPLES_HEADER, WINDOWS_DIR,
};
use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

pub const POWER_METRIC: &str = "DCGM_FI_DEV_POWER_USAGE";

/// `NODE=URL`.
#[derive(Debug, Clone, PartialEq)]
pub struct Endpoint {
    pub host: String,
    pub url: String,
}

impl Endpoint {
    pub fn parse(s: &str) -> Result<Endpoint, String> {
        match s.split_once('=') {
            Some((host, url)) if !host.is_empty() && url.starts_with("http") => Ok(Endpoint {
                host: host.into(),
                url: url.into(),
            }),
            _ => Err(format!(
                "`{s}` is not NODE=URL (e.g. node1=http://10.0.0.2:9400/metrics)"
            )),
        }
    }
}

pub fn parse_device(s: &str) -> Result<Device, String> {
    let mut p = s.splitn(3, ':');
    match (p.next(), p.next().and_then(|g| g.parse().ok()), p.next()) {
        (Some(h), Some(g), Some(role)) if !h.is_empty() => Ok(Device {
            hostname: h.into(),
            gpu_index: g,
            role: role.into(),
        }),
        _ => Err(format!("`{s}` is not NODE:GPU:ROLE (e.g. node1:0:decode)")),
    }
}

pub fn parse_window(s: &str) -> Result<ExpectedWindow, String> {
    let f: Vec<&str> = s.split(':').collect();
    let n = |i: usize| f.get(i).and_then(|v| v.parse::<u32>().ok());
    match (f.first(), n(1), n(2), n(3), f.len()) {
        (Some(t), Some(isl), Some(osl), Some(c), 4) if !t.is_empty() => Ok(ExpectedWindow {
            benchmark_type: (*t).into(),
            isl,
            osl,
            concurrency: c,
        }),
        _ => Err(format!(
            "`{s}` is not TYPE:ISL:OSL:CONCURRENCY (e.g. sa-bench:1024:1024:64)"
        )),
    }
}

pub struct Config {
    pub dir: PathBuf,
    pub interval: Duration,
    pub request_timeout: Duration,
    pub startup_timeout: Duration,
    pub required: bool,
    pub endpoints: Vec<Endpoint>,
    pub devices: Vec<Device>,
    pub windows: Vec<ExpectedWindow>,
    pub run_name: String,
    pub image: String,
    pub port: u16,
    pub command: String,
}

fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs_f64()
}

/// One exporter body's readings `(gpu, uuid, watts)`, and why any were dropped.
pub fn parse_scrape(text: &str) -> (Vec<(u32, String, f64)>, Vec<&'static str>) {
    let lines = text.lines().map(|l| Ok(l.to_string()));
    let Ok(scrape) = prometheus_parse::Scrape::parse(lines) else {
        return (Vec::new(), vec!["endpoint_parse_error"]);
    };
    let (mut by_gpu, mut reasons) = (BTreeMap::new(), Vec::new());
    let mut duplicated = BTreeSet::new();
    let mut seen = false;
    for s in scrape.samples.iter().filter(|s| s.metric == POWER_METRIC) {
        seen = true;
        if s.labels.get("GPU_I_ID").is_some_and(|v| !v.is_empty()) {
            reasons.push("mig_instance_unsupported");
            continue;
        }
        let Some(gpu) = s.labels.get("gpu").and_then(|g| g.parse::<u32>().ok()) else {
            reasons.push("gpu_index_missing");
            continue;
        };
        let Some(uuid) = s
            .labels
            .get("UUID")
            .map(str::trim)
            .filter(|u| !u.is_empty())
        else {
            reasons.push("gpu_uuid_missing");
            continue;
        };
        let watts = match s.value {
            prometheus_parse::Value::Gauge(v)
            | prometheus_parse::Value::Untyped(v)
            | prometheus_parse::Value::Counter(v) => v,
            _ => f64::NAN,
        };
        if !watts.is_finite() || watts < 0.0 {
            reasons.push("invalid_power_value");
            continue;
        }
        if by_gpu.insert(gpu, (uuid.to_string(), watts)).is_some() {
            duplicated.insert(gpu);
        }
    }
    if !duplicated.is_empty() {
        reasons.push("duplicate_power_metric");
        by_gpu.retain(|g, _| !duplicated.contains(g));
    }
    if !seen {
        reasons.push("power_metric_missing");
    }
    let readings = by_gpu.into_iter().map(|(g, (u, w))| (g, u, w)).collect();
    (readings, reasons)
}

/// What the collector knows, written as `manifest.json`.
struct State {
    cfg_manifest: serde_json::Map<String, Value>,
    status: &'static str,
    ready_at: Option<f64>,
    missing: Vec<String>,
    scrapes: u64,
    rows: u64,
    max_scrape_secs: f64,
    reasons: BTreeMap<String, u64>,
    misses: BTreeMap<String, u64>,
}

impl State {
    fn reason(&mut self, r: &str) {
        *self.reasons.entry(r.to_string()).or_insert(0) += 1;
    }

    fn write(&self, dir: &Path, extra: serde_json::Map<String, Value>) {
        let mut m = self.cfg_manifest.clone();
        m.insert("status".into(), json!(self.status));
        m.insert("ready_at_unix".into(), json!(self.ready_at));
        m.insert("missing_devices".into(), json!(self.missing));
        m.insert("scrape_count".into(), json!(self.scrapes));
        m.insert("sample_row_count".into(), json!(self.rows));
        m.insert(
            "max_scrape_duration_seconds".into(),
            json!(self.max_scrape_secs),
        );
        m.insert(
            "reason_codes".into(),
            json!(self.reasons.keys().collect::<Vec<_>>()),
        );
        m.insert("reason_counts".into(), json!(self.reasons));
        m.insert("endpoint_misses".into(), json!(self.misses));
        m.extend(extra);
        let path = dir.join(MANIFEST_FILE);
        let bytes = serde_json::to_vec_pretty(&Value::Object(m)).unwrap_or_default();
        if let Err(e) = srt_graph_engine::rundir::write_atomic(&path, &bytes) {
            log_line!("collect-power: {}: {e}", path.display());
        }
    }
}

/// `samples.csv` for appending: a resumed collector continues the sequence of the one before it.
fn open_samples(path: &Path) -> Result<(std::fs::File, u64), String> {
    let err = |e: std::io::Error| format!("{}: {e}", path.display());
    let next_seq = artifacts::read_samples(path)
        .map(|(rows, _)| rows.iter().map(|r| r.scrape_seq + 1).max().unwrap_or(0));
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(err)?;
    match next_seq {
        Some(seq) => Ok((f, seq)),
        None => {
            // No file, or not one of ours: start over with the header.
            f.set_len(0).map_err(err)?;
            writeln!(f, "{SAMPLES_HEADER}").map_err(err)?;
            Ok((f, 0))
        }
    }
}

async fn poll(
    http: &reqwest::Client,
    e: &Endpoint,
    seq: u64,
) -> (Vec<SampleRow>, Vec<&'static str>, Option<f64>) {
    let (t0, clock) = (now(), std::time::Instant::now());
    let body = match http.get(&e.url).send().await {
        Ok(r) => match r.error_for_status() {
            Ok(r) => r.text().await.ok(),
            Err(_) => return (Vec::new(), vec!["endpoint_http_error"], None),
        },
        Err(err) if err.is_timeout() => return (Vec::new(), vec!["endpoint_timeout"], None),
        Err(_) => return (Vec::new(), vec!["endpoint_http_error"], None),
    };
    let Some(body) = body else {
        return (Vec::new(), vec!["endpoint_http_error"], None);
    };
    let took = clock.elapsed().as_secs_f64();
    // Stamped mid-request, as srtctl does.
    let t = (t0 + now()) / 2.0;
    let (readings, reasons) = parse_scrape(&body);
    let rows = readings
        .into_iter()
        .map(|(gpu, uuid, w)| SampleRow {
            timestamp_unix: t,
            scrape_seq: seq,
            hostname: e.host.clone(),
            gpu_index: gpu,
            gpu_uuid: uuid,
            power_w: w,
        })
        .collect();
    (rows, reasons, Some(took))
}

/// Samples until SIGTERM/SIGINT, then finalizes; returns the terminal status.
pub async fn collect(cfg: &Config) -> Result<&'static str, String> {
    let dir = &cfg.dir;
    std::fs::create_dir_all(dir.join(WINDOWS_DIR))
        .map_err(|e| format!("{}: {e}", dir.display()))?;
    let (mut samples, mut seq) = open_samples(&dir.join(SAMPLES_FILE))?;
    let mut state = State {
        cfg_manifest: json!({
            "schema_version": artifacts::SCHEMA_VERSION,
            "producer": "srt-graph.dcgm-power",
            "power_metric": POWER_METRIC,
            "power_unit": "W",
            "power_scope": "gpu_device_board_as_reported_by_dcgm",
            "clock_source": "head_node_unix_clock",
            "job_id": std::env::var("SLURM_JOB_ID").unwrap_or_default(),
            "run_name": cfg.run_name,
            "required": cfg.required,
            "sample_interval_seconds": cfg.interval.as_secs_f64(),
            "request_timeout_seconds": cfg.request_timeout.as_secs_f64(),
            "started_at_unix": now(),
            "dcgm_exporter": {"container_image_resolved": cfg.image, "port": cfg.port, "command": cfg.command},
            "endpoints": cfg.endpoints.iter().map(|e| json!({"hostname": e.host, "url": e.url})).collect::<Vec<_>>(),
            "expected_devices": cfg.devices,
            "expected_windows": cfg.windows,
        })
        .as_object()
        .cloned()
        .unwrap_or_default(),
        status: "starting",
        ready_at: None,
        missing: cfg
            .devices
            .iter()
            .map(|d| format!("{}/gpu{}", d.hostname, d.gpu_index))
            .collect(),
        scrapes: 0,
        rows: 0,
        max_scrape_secs: 0.0,
        reasons: BTreeMap::new(),
        misses: BTreeMap::new(),
    };
    state.write(dir, Default::default());
    let expected: BTreeSet<(String, u32)> = cfg
        .devices
        .iter()
        .map(|d| (d.hostname.clone(), d.gpu_index))
        .collect();
    let http = reqwest::Client::builder()
        .timeout(cfg.request_timeout)
        .build()
        .map_err(|e| e.to_string())?;
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .map_err(|e| e.to_string())?;
    log_line!(
        "collect-power: {} exporter(s), {} GPU(s) expected, every {:?}",
        cfg.endpoints.len(),
        cfg.devices.len(),
        cfg.interval
    );
    let started = std::time::Instant::now();
    let mut all_rows: Vec<SampleRow> =
        artifacts::read_samples(&dir.join(SAMPLES_FILE)).map_or_else(Vec::new, |r| r.0);
    let mut next = tokio::time::Instant::now();
    let mut stopping = false;
    loop {
        let polled =
            futures_util::future::join_all(cfg.endpoints.iter().map(|e| poll(&http, e, seq))).await;
        seq += 1;
        state.scrapes += 1;
        let mut seen = BTreeSet::new();
        for (e, (rows, reasons, took)) in cfg.endpoints.iter().zip(polled) {
            if took.is_none() {
                let n = state.misses.entry(e.host.clone()).or_insert(0);
                *n += 1;
                if *n == 1 || n.is_multiple_of(20) {
                    log_line!("collect-power: {} did not answer ({n} so far)", e.url);
                }
            }
            state.max_scrape_secs = state.max_scrape_secs.max(took.unwrap_or(0.0));
            // An exporter still starting is not yet a fault: reasons count from the first complete sweep
            // (or from the startup deadline).
            if state.ready_at.is_some() || started.elapsed() > cfg.startup_timeout {
                reasons.iter().for_each(|r| state.reason(r));
            }
            for r in rows {
                if !expected.contains(&r.device()) {
                    state.reason("unexpected_device");
                }
                seen.insert(r.device());
                let _ = writeln!(samples, "{}", r.to_csv());
                state.rows += 1;
                all_rows.push(r);
            }
        }
        let _ = samples.flush();
        if state.ready_at.is_none() {
            state.missing = expected
                .difference(&seen)
                .map(|(h, g)| format!("{h}/gpu{g}"))
                .collect();
            if state.missing.is_empty() && !expected.is_empty() {
                state.ready_at = Some(now());
                log_line!(
                    "collect-power: ready — one sweep covered all {} GPU(s)",
                    expected.len()
                );
            } else if started.elapsed() > cfg.startup_timeout
                && !state.reasons.contains_key("exporter_startup_timeout")
            {
                state.reason("exporter_startup_timeout");
                log_line!(
                    "collect-power: no complete sweep within {:?}; not reporting: {}",
                    cfg.startup_timeout,
                    state.missing.join(", ")
                );
            }
            state.status = "running";
            state.write(dir, Default::default());
        } else if state.scrapes.is_multiple_of(30) {
            state.write(dir, Default::default());
        }
        if stopping {
            break;
        }
        next += cfg.interval;
        tokio::select! {
            _ = tokio::time::sleep_until(next) => {}
            _ = term.recv() => stopping = true,
            _ = tokio::signal::ctrl_c() => stopping = true,
        }
        next = next.max(tokio::time::Instant::now());
    }
    Ok(finalize(cfg, &mut state, &all_rows))
}

/// The last word: windows left `running` were interrupted (the benchmark is over by teardown); every
/// expected window is audited; the status is `complete` only when every one is covered.
fn finalize(cfg: &Config, state: &mut State, rows: &[SampleRow]) -> &'static str {
    let dir = &cfg.dir;
    for (name, mut w) in artifacts::read_windows(dir) {
        if w.status == "running" {
            w.status = "interrupted".into();
            w.reason = Some("collector_stopped_while_running".into());
            let path = dir.join(WINDOWS_DIR).join(&name);
            let bytes = serde_json::to_vec_pretty(&w).unwrap_or_default();
            let _ = srt_graph_engine::rundir::write_atomic(&path, &bytes);
        }
    }
    let windows = artifacts::read_windows(dir);
    let validations = artifacts::audit(&cfg.windows, &cfg.devices, &windows, rows);
    let covered = validations
        .iter()
        .filter(|v| v.power_coverage_valid)
        .count();
    let valid = rows.iter().any(|_| true) && covered == validations.len();
    state.status = if state.rows == 0 {
        "failed"
    } else if valid {
        "complete"
    } else {
        "incomplete"
    };
    let mut observed: BTreeMap<(String, u32), (BTreeSet<String>, f64, f64)> = BTreeMap::new();
    for r in rows {
        let e = observed
            .entry(r.device())
            .or_insert((BTreeSet::new(), f64::MAX, f64::MIN));
        e.0.insert(r.gpu_uuid.clone());
        e.1 = e.1.min(r.timestamp_unix);
        e.2 = e.2.max(r.timestamp_unix);
    }
    let observed: Vec<Value> = observed
        .into_iter()
        .map(|((h, g), (u, a, b))| {
            json!({"hostname": h, "gpu_index": g, "gpu_uuids": u,
            "first_sample_time_unix": a, "last_sample_time_unix": b})
        })
        .collect();
    let mut extra = serde_json::Map::new();
    extra.insert("stopped_at_unix".into(), json!(now()));
    extra.insert(
        "publication_valid".into(),
        json!(state.status == "complete"),
    );
    extra.insert("observed_devices".into(), json!(observed));
    extra.insert("window_validations".into(), json!(validations));
    state.write(dir, extra);
    log_line!(
        "collect-power: {} — {} sample(s) in {} sweep(s), {covered} of {} window(s) covered{}",
        state.status,
        state.rows,
        state.scrapes,
        validations.len(),
        if state.reasons.is_empty() {
            String::new()
        } else {
            format!(
                "; reasons: {}",
                state.reasons.keys().cloned().collect::<Vec<_>>().join(", ")
            )
        }
    );
    state.status
}

/// Waits until the collector's manifest records a complete sweep. Past `timeout` a `required` run fails
/// with the GPUs that never reported; otherwise the log says the power figures will be missing.
pub async fn wait_ready(dir: &Path, timeout: Duration, required: bool) -> Result<(), String> {
    let deadline = tokio::time::Instant::now() + timeout;
    let path = dir.join(MANIFEST_FILE);
    let mut last = Value::Null;
    loop {
        if let Some(m) = std::fs::read_to_string(&path)
            .ok()
            .and_then(|t| serde_json::from_str::<Value>(&t).ok())
        {
            if m["ready_at_unix"].is_number() {
                log_line!("power telemetry ready: every expected GPU reported in one sweep");
                return Ok(());
            }
            last = m;
        }
        if tokio::time::Instant::now() >= deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let missing: Vec<&str> = last["missing_devices"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let why = format!(
        "no complete power sweep within {:?} (telemetry.startup_timeout_seconds); not reporting: {}",
        timeout,
        if missing.is_empty() {
            "no manifest from the collector".to_string()
        } else {
            missing.join(", ")
        }
    );
    if required {
        Err(format!(
            "telemetry.required: {why}; the benchmark is not run"
        ))
    } else {
        log_line!("warning: {why}; the benchmark runs without complete power figures");
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DCGM: &str = "# HELP DCGM_FI_DEV_POWER_USAGE Power draw (in W).\n# TYPE DCGM_FI_DEV_POWER_USAGE gauge\nDCGM_FI_DEV_POWER_USAGE{gpu=\"0\",UUID=\"GPU-a\",device=\"nvidia0\",modelName=\"NVIDIA GB300\",Hostname=\"n0\"} 612.5\nDCGM_FI_DEV_POWER_USAGE{gpu=\"1\",UUID=\"GPU-b\",device=\"nvidia1\"} 598\nDCGM_FI_DEV_GPU_TEMP{gpu=\"0\",UUID=\"GPU-a\"} 51\n";

    #[test]
    fn dcgm_text_gives_one_reading_per_gpu() {
        let (r, reasons) = parse_scrape(DCGM);
        assert_eq!(
            r,
            vec![(0, "GPU-a".into(), 612.5), (1, "GPU-b".into(), 598.0)]
        );
        assert!(reasons.is_empty(), "{reasons:?}");
    }

    #[test]
    fn bad_readings_are_dropped_with_their_reason() {
        let text = "DCGM_FI_DEV_POWER_USAGE{gpu=\"0\"} 1\nDCGM_FI_DEV_POWER_USAGE{gpu=\"1\",UUID=\"u\"} -3\nDCGM_FI_DEV_POWER_USAGE{gpu=\"2\",UUID=\"u\"} 5\nDCGM_FI_DEV_POWER_USAGE{gpu=\"2\",UUID=\"u\"} 6\n";
        let (r, reasons) = parse_scrape(text);
        assert!(r.is_empty(), "{r:?}");
        assert_eq!(
            reasons,
            [
                "gpu_uuid_missing",
                "invalid_power_value",
                "duplicate_power_metric"
            ]
        );
        assert_eq!(parse_scrape("up 1\n").1, ["power_metric_missing"]);
    }

    #[test]
    fn arguments_parse_and_bad_ones_say_the_shape() {
        assert_eq!(
            parse_window("sa-bench:1024:256:64").unwrap().concurrency,
            64
        );
        assert!(parse_window("sa-bench:64")
            .unwrap_err()
            .contains("TYPE:ISL:OSL"));
        assert_eq!(parse_device("n1:3:decode").unwrap().gpu_index, 3);
        assert!(Endpoint::parse("n1:http://x").is_err());
    }
}
