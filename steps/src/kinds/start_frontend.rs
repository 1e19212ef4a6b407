//! `start_frontend`: one Dynamo HTTP frontend; it finds workers through etcd and NATS.

use crate::yaml::Node;
use srt_graph_engine::{Lifetime, Probe, Step};

pub const KIND: &str = "start_frontend";
pub const SPEC: super::Kind = super::Kind {
    name: KIND,
    fill: "#d1e7dd",
    policy: srt_graph_engine::Policy::default,
    on_resume: srt_graph_engine::OnResume::Stand,
    in_worker_container: true,
};
pub const PORT: u16 = 8000;
/// Port of a frontend that shares nginx's node (srt-slurm's internal frontend port).
pub const COLOCATED_PORT: u16 = 8180;

/// Where a frontend listens (`bind`) and is reached (`addr`).
pub struct Listen<'a> {
    pub bind: &'a str,
    pub addr: &'a str,
    pub port: u16,
}

pub fn step(
    index: usize,
    node: usize,
    python: &str,
    listen: &Listen<'_>,
    args: &[(String, Node)],
    env: std::collections::BTreeMap<String, String>,
) -> Step {
    let Listen { bind, addr, port } = *listen;
    let mut s = SPEC.step(format!("frontend-{index}"), node, Lifetime::Service);
    let mut argv: Vec<String> = vec![
        python.into(),
        "-m".into(),
        "dynamo.frontend".into(),
        format!("--http-host={bind}"),
        format!("--http-port={port}"),
    ];
    argv.extend(super::flags(args, &["http-host", "http-port"]));
    s.command = Some(argv);
    s.env = env;
    s.ports = vec![port];
    s.probe = Some(Probe::Http {
        url: format!("http://{addr}:{port}/health"),
    });
    s.summary = format!("Dynamo frontend {index}");
    s
}
