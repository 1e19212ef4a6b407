//! `frontend.type: dynamo` (srt-slurm's default): Dynamo's HTTP frontends, which find workers through
//! etcd and NATS. Frontend 0 sits on node 1 (beside NATS and etcd), the others on 2, 2+k… with
//! `k = ceil((total-2)/num_additional)`; a single frontend sits on node 0.

use super::FrontendType;
use crate::build::{Ctx, FrontendProcess, StandIn};
use crate::kinds::{self, pip_install, start_frontend};
use crate::recipe::Recipe;
use srt_graph_engine::Step;

/// What the local simulation installs for Dynamo besides `ai-dynamo` and `ai-dynamo-runtime` (installed
/// with `--no-deps`: their `aisimulate` dependency downloads from outside the package registries).
pub const DYNAMO_RUNTIME_DEPS: &[&str] = &[
    "packaging",
    "aiohttp",
    "certifi",
    "msgspec",
    "prometheus-client",
    "pyzmq",
    "tqdm",
    "transformers",
    "typing-extensions",
    "zstandard",
    "uvloop",
    "pydantic<=2.13.5",
];

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
        let mut core = ctx.recipe.dynamo.packages.clone();
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
        let deps: Vec<String> = DYNAMO_RUNTIME_DEPS.iter().map(|d| d.to_string()).collect();
        let mut d = pip_install::packages(
            format!("pip-dynamo-deps/{name}"),
            0,
            &ctx.worker_python,
            &deps,
            "install what Dynamo needs at run time",
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
