//! `srt-graph resolve-override -f FILE[:SELECTOR] [--stdout]`: srtctl's resolve-override. Writes each
//! variant of an override file (and each point of a sweep) as the plain recipe it expands to, beside
//! the file as `{stem}_{variant}.yaml`, or to stdout as YAML documents.

use super::{expand, FileArgs};
use crate::error::{CliError, CliResult};
use clap::Args;

#[derive(Args)]
pub struct ResolveOverrideArgs {
    #[command(flatten)]
    pub files: FileArgs,
    /// Print the variants to stdout (`---`-separated documents) instead of writing files.
    #[arg(long)]
    pub stdout: bool,
}

pub fn resolve_override(args: &ResolveOverrideArgs) -> CliResult {
    super::srtctl_exit(resolve(args))
}

fn resolve(args: &ResolveOverrideArgs) -> CliResult {
    let (path, _) = crate::options::split_selector(&args.files.file);
    if path.is_dir() {
        return Err(CliError::Invalid(format!(
            "{} is a directory; resolve-override takes one override file",
            path.display()
        )));
    }
    let variants = expand(&args.files, false)?;
    if variants.iter().all(|v| v.loaded.variant.is_empty()) {
        return Err(CliError::Invalid(format!(
            "{} is not an override file (no `base:`) and has no `sweep:`: it is already one recipe",
            path.display()
        )));
    }
    let stem = path
        .file_stem()
        .map_or_else(|| "recipe".into(), |s| s.to_string_lossy().into_owned());
    let dir = path.parent().unwrap_or_else(|| std::path::Path::new("."));
    for (i, v) in variants.iter().enumerate() {
        let yaml = serde_yaml::to_string(&v.loaded.recipe.resolved)
            .map_err(|e| CliError::Failed(format!("variant {}: {e}", v.loaded.variant)))?;
        let header = format!(
            "# {} variant {}, resolved by srt-graph resolve-override\n",
            path.display(),
            v.loaded.variant
        );
        if args.stdout {
            let sep = if i == 0 { "" } else { "---\n" };
            crate::cli_plan::emit(&format!("{sep}{header}{yaml}"));
        } else {
            let out = dir.join(format!("{stem}_{}.yaml", file_safe(&v.loaded.variant)));
            srt_graph_engine::rundir::write_atomic(&out, format!("{header}{yaml}").as_bytes())
                .map_err(|e| CliError::Failed(format!("{}: {e}", out.display())))?;
            eprintln!("wrote {}", out.display());
        }
    }
    Ok(())
}

/// A variant id as a file-name part (sweep ids hold `/` and `=`).
fn file_safe(id: &str) -> String {
    id.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '_'
            }
        })
        .collect()
}
