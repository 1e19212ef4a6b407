//! `frontend.type: dynamo` (srt-slurm's default): Dynamo's HTTP frontends, which find workers through
//! etcd and NATS. Frontend 0 sits on node 1 (beside NATS and etcd), the others on 2, 2+k… with
//! `k = ceil((total-2)/num_additional)`; a single frontend sits on node 0.

use super::FrontendType;
use crate::build::{Ctx, FrontendProcess, StandIn};
use crate::kinds::{self, pip_install, start_frontend};
use crate::recipe::Recipe;
use srt_graph_engine::Step;

/// What the run's venv leaves out of Dynamo's declared dependencies, and why.
pub const LEFT_OUT: &[(&str, &str)] = &[(
    "aisimulate",
    "it downloads from outside the package registries at install time; the simulation does not use it",
)];

/// The Dynamo release the simulation falls back to for a git pin (one verified against the mocker here).
pub const VERIFIED_RELEASE: &str = "1.6.1";

/// What the run installs for Dynamo: the recipe's pin. In simulation a pin that cannot serve here falls
/// back to the verified release, with the note that says why (a real run honours the pin): a git source
/// cannot be built without its repository, and a 0.x release's frontend fetches model cards from Hugging
/// Face (no network here) and needs a NATS newer than Debian's 2.9 for JetStream.
pub fn packages(recipe: &Recipe, simulated: bool) -> (Vec<String>, Option<String>) {
    let d = &recipe.dynamo;
    let zero_x = d
        .packages
        .iter()
        .find_map(|p| p.strip_prefix("ai-dynamo=="))
        .filter(|v| v.starts_with("0."));
    let why = match (d.from_git, zero_x) {
        _ if !simulated => return (d.packages.clone(), None),
        (true, _) => "a git source cannot be built here".to_string(),
        _ if d.staged_wheel => {
            "a staged wheel comes from the site's own index (DYNAMO_INDEX_URL), not from PyPI".to_string()
        }
        (false, Some(v)) => format!(
            "Dynamo {v}'s frontend fetches model cards from Hugging Face (no network here) and its runtime needs NATS JetStream newer than Debian's"
        ),
        (false, None) => return (d.packages.clone(), None),
    };
    let release = VERIFIED_RELEASE;
    let note = format!(
        "--mock-workers: Dynamo pinned as {}: {why}; the simulation installs the release {release} instead (a real run honours the pin)",
        d.packages.join(" ")
    );
    (
        vec![
            format!("ai-dynamo-runtime=={release}"),
            format!("ai-dynamo=={release}"),
        ],
        Some(note),
    )
}

/// The cached venv a run uses: one per Dynamo pin, so runs of different releases do not reinstall over
/// each other; SGLang's router has its own.
pub fn venv_name(recipe: &Recipe, simulated: bool) -> String {
    let uses_dynamo = recipe.frontend.dynamo || recipe.backend != "sglang";
    if !uses_dynamo || recipe.roles.is_empty() {
        return "venv".into();
    }
    let (pkgs, _) = packages(recipe, simulated);
    let pin: String = pkgs
        .iter()
        .find_map(|p| p.strip_prefix("ai-dynamo=="))
        .map_or_else(|| pkgs.join("-"), str::to_string)
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' {
                c
            } else {
                '_'
            }
        })
        .take(64)
        .collect();
    format!("venv-dynamo-{pin}")
}

pub struct Dynamo;

impl FrontendType for Dynamo {
    fn name(&self) -> &'static str {
        "dynamo"
    }

    fn dynamo(&self) -> bool {
        true
    }

    fn legacy_args_key(&self) -> &'static str {
        "dynamo_frontend_args"
    }

    fn placement(&self, recipe: &Recipe, total: usize) -> Vec<usize> {
        if total < 2 {
            super::spread(recipe, total, 0, 1)
        } else {
            super::spread(recipe, total, 1, 2)
        }
    }

    /// Dynamo into the run's venv: the packages without their dependencies, then what they need.
    fn venv_installs(&self, ctx: &Ctx<'_>, venv: &str) -> Vec<Step> {
        let name = &ctx.nodes.names[0];
        let (mut core, _) = packages(ctx.recipe, ctx.target.mock_workers);
        core.insert(0, "--no-deps".into());
        let mut s = pip_install::packages(
            format!("pip-dynamo/{name}"),
            0,
            &ctx.worker_python,
            &core,
            "install Dynamo (frontend, runtime, mocker) into the venv",
        );
        s.command = s.command.map(|argv| pip_install::locked(venv, argv));
        s.depends_on = ctx.venv_ready.clone();
        let mut d = pip_install::from_metadata(
            format!("pip-dynamo-deps/{name}"),
            0,
            &ctx.worker_python,
            &["ai-dynamo", "ai-dynamo-runtime"],
            LEFT_OUT,
            "install what this Dynamo release declares it needs (from its own metadata)",
        );
        d.command = d.command.map(|argv| pip_install::locked(venv, argv));
        d.depends_on = vec![s.id.clone()];
        vec![s, d]
    }

    fn node_installs(&self, ctx: &Ctx<'_>, node: usize) -> Vec<Step> {
        if !installs_per_node(ctx) {
            return Vec::new();
        }
        vec![pip_install::packages(
            node_install_id(ctx, node),
            node,
            &ctx.worker_python,
            &ctx.recipe.dynamo.packages,
            "install Dynamo (once per node)",
        )]
    }

    fn step(&self, ctx: &Ctx<'_>, f: &FrontendProcess<'_>) -> Option<(Step, u16)> {
        let recipe = ctx.recipe;
        let k = f.node;
        let addr = &ctx.nodes.addrs[k];
        let port = if recipe.frontend.multiple && k == 0 {
            start_frontend::COLOCATED_PORT
        } else {
            start_frontend::PORT
        };
        let mut env = kinds::env(&recipe.environment);
        env.extend(ctx.infra_env.clone());
        if ctx.stand_in == StandIn::DynamoMocker {
            for var in kinds::DYNAMO_PLANE_HOSTS {
                env.insert(var.into(), addr.clone());
            }
        }
        env.extend(kinds::env(&recipe.frontend.env));
        let mut s = start_frontend::step(
            f.index,
            k,
            &ctx.frontend_python,
            &start_frontend::Listen {
                bind: ctx.nodes.bind(k),
                addr,
                port,
            },
            &recipe.frontend.args,
            env,
        );
        s.depends_on.extend(ctx.infra_ready.iter().cloned());
        s.depends_on.extend(ctx.packages_ready.iter().cloned());
        if installs_per_node(ctx) && k < recipe.worker_nodes() {
            s.depends_on.push(node_install_id(ctx, k));
        }
        Some((s, port))
    }

    fn health_mode(&self) -> &'static str {
        "dynamo"
    }
}

/// A real run without the run's venv installs Dynamo on every worker node (srtctl's worker preamble).
fn installs_per_node(ctx: &Ctx<'_>) -> bool {
    ctx.recipe.dynamo.install && !ctx.target.mock_workers && ctx.venv.is_none()
}

fn node_install_id(ctx: &Ctx<'_>, node: usize) -> String {
    format!("pip-dynamo/{}", ctx.nodes.names[node])
}
