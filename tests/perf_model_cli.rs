//! The performance model end to end: `predict` runs nothing and gives per-concurrency figures; a
//! simulated run through the real sglang-router and the real client, its mock workers paced by
//! aiconfigurator's tables at a scaled clock, lands within 10 % of `predict` on TPOT; a broken
//! aiconfigurator install is refused with a fix before any worker starts.

mod common;

use serde_json::Value;
use std::path::Path;

fn recipe(roles: &str) -> String {
    format!(
        r#"name: qwen3-8b-sim
model: {{path: "Qwen/Qwen3-8B", container: none, precision: bf16}}
resources:
  gpu_type: h100
  gpus_per_node: 1
{roles}
frontend: {{type: sglang}}
health_check: {{max_attempts: 120, interval_seconds: 1}}
benchmark: {{type: sa-bench, isl: 1024, osl: 128, concurrencies: "8x32", req_rate: inf}}
"#
    )
}

const AGG: &str = r#"  agg_nodes: 2
  agg_workers: 2
backend:
  type: sglang
  sglang_config:
    aggregated: {served-model-name: Qwen/Qwen3-8B, tensor-parallel-size: 1, max-running-requests: 64}
"#;

const DISAGG: &str = r#"  prefill_nodes: 1
  prefill_workers: 1
  decode_nodes: 1
  decode_workers: 1
backend:
  type: sglang
  sglang_config:
    prefill: {served-model-name: Qwen/Qwen3-8B, tensor-parallel-size: 1, disaggregation-mode: prefill}
    decode: {served-model-name: Qwen/Qwen3-8B, tensor-parallel-size: 1, disaggregation-mode: decode, max-running-requests: 64}
"#;

/// `predict --json`: mean TPOT per concurrency.
fn predicted(dir: &Path) -> Vec<(u64, f64)> {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_srt-graph"))
        .current_dir(dir)
        .args(["predict", "recipe.yaml", "--json"])
        .env("PATH", common::path_env())
        .output()
        .expect("predict");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(v["predicted"], true);
    v["variants"][0]["points"]
        .as_array()
        .expect("points")
        .iter()
        .map(|p| {
            (
                p["concurrency"].as_u64().expect("c"),
                p["mean_tpot_ms"].as_f64().expect("tpot"),
            )
        })
        .collect()
}

/// Runs the recipe simulated at 2× (the HTTP path's own wall-clock latency is scaled too, so a faster clock
/// overstates TTFT and understates TPOT a little) and compares every point's TPOT with `predict`.
fn simulated_tpot_matches_predict(roles: &str, first: &str) {
    let dir = tempfile::tempdir().expect("tmp");
    let (mut c, run_dir) = common::mock_run(
        dir.path(),
        &recipe(roles),
        &["--first-address", first, "--sim-speed", "2"],
    );
    let out = c.env("SRT_GRAPH_TIMING", "model").output().expect("run");
    common::assert_no_survivors(&run_dir);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report = std::fs::read_to_string(run_dir.join("report.html")).unwrap_or_default();
    assert!(
        report.contains("SIMULATED: no inference engine ran."),
        "report does not say simulated"
    );
    assert!(
        report.contains("aiconfigurator 0.12.0"),
        "report does not name the model"
    );
    assert!(
        report.contains("(PREDICTED)") && report.contains("data-predicted"),
        "no prediction overlaid"
    );
    let pareto =
        std::fs::read_to_string(run_dir.join("report-charts/pareto.svg")).unwrap_or_default();
    assert!(
        pareto.contains("(PREDICTED)") && pareto.contains("(SIMULATED)"),
        "{pareto}"
    );
    let plan = std::fs::read_to_string(run_dir.join("plan.json")).unwrap_or_default();
    assert!(
        plan.contains("performance model: aiconfigurator 0.12.0, h100_sxm sglang"),
        "{plan}"
    );
    for (c, want) in predicted(dir.path()) {
        let file = std::fs::read_dir(&run_dir)
            .expect("run dir")
            .flatten()
            .filter(|e| e.path().is_dir())
            .map(|e| e.path())
            .find(|p| {
                p.file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with("sa-bench"))
            })
            .and_then(|d| {
                std::fs::read_dir(d)
                    .ok()?
                    .flatten()
                    .map(|e| e.path())
                    .find(|p| {
                        p.file_name().is_some_and(|n| {
                            n.to_string_lossy()
                                .starts_with(&format!("results_concurrency_{c}_"))
                        })
                    })
            })
            .expect("result file");
        let r: Value =
            serde_json::from_str(&std::fs::read_to_string(&file).expect("read")).expect("json");
        let label = r["simulated"]["timing"].as_str().unwrap_or_default();
        assert!(label.contains("aiconfigurator 0.12.0"), "{file:?}: {label}");
        assert_eq!(r["simulated"]["sim_speed"], 2.0);
        let got = r["mean_tpot_ms"].as_f64().expect("tpot");
        let err = (got - want).abs() / want;
        assert!(
            err <= 0.10,
            "concurrency {c}: simulated TPOT {got:.2} ms vs predicted {want:.2} ms ({:.1} % off)",
            100.0 * err
        );
    }
}

