//! `backend.type: vllm`: vLLM workers, as srtctl builds them: `python3 -m dynamo.vllm --model M
//! --served-model-name N [--disaggregation-mode prefill|decode] [--kv-transfer-config JSON]` plus the
//! role's `vllm_config` as flags, with the rendezvous flags of a worker spanning nodes (`--master-addr
//! --nnodes --node-rank`, `--headless` off the leader) or the data-parallel ranks of a node
//! (`--data-parallel-size-local --data-parallel-start-rank --data-parallel-address
//! --data-parallel-rpc-port --data-parallel-hybrid-lb`, srtctl's `per_node` layout). Behind the `vllm`
//! frontend an aggregated worker is `vllm serve` itself, on the public port.

use super::{Backend, Shape};
use crate::build::{Ctx, StandIn, WorkerProcess};
use crate::diag::{join, Reader};
use crate::kinds::start_nginx;
use crate::recipe::{Role, RoleSpec};
use crate::yaml::{Node, Value};
use srt_graph_engine::Step;

pub struct Vllm;

const CONFIG_KEY: &str = "vllm_config";
/// srtctl's data-parallel RPC port.
pub const DP_RPC_PORT: u16 = 8400;
/// Flags srtctl sets from placement: taken out of `vllm_config`.
const PLACED: &[&str] = &[
    "connector",
    "data-parallel-rpc-port",
    "data-parallel-size-local",
    "data-parallel-start-rank",
    "data-parallel-hybrid-lb",
    "data-parallel-address",
    "headless",
    "master-addr",
    "nnodes",
    "node-rank",
    "host",
    "port",
];

