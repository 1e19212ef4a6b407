//! `frontend.type: trtllm_serve` (TensorRT-LLM backend only): no Dynamo. Disaggregated, one
//! `trtllm-serve disaggregated --config ser.yaml` on node 0 fronts the context (prefill) and generation
//! (decode) `trtllm-serve` workers listed in `ser.yaml` (with the frontend's `ctx_router`, `gen_router`
//! and `server_config_extra`); aggregated, the one worker serves the public port itself. One public
//! endpoint, no nginx (srtctl refuses several).

use super::FrontendType;
use crate::backends;
use crate::build::{Ctx, FrontendProcess};
use crate::kinds::{self, start_frontend, start_nginx};
use crate::recipe::Recipe;
use serde_json::{json, Value};
use srt_graph_engine::{Step, StepFile};

pub struct TrtllmServe;

impl FrontendType for TrtllmServe {
    fn name(&self) -> &'static str {
        "trtllm_serve"
    }

    fn dynamo(&self) -> bool {
        false
    }

    fn legacy_args_key(&self) -> &'static str {
        "trtllm_serve_args"
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

    fn step(&self, ctx: &Ctx<'_>, f: &FrontendProcess<'_>) -> Option<(Step, u16)> {
        let recipe = ctx.recipe;
        if !recipe.is_disaggregated() {
            return None;
        }
        let host_port = |url: &str| url.trim_start_matches("http://").to_string();
        let context: Vec<String> = f
            .leaders
            .prefill
            .iter()
            .map(|(u, _)| host_port(u))
            .collect();
        let generation: Vec<String> = f.leaders.decode.iter().map(|u| host_port(u)).collect();
        let port = start_nginx::PUBLIC_PORT;
        let mut ser = json!({
            "context_servers": {"num_instances": context.len(), "urls": context},
            "generation_servers": {"num_instances": generation.len(), "urls": generation},
            "hostname": "0.0.0.0",
            "port": port,
        });
        let option = |k: &str| {
            recipe
                .frontend
                .options
                .iter()
                .find(|(key, _)| key == k)
                .map(|(_, v)| v.to_json())
        };
        for (key, servers) in [
            ("ctx_router", "context_servers"),
            ("gen_router", "generation_servers"),
        ] {
            if let Some(router) = option(key).filter(|r| !r.is_null()) {
                ser[servers]["router"] = router;
            }
        }
        if let Some(Value::Object(extra)) = option("server_config_extra") {
            for (k, v) in extra {
                ser[k] = v;
            }
        }
        let (host, seen) = backends::run_file(ctx, "ser.yaml");
        let mut s = start_frontend::SPEC.step(
            format!("frontend-{}", f.index),
            f.node,
            srt_graph_engine::Lifetime::Service,
        );
        let mut argv: Vec<String> = vec![
            "trtllm-serve".into(),
            "disaggregated".into(),
            "--config".into(),
            seen,
        ];
        argv.extend(kinds::flags(&recipe.frontend.args, &[]));
        s.command = Some(argv);
        s.files.push(StepFile {
            path: host,
            content: format!(
                "{}\n",
                serde_json::to_string_pretty(&ser).unwrap_or_default()
            ),
        });
        s.env = kinds::env(&recipe.frontend.env);
        s.ports = vec![port];
        s.probe = Some(srt_graph_engine::Probe::Tcp {
            host: ctx.nodes.addrs[f.node].clone(),
            port,
        });
        // srtctl starts it once every worker answers; the workers' steps are its dependencies here.
        s.depends_on
            .extend(f.workers.iter().filter(|w| !w.contains("/rank")).cloned());
        s.summary = "trtllm-serve disaggregated orchestrator (context + generation servers)".into();
        Some((s, port))
    }

    fn health_mode(&self) -> &'static str {
        "openai"
    }
}
