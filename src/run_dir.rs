//! The run directory, one home for what is in it: its creation (owner-only or group access, the
//! umask every process of the run inherits), the inputs copied in, `run.json`, the records for people
//! and srt-slurm's tools (`job.json`, `recipe.lock.yaml`), and the lock that says which orchestrator
//! runs it.

use crate::cli_place::{Executor, Placement};
use crate::error::{CliError, CliResult};
use crate::options::{cache_dir, split_selector, RecipeArgs, EMBEDDED_DEFAULT};
use srt_graph_engine::rundir::write_atomic;
use srt_graph_engine::Dag;
use srt_graph_steps::compile;
use srt_graph_steps::recipe::RunDirAccess;
use std::path::{Path, PathBuf};

/// What a run was started with, kept in `RUN_DIR/run.json` so that `resume` compiles the same plan.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct RunMeta {
    /// Variant selector, if any.
    pub variant: Option<String>,
    /// Directory of the recipe as given (relative `sglang_src_dir` resolves against it).
    pub recipe_dir: Option<PathBuf>,
    pub mock_workers: bool,
    /// `--smoke`: only a short first benchmark point.
    #[serde(default)]
    pub smoke: bool,
    /// `--sim-speed`: the simulated clock's speed-up.
    #[serde(default = "one")]
    pub sim_speed: f64,
    /// `--timing`: the performance model or the fixed timing.
    #[serde(default)]
    pub timing: crate::options::Timing,
    /// `--tags`: labels for people and CI, stored in `job.json`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    #[serde(flatten)]
    pub placement: Placement,
}

fn one() -> f64 {
    1.0
}

pub fn write_meta(run_dir: &Path, meta: &RunMeta) -> std::io::Result<()> {
    let json = serde_json::to_vec_pretty(meta).map_err(std::io::Error::other)?;
    write_atomic(&run_dir.join("run.json"), &json)
}

/// `run.json` and `plan.json` of a run directory.
pub fn read_meta_and_plan(run_dir: &Path) -> Result<(RunMeta, srt_graph_engine::Plan), String> {
    let read = |name: &str| {
        std::fs::read(run_dir.join(name))
            .map_err(|e| format!("{}: {e}", run_dir.join(name).display()))
    };
    let meta: RunMeta =
        serde_json::from_slice(&read("run.json")?).map_err(|e| format!("run.json: {e}"))?;
    let plan =
        serde_json::from_slice(&read("plan.json")?).map_err(|e| format!("plan.json: {e}"))?;
    Ok((meta, plan))
}

/// What a run directory records of its run: how it was started, its plan and its journal.
pub struct RecordedRun {
    pub meta: RunMeta,
    pub plan: srt_graph_engine::Plan,
    pub journal: Vec<srt_graph_engine::journal::Record>,
}

pub fn read_recorded(run_dir: &Path) -> Result<RecordedRun, String> {
    let (meta, plan) = read_meta_and_plan(run_dir)?;
    let journal = srt_graph_engine::journal::read(&run_dir.join("journal.jsonl"))
        .map_err(|e| format!("journal.jsonl: {e}"))?;
    Ok(RecordedRun {
        meta,
        plan,
        journal,
    })
}

/// A new run's directory: created (refused when it holds a run already), locked by this process, its
/// inputs copied in before anything starts (srt-slurm's submit-time copy race is a known bug). Its
/// canonical path.
pub fn create_for_run(
    dir: &Path,
    recipe: &RecipeArgs,
    access: RunDirAccess,
) -> std::io::Result<PathBuf> {
    if dir.join("journal.jsonl").exists() {
        return Err(std::io::Error::other(
            "already holds a run (use `srt-graph resume` to continue it, or pick another --run-dir)",
        ));
    }
    create(dir, access)?;
    let dir = dir.canonicalize()?;
    lock(&dir)?;
    copy_inputs(recipe, &dir, access)?;
    Ok(dir)
}

/// Takes the run directory's lock for this process (`pid host`); see [`live_orchestrator`].
pub fn lock(dir: &Path) -> std::io::Result<()> {
    std::fs::write(
        dir.join("lock"),
        format!("{} {}\n", std::process::id(), hostname()),
    )
}

pub fn unlock(dir: &Path) {
    let _ = std::fs::remove_file(dir.join("lock"));
}

