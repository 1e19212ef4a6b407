//! `srt-graph run`: a new run directory, the plan placed and compiled for it, the session run.

use crate::cli_place::{place, PlaceArgs, Placement};
use crate::error::{CliError, CliResult};
use crate::options::RecipeArgs;
use crate::run_dir::{write_meta, RunMeta};
use crate::session::{compile_for_run, execute_run, resolve_source_dir, srun_options, ExecArgs};
use clap::Args;
use srt_graph_engine::rundir::default_run_dir;
use std::path::{Path, PathBuf};

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
    let run_dir = crate::run_dir::create_for_run(&run_dir, &args.recipe, recipe.run_dir_access)
        .map_err(|e| CliError::Failed(format!("run directory {}: {e}", run_dir.display())))?;
    // Until `execute_run` holds it, the lock is released here on any error: nothing has started.
    let release = |e: CliError| {
        crate::run_dir::unlock(&run_dir);
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
