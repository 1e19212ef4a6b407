//! Dynamo mode end to end on this machine: Debian's real `nats-server` and `etcd`, Dynamo's real frontend
//! (PyPI `ai-dynamo`, installed by the run into its venv) behind real nginx, and Dynamo's own GPU-less
//! `dynamo.mocker` as prefill and decode workers (`--mock-workers`).
//!
//! The deployments are heavy for 2 cores (4 mockers, 2 frontends, NATS, etcd): one at a time.

mod common;

use common::assert_no_survivors;
use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, Instant};

static ONE_DEPLOYMENT: Mutex<()> = Mutex::new(());

const RECIPE: &str = include_str!("../recipes/local-dynamo.yaml");

fn start(dir: &Path, first: &str) -> std::process::Command {
    common::mock_run(dir, RECIPE, &["--grace", "3s", "--first-address", first]).0
}

/// Every sa-bench result file of a run.
fn results(run_dir: &Path) -> Vec<serde_json::Value> {
    std::fs::read_dir(run_dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|d| d.file_name().to_string_lossy().starts_with("sa-bench_"))
        .flat_map(|d| std::fs::read_dir(d.path()).into_iter().flatten().flatten())
        .filter_map(|f| serde_json::from_slice(&std::fs::read(f.path()).ok()?).ok())
        .collect()
}

/// The process group the journal recorded for `step`.
fn pgid_of(journal: &str, step: &str) -> i32 {
    journal
        .lines()
        .rev()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["event"] == "spawned" && v["step"] == step)
        .find_map(|v| v["pgid"].as_i64())
        .expect("spawned") as i32
}