/// Removes the run directory's lock when the orchestrator is done with it, however it returns.
pub struct LockGuard(pub PathBuf);

impl Drop for LockGuard {
    fn drop(&mut self) {
        unlock(&self.0);
    }
}

/// The orchestrator holding the run directory's lock, if it is alive: `(pid, host)`.
pub fn live_orchestrator(run_dir: &Path) -> Option<(i32, String)> {
    let text = std::fs::read_to_string(run_dir.join("lock")).ok()?;
    let mut parts = text.split_whitespace();
    let pid: i32 = parts.next()?.parse().ok()?;
    let host = parts.next().unwrap_or("?").to_string();
    // A lock from another host cannot be checked from here: it counts as live.
    let alive = pid > 1
        && pid != std::process::id() as i32
        && (host != hostname()
            || nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None).is_ok());
    alive.then_some((pid, host))
}

pub fn hostname() -> String {
    nix_hostname().unwrap_or_else(|| "localhost".into())
}

fn nix_hostname() -> Option<String> {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
}

/// Creates a run directory (and its `logs/`) readable by its owner only, or by the owner's group too
/// when the recipe or cluster config says `run_dir_access: group`. Recipes carry credentials, steps log
/// them, runs live on shared file systems. Everything this process creates afterwards follows the same
/// rule (the umask), and so do the processes it starts.
pub fn create(dir: &Path, access: RunDirAccess) -> std::io::Result<()> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    let mode = access.dir_mode();
    restrict_umask(access);
    if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)?;
    }
    for d in [dir.to_path_buf(), dir.join("logs")] {
        std::fs::DirBuilder::new()
            .mode(mode)
            .recursive(true)
            .create(&d)?;
        std::fs::set_permissions(&d, std::fs::Permissions::from_mode(mode))?;
    }
    Ok(())
}

/// Copies the recipe (or the embedded default) and the cluster config into the run directory, with at
/// most their sources' permissions and never more than the run directory allows; a file already there
/// (a submitted job running its copy) is left as it is.
pub fn copy_inputs(recipe: &RecipeArgs, dir: &Path, access: RunDirAccess) -> std::io::Result<()> {
    let copy = |from: &Path, name: &str| copy_input(from, &dir.join(name), access);
    match &recipe.recipe {
        Some(r) => copy(&split_selector(r).0, "recipe.yaml")?,
        None => write_private(
            &dir.join("recipe.yaml"),
            EMBEDDED_DEFAULT.as_bytes(),
            access.file_mode(),
        )?,
    }
    if let Some(c) = &recipe.cluster_config {
        copy(c, "srtslurm.yaml")?;
    }
    Ok(())
}

/// Files and directories this process (and what it starts) creates from here on get no more than the
/// run directory's access.
pub fn restrict_umask(access: RunDirAccess) {
    nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(
        0o777 & !access.dir_mode(),
    ));
}

/// Copies one input into a run directory (unless it is that file already) with at most its source's
/// permissions and at most what the run directory allows.
pub fn copy_input(from: &Path, to: &Path, access: RunDirAccess) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let same = match (from.canonicalize(), to.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    };
    if !same {
        let source_mode = std::fs::metadata(from)?.permissions().mode() & 0o777;
        std::fs::copy(from, to)?;
        let mode = source_mode & access.file_mode();
        std::fs::set_permissions(to, std::fs::Permissions::from_mode(mode))?;
    }
    Ok(())
}

/// Writes a file created with `mode` (subject to the umask).
pub fn write_private(path: &Path, bytes: &[u8], mode: u32) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(path)?
        .write_all(bytes)
}
/// `job.json` and `recipe.lock.yaml` at submission, before the job has nodes: the plan compiled as
/// `plan --executor slurm` shows it. The job's run rewrites both with what it got.
pub fn write_submitted_job(
    recipe: &srt_graph_steps::Recipe,
    variant: Option<String>,
    mock_workers: bool,
    tags: &[String],
    job_id: &str,
    run_dir: &Path,
) -> CliResult {
    let target = crate::options::target(
        recipe,
        mock_workers,
        Executor::Slurm,
        &run_dir.display().to_string(),
        &cache_dir().display().to_string(),
    );
    let dag = Dag::new(compile(recipe, &target)?).map_err(|e| CliError::Invalid(e.to_string()))?;
    let meta = RunMeta {
        variant,
        recipe_dir: None,
        mock_workers,
        smoke: false,
        sim_speed: 1.0,
        timing: crate::options::Timing::Model,
        tags: tags.to_vec(),
        placement: Placement {
            executor: Executor::Slurm,
            slurm_job: Some(job_id.to_string()),
            ..Placement::default()
        },
    };
    write_records(recipe, &meta, &dag, run_dir)
}

