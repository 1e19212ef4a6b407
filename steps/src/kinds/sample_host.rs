//! `sample_host`: a node the metrics scraper does not run on samples its own CPU, memory and open
//! files over the scrape's interval (the scraper's loop with no targets), into its own file.

use srt_graph_engine::{Lifetime, Step};

pub const KIND: &str = "sample_host";
pub const SPEC: super::Kind = super::Kind {
    name: KIND,
    fill: "#e2e3e5",
    policy: srt_graph_engine::Policy::default,
    on_resume: srt_graph_engine::OnResume::Stand,
    in_worker_container: false,
};

pub fn step(
    (node, node_name): (usize, &str),
    srt_graph: &str,
    run_dir: &str,
    scrape: &crate::recipe::Scrape,
) -> Step {
    let mut s = SPEC.step(format!("sample-host/{node_name}"), node, Lifetime::Service);
    s.command = Some(vec![
        srt_graph.to_string(),
        "scrape-metrics".into(),
        "--host-out".into(),
        super::scrape_metrics::host_samples(run_dir, node_name),
        "--interval".into(),
        format!("{}s", scrape.interval_secs),
    ]);
    s.summary = format!(
        "sample {node_name}'s CPU, memory and open files every {} s",
        scrape.interval_secs
    );
    s
}
