//! Faults injected into live runs (mock-worker knobs, plain signals, a dropped ssh connection, a full disk),
//! each checked the same way: the run fails with exit 3 naming the step and showing its log tail; the time
//! from fault to detection (the journal's timestamp of the failure) is within target for process deaths
//! (≤ 2 s); teardown leaves zero processes; after the cause is removed, `resume` completes the run.
//! Each prints `FAULT <name>: detected in N ms` (run with `--nocapture` to see the figures).

mod common;

use common::assert_no_survivors;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The deployments are real processes on 2 cores: one at a time keeps detection times honest.
static ONE_RUN: Mutex<()> = Mutex::new(());

const SMALL_DEMO: &str = r#"name: faults
model: {path: mock-model, container: none, precision: bf16}
resources: {gpu_type: gb300, gpus_per_node: 4, prefill_nodes: 2, prefill_workers: 2, decode_nodes: 2, decode_workers: 2}
frontend: {type: sglang, enable_multiple_frontends: true, num_additional_frontends: 3}
backend:
  type: sglang
  prefill_environment: {SRT_MOCK_LOAD_TIME: "0.3"}
  decode_environment: {SRT_MOCK_LOAD_TIME: "@LOAD@"@KNOB@}
  sglang_config:
    prefill: {served-model-name: test-model, tensor-parallel-size: 4, disaggregation-mode: prefill, disaggregation-bootstrap-port: 30001}
    decode: {served-model-name: test-model, tensor-parallel-size: 4, disaggregation-mode: decode, disaggregation-bootstrap-port: 30001}
health_check: {max_attempts: @ATTEMPTS@, interval_seconds: 1}
benchmark: {type: sa-bench, isl: 64, osl: 8, concurrencies: "@CONC@", req_rate: inf}
"#;

fn demo(load: &str, knob: &str, attempts: u32, conc: &str) -> String {
    SMALL_DEMO
        .replace("@LOAD@", load)
        .replace("@KNOB@", knob)
        .replace("@ATTEMPTS@", &attempts.to_string())
        .replace("@CONC@", conc)
}

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs_f64()
}

