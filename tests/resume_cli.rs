//! `resume` and `status` after the orchestrator dies mid-benchmark: what stands is kept or adopted, what is
//! gone runs again, and nothing is left running at the end.

mod common;

use assert_cmd::Command;
use common::{assert_no_survivors, kill_all, path_env, spawned_groups};
use serde_json::Value;
use srt_graph_engine::journal::{self, Event};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

const RECIPE: &str = r#"name: resume-demo
model: {path: mock-model, container: none, precision: bf16}
resources: {gpu_type: gb300, gpus_per_node: 4, prefill_nodes: 1, prefill_workers: 1, decode_nodes: 1, decode_workers: 1}
frontend: {type: sglang, enable_multiple_frontends: true, num_additional_frontends: 1}
backend:
  type: sglang
  decode_environment: {SRT_MOCK_TPS: "50"}
  sglang_config:
    prefill: {served-model-name: m, tensor-parallel-size: 4, disaggregation-mode: prefill}
    decode: {served-model-name: m, tensor-parallel-size: 4, disaggregation-mode: decode}
health_check: {max_attempts: 60, interval_seconds: 1}
benchmark: {type: sa-bench, isl: 32, osl: 50, concurrencies: "2x4x8", req_rate: inf}
"#;

fn cmd() -> Command {
    let mut c = Command::cargo_bin("srt-graph").expect("bin");
    c.env_remove("SLURM_JOB_ID").env_remove("SRTSLURM_CONFIG");
    c.env("PATH", path_env());
    c.timeout(Duration::from_secs(300));
    c
}

/// Kills the run's process groups whatever happens (the orchestrator is SIGKILLed on purpose).
struct Cleanup(PathBuf);

impl Drop for Cleanup {
    fn drop(&mut self) {
        kill_all(&self.0);
    }
}

/// Starts the run, waits until the first benchmark point is done, then SIGKILLs the orchestrator.
fn run_and_kill(dir: &Path, first: &str) -> PathBuf {
    let (mut cmd, run_dir) = common::mock_run(dir, RECIPE, &["--first-address", first]);
    let mut child = cmd
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn");
    common::wait_for_event(&run_dir, &mut child, "step_finished", "sa-bench/c2");
    child.kill().expect("SIGKILL the orchestrator");
    let _ = child.wait();
    run_dir
}

#[test]
fn resume_after_the_orchestrator_died_keeps_adopts_and_finishes() {
    let dir = tempfile::tempdir().expect("tmp");
    let run_dir = run_and_kill(dir.path(), "127.0.81.1");
    let _cleanup = Cleanup(run_dir.clone());
    // A torn last line, as a crash mid-write leaves it.
    std::fs::OpenOptions::new()
        .append(true)
        .open(run_dir.join("journal.jsonl"))
        .expect("journal")
        .write_all(b"{\"t\":1.0,\"event\":\"step_fin")
        .expect("write");

    let status = cmd()
        .arg("status")
        .arg(&run_dir)
        .arg("--json")
        .output()
        .expect("status");
    assert!(status.status.success());
    let v: Value = serde_json::from_slice(&status.stdout).expect("json");
    assert!(v["orchestrator"].is_null());
    let state = |id: &str| {
        v["steps"]
            .as_array()
            .expect("steps")
            .iter()
            .find(|s| s["id"] == id)
            .expect(id)["state"]
            .clone()
    };
    assert_eq!(state("decode-0"), "up");
    assert_eq!(state("sa-bench/c2"), "done");
    assert_eq!(state("sa-bench/c8"), "pending");

    let out = cmd()
        .arg("resume")
        .arg(&run_dir)
        .arg("-q")
        .output()
        .expect("resume");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    for line in [
        "keep    sa-bench/c2",
        "keep    wait-healthy",
        "adopt   prefill-0",
        "adopt   decode-0",
        "adopt   router-0",
        "adopt   nginx",
        "run     sa-bench/c8: never ran",
    ] {
        assert!(stderr.contains(line), "missing `{line}`:\n{stderr}");
    }
    assert!(!stderr.contains("run     decode-0"), "{stderr}");
    for c in [2, 4, 8] {
        let f = run_dir.join(format!(
            "sa-bench_isl_32_osl_50/results_concurrency_{c}_gpus_8_ctx_4_gen_4.json"
        ));
        let v: Value =
            serde_json::from_slice(&std::fs::read(&f).expect("result")).expect("complete json");
        assert_eq!(v["completed"], 5 * c);
    }
    // The second run is recorded as continuing the first.
    let continued = journal::read(&run_dir.join("journal.jsonl"))
        .expect("journal")
        .iter()
        .any(|r| {
            matches!(
                &r.event,
                Event::RunStarted {
                    continues: Some(_),
                    ..
                }
            )
        });
    assert!(continued);
    assert_no_survivors(&run_dir);
}

