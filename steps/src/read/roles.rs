//! The workers' roles: prefill + decode (disaggregated) or aggregated, from `resources:` and the
//! backend's per-role configuration, with srt-slurm's rules for GPUs per worker and tensor parallelism.

use super::resources::Resources;
use crate::backends::Backend;
use crate::diag::{join, Reader};
use crate::recipe::{Role, RoleSpec};
use crate::yaml::{Node, Pos, Value};

/// What `resources:` asks of one role.
struct RoleAsk<'a> {
    role: Role,
    nodes: u32,
    workers: u32,
    gpus_per_worker: Option<u32>,
    /// The role's section of the backend's configuration.
    section: Option<&'a Node>,
}

pub(super) fn read(
    res: &Resources<'_>,
    backend: &dyn Backend,
    backend_node: &Node,
    res_pos: Pos,
    r: &mut Reader,
) -> Vec<RoleSpec> {
    let empty = Node::new(Value::Null, backend_node.pos);
    let config = backend_node.get(backend.config_key()).unwrap_or(&empty);
    let config_path = format!("backend.{}", backend.config_key());
    r.check_keys(
        config,
        &config_path,
        &crate::diag::Keys {
            known: &["prefill", "decode", "aggregated"],
            ignored: &[],
        },
    );
    let disagg = res.prefill_nodes.is_some() || res.decode_nodes.is_some();
    let agg = res.agg_nodes.is_some() || res.agg_workers.is_some();
    let mut roles = Vec::new();
    if disagg && agg {
        r.error(
            res_pos,
            "resources",
            "both disaggregated (prefill_/decode_nodes) and aggregated (agg_nodes/agg_workers) resources are set",
            Some("a recipe is either disaggregated or aggregated; remove one set".into()),
        );
    } else if disagg && res.prefill_nodes.unwrap_or(0) + res.decode_nodes.unwrap_or(0) == 0 {
        r.error(
            res_pos,
            "resources.prefill_nodes",
            "prefill_nodes and decode_nodes are both 0: there is nowhere to run",
            Some("give prefill (or decode) at least one node".into()),
        );
    } else if disagg {
        if let Some(a) = config.get("aggregated") {
            r.error(
                a.pos,
                &join(&config_path, "aggregated"),
                "an `aggregated` section in a disaggregated recipe (prefill_nodes/decode_nodes are set)",
                Some("use `prefill:` and `decode:` sections, or switch resources to agg_nodes/agg_workers".into()),
            );
        }
        for (role, nodes, workers, gpw) in [
            (
                Role::Prefill,
                res.prefill_nodes,
                res.prefill_workers,
                res.gpus_per_prefill,
            ),
            (
                Role::Decode,
                res.decode_nodes,
                res.decode_workers,
                res.gpus_per_decode,
            ),
        ] {
            let Some(nodes) = nodes else {
                r.error(
                    res_pos,
                    &join("resources", &format!("{}_nodes", role.as_str())),
                    format!("missing `{}_nodes`: a disaggregated recipe needs both prefill and decode nodes", role.as_str()),
                    None,
                );
                continue;
            };
            let section = config.get(role.as_str());
            if section.is_none()
                && backend.every_role_configured()
                && !config.as_map().is_none_or(|m| m.is_empty())
            {
                r.error(
                    config.pos,
                    &join(&config_path, role.as_str()),
                    format!("missing `{}` section: a disaggregated recipe configures both prefill and decode", role.as_str()),
                    None,
                );
            }
            let ask = RoleAsk {
                role,
                nodes,
                workers: workers.unwrap_or(1),
                gpus_per_worker: gpw,
                section,
            };
            roles.extend(role_spec(r, backend, ask, res, backend_node));
        }
    } else if agg {
        if let Some(d) = config.get("decode") {
            r.error(
                d.pos,
                &join(&config_path, "decode"),
                "a `decode` section in an aggregated recipe",
                Some("aggregated workers read `aggregated:` (or `prefill:`)".into()),
            );
        }
        let ask = RoleAsk {
            role: Role::Aggregated,
            nodes: res.agg_nodes.unwrap_or(1),
            workers: res.agg_workers.unwrap_or(1),
            gpus_per_worker: res.gpus_per_agg,
            section: config.get("aggregated").or_else(|| config.get("prefill")),
        };
        roles.extend(role_spec(r, backend, ask, res, backend_node));
    }
    roles
}

/// Tensor-parallel size as srt-slurm reads it (first of these spellings that is an integer).
const TP_KEYS: &[&str] = &[
    "tensor-parallel-size",
    "tensor_parallel_size",
    "tp-size",
    "tp_size",
    "tp",
];

/// One role's workers: how many, their GPUs (derived as srt-slurm does when not written), the backend's
/// engine configuration, checked against the GPUs each worker gets.
fn role_spec(
    r: &mut Reader,
    backend: &dyn Backend,
    ask: RoleAsk,
    res: &Resources<'_>,
    backend_node: &Node,
) -> Option<RoleSpec> {
    let RoleAsk {
        role,
        nodes,
        workers,
        gpus_per_worker,
        section,
    } = ask;
    let gpus_per_node = res.gpus_per_node;
    let path = join(&format!("backend.{}", backend.config_key()), role.as_str());
    let config = backend.role_config(section, &path, r);
    let gpw = worker_gpus(r, role, nodes, workers, gpus_per_worker, res, &config)?;
    check_tp(r, role, nodes, workers, gpw, gpus_per_node, &path, &config);
    let sec_pos = section.map_or(Pos { line: 1, col: 1 }, |s| s.pos);
    Some(RoleSpec {
        role,
        nodes,
        workers,
        gpus_per_worker: gpw,
        config,
        config_pos: sec_pos,
        env: {
            let env_key = format!("{}_environment", role.as_str());
            r.string_map(backend_node.get(&env_key), &join("backend", &env_key))
        },
    })
}

