//! Inference backends (`backend.type`), one module each, registered in `ALL`. A backend owns its keys
//! under `backend:`, how a role's engine configuration is read and checked, the ports its workers listen
//! on, and the command line of a worker process — or of its stand-in under `--mock-workers`.

pub mod engine_shape;
pub mod kv_events;
pub mod mocker;
pub mod sglang;
pub mod trtllm;
pub mod vllm;

use crate::build::{Ctx, StandIn, WorkerProcess};
use crate::diag::Reader;
use crate::recipe::{Recipe, RoleSpec};
use crate::yaml::Node;
use srt_graph_engine::Step;

pub trait Backend: Sync {
    /// The `backend.type` value.
    fn name(&self) -> &'static str;
    /// Keys under `backend:` this backend reads, beyond those every backend shares.
    fn keys(&self) -> &'static [&'static str];
    /// srt-slurm keys under `backend:` it accepts without acting on them.
    fn ignored_keys(&self) -> &'static [&'static str] {
        &[]
    }
    /// The key under `backend:` that holds each role's engine configuration.
    fn config_key(&self) -> &'static str;
    /// One role's engine configuration (`path` is its field path), in the order written.
    fn role_config(
        &self,
        section: Option<&Node>,
        path: &str,
        r: &mut Reader,
    ) -> Vec<(String, Node)>;
    /// A disaggregated recipe that configures one role must configure the other too.
    fn every_role_configured(&self) -> bool {
        true
    }
    /// Checks the backend's own recipe-wide keys (types, valid values).
    fn check_options(&self, _backend: &Node, _r: &mut Reader) {}
    /// Frontend types it can serve behind.
    fn frontends(&self) -> &'static [&'static str] {
        &["dynamo"]
    }
    /// The model name clients send.
    fn served_model_name(&self, recipe: &Recipe) -> String {
        model_basename(recipe)
    }
    /// Checks across roles, once all are read.
    fn check_roles(&self, _roles: &[RoleSpec], _r: &mut Reader) {}
    /// Ports of the first worker of a role on a node (the k-th adds k × `PORT_STRIDE`): by default the
    /// worker's HTTP (or Dynamo system) port and no bootstrap port.
    fn ports(&self, _spec: &RoleSpec) -> WorkerPorts {
        WorkerPorts {
            http: crate::kinds::start_worker::HTTP_PORT,
            bootstrap: None,
        }
    }
    /// What stands in for the engine under `--mock-workers`, by whether the deployment runs on Dynamo:
    /// by default Dynamo's mocker (the engines Dynamo drives).
    fn stand_in(&self, _dynamo: bool) -> StandIn {
        StandIn::DynamoMocker
    }
    /// The backend as the performance model names it (`sglang`, `trtllm`, `vllm`); `None` = none models it.
    fn perf_model_backend(&self) -> Option<&'static str> {
        None
    }
    /// What a role's engine flags say about its shape (parallelism, MTP, batch limits).
    fn engine_shape(&self, _spec: &RoleSpec) -> Result<engine_shape::EngineShape, String> {
        Err(format!(
            "no performance model reads `{}` engine flags",
            self.name()
        ))
    }
    /// The step of one worker process; `None` when the rank is no process of its own (a stand-in that
    /// simulates a whole multi-node worker on its leader).
    fn worker(&self, ctx: &Ctx<'_>, w: &WorkerProcess<'_>) -> Option<Step>;
}

/// Where a worker listens: its HTTP port, and the disaggregation bootstrap port it names, if any.
pub struct WorkerPorts {
    pub http: u16,
    pub bootstrap: Option<u16>,
}

/// Every backend: one line per module.
pub const ALL: &[&dyn Backend] = &[
    &sglang::SGLang,
    &trtllm::TrtLlm,
    &vllm::Vllm,
    &mocker::Mocker,
];

pub fn find(name: &str) -> Option<&'static dyn Backend> {
    ALL.iter().copied().find(|b| b.name() == name)
}

pub fn names() -> Vec<&'static str> {
    ALL.iter().map(|b| b.name()).collect()
}

/// The model's last path component (srtctl serves Dynamo workers under it).
pub fn model_basename(recipe: &Recipe) -> String {
    recipe
        .model_path
        .as_deref()
        .map(|p| p.trim_end_matches('/'))
        .and_then(|p| p.rsplit('/').next())
        .filter(|n| !n.is_empty())
        .map_or_else(|| "default".into(), str::to_string)
}

/// The model argument of a worker: `/model` in a container (srtctl mounts it there), a Hugging Face id
/// as written (`hf:` dropped), else the path on the node.
pub fn model_arg(ctx: &Ctx<'_>) -> String {
    let path = ctx.recipe.model_path.clone().unwrap_or_default();
    match path.strip_prefix("hf:") {
        Some(id) => id.to_string(),
        None if ctx.target.container.is_some() => "/model".into(),
        None => path,
    }
}

/// srtctl's `_config_to_cli_args`: keys in order, `_` → `-`; `true` → `--key`; `false` and null
/// omitted; a list → `--key v1 v2…`; a mapping → its JSON; anything else → `--key value`.
pub fn cli_args(config: &[(String, Node)], skip: &[&str]) -> Vec<String> {
    let kebab: Vec<(String, Node)> = config
        .iter()
        .map(|(k, v)| (k.replace('_', "-"), v.clone()))
        .collect();
    crate::kinds::flags(&kebab, skip)
}

