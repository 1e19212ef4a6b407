//! `scrape_metrics`: from the health gate to the end of the run, every `/metrics` endpoint of the
//! deployment (workers, routers, frontends) is read every interval and appended verbatim to the run
//! directory in srtctl's `raw_prometheus.jsonl` shape, with a host sample of the node it runs on. A target
//! that does not answer costs a line, never the run: the scraper only ends when it is stopped.

use srt_graph_engine::{Lifetime, Step};

pub const KIND: &str = "scrape_metrics";
pub const SPEC: super::Kind = super::Kind {
    name: KIND,
    fill: "#e2e3e5",
    policy: srt_graph_engine::Policy::default,
    on_resume: srt_graph_engine::OnResume::Stand,
    in_worker_container: false,
};

/// One endpoint: its URL, srtctl's role (`prefill`, `decode`, `agg`, `frontend`) and the worker's node
/// (none for a frontend).
pub struct Target {
    pub url: String,
    pub role: String,
    pub worker_id: Option<String>,
}

/// Where a node's host samples go: one file per node, so that no two nodes append to one file over
/// a shared filesystem.
pub fn host_samples(run_dir: &str, node_name: &str) -> String {
    format!(
        "{}/host_samples/{node_name}.jsonl",
        run_dir.trim_end_matches('/')
    )
}

pub fn step(
    (node, node_name): (usize, &str),
    srt_graph: &str,
    run_dir: &str,
    scrape: &crate::recipe::Scrape,
    targets: &[Target],
) -> Step {
    let mut s = SPEC.step("scrape-metrics", node, Lifetime::Service);
    let dir = run_dir.trim_end_matches('/');
    let mut argv = vec![
        srt_graph.to_string(),
        "scrape-metrics".into(),
        "--out".into(),
        format!("{dir}/{}", scrape.output),
        "--host-out".into(),
        host_samples(run_dir, node_name),
        "--interval".into(),
        format!("{}s", scrape.interval_secs),
    ];
    for t in targets {
        let who = t.worker_id.as_deref().unwrap_or("");
        argv.extend(["--target".into(), format!("{}={}={}", t.role, who, t.url)]);
    }
    s.command = Some(argv);
    s.summary = format!(
        "scrape {} /metrics endpoint(s) every {} s into {}",
        targets.len(),
        scrape.interval_secs,
        scrape.output
    );
    s
}
