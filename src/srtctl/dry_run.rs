//! `srt-graph dry-run -f FILE|DIR[:SELECTOR]`: srtctl's dry-run. Per variant: the job script that
//! `submit --dry-run` prints, then srtctl's tables: the container mounts by origin, the environment by
//! scope (secrets redacted) and the srun options. Nothing is written or submitted.

use super::{expand, FileArgs, Variant};
use crate::cli_place::Executor;
use crate::cli_submit::{submit_loaded, SubmitArgs};
use crate::error::{CliError, CliResult};
use clap::Args;
use std::fmt::Write as _;

#[derive(Args)]
pub struct DryRunArgs {
    #[command(flatten)]
    pub files: FileArgs,
}

pub fn dry_run(args: &DryRunArgs) -> CliResult {
    super::srtctl_exit((|| {
        args.files.note_inert_flags();
        let variants = expand(&args.files, false)?;
        for (i, v) in variants.iter().enumerate() {
            crate::cli_plan::emit(&format!(
                "{}# ==== {} ({}/{}) ====\n",
                if i == 0 { "" } else { "\n" },
                v.spec(),
                i + 1,
                variants.len()
            ));
            let submit = SubmitArgs {
                recipe: v.recipe_args(&args.files, false, None),
                run_dir: None,
                resume: None,
                dry_run: true,
                tags: crate::options::Tags::default(),
                json: false,
                runs_root: args.files.runs_root(),
                run_args: Vec::new(),
            };
            submit_loaded(&submit, &v.loaded)?;
            crate::cli_plan::emit(&tables(v, &args.files)?);
        }
        Ok(())
    })())
}

/// srtctl's three tables, as aligned text.
fn tables(v: &Variant, files: &FileArgs) -> Result<String, CliError> {
    let recipe = &v.loaded.recipe;
    let cluster = crate::cli_plan::load_cluster(&v.recipe_args(files, false, None))?;
    let target = crate::options::target(
        recipe,
        recipe.mock_workers,
        Executor::Slurm,
        "$RUN_DIR",
        "$SRT_GRAPH_CACHE",
    );
    let plan = srt_graph_steps::compile(recipe, &target)?;
    let redact = plan.redactor();
    let mut out = String::new();

    let mut mounts: Vec<[String; 3]> = Vec::new();
    for m in target.container.iter().flat_map(|c| &c.mounts) {
        let origin = if cluster
            .default_mounts
            .iter()
            .any(|(h, i)| *m == format!("{h}:{i}"))
        {
            "srtslurm.yaml"
        } else if recipe
            .container_mounts
            .iter()
            .any(|(h, i)| *m == format!("{h}:{i}"))
        {
            "recipe"
        } else {
            "built-in"
        };
        let (host, inside) = m.split_once(':').unwrap_or((m.as_str(), ""));
        mounts.push([origin.into(), host.into(), inside.into()]);
    }
    table(
        &mut out,
        "container mounts",
        ["origin", "host", "container"],
        &mounts,
        "none: no container (workers run on the host)",
    );

    let mut env: Vec<[String; 3]> = Vec::new();
    let mut scope = |name: &str, vars: &[(String, String)]| {
        for (k, val) in vars {
            env.push([name.into(), k.clone(), redact.clean(val).into_owned()]);
        }
    };
    scope("all processes (environment)", &recipe.environment);
    for role in &recipe.roles {
        scope(&format!("{} workers", role.role.as_str()), &role.env);
    }
    scope("frontend", &recipe.frontend.env);
    table(
        &mut out,
        "environment",
        ["scope", "variable", "value"],
        &env,
        "none set by the recipe",
    );

    let mut srun: Vec<[String; 3]> = crate::session::srun_options(recipe)
        .into_iter()
        .map(|o| ["recipe (srun_options)".into(), o, "every step".into()])
        .collect();
    for o in [
        "--jobid=$SLURM_JOB_ID",
        "--overlap",
        "--nodes=1",
        "--ntasks=1",
        "--nodelist=NODE",
    ] {
        srun.push(["srt-graph".into(), o.into(), "every step".into()]);
    }
    if target.container.is_some() {
        for o in [
            "--container-image",
            "--container-mounts",
            "--container-name",
            "--no-container-entrypoint",
            "--no-container-mount-home",
        ] {
            srun.push([
                "srt-graph (pyxis)".into(),
                o.into(),
                "steps in the container".into(),
            ]);
        }
    }
    table(
        &mut out,
        "srun options",
        ["origin", "option", "applies to"],
        &srun,
        "",
    );
    Ok(out)
}

fn table(out: &mut String, title: &str, head: [&str; 3], rows: &[[String; 3]], empty: &str) {
    let _ = writeln!(out, "\n# {title}");
    if rows.is_empty() {
        let _ = writeln!(out, "#   {empty}");
        return;
    }
    let width = |i: usize| {
        rows.iter()
            .map(|r| r[i].chars().count())
            .chain([head[i].len()])
            .max()
            .unwrap_or(0)
    };
    let (a, b) = (width(0), width(1));
    let _ = writeln!(out, "#   {:<a$}  {:<b$}  {}", head[0], head[1], head[2]);
    for r in rows {
        let _ = writeln!(out, "#   {:<a$}  {:<b$}  {}", r[0], r[1], r[2]);
    }
}