impl Backend for Vllm {
    fn name(&self) -> &'static str {
        "vllm"
    }

    fn keys(&self) -> &'static [&'static str] {
        &[
            CONFIG_KEY,
            "connector",
            "dp_launch_mode",
            super::kv_events::KEY,
        ]
    }

    fn ignored_keys(&self) -> &'static [&'static str] {
        &[
            "set_cuda_visible_devices",
            "mooncake_kv_store",
            "allow_prefill_decode_colocation",
            "allow_prefill_decode_colocation_across_nodes",
        ]
    }

    fn config_key(&self) -> &'static str {
        CONFIG_KEY
    }

    fn frontends(&self) -> &'static [&'static str] {
        &["dynamo", "vllm"]
    }

    /// A role's `served-model-name`, else the model's last path component (srtctl's rule).
    fn served_model_name(&self, recipe: &crate::recipe::Recipe) -> String {
        recipe
            .roles
            .iter()
            .find_map(|r| {
                r.flag(&["served-model-name", "served_model_name"])
                    .and_then(Node::scalar_text)
            })
            .unwrap_or_else(|| super::model_basename(recipe))
    }

    fn check_options(&self, backend: &Node, r: &mut Reader) {
        super::kv_events::check(backend, r);
        super::check_scalars(
            backend,
            "backend",
            &[("connector", Shape::Text), ("dp_launch_mode", Shape::Text)],
            r,
        );
        if let Some(n) = backend.get("dp_launch_mode") {
            if let Some(v) = n
                .scalar_text()
                .filter(|v| v != "per_node" && v != "per_gpu")
            {
                r.error(
                    n.pos,
                    "backend.dp_launch_mode",
                    format!("`{v}` is not a data-parallel launch mode"),
                    Some("valid: per_node, per_gpu".into()),
                );
            }
        }
    }

    fn role_config(
        &self,
        section: Option<&Node>,
        path: &str,
        r: &mut Reader,
    ) -> Vec<(String, Node)> {
        super::mapping(section, path, "vLLM flags", "tensor-parallel-size: 4", r)
    }

    /// Data parallelism: DP × TP × PP must be the GPUs a worker gets (srtctl's check).
    fn check_roles(&self, roles: &[RoleSpec], r: &mut Reader) {
        for spec in roles {
            let Some((dp, n)) = size(spec, "data-parallel-size") else {
                continue;
            };
            let replica = size(spec, "tensor-parallel-size").map_or(1, |x| x.0)
                * size(spec, "pipeline-parallel-size").map_or(1, |x| x.0);
            let gpus = i64::from(spec.gpus_per_worker);
            if dp * replica != gpus {
                r.error(
                    n.pos,
                    &join(&join(&format!("backend.{CONFIG_KEY}"), spec.role.as_str()), "data-parallel-size"),
                    format!(
                        "data-parallel-size {dp} × tensor × pipeline parallel {replica} = {} GPUs, but each {} worker gets {gpus}",
                        dp * replica,
                        spec.role.as_str()
                    ),
                    Some("srtctl's rule: DP × TP × PP equals the worker's GPUs".into()),
                );
            }
        }
    }

    fn perf_model_backend(&self) -> Option<&'static str> {
        Some("vllm")
    }

    fn engine_shape(&self, spec: &RoleSpec) -> Result<super::engine_shape::EngineShape, String> {
        use super::engine_shape::{count, fraction, switch, EngineShape};
        let f = |name: &str| spec.flag(&[name, &name.replace('-', "_")]);
        let tp = count(f("tensor-parallel-size")).unwrap_or(1);
        let dp = count(f("data-parallel-size")).unwrap_or(1);
        Ok(EngineShape {
            // vLLM's DP ranks each hold a `tp`-wide copy of attention.
            tp: tp * dp,
            attention_dp: dp,
            moe_ep: if switch(f("enable-expert-parallel")) {
                tp * dp
            } else {
                1
            },
            pp: count(f("pipeline-parallel-size")).unwrap_or(1),
            nextn: 0,
            max_running: count(f("max-num-seqs")),
            max_running_per_rank: true,
            chunked_prefill: count(f("max-num-batched-tokens")),
            mem_fraction: fraction(f("gpu-memory-utilization")),
            quantization: f("quantization").and_then(Node::scalar_text),
            kv_cache_dtype: f("kv-cache-dtype").and_then(Node::scalar_text),
        })
    }

    fn worker(&self, ctx: &Ctx<'_>, w: &WorkerProcess<'_>) -> Option<Step> {
        if ctx.stand_in == StandIn::DynamoMocker {
            return super::mocker_stand_in(ctx, w);
        }
        let argv = if ctx.recipe.frontend.kind == "vllm" {
            serve_argv(ctx, w)
        } else {
            dynamo_argv(ctx, w)
        };
        let mut s = super::dynamo_worker(w, argv);
        // srtctl's vLLM reading: the switch adds `enable_kv_cache_events`; Dynamo learns the port from
        // DYN_VLLM_KV_EVENT_PORT.
        let defaults = [("enable_kv_cache_events", true.into())];
        if super::kv_events::apply(ctx.recipe, w, &defaults, &mut s) {
            s.env.insert(
                "DYN_VLLM_KV_EVENT_PORT".into(),
                w.place.kv_events_port.to_string(),
            );
        }
        if ctx.recipe.frontend.kind == "vllm" {
            // `vllm serve` is the public endpoint itself: no Dynamo system port.
            s.env.remove("DYN_SYSTEM_PORT");
            let rank = w.place.dist.as_ref().map_or(0, |d| d.3);
            s.ports = if rank == 0 {
                vec![start_nginx::PUBLIC_PORT]
            } else {
                Vec::new()
            };
            s.probe = (rank == 0).then(|| srt_graph_engine::Probe::Http {
                url: format!(
                    "http://{}:{}/health",
                    w.place.probe_addr,
                    start_nginx::PUBLIC_PORT
                ),
            });
        }
        Some(s)
    }
}

/// A role's integer setting under either spelling.
fn size<'a>(spec: &'a RoleSpec, kebab: &str) -> Option<(i64, &'a Node)> {
    let snake = kebab.replace('-', "_");
    spec.flag(&[kebab, &snake]).and_then(|n| match &n.value {
        Value::Int(i) => Some((*i, n)),
        Value::Str(s) => s.parse().ok().map(|i| (i, n)),
        _ => None,
    })
}

/// `--kv-transfer-config` for srtctl's connector shorthands; anything else is passed as written.
fn kv_transfer_config(connector: &str) -> String {
    match connector.to_ascii_lowercase().as_str() {
        "nixl" => r#"{"kv_connector": "NixlConnector", "kv_role": "kv_both"}"#.into(),
        "lmcache" => r#"{"kv_connector": "LMCacheConnectorV1", "kv_role": "kv_both"}"#.into(),
        "kvbm" => r#"{"kv_connector": "DynamoConnector", "kv_connector_module_path": "kvbm.vllm_integration.connector", "kv_role": "kv_both"}"#.into(),
        _ => connector.into(),
    }
}

/// The role's connector (its own `connector:` wins over the backend's).
fn connector(ctx: &Ctx<'_>, spec: &RoleSpec) -> Option<String> {
    spec.flag(&["connector"])
        .and_then(Node::scalar_text)
        .or_else(|| super::option_text(ctx.recipe, "connector"))
        .filter(|c| !matches!(c.as_str(), "null" | "none" | ""))
}