/// GPUs per worker: as written, else derived as srt-slurm does; checked against the role's nodes.
fn worker_gpus(
    r: &mut Reader,
    role: Role,
    nodes: u32,
    workers: u32,
    gpus_per_worker: Option<u32>,
    res: &Resources<'_>,
    config: &[(String, Node)],
) -> Option<u32> {
    let gpus_per_node = res.gpus_per_node;
    let res = res.node;
    let total_gpus = u64::from(nodes) * u64::from(gpus_per_node);
    let tp_value = config
        .iter()
        .find(|(k, _)| TP_KEYS.contains(&k.as_str()))
        .and_then(|(_, n)| match &n.value {
            Value::Int(i) => u32::try_from(*i).ok(),
            Value::Str(s) => s.parse().ok(),
            _ => None,
        });
    let gpus_key = format!("resources.gpus_per_{}", role.id_prefix());
    // Blame the resources key that decided the GPUs per worker.
    let res_pos = res
        .get(&format!("gpus_per_{}", role.id_prefix()))
        .or_else(|| res.get(&format!("{}_workers", role.id_prefix())))
        .map_or(res.pos, |n| n.pos);
    let gpw = match gpus_per_worker {
        Some(g) => g,
        // No nodes of its own: the workers share other roles' nodes, sized by their TP.
        None if nodes == 0 => match tp_value {
            Some(tp) if tp >= 1 => tp,
            _ => {
                r.error(
                    res_pos,
                    &gpus_key,
                    format!(
                        "{}_nodes is 0, so the GPUs per {} worker cannot be derived",
                        role.id_prefix(),
                        role.as_str()
                    ),
                    Some(format!("set `{gpus_key}` (or tensor-parallel-size)")),
                );
                return None;
            }
        },
        // srt-slurm: a worker gets nodes // workers whole nodes, or a share of a node when workers > nodes.
        None if workers <= nodes => (nodes / workers) * gpus_per_node,
        None => ((total_gpus / u64::from(workers)) as u32).max(1),
    };
    if gpw == 0 {
        r.error(res_pos, &gpus_key, "a worker needs at least one GPU", None);
        return None;
    }
    if nodes > 0 && u64::from(gpw) * u64::from(workers) > total_gpus {
        r.error(
            res_pos,
            &gpus_key,
            format!("{workers} workers × {gpw} GPUs need {} GPUs, but {nodes} node(s) × {gpus_per_node} have {total_gpus}", u64::from(gpw) * u64::from(workers)),
            None,
        );
        return None;
    }
    if gpw > gpus_per_node && gpw % gpus_per_node != 0 {
        r.error(
            res_pos,
            &gpus_key,
            format!("a worker of {gpw} GPUs does not fill whole {gpus_per_node}-GPU nodes"),
            Some(format!(
                "use a multiple of {gpus_per_node}, or at most {gpus_per_node}"
            )),
        );
        return None;
    }
    Some(gpw)
}

/// srt-slurm's rules for the tensor-parallel size: at least 1, fits the role's GPUs and one worker.
#[allow(clippy::too_many_arguments)] // each is one fact the rule weighs
fn check_tp(
    r: &mut Reader,
    role: Role,
    nodes: u32,
    workers: u32,
    gpw: u32,
    gpus_per_node: u32,
    path: &str,
    config: &[(String, Node)],
) {
    let total_gpus = u64::from(nodes) * u64::from(gpus_per_node);
    if let Some((key, tp_node)) = config.iter().find(|(k, _)| TP_KEYS.contains(&k.as_str())) {
        // Templated values (`"{tp}"`) are skipped, as srt-slurm does.
        if let Some(tp) = match &tp_node.value {
            Value::Int(i) => Some(*i),
            Value::Str(s) => s.parse().ok(),
            _ => None,
        } {
            if tp < 1 {
                r.error(
                    tp_node.pos,
                    &join(path, key),
                    format!("tensor parallel size {tp} must be at least 1"),
                    None,
                );
            } else if nodes > 0 && tp as u64 * u64::from(workers) > total_gpus {
                r.error(
                    tp_node.pos,
                    &join(path, key),
                    format!("TP {tp} × {workers} {} worker(s) = {} GPUs, but {nodes} node(s) × {gpus_per_node} GPUs = {total_gpus}", role.as_str(), tp as u64 * u64::from(workers)),
                    Some("srt-slurm's rule: tensor-parallel-size × workers ≤ nodes × gpus_per_node".into()),
                );
            } else if tp as u64 > u64::from(gpw) {
                r.error(
                    tp_node.pos,
                    &join(path, key),
                    format!(
                        "TP {tp} does not fit in one {} worker of {gpw} GPUs",
                        role.as_str()
                    ),
                    Some(format!(
                        "srt-slurm's rule: tensor-parallel-size ≤ GPUs per worker ({gpw})"
                    )),
                );
            }
        }
    }
}
