//! `srt-graph`: compile srt-slurm recipes into a DAG of steps and run it across nodes.

mod cli_plan;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

/// Exit codes, documented in `--help`.
pub mod exit {
    pub const OK: u8 = 0;
    /// Something went wrong that is not the recipe's or a step's fault (I/O, environment).
    pub const ERROR: u8 = 1;
    /// The recipe or cluster config is invalid; nothing was started.
    pub const INVALID: u8 = 2;
}

#[derive(Parser)]
#[command(
    name = "srt-graph",
    version,
    about = "Compile srt-slurm LLM-serving benchmark recipes into a DAG of steps and run it across nodes",
    after_help = "Exit codes: 0 success; 1 other error (I/O, environment); 2 invalid recipe or cluster config \
                  (nothing was started)."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Print the graph a recipe compiles to (text by default).
    Plan(cli_plan::PlanArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let code = match cli.command {
        Command::Plan(args) => cli_plan::run(&args),
    };
    ExitCode::from(code)
}
