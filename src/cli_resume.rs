//! `srt-graph resume` and `srt-graph status`: what a run left behind, and finishing it without redoing
//! what still stands.

use crate::cli_place::place;
use crate::error::{CliError, CliResult};
use crate::leftovers::run_groups;
use crate::run_dir::{live_orchestrator, read_recorded, write_meta, RecordedRun, RunMeta};
use crate::session::{compile_for_run, execute_run, resolve_source_dir, ExecArgs};
use clap::Args;
use serde_json::json;
use srt_graph_engine::journal;
use srt_graph_engine::plan::Step;
use srt_graph_engine::resume::{decide, replay, Decision, Inputs, Recorded};
use srt_graph_engine::rundir::log_tail;
use srt_graph_engine::transport::GroupSignaller;
use srt_graph_engine::transport::Transport;
use srt_graph_engine::Dag;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

#[derive(Args)]
pub struct ResumeArgs {
    /// The run directory to finish.
    pub run_dir: PathBuf,
    #[command(flatten)]
    pub exec: ExecArgs,
    /// Print what would be kept, adopted and run again (and why), then stop.
    #[arg(long)]
    pub dry_run: bool,
    /// Run this step and everything that depends on it again.
    #[arg(long, value_name = "STEP", conflicts_with = "only")]
    pub from: Option<String>,
    /// Run only this step again.
    #[arg(long, value_name = "STEP")]
    pub only: Option<String>,
    /// Leave these nodes out (Slurm node names or ssh hosts the run used, e.g. one `status` says was
    /// lost): what ran there is placed on the others; node-local installs are redone there.
    #[arg(long, value_delimiter = ',', value_name = "NODE,…")]
    pub exclude: Vec<String>,
}

#[derive(Args)]
pub struct StatusArgs {
    pub run_dir: PathBuf,
    /// Machine-readable output.
    #[arg(long)]
    pub json: bool,
}

/// Is the service's process group alive here, and does it answer its probe? Any HTTP answer counts: a
/// worker still loading its model answers 503 and is adopted (restarting it would only load again); the
/// readiness gate decides when it is ready.
fn service_alive(
    rt: &tokio::runtime::Runtime,
    transport: &dyn GroupSignaller,
    step: &Step,
    pgid: i32,
) -> bool {
    transport.group_alive(step.node, pgid)
        && step
            .probe
            .as_ref()
            .is_none_or(|p| rt.block_on(srt_graph_node_tools::health::answers(p)))
}

/// A benchmark point stands only if its result file is complete JSON.
fn output_ok(step: &Step) -> bool {
    let Some(argv) = &step.command else {
        return true;
    };
    let arg = |flag: &str| {
        argv.iter()
            .position(|a| a == flag)
            .and_then(|i| argv.get(i + 1))
    };
    match (arg("--result-dir"), arg("--result-filename")) {
        (Some(dir), Some(name)) => std::fs::read(Path::new(dir).join(name))
            .ok()
            .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
            .is_some_and(|v| v.get("completed").is_some()),
        _ => true,
    }
}

