//! The recipe's own `steps:`: expanded per node, wired by `after:`/`before:` to compiled steps, user
//! steps or whole kinds.

use super::diag;
use crate::build::Nodes;
use crate::diag::{did_you_mean, RecipeError};
use crate::kinds;
use crate::recipe::Recipe;
use srt_graph_engine::Step;

pub(super) fn add_user_steps(
    recipe: &Recipe,
    ctx: &crate::build::Ctx,
    steps: &mut Vec<Step>,
) -> Result<(), RecipeError> {
    let nodes = &ctx.nodes;
    let mut diags = Vec::new();
    let mut expanded = expand(recipe, nodes, &mut diags);
    into_container(recipe, ctx, &mut expanded);
    let compiled: Vec<(String, String)> = steps
        .iter()
        .map(|s| (s.id.clone(), s.kind.clone()))
        .collect();
    let all_ids: Vec<String> = compiled
        .iter()
        .map(|(i, _)| i.clone())
        .chain(expanded.iter().map(|(_, s)| s.id.clone()))
        .collect();
    // A reference names a step id, a user step name (all its per-node copies) or a kind.
    // (id, kind, user step name) of every user step copy.
    let user: Vec<(String, String, String)> = expanded
        .iter()
        .map(|(idx, s)| {
            let base = recipe
                .steps
                .iter()
                .find(|u| u.index == *idx)
                .map(|u| u.name.clone())
                .unwrap_or_default();
            (s.id.clone(), s.kind.clone(), base)
        })
        .collect();
    let resolve = |name: &str| -> Vec<String> {
        compiled
            .iter()
            .filter(|(i, k)| i == name || k == name)
            .map(|(i, _)| i.clone())
            .chain(
                user.iter()
                    .filter(|(i, k, b)| i == name || k == name || b == name)
                    .map(|(i, _, _)| i.clone()),
            )
            .collect()
    };
    let mut before_edges: Vec<(String, String)> = Vec::new();
    for (idx, s) in expanded.iter_mut() {
        let Some(u) = recipe.steps.iter().find(|u| u.index == *idx) else {
            continue;
        };
        for (field, list) in [("after", &u.after), ("before", &u.before)] {
            for name in list {
                let found = resolve(name);
                if found.is_empty() {
                    let help = did_you_mean(
                        name,
                        all_ids
                            .iter()
                            .map(String::as_str)
                            .chain(kinds::names().map(|k| -> &str { k })),
                    )
                    .map_or_else(
                        || "name a step id, a `steps:` name or a step kind".to_string(),
                        |k| format!("did you mean `{k}`?"),
                    );
                    diags.push(diag(
                        recipe,
                        u.pos,
                        &format!("steps[{idx}].{field}"),
                        format!("`{name}` is not a step or step kind of this plan"),
                        Some(help),
                    ));
                    continue;
                }
                for f in found.into_iter().filter(|f| f != &s.id) {
                    if field == "after" {
                        if !s.depends_on.contains(&f) {
                            s.depends_on.push(f);
                        }
                    } else {
                        before_edges.push((f, s.id.clone()));
                    }
                }
            }
        }
    }
    if !diags.is_empty() {
        return Err(RecipeError::Invalid(diags));
    }
    steps.extend(expanded.into_iter().map(|(_, s)| s));
    for (later, first) in before_edges {
        if let Some(s) = steps.iter_mut().find(|s| s.id == later) {
            if !s.depends_on.contains(&first) {
                s.depends_on.push(first);
            }
        }
    }
    Ok(())
}

/// `container: true`: in the workers' container where the run has one (the `containers` stage puts it
/// there, with the node tools); on the host otherwise, as every step runs without containers.
fn into_container(recipe: &Recipe, ctx: &crate::build::Ctx, expanded: &mut [(usize, Step)]) {
    let Some(c) = &ctx.target.container else {
        return;
    };
    for (i, s) in expanded.iter_mut() {
        if recipe.steps.iter().any(|u| u.index == *i && u.container) {
            s.container = Some(c.clone());
        }
    }
}

/// The recipe's steps, one copy per node for `node: all`: `(index in steps:, step)`.
fn expand(
    recipe: &Recipe,
    nodes: &Nodes,
    diags: &mut Vec<crate::diag::Diagnostic>,
) -> Vec<(usize, Step)> {
    let total = nodes.names.len();
    // Expand `node: all` into one step per node.
    let mut expanded: Vec<(usize, Step)> = Vec::new();
    for u in &recipe.steps {
        let targets: Vec<usize> = match u.node {
            Some(k) if (k as usize) < total => vec![k as usize],
            Some(k) => {
                diags.push(diag(
                    recipe,
                    u.pos,
                    &format!("steps[{}].node", u.index),
                    format!("node {k} does not exist: this recipe has {total} node(s)"),
                    Some(format!("use 0..{} or `all`", total - 1)),
                ));
                continue;
            }
            None => (0..total).collect(),
        };
        for k in targets {
            let id = if u.node.is_none() {
                format!("{}/{}", u.name, nodes.names[k])
            } else {
                u.name.clone()
            };
            let mut s = kinds::shell::step(id, k, &u.run, u.service, u.retries, u.timeout_secs);
            s.env = kinds::env(&recipe.environment);
            s.env.extend(kinds::env(&u.env));
            expanded.push((u.index, s));
        }
    }
    expanded
}
