//! Stage: the metrics scrape beside the benchmark — every process of the deployment that serves
//! `/metrics`, read from the health gate on (see `kinds::scrape_metrics`).

use super::Compiler;
use crate::kinds::{sample_host, scrape_metrics, start_frontend, start_router, start_worker};

impl Compiler<'_> {
    pub(super) fn scrape(&mut self) {
        let recipe = self.ctx.recipe;
        let Some(scrape) = &recipe.scrape else { return };
        let Some(gate) = self.steps.iter().find(|s| s.id == super::serving::GATE) else {
            return;
        };
        let gate = gate.id.clone();
        let nodes = &self.ctx.nodes;
        let targets: Vec<scrape_metrics::Target> = self
            .steps
            .iter()
            .filter_map(|s| {
                // Where each kind serves its metrics: a worker and a Dynamo frontend on their HTTP
                // port, sglang-router on its Prometheus port.
                let (port, role, worker_id) = match s.kind.as_str() {
                    start_worker::KIND => (
                        s.ports.first()?,
                        s.role.clone().unwrap_or_else(|| "worker".into()),
                        Some(nodes.names[s.node].clone()),
                    ),
                    start_router::KIND => (s.ports.get(1)?, "frontend".into(), None),
                    start_frontend::KIND => (s.ports.first()?, "frontend".into(), None),
                    _ => return None,
                };
                Some(scrape_metrics::Target {
                    url: format!("http://{}:{port}/metrics", nodes.addrs[s.node]),
                    role,
                    worker_id,
                })
            })
            .collect();
        if targets.is_empty() {
            return;
        }
        let (bin, run_dir) = (&self.ctx.target.srt_graph, &self.ctx.target.run_dir);
        let mut step = scrape_metrics::step((0, &nodes.names[0]), bin, run_dir, scrape, &targets);
        step.depends_on.push(gate.clone());
        // Every other node the deployment runs on samples its own host.
        let mut used: Vec<usize> = self
            .steps
            .iter()
            .map(|s| s.node)
            .filter(|&n| n != 0)
            .collect();
        used.sort_unstable();
        used.dedup();
        let samplers: Vec<_> = used
            .into_iter()
            .map(|n| {
                let mut s = sample_host::step((n, &nodes.names[n]), bin, run_dir, scrape);
                s.depends_on.push(gate.clone());
                s
            })
            .collect();
        self.steps.push(step);
        self.steps.extend(samplers);
    }
}

impl Compiler<'_> {
    /// The recipe's `identity:` checked once the workers are healthy and fingerprinted, before any
    /// benchmark point runs.
    pub(super) fn identity(&mut self) {
        use crate::kinds::{check_identity, fingerprint, run_benchmark};
        let recipe = self.ctx.recipe;
        let Some(id) = recipe
            .identity
            .as_ref()
            .filter(|i| **i != Default::default())
        else {
            return;
        };
        // The mocker backend is a simulator of its own: no engine runs there either.
        if self.ctx.stand_in != crate::build::StandIn::None || recipe.backend == "mocker" {
            self.notes.push(
                "identity: not checked in a simulated run (no engine ran whose model and frameworks could be verified)"
                    .into(),
            );
            return;
        }
        let Some(gate) = self
            .steps
            .iter()
            .find(|s| s.id == super::serving::GATE)
            .map(|s| s.id.clone())
        else {
            return;
        };
        let nodes: Vec<String> = (0..recipe.worker_nodes())
            .map(|k| self.ctx.nodes.names[k].clone())
            .collect();
        let mut step = check_identity::step(
            &self.ctx.target.srt_graph,
            &self.ctx.target.run_dir,
            &nodes,
            id,
        );
        step.depends_on.push(gate.clone());
        step.depends_on.extend(
            self.steps
                .iter()
                .filter(|s| s.kind == fingerprint::KIND)
                .map(|s| s.id.clone()),
        );
        for s in self
            .steps
            .iter_mut()
            .filter(|s| s.kind == run_benchmark::KIND)
        {
            if s.depends_on.contains(&gate) {
                s.depends_on.push(step.id.clone());
            }
        }
        self.steps.push(step);
    }
}
