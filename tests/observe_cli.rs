//! What a run shows of itself while it runs: every `/metrics` endpoint of the deployment scraped into
//! `raw_prometheus.jsonl` (srtctl's shape) with host samples, the mock worker's SGLang metrics driven by
//! its load, `observability:` honoured, and a scrape target that never answers costing lines, not the run.

mod common;

use common::{loopback, path_env};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_srt-graph")
}

fn lines(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect()
}

/// `srt-graph run ARGS --mock-workers` in `dir` under the fixed timing, node 0 at `first`.
fn run_mock(dir: &Path, args: &[&str], first: &str, run_dir: &Path) -> std::process::Output {
    Command::new(bin())
        .current_dir(dir)
        .arg("run")
        .args(args)
        .args([
            "--mock-workers",
            "-q",
            "--first-address",
            first,
            "--run-dir",
        ])
        .arg(run_dir)
        .env("PATH", path_env())
        .env("SRT_GRAPH_TIMING", "fixed")
        .env_remove("SLURM_JOB_ID")
        .env_remove("SRTSLURM_CONFIG")
        .output()
        .expect("run")
}

/// The value of `name` (first sample) in a Prometheus exposition text.
fn sample(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .find(|l| {
            !l.starts_with('#') && l.starts_with(name) && l[name.len()..].starts_with(['{', ' '])
        })
        .and_then(|l| l.split_whitespace().last())
        .and_then(|v| v.parse().ok())
}

