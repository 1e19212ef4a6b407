//! `srt-graph`: compile srt-slurm recipes into a DAG of steps and run it across nodes.

mod cli_docs;
mod cli_down;
mod cli_monitor;
mod cli_place;
mod cli_plan;
mod cli_predict;
mod cli_results;
mod cli_resume;
mod cli_run;
mod cli_submit;
mod cli_submit_resume;
mod cli_tools;
mod error;
mod leftovers;
mod node_binary;
mod options;
mod run_dir;
mod run_end;
mod session;
mod srtctl;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

/// `srt-graph --version`: the package version and the commit it was built from (build.rs).
pub const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (commit ",
    env!("SRT_GRAPH_COMMIT"),
    ")"
);

#[derive(Parser)]
#[command(
    name = "srt-graph",
    version = VERSION,
    about = "Compile srt-slurm LLM-serving benchmark recipes into a DAG of steps and run it across nodes",
    after_help = "Exit codes: 0 success; 1 other error (I/O, environment); 2 invalid recipe or cluster config \
                  (nothing was started); 3 a step failed or a service died (all torn down); 130 interrupted \
                  (all torn down)."
)]
struct Cli {
    /// More detail on stderr (-v info, -vv debug); RUST_LOG overrides.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    verbose: u8,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Print the graph a recipe compiles to (text by default).
    Plan(cli_plan::PlanArgs),
    /// Predict the benchmark's figures per concurrency from the performance model; runs nothing.
    Predict(cli_predict::PredictArgs),
    /// Run a recipe's plan (default: the embedded local demo).
    Run(cli_run::RunArgs),
    /// Submit a recipe as a Slurm batch job that runs it with `--executor slurm`.
    Submit(cli_submit::SubmitArgs),
    /// Finish a crashed, failed or interrupted run without redoing what still stands.
    Resume(cli_resume::ResumeArgs),
    /// What a run did, what is up (live-probed), what failed, what remains.
    Status(cli_resume::StatusArgs),
    /// Write an HTML report (Pareto, latency and throughput charts, step timeline, failures) of runs.
    Report(cli_results::ReportArgs),
    /// What differs between two runs: recipe, environment, results per concurrency.
    Diff(cli_results::DiffArgs),
    /// A live terminal view of runs (`--once`: plain text).
    Monitor(cli_monitor::MonitorArgs),
    /// srtctl's `apply`: submit every variant of a file or directory, one job each (`--mock`: run here).
    Apply(srtctl::apply::ApplyArgs),
    /// srtctl's `dry-run`: each job's script, container mounts, environment and srun options.
    DryRun(srtctl::dry_run::DryRunArgs),
    /// srtctl's `preflight`: model paths, containers and setup scripts, ✓/✗ per variant.
    Preflight(srtctl::preflight::PreflightArgs),
    /// srtctl's `resolve-override`: write an override file's (or sweep's) variants as plain recipes.
    ResolveOverride(srtctl::resolve_override::ResolveOverrideArgs),
    /// srtctl's `check`: this node's environment against a run's fingerprints (exit 1 on a difference).
    Check(srtctl::check::CheckArgs),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    Completions(cli_docs::CompletionsArgs),
    /// Print the man page (roff) of srt-graph and its commands.
    Man(cli_docs::ManArgs),
    /// Stop everything a run started, using its journal (also when the orchestrator is gone).
    Down(cli_down::DownArgs),
    /// Block while a run's processes are up (a submitted `--keep-up` job's last step).
    #[command(hide = true)]
    Hold(cli_down::HoldArgs),
    /// A GPU-less SGLang server stand-in (what `--mock-workers` launches).
    MockWorker(cli_tools::MockWorkerArgs),
    /// Load generator: sa-bench's method against any OpenAI-compatible endpoint.
    Bench(cli_tools::BenchArgs),
    /// Wait until routers or frontends see the expected workers, then send a smoke request.
    WaitHealthy(cli_tools::WaitHealthyArgs),
    /// Wait until a TCP port accepts connections or a URL answers 2xx.
    WaitReady(cli_tools::WaitReadyArgs),
    /// Make an SGLang checkout visible where workers expect it (`/ext-sglang-src`).
    MountSource(cli_tools::MountSourceArgs),
    /// Compute roles' latency tables with the performance model (a simulated run's step).
    #[command(hide = true)]
    PerfTable(cli_predict::PerfTableArgs),
    /// Read the deployment's `/metrics` endpoints every interval into the run directory (a run's step).
    #[command(hide = true)]
    ScrapeMetrics(cli_tools::ScrapeMetricsArgs),
    /// Sample the DCGM exporters' GPU power into the run directory (`telemetry:`; a run's step).
    #[command(hide = true)]
    CollectPower(cli_tools::CollectPowerArgs),
    /// Wait for the power collector's first complete sweep (`telemetry:`; a run's step).
    #[command(hide = true)]
    WaitPower(cli_tools::WaitPowerArgs),
    /// Open or close the workers' profiling window (`profiling:`; a run's step).
    #[command(hide = true)]
    Profile(cli_tools::ProfileArgs),
    /// Check the recipe's `identity:` against the workers' fingerprints (a run's step).
    #[command(hide = true)]
    CheckIdentity(cli_tools::CheckIdentityArgs),
    /// Write a weightless model directory (tokenizer, config) for Dynamo's mocker.
    MockModel(cli_tools::MockModelArgs),
    /// What the ssh and Slurm executors run on a node to signal and probe processes there.
    #[command(subcommand, hide = true)]
    NodeOp(cli_tools::NodeOp),
    /// The Slurm executor's agent on a node: starts, signals and probes the node's processes for the
    /// orchestrator (JSON lines on stdin and stdout; one `srun` per node instead of one per process).
    #[command(hide = true)]
    NodeAgent,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let level = match cli.verbose {
        0 => "warn",
        1 => "info",
        _ => "debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .init();
    let result = match cli.command {
        Command::Plan(args) => cli_plan::run(&args),
        Command::Predict(args) => cli_predict::run(&args),
        Command::PerfTable(args) => cli_predict::perf_table(&args),
        Command::Run(args) => match args.resume.clone() {
            Some(run_dir) => cli_resume::resume(&cli_resume::ResumeArgs {
                run_dir,
                exec: args.exec,
                dry_run: false,
                from: None,
                only: None,
                exclude: Vec::new(),
            }),
            None => cli_run::run(&args),
        },
        Command::Submit(args) => match &args.resume {
            Some(run_dir) => cli_submit_resume::submit(run_dir, &args),
            None => cli_submit::submit(&args),
        },
        Command::Apply(args) => srtctl::apply::apply(&args),
        Command::DryRun(args) => srtctl::dry_run::dry_run(&args),
        Command::Preflight(args) => srtctl::preflight::preflight(&args),
        Command::ResolveOverride(args) => srtctl::resolve_override::resolve_override(&args),
        Command::Check(args) => srtctl::check::check(&args),
        Command::Completions(args) => cli_docs::completions::<Cli>(&args),
        Command::Man(args) => cli_docs::man::<Cli>(&args),
        Command::Resume(args) => cli_resume::resume(&args),
        Command::Status(args) => cli_resume::status(&args),
        Command::Down(args) => cli_down::down(&args),
        Command::Report(args) => cli_results::report(&args),
        Command::Diff(args) => cli_results::diff(&args),
        Command::Monitor(args) => cli_monitor::monitor(&args),
        Command::Hold(args) => cli_down::hold(&args),
        Command::MockWorker(args) => cli_tools::mock_worker(&args),
        Command::Bench(args) => cli_tools::bench(&args),
        Command::WaitHealthy(args) => cli_tools::wait_healthy(&args),
        Command::WaitReady(args) => cli_tools::wait_ready(&args),
        Command::MountSource(args) => cli_tools::mount_source(&args),
        Command::MockModel(args) => cli_tools::mock_model(&args),
        Command::ScrapeMetrics(args) => cli_tools::scrape_metrics(&args),
        Command::CheckIdentity(args) => cli_tools::check_identity(&args),
        Command::Profile(args) => cli_tools::profile(&args),
        Command::CollectPower(args) => cli_tools::collect_power(&args),
        Command::WaitPower(args) => cli_tools::wait_power(&args),
        Command::NodeOp(op) => cli_tools::node_op(&op),
        Command::NodeAgent => cli_tools::node_agent(),
    };
    ExitCode::from(match result {
        Ok(()) => error::exit::OK,
        Err(e) => {
            e.report();
            e.exit_code()
        }
    })
}