pub fn resume(args: &ResumeArgs) -> CliResult {
    let run_dir = args
        .run_dir
        .canonicalize()
        .map_err(|e| CliError::Failed(format!("{}: {e}", args.run_dir.display())))?;
    if let Some((pid, host)) = live_orchestrator(&run_dir) {
        return Err(CliError::Failed(format!(
            "{} is being run by pid {pid} on {host}; one orchestrator per run directory",
            run_dir.display()
        )));
    }
    let prev = read_recorded(&run_dir)
        .map_err(|e| CliError::Failed(format!("cannot resume {}: {e}", run_dir.display())))?;
    let recipe = recorded_recipe(&run_dir, &prev.meta)?;
    crate::run_dir::restrict_umask(recipe.run_dir_access);
    check_exclude(&args.exclude, &prev.plan.nodes)?;
    let total = recipe.total_nodes() as usize;
    let mut placement = prev.meta.placement.clone();
    placement.exclude = args.exclude.clone();
    let placed = place(&placement, total, &run_dir, None)
        .map_err(|e| CliError::Failed(format!("{e}\nnothing was started")))?;
    if !args.exclude.is_empty() {
        eprintln!(
            "note: {} left out: what ran there is placed on {}, and every service starts again",
            args.exclude.join(", "),
            placed.names.join(", ")
        );
        if !args.dry_run {
            stop_where_recorded(&prev, total, &run_dir);
        }
    } else if !placed.recorded_reachable {
        eprintln!(
            "note: this is a new Slurm allocation (job {}); the processes of job {} ended with it and are started again",
            placed.slurm_job.as_deref().unwrap_or("?"),
            prev.meta.placement.slurm_job.as_deref().unwrap_or("?")
        );
    }
    let dag = compile_for_run(&recipe, &prev.meta, &run_dir, &placed)?;
    for (flag, id) in [("--from", &args.from), ("--only", &args.only)] {
        if let Some(id) = id.as_ref().filter(|id| !dag.index.contains_key(*id)) {
            return Err(CliError::Invalid(format!(
                "{flag} {id}: no such step in this plan"
            )));
        }
    }
    let transport = placed.transport.clone();
    let reachable = placed.recorded_reachable;
    let decision = {
        let rt = crate::cli_tools::runtime()?;
        let alive =
            |s: &Step, pgid: i32| reachable && service_alive(&rt, transport.as_ref(), s, pgid);
        decide(&Inputs {
            old_plan: &prev.plan,
            new: &dag,
            journal: &prev.journal,
            service_alive: &alive,
            output_ok: &output_ok,
            from: args.from.as_deref(),
            only: args.only.as_deref(),
        })
    };
    print_decision(&dag, &run_dir, &decision);
    if args.dry_run {
        return Ok(());
    }
    crate::run_dir::lock(&run_dir)
        .map_err(|e| CliError::Failed(format!("cannot take the lock: {e}")))?;
    if reachable {
        stop_leftovers(&prev, &dag, &decision, transport.as_ref(), &run_dir);
    }
    let continues = prev.journal.iter().find_map(|r| match &r.event {
        journal::Event::RunStarted {
            orchestrator_pid,
            host,
            ..
        } => Some(format!("pid {orchestrator_pid} on {host}")),
        _ => None,
    });
    let mut meta = prev.meta.clone();
    meta.placement.slurm_job = placed.slurm_job.clone();
    write_meta(&run_dir, &meta)
        .map_err(|e| CliError::Failed(format!("cannot write run.json: {e}")))?;
    execute_run(
        &dag,
        &run_dir,
        &args.exec,
        &placed,
        decision.keep,
        decision.adopt,
        continues,
    )
}

/// The recipe as copied into the run directory (edit it there to change what runs), with its cluster
/// config, the variant that ran and its source directory resolved.
fn recorded_recipe(run_dir: &Path, meta: &RunMeta) -> Result<srt_graph_steps::Recipe, CliError> {
    let cluster = run_dir.join("srtslurm.yaml");
    let cluster = if cluster.is_file() {
        srt_graph_steps::ClusterConfig::load(&cluster)?
    } else {
        srt_graph_steps::ClusterConfig::default()
    };
    let mut variants = srt_graph_steps::load_file(
        &run_dir.join("recipe.yaml"),
        meta.variant.as_deref(),
        &cluster,
    )?;
    if variants.len() != 1 {
        return Err(CliError::Invalid(format!(
            "the run's recipe has {} variants; cannot tell which one ran",
            variants.len()
        )));
    }
    let mut recipe = variants.remove(0).recipe;
    resolve_source_dir(&mut recipe, meta.recipe_dir.as_deref()).map_err(CliError::Invalid)?;
    Ok(recipe)
}

fn print_decision(dag: &Dag, run_dir: &Path, decision: &Decision) {
    eprintln!("resume {}: {}", dag.plan.recipe, run_dir.display());
    for id in &decision.keep {
        eprintln!("  keep    {id}");
    }
    for (id, pgid) in &decision.adopt {
        eprintln!("  adopt   {id} (process group {pgid} is up and healthy)");
    }
    for (id, why) in &decision.run {
        eprintln!("  run     {id}: {why}");
    }
}

