//! A run's session, shared by `run` and `resume`: the recipe compiled for the nodes it was placed on
//! (checked before anything starts), then executed with the journal, the progress display and signal
//! forwarding, its containers removed after, and its end reported (`run_end`). The run directory it
//! works in is `run_dir`'s.

use crate::cli_place::{check_containers, Executor, Placed};
use crate::error::{CliError, CliResult};
use crate::options::{cache_dir, target};
use crate::run_dir::{hostname, write_records, LockGuard, RunMeta};
use clap::Args;
use srt_graph_engine::journal::{Event, Journal};
use srt_graph_engine::progress::{Bars, Observer, Plain};
use srt_graph_engine::rundir::write_atomic;
use srt_graph_engine::scheduler::RunOptions;
use srt_graph_engine::transport::Transport;
use srt_graph_engine::{execute, policy, Dag};
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
    crate::run_end::finish(dag, run_dir, &report)
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
