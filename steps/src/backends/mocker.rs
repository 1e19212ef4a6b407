//! `backend.type: mocker`: Dynamo's GPU-less engine as the backend itself (srtctl's mocker backend):
//! `python3 -m dynamo.mocker --model-path M [--disaggregation-mode m] [--bootstrap-ports P] --engine-type
//! … --speedup-ratio … --data-parallel-size … --num-gpu-blocks-override … --max-num-seqs …
//! --max-num-batched-tokens …`, the optional knobs when set, then the role's `mocker_config` as flags.
//! It needs no GPU, so it runs as written here too.

use super::{Backend, Shape, WorkerPorts};
use crate::build::{Ctx, StandIn, WorkerProcess};
use crate::diag::Reader;
use crate::kinds::start_worker;
use crate::recipe::{Role, RoleSpec};
use crate::yaml::{Node, Value};
use srt_graph_engine::Step;

pub struct Mocker;

const CONFIG_KEY: &str = "mocker_config";

/// The knobs srtctl always passes, with its defaults.
const ALWAYS: &[(&str, &str)] = &[
    ("engine_type", "vllm"),
    ("speedup_ratio", "100.0"),
    ("data_parallel_size", "1"),
    ("num_gpu_blocks_override", "16384"),
    ("max_num_seqs", "256"),
    ("max_num_batched_tokens", "8192"),
];

/// The knobs passed only when set (and not at srtctl's default).
const WHEN_SET: &[&str] = &[
    "block_size",
    "startup_time",
    "kv_transfer_bandwidth",
    "kv_cache_dtype",
    "preemption_mode",
];

impl Backend for Mocker {
    fn name(&self) -> &'static str {
        "mocker"
    }

    fn keys(&self) -> &'static [&'static str] {
        &[
            CONFIG_KEY,
            "engine_type",
            "speedup_ratio",
            "decode_speedup_ratio",
            "num_gpu_blocks_override",
            "max_num_seqs",
            "max_num_batched_tokens",
            "block_size",
            "data_parallel_size",
            "num_workers",
            "startup_time",
            "kv_transfer_bandwidth",
            "kv_cache_dtype",
            "enable_prefix_caching",
            "enable_chunked_prefill",
            "preemption_mode",
        ]
    }

    fn config_key(&self) -> &'static str {
        CONFIG_KEY
    }

    /// `mocker_config` only overrides flags, per role, where given.
    fn every_role_configured(&self) -> bool {
        false
    }

    fn check_options(&self, backend: &Node, r: &mut Reader) {
        super::check_scalars(
            backend,
            "backend",
            &[
                ("engine_type", Shape::Text),
                ("speedup_ratio", Shape::Number),
                ("decode_speedup_ratio", Shape::Number),
                ("num_gpu_blocks_override", Shape::Int),
                ("max_num_seqs", Shape::Int),
                ("max_num_batched_tokens", Shape::Int),
                ("block_size", Shape::Int),
                ("data_parallel_size", Shape::Int),
                ("num_workers", Shape::Int),
                ("startup_time", Shape::Number),
                ("kv_transfer_bandwidth", Shape::Number),
                ("kv_cache_dtype", Shape::Text),
                ("enable_prefix_caching", Shape::Bool),
                ("enable_chunked_prefill", Shape::Bool),
                ("preemption_mode", Shape::Text),
            ],
            r,
        );
    }

    fn role_config(
        &self,
        section: Option<&Node>,
        path: &str,
        r: &mut Reader,
    ) -> Vec<(String, Node)> {
        super::mapping(section, path, "mocker flags", "max-num-seqs: 128", r)
    }

    fn ports(&self, spec: &RoleSpec) -> WorkerPorts {
        WorkerPorts {
            http: start_worker::HTTP_PORT,
            bootstrap: (spec.role == Role::Prefill).then_some(start_worker::BOOTSTRAP_PORT),
        }
    }

    /// The mocker is its own stand-in: under `--mock-workers` it reads the weightless model directory
    /// the run writes.
    fn stand_in(&self, _dynamo: bool) -> StandIn {
        StandIn::DynamoMocker
    }

    fn worker(&self, ctx: &Ctx<'_>, w: &WorkerProcess<'_>) -> Option<Step> {
        // The mocker simulates a whole worker in one process.
        if w.place.dist.as_ref().is_some_and(|d| d.3 > 0) {
            return None;
        }
        let recipe = ctx.recipe;
        let mut argv: Vec<String> = vec![
            ctx.worker_python.clone(),
            "-m".into(),
            "dynamo.mocker".into(),
            "--model-path".into(),
            mocker_model(ctx, w),
            "--model-name".into(),
            ctx.served_model.clone(),
        ];
        if w.spec.role != Role::Aggregated {
            argv.extend([
                "--disaggregation-mode".into(),
                w.spec.role.engine_mode().into(),
            ]);
        }
        if let Some(p) = w
            .place
            .bootstrap_port
            .filter(|_| w.spec.role == Role::Prefill)
        {
            argv.extend(["--bootstrap-ports".into(), p.to_string()]);
        }
        for (key, default) in ALWAYS {
            let v = super::option_text(recipe, key).unwrap_or_else(|| default.to_string());
            argv.extend([flag(key), v]);
        }
        if let Some(v) = super::option_text(recipe, "decode_speedup_ratio")
            .filter(|v| v.parse::<f64>().ok() != Some(1.0))
        {
            argv.extend(["--decode-speedup-ratio".into(), v]);
        }
        for key in WHEN_SET {
            if let Some(v) = super::option_text(recipe, key) {
                argv.extend([flag(key), v]);
            }
        }
        if let Some(n) = super::option_text(recipe, "num_workers").filter(|n| n != "1" && n != "0")
        {
            argv.extend(["--num-workers".into(), n]);
        }
        for (key, off) in [
            ("enable_prefix_caching", "--no-enable-prefix-caching"),
            ("enable_chunked_prefill", "--no-enable-chunked-prefill"),
        ] {
            if matches!(
                recipe.backend_option(key).map(|n| &n.value),
                Some(Value::Bool(false))
            ) {
                argv.push(off.into());
            }
        }
        argv.extend(super::cli_args(&w.spec.config, &[]));
        let mut s = super::dynamo_worker(w, argv);
        // Its request, response and event planes listen on the node's own address (ephemeral ports).
        for var in crate::kinds::DYNAMO_PLANE_HOSTS {
            s.env.insert(var.into(), w.place.probe_addr.into());
        }
        s.summary = format!(
            "{} worker: dynamo.mocker (GPU-less), {} GPUs simulated",
            w.spec.role.as_str(),
            w.spec.gpus_per_worker
        );
        Some(s)
    }
}

fn flag(key: &str) -> String {
    format!("--{}", key.replace('_', "-"))
}

/// The model directory: in simulation the weightless one the run writes (or the recipe's, when this
/// machine has it); on a cluster the recipe's, as srtctl mounts it.
fn mocker_model(ctx: &Ctx<'_>, w: &WorkerProcess<'_>) -> String {
    if ctx.target.mock_workers {
        ctx.mocker_model(w.place.node)
    } else {
        super::model_arg(ctx)
    }
}