#[test]
fn aggregated_router_run_matches_predict() {
    simulated_tpot_matches_predict(AGG, &common::loopback::first(0));
}

#[test]
fn disaggregated_router_run_matches_predict() {
    simulated_tpot_matches_predict(DISAGG, &common::loopback::first(1));
}

#[test]
fn a_broken_install_is_refused_with_its_fix() {
    let dir = tempfile::tempdir().expect("tmp");
    let python = dir.path().join("python");
    std::fs::write(
        &python,
        "#!/bin/sh\necho 'ModuleNotFoundError: No module named aiconfigurator_core' >&2\nexit 1\n",
    )
    .expect("write");
    std::fs::set_permissions(&python, std::os::unix::fs::PermissionsExt::from_mode(0o755))
        .expect("chmod");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_srt-graph"))
        .args(["perf-table", "--python"])
        .arg(&python)
        .arg("--cache")
        .arg(dir.path().join("cache"))
        .arg("--out-dir")
        .arg(dir.path().join("perf"))
        .args(["--inputs", "[]"])
        .output()
        .expect("perf-table");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("aiconfigurator-core cannot be used from"),
        "{err}"
    );
    assert!(err.contains("No module named aiconfigurator_core"), "{err}");
    assert!(err.contains("fix:"), "{err}");
    assert!(!dir.path().join("perf").exists(), "nothing is written");
}

#[test]
fn unsupported_gpu_is_a_plan_note_and_the_fixed_timing() {
    let dir = tempfile::tempdir().expect("tmp");
    std::fs::write(
        dir.path().join("recipe.yaml"),
        recipe(AGG).replace("gpu_type: h100", "gpu_type: a10g"),
    )
    .expect("write");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_srt-graph"))
        .current_dir(dir.path())
        .args(["plan", "recipe.yaml", "--mock-workers"])
        .env("SRT_GRAPH_TIMING", "model")
        .output()
        .expect("plan");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success());
    assert!(
        text.contains("performance model: none (GPU `a10g` has no measurements"),
        "{text}"
    );
    assert!(text.contains("fixed timing"), "{text}");
    assert!(!text.contains("perf-tables"), "{text}");
    assert!(
        text.contains("SRT_SIMULATED=fixed timing (GPU `a10g`"),
        "{text}"
    );
}

#[test]
fn predict_ranks_the_variants_of_an_override_file() {
    let dir = tempfile::tempdir().expect("tmp");
    let base: String = recipe(AGG).lines().map(|l| format!("  {l}\n")).collect();
    let text = format!(
        "base:\n{base}override_tp2:\n  resources: {{agg_workers: 1, gpus_per_agg: 2}}\n  backend:\n    sglang_config:\n      aggregated: {{tensor-parallel-size: 2}}\noverride_small_batch:\n  backend:\n    sglang_config:\n      aggregated: {{max-running-requests: 4}}\n"
    );
    std::fs::write(dir.path().join("sweep.yaml"), text).expect("write");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_srt-graph"))
        .current_dir(dir.path())
        .args(["predict", "sweep.yaml", "--json"])
        .output()
        .expect("predict");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).expect("json");
    let ranking = v["ranking"].as_array().expect("ranking");
    assert_eq!(ranking.len(), 2, "{v}");
    let gpu = |i: usize| ranking[i]["output_tps_per_gpu"].as_f64().expect("tps");
    assert!(gpu(0) >= gpu(1), "{v}");
    // A batch of 4 cannot keep 32 users' tokens flowing as fast as the TP2 worker: it ranks last.
    assert_eq!(ranking[1]["variant"], "small_batch", "{v}");
    for variant in v["variants"].as_array().expect("variants") {
        assert!(
            variant["points"].as_array().is_some_and(|p| p.len() == 2),
            "{variant}"
        );
        assert!(variant["points"][0]["pareto"].is_boolean());
    }
}
