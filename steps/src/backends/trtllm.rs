//! `backend.type: trtllm`: TensorRT-LLM workers, as srtctl builds them. Each role's `trtllm_config` is
//! written as a YAML file into the run directory and handed to the worker; a worker is one MPI job over
//! its nodes (`srun --mpi=pmix --oversubscribe --cpu-bind=verbose,none`, one task per GPU) running
//! `trtllm-llmapi-launch python3 -m dynamo.trtllm …` behind Dynamo's frontends, or `trtllm-serve` behind
//! the `trtllm_serve` frontend. Its parallelism (tensor × pipeline) must equal the GPUs a worker gets.

use super::{Backend, Shape};
use crate::build::{Ctx, StandIn, WorkerProcess};
use crate::diag::{join, Reader};
use crate::recipe::{Role, RoleSpec};
use crate::yaml::{Node, Value};
use srt_graph_engine::{Mpi, Step, StepFile};

pub struct TrtLlm;

const CONFIG_KEY: &str = "trtllm_config";

impl Backend for TrtLlm {
    fn name(&self) -> &'static str {
        "trtllm"
    }

    fn keys(&self) -> &'static [&'static str] {
        &[CONFIG_KEY, "publish_events_and_metrics", "numa_memory_bind"]
    }

    fn ignored_keys(&self) -> &'static [&'static str] {
        &["sequential_node_start"]
    }

    fn config_key(&self) -> &'static str {
        CONFIG_KEY
    }

    fn frontends(&self) -> &'static [&'static str] {
        &["dynamo", "trtllm_serve"]
    }

    fn check_options(&self, backend: &Node, r: &mut Reader) {
        super::check_scalars(
            backend,
            "backend",
            &[
                ("publish_events_and_metrics", Shape::Bool),
                ("numa_memory_bind", Shape::Bool),
            ],
            r,
        );
    }

    /// TensorRT-LLM's engine options, kept as written (nested mappings included).
    fn role_config(
        &self,
        section: Option<&Node>,
        path: &str,
        r: &mut Reader,
    ) -> Vec<(String, Node)> {
        super::mapping(
            section,
            path,
            "TensorRT-LLM options",
            "tensor_parallel_size: 4",
            r,
        )
    }

    /// A worker is one MPI job of `tensor_parallel_size × pipeline_parallel_size` ranks: that must be
    /// the GPUs it gets, and the expert-parallel size must divide it.
    fn check_roles(&self, roles: &[RoleSpec], r: &mut Reader) {
        for spec in roles {
            let path = join(&format!("backend.{CONFIG_KEY}"), spec.role.as_str());
            let size = |key: &str| {
                spec.flag(&[key]).and_then(|n| match &n.value {
                    Value::Int(i) => Some((*i, n)),
                    _ => None,
                })
            };
            let (tp, pp, ep) = (
                size("tensor_parallel_size"),
                size("pipeline_parallel_size"),
                size("moe_expert_parallel_size"),
            );
            let world = tp.map_or(1, |t| t.0) * pp.map_or(1, |p| p.0);
            let gpus = i64::from(spec.gpus_per_worker);
            if (tp.is_some() || pp.is_some()) && world != gpus {
                let (key, at) = match (tp, pp) {
                    (Some((_, n)), _) => ("tensor_parallel_size", n.pos),
                    (None, Some((_, n))) => ("pipeline_parallel_size", n.pos),
                    (None, None) => ("tensor_parallel_size", spec.config_pos),
                };
                r.error(
                    at,
                    &join(&path, key),
                    format!(
                        "tensor_parallel_size × pipeline_parallel_size = {world}, but each {} worker gets {gpus} GPU(s)",
                        spec.role.as_str()
                    ),
                    Some(format!(
                        "a TensorRT-LLM worker is one MPI job with a rank per GPU: make TP × PP equal the GPUs per {} worker (resources.gpus_per_{})",
                        spec.role.as_str(),
                        spec.role.id_prefix()
                    )),
                );
            }
            if let Some((e, n)) = ep {
                if e < 1 || world % e != 0 {
                    r.error(
                        n.pos,
                        &join(&path, "moe_expert_parallel_size"),
                        format!(
                            "expert parallel size {e} does not divide the worker's {world} ranks"
                        ),
                        Some(
                            "use a divisor of tensor_parallel_size × pipeline_parallel_size".into(),
                        ),
                    );
                }
            }
        }
    }

    fn perf_model_backend(&self) -> Option<&'static str> {
        Some("trtllm")
    }

    fn engine_shape(&self, spec: &RoleSpec) -> Result<super::engine_shape::EngineShape, String> {
        use super::engine_shape::{count, fraction, switch, EngineShape};
        let f = |name: &str| spec.flag(&[name]);
        let nested = |outer: &str, inner: &str| f(outer).and_then(|n| n.get(inner));
        let tp = count(f("tensor_parallel_size")).unwrap_or(1);
        let adp = switch(f("enable_attention_dp"));
        Ok(EngineShape {
            tp,
            attention_dp: if adp { tp } else { 1 },
            moe_ep: count(f("moe_expert_parallel_size")).unwrap_or(1),
            pp: count(f("pipeline_parallel_size")).unwrap_or(1),
            nextn: count(nested("speculative_config", "num_nextn_predict_layers"))
                .or_else(|| count(nested("speculative_config", "max_draft_len")))
                .unwrap_or(0),
            max_running: count(f("max_batch_size")),
            // TRT-LLM's limits are per rank under attention DP.
            max_running_per_rank: true,
            chunked_prefill: count(f("max_num_tokens")),
            mem_fraction: fraction(nested("kv_cache_config", "free_gpu_memory_fraction")),
            quantization: None,
            kv_cache_dtype: nested("kv_cache_config", "dtype").and_then(Node::scalar_text),
        })
    }

    fn worker(&self, ctx: &Ctx<'_>, w: &WorkerProcess<'_>) -> Option<Step> {
        if ctx.stand_in == StandIn::DynamoMocker {
            return super::mocker_stand_in(ctx, w);
        }
        // One MPI job per worker: the leader's step spans the worker's nodes.
        let (span, rank) = w.place.dist.as_ref().map_or((1, 0), |d| (d.2, d.3));
        if rank > 0 {
            return None;
        }
        let mode = w.spec.role.engine_mode();
        let file = format!("trtllm_config_{mode}.yaml");
        let (host, seen) = super::run_file(ctx, &file);
        let mut argv = launch_prefix(ctx, w.spec.role);
        if ctx.recipe.frontend.kind == "trtllm_serve" {
            argv.extend(serve_args(ctx, w, &seen));
        } else {
            argv.extend(dynamo_args(ctx, mode, &seen));
        }
        let mut s = super::dynamo_worker(w, argv);
        s.files.push(StepFile {
            path: host,
            content: super::config_file(&w.spec.config),
        });
        s.env.insert(
            "TRTLLM_EPLB_SHM_NAME".into(),
            format!(
                "moe_shared_{:016x}",
                fnv(&format!("{}/{}", ctx.target.run_dir, s.id))
            ),
        );
        s.mpi = Some(Mpi {
            nodes: (w.place.node..w.place.node + span as usize).collect(),
            tasks: w.spec.gpus_per_worker,
            plugin: "pmix".into(),
            oversubscribe: true,
            cpu_bind: Some("verbose,none".into()),
        });
        s.summary = format!(
            "{} worker: TensorRT-LLM, {} GPUs on {span} node(s), one MPI job",
            w.spec.role.as_str(),
            w.spec.gpus_per_worker
        );
        Some(s)
    }
}

