//! Renderers of a validated plan, one format per file.

mod dot;
mod json;
mod mermaid;
mod text;

pub use dot::{dot, Palette};
pub use json::json;
pub use mermaid::mermaid;
pub use text::text;

use crate::plan::Dag;

/// Depth of each step: 0 for steps with no dependency, else 1 + the deepest dependency.
pub fn levels(dag: &Dag) -> Vec<usize> {
    let mut level = vec![0usize; dag.plan.steps.len()];
    for &i in &dag.order {
        level[i] = dag.dependencies(i).map(|d| level[d] + 1).max().unwrap_or(0);
    }
    level
}

/// A command line for display only; execution never goes through this string.
pub fn display_command(argv: &[String]) -> String {
    argv.iter()
        .map(|a| shlex::try_quote(a).map_or_else(|_| format!("{a:?}"), |q| q.into_owned()))
        .collect::<Vec<_>>()
        .join(" ")
}
