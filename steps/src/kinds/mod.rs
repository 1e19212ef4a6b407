//! One file per step kind: its name, default policy and how its command line is built.

pub mod check_identity;
pub mod collect_power;
pub mod fingerprint;
pub mod mock_model;
pub mod mount_source;
pub mod perf_table;
pub mod pip_install;
pub mod profile;
pub mod run_benchmark;
pub mod sample_host;
pub mod scrape_metrics;
pub mod setup_script;
pub mod shell;
pub mod start_container;
pub mod start_etcd;
pub mod start_exporter;
pub mod start_frontend;
pub mod start_nats;
pub mod start_nginx;
pub mod start_router;
pub mod start_worker;
pub mod wait_healthy;
pub mod wait_power;

use crate::yaml::{Node, Value};
use srt_graph_engine::{Lifetime, OnResume, Policy, Step};

/// What every step of one kind shares. The kind's module sets it on each step it creates
/// (`SPEC.step(…)`); the engine reads only the data (policy, resume rule), never the name.
pub struct Kind {
    pub name: &'static str,
    /// Fill colour in DOT renderings.
    pub fill: &'static str,
    /// Default policy, before the recipe's `policy:` section.
    pub policy: fn() -> Policy,
    pub on_resume: OnResume,
    /// Runs inside the workers' container when the recipe names one (an install must land where the
    /// worker runs).
    pub in_worker_container: bool,
}

impl Kind {
    pub fn step(&self, id: impl Into<String>, node: usize, lifetime: Lifetime) -> Step {
        let mut s = Step::new(id, self.name, node, lifetime);
        s.policy = (self.policy)();
        s.on_resume = self.on_resume;
        s
    }
}

/// Every step kind: one line per kind module.
pub const ALL: &[&Kind] = &[
    &mount_source::SPEC,
    &pip_install::SPEC,
    &setup_script::SPEC,
    &start_worker::SPEC,
    &wait_healthy::SPEC,
    &start_router::SPEC,
    &start_nginx::SPEC,
    &run_benchmark::SPEC,
    &start_nats::SPEC,
    &start_etcd::SPEC,
    &start_frontend::SPEC,
    &shell::SPEC,
    &mock_model::SPEC,
    &start_container::SPEC,
    &perf_table::SPEC,
    &fingerprint::SPEC,
    &scrape_metrics::SPEC,
    &sample_host::SPEC,
    &check_identity::SPEC,
    &profile::SPEC,
    &start_exporter::SPEC,
    &collect_power::SPEC,
    &wait_power::SPEC,
];

pub fn find(name: &str) -> Option<&'static Kind> {
    ALL.iter().copied().find(|k| k.name == name)
}

/// Names a recipe's `policy:` section and `after:`/`before:` lists may use.
pub fn names() -> impl Iterator<Item = &'static str> + Clone {
    ALL.iter().map(|k| k.name)
}

/// DOT fill colour of a step, from its kind.
pub fn palette(step: &Step) -> &'static str {
    find(&step.kind).map_or("#ffffff", |k| k.fill)
}

/// Dynamo's request, response and event planes: the simulation keeps them on the node's own (loopback)
/// address.
pub const DYNAMO_PLANE_HOSTS: [&str; 3] = [
    "DYN_TCP_RPC_HOST",
    "DYN_TCP_RESPONSE_STREAM_HOST",
    "DYN_EVENT_PLANE_HOST",
];

/// How to get a program a step needs, on Debian (the tool's reference platform).
pub fn install_hint(program: &str) -> Option<&'static str> {
    Some(match program {
        "nginx" => "apt-get install nginx",
        "nats-server" => "apt-get install nats-server",
        "etcd" => "apt-get install etcd-server",
        "python3" => "apt-get install python3 python3-venv",
        "flock" => "apt-get install util-linux",
        "bash" => "apt-get install bash",
        _ => return None,
    })
}

/// Renders a flag map as srt-slurm does: `true` → `--k`; `false`/null → omitted; list → `--k v1 v2`;
/// anything else → `--k v`. Keys are emitted in sorted order (srt-slurm sorts them too).
pub fn flags(map: &[(String, Node)], skip: &[&str]) -> Vec<String> {
    let mut sorted: Vec<&(String, Node)> = map
        .iter()
        .filter(|(k, _)| !skip.contains(&k.as_str()))
        .collect();
    sorted.sort_by(|a, b| a.0.cmp(&b.0));
    let mut argv = Vec::new();
    for (k, v) in sorted {
        match &v.value {
            Value::Bool(false) | Value::Null => {}
            Value::Bool(true) => argv.push(format!("--{k}")),
            Value::Seq(items) => {
                argv.push(format!("--{k}"));
                argv.extend(
                    items
                        .iter()
                        .map(|i| i.scalar_text().unwrap_or_else(|| i.to_json().to_string())),
                );
            }
            Value::Map(_) => {
                argv.push(format!("--{k}"));
                argv.push(v.to_json().to_string());
            }
            _ => {
                argv.push(format!("--{k}"));
                argv.push(v.scalar_text().unwrap_or_default());
            }
        }
    }
    argv
}

pub fn env(pairs: &[(String, String)]) -> std::collections::BTreeMap<String, String> {
    pairs.iter().cloned().collect()
}