/// `[numactl -m 0,1] trtllm-llmapi-launch`: NUMA binding by default on GB200/GB300 prefill and decode
/// workers, or as `numa_memory_bind` says.
fn launch_prefix(ctx: &Ctx<'_>, role: Role) -> Vec<String> {
    let disagg = role != Role::Aggregated;
    let numa = match ctx
        .recipe
        .backend_option("numa_memory_bind")
        .map(|n| &n.value)
    {
        Some(Value::Bool(b)) => *b && disagg,
        _ => disagg && matches!(ctx.recipe.gpu_type.as_deref(), Some("gb200" | "gb300")),
    };
    let mut argv: Vec<String> = Vec::new();
    if numa {
        argv.extend(["numactl".into(), "-m".into(), "0,1".into()]);
    }
    argv.push("trtllm-llmapi-launch".into());
    argv
}

fn dynamo_args(ctx: &Ctx<'_>, mode: &str, config: &str) -> Vec<String> {
    let mut argv: Vec<String> = vec![
        "python3".into(),
        "-m".into(),
        "dynamo.trtllm".into(),
        "--model-path".into(),
        super::model_arg(ctx),
        "--served-model-name".into(),
        ctx.served_model.clone(),
    ];
    if mode != "agg" {
        argv.extend(["--disaggregation-mode".into(), mode.into()]);
    }
    argv.extend([
        "--extra-engine-args".into(),
        config.into(),
        "--request-plane".into(),
        ctx.recipe.dynamo.request_plane.clone(),
    ]);
    if matches!(
        ctx.recipe
            .backend_option("publish_events_and_metrics")
            .map(|n| &n.value),
        Some(Value::Bool(true))
    ) {
        argv.push("--publish-events-and-metrics".into());
    }
    argv
}

/// `trtllm-serve MODEL --host 0.0.0.0 --port P [parallel sizes] --config FILE`.
fn serve_args(ctx: &Ctx<'_>, w: &WorkerProcess<'_>, config: &str) -> Vec<String> {
    let mut argv: Vec<String> = vec![
        "trtllm-serve".into(),
        super::model_arg(ctx),
        "--host".into(),
        "0.0.0.0".into(),
        "--port".into(),
        w.place.http_port.to_string(),
    ];
    for key in [
        "tensor_parallel_size",
        "moe_expert_parallel_size",
        "pipeline_parallel_size",
    ] {
        if let Some(v) = w.spec.flag(&[key]).and_then(Node::scalar_text) {
            argv.extend([format!("--{key}"), v]);
        }
    }
    argv.extend(["--config".into(), config.into()]);
    argv
}

/// FNV-1a: a stable, run-unique name for TensorRT-LLM's shared-memory segment (srtctl draws a UUID).
fn fnv(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}
