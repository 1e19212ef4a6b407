//! A run's end, as people read it: `summary.json`, the steps' table, the critical path, failures, what
//! was left up, the benchmark's points, the rollup and the HTML report; and the exit status.

use crate::error::{CliError, CliResult};
use srt_graph_engine::journal::RunStatus;
use srt_graph_engine::rundir::write_atomic;
use srt_graph_engine::scheduler::{RunReport, StepResult};
use srt_graph_engine::Dag;
use std::path::{Path, PathBuf};

pub fn finish(dag: &Dag, run_dir: &Path, report: &RunReport) -> CliResult {
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
