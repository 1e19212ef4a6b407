//! The cluster failing under a live run on the Slurm executor (issue 27). A node that goes away: Slurm
//! drains it, its slurmd dies, or it stops answering (its agent frozen, as a hung kernel would leave
//! it). The run fails within seconds naming the node, why, and what ran there; the rest is torn down;
//! the journal records the loss; and `submit --resume` completes the run on the other nodes. The
//! controller going away for 20 s: the run carries on.
//!
//! These tests change the shared test cluster's node states, so they run one at a time, in a binary
//! of their own (the cluster lane runs binaries one after another).

mod common;

use common::slurm::{
    agent_pid, job_log, resume_in_allocation, set_node_state, slurm_cmd, slurm_env, submit,
    wait_job,
};
use common::{assert_no_survivors, path_env};
use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, Instant};

static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

const RECIPE: &str = "name: node-loss\nsteps:\n  - {name: hold, node: 1, service: true, run: 'exec sleep 600'}\n  - {name: work, after: [hold], run: 'echo ran >> @DIR@/work; echo $SLURM_NTASKS $SLURM_PROCID $SLURM_STEP_NODELIST > @DIR@/step-env; test -e @DIR@/quick || sleep 90'}\n";

/// Submits the two-node recipe and waits until `work` runs; the Slurm node `hold` is on.
fn start(env: &Path, dir: &Path) -> (String, std::path::PathBuf, String) {
    let recipe = dir.join("r.yaml");
    std::fs::write(&recipe, RECIPE.replace("@DIR@", &dir.display().to_string())).expect("recipe");
    let (job, run_dir) = submit(
        env,
        dir,
        &[recipe.to_str().expect("utf-8"), "--", "--grace", "2s"],
    );
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let journal = std::fs::read_to_string(run_dir.join("journal.jsonl")).unwrap_or_default();
        if journal.contains(r#""event":"spawned","step":"work""#) {
            break;
        }
        if Instant::now() > deadline {
            let _ = slurm_cmd(env, "scancel").arg(&job).status();
            panic!("work never started: {}", job_log(&run_dir, &job));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let plan: serde_json::Value =
        serde_json::from_slice(&std::fs::read(run_dir.join("plan.json")).expect("plan"))
            .expect("json");
    let node = plan["nodes"][1].as_str().expect("node 1").to_string();
    // Started by its node's agent, one task of a step across the nodes, it sees a one-task step on
    // its node (as a step's own srun would give it).
    let first = plan["nodes"][0].as_str().expect("node 0");
    assert_eq!(
        std::fs::read_to_string(dir.join("step-env")).unwrap_or_default(),
        format!("1 0 {first}\n")
    );
    (job, run_dir, node)
}

fn node_lost_records(run_dir: &Path) -> Vec<serde_json::Value> {
    common::journal_events(run_dir, "node_lost")
}

/// Waits for the job a loss at `since` ended: bounded, failed, within 30 s, naming `expect`. Its log.
fn ended_by_loss(env: &Path, job: &str, run_dir: &Path, since: Instant, expect: &str) -> String {
    let code = wait_job(env, job, Duration::from_secs(90));
    let took = since.elapsed();
    eprintln!("{expect} → job ended: {took:?}");
    let log = job_log(run_dir, job);
    assert_ne!(code, "0:0", "{log}");
    assert!(
        took < Duration::from_secs(30),
        "the loss took {took:?} to end the job"
    );
    assert!(
        log.contains(expect),
        "the failure names the node, why and what ran there: {log}"
    );
    log
}

#[test]
fn slurm_a_drained_node_fails_the_run_by_name_and_resume_excludes_it() {
    let Some(env) = slurm_env() else { return };
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().expect("tmp");
    let (job, run_dir, node) = start(&env, dir.path());
    set_node_state(&env, &node, "drain");
    let drained_at = Instant::now();
    let expect = format!("node {node} lost (drained: srt-graph test): hold was on it");
    let ended =
        std::panic::catch_unwind(|| ended_by_loss(&env, &job, &run_dir, drained_at, &expect));
    set_node_state(&env, &node, "resume");
    if let Err(e) = ended {
        std::panic::resume_unwind(e);
    }
    let lost = node_lost_records(&run_dir);
    assert_eq!(lost.len(), 1, "{lost:?}");
    assert_eq!(lost[0]["node"], node.as_str());
    assert_eq!(lost[0]["steps"], serde_json::json!(["hold"]));
    // Drained is not dead: what ran there was stopped too.
    assert_no_survivors(&run_dir);
    // `status` says so, and how to go on.
    let status = common::status(&run_dir);
    assert!(
        status.contains(&format!(
            "lost: node {node} (drained: srt-graph test), with hold; `srt-graph submit --resume {}` resumes without it",
            run_dir.display()
        )),
        "{status}"
    );
    // And `status --json`, for CI.
    let v = common::status_json(&run_dir);
    assert_eq!(v["finished"], "failed", "{v}");
    assert!(
        v["failure"]
            .as_str()
            .is_some_and(|f| f.starts_with(&format!("node {node} lost (drained: srt-graph test)"))),
        "{v}"
    );
    assert_eq!(
        v["lost_nodes"],
        serde_json::json!([{"node": node, "reason": "drained: srt-graph test", "steps": ["hold"]}]),
        "{v}"
    );

    // Bad input, refused before anything starts: a node the run never used; too few nodes left.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_srt-graph"))
        .args([
            "resume",
            run_dir.to_str().expect("utf-8"),
            "--exclude",
            "node9",
        ])
        .env("PATH", path_env())
        .env_remove("SLURM_JOB_ID")
        .output()
        .expect("resume");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("--exclude node9: the run never ran on node9"),
        "{err}"
    );
    let plan: serde_json::Value =
        serde_json::from_slice(&std::fs::read(run_dir.join("plan.json")).expect("plan"))
            .expect("json");
    let first = plan["nodes"][0].as_str().expect("node 0").to_string();
    let (_, code, log) = resume_in_allocation(
        &env,
        dir.path(),
        &run_dir,
        &["-w", &format!("{first},{node}")],
        &["--exclude", &node],
        Duration::from_secs(90),
    );
    assert_ne!(code, "0:0", "{log}");
    assert!(
        log.contains(&format!(
            "the recipe needs 2 node(s); the allocation has 1 once {node} is left out ({first})"
        )) && log.contains("nothing was started"),
        "{log}"
    );

    // Resume around it: `submit --resume` writes the lost node into the job's `--exclude` and the
    // resume's, and the run completes on the others.
    std::fs::write(dir.path().join("quick"), "").expect("write");
    let out = slurm_cmd(&env, env!("CARGO_BIN_EXE_srt-graph"))
        .args([
            "submit",
            "--json",
            "--resume",
            run_dir.to_str().expect("utf-8"),
        ])
        .output()
        .expect("submit --resume");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The line CI reads, as `submit --json` prints it, saying which nodes the job leaves out.
    let line: serde_json::Value = serde_json::from_slice(&out.stdout).expect("one JSON line");
    assert_eq!(line["status"], "submitted", "{line}");
    assert_eq!(line["excluded_nodes"], serde_json::json!([node]), "{line}");
    let job = line["slurm_job_id"].as_str().expect("job id").to_string();
    let script = std::fs::read_to_string(run_dir.join("sbatch-resume.sh")).expect("script");
    assert!(
        script.contains(&format!("#SBATCH --exclude={node}\n")),
        "{script}"
    );
    assert!(
        script.contains(&format!(" resume {} --exclude {node}\n", run_dir.display())),
        "{script}"
    );
    let code = wait_job(&env, &job, Duration::from_secs(90));
    let log = job_log(&run_dir, &job);
    assert_eq!(code, "0:0", "{log}");
    assert!(log.contains(&format!("note: {node} left out")), "{log}");
    let plan: serde_json::Value =
        serde_json::from_slice(&std::fs::read(run_dir.join("plan.json")).expect("plan"))
            .expect("json");
    let nodes: Vec<&str> = plan["nodes"]
        .as_array()
        .expect("nodes")
        .iter()
        .filter_map(|n| n.as_str())
        .collect();
    assert!(!nodes.contains(&node.as_str()), "{nodes:?} {log}");
    assert_eq!(
        std::fs::read_to_string(dir.path().join("work")).expect("work"),
        "ran\nran\n"
    );
    assert_no_survivors(&run_dir);
}

