//! A run directory's session, shared by `run`, `resume`, `status`, `down`, `hold` and `submit`: what a
//! run was started with (`run.json`), its inputs, the lock, compiling for the placed nodes, executing
//! with the journal and reporting, and finding what a recorded run left running.

use crate::cli_place::{check_containers, place, Executor, Placed, Placement};
use crate::error::{CliError, CliResult};
use crate::options::{cache_dir, split_selector, target, RecipeArgs, EMBEDDED_DEFAULT};
use clap::Args;
use srt_graph_engine::journal::{self, Event, Journal, RunStatus};
use srt_graph_engine::progress::{Bars, Observer, Plain};
use srt_graph_engine::rundir::write_atomic;
use srt_graph_engine::scheduler::{RunOptions, RunReport, StepResult};
use srt_graph_engine::transport::Transport;
use srt_graph_engine::{execute, policy, Dag};
use srt_graph_steps::recipe::RunDirAccess;
use srt_graph_steps::{compile, Target};
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// How a plan is executed; shared by `run` and `resume`.
#[derive(Args, Clone)]
pub struct ExecArgs {
    /// Most tasks running at once (long-lived services do not count).
    #[arg(long, short = 'j', default_value_t = 16, value_parser = clap::value_parser!(u32).range(1..))]
    pub jobs: u32,
    /// Most tasks running at once on one node.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..))]
    pub per_node: u32,
    /// After a failure, still run every branch that does not depend on it.
    #[arg(long)]
    pub keep_going: bool,
    /// Leave services running after success (bring them down with `srt-graph down RUN_DIR`).
    #[arg(long)]
    pub keep_up: bool,
    /// Grace period between SIGTERM and SIGKILL at teardown (e.g. 10s, 500ms).
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub grace: Duration,
    /// Only failures and the final summary.
    #[arg(long, short)]
    pub quiet: bool,
}

pub fn parse_duration(s: &str) -> Result<Duration, String> {
    policy::parse_duration(s)
        .map(Duration::from_secs_f64)
        .ok_or_else(|| format!("`{s}` is not a duration (e.g. 10s, 500ms, 2m)"))
}

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

/// The recipe's `srun_options` as `--key=value` (bare `--key` for an empty value).
pub fn srun_options(recipe: &srt_graph_steps::Recipe) -> Vec<String> {
    recipe
        .srun_options
        .iter()
        .map(|(k, v)| {
            let k = k.trim_start_matches('-');
            if v.is_empty() {
                format!("--{k}")
            } else {
                format!("--{k}={v}")
            }
        })
        .collect()
}

