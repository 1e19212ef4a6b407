//! `srt-graph down` and `srt-graph hold`: what a recorded run left running, stopped, or waited on.

use crate::error::{CliError, CliResult};
use crate::leftovers::{leftovers, Group};
use crate::run_dir::{hostname, live_orchestrator};
use crate::session::parse_duration;
use clap::Args;
use srt_graph_engine::journal;
use std::path::PathBuf;
use std::time::{Duration, Instant};

#[derive(Args)]
pub struct DownArgs {
    /// The run directory of the run to bring down.
    pub run_dir: PathBuf,
    /// Grace period between SIGTERM and SIGKILL.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub grace: Duration,
}

#[derive(Args)]
pub struct HoldArgs {
    /// The run directory whose kept-up services hold the allocation.
    pub run_dir: PathBuf,
}

/// Blocks while any process of a run is alive (what a submitted `--keep-up` job runs after `run`, so that
/// the allocation — and the services in it — last until `srt-graph down`).
pub fn hold(args: &HoldArgs) -> CliResult {
    let run_dir = args
        .run_dir
        .canonicalize()
        .unwrap_or_else(|_| args.run_dir.clone());
    let records = journal::read(&run_dir.join("journal.jsonl")).unwrap_or_default();
    let (placed, groups) = leftovers(&run_dir, &records).map_err(CliError::Failed)?;
    let transport = placed.transport.clone();
    eprintln!(
        "holding the allocation while the run's services are up; bring them down with: srt-graph down {}",
        run_dir.display()
    );
    loop {
        let up = groups
            .iter()
            .filter(|(_, n, g)| transport.group_alive(*n, *g))
            .count();
        if up == 0 {
            eprintln!("nothing of the run is up any more: releasing the allocation");
            return Ok(());
        }
        std::thread::sleep(Duration::from_secs(2));
    }
}

/// Stops everything a run started, from its journal — also when its orchestrator is gone.
pub fn down(args: &DownArgs) -> CliResult {
    let journal_path = args.run_dir.join("journal.jsonl");
    let records = journal::read(&journal_path)
        .map_err(|e| CliError::Failed(format!("{}: {e}", journal_path.display())))?;
    // A live orchestrator tears down itself, in order; ask it first.
    if let Some((pid, _)) = live_orchestrator(&args.run_dir).filter(|(_, host)| *host == hostname())
    {
        eprintln!("asking the orchestrator (pid {pid}) to stop");
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGTERM,
        );
        let deadline = Instant::now() + args.grace + Duration::from_secs(5);
        while Instant::now() < deadline
            && nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None).is_ok()
        {
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    let run_dir = args
        .run_dir
        .canonicalize()
        .unwrap_or_else(|_| args.run_dir.clone());
    let (placed, groups) = leftovers(&run_dir, &records).map_err(CliError::Failed)?;
    let transport = placed.transport.clone();
    let alive: Vec<&Group> = groups
        .iter()
        .filter(|_| placed.recorded_reachable)
        .filter(|(_, n, g)| transport.group_alive(*n, *g))
        .collect();
    let plan = crate::run_dir::read_meta_and_plan(&run_dir)
        .map(|(_, p)| p)
        .ok();
    if alive.is_empty() {
        eprintln!("nothing of this run is running");
        if let Some(plan) = plan.as_ref().filter(|_| placed.recorded_reachable) {
            crate::session::remove_containers(transport.as_ref(), plan);
        }
        return Ok(());
    }
    for (step, node, pgid) in &alive {
        eprintln!("stopping {step} (process group {pgid})");
        let _ = transport.signal_group(*node, *pgid, 15);
    }
    let deadline = Instant::now() + args.grace;
    while Instant::now() < deadline && alive.iter().any(|(_, n, g)| transport.group_alive(*n, *g)) {
        std::thread::sleep(Duration::from_millis(100));
    }
    for (_, node, pgid) in &alive {
        let _ = transport.signal_group(*node, *pgid, 9);
    }
    if let Some(plan) = &plan {
        crate::session::remove_containers(transport.as_ref(), plan);
    }
    crate::run_dir::unlock(&args.run_dir);
    Ok(())
}