#[test]
fn a_dead_worker_restarts_with_everything_that_depends_on_it_and_a_changed_recipe_reruns_what_changed(
) {
    let dir = tempfile::tempdir().expect("tmp");
    let run_dir = run_and_kill(dir.path(), "127.0.82.1");
    let _cleanup = Cleanup(run_dir.clone());

    // A live second orchestrator is refused.
    let holder = std::process::Command::new("sleep")
        .arg("30")
        .spawn()
        .expect("sleep");
    let host = std::fs::read_to_string(run_dir.join("lock")).expect("lock");
    let host = host.split_whitespace().nth(1).expect("host").to_string();
    std::fs::write(run_dir.join("lock"), format!("{} {host}\n", holder.id())).expect("lock");
    let out = cmd().arg("resume").arg(&run_dir).output().expect("resume");
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr)
        .contains(&format!("is being run by pid {}", holder.id())));
    let mut holder = holder;
    let _ = holder.kill();
    let _ = holder.wait();

    // Edit the run's recipe: a longer output changes the benchmark steps only.
    let recipe = std::fs::read_to_string(run_dir.join("recipe.yaml")).expect("recipe");
    std::fs::write(
        run_dir.join("recipe.yaml"),
        recipe.replace("osl: 50", "osl: 40"),
    )
    .expect("edit");
    let dry = cmd()
        .arg("resume")
        .arg(&run_dir)
        .arg("--dry-run")
        .output()
        .expect("dry run");
    let text = String::from_utf8_lossy(&dry.stderr);
    assert!(dry.status.success(), "{text}");
    assert!(
        text.contains(
            "run     sa-bench/c2: its command, environment, inputs or dependencies changed"
        ),
        "{text}"
    );
    assert!(
        text.contains("adopt   decode-0") && text.contains("keep    wait-healthy"),
        "{text}"
    );

    // Kill the decode worker: it, the routers that talked to it, the gate and the benchmark run again.
    let decode = spawned_groups(&run_dir)
        .into_iter()
        .find(|(s, _, _)| s == "decode-0")
        .expect("decode")
        .1;
    nix::sys::signal::killpg(
        nix::unistd::Pid::from_raw(decode),
        nix::sys::signal::Signal::SIGKILL,
    )
    .expect("kill");
    std::thread::sleep(Duration::from_millis(300));
    let dry = cmd()
        .arg("resume")
        .arg(&run_dir)
        .arg("--dry-run")
        .output()
        .expect("dry run");
    let text = String::from_utf8_lossy(&dry.stderr);
    for line in [
        "run     decode-0: service is no longer alive and healthy",
        "run     router-0: depends on `decode-0`, which runs again",
        "run     wait-healthy: depends on",
        "run     nginx: depends on `router-0`, which runs again",
        "adopt   prefill-0",
    ] {
        assert!(text.contains(line), "missing `{line}`:\n{text}");
    }
    let out = cmd()
        .arg("resume")
        .arg(&run_dir)
        .arg("-q")
        .output()
        .expect("resume");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(
        &std::fs::read(
            run_dir.join("sa-bench_isl_32_osl_40/results_concurrency_8_gpus_8_ctx_4_gen_4.json"),
        )
        .expect("result"),
    )
    .expect("json");
    assert_eq!(v["completed"], 40);
    assert_no_survivors(&run_dir);
}
