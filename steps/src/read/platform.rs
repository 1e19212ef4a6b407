//! Where and how the job runs, beside the workers: `slurm:`, `health_check:`, `dynamo:`, `infra:`, the
//! recipe-wide environment, setup script, container mounts and srun/sbatch options.

use crate::cluster::ClusterConfig;
use crate::diag::{join, Keys, Reader};
use crate::recipe::{Dynamo, RunDirAccess};
use crate::yaml::{Node, Value};

const SLURM: Keys = Keys {
    known: &["account", "partition", "time_limit"],
    ignored: &[],
};
const HEALTH: Keys = Keys {
    known: &["max_attempts", "interval_seconds"],
    ignored: &[],
};
const DYNAMO: Keys = Keys {
    known: &[
        "install",
        "version",
        "hash",
        "top_of_tree",
        "wheel",
        "request_plane",
        "event_plane",
    ],
    ignored: &["cargo_patches"],
};
const INFRA: Keys = Keys {
    known: &["etcd_nats_dedicated_node"],
    ignored: &["nats_max_payload_mb"],
};

pub(super) struct Platform {
    pub slurm_account: Option<String>,
    pub slurm_partition: Option<String>,
    pub slurm_time_limit: String,
    pub health_max_attempts: u32,
    pub health_interval_secs: u32,
    pub dynamo: Dynamo,
    pub infra_dedicated_node: bool,
    pub environment: Vec<(String, String)>,
    pub setup_script: Option<String>,
    pub container_mounts: Vec<(String, String)>,
    pub srun_options: Vec<(String, String)>,
    pub sbatch_directives: Vec<(String, String)>,
    pub secret_env: Vec<String>,
    pub run_dir_access: RunDirAccess,
}

pub(super) fn read<'a>(
    doc: &'a Node,
    section: &dyn Fn(&str) -> &'a Node,
    cluster: &ClusterConfig,
    r: &mut Reader,
) -> Platform {
    let (slurm_account, slurm_partition, slurm_time_limit) =
        read_slurm(section("slurm"), cluster, r);
    let (health_max_attempts, health_interval_secs) = read_health(section("health_check"), r);
    Platform {
        slurm_account,
        slurm_partition,
        slurm_time_limit,
        health_max_attempts,
        health_interval_secs,
        dynamo: read_dynamo(section("dynamo"), r),
        infra_dedicated_node: read_infra(section("infra"), r),
        environment: r.string_map(doc.get("environment"), "environment"),
        setup_script: r.string(doc.get("setup_script"), "setup_script"),
        container_mounts: read_mounts(doc, cluster, r),
        srun_options: r.string_map(doc.get("srun_options"), "srun_options"),
        sbatch_directives: r.string_map(doc.get("sbatch_directives"), "sbatch_directives"),
        secret_env: {
            let mut names = cluster.secret_env.clone();
            names.extend(r.string_list(doc.get("secret_env"), "secret_env"));
            names
        },
        run_dir_access: crate::cluster::read_access(doc.get("run_dir_access"), "run_dir_access", r)
            .or(cluster.run_dir_access)
            .unwrap_or_default(),
    }
}

/// `slurm:`: account, partition and time limit, each defaulting to the cluster config's.
fn read_slurm(
    slurm: &Node,
    cluster: &ClusterConfig,
    r: &mut Reader,
) -> (Option<String>, Option<String>, String) {
    r.check_keys(slurm, "slurm", &SLURM);
    let slurm_account = r
        .string(slurm.get("account"), "slurm.account")
        .or_else(|| cluster.default_account.clone());
    let slurm_partition = r
        .string(slurm.get("partition"), "slurm.partition")
        .or_else(|| cluster.default_partition.clone());
    let slurm_time_limit = r
        .string(slurm.get("time_limit"), "slurm.time_limit")
        .or_else(|| cluster.default_time_limit.clone())
        .unwrap_or_else(|| "04:00:00".into());

    (slurm_account, slurm_partition, slurm_time_limit)
}

/// `health_check:`: how many polls, how far apart, before the deployment counts as failed.
fn read_health(health: &Node, r: &mut Reader) -> (u32, u32) {
    r.check_keys(health, "health_check", &HEALTH);
    let health_max_attempts = r
        .int(
            health.get("max_attempts"),
            "health_check.max_attempts",
            1,
            1_000_000,
        )
        .unwrap_or(180) as u32;
    let health_interval_secs = r
        .int(
            health.get("interval_seconds"),
            "health_check.interval_seconds",
            1,
            3600,
        )
        .unwrap_or(10) as u32;

    (health_max_attempts, health_interval_secs)
}

