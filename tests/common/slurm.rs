//! The test Slurm cluster (`tests/env/slurm.sh`): its client commands, jobs and their logs.

use super::path_env;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

pub fn slurm_cmd(env: &Path, program: &str) -> std::process::Command {
    let mut c = std::process::Command::new(program);
    c.env("SLURM_CONF", env.join("slurm.conf"))
        .env("PATH", path_env())
        .env_remove("SLURM_JOB_ID")
        .env_remove("SRTSLURM_CONFIG");
    c
}

/// Waits for a job to leave the queue (cancelling it after `limit`); returns its `ExitCode`.
pub fn wait_job(env: &Path, job: &str, limit: Duration) -> String {
    let deadline = Instant::now() + limit;
    loop {
        let out = slurm_cmd(env, "squeue")
            .args(["-h", "-j", job])
            .output()
            .expect("squeue");
        if String::from_utf8_lossy(&out.stdout).trim().is_empty() {
            break;
        }
        if Instant::now() > deadline {
            let _ = slurm_cmd(env, "scancel").arg(job).status();
            panic!("job {job} did not finish in {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let out = slurm_cmd(env, "scontrol")
        .args(["show", "job", job])
        .output()
        .expect("scontrol");
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .find_map(|f| f.strip_prefix("ExitCode="))
        .unwrap_or("?")
        .to_string()
}

pub fn submit(env: &Path, dir: &Path, args: &[&str]) -> (String, PathBuf) {
    let run_dir = dir.join("run");
    let out = slurm_cmd(env, env!("CARGO_BIN_EXE_srt-graph"))
        .current_dir(dir)
        .arg("submit")
        .arg("--run-dir")
        .arg(&run_dir)
        .args(args)
        .output()
        .expect("submit");
    assert!(
        out.status.success(),
        "submit: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let job = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert!(job.parse::<u64>().is_ok(), "job id `{job}`");
    (job, run_dir)
}

pub fn job_log(run_dir: &Path, job: &str) -> String {
    std::fs::read_to_string(run_dir.join(format!("slurm-{job}.out"))).unwrap_or_default()
}

/// The test cluster's directory (`None`: skipped, said aloud, when not root).
pub fn slurm_env() -> Option<PathBuf> {
    super::env_dir("SRT_GRAPH_SLURM_ENV", "tests/env/slurm.sh")
}

/// `srt-graph resume RUN_DIR` as a new batch job of `nodes` nodes: its job id, exit code and output.
pub fn resume_in_new_allocation(
    env: &Path,
    dir: &Path,
    run_dir: &Path,
    nodes: usize,
) -> (String, String, String) {
    resume_in_allocation(
        env,
        dir,
        run_dir,
        &["-N", &nodes.to_string()],
        &[],
        Duration::from_secs(60),
    )
}

/// `srt-graph resume RUN_DIR RESUME_ARGS…` as a new batch job (`sbatch SBATCH_ARGS…`: `-N 3`, `-w
/// a,b`), waited for within `limit`: its job id, exit code and output.
pub fn resume_in_allocation(
    env: &Path,
    dir: &Path,
    run_dir: &Path,
    sbatch_args: &[&str],
    resume_args: &[&str],
    limit: Duration,
) -> (String, String, String) {
    let mut line = vec![
        env!("CARGO_BIN_EXE_srt-graph").to_string(),
        "resume".to_string(),
        run_dir.display().to_string(),
    ];
    line.extend(resume_args.iter().map(|a| a.to_string()));
    let out = slurm_cmd(env, "sbatch")
        .current_dir(dir)
        .arg("--parsable")
        .args(sbatch_args)
        .arg("--output")
        .arg(run_dir.join("resume-%j.out"))
        .arg("--wrap")
        .arg(line.join(" "))
        .output()
        .expect("sbatch");
    let job = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let code = wait_job(env, &job, limit);
    let log =
        std::fs::read_to_string(run_dir.join(format!("resume-{job}.out"))).unwrap_or_default();
    (job, code, log)
}

/// The node agent of `node` in `job` (its pid), found by its command line and Slurm's environment.
pub fn agent_pid(job: &str, node: &str) -> Option<i32> {
    std::fs::read_dir("/proc").ok()?.flatten().find_map(|e| {
        let pid: i32 = e.file_name().to_str()?.parse().ok()?;
        let cmd = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
        if !String::from_utf8_lossy(&cmd).ends_with("node-agent\0") {
            return None;
        }
        let env = String::from_utf8_lossy(&std::fs::read(format!("/proc/{pid}/environ")).ok()?)
            .into_owned();
        let has = |kv: &str| env.split('\0').any(|v| v == kv);
        (has(&format!("SLURM_JOB_ID={job}")) && has(&format!("SLURMD_NODENAME={node}")))
            .then_some(pid)
    })
}

/// `scontrol update nodename=NODE state=STATE` (with a reason unless resuming it).
pub fn set_node_state(env: &Path, node: &str, state: &str) {
    let mut c = slurm_cmd(env, "scontrol");
    c.args([
        "update",
        &format!("nodename={node}"),
        &format!("state={state}"),
    ]);
    if state != "resume" {
        c.arg("reason=srt-graph test");
    }
    assert!(c.status().expect("scontrol").success(), "{node} {state}");
}