fn dynamo_argv(ctx: &Ctx<'_>, w: &WorkerProcess<'_>) -> Vec<String> {
    let spec = w.spec;
    let mut argv: Vec<String> = vec![
        "python3".into(),
        "-m".into(),
        "dynamo.vllm".into(),
        "--model".into(),
        super::model_arg(ctx),
        "--served-model-name".into(),
        ctx.served_model.clone(),
    ];
    if spec.role != Role::Aggregated {
        argv.extend([
            "--disaggregation-mode".into(),
            spec.role.engine_mode().into(),
        ]);
    }
    if let Some(c) = connector(ctx, spec) {
        argv.extend(["--kv-transfer-config".into(), kv_transfer_config(&c)]);
    }
    argv.extend(placement_args(w));
    argv.extend([
        "--request-plane".into(),
        ctx.recipe.dynamo.request_plane.clone(),
    ]);
    // The served name is passed above; the config's own copy would repeat it.
    let skip: Vec<&str> = PLACED
        .iter()
        .copied()
        .chain(["served-model-name"])
        .collect();
    argv.extend(super::cli_args(&spec.config, &skip));
    argv
}

/// Rendezvous across a worker's nodes, or the data-parallel ranks on each node (srtctl's `per_node`
/// layout: a replica of TP × PP GPUs that fits a node runs `GPUs / replica` local ranks there; a larger
/// one spans nodes under one rendezvous).
fn placement_args(w: &WorkerProcess<'_>) -> Vec<String> {
    let (leader, nnodes, rank) = match &w.place.dist {
        Some((leader, _, nnodes, rank)) => (leader.as_str(), *nnodes, *rank),
        None => (w.place.probe_addr, 1, 0),
    };
    let rendezvous = || -> Vec<String> {
        let mut a = vec![
            "--master-addr".into(),
            leader.into(),
            "--nnodes".into(),
            nnodes.to_string(),
            "--node-rank".into(),
            rank.to_string(),
        ];
        if rank > 0 {
            a.push("--headless".into());
        }
        a
    };
    let Some(_) = size(w.spec, "data-parallel-size") else {
        return if nnodes > 1 { rendezvous() } else { Vec::new() };
    };
    let replica = (size(w.spec, "tensor-parallel-size").map_or(1, |x| x.0)
        * size(w.spec, "pipeline-parallel-size").map_or(1, |x| x.0))
    .max(1);
    let local_gpus = i64::from(w.spec.gpus_per_worker / nnodes.max(1));
    let dp_address = [
        "--data-parallel-address".to_string(),
        leader.to_string(),
        "--data-parallel-rpc-port".to_string(),
        DP_RPC_PORT.to_string(),
    ];
    if replica > local_gpus {
        let mut a = rendezvous();
        let headless = a.last().is_some_and(|l| l == "--headless");
        if headless {
            a.pop();
        }
        a.extend(dp_address);
        if headless {
            a.push("--headless".into());
        }
        return a;
    }
    let local = (local_gpus / replica).max(1);
    let mut a = vec![
        "--data-parallel-size-local".to_string(),
        local.to_string(),
        "--data-parallel-start-rank".into(),
        (local * i64::from(rank)).to_string(),
    ];
    a.extend(dp_address);
    a.push("--data-parallel-hybrid-lb".into());
    a
}

/// `vllm serve MODEL` behind the `vllm` frontend (aggregated only): the leader serves the public port.
fn serve_argv(ctx: &Ctx<'_>, w: &WorkerProcess<'_>) -> Vec<String> {
    let mut argv: Vec<String> = vec!["vllm".into(), "serve".into(), super::model_arg(ctx)];
    let rank = w.place.dist.as_ref().map_or(0, |d| d.3);
    if rank == 0 {
        argv.extend([
            "--host".into(),
            "0.0.0.0".into(),
            "--port".into(),
            start_nginx::PUBLIC_PORT.to_string(),
        ]);
    }
    if let Some((leader, _, nnodes, rank)) = &w.place.dist {
        argv.extend([
            "--master-addr".into(),
            leader.clone(),
            "--nnodes".into(),
            nnodes.to_string(),
            "--node-rank".into(),
            rank.to_string(),
        ]);
        if *rank > 0 {
            argv.push("--headless".into());
        }
    }
    let mut config = w.spec.config.clone();
    if !config
        .iter()
        .any(|(k, _)| k == "served-model-name" || k == "served_model_name")
    {
        config.push((
            "served-model-name".into(),
            Node::new(Value::Str(ctx.served_model.clone()), w.spec.config_pos),
        ));
    }
    argv.extend(super::cli_args(&config, PLACED));
    argv
}
