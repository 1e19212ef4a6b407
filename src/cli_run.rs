//! `srt-graph run`, `srt-graph down` and `srt-graph hold`.

use crate::cli_place::{place, PlaceArgs, Placement};
use crate::error::{CliError, CliResult};
use crate::options::RecipeArgs;
use crate::session::{
    compile_for_run, copy_inputs, execute_run, hostname, leftovers, live_orchestrator,
    parse_duration, resolve_source_dir, srun_options, write_meta, ExecArgs, Group, RunMeta,
};
use clap::Args;
use srt_graph_engine::journal;
use srt_graph_engine::rundir::default_run_dir;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

#[derive(Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub recipe: RecipeArgs,
    #[command(flatten)]
    pub exec: ExecArgs,
    #[command(flatten)]
    pub place: PlaceArgs,
    /// Run directory (default: runs/<recipe-name>-<UTC timestamp>).
    #[arg(long)]
    pub run_dir: Option<PathBuf>,
    /// Directory relative paths in the recipe are relative to (set by `submit`, whose job runs the
    /// recipe's copy in the run directory).
    #[arg(long, hide = true)]
    pub recipe_dir: Option<PathBuf>,
    /// Labels for this run, comma-separated (stored in `job.json`; `monitor --tag`, `report --tag`).
    #[arg(long, value_name = "A,B", value_parser = crate::options::tags, default_value = "", hide_default_value = true)]
    pub tags: crate::options::Tags,
    /// Continue the run in this directory instead (same as `srt-graph resume RUN_DIR`).
    #[arg(long, value_name = "RUN_DIR", conflicts_with = "run_dir")]
    pub resume: Option<PathBuf>,
}

#[derive(Args)]
pub struct DownArgs {
    /// The run directory of the run to bring down.
    pub run_dir: PathBuf,
    /// Grace period between SIGTERM and SIGKILL.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub grace: Duration,
}

/// `run --resume DIR` is `resume DIR` (main sends it there); everything else starts a new run.
pub fn run(args: &RunArgs) -> CliResult {
    let loaded = crate::cli_plan::load_one(&args.recipe, "run")?;
    let cluster = crate::cli_plan::load_cluster(&args.recipe)?;
    let placement = Placement::from_args(
        &args.place,
        cluster.network_interface.clone(),
        &cluster.ssh_hosts,
        srun_options(&loaded.recipe),
    )
    .map_err(|e| CliError::Invalid(format!("{e}\nnothing was started")))?;
    let mut meta = run_meta(args, placement, &loaded.recipe);
    let mut recipe = loaded.recipe;
    resolve_source_dir(&mut recipe, meta.recipe_dir.as_deref())
        .map_err(|e| CliError::Invalid(format!("{e}\nnothing was started")))?;
    let run_dir = args
        .run_dir
        .clone()
        .unwrap_or_else(|| default_run_dir(Path::new("runs"), &recipe.name));
    let run_dir = prepare_run_dir(&run_dir, args, recipe.run_dir_access)
        .map_err(|e| CliError::Failed(format!("run directory {}: {e}", run_dir.display())))?;
    // Until `execute_run` holds it, the lock is released here on any error: nothing has started.
    let release = |e: CliError| {
        let _ = std::fs::remove_file(run_dir.join("lock"));
        e
    };
    let placed = place(
        &meta.placement,
        recipe.total_nodes() as usize,
        &run_dir,
        None,
    )
    .map_err(|e| release(CliError::Failed(format!("{e}\nnothing was started"))))?;
    meta.placement.slurm_job = placed.slurm_job.clone();
    write_meta(&run_dir, &meta)
        .map_err(|e| release(CliError::Failed(format!("cannot write run.json: {e}"))))?;
    let dag = compile_for_run(&recipe, &meta, &run_dir, &placed).map_err(release)?;
    execute_run(
        &dag,
        &run_dir,
        &args.exec,
        &placed,
        Vec::new(),
        Vec::new(),
        None,
    )
}

/// What the run is started with, as `run.json` records it for `resume`.
fn run_meta(args: &RunArgs, placement: Placement, recipe: &srt_graph_steps::Recipe) -> RunMeta {
    let (recipe_file, selector) = args
        .recipe
        .recipe
        .as_deref()
        .map(crate::options::split_selector)
        .unzip();
    let recipe_dir = args.recipe_dir.clone().or_else(|| {
        recipe_file
            .as_ref()
            .and_then(|f| {
                f.parent().map(|p| {
                    if p.as_os_str().is_empty() {
                        PathBuf::from(".")
                    } else {
                        p.to_path_buf()
                    }
                })
            })
            .and_then(|p| p.canonicalize().ok())
    });
    RunMeta {
        variant: args.recipe.variant.clone().or(selector.flatten()),
        recipe_dir,
        mock_workers: crate::options::mock_workers(&args.recipe, recipe),
        smoke: args.recipe.smoke,
        sim_speed: args.recipe.sim_speed,
        timing: args.recipe.timing,
        tags: args.tags.0.clone(),
        placement,
    }
}

/// Creates the run directory, refuses one that holds another run, takes the lock and copies the inputs
/// (before anything starts: srt-slurm's submit-time copy race is a known bug).
fn prepare_run_dir(
    dir: &Path,
    args: &RunArgs,
    access: srt_graph_steps::recipe::RunDirAccess,
) -> std::io::Result<PathBuf> {
    if dir.join("journal.jsonl").exists() {
        return Err(std::io::Error::other(
            "already holds a run (use `srt-graph resume` to continue it, or pick another --run-dir)",
        ));
    }
    crate::session::create_run_dir(dir, access)?;
    let dir = dir.canonicalize()?;
    std::fs::write(
        dir.join("lock"),
        format!("{} {}\n", std::process::id(), hostname()),
    )?;
    copy_inputs(&args.recipe, &dir, access)?;
    Ok(dir)
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
    let plan = crate::session::read_meta_and_plan(&run_dir)
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
    let _ = std::fs::remove_file(args.run_dir.join("lock"));
    Ok(())
}
