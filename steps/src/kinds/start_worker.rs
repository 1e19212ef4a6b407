//! `start_worker`: one SGLang process of a prefill, decode or aggregated worker on one node. A worker
//! spanning several nodes is one step per node, joined by `--dist-init-addr leader:port --nnodes N
//! --node-rank r`.

use crate::recipe::RoleSpec;
use srt_graph_engine::{Lifetime, Probe, Step};

pub const KIND: &str = "start_worker";
pub const SPEC: super::Kind = super::Kind {
    name: KIND,
    fill: "#cfe2ff",
    policy: srt_graph_engine::Policy::default,
    on_resume: srt_graph_engine::OnResume::Stand,
    in_worker_container: true,
};
/// SGLang's default HTTP port and the seed's default bootstrap port.
pub const HTTP_PORT: u16 = 30000;
pub const BOOTSTRAP_PORT: u16 = 30001;
pub const DIST_INIT_PORT: u16 = 29500;
/// Ports of the k-th worker sharing a node are offset by k × this stride.
pub const PORT_STRIDE: u16 = 10;

/// Flags the compiler sets itself (from placement), not copied from `sglang_config`.
pub const PLACED_FLAGS: &[&str] = &[
    "host",
    "port",
    "disaggregation-bootstrap-port",
    "dist-init-addr",
    "nnodes",
    "node-rank",
];

/// Where one process of a worker runs.
pub struct Placement<'a> {
    pub id: String,
    pub node: usize,
    pub bind: &'a str,
    pub http_port: u16,
    pub bootstrap_port: Option<u16>,
    /// `(leader address, port, nnodes, rank)` for workers spanning nodes.
    pub dist: Option<(String, u16, u32, u32)>,
    pub cuda_devices: Option<String>,
    pub probe_addr: &'a str,
    /// Where the process publishes KV events, if its backend enables them (`backends::kv_events`).
    pub kv_events_port: u16,
}

/// `launch` is the program and its leading arguments (`python3 -m sglang.launch_server`, or the mock's);
/// the role's flags and the placement's follow.
pub fn step(
    spec: &RoleSpec,
    launch: Vec<String>,
    place: &Placement<'_>,
    env: std::collections::BTreeMap<String, String>,
) -> Step {
    let mut s = SPEC.step(place.id.clone(), place.node, Lifetime::Service);
    s.role = Some(spec.role.as_str().into());
    let mut argv = launch;
    argv.extend(super::flags(&spec.config, PLACED_FLAGS));
    argv.extend([
        "--host".into(),
        place.bind.into(),
        "--port".into(),
        place.http_port.to_string(),
    ]);
    if let Some(b) = place.bootstrap_port {
        argv.extend(["--disaggregation-bootstrap-port".into(), b.to_string()]);
    }
    if let Some((leader, port, nnodes, rank)) = &place.dist {
        argv.extend([
            "--dist-init-addr".into(),
            format!("{leader}:{port}"),
            "--nnodes".into(),
            nnodes.to_string(),
            "--node-rank".into(),
            rank.to_string(),
        ]);
    }
    s.command = Some(argv);
    s.env = env;
    if let Some(devs) = &place.cuda_devices {
        s.env.insert("CUDA_VISIBLE_DEVICES".into(), devs.clone());
    }
    // Only prefill listens on the bootstrap port; decode just names it.
    let listens_bootstrap = spec.role == crate::recipe::Role::Prefill;
    s.ports = std::iter::once(place.http_port)
        .chain(place.bootstrap_port.filter(|_| listens_bootstrap))
        .collect();
    if let Some((_, port, _, 0)) = &place.dist {
        s.ports.push(*port);
    }
    // Only the leader (rank 0) serves HTTP.
    if place.dist.as_ref().is_none_or(|d| d.3 == 0) {
        s.probe = Some(Probe::Http {
            url: format!("http://{}:{}/health", place.probe_addr, place.http_port),
        });
    }
    s.summary = match &place.dist {
        Some((_, _, n, r)) => format!(
            "{} worker, node {} of {n}, {} GPUs",
            spec.role.as_str(),
            r + 1,
            spec.gpus_per_worker
        ),
        None => format!(
            "{} worker, {} GPUs",
            spec.role.as_str(),
            spec.gpus_per_worker
        ),
    };
    s
}

/// Dynamo's own GPU-less engine in place of `dynamo.sglang` (`--mock-workers` in Dynamo mode): the same
/// role (it supports prefill/decode disaggregation), the recipe's served model name, a weightless model
/// directory. SGLang flags mean nothing to it and are not passed.
/// How a Dynamo release's mocker takes a worker's role.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MockerRoleFlags {
    /// `--disaggregation-mode prefill|decode|agg` (Dynamo 1.x).
    Mode,
    /// `--is-prefill-worker` / `--is-decode-worker` (Dynamo 0.x).
    Legacy,
}

impl MockerRoleFlags {
    /// From the Dynamo release pinned (`ai-dynamo==X.Y.Z`): 0.x releases take the legacy flags.
    pub fn for_release(packages: &[String]) -> MockerRoleFlags {
        let legacy = packages
            .iter()
            .find_map(|p| p.strip_prefix("ai-dynamo=="))
            .is_some_and(|v| v.starts_with("0."));
        if legacy {
            MockerRoleFlags::Legacy
        } else {
            MockerRoleFlags::Mode
        }
    }
}

#[allow(clippy::too_many_arguments)] // each is one fact of the worker it stands in for
pub fn dynamo_mocker(
    spec: &RoleSpec,
    python: &str,
    place: &Placement<'_>,
    model_dir: &str,
    served_name: &str,
    env: std::collections::BTreeMap<String, String>,
    role_flags: MockerRoleFlags,
) -> Step {
    let mut s = SPEC.step(place.id.clone(), place.node, Lifetime::Service);
    s.role = Some(spec.role.as_str().into());
    let mode = spec.role.engine_mode();
    let mut argv: Vec<String> = vec![
        python.into(),
        "-m".into(),
        "dynamo.mocker".into(),
        "--model-path".into(),
        model_dir.into(),
        "--model-name".into(),
        served_name.into(),
    ];
    match (role_flags, spec.role) {
        (MockerRoleFlags::Mode, _) => argv.extend(["--disaggregation-mode".into(), mode.into()]),
        (MockerRoleFlags::Legacy, crate::recipe::Role::Prefill) => {
            argv.push("--is-prefill-worker".into())
        }
        (MockerRoleFlags::Legacy, crate::recipe::Role::Decode) => {
            argv.push("--is-decode-worker".into())
        }
        (MockerRoleFlags::Legacy, crate::recipe::Role::Aggregated) => {}
    }
    s.command = Some(argv);
    s.env = env;
    // Its request, response and event planes listen on the node's own address (ephemeral ports).
    for var in super::DYNAMO_PLANE_HOSTS {
        s.env.insert(var.into(), place.probe_addr.into());
    }
    s.summary = format!(
        "{} worker: dynamo.mocker (GPU-less), {} GPUs simulated",
        spec.role.as_str(),
        spec.gpus_per_worker
    );
    s
}