/// Nothing of the old run may linger behind a step that runs again (a service holding its ports, a task
/// the dead orchestrator left running) or behind a service that was being stopped when the orchestrator
/// died and that nothing needs now. Its processes are found by the last process group the journal
/// recorded, by the run tag (spawns the journal missed), and by the pid file of a service that rewrites
/// its environment.
fn stop_leftovers(
    prev: &RecordedRun,
    dag: &Dag,
    decision: &Decision,
    transport: &dyn Transport,
    run_dir: &Path,
) {
    let groups = run_groups(&prev.journal, &prev.plan, transport, run_dir);
    let kept_services = decision.keep.iter().filter(|id| {
        dag.index
            .get(*id)
            .is_some_and(|&i| dag.step(i).is_service())
    });
    for id in decision.run.iter().map(|(id, _)| id).chain(kept_services) {
        for (_, node, pgid) in groups.iter().filter(|(s, _, _)| s == id) {
            stop_group(transport, *node, *pgid);
        }
    }
}

/// `--exclude` names nodes the run used (a typo would otherwise leave the bad node in).
fn check_exclude(exclude: &[String], nodes: &[String]) -> Result<(), CliError> {
    match exclude.iter().find(|n| !nodes.contains(n)) {
        Some(n) => Err(CliError::Invalid(format!(
            "--exclude {n}: the run never ran on {n} (its nodes: {})",
            nodes.join(", ")
        ))),
        None => Ok(()),
    }
}

/// Before a resume that moves logical nodes (`--exclude`) starts anything: what the run left
/// running where it was recorded is stopped (bounded per group: a lost node may not answer). A new
/// allocation has nothing left of the old one.
fn stop_where_recorded(prev: &RecordedRun, total: usize, run_dir: &Path) {
    let Ok(old) = place(&prev.meta.placement, total, run_dir, None) else {
        return;
    };
    if !old.recorded_reachable {
        return;
    }
    let transport = old.transport.as_ref();
    for (_, node, pgid) in run_groups(&prev.journal, &prev.plan, transport, run_dir) {
        stop_group(transport, node, pgid);
    }
}

fn stop_group(t: &dyn GroupSignaller, node: usize, pgid: i32) {
    if !t.group_alive(node, pgid) {
        return;
    }
    let _ = t.signal_group(node, pgid, 15);
    let deadline = Instant::now() + Duration::from_secs(5);
    while t.group_alive(node, pgid) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = t.signal_group(node, pgid, 9);
}

