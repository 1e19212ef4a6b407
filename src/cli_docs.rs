//! `srt-graph completions SHELL` and `srt-graph man`: generated from the same clap definitions the
//! parser uses (clap_complete, clap_mangen), so they never drift from the flags.

use crate::error::{CliError, CliResult};
use clap::{Args, CommandFactory};
use std::path::PathBuf;

#[derive(Args)]
pub struct CompletionsArgs {
    /// The shell to complete for.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

#[derive(Args)]
pub struct ManArgs {
    /// Write one page per command (`srt-graph.1`, `srt-graph-run.1`, …) into this directory instead of
    /// printing the main page.
    #[arg(long, value_name = "DIR")]
    pub out_dir: Option<PathBuf>,
}

pub fn completions<C: CommandFactory>(args: &CompletionsArgs) -> CliResult {
    let mut cmd = C::command();
    let mut out = Vec::new();
    clap_complete::generate(args.shell, &mut cmd, "srt-graph", &mut out);
    crate::cli_plan::emit(&String::from_utf8_lossy(&out));
    Ok(())
}

pub fn man<C: CommandFactory>(args: &ManArgs) -> CliResult {
    let cmd = C::command();
    match &args.out_dir {
        Some(dir) => {
            std::fs::create_dir_all(dir)
                .and_then(|()| clap_mangen::generate_to(cmd, dir))
                .map_err(|e| CliError::Failed(format!("{}: {e}", dir.display())))?;
            eprintln!("man pages written to {}", dir.display());
        }
        None => {
            let mut out = Vec::new();
            clap_mangen::Man::new(cmd)
                .render(&mut out)
                .map_err(|e| CliError::Failed(e.to_string()))?;
            crate::cli_plan::emit(&String::from_utf8_lossy(&out));
        }
    }
    Ok(())
}
