//! One file per step kind: its name, default policy and how its command line is built.

pub mod mount_source;
pub mod pip_install;
pub mod run_benchmark;
pub mod setup_script;
pub mod shell;
pub mod start_etcd;
pub mod start_frontend;
pub mod start_nats;
pub mod start_nginx;
pub mod start_router;
pub mod start_worker;
pub mod wait_healthy;

use crate::yaml::{Node, Value};
use srt_graph_engine::Policy;

/// Default policy of a kind (before the recipe's `policy:` section).
pub fn default_policy(kind: &str) -> Policy {
    match kind {
        mount_source::KIND => mount_source::policy(),
        pip_install::KIND => pip_install::policy(),
        setup_script::KIND => setup_script::policy(),
        wait_healthy::KIND => wait_healthy::policy(),
        run_benchmark::KIND => run_benchmark::policy(),
        _ => Policy::default(),
    }
}

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
