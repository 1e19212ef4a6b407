//! `srt-graph plan`: recipe → graph, printed as text, DOT, Mermaid or JSON.

use crate::error::{CliError, CliResult};
use crate::options::{split_selector, RecipeArgs, EMBEDDED_DEFAULT, EMBEDDED_NAME};
use clap::Args;
use srt_graph_engine::{render, Dag};
use srt_graph_steps::{compile, ClusterConfig, Loaded, RecipeError, Target};
use std::path::PathBuf;

#[derive(Args)]
pub struct PlanArgs {
    #[command(flatten)]
    pub recipe: RecipeArgs,
    /// Graphviz DOT (render with `dot -Tsvg`).
    #[arg(long, group = "format")]
    pub dot: bool,
    /// Mermaid flowchart.
    #[arg(long, group = "format")]
    pub mermaid: bool,
    /// Plan for this executor, as `run --executor` would run it (Slurm: in the recipe's container).
    #[arg(long, value_enum, default_value_t = crate::cli_place::Executor::Local)]
    pub executor: crate::cli_place::Executor,
    /// The plan as JSON (see README: "Plan JSON").
    #[arg(long, group = "format")]
    pub json: bool,
}

pub fn load_cluster(args: &RecipeArgs) -> Result<ClusterConfig, RecipeError> {
    let path = match &args.cluster_config {
        Some(p) => Some(p.clone()),
        None => {
            let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
            ClusterConfig::discover(&cwd, std::env::var("SRTSLURM_CONFIG").ok().as_deref())
        }
    };
    match path {
        Some(p) => ClusterConfig::load(&p),
        None => Ok(ClusterConfig::default()),
    }
}

/// Loads the recipe's variants (after the cluster config).
pub fn load(args: &RecipeArgs) -> Result<Vec<Loaded>, CliError> {
    let cluster = load_cluster(args)?;
    let loaded = match &args.recipe {
        Some(arg) => {
            let (file, suffix) = split_selector(arg);
            let selector = args.variant.clone().or(suffix);
            srt_graph_steps::load_file(&file, selector.as_deref(), &cluster)
        }
        None => srt_graph_steps::load_str(
            EMBEDDED_DEFAULT,
            EMBEDDED_NAME,
            args.variant.as_deref(),
            &cluster,
        ),
    };
    let mut loaded = loaded?;
    if let Some(script) = &args.setup_script {
        for v in &mut loaded {
            v.recipe.setup_script = Some(script.clone());
        }
    }
    Ok(loaded)
}

/// Loads a recipe that must name exactly one variant (what `run` and `submit` take); `verb` says what
/// is done with it, for the error.
pub fn load_one(args: &RecipeArgs, verb: &str) -> Result<Loaded, CliError> {
    let mut variants = load(args)?;
    if variants.len() != 1 {
        let ids: Vec<&str> = variants.iter().map(|v| v.variant.as_str()).collect();
        return Err(CliError::Invalid(format!(
            "this file has {} variants; {verb} one at a time with FILE:VARIANT or --variant ({})",
            variants.len(),
            ids.join(", ")
        )));
    }
    Ok(variants.remove(0))
}

pub fn run(args: &PlanArgs) -> CliResult {
    let variants = load(&args.recipe)?;
    let mut dags = Vec::with_capacity(variants.len());
    for v in &variants {
        // The graph `run` would execute with the same options (nodes and paths stay symbolic).
        let mock = crate::options::mock_workers(&args.recipe, &v.recipe);
        let target = Target {
            smoke: args.recipe.smoke,
            sim_speed: args.recipe.sim_speed,
            ..crate::options::target(
                &v.recipe,
                mock,
                args.executor,
                "$RUN_DIR",
                "$SRT_GRAPH_CACHE",
            )
        };
        let target = crate::options::with_timing(target, args.recipe.timing);
        // `plan` shows, never runs: the whole graph is the redacted one.
        let plan = compile(&v.recipe, &target)?.redacted();
        let dag = Dag::new(plan).map_err(|e| CliError::Invalid(e.to_string()))?;
        dags.push((v.variant.clone(), dag));
    }
    let many = dags.len() > 1;
    if args.json {
        if many {
            let all: Vec<serde_json::Value> = dags
                .iter()
                .map(|(id, d)| serde_json::json!({"variant": id, "plan": d.plan}))
                .collect();
            emit(&format!(
                "{}\n",
                serde_json::to_string_pretty(&all).unwrap_or_default()
            ));
        } else if let Some((_, d)) = dags.first() {
            emit(&render::json(d));
        }
        return Ok(());
    }
    for (i, (id, dag)) in dags.iter().enumerate() {
        let out = if args.dot {
            render::dot(dag, &srt_graph_steps::kinds::palette)
        } else if args.mermaid {
            render::mermaid(dag)
        } else {
            render::text(dag)
        };
        if many && !args.dot {
            let marker = if args.mermaid { "%%" } else { "==" };
            emit(&format!(
                "{marker} variant {id} ({}/{}) {marker}\n",
                i + 1,
                dags.len()
            ));
        }
        emit(&out);
        if many && i + 1 < dags.len() {
            emit("\n");
        }
    }
    Ok(())
}

/// Writes to stdout; a closed pipe (`plan | head`) ends the program quietly instead of panicking.
pub fn emit(text: &str) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    if let Err(e) = out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
        eprintln!("error: cannot write to stdout: {e}");
        std::process::exit(i32::from(crate::error::exit::ERROR));
    }
}
