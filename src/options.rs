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
        local_model_dir: recipe
            .model_path
            .as_deref()
            .filter(|p| Path::new(p).join("tokenizer.json").is_file())
            .map(str::to_string),
        ..Target::default()
    }
}

/// Stands for the directory of the static node binary until a run knows it (`session::node_binary`).
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