#[test]
fn a_run_scrapes_every_worker_and_router_while_it_serves() {
    let dir = tempfile::tempdir().expect("tmp");
    let run_dir = dir.path().join("run");
    let out = run_mock(dir.path(), &[], &loopback::first(0), &run_dir);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let raw = lines(&run_dir.join("raw_prometheus.jsonl"));
    let mut by_url: BTreeMap<String, Vec<&Value>> = BTreeMap::new();
    for l in &raw {
        for key in ["timestamp_ns", "endpoint_url", "role", "worker_id", "text"] {
            assert!(l.get(key).is_some(), "srtctl's key `{key}`: {l}");
        }
        by_url
            .entry(l["endpoint_url"].as_str().unwrap_or("").to_string())
            .or_default()
            .push(l);
    }
    // 2 prefill + 2 decode workers and 4 routers, each scraped more than once.
    assert_eq!(by_url.len(), 8, "{:?}", by_url.keys().collect::<Vec<_>>());
    let roles: Vec<&str> = by_url
        .values()
        .map(|v| v[0]["role"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(
        roles.iter().filter(|r| **r == "frontend").count(),
        4,
        "{roles:?}"
    );
    assert_eq!(
        roles.iter().filter(|r| **r == "decode").count(),
        2,
        "{roles:?}"
    );
    for (url, ls) in &by_url {
        assert!(ls.len() >= 2, "{url}: {} scrape(s)", ls.len());
    }
    // The decode workers' metrics follow the load: requests ran on them, tokens only grew.
    for (url, ls) in by_url.iter().filter(|(_, v)| v[0]["role"] == "decode") {
        assert!(ls[0]["worker_id"].is_string(), "{url}");
        let texts: Vec<&str> = ls.iter().filter_map(|l| l["text"].as_str()).collect();
        let running = texts
            .iter()
            .filter_map(|t| sample(t, "sglang:num_running_reqs"))
            .fold(0.0, f64::max);
        assert!(
            running >= 1.0,
            "{url}: sglang:num_running_reqs never above 0"
        );
        let tokens: Vec<f64> = texts
            .iter()
            .filter_map(|t| sample(t, "sglang:generation_tokens_total"))
            .collect();
        assert!(
            tokens.windows(2).all(|w| w[0] <= w[1]),
            "{url}: a counter went down: {tokens:?}"
        );
        assert!(tokens.last().copied().unwrap_or(0.0) > 0.0, "{url}");
        let last = texts.last().copied().unwrap_or("");
        assert!(
            last.contains("sglang:time_to_first_token_seconds_bucket"),
            "{url}"
        );
    }
    // The report charts them over the run, labelled simulated; the monitor shows the latest.
    let charts = run_dir.join("report-charts");
    let requests = std::fs::read_to_string(charts.join("requests.svg")).expect("requests chart");
    assert!(
        requests.contains("Running and queued requests per worker (SIMULATED workers)"),
        "title"
    );
    assert!(
        requests.contains("decode node2") && requests.contains("c64"),
        "workers and the shaded points"
    );
    for chart in ["kv-usage.svg", "gen-throughput.svg"] {
        assert!(charts.join(chart).is_file(), "{chart}");
    }
    let html = std::fs::read_to_string(run_dir.join("report.html")).expect("report");
    assert!(
        html.contains("Running and queued requests per worker"),
        "the page holds the chart"
    );
    let mon = Command::new(bin())
        .args(["monitor", "--once"])
        .arg(&run_dir)
        .output()
        .expect("monitor");
    let shown = String::from_utf8_lossy(&mon.stdout);
    assert!(
        shown
            .lines()
            .any(|l| l.trim_start().starts_with("decode node") && l.contains("running")),
        "{shown}"
    );
    // Every node of the run samples its own host, each into its own file, charted and tabled.
    let plan: serde_json::Value =
        serde_json::from_slice(&std::fs::read(run_dir.join("plan.json")).expect("plan"))
            .expect("plan json");
    let names: Vec<&str> = plan["nodes"]
        .as_array()
        .expect("nodes")
        .iter()
        .filter_map(|n| n.as_str().or_else(|| n["name"].as_str()))
        .collect();
    assert!(names.len() >= 4, "{names:?}");
    for name in &names {
        let hosts = lines(&run_dir.join("host_samples").join(format!("{name}.jsonl")));
        assert!(!hosts.is_empty(), "{name}: no host samples");
        assert!(
            hosts[0]["mem_total_bytes"].as_u64().unwrap_or(0) > 0,
            "{}",
            hosts[0]
        );
        assert!(
            html.contains(&format!("data-host=\"{name}\"")),
            "{name} in the hosts table"
        );
        assert!(
            shown.contains(&format!("host {name}: CPU")),
            "{name} in the monitor: {shown}"
        );
    }
    // The time breakdown: workers healthy by their ready lines, and the critical path.
    let status = Command::new(bin())
        .arg("status")
        .arg(&run_dir)
        .output()
        .expect("status");
    let said = String::from_utf8_lossy(&status.stdout);
    assert!(
        said.contains("workers start → healthy ×4") && !said.contains("printed a ready line"),
        "{said}"
    );
    assert!(
        said.contains("critical path (") && said.contains("% "),
        "{said}"
    );
    assert!(html.contains("data-breakdown"), "the report's breakdown");
    let cpu = std::fs::read_to_string(charts.join("host-cpu.svg")).expect("host CPU chart");
    assert!(cpu.contains("CPU busy per node"), "title");
    let fronts =
        std::fs::read_to_string(charts.join("frontend-requests.svg")).expect("the routers' chart");
    assert!(
        fronts.contains("Requests in flight per router or frontend (SIMULATED workers)")
            && fronts.contains(":29000 in flight"),
        "each router's in-flight line"
    );
    common::assert_no_survivors(&run_dir);
}

#[test]
fn observability_turns_the_scrape_off_and_sets_its_interval() {
    let dir = tempfile::tempdir().expect("tmp");
    let base = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("recipes/local-demo.yaml"),
    )
    .expect("demo");
    let plan = |extra: &str| {
        std::fs::write(dir.path().join("r.yaml"), format!("{base}\n{extra}\n")).expect("write");
        plan_json(dir.path(), &[])
    };
    let scrape = |v: &Value| {
        v["steps"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|s| s["kind"] == "scrape_metrics")
            .cloned()
    };
    let on = scrape(&plan("")).expect("scraped by default");
    let argv: Vec<String> = on["command"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|a| a.as_str().map(String::from))
        .collect();
    assert!(
        argv.windows(2)
            .any(|w| w[0] == "--interval" && w[1] == "1s"),
        "{argv:?}"
    );
    assert_eq!(
        argv.iter().filter(|a| *a == "--target").count(),
        8,
        "{argv:?}"
    );
    assert_eq!(on["depends_on"], serde_json::json!(["wait-healthy"]));
    let slow = scrape(&plan(
        "observability: {scrape_interval_seconds: 2.5, scrape_output: metrics.jsonl}",
    ))
    .expect("on");
    let argv = on_argv(&slow);
    assert!(
        argv.windows(2)
            .any(|w| w[0] == "--interval" && w[1] == "2.5s"),
        "{argv:?}"
    );
    assert!(
        argv.iter().any(|a| a.ends_with("/metrics.jsonl")),
        "{argv:?}"
    );
    assert!(scrape(&plan("observability: {scrape_metrics: false}")).is_none());
    assert!(scrape(&plan("observability: {enabled: false}")).is_none());
    let v = plan("observability: {enabled: true, enable_otel: true}");
    assert!(scrape(&v).is_some());
    let ignored = v["ignored"].to_string();
    assert!(ignored.contains("observability.enable_otel"), "{ignored}");
}

/// `plan r.yaml --json EXTRA…` in `dir`.
fn plan_json(dir: &Path, extra: &[&str]) -> Value {
    let out = Command::new(bin())
        .current_dir(dir)
        .args(["plan", "r.yaml", "--json"])
        .args(extra)
        .output()
        .expect("plan");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("json")
}

fn on_argv(step: &Value) -> Vec<String> {
    step["command"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|a| a.as_str().map(String::from))
        .collect()
}

#[test]
fn a_target_that_never_answers_costs_lines_not_the_scraper() {
    let dir = tempfile::tempdir().expect("tmp");
    let out = dir.path().join("raw.jsonl");
    let hosts = dir.path().join("hosts.jsonl");
    // Nothing listens on port 9 of this binary's block.
    let dead = format!("http://{}:9/metrics", loopback::first(1));
    let mut child = Command::new(bin())
        .args(["scrape-metrics", "--interval", "500ms", "--out"])
        .arg(&out)
        .arg("--host-out")
        .arg(&hosts)
        .args(["--target", &format!("decode=node9={dead}")])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("scrape-metrics");
    std::thread::sleep(Duration::from_millis(1800));
    assert!(
        child.try_wait().expect("wait").is_none(),
        "the scraper gave up"
    );
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).expect("term");
    let done = child.wait_with_output().expect("output");
    assert!(
        done.status.success(),
        "SIGTERM ends it cleanly: {:?}",
        done.status
    );
    let said = String::from_utf8_lossy(&done.stderr);
    assert!(
        said.contains(&dead) && said.contains("did not answer"),
        "{said}"
    );
    assert_eq!(
        std::fs::read_to_string(&out).expect("raw"),
        "",
        "no line for a target that never answered"
    );
    assert!(lines(&hosts).len() >= 2, "host samples go on");
    assert!(said.contains("stopped after"), "{said}");
}

