//! The crash harness: run the local disaggregated pipeline, `kill -9` the orchestrator after a chosen
//! number of journal events (while workers load, while routers start, between benchmark points, during
//! teardown), `resume`, and check that it finishes, that every service still up and healthy was adopted
//! with its process group unchanged, that nothing that was gone was skipped (every benchmark result is
//! complete), and that no process of the run remains.
//!
//! `KILL_POINTS` (default 4) sets how many points; `KILL_SEED` shifts them. On demand:
//! `KILL_POINTS=50 cargo test --release --test kill_points -- --nocapture`. Figures go to
//! `target/kill-points.txt`.

mod common;

use assert_cmd::Command;
use common::{kill_all, path_env, spawned_groups, survivors};
use srt_graph_engine::journal::{self, Event};
use srt_graph_engine::local::live_group_members;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const RECIPE: &str = r#"name: kill-points
model: {path: mock-model, container: none, precision: bf16}
resources: {gpu_type: gb300, gpus_per_node: 4, prefill_nodes: 2, prefill_workers: 2, decode_nodes: 2, decode_workers: 2}
frontend: {type: sglang, enable_multiple_frontends: true, num_additional_frontends: 3}
backend:
  type: sglang
  prefill_environment: {SRT_MOCK_LOAD_TIME: "1"}
  decode_environment: {SRT_MOCK_LOAD_TIME: "1", SRT_MOCK_TPS: "100"}
  sglang_config:
    prefill: {served-model-name: m, tensor-parallel-size: 4, disaggregation-mode: prefill}
    decode: {served-model-name: m, tensor-parallel-size: 4, disaggregation-mode: decode}
health_check: {max_attempts: 60, interval_seconds: 1}
benchmark: {type: sa-bench, isl: 32, osl: 40, concurrencies: "2x4x8", req_rate: inf}
"#;

fn journal_of(run_dir: &Path) -> Vec<Event> {
    journal::read(&run_dir.join("journal.jsonl"))
        .map(|j| j.into_iter().map(|r| r.event).collect())
        .unwrap_or_default()
}

struct Cleanup(PathBuf);

impl Drop for Cleanup {
    fn drop(&mut self) {
        kill_all(&self.0);
    }
}

/// Runs the pipeline in `dir`; with `kill_after = Some(n)` SIGKILLs the orchestrator once the journal
/// holds `n` events. Returns the run directory and whether the run ended by itself.
fn run(dir: &Path, first: &str, kill_after: Option<usize>) -> (PathBuf, bool) {
    let (mut cmd, run_dir) =
        common::mock_run(dir, RECIPE, &["--grace", "3s", "--first-address", first]);
    let mut child = cmd
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn");
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            assert!(
                kill_after.is_some() || status.success(),
                "reference run failed: {status}"
            );
            return (run_dir, true);
        }
        if let Some(n) = kill_after {
            if journal_of(&run_dir).len() >= n {
                let _ = child.kill();
                let _ = child.wait();
                return (run_dir, false);
            }
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            kill_all(&run_dir);
            panic!("run did not finish");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn results_complete(run_dir: &Path) -> bool {
    [2, 4, 8].iter().all(|c| {
        let f = run_dir.join(format!(
            "sa-bench_isl_32_osl_40/results_concurrency_{c}_gpus_16_ctx_8_gen_8.json"
        ));
        std::fs::read(&f)
            .ok()
            .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
            .is_some_and(|v| v["completed"] == 5 * c)
    })
}

#[test]
fn kill_the_orchestrator_anywhere_then_resume() {
    let points: usize = std::env::var("KILL_POINTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(4);
    let seed: usize = std::env::var("KILL_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);

    // A reference run tells how many events a whole run writes.
    let reference = tempfile::tempdir().expect("tmp");
    let (ref_dir, _) = run(reference.path(), &common::loopback::first(0), None);
    let total = journal_of(&ref_dir).len();
    assert!(results_complete(&ref_dir));
    assert!(survivors(&ref_dir).is_empty());

    let mut tried = 0;
    let mut resumed = 0;
    let mut orphans = 0;
    let mut report = String::new();
    for k in 0..points {
        // Spread the kill points over the whole run, shifted by the seed.
        let at = 1 + (k * total + seed * 7) / points.max(1) % total.max(1);
        let dir = tempfile::tempdir().expect("tmp");
        // Block 0 is the reference run's.
        let first = common::loopback::first(1 + k % (common::loopback::count() - 1));
        let (run_dir, ended) = run(dir.path(), &first, Some(at));
        let _cleanup = Cleanup(run_dir.clone());
        if ended {
            continue;
        }
        tried += 1;
        // What stands right now: services whose process group is alive.
        let alive_before: Vec<(String, i32)> = spawned_groups(&run_dir)
            .into_iter()
            .filter(|(_, g, service)| *service && !live_group_members(*g).is_empty())
            .map(|(s, g, _)| (s, g))
            .collect();
        let out = Command::cargo_bin("srt-graph")
            .expect("bin")
            .args(["resume", "-q", "--grace", "3s"])
            .arg(&run_dir)
            .env("PATH", path_env())
            .timeout(Duration::from_secs(180))
            .output()
            .expect("resume");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success(),
            "kill point {at}/{total}: resume failed:\n{stderr}"
        );
        assert!(
            results_complete(&run_dir),
            "kill point {at}/{total}: results incomplete:\n{stderr}"
        );
        // Every adopted service kept its process group; a live one is restarted only because something it
        // depends on was.
        for (step, pgid) in &alive_before {
            let adopted = format!("adopt   {step} (process group {pgid} ");
            let restarted_for_dependency = stderr
                .lines()
                .any(|l| l.starts_with(&format!("  run     {step}: depends on")));
            let restarted_unhealthy = stderr.lines().any(|l| {
                l.starts_with(&format!(
                    "  run     {step}: service is no longer alive and healthy"
                ))
            });
            // A service being stopped when the orchestrator died, that nothing needs now, is kept as
            // stopped: resume finishes stopping it (the survivors check below proves it).
            let kept_stopped = stderr.lines().any(|l| l == format!("  keep    {step}"));
            assert!(
                stderr.contains(&adopted) || restarted_for_dependency || restarted_unhealthy || kept_stopped,
                "kill point {at}/{total}: live service {step} (group {pgid}) was neither adopted nor restarted for a reason:\n{stderr}"
            );
        }
        resumed += 1;
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut left;
        loop {
            left = survivors(&run_dir);
            if left.is_empty() || Instant::now() > deadline {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        orphans += left.len();
        report.push_str(&format!(
            "kill after event {at:>3}/{total}: resumed, {} orphan group(s)\n",
            left.len()
        ));
        assert!(
            left.is_empty(),
            "kill point {at}/{total}: processes survived: {left:?}"
        );
    }
    let summary = format!("kill points tried: {tried}, resumed successfully: {resumed}, orphan process groups: {orphans}\n{report}");
    print!("{summary}");
    let _ = std::fs::write(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("target/kill-points.txt"),
        summary,
    );
    assert!(
        tried >= points / 2,
        "only {tried} of {points} kill points hit a live run"
    );
}
