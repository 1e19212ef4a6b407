//! What `plan`, `run` and `submit` share before anything runs: the recipe arguments, whether the engine
//! is simulated, and the target a recipe compiles for — so that `plan` shows the graph `run` executes.

use crate::cli_place::Executor;
use clap::Args;
use srt_graph_steps::Target;
use std::path::{Path, PathBuf};

/// The recipe used when none is given: the local disaggregated demo.
pub const EMBEDDED_DEFAULT: &str = include_str!("../recipes/local-demo.yaml");
pub const EMBEDDED_NAME: &str = "<embedded recipes/local-demo.yaml>";

#[derive(Args, Clone)]
pub struct RecipeArgs {
    /// Recipe file; `FILE:VARIANT` selects one variant of an override file or sweep (`*` globs allowed).
    /// Without it, the embedded default `recipes/local-demo.yaml`.
    pub recipe: Option<String>,
    /// Select variants (same as the `:VARIANT` suffix).
    #[arg(long)]
    pub variant: Option<String>,
    /// Cluster config (srtslurm.yaml); default: $SRTSLURM_CONFIG, else ./, ../, ../../srtslurm.yaml.
    #[arg(long, value_name = "FILE")]
    pub cluster_config: Option<PathBuf>,
    /// Simulate the inference engine: SGLang workers become `srt-graph mock-worker` (router mode) or
    /// Dynamo's `dynamo.mocker` (Dynamo-driven engines), with the same roles.
    #[arg(long)]
    pub mock_workers: bool,
    /// Deploy for real, then run only a short first benchmark point (a few requests).
    #[arg(long)]
    pub smoke: bool,
    /// Simulated runs: the simulated clock runs N times faster than the wall clock (results are
    /// written in model time, marked simulated).
    #[arg(long, value_name = "N", default_value_t = 1.0, value_parser = sim_speed)]
    pub sim_speed: f64,
    /// Simulated runs: `model` paces mock workers by the performance model (aiconfigurator) where one
    /// applies; `fixed` keeps the fixed timing (20 ms to the first token, 500 tokens/s), for plumbing.
    #[arg(long, value_enum, env = "SRT_GRAPH_TIMING", default_value_t = Timing::Model)]
    pub timing: Timing,
    /// Run this setup script (a file in srt-slurm's `configs/`) instead of the recipe's `setup_script`.
    #[arg(long, value_name = "NAME", value_parser = setup_script_name)]
    pub setup_script: Option<String>,
}

impl RecipeArgs {
    /// No recipe named (the embedded default), every option at its default.
    pub fn bare() -> RecipeArgs {
        RecipeArgs {
            recipe: None,
            variant: None,
            cluster_config: None,
            mock_workers: false,
            smoke: false,
            sim_speed: 1.0,
            timing: Timing::Model,
            setup_script: None,
        }
    }
}

/// A setup script is named, as srtctl takes it: a file name inside `configs/`, not a path.
pub fn setup_script_name(v: &str) -> Result<String, String> {
    if v.is_empty() || v.contains('/') || v.starts_with('.') || v.chars().any(char::is_control) {
        Err(format!(
            "`{}` is not a setup script name: name a file in srt-slurm's configs/ (e.g. install-extras.sh)",
            v.escape_debug()
        ))
    } else {
        Ok(v.to_string())
    }
}

#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    clap::ValueEnum,
    serde::Serialize,
    serde::Deserialize,
    Default,
)]
#[serde(rename_all = "lowercase")]
pub enum Timing {
    #[default]
    Model,
    Fixed,
}

/// `--tags a,b`: srtctl's comma-separated labels, trimmed, empty ones dropped.
#[derive(Clone, Debug, Default)]
pub struct Tags(pub Vec<String>);

pub fn tags(v: &str) -> Result<Tags, String> {
    let tags: Vec<String> = v
        .split(',')
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(String::from)
        .collect();
    match tags.iter().find(|t| t.chars().any(char::is_control)) {
        Some(t) => Err(format!(
            "tag `{}` holds a control character",
            t.escape_debug()
        )),
        None => Ok(Tags(tags)),
    }
}

fn sim_speed(v: &str) -> Result<f64, String> {
    v.parse::<f64>()
        .ok()
        .filter(|x| x.is_finite() && (1.0..=10_000.0).contains(x))
        .ok_or_else(|| format!("`{v}` is not a speed between 1 and 10000"))
}

/// Splits `file.yaml:selector` unless the whole string names an existing file.
pub fn split_selector(arg: &str) -> (PathBuf, Option<String>) {
    if Path::new(arg).exists() {
        return (PathBuf::from(arg), None);
    }
    match arg.rsplit_once(':') {
        Some((file, sel)) if !sel.is_empty() && !sel.contains('/') => {
            (PathBuf::from(file), Some(sel.to_string()))
        }
        _ => (PathBuf::from(arg), None),
    }
}

