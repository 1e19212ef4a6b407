//! `srt-graph submit`: an sbatch job whose batch step runs `srt-graph run --executor slurm` on the batch
//! host. The run directory, with the recipe and cluster config copied in, exists before `sbatch` runs
//! (srt-slurm copies them after submitting, racing the job's start).

use crate::cli_plan::load_cluster;
use crate::error::{CliError, CliResult};
use crate::options::RecipeArgs;
use clap::Args;
use srt_graph_engine::rundir::{unused_run_dir, write_atomic};
use std::path::{Path, PathBuf};

#[derive(Args)]
pub struct SubmitArgs {
    #[command(flatten)]
    pub recipe: RecipeArgs,
    /// Run directory (default: runs/<recipe-name>-<UTC timestamp>); must be on a filesystem the nodes
    /// share (Slurm writes the steps' logs there).
    #[arg(long)]
    pub run_dir: Option<PathBuf>,
    /// Print the sbatch script and stop (nothing is written or submitted).
    #[arg(long)]
    pub dry_run: bool,
    /// Labels for the job, comma-separated (stored in `job.json`; `monitor --tag`, `report --tag`).
    #[arg(long, value_name = "A,B", value_parser = crate::options::tags, default_value = "", hide_default_value = true)]
    pub tags: crate::options::Tags,
    /// One JSON line per submission on stdout (srtctl's keys, plus `run_dir`); prose goes to stderr.
    #[arg(long)]
    pub json: bool,
    /// Where default run directories go (`runs/<recipe-name>-<UTC timestamp>`).
    #[arg(skip = PathBuf::from("runs"))]
    pub runs_root: PathBuf,
    /// Submit a job that resumes this run directory (its recipe, its first job's directives), with
    /// `--exclude` for the nodes its journal says were lost.
    #[arg(long, value_name = "RUN_DIR", conflicts_with_all = ["run_dir", "tags"])]
    pub resume: Option<PathBuf>,
    /// Extra arguments for `srt-graph run` inside the job (e.g. `--keep-going`), after `--`.
    #[arg(last = true)]
    pub run_args: Vec<String>,
}

/// Lines of `#SBATCH --key=value`: a value is read by sbatch, not by a shell, so it may not span lines.
fn directive(key: &str, value: &str) -> Result<String, String> {
    let key = key.trim_start_matches('-');
    if key.is_empty()
        || !key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err(format!("`{key}` is not an sbatch option name"));
    }
    if value.contains(['\n', '\r']) {
        return Err(format!("the value of sbatch option `--{key}` spans lines"));
    }
    Ok(if value.is_empty() {
        format!("#SBATCH --{key}\n")
    } else {
        format!("#SBATCH --{key}={value}\n")
    })
}

