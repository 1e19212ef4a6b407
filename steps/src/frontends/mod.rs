//! Frontend types (`frontend.type`), one module each, registered in `ALL`. A frontend type owns where its
//! processes go, what the run installs for them, their command lines, and how the health gate reads them.

pub mod dynamo;
pub mod sglang_router;
pub mod trtllm_serve;
pub mod vllm;

use crate::build::{Ctx, FrontendProcess};
use crate::recipe::Recipe;
use srt_graph_engine::Step;

pub trait FrontendType: Sync {
    /// The `frontend.type` value.
    fn name(&self) -> &'static str;
    /// Other spellings of it.
    fn aliases(&self) -> &'static [&'static str] {
        &[]
    }
    /// Runs on Dynamo's runtime: NATS + etcd for discovery, `dynamo.*` workers.
    fn dynamo(&self) -> bool;
    /// The seed-era key holding its arguments (`sglang_router_args`).
    fn legacy_args_key(&self) -> &'static str;
    /// Nodes that host one frontend each, in order; the first is the one the public endpoint is on.
    fn placement(&self, recipe: &Recipe, total: usize) -> Vec<usize>;
    /// What the run's own virtualenv needs for it (local simulation), after `ctx.venv_ready`.
    fn venv_installs(&self, ctx: &Ctx<'_>, venv: &str) -> Vec<Step>;
    /// What a worker node installs for it when there is no venv and no container (a real run).
    fn node_installs(&self, _ctx: &Ctx<'_>, _node: usize) -> Vec<Step> {
        Vec::new()
    }
    /// One frontend process and the port it serves on; `None` when a worker itself serves the public
    /// port (an aggregated `trtllm-serve` or `vllm serve`).
    fn step(&self, ctx: &Ctx<'_>, f: &FrontendProcess<'_>) -> Option<(Step, u16)>;
    /// Several of them go behind nginx on the public port (srtctl's fan-out).
    fn behind_nginx(&self) -> bool {
        true
    }
    /// `srt-graph wait-healthy --mode`.
    fn health_mode(&self) -> &'static str;
}

/// Every frontend type: one line per module.
pub const ALL: &[&dyn FrontendType] = &[
    &sglang_router::SglangRouter,
    &dynamo::Dynamo,
    &trtllm_serve::TrtllmServe,
    &vllm::VllmServe,
];

pub fn find(name: &str) -> Option<&'static dyn FrontendType> {
    ALL.iter()
        .copied()
        .find(|f| f.name() == name || f.aliases().contains(&name))
}

/// One frontend on node `first`; with several, the others go on `start`, `start + k`, … with
/// `k = ceil((total - start) / num_additional)`, one per node at most.
pub fn spread(recipe: &Recipe, total: usize, first: usize, start: usize) -> Vec<usize> {
    let f = &recipe.frontend;
    if !f.multiple {
        return vec![0];
    }
    let mut out = vec![first];
    let extra = f.num_additional as usize;
    if extra == 0 || total <= start {
        return out;
    }
    let step = (total - start).div_ceil(extra).max(1);
    let mut idx = start;
    while idx < total && out.len() < extra + 1 {
        out.push(idx);
        idx += step;
    }
    out
}
