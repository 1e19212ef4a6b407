//! srtctl's verbs, with srtctl's flags and exit codes, over srt-graph's own commands, so that an
//! srt-slurm user's hands and CI keep working: `apply`, `dry-run`, `preflight`, `resolve-override`,
//! `check`. Each verb is one file; what they share (the `-f FILE|DIR[:SELECTOR]` argument and its
//! expansion into variants) is here. srtctl exits 1 on every error; these verbs do too.

pub mod apply;
pub mod check;
pub mod dry_run;
pub mod preflight;
pub mod resolve_override;

use crate::error::CliError;
use crate::options::{split_selector, RecipeArgs, Timing};
use clap::Args;
use srt_graph_steps::{Loaded, RecipeError};
use std::path::{Path, PathBuf};

/// srtctl's common arguments (`-f`, `-o`, `--sweep`, `-y`).
#[derive(Args, Clone)]
pub struct FileArgs {
    /// Recipe file, a directory (every `.yaml`/`.yml` under it, recursively), or `FILE:SELECTOR` to pick
    /// variants of an override file or sweep.
    #[arg(short = 'f', long = "file", value_name = "FILE|DIR[:SELECTOR]")]
    pub file: String,
    /// Parent directory of the run directories (default: ./runs).
    #[arg(short = 'o', long = "output", value_name = "DIR")]
    pub output: Option<PathBuf>,
    /// Accepted for srtctl's sake: srt-graph expands a `sweep:` block whenever a file has one.
    #[arg(long)]
    pub sweep: bool,
    /// Accepted for srtctl's sake: srt-graph asks no confirmation.
    #[arg(short = 'y', long = "yes")]
    pub yes: bool,
    /// Cluster config (srtslurm.yaml); default: $SRTSLURM_CONFIG, else ./, ../, ../../srtslurm.yaml.
    #[arg(long, value_name = "FILE")]
    pub cluster_config: Option<PathBuf>,
}

impl FileArgs {
    /// Says, once, which srtctl flags change nothing here and why (never swallowed silently).
    pub fn note_inert_flags(&self) {
        if self.sweep {
            eprintln!("note: --sweep changes nothing: srt-graph expands a file's `sweep:` block whenever it has one");
        }
        if self.yes {
            eprintln!("note: -y/--yes changes nothing: srt-graph asks no confirmation");
        }
    }

    pub fn runs_root(&self) -> PathBuf {
        self.output.clone().unwrap_or_else(|| PathBuf::from("runs"))
    }
}

/// One variant of one recipe file: what srtctl submits as one job.
pub struct Variant {
    pub file: PathBuf,
    pub loaded: Loaded,
}

impl Variant {
    /// `FILE` or `FILE:VARIANT`, as srt-graph's commands take it.
    pub fn spec(&self) -> String {
        if self.loaded.variant.is_empty() {
            self.file.display().to_string()
        } else {
            format!("{}:{}", self.file.display(), self.loaded.variant)
        }
    }

    /// The recipe arguments that select this variant.
    pub fn recipe_args(
        &self,
        files: &FileArgs,
        mock_workers: bool,
        setup: Option<&str>,
    ) -> RecipeArgs {
        RecipeArgs {
            recipe: Some(self.file.display().to_string()),
            variant: (!self.loaded.variant.is_empty()).then(|| self.loaded.variant.clone()),
            cluster_config: files.cluster_config.clone(),
            mock_workers,
            smoke: false,
            sim_speed: 1.0,
            timing: std::env::var("SRT_GRAPH_TIMING")
                .ok()
                .filter(|t| t == "fixed")
                .map_or(Timing::Model, |_| Timing::Fixed),
            setup_script: setup.map(String::from),
        }
    }
}

/// Every variant `-f` names, all loaded before any is used: one bad file fails the whole call (with
/// each bad file's diagnostics) and nothing is submitted, unless `keep_going`, which drops bad files
/// after printing their errors.
pub fn expand(files: &FileArgs, keep_going: bool) -> Result<Vec<Variant>, CliError> {
    let base = RecipeArgs {
        cluster_config: files.cluster_config.clone(),
        ..RecipeArgs::bare()
    };
    let cluster = crate::cli_plan::load_cluster(&base)?;
    let (path, selector) = split_selector(&files.file);
    if path.is_dir() {
        if selector.is_some() {
            eprintln!("note: the selector `:{}` applies to files, not to a directory; every variant of every file is taken", selector.unwrap_or_default());
        }
        let found =
            yaml_files(&path).map_err(|e| CliError::Failed(format!("{}: {e}", path.display())))?;
        if found.is_empty() {
            return Err(CliError::Invalid(format!(
                "no .yaml or .yml file under {}",
                path.display()
            )));
        }
        let mut all = Vec::new();
        let mut bad = Vec::new();
        for file in found {
            match srt_graph_steps::load_file(&file, None, &cluster) {
                Ok(v) => all.extend(v.into_iter().map(|loaded| Variant {
                    file: file.clone(),
                    loaded,
                })),
                Err(e) => bad.push(e),
            }
        }
        if bad.is_empty() {
            return Ok(all);
        }
        let n = bad.len();
        let what = if keep_going {
            "skipped"
        } else {
            "nothing was submitted"
        };
        for e in bad {
            CliError::Recipe(e).report();
        }
        if keep_going {
            eprintln!("{n} file(s) with errors {what}");
            return Ok(all);
        }
        return Err(CliError::Invalid(format!(
            "{n} file(s) under {} have errors; {what} (--keep-going submits the others)",
            path.display()
        )));
    }
    let loaded =
        srt_graph_steps::load_file(&path, selector.as_deref(), &cluster).map_err(|e| match e {
            RecipeError::Io { .. } if !path.exists() => {
                CliError::Invalid(format!("config not found: {}", path.display()))
            }
            e => CliError::Recipe(e),
        })?;
    Ok(loaded
        .into_iter()
        .map(|loaded| Variant {
            file: path.clone(),
            loaded,
        })
        .collect())
}

/// `.yaml`/`.yml` files under `dir`, recursively, sorted (srtctl's `find_yaml_files`); hidden
/// directories are skipped.
fn yaml_files(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d)? {
            let path = entry?.path();
            let hidden = path
                .file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with('.'));
            if path.is_dir() {
                if !hidden {
                    stack.push(path);
                }
            } else if path.extension().is_some_and(|e| e == "yaml" || e == "yml") {
                out.push(path);
            }
        }
    }
    out.sort();
    Ok(out)
}

/// srtctl's exit codes: 0, or 1 for any error.
pub fn srtctl_exit(result: crate::error::CliResult) -> crate::error::CliResult {
    result.map_err(CliError::srtctl)
}
