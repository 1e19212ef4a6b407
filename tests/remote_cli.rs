//! The ssh and Slurm executors against real sshd and a real Slurm cluster on this machine, set up once
//! per test run by `tests/env/ssh.sh` and `tests/env/slurm.sh` (scripts/test.sh brings them up, exports
//! `SRT_GRAPH_SSH_ENV` / `SRT_GRAPH_SLURM_ENV` and takes them down). Workers are mocked; sshd, srun,
//! sbatch, the router and nginx are real.
//!
//! Not root: every test here says it is skipped and why. Root without the environments: the tests fail
//! and say how to bring them up (never a silent pass).

mod common;

use common::slurm::{
    agent_pid, job_log, resume_in_new_allocation, slurm_cmd, slurm_env, submit, wait_job,
};
use common::{assert_no_survivors, env_dir, path_env};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// One at a time: the demo's nodes are 127.0.1.1–4 under both executors (ssh hosts and Slurm NodeAddr),
/// and the ssh tests count connections in the sshd logs, which any other ssh test would add to.
static SHARED_HOSTS: Mutex<()> = Mutex::new(());

fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_srt-graph"))
}

fn ssh_env() -> Option<PathBuf> {
    env_dir("SRT_GRAPH_SSH_ENV", "tests/env/ssh.sh")
}

fn recipe_file(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text.replace("@DIR@", &dir.display().to_string())).expect("write recipe");
    p
}

fn run_ssh(env: &Path, dir: &Path, args: &[&str]) -> std::process::Output {
    std::process::Command::new(bin())
        .current_dir(dir)
        .arg("run")
        .args(args)
        .arg("--ssh-config")
        .arg(env.join("ssh_config"))
        .args(["--executor", "ssh", "-q"])
        .env("PATH", path_env())
        .env_remove("SLURM_JOB_ID")
        .env_remove("SRTSLURM_CONFIG")
        .output()
        .expect("run")
}

/// sshd logs one `Accepted publickey` line per connection.
fn connections(env: &Path, host: usize) -> usize {
    std::fs::read_to_string(env.join(format!("sshd-{host}.log")))
        .unwrap_or_default()
        .matches("Accepted publickey")
        .count()
}

/// The plan ran on these nodes, reached at 127.0.1.1–4 (their sshd / NodeAddr addresses).
fn assert_nodes(run_dir: &Path, names: &[&str]) {
    let plan: serde_json::Value =
        serde_json::from_slice(&std::fs::read(run_dir.join("plan.json")).expect("plan"))
            .expect("json");
    assert_eq!(plan["nodes"], serde_json::json!(names));
    assert_eq!(
        plan["addresses"],
        serde_json::json!(["127.0.1.1", "127.0.1.2", "127.0.1.3", "127.0.1.4"])
    );
}

/// What people look at after a remote run: a fingerprint per node, the rollup, the report, and the
/// monitor's view read from the run directory alone.
fn assert_results(run_dir: &Path, nodes: &[&str]) {
    for n in nodes {
        let f = std::fs::read(run_dir.join(format!("fingerprints/{n}.json"))).expect("fingerprint");
        let f: serde_json::Value = serde_json::from_slice(&f).expect("json");
        assert_eq!(f["node"], *n);
        assert!(f["python"]["packages"].is_array(), "{f}");
    }
    for file in [
        "benchmark-rollup.json",
        "benchmark-rollup.csv",
        "report.html",
        "recipe.lock.yaml",
        "job.json",
    ] {
        assert!(run_dir.join(file).is_file(), "{file}");
    }
    let once = std::process::Command::new(bin())
        .args(["monitor", "--once"])
        .arg(run_dir)
        .output()
        .expect("monitor");
    let once = String::from_utf8_lossy(&once.stdout);
    assert!(
        once.contains("— succeeded —") && once.contains("0 failed"),
        "{once}"
    );
}

fn bench_files(run_dir: &Path) -> usize {
    std::fs::read_dir(run_dir.join("sa-bench_isl_1024_osl_128"))
        .map(|d| {
            d.flatten()
                .filter(|f| {
                    std::fs::read(f.path())
                        .ok()
                        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
                        .is_some_and(|v| v["completed"].as_u64().unwrap_or(0) > 0)
                })
                .count()
        })
        .unwrap_or(0)
}

