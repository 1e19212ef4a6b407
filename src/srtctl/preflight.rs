//! `srt-graph preflight -f FILE[:SELECTOR]`: srtctl's preflight. Per variant, before anything is
//! queued: the model path, the container image and every host file the plan needs (setup scripts
//! among them) are looked for, printed ✓/✗; any ✗ exits non-zero.

use super::{expand, FileArgs, Variant};
use crate::cli_place::Executor;
use crate::error::{CliError, CliResult};
use clap::Args;
use std::path::Path;

#[derive(Args)]
pub struct PreflightArgs {
    #[command(flatten)]
    pub files: FileArgs,
}

pub fn preflight(args: &PreflightArgs) -> CliResult {
    let result = (|| {
        args.files.note_inert_flags();
        let variants = expand(&args.files, false)?;
        let failed = check_all(&variants, true);
        if failed > 0 {
            return Err(CliError::Invalid(format!(
                "preflight: {failed} of {} variant(s) failed",
                variants.len()
            )));
        }
        Ok(())
    })();
    super::srtctl_exit(result)
}

/// One check's outcome, with what was found or what is wrong.
struct Check {
    label: &'static str,
    message: String,
    ok: bool,
}

/// Checks every variant; prints each (all of them when `verbose`, else only the failing ones, as
/// `apply` does); returns how many failed.
pub fn check_all(variants: &[Variant], verbose: bool) -> usize {
    let mut failed = 0;
    for v in variants {
        let checks = checks(v);
        let ok = checks.iter().all(|c| c.ok);
        if !ok {
            failed += 1;
        }
        if verbose || !ok {
            let name = if v.loaded.variant.is_empty() {
                "base"
            } else {
                v.loaded.variant.as_str()
            };
            let mark = if ok { '✓' } else { '✗' };
            eprintln!("{mark} {name} ({})", v.file.display());
            for c in &checks {
                eprintln!("  {}: {}", c.label, c.message);
            }
        }
    }
    failed
}

fn checks(v: &Variant) -> Vec<Check> {
    let recipe = &v.loaded.recipe;
    let mut out = vec![
        model(recipe.model_path.as_deref()),
        container(recipe.container.as_deref()),
    ];
    // Every host file the plan requires (setup scripts, sources), as `run` checks them before it starts.
    let mock = recipe.mock_workers;
    let target = crate::options::target(
        recipe,
        mock,
        Executor::Slurm,
        "$RUN_DIR",
        "$SRT_GRAPH_CACHE",
    );
    match srt_graph_steps::compile(recipe, &target) {
        Ok(plan) => {
            for step in &plan.steps {
                for r in step.requires.iter().filter(|r| r.what.starts_with('/')) {
                    let found = std::iter::once(&r.what)
                        .chain(&r.or)
                        .find(|w| Path::new(w).exists());
                    out.push(match found {
                        Some(w) => Check {
                            label: "requires",
                            message: format!("{w} (step {})", step.id),
                            ok: true,
                        },
                        None => Check {
                            label: "requires",
                            message: format!(
                                "✗ {} not found (step {}): {}",
                                r.what, step.id, r.hint
                            ),
                            ok: false,
                        },
                    });
                }
            }
        }
        Err(e) => out.push(Check {
            label: "plan",
            message: e.to_string(),
            ok: false,
        }),
    }
    out
}

/// A path the recipe names: found on this node, or named as not checked when it is not a local path.
fn path_check(
    label: &'static str,
    value: Option<&str>,
    unset: &str,
    present: fn(&Path) -> bool,
    remote: &str,
) -> Check {
    let (message, ok) = match value {
        None => (unset.to_string(), true),
        Some(p) if p.starts_with('/') => {
            let found = present(Path::new(p));
            let state = if found {
                "exists"
            } else {
                "does not exist on this node"
            };
            (format!("{p} {state}"), found)
        }
        Some(p) => (format!("{p}: {remote} (not checked)"), true),
    };
    Check { label, message, ok }
}

fn model(path: Option<&str>) -> Check {
    path_check(
        "model.path",
        path,
        "not set",
        Path::is_dir,
        "not a local path; the engine fetches it",
    )
}

fn container(image: Option<&str>) -> Check {
    path_check(
        "model.container",
        image,
        "not set: workers run on the host",
        Path::is_file,
        "a registry image, pulled by pyxis on the nodes",
    )
}