/// The job script for `recipe`, running in `run_dir`.
fn script(
    args: &SubmitArgs,
    recipe: &srt_graph_steps::Recipe,
    cluster: &srt_graph_steps::ClusterConfig,
    run_dir: &Path,
    recipe_dir: Option<&Path>,
) -> Result<String, String> {
    let nodes = recipe.total_nodes();
    let mock = crate::options::mock_workers(&args.recipe, recipe);
    let mut s = String::from("#!/bin/bash\n");
    s.push_str(&directive("job-name", &recipe.name)?);
    s.push_str(&directive("nodes", &nodes.to_string())?);
    s.push_str(&directive("ntasks-per-node", "1")?);
    // Mock workers (and recipes of plain steps) need no GPU; a cluster that rejects the directive says
    // so in its config.
    if !mock && !recipe.roles.is_empty() && cluster.use_gpus_per_node_directive != Some(false) {
        s.push_str(&directive(
            "gpus-per-node",
            &recipe.gpus_per_node.to_string(),
        )?);
    }
    if cluster.file.is_some() && cluster.use_segment_sbatch_directive == Some(true) {
        s.push_str(&directive("segment", &nodes.to_string())?);
    }
    if let Some(a) = &recipe.slurm_account {
        s.push_str(&directive("account", a)?);
    }
    if let Some(p) = &recipe.slurm_partition {
        s.push_str(&directive("partition", p)?);
    }
    s.push_str(&directive("time", &recipe.slurm_time_limit)?);
    s.push_str(&directive(
        "output",
        &format!("{}/slurm-%j.out", run_dir.display()),
    )?);
    let mut extra: Vec<(String, String)> = recipe.sbatch_directives.clone();
    for (k, v) in &cluster.default_sbatch_directives {
        if !extra
            .iter()
            .any(|(rk, _)| rk.trim_start_matches('-') == k.trim_start_matches('-'))
        {
            extra.push((k.clone(), v.clone()));
        }
    }
    for (k, v) in &extra {
        s.push_str(&directive(k, v)?);
    }
    let me = std::env::current_exe().map_err(|e| format!("cannot find this program: {e}"))?;
    let mut argv: Vec<String> = vec![
        me.display().to_string(),
        "run".into(),
        run_dir.join("recipe.yaml").display().to_string(),
        "--run-dir".into(),
        run_dir.display().to_string(),
        "--executor".into(),
        "slurm".into(),
    ];
    if let Some(v) = &args.recipe.variant {
        argv.extend(["--variant".into(), v.clone()]);
    } else if let Some(v) = args
        .recipe
        .recipe
        .as_deref()
        .and_then(|r| crate::options::split_selector(r).1)
    {
        argv.extend(["--variant".into(), v]);
    }
    if cluster.file.is_some() {
        argv.extend([
            "--cluster-config".into(),
            run_dir.join("srtslurm.yaml").display().to_string(),
        ]);
    }
    if mock {
        argv.push("--mock-workers".into());
    }
    if !args.tags.0.is_empty() {
        argv.extend(["--tags".into(), args.tags.0.join(",")]);
    }
    // How the job simulates is decided here, as for `run`.
    if args.recipe.smoke {
        argv.push("--smoke".into());
    }
    if args.recipe.sim_speed != 1.0 {
        argv.extend(["--sim-speed".into(), args.recipe.sim_speed.to_string()]);
    }
    if args.recipe.timing == crate::options::Timing::Fixed {
        argv.extend(["--timing".into(), "fixed".into()]);
    }
    if let Some(d) = recipe_dir {
        argv.extend(["--recipe-dir".into(), d.display().to_string()]);
    }
    argv.extend(args.run_args.iter().cloned());
    let line = srt_graph_engine::remote::shell_line(&argv).map_err(|e| e.to_string())?;
    if args.run_args.iter().any(|a| a == "--keep-up") {
        // The job's end would take the kept-up services with it: hold the allocation until `down`.
        let hold = srt_graph_engine::remote::shell_line(&[
            me.display().to_string(),
            "hold".into(),
            run_dir.display().to_string(),
        ])
        .map_err(|e| e.to_string())?;
        s.push_str("set -uo pipefail\n");
        s.push_str(&format!("{line}\nstatus=$?\n"));
        s.push_str(&format!(
            "[ \"$status\" -eq 0 ] && exec {hold}\nexit \"$status\"\n"
        ));
    } else {
        s.push_str("set -euo pipefail\n");
        s.push_str(&format!("exec {line}\n"));
    }
    Ok(s)
}

/// A job `sbatch` accepted: what `submit` prints and `apply --json` reports.
pub struct Submission {
    pub job_id: String,
    pub job_name: String,
    pub run_dir: PathBuf,
    pub config_path: PathBuf,
    pub tags: Vec<String>,
}

impl Submission {
    /// srtctl's `--json` line (`status`, `slurm_job_id`, `job_name`, `output_dir`, `metadata_path`,
    /// `config_path`, `tags`), plus srt-graph's `run_dir`.
    pub fn json_line(&self) -> String {
        let tags = (!self.tags.is_empty()).then_some(&self.tags);
        serde_json::json!({
            "status": "submitted",
            "slurm_job_id": self.job_id,
            "job_name": self.job_name,
            "output_dir": self.run_dir,
            "metadata_path": self.run_dir.join(srt_graph_results::job::FILE),
            "config_path": self.config_path,
            "tags": tags,
            "run_dir": self.run_dir,
        })
        .to_string()
    }
}

pub fn submit(args: &SubmitArgs) -> CliResult {
    let loaded = crate::cli_plan::load_one(&args.recipe, "submit")?;
    match submit_loaded(args, &loaded)? {
        None => Ok(()),
        Some(s) if args.json => {
            crate::cli_plan::emit(&format!("{}\n", s.json_line()));
            Ok(())
        }
        Some(s) => {
            crate::cli_plan::emit(&format!("{}\n", s.job_id));
            let d = s.run_dir.display();
            eprintln!(
                "submitted job {}; run directory {d}\n  follow: tail -f {d}/slurm-{}.out\n  status: srt-graph status {d}",
                s.job_id, s.job_id
            );
            Ok(())
        }
    }
}

