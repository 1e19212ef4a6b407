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
