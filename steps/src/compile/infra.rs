//! Stage: Dynamo's runtime infrastructure — NATS and etcd on the infra node, each behind a readiness
//! gate — and the environment that points workers and frontends at them.

use super::Compiler;
use crate::kinds::{start_etcd, start_nats, wait_healthy};

impl Compiler<'_> {
    pub(super) fn dynamo_infra(&mut self) {
        let recipe = self.ctx.recipe;
        if !self.frontend.dynamo() || recipe.roles.is_empty() {
            return;
        }
        let total = self.ctx.nodes.len();
        let infra = if recipe.infra_dedicated_node {
            total - 1
        } else if recipe.frontend.multiple && total > 1 {
            1
        } else {
            0
        };
        let nodes = &self.ctx.nodes;
        let addr = nodes.addrs[infra].clone();
        let srt_graph = &self.ctx.target.srt_graph;
        self.steps
            .push(start_nats::step(infra, nodes.bind(infra), &addr));
        self.steps.push(start_etcd::step(
            infra,
            nodes.bind(infra),
            &addr,
            &format!("{}/etcd", self.ctx.target.run_dir),
        ));
        let nats_url = format!("nats://{addr}:{}", start_nats::PORT);
        let etcd_url = format!("http://{addr}:{}", start_etcd::CLIENT_PORT);
        let mut n = wait_healthy::infra(
            "nats/ready",
            infra,
            srt_graph,
            ("tcp", format!("{addr}:{}", start_nats::PORT)),
            300.0,
        );
        n.depends_on.push("nats".into());
        let mut e = wait_healthy::infra(
            "etcd/ready",
            infra,
            srt_graph,
            ("http", format!("{etcd_url}/health")),
            300.0,
        );
        e.depends_on.push("etcd".into());
        self.steps.push(n);
        self.steps.push(e);
        self.ctx.infra_ready = vec!["nats/ready".into(), "etcd/ready".into()];
        self.ctx.infra_env.insert("NATS_SERVER".into(), nats_url);
        self.ctx.infra_env.insert("ETCD_ENDPOINTS".into(), etcd_url);
    }
}