#[test]
fn slurm_a_node_that_stops_answering_fails_the_run_within_seconds() {
    let Some(env) = slurm_env() else { return };
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().expect("tmp");
    let (job, run_dir, node) = start(&env, dir.path());
    // A hung node: its agent (and with it every answer from the node) frozen.
    let pid = agent_pid(&job, &node).expect("the agent");
    let stop = |sig| {
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), sig);
    };
    stop(nix::sys::signal::Signal::SIGSTOP);
    let frozen_at = Instant::now();
    let frozen_epoch = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64());
    let expect =
        format!("node {node} lost (its node agent has not answered for 6s): hold was on it");
    let ended =
        std::panic::catch_unwind(|| ended_by_loss(&env, &job, &run_dir, frozen_at, &expect));
    stop(nix::sys::signal::Signal::SIGCONT);
    if let Err(e) = ended {
        std::panic::resume_unwind(e);
    }
    let lost = node_lost_records(&run_dir);
    assert_eq!(lost.len(), 1, "{lost:?}");
    let seen = lost[0]["t"].as_f64().unwrap_or(0.0) - frozen_epoch;
    eprintln!("froze {node}'s agent → loss recorded: {seen:.1}s");
    assert!(seen < 15.0, "detected after {seen:.1}s");
    // The job's end took the frozen node's processes with it (Slurm ends the steps).
    let deadline = Instant::now() + Duration::from_secs(30);
    while !common::survivors(&run_dir).is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_no_survivors(&run_dir);
}