/// Compiles the recipe for the nodes `placed` reaches, in `run_dir`; checks the programs (local) and
/// container support (Slurm) it needs.
pub fn compile_for_run(
    recipe: &srt_graph_steps::Recipe,
    meta: &RunMeta,
    run_dir: &Path,
    placed: &Placed,
) -> Result<Dag, CliError> {
    std::fs::create_dir_all(cache_dir())
        .map_err(|e| CliError::Failed(format!("cache directory {}: {e}", cache_dir().display())))?;
    let me = std::env::current_exe()
        .map_or_else(|_| "srt-graph".to_string(), |p| p.display().to_string());
    let target = Target {
        names: placed.names.clone(),
        addresses: placed.addresses.clone(),
        bind_all: placed.bind_all,
        srt_graph: me,
        smoke: meta.smoke,
        sim_speed: meta.sim_speed,
        ..target(
            recipe,
            meta.mock_workers,
            meta.placement.executor,
            &run_dir.display().to_string(),
            &cache_dir().display().to_string(),
        )
    };
    let mut target = crate::options::with_timing(target, meta.timing);
    if let Some(c) = &mut target.container {
        // Containers run the node tools from a static binary (any image, any C library or none).
        let bin = crate::node_binary::static_node_binary().map_err(|e| {
            CliError::Failed(format!(
                "steps run in the container `{}`: {e}\nnothing was started",
                c.image
            ))
        })?;
        let dir = bin
            .parent()
            .map_or_else(|| ".".into(), |d| d.display().to_string());
        let mounts = c.mounts.iter_mut();
        for m in mounts.chain(
            target
                .nginx_container
                .iter_mut()
                .flat_map(|n| &mut n.mounts),
        ) {
            *m = m.replace(crate::options::NODE_TOOL_DIR_PLACEHOLDER, &dir);
        }
        let file = bin
            .file_name()
            .map_or_else(|| "srt-graph".into(), |f| f.to_string_lossy().to_string());
        target.container_tool = format!("{}/{file}", srt_graph_steps::CONTAINER_TOOL_DIR);
    }
    let plan = compile(recipe, &target)?;
    let dag = Dag::new(plan).map_err(|e| CliError::Invalid(e.to_string()))?;
    if meta.placement.executor == Executor::Local {
        preflight(&dag).map_err(CliError::Failed)?;
    }
    check_containers(placed, &dag).map_err(CliError::Failed)?;
    write_records(recipe, meta, &dag, run_dir)?;
    Ok(dag)
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
fn write_records(
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

/// Removes the run directory's lock when the orchestrator is done with it, however it returns.
struct LockGuard(PathBuf);

impl Drop for LockGuard {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(self.0.join("lock"));
    }
}

/// Runs `dag` in `run_dir` (lock already held) and reports; releases the lock.
pub fn execute_run(
    dag: &Dag,
    run_dir: &Path,
    exec: &ExecArgs,
    placed: &Placed,
    already_done: Vec<String>,
    adopted: Vec<(String, i32)>,
    continues: Option<String>,
) -> CliResult {
    let _lock = LockGuard(run_dir.to_path_buf());
    if let Err(e) = write_atomic(
        &run_dir.join("plan.json"),
        srt_graph_engine::render::json(dag).as_bytes(),
    ) {
        return Err(CliError::Failed(format!("cannot write plan.json: {e}")));
    }
    let mut journal = match Journal::open(&run_dir.join("journal.jsonl")) {
        Ok(j) => j,
        Err(e) => {
            return Err(CliError::Failed(format!("cannot open the journal: {e}")));
        }
    };
    let transport: Arc<dyn Transport> = placed.transport.clone();
    let containers = transport.clone();
    if let Err(e) = journal.append(Event::RunStarted {
        recipe: dag.plan.recipe.clone(),
        orchestrator_pid: std::process::id(),
        host: hostname(),
        transport: transport.name().into(),
        continues,
    }) {
        return Err(CliError::Failed(format!("cannot write the journal: {e}")));
    }
    eprintln!(
        "run {}: {} step(s) on {} node(s), {} executor; run directory {}",
        dag.plan.recipe,
        dag.plan.steps.len(),
        dag.plan.nodes.len(),
        transport.name(),
        run_dir.display()
    );
    let opts = RunOptions {
        jobs: exec.jobs as usize,
        per_node: exec.per_node as usize,
        keep_going: exec.keep_going,
        keep_up: exec.keep_up,
        grace: exec.grace,
        run_dir: run_dir.to_path_buf(),
        already_done,
        adopted,
    };
    let rt = crate::cli_tools::runtime()?;
    let fancy = std::io::stderr().is_terminal() && !exec.quiet;
    let report = rt.block_on(async {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        spawn_signal_forwarder(tx);
        let mut observer: Box<dyn Observer> = if fancy {
            Box::new(Bars::new(dag.plan.steps.len()))
        } else {
            Box::new(Plain { quiet: exec.quiet })
        };
        execute(dag, transport, &opts, &mut journal, observer.as_mut(), rx).await
    });
    if report.left_up.is_empty() {
        remove_containers(containers.as_ref(), &dag.plan);
    }
    finish(dag, run_dir, &report)
}

/// Removes the run's named containers once nothing runs in them (pyxis keeps them on the nodes).
pub fn remove_containers(transport: &dyn Transport, plan: &srt_graph_engine::Plan) {
    match transport.remove_containers(plan) {
        Ok(removed) if !removed.is_empty() => {
            let names: Vec<String> = removed.iter().map(|(n, c)| format!("{c} on {n}")).collect();
            eprintln!("removed the run's containers: {}", names.join(", "));
        }
        Ok(_) => {}
        Err(e) => eprintln!(
            "warning: some of the run's containers could not be removed ({e}); remove them with `enroot remove -f NAME` on those nodes"
        ),
    }
}

/// `sglang_src_dir` must exist on this host; a relative path is relative to the recipe file.
pub fn resolve_source_dir(
    recipe: &mut srt_graph_steps::Recipe,
    recipe_dir: Option<&Path>,
) -> Result<(), String> {
    let Some((dir, pos)) = recipe.sglang_src_dir.clone() else {
        return Ok(());
    };
    let mut path = PathBuf::from(&dir);
    if path.is_relative() {
        if let Some(base) = recipe_dir {
            path = base.join(path);
        }
    }
    match path.canonicalize() {
        Ok(p) if p.is_dir() => {
            recipe.sglang_src_dir = Some((p.display().to_string(), pos));
            Ok(())
        }
        _ => Err(format!(
            "{}:{}:{}: `backend.sglang_src_dir`: {} does not exist on this host\n  help: point it at your SGLang checkout (relative paths are relative to the recipe file)",
            recipe.file,
            pos.line,
            pos.col,
            path.display()
        )),
    }
}

/// Every program the plan starts by name must be on PATH here (local executor), and every requirement a
/// step declares must be met, before anything starts.
fn preflight(dag: &Dag) -> Result<(), String> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let on_path = |program: &str| std::env::split_paths(&path).any(|d| d.join(program).is_file());
    let mut missing: Vec<String> = Vec::new();
    for step in &dag.plan.steps {
        if let Some(program) = step.command.as_ref().and_then(|c| c.first()) {
            // A step that declares the program as a requirement says how to get it below.
            let known = missing
                .iter()
                .any(|m| m.starts_with(&format!("`{program}`")))
                || step.requires.iter().any(|r| &r.what == program);
            if !program.contains('/') && !known && !on_path(program) {
                let hint = srt_graph_steps::kinds::install_hint(program)
                    .map_or_else(String::new, |h| format!("; install it with `{h}`"));
                missing.push(format!(
                    "`{program}` (needed by step `{}`) is not installed{hint}",
                    step.id
                ));
            }
        }
        for r in &step.requires {
            let met = std::iter::once(&r.what).chain(&r.or).any(|what| {
                if what.starts_with('/') {
                    Path::new(what).exists()
                } else {
                    on_path(what)
                }
            });
            if !met {
                missing.push(format!(
                    "`{}` (needed by step `{}`) is not here; {}",
                    r.what, step.id, r.hint
                ));
            }
        }
    }
    if missing.is_empty() {
        Ok(())
    } else {
        Err(format!("{}\nnothing was started", missing.join("\n")))
    }
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

/// SIGINT and SIGTERM become interrupt requests; the executor decides what each one means.
fn spawn_signal_forwarder(tx: tokio::sync::mpsc::UnboundedSender<()>) {
    use tokio::signal::unix::{signal, SignalKind};
    tokio::spawn(async move {
        let (Ok(mut int), Ok(mut term)) = (
            signal(SignalKind::interrupt()),
            signal(SignalKind::terminate()),
        ) else {
            return;
        };
        loop {
            tokio::select! {
                _ = int.recv() => {}
                _ = term.recv() => {}
            }
            if tx.send(()).is_err() {
                return;
            }
        }
    });
}

/// Creates a run directory (and its `logs/`) readable by its owner only, or by the owner's group too
/// when the recipe or cluster config says `run_dir_access: group`. Recipes carry credentials, steps log
/// them, runs live on shared file systems. Everything this process creates afterwards follows the same
/// rule (the umask), and so do the processes it starts.
pub fn create_run_dir(dir: &Path, access: RunDirAccess) -> std::io::Result<()> {
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

fn finish(dag: &Dag, run_dir: &Path, report: &RunReport) -> CliResult {
    let summary = serde_json::to_vec_pretty(report).unwrap_or_default();
    if let Err(e) = write_atomic(&run_dir.join("summary.json"), &summary) {
        eprintln!("warning: cannot write summary.json: {e}");
    }
    let mut table = String::from(
        "\nstep                                     node     tries   seconds  result\n",
    );
    for s in &report.steps {
        let result = match s.result {
            StepResult::NotRun => "not run",
            StepResult::Kept => "kept",
            StepResult::Adopted => "adopted",
            StepResult::Done => "done",
            StepResult::Up => "up",
            StepResult::Failed => "FAILED",
            StepResult::Skipped => "skipped",
            StepResult::Cancelled => "cancelled",
        };
        table.push_str(&format!(
            "{:<40} {:<8} {:>5} {:>9.2}  {result}\n",
            s.id, s.node, s.attempts, s.secs
        ));
    }
    eprint!("{table}");
    eprintln!("critical path: {}", report.critical_path.join(" → "));
    eprintln!("makespan: {:.2}s", report.makespan_secs);
    for f in &report.failures {
        eprintln!("\n{f}");
    }
    if !report.left_up.is_empty() {
        eprintln!("\nservices left up (--keep-up):");
        for s in &report.left_up {
            eprintln!(
                "  {} on {} (process group {})",
                s.step, dag.plan.nodes[s.node], s.pgid
            );
        }
        if let Some(e) = &dag.plan.endpoint {
            eprintln!("endpoint: {e}");
        }
        eprintln!("bring them down with: srt-graph down {}", run_dir.display());
    }
    print_bench_results(run_dir);
    if let Some(report) = after_run(run_dir) {
        eprintln!("report: {}", report.display());
    }
    eprintln!("run directory: {}", run_dir.display());
    match report.status {
        RunStatus::Succeeded => Ok(()),
        RunStatus::Failed => Err(CliError::StepFailed),
        RunStatus::Interrupted => Err(CliError::Interrupted),
    }
}

/// What a run leaves for people at its end: srt-slurm's rollup and the HTML report. A failure here is a
/// warning: the run's own outcome stands.
fn after_run(run_dir: &Path) -> Option<PathBuf> {
    match srt_graph_results::rollup::write(run_dir) {
        Ok(true) => eprintln!(
            "rollup: {} and {}",
            run_dir.join(srt_graph_results::rollup::JSON_FILE).display(),
            run_dir.join(srt_graph_results::rollup::CSV_FILE).display()
        ),
        Ok(false) => {}
        Err(e) => eprintln!("warning: cannot write the rollup: {e}"),
    }
    let out = run_dir.join("report.html");
    match srt_graph_results::report::Run::read(run_dir)
        .map(|mut r| {
            r.predicted = crate::cli_predict::predicted_points(&r);
            r
        })
        .and_then(|r| srt_graph_results::report::write(&[r], &out))
    {
        Ok(_) => Some(out),
        Err(e) => {
            eprintln!("warning: cannot write the report: {e}");
            None
        }
    }
}

/// The sa-bench result files of the run (`results_*.json`; an invalid point is not one), one line per
/// concurrency point.
fn print_bench_results(run_dir: &Path) {
    let mut rows: Vec<(u64, String)> = srt_graph_results::points::read(run_dir)
        .0
        .iter()
        .map(|p| {
            let n = |k: &str| p.get(k);
            let c = p.concurrency;
            (
                c,
                format!(
                    "{c:>11} {:>8} {:>9.1} {:>11.1} {:>9.1} {:>9.1} {:>9.2} {:>9.2}  {}",
                    n("completed"),
                    n("request_throughput"),
                    n("output_throughput"),
                    n("mean_ttft_ms"),
                    n("p99_ttft_ms"),
                    n("mean_tpot_ms"),
                    n("mean_itl_ms"),
                    p.file.strip_prefix(run_dir).unwrap_or(&p.file).display()
                ),
            )
        })
        .collect();
    if rows.is_empty() {
        return;
    }
    rows.sort();
    eprintln!("\nsa-bench results ({}):", run_dir.display());
    eprintln!(
        "concurrency requests     req/s  out tok/s  TTFT ms  p99 TTFT   TPOT ms    ITL ms  file"
    );
    for (_, r) in rows {
        eprintln!("{r}");
    }
}

/// A process group a run started: `(step, node, pgid)`.
pub type Group = (String, usize, i32);

/// Where a recorded run is (its nodes reached again) and every process group it may have left.
pub fn leftovers(
    run_dir: &Path,
    records: &[journal::Record],
) -> Result<(Placed, Vec<Group>), String> {
    let (meta, plan) = read_meta_and_plan(run_dir)?;
    let placed = place(
        &meta.placement,
        plan.nodes.len(),
        run_dir,
        Some(&plan.nodes),
    )
    .map_err(|e| format!("cannot reach the run's nodes: {e}"))?;
    let groups = run_groups(records, &plan, placed.transport.as_ref(), run_dir);
    Ok((placed, groups))
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

/// Every process group a run may have left: the journal's, the run-tagged processes on each machine
/// (spawns the journal never heard of), and the pid files of services that rewrite their environment
/// (nginx). `(step, node, pgid)`, most recent journal entries first.
pub fn run_groups(
    records: &[journal::Record],
    plan: &srt_graph_engine::Plan,
    transport: &dyn Transport,
    run_dir: &Path,
) -> Vec<Group> {
    let mut groups: Vec<Group> = records
        .iter()
        .rev()
        .filter_map(|r| match &r.event {
            Event::Spawned {
                step, node, pgid, ..
            } => Some((step.clone(), *node, *pgid)),
            _ => None,
        })
        .collect();
    let mut add = |step: String, node: usize, pgid: i32| {
        if !groups.iter().any(|(_, n, g)| *g == pgid && *n == node) {
            groups.push((step, node, pgid));
        }
    };
    let run_dir = run_dir.display().to_string();
    for node in transport.machines() {
        for (step, pgid) in transport.tagged_groups(node, &run_dir) {
            let node = plan
                .steps
                .iter()
                .find(|s| s.id == step)
                .map_or(node, |s| s.node);
            add(step, node, pgid);
        }
    }
    for s in &plan.steps {
        if let Some(pgid) = s
            .pid_file
            .as_deref()
            .and_then(|f| transport.pid_file_group(s.node, f))
        {
            add(s.id.clone(), s.node, pgid);
        }
    }
    groups
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
