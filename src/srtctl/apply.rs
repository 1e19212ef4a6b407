//! `srt-graph apply -f FILE|DIR[:SELECTOR]`: srtctl's `apply`. Every variant the argument names (a
//! directory's files, an override file's variants, a sweep's points) is loaded and preflighted first;
//! then each is submitted as one Slurm job (`submit`), or, with `--mock`, run here with mock workers.
//! `--json` prints one line per job on stdout, prose goes to stderr.

use super::{expand, FileArgs, Variant};
use crate::cli_submit::{submit_loaded, SubmitArgs};
use crate::error::{CliError, CliResult};
use clap::{Args, Parser};
use std::path::PathBuf;

#[derive(Args)]
pub struct ApplyArgs {
    #[command(flatten)]
    pub files: FileArgs,
    /// Run this setup script (in srt-slurm's `configs/`) instead of each recipe's `setup_script`.
    #[arg(long, value_name = "NAME", value_parser = crate::options::setup_script_name)]
    pub setup_script: Option<String>,
    /// Labels, comma-separated, stored in each job's `job.json`.
    #[arg(long, value_name = "A,B", value_parser = crate::options::tags, default_value = "", hide_default_value = true)]
    pub tags: crate::options::Tags,
    /// One JSON line per submission on stdout (srtctl's keys, plus `run_dir`); prose goes to stderr.
    #[arg(long)]
    pub json: bool,
    /// Print each job's sbatch script; submit nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Skip the model, container and setup-script checks before submitting.
    #[arg(long)]
    pub no_preflight: bool,
    /// Run each variant here, on the local executor with mock workers (`run --mock-workers`), instead of
    /// submitting it; srtctl's fake-sbatch mock has no use beside that.
    #[arg(long)]
    pub mock: bool,
    /// A directory with bad files submits the good ones (the bad ones are named) instead of nothing.
    #[arg(long)]
    pub keep_going: bool,
    /// Extra arguments for `srt-graph run` (in each job, or here with `--mock`), after `--`.
    #[arg(last = true)]
    pub run_args: Vec<String>,
    /// srtctl's single-node Bash script: not produced here (see the error for what to use).
    #[arg(long, hide = true)]
    pub bash: bool,
    /// srtctl's mock phase time: not used here (see the error).
    #[arg(long, hide = true, value_name = "S")]
    pub mock_tick_s: Option<f64>,
}

pub fn apply(args: &ApplyArgs) -> CliResult {
    let result = apply_all(args);
    if let (true, Err(e)) = (args.json, &result) {
        let line = serde_json::json!({"status": "error", "error": e.to_string()});
        crate::cli_plan::emit(&format!("{line}\n"));
    }
    super::srtctl_exit(result)
}

fn apply_all(args: &ApplyArgs) -> CliResult {
    if args.bash {
        return Err(CliError::Invalid(
            "--bash (srtctl's single-node Bash lifecycle script) has no equivalent: srt-graph runs the \
             recipe itself; use `srt-graph run RECIPE` on the node (ssh or local executor), or `srt-graph \
             submit --dry-run RECIPE` for the job script"
                .into(),
        ));
    }
    if args.mock_tick_s.is_some() {
        return Err(CliError::Invalid(
            "--mock-tick-s (srtctl's fixed time per mock phase) has no equivalent: `apply --mock` runs the \
             real pipeline with mock workers; pace it with `srt-graph run --mock-workers --sim-speed N`"
                .into(),
        ));
    }
    args.files.note_inert_flags();
    let variants = expand(&args.files, args.keep_going)?;
    if !(args.no_preflight || args.mock || args.dry_run) {
        let failed = super::preflight::check_all(&variants, false);
        if failed > 0 {
            return Err(CliError::Invalid(format!(
                "preflight: {failed} of {} variant(s) failed (above); nothing was submitted \
                 (--no-preflight skips the checks)",
                variants.len()
            )));
        }
    }
    if variants.is_empty() && args.json {
        crate::cli_plan::emit("{\"status\":\"no-submissions\"}\n");
    }
    for v in &variants {
        eprintln!("== {}", v.spec());
        if args.mock {
            mock_run(args, v)?;
        } else {
            submit(args, v)?;
        }
    }
    Ok(())
}

fn submit(args: &ApplyArgs, v: &Variant) -> CliResult {
    let submit = SubmitArgs {
        recipe: v.recipe_args(&args.files, false, args.setup_script.as_deref()),
        run_dir: None,
        resume: None,
        dry_run: args.dry_run,
        tags: args.tags.clone(),
        json: args.json,
        runs_root: args.files.runs_root(),
        run_args: args.run_args.clone(),
    };
    let Some(s) = submit_loaded(&submit, &v.loaded)? else {
        return Ok(());
    };
    if args.json {
        crate::cli_plan::emit(&format!("{}\n", s.json_line()));
    } else {
        crate::cli_plan::emit(&format!("{}\n", s.job_id));
    }
    eprintln!(
        "submitted job {} ({}); run directory {}",
        s.job_id,
        s.job_name,
        s.run_dir.display()
    );
    Ok(())
}

/// `srt-graph run` parses its own arguments, so that `apply --mock` runs exactly what `run` would.
#[derive(Parser)]
#[command(no_binary_name = true)]
struct RunLine {
    #[command(flatten)]
    run: crate::cli_run::RunArgs,
}

fn mock_run(args: &ApplyArgs, v: &Variant) -> CliResult {
    let name = match v.loaded.variant.as_str() {
        "" => v.loaded.recipe.name.clone(),
        variant => format!("{}-{variant}", v.loaded.recipe.name),
    };
    let run_dir = srt_graph_engine::rundir::unused_run_dir(&args.files.runs_root(), &name);
    let mut line: Vec<String> = vec![
        v.file.display().to_string(),
        "--mock-workers".into(),
        "--executor".into(),
        "local".into(),
        "--run-dir".into(),
        run_dir.display().to_string(),
    ];
    if !v.loaded.variant.is_empty() {
        line.extend(["--variant".into(), v.loaded.variant.clone()]);
    }
    if let Some(c) = &args.files.cluster_config {
        line.extend(["--cluster-config".into(), c.display().to_string()]);
    }
    if let Some(s) = &args.setup_script {
        line.extend(["--setup-script".into(), s.clone()]);
    }
    if !args.tags.0.is_empty() {
        line.extend(["--tags".into(), args.tags.0.join(",")]);
    }
    line.extend(args.run_args.iter().cloned());
    let parsed = RunLine::try_parse_from(&line).map_err(|e| CliError::Invalid(e.to_string()))?;
    let outcome = crate::cli_run::run(&parsed.run);
    if args.json {
        let status = match &outcome {
            Ok(()) => "completed",
            Err(_) => "failed",
        };
        let abs = std::env::current_dir()
            .unwrap_or_else(|_| PathBuf::from("/"))
            .join(&run_dir);
        let tags = (!args.tags.0.is_empty()).then_some(&args.tags.0);
        let record = serde_json::json!({
            "status": status,
            "slurm_job_id": null,
            "job_name": v.loaded.recipe.name,
            "output_dir": abs,
            "metadata_path": abs.join(srt_graph_results::job::FILE),
            "config_path": abs.join("recipe.yaml"),
            "tags": tags,
            "run_dir": abs,
        });
        crate::cli_plan::emit(&format!("{record}\n"));
    }
    outcome
}
