//! Stage: what serves clients — the frontend type's processes, nginx in front of several, the health
//! gate that waits for every worker behind them, then the benchmark. Returns the public endpoint.

use super::Compiler;
use crate::benchmarks;
use crate::benchmarks::BenchmarkType;
use crate::build::FrontendProcess;
use crate::kinds::{start_nginx, wait_healthy};
use crate::recipe::{BenchPoint, Benchmark, Role};

/// The health gate's step id: the benchmark starts after it.
pub(super) const GATE: &str = "wait-healthy";

impl Compiler<'_> {
    pub(super) fn serving(&mut self) -> Option<String> {
        if self.ctx.recipe.roles.is_empty() {
            return None;
        }
        let (frontends, urls) = self.frontends();
        let public = format!(
            "http://{}:{}",
            self.ctx.nodes.addrs[0],
            start_nginx::PUBLIC_PORT
        );
        self.gate(&frontends, &urls, &public);
        let recipe = self.ctx.recipe;
        if self.ctx.target.smoke {
            let smoke = smoke_benchmark(recipe.benchmark.as_ref());
            let steps = benchmarks::sa_bench::SaBench.steps(&self.ctx, &smoke, &public, GATE);
            self.notes.push(format!(
                "--smoke: the benchmark is one short sa-bench point (isl {}, osl {}, concurrency {}, {} requests)",
                smoke.points[0].isl,
                smoke.points[0].osl,
                smoke.points[0].concurrencies[0],
                smoke.points[0].concurrencies[0]
            ));
            self.steps.extend(steps);
        } else if let Some(load) = self.profiling_load() {
            let b = Benchmark {
                points: vec![load],
                num_prompts_mult: 1,
                num_warmup_mult: 0,
                ..smoke_benchmark(None)
            };
            self.notes.push(format!(
                "profiling: the seed's profiling load runs as one sa-bench point (isl {}, osl {}, concurrency {})",
                b.points[0].isl, b.points[0].osl, b.points[0].concurrencies[0]
            ));
            let steps = benchmarks::sa_bench::SaBench.steps(&self.ctx, &b, &public, GATE);
            self.steps.extend(steps);
        } else if let Some(b) = &recipe.benchmark {
            if let Some(kind) = benchmarks::find(&b.kind) {
                let steps = kind.steps(&self.ctx, b, &public, GATE);
                self.steps.extend(steps);
            }
        }
        Some(public)
    }

    /// The frontends (and nginx before several): their step ids and the URLs the gate polls.
    fn frontends(&mut self) -> (Vec<String>, Vec<String>) {
        let recipe = self.ctx.recipe;
        let placement = self.frontend.placement(recipe, self.ctx.nodes.len());
        if recipe.frontend.multiple && recipe.frontend.num_additional as usize + 1 > placement.len()
        {
            self.notes.push(format!(
                "{} frontend(s) requested (1 + num_additional_frontends {}), {} placed: one per node at most, on nodes {}",
                recipe.frontend.num_additional + 1,
                recipe.frontend.num_additional,
                placement.len(),
                placement.iter().map(|k| self.ctx.nodes.names[*k].clone()).collect::<Vec<_>>().join(", ")
            ));
        }
        let mut ids = Vec::new();
        let mut urls = Vec::new();
        let mut upstreams = Vec::new();
        for (index, &node) in placement.iter().enumerate() {
            let Some((s, port)) = self.frontend.step(
                &self.ctx,
                &FrontendProcess {
                    index,
                    node,
                    leaders: &self.leaders,
                    workers: &self.workers,
                },
            ) else {
                continue;
            };
            let addr = &self.ctx.nodes.addrs[node];
            urls.push(format!("http://{addr}:{port}"));
            upstreams.push(format!("{addr}:{port}"));
            ids.push(s.id.clone());
            self.steps.push(s);
        }
        if upstreams.is_empty() {
            // A worker serves the public port itself: the gate asks it.
            urls.push(format!(
                "http://{}:{}",
                self.ctx.nodes.addrs[0],
                start_nginx::PUBLIC_PORT
            ));
        } else if recipe.frontend.multiple && self.frontend.behind_nginx() {
            let nginx = self.nginx(&upstreams, &ids);
            ids.push(nginx);
        }
        (ids, urls)
    }

    /// nginx on node 0 fans the public port out to the frontends.
    fn nginx(&mut self, upstreams: &[String], frontends: &[String]) -> String {
        let recipe = self.ctx.recipe;
        let nodes = &self.ctx.nodes;
        let max_concurrency = recipe
            .benchmark
            .as_ref()
            .and_then(|b| {
                b.points
                    .iter()
                    .flat_map(|p| p.concurrencies.iter().copied())
                    .max()
            })
            .unwrap_or(1024);
        let listen = if nodes.bind_all {
            start_nginx::PUBLIC_PORT.to_string()
        } else {
            format!("{}:{}", nodes.addrs[0], start_nginx::PUBLIC_PORT)
        };
        let cfg = start_nginx::Config {
            listen,
            upstreams,
            run_dir: &self.ctx.target.run_dir,
            keepalive_timeout: &recipe.frontend.nginx_keepalive_timeout,
            max_concurrency,
            raise_ulimit: recipe.frontend.nginx_raise_ulimit,
        };
        let mut nginx = start_nginx::step(0, &nodes.addrs[0], &cfg);
        // nginx talks to the routers/frontends (and keeps connections to them): it starts after them
        // and, on resume, restarts when they do.
        nginx.depends_on = frontends.to_vec();
        let id = nginx.id.clone();
        self.steps.push(nginx);
        id
    }

    /// Waits until the frontends see every worker, then sends a smoke request to the public endpoint.
    fn gate(&mut self, frontends: &[String], urls: &[String], public: &str) {
        let recipe = self.ctx.recipe;
        let (prefill, decode) = match recipe.role(Role::Aggregated) {
            Some(a) => (0, a.workers),
            None => (
                recipe.role(Role::Prefill).map_or(0, |r| r.workers),
                recipe.role(Role::Decode).map_or(0, |r| r.workers),
            ),
        };
        let expect = wait_healthy::Expect {
            mode: self.frontend.health_mode(),
            urls,
            prefill,
            decode,
            public_url: Some(public),
            model: &self.ctx.served_model,
            timeout_secs: f64::from(recipe.health_max_attempts)
                * f64::from(recipe.health_interval_secs),
            interval_secs: recipe.health_interval_secs,
        };
        let mut gate = wait_healthy::step(GATE, 0, &self.ctx.target.srt_graph, &expect);
        gate.depends_on.extend(frontends.iter().cloned());
        gate.depends_on.extend(self.workers.iter().cloned());
        self.steps.push(gate);
    }
}

