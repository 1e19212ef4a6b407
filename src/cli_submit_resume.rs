//! `submit --resume RUN_DIR`: a new job that resumes a run, with `--exclude` for the nodes the
//! journal says were lost (in the job's directives, so Slurm does not hand them out again, and on
//! the resume, so the plan leaves them out).

use crate::error::{CliError, CliResult};
use srt_graph_engine::journal::{self, Event};
use srt_graph_engine::rundir::write_atomic;
use std::path::Path;

/// The script's file in the run directory (the first job's stays as `sbatch.sh`).
pub const SCRIPT: &str = "sbatch-resume.sh";

/// Nodes the run lost, in the order it lost them, each once.
pub fn lost_nodes(run_dir: &Path) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for r in journal::read(&run_dir.join("journal.jsonl")).unwrap_or_default() {
        if let Event::NodeLost { node, .. } = r.event {
            if !out.contains(&node) {
                out.push(node);
            }
        }
    }
    out
}

/// The resume job's script: the first job's directives (without an `--exclude` of its own), the lost
/// nodes excluded, then `srt-graph resume RUN_DIR [--exclude …]`.
pub fn script(run_dir: &Path) -> Result<String, String> {
    let first = run_dir.join("sbatch.sh");
    let text = std::fs::read_to_string(&first).map_err(|e| {
        format!(
            "{}: {e} (`submit --resume` resumes a run that `submit` started)",
            first.display()
        )
    })?;
    let lost = lost_nodes(run_dir);
    let mut s = String::from("#!/bin/bash\n");
    for line in text.lines().filter(|l| l.starts_with("#SBATCH ")) {
        if !line.starts_with("#SBATCH --exclude=") {
            s.push_str(line);
            s.push('\n');
        }
    }
    if !lost.is_empty() {
        s.push_str(&format!("#SBATCH --exclude={}\n", lost.join(",")));
    }
    let me = std::env::current_exe().map_err(|e| format!("cannot find this program: {e}"))?;
    let mut argv = vec![
        me.display().to_string(),
        "resume".to_string(),
        run_dir.display().to_string(),
    ];
    if !lost.is_empty() {
        argv.extend(["--exclude".to_string(), lost.join(",")]);
    }
    let line = srt_graph_engine::remote::shell_line(&argv).map_err(|e| e.to_string())?;
    s.push_str(&format!("set -euo pipefail\nexec {line}\n"));
    Ok(s)
}

/// Writes the script into the run directory and submits it (or prints it, `--dry-run`).
pub fn submit(run_dir: &Path, args: &crate::cli_submit::SubmitArgs) -> CliResult {
    if args.recipe.recipe.is_some() || !args.run_args.is_empty() {
        return Err(CliError::Invalid(
            "submit --resume RUN_DIR takes the run's own recipe: give no recipe and no `-- ARGS`"
                .into(),
        ));
    }
    let dry_run = args.dry_run;
    let run_dir = run_dir
        .canonicalize()
        .map_err(|e| CliError::Failed(format!("{}: {e}", run_dir.display())))?;
    if !run_dir.join("journal.jsonl").exists() {
        return Err(CliError::Invalid(format!(
            "{} holds no run to resume (no journal.jsonl)",
            run_dir.display()
        )));
    }
    let text =
        script(&run_dir).map_err(|e| CliError::Invalid(format!("{e}\nnothing was submitted")))?;
    if dry_run {
        print!("{text}");
        return Ok(());
    }
    write_atomic(&run_dir.join(SCRIPT), text.as_bytes())
        .map_err(|e| CliError::Failed(format!("{}: {e}", run_dir.join(SCRIPT).display())))?;
    let job = crate::cli_submit::sbatch(&run_dir, SCRIPT)?;
    let _ = std::fs::write(run_dir.join("job_id"), format!("{job}\n"));
    let lost = lost_nodes(&run_dir);
    if args.json {
        // srtctl's keys where they apply, as `submit --json` prints them; CI reads the job id here.
        let line = serde_json::json!({
            "status": "submitted",
            "slurm_job_id": job,
            "output_dir": run_dir,
            "metadata_path": run_dir.join(srt_graph_results::job::FILE),
            "run_dir": run_dir,
            "resumes": true,
            "excluded_nodes": lost,
        });
        crate::cli_plan::emit(&format!("{line}\n"));
    } else {
        crate::cli_plan::emit(&format!("{job}\n"));
    }
    let d = run_dir.display();
    eprintln!(
        "submitted job {job}, resuming {d}{}\n  follow: tail -f {d}/slurm-{job}.out",
        if lost.is_empty() {
            String::new()
        } else {
            format!(" without {}", lost.join(", "))
        }
    );
    Ok(())
}
