//! The commands that read run directories: `report` (HTML + SVG charts), `diff` (two runs), `monitor`
//! (a live terminal UI, or `--once` plain text), and what every run writes when it ends (the rollup and
//! the report).

use crate::error::{CliError, CliResult};
use clap::Args;
use srt_graph_results::{report, rollup, snapshot, ResultsError};
use std::path::{Path, PathBuf};

fn failed(e: ResultsError) -> CliError {
    match e {
        ResultsError::NotARun(_) => CliError::Invalid(e.to_string()),
        other => CliError::Failed(other.to_string()),
    }
}

#[derive(Args)]
pub struct ReportArgs {
    /// Run directories; several overlay in one report.
    #[arg(required = true)]
    pub run_dirs: Vec<PathBuf>,
    /// The HTML file (default: RUN_DIR/report.html for one run, ./report.html for several).
    #[arg(short, long)]
    pub output: Option<PathBuf>,
}

pub fn report(args: &ReportArgs) -> CliResult {
    let runs = args
        .run_dirs
        .iter()
        .map(|d| report::Run::read(d))
        .collect::<Result<Vec<_>, _>>()
        .map_err(failed)?;
    let out = args
        .output
        .clone()
        .unwrap_or_else(|| match &args.run_dirs[..] {
            [one] => one.join("report.html"),
            _ => PathBuf::from("report.html"),
        });
    // Runs made before srt-graph wrote rollups get theirs now; existing ones are refreshed.
    for d in &args.run_dirs {
        rollup::write(d).map_err(failed)?;
    }
    let svgs = report::write(&runs, &out).map_err(failed)?;
    println!("report: {}", out.display());
    if let Some(dir) = svgs.first().and_then(|p| p.parent()) {
        println!("charts: {} SVG file(s) in {}", svgs.len(), dir.display());
    }
    Ok(())
}

#[derive(Args)]
pub struct DiffArgs {
    pub run_a: PathBuf,
    pub run_b: PathBuf,
}

pub fn diff(args: &DiffArgs) -> CliResult {
    let text = srt_graph_results::diff::diff(&args.run_a, &args.run_b).map_err(failed)?;
    print!("{text}");
    Ok(())
}

/// What a run leaves for people at its end: srt-slurm's rollup and the HTML report. A failure here is a
/// warning: the run's own outcome stands.
pub fn after_run(run_dir: &Path) -> Option<PathBuf> {
    match rollup::write(run_dir) {
        Ok(true) => eprintln!(
            "rollup: {} and {}",
            run_dir.join(rollup::JSON_FILE).display(),
            run_dir.join(rollup::CSV_FILE).display()
        ),
        Ok(false) => {}
        Err(e) => eprintln!("warning: cannot write the rollup: {e}"),
    }
    let out = run_dir.join("report.html");
    match report::Run::read(run_dir).and_then(|r| report::write(&[r], &out)) {
        Ok(_) => Some(out),
        Err(e) => {
            eprintln!("warning: cannot write the report: {e}");
            None
        }
    }
}

#[derive(Args)]
pub struct MonitorArgs {
    /// Run directories (default: the 4 newest under ./runs).
    pub run_dirs: Vec<PathBuf>,
    /// Print the state once as plain text and exit (for scripts).
    #[arg(long)]
    pub once: bool,
    /// Lines of the selected step's log to show.
    #[arg(long, default_value_t = 12)]
    pub log_lines: usize,
}

fn newest_runs() -> Vec<PathBuf> {
    let mut dirs: Vec<(std::time::SystemTime, PathBuf)> = std::fs::read_dir("runs")
        .into_iter()
        .flatten()
        .flatten()
        .filter(|d| d.path().join("plan.json").is_file())
        .filter_map(|d| Some((d.metadata().ok()?.modified().ok()?, d.path())))
        .collect();
    dirs.sort();
    dirs.into_iter().rev().take(4).map(|(_, p)| p).collect()
}

/// Each run's snapshot now (an unreadable run is reported in its place).
pub fn snapshots(dirs: &[PathBuf]) -> Vec<Result<snapshot::Snapshot, String>> {
    dirs.iter()
        .map(|d| {
            let alive = crate::session::live_orchestrator(d).is_some();
            snapshot::read(d, alive).map_err(|e| e.to_string())
        })
        .collect()
}

pub fn monitor(args: &MonitorArgs) -> CliResult {
    let dirs = if args.run_dirs.is_empty() {
        newest_runs()
    } else {
        args.run_dirs.clone()
    };
    if dirs.is_empty() {
        return Err(CliError::Invalid(
            "no run directories given and none under ./runs".into(),
        ));
    }
    if args.once {
        print!(
            "{}",
            crate::cli_monitor::plain(&snapshots(&dirs), args.log_lines)
        );
        return Ok(());
    }
    crate::cli_monitor::run_tui(&dirs, args.log_lines)
        .map_err(|e| CliError::Failed(format!("terminal: {e}")))
}