/// What the run is, for people and srt-slurm's tools: `job.json` (srtctl's metadata shape) and
/// `recipe.lock.yaml` (the recipe as resolved: overrides, sweep values, aliases applied), both with
/// secret values redacted.
pub fn write_records(
    recipe: &srt_graph_steps::Recipe,
    meta: &RunMeta,
    dag: &Dag,
    run_dir: &Path,
) -> CliResult {
    use srt_graph_results::job;
    use srt_graph_steps::recipe::Role;
    let redact = dag.plan.redactor();
    let plan_json = srt_graph_engine::render::json(dag);
    let role = |r: Role| {
        recipe
            .role(r)
            .map_or((0, 0, 0), |s| (s.nodes, s.workers, s.gpus_per_worker))
    };
    let ((pn, pw, pg), (dn, dw, dg), (an, aw, ag)) = (
        role(Role::Prefill),
        role(Role::Decode),
        role(Role::Aggregated),
    );
    let image = dag
        .plan
        .steps
        .iter()
        .find_map(|s| s.container.as_ref().map(|c| c.image.clone()));
    let job = job::Job {
        job_id: meta.placement.slurm_job.clone().unwrap_or_else(|| {
            run_dir
                .file_name()
                .map_or_else(String::new, |n| n.to_string_lossy().into_owned())
        }),
        job_name: recipe.name.clone(),
        backend_type: recipe.backend.to_string(),
        frontend_type: recipe.frontend.kind.to_string(),
        model_path: recipe.model_path.clone(),
        gpu_type: recipe.gpu_type.clone(),
        resources: job::Resources {
            gpus_per_node: recipe.gpus_per_node,
            prefill_nodes: pn,
            decode_nodes: dn,
            agg_nodes: an,
            prefill_workers: pw,
            decode_workers: dw,
            agg_workers: aw,
            gpus_per_prefill: pg,
            gpus_per_decode: dg,
            gpus_per_agg: ag,
        },
        benchmark: recipe.benchmark.as_ref().map(|b| job::BenchmarkInfo {
            kind: b.kind.clone(),
            isl: b.points.first().map(|p| p.isl),
            osl: b.points.first().map(|p| p.osl),
        }),
        tags: meta.tags.clone(),
        srt_graph: job::SrtGraphInfo {
            version: env!("CARGO_PKG_VERSION").into(),
            commit: Some(env!("SRT_GRAPH_COMMIT").into()),
            recipe_file: Some(recipe.file.clone()),
            variant: meta.variant.clone(),
            executor: format!("{:?}", meta.placement.executor).to_lowercase(),
            mock_workers: meta.mock_workers,
            nodes: dag.plan.nodes.clone(),
            container_image_digest: image
                .as_deref()
                .map(Path::new)
                .filter(|p| p.is_file())
                .and_then(|p| job::file_digest(p).ok()),
            container_image: image,
            plan_steps: dag.plan.steps.len(),
            plan_hash: job::bytes_digest(plan_json.as_bytes()),
        },
    };
    job.write(run_dir)
        .map_err(|e| CliError::Failed(format!("cannot write job.json: {e}")))?;
    let yaml = serde_yaml::to_string(&recipe.resolved).unwrap_or_default();
    let lock = format!(
        "# recipe.lock.yaml — {} as srt-graph {} resolved it{}\n{}",
        recipe.file,
        env!("CARGO_PKG_VERSION"),
        meta.variant
            .as_deref()
            .map_or_else(String::new, |v| format!(" (variant {v})")),
        redact.clean(&yaml)
    );
    write_atomic(
        &run_dir.join(srt_graph_results::diff::LOCK_FILE),
        lock.as_bytes(),
    )
    .map_err(|e| CliError::Failed(format!("cannot write recipe.lock.yaml: {e}")))
}