/// `--smoke`: the recipe's first sa-bench point at its first concurrency (at most 4), one request per
/// concurrent client, no warm-up; a short point of sa-bench's when the recipe has none.
impl Compiler<'_> {
    /// The seed's profiling load, where no other benchmark drives the window.
    fn profiling_load(&self) -> Option<BenchPoint> {
        let recipe = self.ctx.recipe;
        let idle = recipe.benchmark.as_ref().is_none_or(|b| b.kind == "manual");
        recipe
            .profiling
            .as_ref()
            .and_then(|p| p.load.clone())
            .filter(|_| idle)
    }
}

fn smoke_benchmark(recipe: Option<&Benchmark>) -> Benchmark {
    let first = recipe
        .filter(|b| b.kind == benchmarks::sa_bench::SaBench.name())
        .and_then(|b| b.points.first());
    let point = BenchPoint {
        isl: first.map_or(128, |p| p.isl),
        osl: first.map_or(16, |p| p.osl),
        concurrencies: vec![first
            .and_then(|p| p.concurrencies.first().copied())
            .unwrap_or(1)
            .min(4)],
        req_rate: None,
    };
    Benchmark {
        kind: "sa-bench".into(),
        points: vec![point],
        random_range_ratio: recipe.map_or(0.8, |b| b.random_range_ratio),
        num_prompts_mult: 1,
        num_warmup_mult: 0,
        max_failed_percent: recipe.map_or(5.0, |b| b.max_failed_percent),
        options: Vec::new(),
        pos: recipe.map_or(crate::yaml::Pos { line: 1, col: 1 }, |b| b.pos),
    }
}