pub fn status(args: &StatusArgs) -> CliResult {
    let prev = read_recorded(&args.run_dir).map_err(CliError::Failed)?;
    let rt = crate::cli_tools::runtime()?;
    let run_dir = args
        .run_dir
        .canonicalize()
        .unwrap_or_else(|_| args.run_dir.clone());
    // What the run left is read from its directory; only the liveness of its services needs the nodes.
    let placed = match place(
        &prev.meta.placement,
        prev.plan.nodes.len(),
        &run_dir,
        Some(&prev.plan.nodes),
    ) {
        Ok(p) => Some(p),
        Err(e) => {
            eprintln!("note: cannot reach the run's nodes ({e}); services are shown as recorded, not probed");
            None
        }
    };
    let recorded = replay(&prev.journal);
    let orchestrator = live_orchestrator(&args.run_dir);
    let mut rows = Vec::new();
    let mut remaining = 0;
    for s in &prev.plan.steps {
        let (state, detail) = match recorded
            .get(&s.id)
            .cloned()
            .unwrap_or(Recorded::NeverStarted)
        {
            Recorded::NeverStarted => {
                remaining += 1;
                ("pending", String::new())
            }
            Recorded::Finished => ("done", String::new()),
            Recorded::Unfinished if orchestrator.is_some() => ("running", String::new()),
            Recorded::Unfinished => {
                remaining += 1;
                (
                    "interrupted",
                    "was running when the orchestrator stopped".into(),
                )
            }
            Recorded::Failed(r) => {
                remaining += 1;
                (
                    "failed",
                    format!("{r}\n{}", log_tail(&args.run_dir, &s.id, 5)),
                )
            }
            Recorded::Up { pgid } => match &placed {
                None => (
                    "up?",
                    format!("process group {pgid} (not probed: the nodes cannot be reached)"),
                ),
                Some(p)
                    if p.recorded_reachable
                        && service_alive(&rt, p.transport.as_ref(), s, pgid) =>
                {
                    ("up", format!("process group {pgid}, healthy"))
                }
                Some(_) => {
                    remaining += 1;
                    ("down", format!("process group {pgid} is gone or unhealthy"))
                }
            },
            Recorded::Down(r) => ("stopped", r),
        };
        rows.push((s.id.clone(), prev.plan.nodes[s.node].clone(), state, detail));
    }
    let finished = prev.journal.iter().rev().find_map(|r| match &r.event {
        journal::Event::RunFinished { status, reason } => {
            Some((format!("{status:?}").to_lowercase(), reason.clone()))
        }
        _ => None,
    });
    // `(node, reason, steps on it)` for each node the run lost.
    let lost: Vec<(&str, &str, &[String])> = prev
        .journal
        .iter()
        .filter_map(|r| match &r.event {
            journal::Event::NodeLost {
                node,
                reason,
                steps,
            } => Some((node.as_str(), reason.as_str(), steps.as_slice())),
            _ => None,
        })
        .collect();
    if args.json {
        let tags = srt_graph_results::job::Job::read(&args.run_dir)
            .map(|j| j.tags)
            .unwrap_or_default();
        let v = json!({
            "format": 1,
            "recipe": prev.plan.recipe,
            "run_dir": args.run_dir,
            "tags": tags,
            "orchestrator": orchestrator.as_ref().map(|(pid, host)| json!({"pid": pid, "host": host})),
            "finished": finished.as_ref().map(|(status, _)| status),
            "failure": finished.as_ref().and_then(|(_, reason)| reason.as_ref()),
            "remaining": remaining,
            "timing": srt_graph_results::breakdown::read(&args.run_dir),
            "lost_nodes": lost.iter().map(|(node, reason, steps)| json!({"node": node, "reason": reason, "steps": steps})).collect::<Vec<_>>(),
            "steps": rows.iter().map(|(id, node, state, detail)| json!({"id": id, "node": node, "state": state, "detail": detail})).collect::<Vec<_>>(),
        });
        crate::cli_plan::emit(&format!(
            "{}\n",
            serde_json::to_string_pretty(&v).unwrap_or_default()
        ));
        return Ok(());
    }
    let mut out = format!("run {} in {}\n", prev.plan.recipe, args.run_dir.display());
    match (&orchestrator, &finished) {
        (Some((pid, host)), _) => out.push_str(&format!("orchestrator: live, pid {pid} on {host}\n")),
        (None, Some((status, None))) => {
            out.push_str(&format!("orchestrator: gone; the run {status}\n"))
        }
        (None, Some((status, Some(why)))) => {
            out.push_str(&format!("orchestrator: gone; the run {status}: {why}\n"))
        }
        (None, None) => out.push_str("orchestrator: gone without finishing (crashed or killed): `srt-graph resume` finishes it\n"),
    }
    for (id, node, state, detail) in &rows {
        out.push_str(&format!("  {state:<11} {id:<40} {node}"));
        if !detail.is_empty() {
            out.push_str(&format!(
                "  {}",
                detail.trim_end().replace('\n', "\n              ")
            ));
        }
        out.push('\n');
    }
    out.push_str(&format!("remaining: {remaining} step(s)\n"));
    let succeeded = finished.as_ref().is_some_and(|(s, _)| s == "succeeded");
    for (node, reason, steps) in &lost {
        let with = if steps.is_empty() {
            String::new()
        } else {
            format!(", with {}", steps.join(", "))
        };
        if succeeded {
            // Lost in the teardown of a run whose work was done.
            out.push_str(&format!(
                "lost in teardown: node {node} ({reason}){with}; the results stand, what ran there was not seen to stop\n"
            ));
        } else {
            out.push_str(&format!(
                "lost: node {node} ({reason}){with}; `srt-graph submit --resume {}` resumes without it\n",
                args.run_dir.display()
            ));
        }
    }
    if let Some(b) = srt_graph_results::breakdown::read(&args.run_dir) {
        out.push_str(&srt_graph_results::breakdown::render(&b));
    }
    crate::cli_plan::emit(&out);
    Ok(())
}