#[test]
fn the_dynamo_demo_runs_end_to_end() {
    let _one = ONE_DEPLOYMENT.lock().unwrap_or_else(|p| p.into_inner());
    let dir = tempfile::tempdir().expect("tmp");
    let out = start(dir.path(), "127.0.31.1").output().expect("run");
    let run_dir = dir.path().join("run");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    // NATS and etcd gated by real readiness checks, not sleeps.
    let nats = std::fs::read_to_string(run_dir.join("logs/nats_ready.log")).expect("log");
    assert!(nats.contains("127.0.31.2:4222 is ready"), "{nats}");
    let etcd = std::fs::read_to_string(run_dir.join("logs/etcd_ready.log")).expect("log");
    assert!(
        etcd.contains("http://127.0.31.2:2379/health is ready"),
        "{etcd}"
    );
    // Both frontends saw 2 prefill and 2 decode `generate` instances.
    let gate = std::fs::read_to_string(run_dir.join("logs/wait-healthy.log")).expect("gate log");
    for k in [2, 3] {
        assert!(
            gate.contains(&format!(
                "http://127.0.31.{k}:8000: 2/2 prefill, 2/2 decode"
            )),
            "{gate}"
        );
    }
    assert!(
        gate.contains("smoke request through http://127.0.31.1:8000: 200"),
        "{gate}"
    );
    // The workers are Dynamo's mocker, with their roles.
    let plan: serde_json::Value =
        serde_json::from_slice(&std::fs::read(run_dir.join("plan.json")).expect("plan"))
            .expect("json");
    let cmd = |id: &str| -> String {
        plan["steps"]
            .as_array()
            .and_then(|s| s.iter().find(|s| s["id"] == id))
            .map(|s| s["command"].to_string())
            .unwrap_or_default()
    };
    assert!(
        cmd("prefill-1").contains(r#""dynamo.mocker""#),
        "{}",
        cmd("prefill-1")
    );
    assert!(cmd("prefill-1").contains(r#""prefill""#));
    assert!(cmd("decode-0").contains(r#""decode""#));
    assert!(cmd("frontend-1").contains(r#""dynamo.frontend""#));
    // The install ran once (on node 0, into the shared venv), not once per process.
    let installs = plan["steps"].as_array().map_or(0, |s| {
        s.iter()
            .filter(|s| {
                s["id"]
                    .as_str()
                    .is_some_and(|i| i.starts_with("pip-dynamo/"))
            })
            .count()
    });
    assert_eq!(installs, 1);
    // sa-bench result files, with tokens counted.
    let res = results(&run_dir);
    assert_eq!(res.len(), 2, "{err}");
    for r in &res {
        assert!(r["completed"].as_u64().unwrap_or(0) > 0, "{r}");
        assert!(r["total_output_tokens"].as_u64().unwrap_or(0) > 0, "{r}");
    }
    assert_no_survivors(&run_dir);
}

#[test]
fn nats_or_etcd_dying_mid_run_fails_the_run_naming_it() {
    let _one = ONE_DEPLOYMENT.lock().unwrap_or_else(|p| p.into_inner());
    for (victim, first) in [("nats", "127.0.32.1"), ("etcd", "127.0.33.1")] {
        let dir = tempfile::tempdir().expect("tmp");
        let run_dir = dir.path().join("run");
        let mut child = start(dir.path(), first)
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("spawn");
        common::wait_for_event(&run_dir, &mut child, "step_finished", "wait-healthy");
        let journal = std::fs::read_to_string(run_dir.join("journal.jsonl")).expect("journal");
        let killed = Instant::now();
        let _ = nix::sys::signal::killpg(
            nix::unistd::Pid::from_raw(pgid_of(&journal, victim)),
            nix::sys::signal::Signal::SIGKILL,
        );
        let out = child.wait_with_output().expect("wait");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(3), "{victim}: {err}");
        assert!(
            err.contains(&format!("service `{victim}` (start_{victim})")),
            "{victim} not named: {err}"
        );
        // Detected when its exit is reaped, then torn down within the grace period.
        assert!(
            killed.elapsed() < Duration::from_secs(15),
            "{:?}",
            killed.elapsed()
        );
        assert_no_survivors(&run_dir);
    }
}

#[test]
fn resume_adopts_a_healthy_nats_and_etcd() {
    let _one = ONE_DEPLOYMENT.lock().unwrap_or_else(|p| p.into_inner());
    let dir = tempfile::tempdir().expect("tmp");
    let run_dir = dir.path().join("run");
    let mut child = start(dir.path(), "127.0.34.1")
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn");
    common::wait_for_event(&run_dir, &mut child, "step_finished", "wait-healthy");
    // The orchestrator dies without tearing anything down.
    let _ = child.kill();
    let _ = child.wait();
    let err = common::resume_ok(&run_dir, &[]);
    common::assert_adopted(&err, &["nats", "etcd", "frontend-0", "decode-1"]);
    assert!(!err.contains("run     nats"), "{err}");
    assert_eq!(results(&run_dir).len(), 2, "{err}");
    assert_no_survivors(&run_dir);
}

/// A TensorRT-LLM or vLLM recipe in simulation: the same deployment as the Dynamo demo, with Dynamo's
/// mocker in each worker's place; what the real run would have started stays in the plan.
fn backend_demo_runs_end_to_end(recipe: &str, first: &str, real_module: &str) {
    let _one = ONE_DEPLOYMENT.lock().unwrap_or_else(|p| p.into_inner());
    let dir = tempfile::tempdir().expect("tmp");
    let (mut cmd, run_dir) = common::mock_run(
        dir.path(),
        recipe,
        &["--grace", "3s", "--first-address", first],
    );
    let out = cmd.output().expect("run");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    let prefix = first.trim_end_matches(".1");
    let gate = std::fs::read_to_string(run_dir.join("logs/wait-healthy.log")).expect("gate log");
    for k in [2, 3] {
        assert!(
            gate.contains(&format!(
                "http://{prefix}.{k}:8000: 2/2 prefill, 2/2 decode"
            )),
            "{gate}"
        );
    }
    let plan: serde_json::Value =
        serde_json::from_slice(&std::fs::read(run_dir.join("plan.json")).expect("plan"))
            .expect("json");
    let steps = plan["steps"].as_array().cloned().unwrap_or_default();
    let workers: Vec<&serde_json::Value> = steps
        .iter()
        .filter(|s| s["kind"] == "start_worker")
        .collect();
    assert_eq!(workers.len(), 4);
    for w in &workers {
        let argv = w["command"].to_string();
        assert!(argv.contains(r#""dynamo.mocker""#), "{argv}");
    }
    let notes = plan["notes"].to_string();
    assert!(notes.contains("dynamo.mocker"), "{notes}");
    // Without its declared simulation the same recipe plans the real engine.
    std::fs::write(
        dir.path().join("real.yaml"),
        recipe.replace("mock_workers: true", ""),
    )
    .expect("write");
    let real = std::process::Command::new(env!("CARGO_BIN_EXE_srt-graph"))
        .current_dir(dir.path())
        .args(["plan", "real.yaml", "--json"])
        .output()
        .expect("plan");
    assert!(
        String::from_utf8_lossy(&real.stdout).contains(real_module),
        "{}",
        String::from_utf8_lossy(&real.stderr)
    );
    let res = results(&run_dir);
    assert_eq!(res.len(), 2, "{err}");
    for r in &res {
        assert!(r["completed"].as_u64().unwrap_or(0) > 0, "{r}");
        assert!(r["total_output_tokens"].as_u64().unwrap_or(0) > 0, "{r}");
    }
    assert_no_survivors(&run_dir);
}

#[test]
fn the_trtllm_demo_runs_end_to_end() {
    backend_demo_runs_end_to_end(
        include_str!("../recipes/local-trtllm.yaml"),
        "127.0.36.1",
        "dynamo.trtllm",
    );
}

#[test]
fn the_vllm_demo_runs_end_to_end() {
    backend_demo_runs_end_to_end(
        include_str!("../recipes/local-vllm.yaml"),
        "127.0.37.1",
        "dynamo.vllm",
    );
}

/// The mocker backend as srtctl launches it: its knobs reach Dynamo's real `dynamo.mocker`, which
/// serves the benchmark.
#[test]
fn the_mocker_backend_runs_with_srtctls_knobs() {
    let _one = ONE_DEPLOYMENT.lock().unwrap_or_else(|p| p.into_inner());
    let dir = tempfile::tempdir().expect("tmp");
    let (mut cmd, run_dir) = common::mock_run(
        dir.path(),
        include_str!("../recipes/local-mocker.yaml"),
        &["--grace", "3s", "--first-address", "127.0.38.1"],
    );
    let out = cmd.output().expect("run");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    let plan: serde_json::Value =
        serde_json::from_slice(&std::fs::read(run_dir.join("plan.json")).expect("plan"))
            .expect("json");
    let argv = |id: &str| -> String {
        plan["steps"]
            .as_array()
            .and_then(|s| s.iter().find(|s| s["id"] == id))
            .and_then(|s| s["command"].as_array())
            .map(|a| {
                a.iter()
                    .filter_map(|x| x.as_str())
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .unwrap_or_default()
    };
    let (prefill, decode) = (argv("prefill-0"), argv("decode-0"));
    for knob in [
        "--speedup-ratio 50",
        "--engine-type vllm",
        "--bootstrap-ports 30001",
    ] {
        assert!(prefill.contains(knob), "{knob}: {prefill}");
    }
    // The role's `mocker_config` comes last, so it wins over the default.
    assert!(decode.ends_with("--max-num-seqs 64"), "{decode}");
    let results = results(&run_dir);
    assert_eq!(results.len(), 1, "{err}");
    assert!(results[0]["completed"].as_u64().unwrap_or(0) > 0);
    assert_no_survivors(&run_dir);
}

/// Real srt-slurm recipes of every backend and of both frontend types in the corpus, run as a new user
/// would on a machine without GPUs: `--mock-workers --smoke` deploys each for real (NATS, etcd,
/// frontends or routers, nginx, the engines' stand-ins), gates it healthy and serves a short point.
#[test]
fn a_sample_of_corpus_recipes_deploys_and_serves_with_mock_workers_and_smoke() {
    let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/corpus");
    if !corpus.is_dir() {
        eprintln!("SKIPPED: {} is absent", corpus.display());
        return;
    }
    let _one = ONE_DEPLOYMENT.lock().unwrap_or_else(|p| p.into_inner());
    let sample = [
        (
            "current",
            "recipes/qwen3-32b/agg-kv-sglang.yaml",
            "start_router",
        ),
        (
            "current",
            "recipes/gb300-fp8/1k1k/mtp/max.yaml",
            "start_frontend",
        ),
        (
            "backends",
            "recipes/trtllm/gpt-oss-120b/b200-fp4/1k1k/agg-tp1.yaml",
            "start_frontend",
        ),
        (
            "backends",
            "recipes/vllm/nemotron-super-120b/b200-fp4/1k1k/agg-tp1.yaml",
            "start_frontend",
        ),
        ("backends", "recipes/mocker/agg.yaml", "start_frontend"),
    ];
    for (k, (era, recipe, frontend_kind)) in sample.iter().enumerate() {
        let dir = tempfile::tempdir().expect("tmp");
        let run_dir = dir.path().join("run");
        let first = common::loopback::first(10 + k);
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_srt-graph"))
            .current_dir(dir.path())
            .arg("run")
            .arg(corpus.join(era).join(recipe))
            .arg("--cluster-config")
            .arg(corpus.join(era).join("srtslurm.yaml.example"))
            .args([
                "--mock-workers",
                "--smoke",
                "-q",
                "--grace",
                "3s",
                "--first-address",
            ])
            .arg(&first)
            .arg("--run-dir")
            .arg(&run_dir)
            .env("PATH", common::path_env())
            .env_remove("SLURM_JOB_ID")
            .env_remove("SRTSLURM_CONFIG")
            .output()
            .expect("run");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{recipe}:\n{err}");
        let plan = std::fs::read_to_string(run_dir.join("plan.json")).expect("plan");
        assert!(plan.contains(frontend_kind), "{recipe}: no {frontend_kind}");
        let results = results(&run_dir);
        assert_eq!(results.len(), 1, "{recipe}: one smoke point\n{err}");
        assert!(
            results[0]["completed"].as_u64().unwrap_or(0) > 0,
            "{recipe}: {}",
            results[0]
        );
        assert_no_survivors(&run_dir);
    }
}

/// Dynamo mode paced by the performance model: Dynamo's own `dynamo.mocker` reads the role's latency
/// table (as a mocker-format NPZ, `--planner-profile-data`) and runs its scheduler at a 2× clock behind
/// the real Dynamo frontend; the client's TPOT lands within 10 % of `predict`.
#[test]
fn dynamo_mocker_paced_by_the_performance_model_matches_predict() {
    let recipe = r#"name: qwen3-8b-dynamo
model: {path: "mock/Qwen3-8B", container: none, precision: bf16}
resources: {gpu_type: h100, gpus_per_node: 1, agg_nodes: 1, agg_workers: 1}
frontend: {type: dynamo}
dynamo: {version: "1.6.1"}
backend:
  type: sglang
  sglang_config:
    aggregated: {served-model-name: Qwen/Qwen3-8B, tp-size: 1, max-running-requests: 64}
health_check: {max_attempts: 240, interval_seconds: 1}
benchmark: {type: sa-bench, isl: 1024, osl: 128, concurrencies: "8", req_rate: inf}
"#;
    let dir = tempfile::tempdir().expect("tmp");
    let first = common::loopback::first(9);
    let (mut c, run_dir) = common::mock_run(
        dir.path(),
        recipe,
        &[
            "--grace",
            "3s",
            "--first-address",
            &first,
            "--sim-speed",
            "2",
        ],
    );
    let out = c.env("SRT_GRAPH_TIMING", "model").output().expect("run");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_no_survivors(&run_dir);
    assert!(out.status.success(), "{err}");
    let log = std::fs::read_to_string(run_dir.join("logs/agg-0.log")).unwrap_or_default();
    assert!(log.contains("Using mocker-format NPZ file"), "{log}");
    let predicted = std::process::Command::new(env!("CARGO_BIN_EXE_srt-graph"))
        .current_dir(dir.path())
        .args(["predict", "recipe.yaml", "--json"])
        .output()
        .expect("predict");
    let p: serde_json::Value = serde_json::from_slice(&predicted.stdout).expect("json");
    let want = p["variants"][0]["points"][0]["mean_tpot_ms"]
        .as_f64()
        .expect("tpot");
    let r = &results(&run_dir)[0];
    assert!(r["simulated"]["timing"]
        .as_str()
        .is_some_and(|t| t.contains("aiconfigurator 0.12.0")));
    let got = r["mean_tpot_ms"].as_f64().expect("tpot");
    assert!(
        (got - want).abs() / want <= 0.10,
        "simulated TPOT {got:.2} ms vs predicted {want:.2} ms"
    );
}