#[test]
fn slurm_a_node_whose_slurmd_dies_fails_the_run_within_seconds() {
    let Some(env) = slurm_env() else { return };
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().expect("tmp");
    let (job, run_dir, node) = start(&env, dir.path());
    let pid_file = env.join(format!("slurmd-{node}.pid"));
    let pid: i32 = std::fs::read_to_string(&pid_file)
        .expect("slurmd pid file")
        .trim()
        .parse()
        .expect("pid");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGKILL,
    )
    .expect("kill slurmd");
    let killed_epoch = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64());
    // Until the run says so (the node's agent sees slurmd gone); then slurmd comes back (Slurm
    // needs it to finish the job: ReturnToService=2 takes the node back).
    let deadline = Instant::now() + Duration::from_secs(60);
    while node_lost_records(&run_dir).is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(200));
    }
    let restarted = slurm_cmd(&env, "slurmd")
        .args([
            "-f",
            env.join("slurm.conf").to_str().expect("utf-8"),
            "-N",
            &node,
        ])
        .status()
        .expect("slurmd");
    assert!(restarted.success(), "slurmd {node} restarted");
    let lost = node_lost_records(&run_dir);
    assert_eq!(
        lost.len(),
        1,
        "no loss recorded within 60 s: {}",
        job_log(&run_dir, &job)
    );
    let seen = lost[0]["t"].as_f64().unwrap_or(0.0) - killed_epoch;
    eprintln!("killed {node}'s slurmd → loss recorded: {seen:.1}s");
    assert!(seen < 10.0, "detected after {seen:.1}s");
    let code = wait_job(&env, &job, Duration::from_secs(90));
    let log = job_log(&run_dir, &job);
    assert_ne!(code, "0:0", "{log}");
    assert!(
        log.contains(&format!(
            "node {node} lost (slurmd not running (pid {pid} is gone)): hold was on it"
        )),
        "{log}"
    );
    assert_no_survivors(&run_dir);
}

#[test]
fn slurm_the_controller_gone_for_20s_leaves_the_run_going() {
    let Some(env) = slurm_env() else { return };
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().expect("tmp");
    let recipe = dir.path().join("r.yaml");
    std::fs::write(
        &recipe,
        "name: ctld-outage\nsteps:\n  - {name: hold, node: 1, service: true, run: 'exec sleep 600'}\n  - {name: work, after: [hold], run: 'sleep 30; echo done'}\n",
    )
    .expect("recipe");
    let (job, run_dir) = submit(
        &env,
        dir.path(),
        &[recipe.to_str().expect("utf-8"), "--", "--grace", "2s"],
    );
    let deadline = Instant::now() + Duration::from_secs(90);
    while !std::fs::read_to_string(run_dir.join("journal.jsonl"))
        .unwrap_or_default()
        .contains(r#""event":"spawned","step":"work""#)
    {
        assert!(
            Instant::now() < deadline,
            "work never started: {}",
            job_log(&run_dir, &job)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let pid_file = env.join("slurmctld.pid");
    let pid: i32 = std::fs::read_to_string(&pid_file)
        .expect("slurmctld pid")
        .trim()
        .parse()
        .expect("pid");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGTERM,
    )
    .expect("stop slurmctld");
    while std::path::Path::new(&format!("/proc/{pid}")).exists() {
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_secs(20));
    // Started again with its saved state (the job is in it).
    let started = slurm_cmd(&env, "slurmctld")
        .args(["-f", env.join("slurm.conf").to_str().expect("utf-8")])
        .status()
        .expect("slurmctld");
    assert!(started.success(), "slurmctld restarted");
    let code = wait_job(&env, &job, Duration::from_secs(90));
    let log = job_log(&run_dir, &job);
    assert_eq!(code, "0:0", "the run carried on: {log}");
    assert!(node_lost_records(&run_dir).is_empty(), "{log}");
    assert_no_survivors(&run_dir);
}
