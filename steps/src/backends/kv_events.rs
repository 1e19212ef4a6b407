//! `backend.kv_events_config` (SGLang, vLLM): a worker publishes its KV-cache events over ZMQ for
//! Dynamo's KV router, as srtctl sets it up. `true` enables prefill and decode with the defaults; a map
//! per role (`prefill`, `decode`, `aggregated`) takes `true` or settings merged over the defaults. Each
//! worker process gets its own port from `PORT_BASE`, written into the config's `endpoint`.

use crate::diag::{join, Reader};
use crate::recipe::{Recipe, Role};
use crate::yaml::{Node, Value};

pub const KEY: &str = "kv_events_config";
/// srtctl's first KV-events port; the k-th worker process on a node adds k.
pub const PORT_BASE: u16 = 5200;

const ROLES: [&str; 3] = ["prefill", "decode", "aggregated"];

/// Refuses anything but a bool or a per-role map of bools and flat settings.
pub fn check(backend: &Node, r: &mut Reader) {
    let Some(node) = backend.get(KEY) else {
        return;
    };
    let path = join("backend", KEY);
    let entries = match &node.value {
        Value::Null | Value::Bool(_) => return,
        Value::Map(entries) => entries,
        _ => {
            r.error(
                node.pos,
                &path,
                format!("{} is not a KV-events setting", node.describe()),
                Some(
                    "write `true`, or a map by role: `prefill: true`, `decode: {topic: kv}`".into(),
                ),
            );
            return;
        }
    };
    for e in entries {
        let at = join(&path, &e.key);
        if !ROLES.contains(&e.key.as_str()) {
            r.error(
                e.key_pos,
                &at,
                format!("`{}` is not a worker role", e.key),
                Some(format!("valid: {}", ROLES.join(", "))),
            );
            continue;
        }
        match &e.value.value {
            Value::Null | Value::Bool(_) => {}
            Value::Map(settings) => {
                for s in settings {
                    if matches!(s.value.value, Value::Map(_) | Value::Seq(_)) {
                        r.error(
                            s.value.pos,
                            &join(&at, &s.key),
                            "a KV-events setting is a single value",
                            Some("e.g. `topic: kv-events`, `publisher: zmq`".into()),
                        );
                    }
                }
            }
            _ => r.error(
                e.value.pos,
                &at,
                format!("{} is not a KV-events setting", e.value.describe()),
                Some("write `true`, `false` or a map of settings".into()),
            ),
        }
    }
}

/// Adds `--kv-events-config` (and its port) to a worker process's step where the recipe enables KV
/// events for its role; says whether it did.
pub fn apply(
    recipe: &Recipe,
    w: &crate::build::WorkerProcess<'_>,
    defaults: &[(&str, serde_json::Value)],
    s: &mut srt_graph_engine::Step,
) -> bool {
    let port = w.place.kv_events_port;
    let Some(kv) = config(recipe, w.spec.role, defaults, w.place.bind, port) else {
        return false;
    };
    let Some(argv) = s.command.as_mut() else {
        return false;
    };
    argv.extend(["--kv-events-config".into(), kv]);
    s.ports.push(port);
    true
}

/// The `--kv-events-config` JSON of one worker process of `role`, publishing on `port` of `bind`; `None`
/// where the recipe does not enable it. `defaults` are the backend's own (vLLM adds
/// `enable_kv_cache_events`).
fn config(
    recipe: &Recipe,
    role: Role,
    defaults: &[(&str, serde_json::Value)],
    bind: &str,
    port: u16,
) -> Option<String> {
    let node = recipe
        .backend_options
        .iter()
        .find(|(k, _)| k == KEY)
        .map(|(_, v)| v)?;
    let key = match role {
        Role::Prefill => "prefill",
        Role::Decode => "decode",
        Role::Aggregated => "aggregated",
    };
    let settings: &[crate::yaml::Entry] = match &node.value {
        // The global switch covers the disaggregated roles only (srtctl's reading).
        Value::Bool(true) if role != Role::Aggregated => &[],
        Value::Map(_) => match node.get(key).map(|n| &n.value) {
            Some(Value::Bool(true)) => &[],
            Some(Value::Map(settings)) => settings,
            _ => return None,
        },
        _ => return None,
    };
    let mut out = serde_json::Map::new();
    out.insert("publisher".into(), "zmq".into());
    out.insert("topic".into(), "kv-events".into());
    for (k, v) in defaults {
        out.insert((*k).into(), v.clone());
    }
    for s in settings {
        out.insert(s.key.clone(), s.value.to_json());
    }
    // srtctl binds `*`; a node's own address keeps workers of several nodes on one host apart.
    let host = if bind == "0.0.0.0" { "*" } else { bind };
    out.insert("endpoint".into(), format!("tcp://{host}:{port}").into());
    Some(serde_json::Value::Object(out).to_string())
}
