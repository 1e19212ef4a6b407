//! Whole-plan passes after the stages: the recipe's policy overrides, port clashes, graph errors located
//! in the recipe.

use super::diag;
use crate::build::Nodes;
use crate::diag::RecipeError;
use crate::recipe::Recipe;
use srt_graph_engine::{Lifetime, PlanError, Step};
use std::collections::BTreeMap;

/// The recipe's `policy:` overrides, over the kinds' defaults each step was created with.
pub(super) fn apply_policies(recipe: &Recipe, steps: &mut [Step]) {
    for s in steps.iter_mut() {
        for o in recipe.policies.iter().filter(|o| o.kind == s.kind) {
            if let Some(a) = o.attempts {
                s.policy.attempts = a;
            }
            if let Some(b) = o.backoff_secs {
                s.policy.backoff_ms = (b * 1000.0) as u64;
            }
            if let Some(t) = o.timeout_secs {
                if s.lifetime == Lifetime::Task {
                    s.policy.timeout_secs = Some(t);
                }
            }
            if let Some(e) = o.retry_on_exit {
                s.policy
                    .retry_on
                    .retain(|r| *r != srt_graph_engine::RetryOn::Exit);
                if e {
                    s.policy.retry_on.push(srt_graph_engine::RetryOn::Exit);
                }
            }
        }
    }
}

/// Two services planned on one node must not listen on one port.
pub(super) fn check_ports(
    recipe: &Recipe,
    nodes: &Nodes,
    steps: &[Step],
) -> Result<(), RecipeError> {
    let mut seen: BTreeMap<(String, u16), &str> = BTreeMap::new();
    let mut diags = Vec::new();
    for s in steps.iter().filter(|s| s.is_service()) {
        for &p in &s.ports {
            let key = (nodes.addrs[s.node].clone(), p);
            if let Some(other) = seen.get(&key) {
                let earlier = steps.iter().find(|x| x.id == *other);
                let (pos, path) = port_source(recipe, s, p)
                    .or_else(|| earlier.and_then(|e| port_source(recipe, e, p)))
                    .unwrap_or((recipe.resources_pos, "resources".into()));
                diags.push(diag(
                    recipe,
                    pos,
                    &path,
                    format!(
                        "port {p} on {} is used by both `{other}` and `{}`",
                        nodes.names[s.node], s.id
                    ),
                    Some("give one of them another port, or place it on another node".into()),
                ));
            } else {
                seen.insert(key, &s.id);
            }
        }
    }
    if diags.is_empty() {
        Ok(())
    } else {
        Err(RecipeError::Invalid(diags))
    }
}

/// Best location to blame for a port: the recipe flag that set it, else the resources section.
fn port_source(recipe: &Recipe, s: &Step, port: u16) -> Option<(crate::yaml::Pos, String)> {
    if let Some(role) = &s.role {
        if let Some(spec) = recipe.roles.iter().find(|r| r.role.as_str() == role) {
            for key in ["port", "disaggregation-bootstrap-port"] {
                if let Some(n) = spec.flag(&[key]) {
                    if n.scalar_text()
                        .and_then(|t| t.parse::<u16>().ok())
                        .is_some_and(|v| v <= port)
                    {
                        return Some((n.pos, format!("backend.sglang_config.{role}.{key}")));
                    }
                }
            }
        }
    }
    None
}

pub(super) fn plan_error(recipe: &Recipe, e: PlanError) -> RecipeError {
    let (pos, path) = match &e {
        PlanError::Cycle(ids) => recipe
            .steps
            .iter()
            .find(|u| {
                ids.iter()
                    .any(|i| i == &u.name || i.starts_with(&format!("{}/", u.name)))
            })
            .map_or((recipe.root_pos, "steps".to_string()), |u| {
                (u.pos, format!("steps[{}]", u.index))
            }),
        PlanError::DuplicateStep(id) => recipe
            .steps
            .iter()
            .find(|u| &u.name == id)
            .map_or((recipe.root_pos, "steps".to_string()), |u| {
                (u.pos, format!("steps[{}].name", u.index))
            }),
        _ => (recipe.root_pos, "steps".to_string()),
    };
    let help = match &e {
        PlanError::DuplicateStep(_) => {
            Some("this name is already the id of a compiled step; pick another".to_string())
        }
        PlanError::Cycle(_) => Some("remove one `after:`/`before:` edge of the cycle".to_string()),
        _ => None,
    };
    RecipeError::Invalid(vec![diag(recipe, pos, &path, e.to_string(), help)])
}
