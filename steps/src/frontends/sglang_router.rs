//! `frontend.type: sglang` (or the seed's `use_sglang_router: true`): SGLang's own router in front of
//! the workers, several behind nginx. Router 0 sits on node 0, the others on nodes 1, 1+k, 1+2k… with
//! `k = ceil((total-1)/num_additional)` (srt-slurm's spread), one per node.

use super::FrontendType;
use crate::build::{Ctx, FrontendProcess};
use crate::kinds::{self, pip_install, start_nginx, start_router};
use crate::recipe::Recipe;
use srt_graph_engine::Step;

/// The sglang-router release the local simulation installs (the one verified against the mock).
pub const SGLANG_ROUTER_PACKAGE: &str = "sglang-router==0.3.2";

pub struct SglangRouter;

impl FrontendType for SglangRouter {
    fn name(&self) -> &'static str {
        "sglang"
    }

    fn aliases(&self) -> &'static [&'static str] {
        &["sglang_router"]
    }

    fn dynamo(&self) -> bool {
        false
    }

    fn legacy_args_key(&self) -> &'static str {
        "sglang_router_args"
    }

    fn placement(&self, recipe: &Recipe, total: usize) -> Vec<usize> {
        super::spread(recipe, total, 0, 1)
    }

    fn venv_installs(&self, ctx: &Ctx<'_>, venv: &str) -> Vec<Step> {
        let mut s = pip_install::packages(
            format!("pip-router/{}", ctx.nodes.names[0]),
            0,
            &ctx.worker_python,
            &[SGLANG_ROUTER_PACKAGE.to_string()],
            "install the real sglang-router (cached in the venv between runs)",
        );
        s.command = s.command.map(|argv| pip_install::locked(venv, argv));
        s.depends_on = ctx.venv_ready.clone();
        vec![s]
    }

    fn step(&self, ctx: &Ctx<'_>, f: &FrontendProcess<'_>) -> Option<(Step, u16)> {
        let recipe = ctx.recipe;
        let port = if recipe.frontend.multiple {
            start_router::INTERNAL_PORT
        } else {
            start_nginx::PUBLIC_PORT
        };
        let workers = start_router::Workers {
            prefill: &f.leaders.prefill,
            decode: &f.leaders.decode,
            aggregated: &f.leaders.aggregated,
        };
        let mut s = start_router::step(
            f.index,
            f.node,
            &ctx.frontend_python,
            ctx.nodes.bind(f.node),
            &ctx.nodes.addrs[f.node],
            port,
            &workers,
            &recipe.frontend.args,
        );
        s.depends_on.extend(ctx.packages_ready.iter().cloned());
        s.env = kinds::env(&recipe.environment);
        s.env.extend(kinds::env(&recipe.frontend.env));
        // A router needs its workers started (it waits for their health itself).
        s.depends_on
            .extend(f.workers.iter().filter(|w| !w.contains("/rank")).cloned());
        Some((s, port))
    }

    fn health_mode(&self) -> &'static str {
        "sglang"
    }
}