#[test]
fn ssh_runs_the_demo_across_four_hosts_over_one_connection_each() {
    let Some(env) = ssh_env() else { return };
    let _ports = SHARED_HOSTS.lock().unwrap_or_else(|p| p.into_inner());
    let dir = tempfile::tempdir().expect("tmp");
    let before: Vec<usize> = (1..=4).map(|h| connections(&env, h)).collect();
    let run_dir = dir.path().join("run");
    let out = run_ssh(
        &env,
        dir.path(),
        &[
            "--hosts",
            "h1,h2,h3,h4",
            "--grace",
            "3s",
            "--run-dir",
            run_dir.to_str().expect("utf-8"),
        ],
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("ssh executor"), "{err}");
    // Node k is host hk, reached at the address `ssh -G` resolves.
    assert_nodes(&run_dir, &["h1", "h2", "h3", "h4"]);
    assert_eq!(bench_files(&run_dir), 3, "{err}");
    // Logs streamed back, with the remote pid line first.
    let log = std::fs::read_to_string(run_dir.join("logs/router-2.log")).expect("log");
    assert!(log.contains("srt-graph-pid"), "{log}");
    assert_results(&run_dir, &["h1", "h2", "h3", "h4"]);
    // 20 steps, some of them 5 to a host, and teardown's signals: still one connection per host.
    let after: Vec<usize> = (1..=4).map(|h| connections(&env, h)).collect();
    let opened: Vec<usize> = after.iter().zip(&before).map(|(a, b)| a - b).collect();
    assert_eq!(opened, [1, 1, 1, 1], "connections opened per host");
    assert_no_survivors(&run_dir);
}

#[test]
fn ssh_host_key_and_auth_failures_stop_before_anything_starts() {
    let Some(env) = ssh_env() else { return };
    let _hosts = SHARED_HOSTS.lock().unwrap_or_else(|p| p.into_inner());
    let dir = tempfile::tempdir().expect("tmp");
    let recipe = recipe_file(
        dir.path(),
        "r.yaml",
        "name: two\nsteps:\n  - {name: a, run: 'touch @DIR@/ran', node: 0}\n",
    );
    for (host, says) in [
        ("badkey", "host key does not match"),
        ("noauth", "authentication failed"),
    ] {
        let started = Instant::now();
        let out = run_ssh(
            &env,
            dir.path(),
            &[recipe.to_str().expect("utf-8"), "--hosts", host],
        );
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{err}");
        assert!(err.contains(says), "{host}: {err}");
        assert!(err.contains("nothing was started"), "{err}");
        // Not retried: one attempt, well under a backoff.
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{host} took {:?}",
            started.elapsed()
        );
        assert!(!dir.path().join("ran").exists());
    }
}