/// `dynamo:`: whether and what to install — a release, a wheel, a commit or the top of the tree.
fn read_dynamo(dyn_node: &Node, r: &mut Reader) -> Dynamo {
    r.check_keys(dyn_node, "dynamo", &DYNAMO);
    let install = r
        .boolean(dyn_node.get("install"), "dynamo.install")
        .unwrap_or(true);
    let written = r.string(dyn_node.get("version"), "dynamo.version");
    let version = written.clone().unwrap_or_else(|| "0.8.0".into());
    let hash = r.string(dyn_node.get("hash"), "dynamo.hash");
    let wheel = r.string(dyn_node.get("wheel"), "dynamo.wheel");
    let top_of_tree = r
        .boolean(dyn_node.get("top_of_tree"), "dynamo.top_of_tree")
        .unwrap_or(false);
    let sources =
        usize::from(hash.is_some()) + usize::from(wheel.is_some()) + usize::from(top_of_tree);
    if sources > 1 {
        r.error(
            dyn_node.pos,
            "dynamo",
            "set at most one of `hash`, `wheel`, `top_of_tree`",
            None,
        );
    }
    for key in ["request_plane", "event_plane"] {
        if let Some(v) = r.string(dyn_node.get(key), &join("dynamo", key)) {
            let valid: &[&str] = if key == "request_plane" {
                &["nats", "tcp", "http"]
            } else {
                &["nats", "zmq"]
            };
            if !valid.contains(&v.as_str()) {
                r.error(
                    dyn_node.get(key).map_or(dyn_node.pos, |n| n.pos),
                    &join("dynamo", key),
                    format!("`{v}` is not a valid {key}"),
                    Some(format!("valid: {}", valid.join(", "))),
                );
            }
        }
    }
    let (wheel_is_none, hash_set) = (wheel.is_none(), hash.is_some());
    let staged_wheel = wheel.is_some();
    // srtctl's `wheel` is a version of ai-dynamo (and its runtime) from the site's staged wheel index.
    let packages = if let Some(w) = wheel {
        vec![format!("ai-dynamo-runtime=={w}"), format!("ai-dynamo=={w}")]
    } else if let Some(h) = hash {
        vec![format!("git+https://github.com/ai-dynamo/dynamo.git@{h}")]
    } else if top_of_tree {
        vec!["git+https://github.com/ai-dynamo/dynamo.git".into()]
    } else {
        vec![
            format!("ai-dynamo-runtime=={version}"),
            format!("ai-dynamo=={version}"),
        ]
    };

    let request_plane = r
        .string(dyn_node.get("request_plane"), "dynamo.request_plane")
        .unwrap_or_else(|| "tcp".into());
    Dynamo {
        install,
        from_git: wheel_is_none && (hash_set || top_of_tree),
        staged_wheel,
        packages,
        request_plane,
        version: written,
    }
}

/// `infra:`: NATS and etcd on a node of their own.
fn read_infra(infra: &Node, r: &mut Reader) -> bool {
    r.check_keys(infra, "infra", &INFRA);
    r.boolean(
        infra.get("etcd_nats_dedicated_node"),
        "infra.etcd_nats_dedicated_node",
    )
    .unwrap_or(false)
}

/// `container_mounts:` (host → container) and the seed's `extra_mount: ["host:container", …]`.
/// The cluster's `default_mounts`, then the recipe's `container_mounts` and `extra_mount` (srtctl's
/// order). pyxis separates mounts with commas and fields with colons, so neither may be in a path.
fn read_mounts(doc: &Node, cluster: &ClusterConfig, r: &mut Reader) -> Vec<(String, String)> {
    let mut container_mounts = cluster.default_mounts.clone();
    let recipe_mounts = r.string_map(doc.get("container_mounts"), "container_mounts");
    for (host, inside) in &recipe_mounts {
        if host.contains(',') || inside.contains(',') || inside.contains(':') {
            let pos = doc.get("container_mounts").map_or(doc.pos, |n| n.pos);
            r.error(
                pos,
                &format!("container_mounts.{host}"),
                format!("`{host}: {inside}`: a mount path cannot hold `,` (it separates pyxis mounts) nor a `:` in the container path"),
                Some("rename the directory, or mount a parent of it".into()),
            );
        }
    }
    container_mounts.extend(recipe_mounts);
    for (i, m) in r
        .string_list(doc.get("extra_mount"), "extra_mount")
        .into_iter()
        .enumerate()
    {
        match m.split_once(':') {
            Some((h, c))
                if !h.is_empty() && !c.is_empty() && !c.contains(':') && !m.contains(',') =>
            {
                container_mounts.push((h.into(), c.into()))
            }
            _ => {
                let pos = doc.get("extra_mount").map_or(doc.pos, |n| match &n.value {
                    Value::Seq(items) => items.get(i).map_or(n.pos, |x| x.pos),
                    _ => n.pos,
                });
                r.error(
                    pos,
                    &format!("extra_mount[{i}]"),
                    format!("`{m}` is not `host_path:container_path`"),
                    None,
                );
            }
        }
    }
    container_mounts
}