/// Writes the run directory and submits `loaded` (one variant of `args.recipe`); `None` for
/// `--dry-run`, which prints the script instead.
pub fn submit_loaded(
    args: &SubmitArgs,
    loaded: &srt_graph_steps::Loaded,
) -> Result<Option<Submission>, CliError> {
    let cluster = load_cluster(&args.recipe)?;
    let recipe = &loaded.recipe;
    let run_dir = args.run_dir.clone().unwrap_or_else(|| {
        // A variant's name joins the recipe's, so that an override file's jobs tell apart.
        let name = match loaded.variant.as_str() {
            "" => recipe.name.clone(),
            v => format!("{}-{v}", recipe.name),
        };
        unused_run_dir(&args.runs_root, &name)
    });
    let absolute = if run_dir.is_absolute() {
        run_dir.clone()
    } else {
        std::env::current_dir()
            .unwrap_or_else(|_| PathBuf::from("/"))
            .join(&run_dir)
    };
    let recipe_dir = args
        .recipe
        .recipe
        .as_deref()
        .map(|r| crate::options::split_selector(r).0)
        .and_then(|f| f.canonicalize().ok())
        .and_then(|f| f.parent().map(Path::to_path_buf));
    let text = script(args, recipe, &cluster, &absolute, recipe_dir.as_deref())
        .map_err(|e| CliError::Invalid(format!("{e}\nnothing was submitted")))?;
    if args.dry_run {
        print!("{text}");
        return Ok(None);
    }
    if absolute.join("journal.jsonl").exists() {
        return Err(CliError::Failed(format!(
            "{} already holds a run (use `srt-graph resume`)",
            absolute.display()
        )));
    }
    let access = recipe.run_dir_access;
    let prepared = crate::run_dir::create(&absolute, access)
        .and_then(|()| crate::run_dir::copy_inputs(&args.recipe, &absolute, access))
        .and_then(|()| {
            // The cluster config that was found (not only one given by flag) travels with the run.
            match &cluster.file {
                Some(f) if !absolute.join("srtslurm.yaml").exists() => {
                    crate::run_dir::copy_input(f, &absolute.join("srtslurm.yaml"), access)
                }
                _ => Ok(()),
            }
        })
        .and_then(|()| write_atomic(&absolute.join("sbatch.sh"), text.as_bytes()));
    if let Err(e) = prepared {
        return Err(CliError::Failed(format!(
            "run directory {}: {e}",
            absolute.display()
        )));
    }
    // The clock of the run's time breakdown starts here (`status`: the Slurm queue is its first stage).
    let submitted_at = srt_graph_engine::journal::now();
    let job = sbatch(&absolute, "sbatch.sh")?;
    let _ = std::fs::write(absolute.join("job_id"), format!("{job}\n"));
    let _ = std::fs::write(
        absolute.join(srt_graph_results::breakdown::SUBMIT_FILE),
        format!(
            "{}\n",
            serde_json::json!({"job_id": job, "submitted_at": submitted_at})
        ),
    );
    // `job.json` exists from submission on (srtctl writes its metadata then); the job rewrites it
    // with the nodes it got.
    let variant = (!loaded.variant.is_empty()).then(|| loaded.variant.clone());
    crate::run_dir::write_submitted_job(
        recipe,
        variant,
        crate::options::mock_workers(&args.recipe, recipe),
        &args.tags.0,
        &job,
        &absolute,
    )?;
    Ok(Some(Submission {
        job_id: job,
        job_name: recipe.name.clone(),
        config_path: absolute.join("recipe.yaml"),
        run_dir: absolute,
        tags: args.tags.0.clone(),
    }))
}

/// `sbatch --parsable` of the run directory's `script`; the job id.
pub fn sbatch(run_dir: &Path, script: &str) -> Result<String, CliError> {
    let out = std::process::Command::new("sbatch")
        .arg("--parsable")
        .arg(run_dir.join(script))
        .current_dir(run_dir)
        .output();
    match out {
        Ok(o) if o.status.success() => {
            let stdout = String::from_utf8_lossy(&o.stdout);
            Ok(stdout.trim().split(';').next().unwrap_or("").to_string())
        }
        Ok(o) => Err(CliError::Failed(format!(
            "sbatch refused the job: {}",
            String::from_utf8_lossy(&o.stderr).trim()
        ))),
        Err(e) => Err(CliError::Failed(format!(
            "cannot run sbatch: {e} (is Slurm installed here?)"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::directive;

    #[test]
    fn directives_are_single_lines() {
        assert_eq!(
            directive("time", "01:00:00").unwrap(),
            "#SBATCH --time=01:00:00\n"
        );
        assert_eq!(
            directive("--exclusive", "").unwrap(),
            "#SBATCH --exclusive\n"
        );
        assert!(directive("time", "1\n#SBATCH --x").is_err());
        assert!(directive("a b", "1").is_err());
    }
}