#[test]
fn identity_is_checked_before_the_benchmark_and_names_each_difference() {
    let dir = tempfile::tempdir().expect("tmp");
    let recipe = "name: id\nmodel: {path: /models/m, container: /images/x.sqsh}\n\
        resources: {gpu_type: h100, gpus_per_node: 8, agg_nodes: 1, agg_workers: 1}\n\
        backend: {type: sglang}\nbenchmark: {type: sa-bench, isl: 8, osl: 8, concurrencies: \"1\"}\n\
        identity: {model: {repo: org/m, revision: abc1234}, container: {image: /images/x.sqsh}, frameworks: {sglang: \"0.5.9\"}}\n";
    std::fs::write(dir.path().join("r.yaml"), recipe).expect("write");
    let plan = |extra: &[&str]| plan_json(dir.path(), extra);
    let real = plan(&[]);
    let steps = real["steps"].as_array().expect("steps");
    let check = steps
        .iter()
        .find(|s| s["kind"] == "check_identity")
        .expect("a check_identity step");
    assert!(check["depends_on"]
        .as_array()
        .expect("deps")
        .iter()
        .any(|d| d == "wait-healthy"));
    assert!(check["depends_on"]
        .as_array()
        .expect("deps")
        .iter()
        .any(|d| d == "fingerprint/node0"));
    let first_point = steps
        .iter()
        .find(|s| s["kind"] == "run_benchmark")
        .expect("benchmark");
    assert!(
        first_point["depends_on"]
            .as_array()
            .expect("deps")
            .iter()
            .any(|d| d == "check-identity"),
        "{first_point}"
    );
    let mock = plan(&["--mock-workers"]);
    assert!(mock["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .all(|s| s["kind"] != "check_identity"));
    assert!(mock["notes"]
        .to_string()
        .contains("identity: not checked in a simulated run"));

    // The step's command on fingerprints: one that matches, one that does not.
    let fp = dir.path().join("node0.json");
    let write = |frameworks: &str, rev: &str| {
        std::fs::write(
            &fp,
            format!("{{\"node\":\"node0\",\"model\":{{\"path\":\"/model\",\"hf_revision\":\"{rev}\",\"hf_repo\":\"org/m\"}},\"container\":{{\"image\":\"/images/x.sqsh\"}},\"frameworks\":{frameworks}}}"),
        )
        .expect("fingerprint");
    };
    let argv: Vec<String> = check["command"]
        .as_array()
        .expect("argv")
        .iter()
        .skip(1)
        .filter_map(|a| a.as_str().map(String::from))
        .collect();
    let argv: Vec<String> = argv
        .into_iter()
        .map(|a| {
            if a.ends_with("fingerprints/node0.json") {
                fp.display().to_string()
            } else {
                a
            }
        })
        .collect();
    write("{\"sglang\":\"0.5.9\"}", "abc1234def");
    let ok = Command::new(bin())
        .args(&argv)
        .output()
        .expect("check-identity");
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    write("{\"sglang\":\"0.5.8\"}", "fff0000");
    let bad = Command::new(bin())
        .args(&argv)
        .output()
        .expect("check-identity");
    assert_eq!(bad.status.code(), Some(1));
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(
        err.contains("identity.frameworks.sglang: declared `0.5.9`, node0 runs `0.5.8`"),
        "{err}"
    );
    assert!(
        err.contains("identity.model.revision: declared `abc1234`, node0 has `fff0000`"),
        "{err}"
    );
}

const PROFILED: &str = r#"name: profiled
model: {path: mock-model, container: none, precision: bf16}
resources: {gpu_type: gb300, gpus_per_node: 4, prefill_nodes: 1, prefill_workers: 1, decode_nodes: 1, decode_workers: 1}
frontend: {type: sglang, enable_multiple_frontends: false}
backend:
  type: sglang
  prefill_environment: {SRT_MOCK_LOAD_TIME: "0.2"}
  decode_environment: {SRT_MOCK_LOAD_TIME: "0.2"}
  sglang_config:
    prefill: {served-model-name: test-model, tensor-parallel-size: 4, disaggregation-mode: prefill}
    decode: {served-model-name: test-model, tensor-parallel-size: 4, disaggregation-mode: decode}
health_check: {max_attempts: 60, interval_seconds: 1}
benchmark: {type: sa-bench, isl: 64, osl: 8, concurrencies: "2x8", req_rate: inf}
profiling:
  type: @TYPE@
  prefill: {start_step: 2, stop_step: 12}
  decode: {start_step: 5, stop_step: 30}
"#;

/// srtctl's torch profiling on the mock: the window opens before the first point and closes after the
/// last; each worker writes a Chrome trace of the steps in its role's window; the report links them.
#[test]
fn torch_profiling_traces_each_workers_window_and_the_report_links_the_files() {
    let dir = tempfile::tempdir().expect("tmp");
    std::fs::write(
        dir.path().join("r.yaml"),
        PROFILED.replace("@TYPE@", "torch"),
    )
    .expect("write");
    let run_dir = dir.path().join("run");
    let out = run_mock(dir.path(), &["r.yaml"], &loopback::first(2), &run_dir);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for (role, from, until) in [("prefill", 2, 12), ("decode", 5, 30)] {
        let files: Vec<_> = std::fs::read_dir(run_dir.join("profiles").join(role))
            .expect("profile dir")
            .flatten()
            .collect();
        assert_eq!(files.len(), 1, "{role}");
        let trace: Value =
            serde_json::from_slice(&std::fs::read(files[0].path()).expect("trace")).expect("json");
        assert_eq!(trace["otherData"]["simulated"], true);
        let steps: Vec<u64> = trace["traceEvents"]
            .as_array()
            .expect("events")
            .iter()
            .filter_map(|e| e["args"]["step"].as_u64())
            .collect();
        // The fixed timing's steps are requests: 10 + 40 measured plus the warm-up's 20.
        assert!(!steps.is_empty(), "{role}: {trace}");
        assert!(
            steps.iter().all(|s| (from..until).contains(s)),
            "{role}: {steps:?}"
        );
        assert_eq!(steps[0], from, "{role}");
    }
    let start = std::fs::read_to_string(run_dir.join("logs/profile-start.log")).expect("log");
    assert!(
        start.contains("2 of 2 worker(s) accepted `/start_profile`"),
        "{start}"
    );
    let report = std::fs::read_to_string(run_dir.join("report.html")).expect("report");
    assert!(
        report.contains("<h3>Profiles: run</h3>") && report.contains("data-simulated"),
        "{report}"
    );
    assert!(
        report.contains("href=\"profiles/decode/decode_"),
        "{report}"
    );
    common::assert_no_survivors(&run_dir);
}

/// nsys wraps real engines (and a missing nsys stops the run before anything starts); the window and
/// its fields are checked against the benchmark.
#[test]
fn nsys_wraps_real_workers_and_bad_profiling_windows_name_the_field() {
    let dir = tempfile::tempdir().expect("tmp");
    std::fs::write(
        dir.path().join("r.yaml"),
        PROFILED.replace("@TYPE@", "nsys"),
    )
    .expect("write");
    let plan = plan_json(dir.path(), &[]);
    let workers: Vec<&Value> = plan["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .filter(|s| s["kind"] == "start_worker")
        .collect();
    for w in &workers {
        let argv = on_argv(w);
        assert_eq!(argv[..2], ["nsys", "profile"], "{argv:?}");
        let o = argv.iter().position(|a| a == "-o").expect("-o");
        assert!(argv[o + 1].contains("/profiles/"), "{argv:?}");
        assert!(argv.contains(&"cudaProfilerApi".to_string()), "{argv:?}");
    }
    // Simulated workers are not wrapped; the window still reaches them.
    let sim = plan_json(dir.path(), &["--mock-workers"]);
    let ids: Vec<&str> = sim["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .filter_map(|s| s["id"].as_str())
        .collect();
    assert!(
        ids.contains(&"profile-start") && ids.contains(&"profile-stop"),
        "{ids:?}"
    );

    // Without nsys here, the run stops before anything starts, saying how to get it.
    let out = Command::new(bin())
        .current_dir(dir.path())
        .args([
            "run",
            "r.yaml",
            "-q",
            "--first-address",
            &loopback::first(3),
        ])
        .env("PATH", path_env())
        .env_remove("SLURM_JOB_ID")
        .env_remove("SRTSLURM_CONFIG")
        .output()
        .expect("run");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("`nsys`") && stderr.contains("nsight-systems"),
        "{stderr}"
    );

    for (bad, field, message) in [
        (
            "profiling: {type: torch, decode: {start_step: 100000, stop_step: 100050}}",
            "profiling.decode.start_step",
            "past the benchmark's end",
        ),
        (
            "profiling: {type: nsys-time, delay_secs: 280, duration_secs: 60}",
            "profiling.duration_secs",
            "ends past the benchmark's traffic",
        ),
        (
            "profiling: {type: torch, prefill: {start_step: 9, stop_step: 3}}",
            "profiling.prefill.stop_step",
            "before it starts",
        ),
        (
            "profiling: {type: perf}",
            "profiling.type",
            "valid: none, torch, nsys, nsys-time",
        ),
    ] {
        let text = PROFILED
            .split("profiling:")
            .next()
            .unwrap_or_default()
            .to_string()
            + bad
            + "\n";
        std::fs::write(dir.path().join("bad.yaml"), text).expect("write");
        let out = Command::new(bin())
            .current_dir(dir.path())
            .args(["plan", "bad.yaml"])
            .output()
            .expect("plan");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{bad}");
        assert!(
            stderr.contains(field) && stderr.contains(message),
            "{bad}:\n{stderr}"
        );
    }
}

const POWERED: &str = r#"name: powered
model: {path: mock-model, container: none, precision: bf16}
resources: {gpu_type: gb300, gpus_per_node: 4, prefill_nodes: 1, prefill_workers: 1, decode_nodes: 1, decode_workers: 1}
frontend: {type: sglang, enable_multiple_frontends: false}
backend:
  type: sglang
  sglang_config:
    prefill: {served-model-name: test-model, tensor-parallel-size: 4, disaggregation-mode: prefill}
    decode: {served-model-name: test-model, tensor-parallel-size: 4, disaggregation-mode: decode}
health_check: {max_attempts: 60, interval_seconds: 1}
benchmark: {type: sa-bench, isl: 64, osl: 32, concurrencies: "2x8", req_rate: inf}
telemetry:
  enabled: true
  required: @REQUIRED@
  startup_timeout_seconds: 5
  dcgm_exporter:
    container_image: nvcr.io/nvidia/k8s/dcgm-exporter:4.2.3-4.1.1-ubuntu22.04
    port: 9400
    command: "python3 @FAKE@ --address {host}:{port} --gpus @GPUS@"
"#;

fn powered(required: bool, gpus: u32) -> String {
    let fake = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/fake_dcgm_exporter.py"
    );
    POWERED
        .replace("@REQUIRED@", &required.to_string())
        .replace("@FAKE@", fake)
        .replace("@GPUS@", &gpus.to_string())
}

/// A directory with a stand-in `nvidia-smi` (the driver's tool `required: true` looks for), for PATH.
fn fake_driver(dir: &Path) -> String {
    use std::os::unix::fs::PermissionsExt;
    let bin = dir.join("driver");
    std::fs::create_dir_all(&bin).expect("mkdir");
    let smi = bin.join("nvidia-smi");
    std::fs::write(&smi, "#!/bin/sh\necho 'fake driver'\n").expect("write");
    std::fs::set_permissions(&smi, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    format!("{}:{}", bin.display(), path_env())
}

/// `run r.yaml --mock-workers` in `dir` with a stand-in driver on PATH, node 0 at `first`.
fn run_with_driver(dir: &Path, first: &str, run_dir: &Path) -> std::process::Output {
    Command::new(bin())
        .current_dir(dir)
        .args([
            "run",
            "r.yaml",
            "--mock-workers",
            "-q",
            "--first-address",
            first,
        ])
        .arg("--run-dir")
        .arg(run_dir)
        .env("PATH", fake_driver(dir))
        .env("SRT_GRAPH_TIMING", "fixed")
        .env_remove("SLURM_JOB_ID")
        .env_remove("SRTSLURM_CONFIG")
        .output()
        .expect("run")
}

/// srtctl's DCGM power path end to end against a fake exporter on loopback serving DCGM's text format:
/// `samples.csv` in srtctl's columns for every GPU, a window per measured point, a complete manifest
/// whose audit covers both windows, and energy per output token in the report, marked SIMULATED.
#[test]
fn dcgm_power_gives_samples_windows_a_complete_manifest_and_energy_per_token() {
    let dir = tempfile::tempdir().expect("tmp");
    std::fs::write(dir.path().join("r.yaml"), powered(true, 4)).expect("write");
    let run_dir = dir.path().join("run");
    let out = run_with_driver(dir.path(), &loopback::first(4), &run_dir);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let power = run_dir.join("power");
    let samples = std::fs::read_to_string(power.join("samples.csv")).expect("samples");
    let mut lines = samples.lines();
    assert_eq!(
        lines.next(),
        Some("schema_version,timestamp_unix,scrape_seq,hostname,gpu_index,gpu_uuid,power_w")
    );
    let devices: std::collections::BTreeSet<(String, String)> = lines
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            let w: f64 = f[6].parse().expect("watts");
            assert!((400.0..=600.0).contains(&w), "{l}");
            (f[3].to_string(), f[4].to_string())
        })
        .collect();
    assert_eq!(devices.len(), 8, "{devices:?}");
    let manifest: Value =
        serde_json::from_slice(&std::fs::read(power.join("manifest.json")).expect("manifest"))
            .expect("json");
    assert_eq!(manifest["status"], "complete", "{manifest:#}");
    assert_eq!(manifest["publication_valid"], true);
    let validations = manifest["window_validations"].as_array().expect("audit");
    assert_eq!(validations.len(), 2, "{manifest:#}");
    assert!(validations
        .iter()
        .all(|v| v["power_coverage_valid"] == true));
    for v in validations {
        let w: Value = serde_json::from_slice(
            &std::fs::read(power.join(v["window_file"].as_str().expect("file"))).expect("window"),
        )
        .expect("json");
        assert_eq!(w["status"], "completed");
        assert!(run_dir
            .join(w["result_path"].as_str().expect("path"))
            .is_file());
        assert!(w["benchmark_end_time_unix"].as_f64() > w["benchmark_start_time_unix"].as_f64());
    }
    let report = std::fs::read_to_string(run_dir.join("report.html")).expect("report");
    assert!(report.contains("<h3>Power: run</h3>"), "{report}");
    let per_token: Vec<&str> = report
        .split("<td data-joules-per-token>")
        .skip(1)
        .map(|s| s.split('<').next().unwrap_or(""))
        .collect();
    assert_eq!(per_token.len(), 2, "{report}");
    assert!(
        per_token.iter().all(|j| j.ends_with("(SIMULATED)")
            && j.split(' ').next().and_then(|v| v.parse::<f64>().ok()) > Some(0.0)),
        "{per_token:?}"
    );
    common::assert_no_survivors(&run_dir);
}

/// `required: true`: without the driver (`nvidia-smi`) the run is refused before anything starts; with
/// an exporter that never reports every GPU, the gate fails the run before the benchmark and names the
/// GPUs missing. `plan` says plainly what telemetry needs.
#[test]
fn required_telemetry_refuses_a_run_without_gpus_and_stops_before_the_benchmark() {
    let dir = tempfile::tempdir().expect("tmp");
    std::fs::write(dir.path().join("r.yaml"), powered(true, 4)).expect("write");
    let plan = Command::new(bin())
        .current_dir(dir.path())
        .args(["plan", "r.yaml", "--mock-workers"])
        .output()
        .expect("plan");
    let text = String::from_utf8_lossy(&plan.stdout);
    assert!(text.contains("no GPU driver (`nvidia-smi`)"), "{text}");
    let refused = run_mock(
        dir.path(),
        &["r.yaml"],
        &loopback::first(5),
        &dir.path().join("a"),
    );
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success());
    assert!(
        err.contains("`nvidia-smi`") && err.contains("nothing was started"),
        "{err}"
    );
    assert!(common::spawned_groups(&dir.path().join("a")).is_empty());

    // Only 2 of the 4 GPUs per node ever report.
    std::fs::write(dir.path().join("r.yaml"), powered(true, 2)).expect("write");
    let run_dir = dir.path().join("b");
    let out = run_with_driver(dir.path(), &loopback::first(5), &run_dir);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(
        err.contains("telemetry.required")
            && err.contains("node0/gpu2")
            && err.contains("node1/gpu3"),
        "{err}"
    );
    assert!(
        !run_dir.join("logs/sa-bench/c2.log").exists()
            && !run_dir.join("logs/sa-bench_c2.log").exists(),
        "a benchmark point ran"
    );
    let manifest: Value = serde_json::from_slice(
        &std::fs::read(run_dir.join("power/manifest.json")).expect("manifest"),
    )
    .expect("json");
    assert!(
        manifest["reason_codes"]
            .as_array()
            .is_some_and(|r| r.iter().any(|c| c == "exporter_startup_timeout")),
        "{manifest:#}"
    );
    common::assert_no_survivors(&run_dir);
}
