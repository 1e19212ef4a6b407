//! `start_frontend`: one Dynamo HTTP frontend; it finds workers through etcd and NATS.

use crate::yaml::Node;
use srt_graph_engine::{Lifetime, Probe, Step};

pub const KIND: &str = "start_frontend";
pub const PORT: u16 = 8000;
/// Port of a frontend that shares nginx's node (srt-slurm's internal frontend port).
pub const COLOCATED_PORT: u16 = 8180;

pub fn step(
    index: usize,
    node: usize,
    python: &str,
    addr: &str,
    port: u16,
    args: &[(String, Node)],
    env: std::collections::BTreeMap<String, String>,
) -> Step {
    let mut s = Step::new(format!("frontend-{index}"), KIND, node, Lifetime::Service);
    let mut argv: Vec<String> = vec![
        python.into(),
        "-m".into(),
        "dynamo.frontend".into(),
        format!("--http-port={port}"),
    ];
    argv.extend(super::flags(args, &["http-port"]));
    s.command = Some(argv);
    s.env = env;
    s.ports = vec![port];
    s.probe = Some(Probe::Http {
        url: format!("http://{addr}:{port}/health"),
    });
    s.summary = format!("Dynamo frontend {index}");
    s
}