/// A role's configuration as a YAML file (JSON is YAML): what TensorRT-LLM's `--extra-engine-args`
/// and `--config` read.
pub fn config_file(config: &[(String, Node)]) -> String {
    let map: serde_json::Map<String, serde_json::Value> = config
        .iter()
        .map(|(k, v)| (k.clone(), v.to_json()))
        .collect();
    let mut text =
        serde_json::to_string_pretty(&serde_json::Value::Object(map)).unwrap_or_default();
    text.push('\n');
    text
}

/// Where a file the run writes is seen by a worker: `/logs/<name>` in a container (the run directory is
/// mounted there), else in the run directory.
pub fn run_file(ctx: &Ctx<'_>, name: &str) -> (String, String) {
    let host = format!("{}/{name}", ctx.target.run_dir);
    let seen = if ctx.target.container.is_some() {
        format!("/logs/{name}")
    } else {
        host.clone()
    };
    (host, seen)
}

/// A scalar option as text, or the default.
pub fn option_text(recipe: &Recipe, key: &str) -> Option<String> {
    recipe.backend_option(key).and_then(Node::scalar_text)
}

/// Checks that each listed option, when given, is a scalar of the expected shape.
pub fn check_scalars(backend: &Node, path: &str, checks: &[(&str, Shape)], r: &mut Reader) {
    use crate::yaml::Value;
    for (key, shape) in checks {
        let Some(n) = backend.get(key) else { continue };
        let ok = match (shape, &n.value) {
            (_, Value::Null) => true,
            (Shape::Bool, Value::Bool(_)) => true,
            (Shape::Number, Value::Int(_) | Value::Float(_)) => true,
            (Shape::Int, Value::Int(i)) => *i >= 0,
            (Shape::Text, Value::Str(_)) => true,
            (Shape::Map, Value::Map(_) | Value::Bool(_)) => true,
            _ => false,
        };
        if !ok {
            r.error(
                n.pos,
                &crate::diag::join(path, key),
                format!("expected {}, found {}", shape.describe(), n.describe()),
                None,
            );
        }
    }
}

#[derive(Debug, Clone, Copy)]
pub enum Shape {
    Bool,
    Number,
    Int,
    Text,
    Map,
}

impl Shape {
    fn describe(self) -> &'static str {
        match self {
            Shape::Bool => "true or false",
            Shape::Number => "a number",
            Shape::Int => "a non-negative integer",
            Shape::Text => "a string",
            Shape::Map => "a mapping (or true/false)",
        }
    }
}

/// A worker process on Dynamo's runtime (TensorRT-LLM, vLLM, the mocker as a backend): its command, the
/// role's environment, Dynamo's system port (where it answers `/health`) and, when it shares a node,
/// its GPUs.
pub fn dynamo_worker(w: &WorkerProcess<'_>, argv: Vec<String>) -> Step {
    let place = &w.place;
    let mut s = crate::kinds::start_worker::SPEC.step(
        place.id.clone(),
        place.node,
        srt_graph_engine::Lifetime::Service,
    );
    s.role = Some(w.spec.role.as_str().into());
    s.command = Some(argv);
    s.env = w.env.clone();
    // Dynamo's system server (`/health`) on the worker's port and bind address: in a simulation on one
    // machine, each worker's own loopback address.
    s.env
        .insert("DYN_SYSTEM_PORT".into(), place.http_port.to_string());
    s.env
        .insert("DYN_SYSTEM_HOST".into(), place.bind.to_string());
    if let Some(devs) = &place.cuda_devices {
        s.env.insert("CUDA_VISIBLE_DEVICES".into(), devs.clone());
    }
    s.ports = vec![place.http_port];
    s.probe = Some(srt_graph_engine::Probe::Http {
        url: format!("http://{}:{}/health", place.probe_addr, place.http_port),
    });
    s.summary = format!(
        "{} worker, {} GPUs",
        w.spec.role.as_str(),
        w.spec.gpus_per_worker
    );
    s
}

/// The simulation's stand-in for a worker on Dynamo's runtime: Dynamo's own `dynamo.mocker`, leader
/// rank only (it simulates the whole worker in one process).
pub fn mocker_stand_in(ctx: &Ctx<'_>, w: &WorkerProcess<'_>) -> Option<Step> {
    if w.place.dist.as_ref().is_some_and(|d| d.3 > 0) {
        return None;
    }
    Some(crate::kinds::start_worker::dynamo_mocker(
        w.spec,
        &ctx.worker_python,
        &w.place,
        &ctx.mocker_model(w.place.node),
        &ctx.served_model,
        w.env.clone(),
        ctx.mocker_role_flags,
    ))
}

/// A role's configuration that is a mapping of engine options, kept as written.
pub fn mapping(
    section: Option<&Node>,
    path: &str,
    what: &str,
    example: &str,
    r: &mut Reader,
) -> Vec<(String, Node)> {
    use crate::yaml::Value;
    let Some(s) = section else {
        return Vec::new();
    };
    match &s.value {
        Value::Null => Vec::new(),
        Value::Map(m) => m.iter().map(|e| (e.key.clone(), e.value.clone())).collect(),
        _ => {
            r.error(
                s.pos,
                path,
                format!("expected a mapping of {what}, found {}", s.describe()),
                Some(format!("e.g. `{example}`")),
            );
            Vec::new()
        }
    }
}
