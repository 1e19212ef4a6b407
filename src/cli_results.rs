//! The commands that read finished run directories: `report` (HTML + SVG charts) and `diff` (two runs).

use crate::error::{CliError, CliResult};
use clap::Args;
use srt_graph_results::{report, rollup, ResultsError};
use std::path::PathBuf;

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
    /// Only the runs with this tag (`--tags` of run, submit, apply); repeat for any of several.
    #[arg(long = "tag", value_name = "TAG")]
    pub tags: Vec<String>,
}

pub fn report(args: &ReportArgs) -> CliResult {
    let dirs: Vec<PathBuf> = args
        .run_dirs
        .iter()
        .filter(|d| srt_graph_results::job::tagged(d, &args.tags))
        .cloned()
        .collect();
    if dirs.is_empty() {
        return Err(CliError::Invalid(format!(
            "none of the {} run(s) has the tag {}",
            args.run_dirs.len(),
            args.tags.join(" or ")
        )));
    }
    let runs = dirs
        .iter()
        .map(|d| {
            report::Run::read(d).map(|mut r| {
                r.predicted = crate::cli_predict::predicted_points(&r);
                r
            })
        })
        .collect::<Result<Vec<_>, _>>()
        .map_err(failed)?;
    let out = args.output.clone().unwrap_or_else(|| match &dirs[..] {
        [one] => one.join("report.html"),
        _ => PathBuf::from("report.html"),
    });
    // Runs made before srt-graph wrote rollups get theirs now; existing ones are refreshed.
    for d in &dirs {
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