/// Where and how a recipe runs, as far as the steps go (nodes, addresses and the program path are the
/// placement's): `run` compiles with it, and `plan` with the same options, so that both show one graph.
/// Workers run in the recipe's container on Slurm (pyxis); elsewhere, and for mock workers, a venv this
/// machine caches serves the router or Dynamo and source installs.
pub fn target(
    recipe: &srt_graph_steps::Recipe,
    mock_workers: bool,
    executor: Executor,
    run_dir: &str,
    cache: &str,
) -> Target {
    let paths = srt_graph_steps::ContainerPaths {
        run_dir,
        cache,
        tool_dir: NODE_TOOL_DIR_PLACEHOLDER,
    };
    // Mock workers run in the recipe's image too when this machine has it (a squashfs file); an image
    // that is not here (a registry name, another cluster's path) cannot hold them, and they run on the
    // host.
    let image_here = |r: &srt_graph_steps::Recipe| {
        r.container
            .as_deref()
            .is_some_and(|i| i.starts_with('/') && Path::new(i).is_file())
    };
    let container = (executor == Executor::Slurm && (!mock_workers || image_here(recipe)))
        .then(|| srt_graph_steps::worker_container(recipe, &paths))
        .flatten();
    let nginx_container = container
        .as_ref()
        .and_then(|_| srt_graph_steps::nginx_container(recipe, &paths));
    let venv_name = srt_graph_steps::frontends::dynamo::venv_name(recipe, mock_workers);
    // The performance model's own venv (one per image in a container, as the run's venv).
    let aic_venv = srt_graph_perf_model::aiconfigurator::venv_dir(Path::new(cache));
    let perf_venv = match &container {
        Some(c) => format!("{}-{}", aic_venv.display(), image_tag(&c.image)),
        None => aic_venv.display().to_string(),
    };
    Target {
        run_dir: run_dir.to_string(),
        mock_workers,
        ext_src_dir: if container.is_some() {
            "/ext-sglang-src".into()
        } else {
            format!("{run_dir}/{{node}}/ext-sglang-src")
        },
        // In a container the venv is made by the image's own Python (one per image), on the cache mount.
        venv: match &container {
            None => Some(format!("{cache}/{venv_name}")),
            Some(c) if mock_workers => Some(format!("{cache}/{venv_name}-{}", image_tag(&c.image))),
            Some(_) => None,
        },
        container,
        nginx_container,
        // Mock Dynamo workers use the recipe's model directory when this machine has it.
        perf_venv: Some(perf_venv),
        perf_cache: format!("{cache}/perf-tables"),
        local_model_dir: recipe
            .model_path
            .as_deref()
            .filter(|p| Path::new(p).join("tokenizer.json").is_file())
            .map(str::to_string),
        ..Target::default()
    }
}

/// `--timing fixed`, and `--smoke` (a plumbing check of seconds), keep the stand-ins' fixed timing.
pub fn with_timing(mut target: Target, timing: Timing) -> Target {
    if timing == Timing::Fixed || target.smoke {
        target.perf_venv = None;
    }
    target
}

/// Stands for the directory of the static node binary until a run knows it (`node_binary::static_node_binary`).
pub const NODE_TOOL_DIR_PLACEHOLDER: &str = "$SRT_GRAPH_NODE_BIN_DIR";

/// A file-name-safe tag for an image path.
fn image_tag(image: &str) -> String {
    let stem = image.rsplit('/').next().unwrap_or(image);
    let stem = stem.strip_suffix(".sqsh").unwrap_or(stem);
    stem.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .take(64)
        .collect()
}

/// Whether the engine is simulated: asked for, declared by the recipe, or the embedded demo (which has
/// no GPU to run on).
pub fn mock_workers(args: &RecipeArgs, recipe: &srt_graph_steps::Recipe) -> bool {
    args.mock_workers || recipe.mock_workers || args.recipe.is_none()
}

/// Where runs keep what they reuse (the Python venv with sglang-router): `$SRT_GRAPH_CACHE`, else
/// `$XDG_CACHE_HOME/srt-graph`, else `~/.cache/srt-graph`.
pub fn cache_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("SRT_GRAPH_CACHE") {
        return PathBuf::from(d);
    }
    if let Some(d) = std::env::var_os("XDG_CACHE_HOME") {
        return PathBuf::from(d).join("srt-graph");
    }
    std::env::var_os("HOME").map_or_else(
        || PathBuf::from(".cache/srt-graph"),
        |h| PathBuf::from(h).join(".cache/srt-graph"),
    )
}