fn journal(run_dir: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(run_dir.join("journal.jsonl"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

fn pgid_of(run_dir: &Path, step: &str) -> i32 {
    journal(run_dir)
        .iter()
        .rev()
        .find(|v| v["event"] == "spawned" && v["step"] == step)
        .and_then(|v| v["pgid"].as_i64())
        .expect("spawned") as i32
}

fn killpg(pgid: i32) {
    let _ = nix::sys::signal::killpg(
        nix::unistd::Pid::from_raw(pgid),
        nix::sys::signal::Signal::SIGKILL,
    );
}

/// A run in its own directory, started in the background.
struct Live {
    dir: PathBuf,
    run_dir: PathBuf,
    child: std::process::Child,
}

fn start(dir: &Path, recipe: &str, args: &[&str]) -> Live {
    let mut extra = vec!["--grace", "3s"];
    extra.extend_from_slice(args);
    let (mut cmd, run_dir) = common::mock_run(dir, recipe, &extra);
    let child = cmd
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    Live {
        dir: dir.to_path_buf(),
        run_dir,
        child,
    }
}

impl Live {
    fn wait_event(&mut self, event: &str, step: &str) {
        common::wait_for_event(&self.run_dir, &mut self.child, event, step);
    }

    /// The run's exit code and stderr, once it ended (bounded).
    fn finish(mut self) -> (Option<i32>, String, PathBuf, PathBuf) {
        let deadline = Instant::now() + Duration::from_secs(180);
        while self.child.try_wait().expect("wait").is_none() {
            if Instant::now() > deadline {
                let _ = self.child.kill();
                common::kill_all(&self.run_dir);
                panic!("the run did not end after the fault");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let out = self.child.wait_with_output().expect("output");
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
            self.dir,
            self.run_dir,
        )
    }
}

/// Milliseconds from `fault_at` (unix time) to the first failure the journal recorded after it.
fn detection_ms(run_dir: &Path, fault_at: f64) -> f64 {
    journal(run_dir)
        .iter()
        .filter(|v| matches!(v["event"].as_str(), Some("service_exited" | "step_failed")))
        .filter_map(|v| v["t"].as_f64())
        .find(|&t| t >= fault_at - 0.001)
        .map_or(f64::INFINITY, |t| (t - fault_at) * 1e3)
}

fn resume(run_dir: &Path, extra: &[&str]) {
    let err = common::resume_ok(run_dir, extra);
    assert!(err.contains("sa-bench results"), "{err}");
    assert_no_survivors(run_dir);
}

/// Edits the run's own copy of the recipe (what `resume` reads).
fn edit_recipe(run_dir: &Path, from: &str, to: &str) {
    let p = run_dir.join("recipe.yaml");
    let text = std::fs::read_to_string(&p).expect("recipe");
    assert!(text.contains(from), "{from} not in the recipe");
    std::fs::write(&p, text.replace(from, to)).expect("write");
}

#[test]
fn worker_killed_while_loading() {
    let _one = ONE_RUN.lock().unwrap_or_else(|p| p.into_inner());
    let dir = tempfile::tempdir().expect("tmp");
    let mut live = start(
        dir.path(),
        &demo("4", "", 60, "2x4"),
        &["--first-address", "127.0.51.1"],
    );
    live.wait_event("spawned", "decode-1");
    let at = unix_now();
    killpg(pgid_of(&live.run_dir, "decode-1"));
    let (code, err, _dir, run_dir) = live.finish();
    assert_eq!(code, Some(3), "{err}");
    assert!(
        err.contains("service `decode-1` (start_worker) on node3 exited while the run was live"),
        "{err}"
    );
    assert!(err.contains("log: "), "{err}");
    let ms = detection_ms(&run_dir, at);
    eprintln!("FAULT worker killed while loading: detected in {ms:.0} ms");
    assert!(ms <= 2000.0, "{ms} ms");
    assert_no_survivors(&run_dir);
    resume(&run_dir, &[]);
}

#[test]
fn worker_crashing_during_the_benchmark() {
    let _one = ONE_RUN.lock().unwrap_or_else(|p| p.into_inner());
    let dir = tempfile::tempdir().expect("tmp");
    let knob = ", SRT_MOCK_CRASH_AFTER: \"6\"";
    let live = start(
        dir.path(),
        &demo("0.3", knob, 60, "8x16"),
        &["--first-address", "127.0.52.1"],
    );
    let (code, err, _dir, run_dir) = live.finish();
    assert_eq!(code, Some(3), "{err}");
    assert!(err.contains("exited while the run was live"), "{err}");
    assert!(
        err.contains("crash injected after 6 request(s)"),
        "log tail: {err}"
    );
    // The crash is the mock's own exit: its last log line is the moment of the fault.
    let crashed = journal(&run_dir)
        .iter()
        .find(|v| v["event"] == "service_exited")
        .and_then(|v| v["t"].as_f64())
        .expect("service_exited");
    let started = journal(&run_dir)
        .iter()
        .find(|v| v["event"] == "step_started" && v["step"] == "sa-bench/warmup")
        .and_then(|v| v["t"].as_f64())
        .expect("benchmark started");
    assert!(crashed > started, "the crash happened during the benchmark");
    assert_no_survivors(&run_dir);
    edit_recipe(&run_dir, knob, "");
    resume(&run_dir, &[]);
}

#[test]
fn worker_that_never_becomes_healthy() {
    let _one = ONE_RUN.lock().unwrap_or_else(|p| p.into_inner());
    let dir = tempfile::tempdir().expect("tmp");
    let knob = ", SRT_MOCK_REFUSE_HEALTH: \"1\"";
    let live = start(
        dir.path(),
        &demo("0.3", knob, 8, "2x4"),
        &["--first-address", "127.0.53.1"],
    );
    let (code, err, _dir, run_dir) = live.finish();
    assert_eq!(code, Some(3), "{err}");
    // The gate ends at its timeout (8 attempts × 1 s: enough for the routers to answer on a busy
    // machine) and says what is missing.
    assert!(
        err.contains("step `wait-healthy` (wait_healthy) on node0 failed"),
        "{err}"
    );
    assert!(err.contains("timed out after 8s"), "{err}");
    assert!(
        err.contains("0/2 decode — missing 0 prefill, 2 decode"),
        "missing workers named: {err}"
    );
    assert_no_survivors(&run_dir);
    // The fix, and a gate with room to bring everything back up.
    edit_recipe(&run_dir, knob, "");
    edit_recipe(&run_dir, "max_attempts: 8,", "max_attempts: 60,");
    resume(&run_dir, &[]);
}

#[test]
fn router_exiting_mid_run() {
    let _one = ONE_RUN.lock().unwrap_or_else(|p| p.into_inner());
    let dir = tempfile::tempdir().expect("tmp");
    let mut live = start(
        dir.path(),
        &demo("0.3", "", 60, "4x16x64"),
        &["--first-address", "127.0.54.1"],
    );
    live.wait_event("step_finished", "wait-healthy");
    let at = unix_now();
    killpg(pgid_of(&live.run_dir, "router-1"));
    let (code, err, _dir, run_dir) = live.finish();
    assert_eq!(code, Some(3), "{err}");
    assert!(
        err.contains("service `router-1` (start_router) on node1 exited while the run was live"),
        "{err}"
    );
    let ms = detection_ms(&run_dir, at);
    eprintln!("FAULT router killed: detected in {ms:.0} ms");
    assert!(ms <= 2000.0, "{ms} ms");
    assert_no_survivors(&run_dir);
    resume(&run_dir, &[]);
}

#[test]
fn pip_install_of_a_bad_package_is_retried_then_reported() {
    let _one = ONE_RUN.lock().unwrap_or_else(|p| p.into_inner());
    let dir = tempfile::tempdir().expect("tmp");
    // A copy of the fake SGLang checkout whose pyproject.toml is broken.
    let src = dir.path().join("sglang");
    std::fs::create_dir_all(src.join("fake_sglang")).expect("mkdir");
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("recipes/fake-sglang");
    let good = std::fs::read_to_string(root.join("pyproject.toml")).expect("pyproject");
    std::fs::copy(
        root.join("fake_sglang/__init__.py"),
        src.join("fake_sglang/__init__.py"),
    )
    .expect("copy");
    std::fs::write(src.join("pyproject.toml"), "[project\nname = broken").expect("write");
    let recipe = format!(
        "{}policy:\n  pip_install: {{backoff: 100ms}}\n",
        std::fs::read_to_string(root.join("../local-sglang-src.yaml"))
            .expect("recipe")
            .replace(
                "sglang_src_dir: \"fake-sglang\"",
                "sglang_src_dir: \"sglang\""
            )
            .replace("concurrencies: \"4x8\"", "concurrencies: \"2\"")
    );
    let live = start(dir.path(), &recipe, &["--first-address", "127.0.55.1"]);
    let (code, err, _dir, run_dir) = live.finish();
    assert_eq!(code, Some(3), "{err}");
    // Both nodes install; whichever runs out of tries first fails the run (the other is cancelled).
    let failed = ["node0", "node1"]
        .into_iter()
        .find(|n| err.contains(&format!("(pip_install) on {n} failed after 3 tries")))
        .unwrap_or_else(|| panic!("no install failed after 3 tries: {err}"));
    assert!(
        err.contains("Expected ']' at the end of a table declaration"),
        "pip's own words in the tail: {err}"
    );
    let step = format!("pip-sglang-src/{failed}");
    let retries = journal(&run_dir)
        .iter()
        .filter(|v| {
            v["event"] == "step_failed" && v["step"] == step.as_str() && v["will_retry"] == true
        })
        .count();
    assert_eq!(retries, 2, "retried by policy");
    assert_no_survivors(&run_dir);
    std::fs::write(src.join("pyproject.toml"), good).expect("fix");
    resume(&run_dir, &[]);
}

#[test]
fn a_full_disk_stops_the_run_cleanly_and_resume_finishes_it() {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("SKIPPED: mounting a small tmpfs for the run directory needs root");
        return;
    }
    let _one = ONE_RUN.lock().unwrap_or_else(|p| p.into_inner());
    let dir = tempfile::tempdir().expect("tmp");
    let mnt = dir.path().join("disk");
    std::fs::create_dir_all(&mnt).expect("mkdir");
    let ok = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=16m", "srt-graph-test"])
        .arg(&mnt)
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        eprintln!("SKIPPED: this machine does not let root mount a tmpfs (no disk to fill)");
        return;
    }
    let _guard = common::Mounted(mnt.clone());
    let mut live = start(
        &mnt,
        &demo("0.3", "", 60, "4x16x64x128"),
        &["--first-address", "127.0.56.1"],
    );
    live.wait_event("step_finished", "wait-healthy");
    // Fill the disk.
    let at = unix_now();
    let filler = common::fill_disk(&mnt);
    let (code, err, _dir, run_dir) = live.finish();
    let stopped_ms = (unix_now() - at) * 1e3;
    eprintln!("FAULT disk full: run stopped {stopped_ms:.0} ms after the disk filled");
    assert_eq!(code, Some(3), "{err}");
    assert!(err.contains("No space left on device"), "{err}");
    common::assert_full_disk_recorded(&run_dir);
    assert_no_survivors(&run_dir);
    std::fs::remove_file(&filler).expect("free");
    resume(&run_dir, &[]);
}

#[test]
fn an_ssh_connection_dropping_mid_run() {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("SKIPPED: the ssh hosts need root (tests/env/ssh.sh)");
        return;
    }
    let Some(env) = std::env::var_os("SRT_GRAPH_SSH_ENV").map(PathBuf::from) else {
        panic!("SRT_GRAPH_SSH_ENV is not set: bring the hosts up with `bash tests/env/ssh.sh up` (scripts/test.sh does)");
    };
    let _one = ONE_RUN.lock().unwrap_or_else(|p| p.into_inner());
    let dir = tempfile::tempdir().expect("tmp");
    let config = env.join("ssh_config");
    let args = [
        "--executor",
        "ssh",
        "--hosts",
        "h1,h2,h3,h4",
        "--ssh-config",
        config.to_str().expect("utf-8"),
    ];
    let mut live = start(dir.path(), &demo("0.3", "", 60, "4x16x64"), &args);
    live.wait_event("step_finished", "wait-healthy");
    // Drop every connection to host h3: kill its sshd's per-connection processes (the network's view:
    // the TCP connection is gone; the remote processes, in sessions of their own, live on).
    let sshd: i32 = std::fs::read_to_string(env.join("sshd-3.pid"))
        .expect("sshd pid")
        .trim()
        .parse()
        .expect("pid");
    let at = unix_now();
    for pid in sshd_connections(sshd) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
    let (code, err, _dir, run_dir) = live.finish();
    assert_eq!(code, Some(3), "{err}");
    assert!(err.contains("on h3 exited while the run was live"), "{err}");
    let ms = detection_ms(&run_dir, at);
    eprintln!("FAULT ssh connection dropped: detected in {ms:.0} ms");
    assert!(ms <= 2000.0, "{ms} ms");
    // Teardown reached h3 again (a new connection) and stopped what still ran there.
    assert_no_survivors(&run_dir);
    resume(&run_dir, &[]);
}

/// Every sshd process below the listening one (the per-connection monitor and session processes), not
/// the commands they started.
fn sshd_connections(listener: i32) -> Vec<i32> {
    let mut out = Vec::new();
    let mut todo = vec![listener];
    while let Some(p) = todo.pop() {
        for c in children_of(p) {
            let comm = std::fs::read_to_string(format!("/proc/{c}/comm")).unwrap_or_default();
            if comm.trim().starts_with("sshd") {
                out.push(c);
                todo.push(c);
            }
        }
    }
    out
}

fn children_of(parent: i32) -> Vec<i32> {
    std::fs::read_dir("/proc")
        .map(|d| {
            d.flatten()
                .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
                .filter(|pid| {
                    std::fs::read_to_string(format!("/proc/{pid}/stat"))
                        .ok()
                        .and_then(|s| {
                            let rest = &s[s.rfind(')')? + 1..];
                            rest.split_whitespace().nth(1)?.parse::<i32>().ok()
                        })
                        == Some(parent)
                })
                .collect()
        })
        .unwrap_or_default()
}
