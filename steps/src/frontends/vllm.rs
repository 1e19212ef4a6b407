//! `frontend.type: vllm` (vLLM backend, aggregated only): no Dynamo and no separate frontend process —
//! the worker is `vllm serve` on the public port.

use super::FrontendType;
use crate::build::{Ctx, FrontendProcess};
use crate::recipe::Recipe;
use srt_graph_engine::Step;

pub struct VllmServe;

impl FrontendType for VllmServe {
    fn name(&self) -> &'static str {
        "vllm"
    }

    fn dynamo(&self) -> bool {
        false
    }

    fn legacy_args_key(&self) -> &'static str {
        "vllm_args"
    }

    fn placement(&self, _recipe: &Recipe, _total: usize) -> Vec<usize> {
        vec![0]
    }

    fn behind_nginx(&self) -> bool {
        false
    }

    fn venv_installs(&self, _ctx: &Ctx<'_>, _venv: &str) -> Vec<Step> {
        Vec::new()
    }

    fn step(&self, _ctx: &Ctx<'_>, _f: &FrontendProcess<'_>) -> Option<(Step, u16)> {
        None
    }

    fn health_mode(&self) -> &'static str {
        "openai"
    }
}
