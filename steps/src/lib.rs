//! srt-slurm recipes for srt-graph: schema, validation, variants, and the compiler from recipe to plan.

pub mod backends;
pub mod benchmarks;
pub mod build;
pub mod cluster;
pub mod compile;
pub mod diag;
pub mod frontends;
pub mod kinds;
pub mod perf_model;
pub mod read;
pub mod recipe;
pub mod secrets;
pub mod variants;
pub mod yaml;

pub use build::Target;
pub use cluster::ClusterConfig;
pub use compile::{compile, nginx_container, worker_container, ContainerPaths, CONTAINER_TOOL_DIR};
pub use diag::{Diagnostic, RecipeError};
pub use recipe::Recipe;

use diag::Reader;

/// One variant of a recipe file, read and validated.
#[derive(Debug, Clone)]
pub struct Loaded {
    /// Selector name (`""` for a plain recipe).
    pub variant: String,
    pub recipe: Recipe,
}

/// Reads a recipe text (`file` names it in messages) into its variants; `selector` picks some.
pub fn load_str(
    text: &str,
    file: &str,
    selector: Option<&str>,
    cluster: &ClusterConfig,
) -> Result<Vec<Loaded>, RecipeError> {
    let mut r = Reader::new(file);
    let root = match yaml::parse(text) {
        Ok(n) => n,
        Err(e) => {
            let help = if text.contains('\t') && e.message.contains("tab") {
                Some("YAML indents with spaces; replace the tab characters".into())
            } else {
                None
            };
            r.error(e.pos, "", e.message, help);
            return Err(RecipeError::Invalid(r.diagnostics));
        }
    };
    if !matches!(root.value, yaml::Value::Map(_) | yaml::Value::Null) {
        r.error(
            root.pos,
            "",
            format!(
                "a recipe is a mapping of sections, found {}",
                root.describe()
            ),
            Some("start with `name: my-benchmark`".into()),
        );
        return Err(RecipeError::Invalid(r.diagnostics));
    }
    let variants = variants::expand(root, &mut r);
    if !r.diagnostics.is_empty() {
        return Err(RecipeError::Invalid(r.diagnostics));
    }
    let chosen: Vec<variants::Variant> = match selector {
        None => variants,
        Some(sel) => {
            let ids: Vec<String> = variants.iter().map(|v| v.id.clone()).collect();
            let picked: Vec<_> = variants
                .into_iter()
                .filter(|v| variants::matches(sel, &v.id))
                .collect();
            if picked.is_empty() {
                let help = diag::did_you_mean(sel, ids.iter().map(String::as_str)).map_or_else(
                    || format!("variants in this file: {}", ids.join(", ")),
                    |k| format!("did you mean `{k}`?"),
                );
                r.error(
                    yaml::Pos { line: 1, col: 1 },
                    "",
                    format!("no variant matches `{sel}`"),
                    Some(help),
                );
                return Err(RecipeError::Invalid(r.diagnostics));
            }
            picked
        }
    };
    let mut out = Vec::with_capacity(chosen.len());
    for v in chosen {
        let mut vr = Reader::new(file);
        let recipe = read::read(&v.doc, cluster, &mut vr);
        let prefix = if v.id.is_empty() {
            String::new()
        } else {
            format!("[variant {}] ", v.id)
        };
        for mut d in vr.diagnostics {
            d.message = format!("{prefix}{}", d.message);
            if !r.diagnostics.contains(&d) {
                r.diagnostics.push(d);
            }
        }
        if let Some(recipe) = recipe {
            out.push(Loaded {
                variant: v.id,
                recipe,
            });
        }
    }
    if r.diagnostics.is_empty() {
        Ok(out)
    } else {
        Err(RecipeError::Invalid(r.diagnostics))
    }
}

/// Reads a recipe file; the file must be UTF-8 text.
pub fn load_file(
    path: &std::path::Path,
    selector: Option<&str>,
    cluster: &ClusterConfig,
) -> Result<Vec<Loaded>, RecipeError> {
    let file = path.display().to_string();
    let bytes = std::fs::read(path).map_err(|source| RecipeError::Io {
        file: file.clone(),
        source,
    })?;
    if bytes.len() > yaml::MAX_BYTES {
        let mut r = Reader::new(&file);
        r.error(
            yaml::Pos { line: 1, col: 1 },
            "",
            format!(
                "file is {} bytes; recipes larger than {} bytes are refused",
                bytes.len(),
                yaml::MAX_BYTES
            ),
            None,
        );
        return Err(RecipeError::Invalid(r.diagnostics));
    }
    match String::from_utf8(bytes) {
        Ok(text) => load_str(&text, &file, selector, cluster),
        Err(e) => {
            let valid = &e.as_bytes()[..e.utf8_error().valid_up_to()];
            let line = valid.iter().filter(|&&b| b == b'\n').count() + 1;
            let col = valid.iter().rev().take_while(|&&b| b != b'\n').count() + 1;
            let mut r = Reader::new(&file);
            r.error(
                yaml::Pos {
                    line: line as u32,
                    col: col as u32,
                },
                "",
                "file is not UTF-8 text (binary data?)",
                Some("recipes are UTF-8 YAML".into()),
            );
            Err(RecipeError::Invalid(r.diagnostics))
        }
    }
}
