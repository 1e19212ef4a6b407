//! `start_router`: one `sglang_router` instance, in PD mode (`--pd-disaggregation --prefill URL BOOT …
//! --decode URL …`) or regular mode over aggregated workers (`--worker-urls …`).

use crate::yaml::Node;
use srt_graph_engine::{Lifetime, Probe, Step};

pub const KIND: &str = "start_router";
pub const SPEC: super::Kind = super::Kind {
    name: KIND,
    fill: "#d1e7dd",
    policy: srt_graph_engine::Policy::default,
    on_resume: srt_graph_engine::OnResume::Stand,
    in_worker_container: true,
};
/// Router port behind nginx (the seed moved it off 8000 to end the port clash with nginx).
pub const INTERNAL_PORT: u16 = 30080;
/// sglang-router's Prometheus exporter port (its default).
pub const METRICS_PORT: u16 = 29000;

pub struct Workers<'a> {
    /// `(url, bootstrap port)` of every prefill leader.
    pub prefill: &'a [(String, u16)],
    pub decode: &'a [String],
    pub aggregated: &'a [String],
}

#[allow(clippy::too_many_arguments)] // each is a distinct placement fact
pub fn step(
    index: usize,
    node: usize,
    python: &str,
    bind: &str,
    addr: &str,
    port: u16,
    workers: &Workers<'_>,
    args: &[(String, Node)],
) -> Step {
    let mut s = SPEC.step(format!("router-{index}"), node, Lifetime::Service);
    let mut argv: Vec<String> = vec![
        python.into(),
        "-m".into(),
        "sglang_router.launch_router".into(),
    ];
    if workers.aggregated.is_empty() {
        argv.push("--pd-disaggregation".into());
        for (url, boot) in workers.prefill {
            argv.extend(["--prefill".into(), url.clone(), boot.to_string()]);
        }
        for url in workers.decode {
            argv.extend(["--decode".into(), url.clone()]);
        }
    } else {
        argv.push("--worker-urls".into());
        argv.extend(workers.aggregated.iter().cloned());
    }
    argv.extend([
        "--host".into(),
        bind.into(),
        "--port".into(),
        port.to_string(),
    ]);
    // The router also serves Prometheus metrics (default 0.0.0.0:29000): bind it to the node like the
    // router itself, and plan its port, so co-located routers cannot collide.
    let metrics_port = args
        .iter()
        .find(|(k, _)| k == "prometheus-port")
        .and_then(|(_, v)| v.scalar_text())
        .and_then(|t| t.parse().ok())
        .unwrap_or(METRICS_PORT);
    if !args.iter().any(|(k, _)| k == "prometheus-host") {
        argv.extend(["--prometheus-host".into(), bind.into()]);
    }
    if !args.iter().any(|(k, _)| k == "prometheus-port") {
        argv.extend(["--prometheus-port".into(), metrics_port.to_string()]);
    }
    argv.extend(super::flags(args, &["host", "port"]));
    s.command = Some(argv);
    s.ports = vec![port, metrics_port];
    s.probe = Some(Probe::Http {
        url: format!("http://{addr}:{port}/workers"),
    });
    s.summary = format!("SGLang router {index}");
    s
}
