//! `start_exporter`: a GPU telemetry exporter on one worker node (`telemetry.dcgm_exporter`), in its own
//! image on Slurm as srtctl runs it, serving DCGM's Prometheus text on its port for the power collector.

use srt_graph_engine::{Lifetime, Probe, Step};

pub const KIND: &str = "start_exporter";
pub const SPEC: super::Kind = super::Kind {
    name: KIND,
    fill: "#fde2e4",
    policy: srt_graph_engine::Policy::default,
    on_resume: srt_graph_engine::OnResume::Stand,
    in_worker_container: false,
};

pub fn id(node_name: &str) -> String {
    format!("dcgm-exporter/{node_name}")
}

/// `argv` is the exporter's resolved command; `url` where it serves `/metrics`.
pub fn step(node: usize, node_name: &str, argv: Vec<String>, port: u16, url: &str) -> Step {
    let mut s = SPEC.step(id(node_name), node, Lifetime::Service);
    s.summary = format!("DCGM exporter on {node_name}: GPU power at {url}");
    s.command = Some(argv);
    s.ports = vec![port];
    s.probe = Some(Probe::Http { url: url.into() });
    s
}