#[test]
fn ssh_opens_another_connection_only_when_sshds_session_limit_is_reached() {
    let Some(env) = ssh_env() else { return };
    let _hosts = SHARED_HOSTS.lock().unwrap_or_else(|p| p.into_inner());
    let dir = tempfile::tempdir().expect("tmp");
    // 12 services at once on one host, then a task: sshd allows 10 sessions per connection and the pool
    // puts at most 8 on each, so 13 concurrent commands need exactly 2 connections.
    let mut recipe = String::from("name: many\nsteps:\n");
    for k in 0..12 {
        recipe.push_str(&format!(
            "  - {{name: s{k}, run: 'sleep 60', service: true}}\n"
        ));
    }
    let after: Vec<String> = (0..12).map(|k| format!("s{k}")).collect();
    recipe.push_str(&format!(
        "  - {{name: done, run: 'sleep 1', after: [{}]}}\n",
        after.join(", ")
    ));
    let recipe = recipe_file(dir.path(), "many.yaml", &recipe);
    let before = connections(&env, 4);
    let run_dir = dir.path().join("run");
    let out = run_ssh(
        &env,
        dir.path(),
        &[
            recipe.to_str().expect("utf-8"),
            "--hosts",
            "h4",
            "--grace",
            "2s",
            "--run-dir",
            run_dir.to_str().expect("utf-8"),
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        connections(&env, 4) - before,
        2,
        "connections opened for 13 commands"
    );
    assert_no_survivors(&run_dir);
}

const SHELL_SAFETY: &str = "name: safe\nsteps:\n  - name: show\n    run: 'printf %s \"$EVIL\" > @DIR@/out'\n    env:\n      EVIL: @EVIL@\n";

fn evil(dir: &Path) -> String {
    format!(
        "$(touch {0}/canary1); `touch {0}/canary2`; echo \"q\" 'single' && touch {0}/canary3\nnewline  two spaces \\ back",
        dir.display()
    )
}

fn check_verbatim(dir: &Path) {
    let got = std::fs::read_to_string(dir.join("out")).expect("the step ran");
    assert_eq!(got, evil(dir));
    for c in ["canary1", "canary2", "canary3"] {
        assert!(
            !dir.join(c).exists(),
            "{c} exists: a recipe value was executed"
        );
    }
}

fn safety_recipe(dir: &Path) -> PathBuf {
    let text = SHELL_SAFETY.replace(
        "@EVIL@",
        &serde_json::to_string(&evil(dir)).expect("json string"),
    );
    recipe_file(dir, "safe.yaml", &text)
}

#[test]
fn ssh_recipe_values_arrive_verbatim_and_execute_nothing() {
    let Some(env) = ssh_env() else { return };
    let _hosts = SHARED_HOSTS.lock().unwrap_or_else(|p| p.into_inner());
    let dir = tempfile::tempdir().expect("tmp");
    let recipe = safety_recipe(dir.path());
    let run_dir = dir.path().join("run");
    let hostfile = dir.path().join("hosts");
    std::fs::write(&hostfile, "# the allocation\nh2 slots=8\n\nh3\n").expect("hostfile");
    let out = run_ssh(
        &env,
        dir.path(),
        &[
            recipe.to_str().expect("utf-8"),
            "--hostfile",
            hostfile.to_str().expect("utf-8"),
            "--run-dir",
            run_dir.to_str().expect("utf-8"),
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    check_verbatim(dir.path());
}

#[test]
fn ssh_resume_adopts_services_left_by_a_killed_orchestrator() {
    let Some(env) = ssh_env() else { return };
    let _ports = SHARED_HOSTS.lock().unwrap_or_else(|p| p.into_inner());
    let dir = tempfile::tempdir().expect("tmp");
    let run_dir = dir.path().join("run");
    let mut child = std::process::Command::new(bin())
        .current_dir(dir.path())
        .args(["run", "--executor", "ssh", "--hosts", "h1,h2,h3,h4", "-q"])
        .args(["--grace", "3s", "--run-dir"])
        .arg(&run_dir)
        .arg("--ssh-config")
        .arg(env.join("ssh_config"))
        .env("PATH", path_env())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn");
    // Kill the orchestrator (SIGKILL: no teardown) once the gate passed.
    common::wait_for_event(&run_dir, &mut child, "step_finished", "wait-healthy");
    let _ = child.kill();
    let _ = child.wait();
    let err = common::resume_ok(&run_dir, &["--keep-up"]);
    common::assert_adopted(&err, &["prefill-0", "decode-1", "router-2", "nginx"]);
    assert_eq!(bench_files(&run_dir), 3, "{err}");
    // Kept up, then brought down from the journal over ssh.
    let plan: serde_json::Value =
        serde_json::from_slice(&std::fs::read(run_dir.join("plan.json")).expect("plan"))
            .expect("json");
    assert!(plan["endpoint"].as_str().is_some());
    let down = std::process::Command::new(bin())
        .args(["down", "--grace", "3s"])
        .arg(&run_dir)
        .env("PATH", path_env())
        .output()
        .expect("down");
    let said = String::from_utf8_lossy(&down.stderr);
    assert!(down.status.success(), "{said}");
    assert!(said.contains("stopping router-3"), "{said}");
    assert_no_survivors(&run_dir);
}

#[test]
fn node_op_reports_an_interface_address() {
    let out = std::process::Command::new(bin())
        .args(["node-op", "address", "lo"])
        .output()
        .expect("node-op");
    assert!(out.status.success());
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "127.0.0.1");
}

// ---- Slurm ----

#[test]
fn slurm_submit_runs_the_demo_on_four_nodes() {
    let Some(env) = slurm_env() else { return };
    let _ports = SHARED_HOSTS.lock().unwrap_or_else(|p| p.into_inner());
    let dir = tempfile::tempdir().expect("tmp");
    // The script, before anything is submitted.
    let dry = slurm_cmd(&env, bin().to_str().expect("utf-8"))
        .current_dir(dir.path())
        .args(["submit", "--dry-run", "--run-dir", "/x/run"])
        .output()
        .expect("dry run");
    let script = String::from_utf8_lossy(&dry.stdout);
    assert!(script.contains("#SBATCH --nodes=4\n"), "{script}");
    assert!(script.contains("--executor slurm"), "{script}");
    assert!(
        !script.contains("--gpus-per-node"),
        "mock workers need no GPU: {script}"
    );
    assert!(!Path::new("/x/run").exists());

    let (job, run_dir) = submit(&env, dir.path(), &["--", "--grace", "3s"]);
    // Recipe and script are in the run directory before the job starts (srt-slurm's race).
    assert!(run_dir.join("recipe.yaml").is_file() && run_dir.join("sbatch.sh").is_file());
    let code = wait_job(&env, &job, Duration::from_secs(180));
    let log = job_log(&run_dir, &job);
    assert_eq!(code, "0:0", "{log}");
    assert!(log.contains("slurm executor"), "{log}");
    // Nodes from SLURM_JOB_NODELIST, addresses from Slurm's NodeAddr.
    assert_nodes(&run_dir, &["node1", "node2", "node3", "node4"]);
    assert_eq!(bench_files(&run_dir), 3, "{log}");
    // One node agent per node, all four started by one srun (not one per node, nor one per
    // process), started and watched every process there; each step's output is in its log,
    // timestamped.
    assert!(run_dir.join("logs/agent-nodes.log").is_file(), "{log}");
    for node in ["node1", "node2", "node3", "node4"] {
        assert!(
            !run_dir.join(format!("logs/agent-{node}.log")).exists(),
            "a host agent of its own on {node}: {log}"
        );
    }
    let worker = std::fs::read_to_string(run_dir.join("logs/decode-1.log")).expect("log");
    assert!(
        worker.lines().next().is_some_and(|l| l.starts_with('[')),
        "{worker}"
    );
    assert_results(&run_dir, &["node1", "node2", "node3", "node4"]);
    assert_no_survivors(&run_dir);
}

#[test]
fn slurm_keep_up_holds_the_allocation_until_down() {
    let Some(env) = slurm_env() else { return };
    let _ports = SHARED_HOSTS.lock().unwrap_or_else(|p| p.into_inner());
    let dir = tempfile::tempdir().expect("tmp");
    let (job, run_dir) = submit(&env, dir.path(), &["--", "--keep-up", "--grace", "3s"]);
    // The run finishes; its services stay up in the job.
    let deadline = Instant::now() + Duration::from_secs(180);
    while !std::fs::read_to_string(run_dir.join("journal.jsonl"))
        .unwrap_or_default()
        .contains(r#""event":"run_finished""#)
    {
        if Instant::now() > deadline {
            let _ = slurm_cmd(&env, "scancel").arg(&job).status();
            panic!("the run did not finish: {}", job_log(&run_dir, &job));
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    std::thread::sleep(Duration::from_secs(1));
    let queued = slurm_cmd(&env, "squeue")
        .args(["-h", "-j", &job])
        .output()
        .expect("squeue");
    assert!(
        !String::from_utf8_lossy(&queued.stdout).trim().is_empty(),
        "the job ended with its services: {}",
        job_log(&run_dir, &job)
    );
    // `down` from outside the allocation reaches the nodes through the recorded job.
    let down = slurm_cmd(&env, bin().to_str().expect("utf-8"))
        .args(["down", "--grace", "3s"])
        .arg(&run_dir)
        .output()
        .expect("down");
    let said = String::from_utf8_lossy(&down.stderr);
    assert!(down.status.success(), "{said}");
    assert!(said.contains("stopping decode-1"), "{said}");
    let code = wait_job(&env, &job, Duration::from_secs(60));
    assert_eq!(code, "0:0", "{}", job_log(&run_dir, &job));
    assert!(job_log(&run_dir, &job).contains("releasing the allocation"));
    assert_no_survivors(&run_dir);
}

#[test]
fn scancel_signalling_the_batch_step_tears_the_run_down_in_order() {
    let Some(env) = slurm_env() else { return };
    let _ports = SHARED_HOSTS.lock().unwrap_or_else(|p| p.into_inner());
    let dir = tempfile::tempdir().expect("tmp");
    let (job, run_dir) = submit(&env, dir.path(), &["--", "--grace", "2s"]);
    let deadline = Instant::now() + Duration::from_secs(180);
    while !std::fs::read_to_string(run_dir.join("journal.jsonl"))
        .unwrap_or_default()
        .contains(r#""event":"step_finished","step":"wait-healthy""#)
    {
        if Instant::now() > deadline {
            let _ = slurm_cmd(&env, "scancel").arg(&job).status();
            panic!(
                "the run did not reach the gate: {}",
                job_log(&run_dir, &job)
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    // SIGTERM to the batch step only (the orchestrator): it tears the services down in order, then the
    // job ends. (A plain `scancel` signals every step at once; the run then records them as stopped.)
    let ok = slurm_cmd(&env, "scancel")
        .args(["--batch", "--signal=TERM"])
        .arg(&job)
        .status()
        .expect("scancel")
        .success();
    assert!(ok);
    wait_job(&env, &job, Duration::from_secs(60));
    let journal = std::fs::read_to_string(run_dir.join("journal.jsonl")).expect("journal");
    assert!(
        journal.contains(r#""event":"service_stopped""#),
        "{journal}"
    );
    assert!(
        journal.contains(r#""status":"interrupted""#),
        "{}",
        job_log(&run_dir, &job)
    );
    assert_no_survivors(&run_dir);
}

#[test]
fn slurm_recipe_values_arrive_verbatim_and_execute_nothing() {
    let Some(env) = slurm_env() else { return };
    let dir = tempfile::tempdir().expect("tmp");
    let recipe = safety_recipe(dir.path());
    let (job, run_dir) = submit(&env, dir.path(), &[recipe.to_str().expect("utf-8")]);
    let code = wait_job(&env, &job, Duration::from_secs(60));
    assert_eq!(code, "0:0", "{}", job_log(&run_dir, &job));
    check_verbatim(dir.path());
}

#[test]
fn slurm_resume_finishes_a_failed_run_in_a_new_allocation() {
    let Some(env) = slurm_env() else { return };
    let dir = tempfile::tempdir().expect("tmp");
    let recipe = recipe_file(
        dir.path(),
        "r.yaml",
        "name: twice\nsteps:\n  - {name: first, run: 'echo x >> @DIR@/first'}\n  - {name: gated, after: [first], run: 'test -e @DIR@/allow'}\n",
    );
    let (job, run_dir) = submit(&env, dir.path(), &[recipe.to_str().expect("utf-8")]);
    let code = wait_job(&env, &job, Duration::from_secs(60));
    assert_ne!(
        code,
        "0:0",
        "the gated step should fail: {}",
        job_log(&run_dir, &job)
    );
    std::fs::write(dir.path().join("allow"), "").expect("write");
    // A new allocation resumes it: `first` is kept, `gated` runs again.
    let (job2, code, log) = resume_in_new_allocation(&env, dir.path(), &run_dir, 1);
    assert_eq!(code, "0:0", "{log}");
    assert!(log.contains("keep    first"), "{log}");
    assert!(log.contains("run     gated"), "{log}");
    assert_eq!(
        std::fs::read_to_string(dir.path().join("first")).expect("first"),
        "x\n",
        "`first` ran again"
    );
    let meta: serde_json::Value =
        serde_json::from_slice(&std::fs::read(run_dir.join("run.json")).expect("run.json"))
            .expect("json");
    assert_eq!(meta["slurm_job"], serde_json::json!(job2));
}

/// Credentials in the recipe-wide environment and in steps on several nodes: a service that holds its
/// environment for the whole run, and a task that prints its own.
const SECRETS: &str = "name: secrets\nsecret_env: [LISTED]\nenvironment:\n  LISTED: CANARY_listed_4d2e\nsteps:\n  - name: hold\n    node: 1\n    service: true\n    run: 'env | sort; exec sleep 60'\n    env:\n      HF_TOKEN: hf_CANARY_token_7f3a\n  - name: print-env\n    node: 2\n    after: [hold]\n    run: 'env | sort; sleep 2'\n    env:\n      DB_PASSWORD: CANARY_step_8a6f\n";
const SECRET_VALUES: [&str; 3] = [
    "CANARY_listed_4d2e",
    "hf_CANARY_token_7f3a",
    "CANARY_step_8a6f",
];

/// What a secrets run must show: the values reached the processes (the log has the names), were
/// replaced before the logs were written, and the run directory keeps them.
fn check_secrets_run(run_dir: &Path, hits: &[String], samples: usize) {
    assert!(hits.is_empty(), "secret values in command lines: {hits:#?}");
    assert!(samples > 1000, "only {samples} command lines sampled");
    let log = std::fs::read_to_string(run_dir.join("logs/print-env.log")).expect("log");
    assert!(log.contains("DB_PASSWORD=<redacted>"), "{log}");
    assert!(log.contains("LISTED=<redacted>"), "{log}");
    let held = std::fs::read_to_string(run_dir.join("logs/hold.log")).expect("log");
    assert!(held.contains("HF_TOKEN=<redacted>"), "{held}");
    common::assert_run_dir_keeps_secrets(run_dir, &SECRET_VALUES, &["recipe.yaml"]);
    assert_no_survivors(run_dir);
}

#[test]
fn ssh_secrets_stay_out_of_every_command_line_and_log() {
    let Some(env) = ssh_env() else { return };
    let _hosts = SHARED_HOSTS.lock().unwrap_or_else(|p| p.into_inner());
    let dir = tempfile::tempdir().expect("tmp");
    let recipe = recipe_file(dir.path(), "secrets.yaml", SECRETS);
    let run_dir = dir.path().join("run");
    let watch = common::ArgvWatch::start(&SECRET_VALUES);
    let out = run_ssh(
        &env,
        dir.path(),
        &[
            recipe.to_str().expect("utf-8"),
            "--hosts",
            "h1,h2,h3",
            "--grace",
            "2s",
            "--run-dir",
            run_dir.to_str().expect("utf-8"),
        ],
    );
    let (samples, hits) = watch.finish();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    for v in SECRET_VALUES {
        assert!(!err.contains(v), "{err}");
    }
    check_secrets_run(&run_dir, &hits, samples);
}

#[test]
fn slurm_secrets_stay_out_of_every_command_line_and_log() {
    let Some(env) = slurm_env() else { return };
    let _hosts = SHARED_HOSTS.lock().unwrap_or_else(|p| p.into_inner());
    let dir = tempfile::tempdir().expect("tmp");
    let recipe = recipe_file(dir.path(), "secrets.yaml", SECRETS);
    let watch = common::ArgvWatch::start(&SECRET_VALUES);
    let (job, run_dir) = submit(
        &env,
        dir.path(),
        &[recipe.to_str().expect("utf-8"), "--", "--grace", "2s"],
    );
    let code = wait_job(&env, &job, Duration::from_secs(90));
    let (samples, hits) = watch.finish();
    let log = job_log(&run_dir, &job);
    assert_eq!(code, "0:0", "{log}");
    for v in SECRET_VALUES {
        assert!(!log.contains(v), "{log}");
    }
    check_secrets_run(&run_dir, &hits, samples);
}

#[test]
fn slurm_a_killed_node_agent_fails_the_run_by_name_and_resume_brings_a_new_one() {
    let Some(env) = slurm_env() else { return };
    let dir = tempfile::tempdir().expect("tmp");
    let recipe = recipe_file(
        dir.path(),
        "r.yaml",
        "name: agent-loss\nsteps:\n  - {name: hold, node: 1, service: true, run: 'exec sleep 600'}\n  - {name: work, after: [hold], run: 'echo ran >> @DIR@/work; test -e @DIR@/quick || sleep 60'}\n",
    );
    let (job, run_dir) = submit(
        &env,
        dir.path(),
        &[recipe.to_str().expect("utf-8"), "--", "--grace", "2s"],
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    let pid = loop {
        let started = std::fs::read_to_string(run_dir.join("journal.jsonl"))
            .unwrap_or_default()
            .contains(r#""event":"spawned","step":"work""#);
        if let Some(pid) = agent_pid(&job, "node2").filter(|_| started) {
            break pid;
        }
        if Instant::now() > deadline {
            let _ = slurm_cmd(&env, "scancel").arg(&job).status();
            panic!("no agent on node2: {}", job_log(&run_dir, &job));
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let killed_at = Instant::now();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGKILL,
    )
    .expect("kill the agent");
    let code = wait_job(&env, &job, Duration::from_secs(60));
    let log = job_log(&run_dir, &job);
    assert_ne!(code, "0:0", "{log}");
    assert!(
        killed_at.elapsed() < Duration::from_secs(30),
        "the loss took {:?} to end the job",
        killed_at.elapsed()
    );
    assert!(
        log.contains("the node agent on node2 ended (srun: task 1: Killed)"),
        "the failure names the agent: {log}"
    );
    assert_no_survivors(&run_dir);
    // A new allocation, new agents: the run completes.
    std::fs::write(dir.path().join("quick"), "").expect("write");
    let (_, code, log) = resume_in_new_allocation(&env, dir.path(), &run_dir, 2);
    assert_eq!(code, "0:0", "{log}");
    assert!(log.contains("run     hold"), "{log}");
    assert_eq!(
        std::fs::read_to_string(dir.path().join("work")).expect("work"),
        "ran\nran\n"
    );
    assert_no_survivors(&run_dir);
}

/// Every process under `root` (by parent links), `root` first.
fn process_tree(root: i32) -> Vec<i32> {
    let parents: Vec<(i32, i32)> = std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let pid: i32 = e.file_name().to_str()?.parse().ok()?;
            Some((pid, srt_graph_engine::local::proc_stat(pid)?.ppid))
        })
        .collect();
    let mut out = vec![root];
    let mut i = 0;
    while i < out.len() {
        let p = out[i];
        out.extend(parents.iter().filter(|(_, pp)| *pp == p).map(|(c, _)| *c));
        i += 1;
    }
    out
}

#[test]
fn ssh_a_host_that_stops_answering_fails_the_run_by_name() {
    let Some(env) = ssh_env() else { return };
    let _hosts = SHARED_HOSTS.lock().unwrap_or_else(|p| p.into_inner());
    let dir = tempfile::tempdir().expect("tmp");
    let recipe = recipe_file(
        dir.path(),
        "r.yaml",
        "name: host-loss\nsteps:\n  - {name: hold, node: 2, service: true, run: 'exec sleep 600'}\n  - {name: work, after: [hold], run: 'sleep 90'}\n",
    );
    let run_dir = dir.path().join("run");
    let mut child = std::process::Command::new(bin())
        .current_dir(dir.path())
        .arg("run")
        .arg(&recipe)
        .args([
            "--executor",
            "ssh",
            "--hosts",
            "h1,h2,h3",
            "-q",
            "--grace",
            "2s",
        ])
        .arg("--run-dir")
        .arg(&run_dir)
        .arg("--ssh-config")
        .arg(env.join("ssh_config"))
        .env("PATH", path_env())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    common::wait_for_event(&run_dir, &mut child, "spawned", "work");
    // h3 hangs: its sshd and everything under it (the connection, the session, `hold`) frozen.
    let sshd: i32 = std::fs::read_to_string(env.join("sshd-3.pid"))
        .expect("sshd pid")
        .trim()
        .parse()
        .expect("pid");
    let frozen = process_tree(sshd);
    let signal = |sig| {
        for &p in &frozen {
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(p), sig);
        }
    };
    signal(nix::sys::signal::Signal::SIGSTOP);
    let at = Instant::now();
    let out = child.wait_with_output().expect("wait");
    let took = at.elapsed();
    signal(nix::sys::signal::Signal::SIGCONT);
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    eprintln!("froze h3 → run ended: {took:?}");
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(took < Duration::from_secs(30), "{took:?}: {err}");
    assert!(
        err.contains("node h3 lost (host not answering: ") && err.contains("): hold was on it"),
        "{err}"
    );
    // Everything else was torn down; what was on h3 could not be reached, and is ended here.
    let left: Vec<String> = common::survivors(&run_dir)
        .into_iter()
        .map(|(s, _)| s)
        .collect();
    assert!(left.iter().all(|s| s == "hold"), "{left:?}");
    common::kill_all(&run_dir);
    assert_no_survivors(&run_dir);
}
