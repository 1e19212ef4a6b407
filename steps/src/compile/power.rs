//! Stage: `telemetry:` — srtctl's DCGM power path. A `dcgm-exporter` on every worker node (in its own
//! image under pyxis), one collector on the orchestrator's node where the benchmark's clock is, a gate
//! before the first measured point, and each sa-bench point told where to write its measurement window.

use super::Compiler;
use crate::kinds::{collect_power, run_benchmark, start_exporter, start_worker, wait_power};
use srt_graph_engine::{Container, Requirement, Step};
use std::collections::BTreeMap;

/// sa-bench's variable for the directory its measurement windows go to.
pub const WINDOW_DIR_ENV: &str = "SRT_MEASUREMENT_WINDOW_DIR";

impl Compiler<'_> {
    pub(super) fn power(&mut self) {
        let recipe = self.ctx.recipe;
        let Some(t) = &recipe.telemetry else { return };
        let nodes = &self.ctx.nodes;
        // The role of each worker node: what its GPUs' watts are attributed to.
        let mut roles: BTreeMap<usize, String> = BTreeMap::new();
        for s in self.steps.iter().filter(|s| s.kind == start_worker::KIND) {
            roles
                .entry(s.node)
                .or_insert_with(|| s.role.clone().unwrap_or_else(|| "worker".into()));
        }
        if roles.is_empty() {
            self.notes
                .push("telemetry: the recipe starts no workers, so no GPU power is sampled".into());
            return;
        }
        let dir = format!(
            "{}/{}",
            self.ctx.target.run_dir.trim_end_matches('/'),
            t.storage_subdir
        );
        let (mut endpoints, mut devices, mut exporters) = (Vec::new(), Vec::new(), Vec::new());
        let mut first_command = String::new();
        for (&node, role) in &roles {
            let name = &nodes.names[node];
            let command = t.command(nodes.bind(node));
            let argv = shlex::split(&command).unwrap_or_default();
            if first_command.is_empty() {
                first_command = command;
            }
            let url = format!("http://{}:{}/metrics", nodes.addrs[node], t.exporter_port);
            let mut s = start_exporter::step(node, name, argv, t.exporter_port, &url);
            if t.required {
                // Checked where the executor can check (locally before anything starts).
                s.requires.push(Requirement {
                    what: "nvidia-smi".into(),
                    or: Vec::new(),
                    hint: "telemetry.required: DCGM reads NVIDIA GPUs, and this node has no driver (no `nvidia-smi`); run on GPU nodes, or set `telemetry.required: false` to benchmark without power figures".into(),
                });
            }
            endpoints.push(format!("{name}={url}"));
            devices.extend((0..recipe.gpus_per_node).map(|g| format!("{name}:{g}:{role}")));
            exporters.push(s);
        }
        let windows = self.measured_points(&dir);
        let mut collector = collect_power::step(&collect_power::Collect {
            srt_graph: &self.ctx.target.srt_graph,
            dir: &dir,
            run_name: &recipe.name,
            telemetry: t,
            endpoints,
            devices,
            windows,
            command: first_command,
        });
        // Stopped before the exporters at teardown (a deeper step stops first), so that its last scrape
        // still finds them.
        collector.depends_on = exporters.iter().map(|s| s.id.clone()).collect();
        let mut gate = wait_power::step(&self.ctx.target.srt_graph, &dir, t);
        gate.depends_on.push(collector.id.clone());
        for s in self
            .steps
            .iter_mut()
            .filter(|s| s.kind == run_benchmark::KIND)
            .filter(|s| s.depends_on.iter().any(|d| d == super::serving::GATE))
        {
            s.depends_on.push(gate.id.clone());
        }
        self.notes.push(format!(
            "telemetry: dcgm-exporter on {} node(s) reads NVIDIA GPUs through DCGM; where a node has no GPU driver (`nvidia-smi`) it has nothing to report{}",
            roles.len(),
            if t.required {
                ", and `required: true` stops the run before the benchmark"
            } else {
                " and the run goes on without power figures (`required: true` would refuse it)"
            }
        ));
        if self.ctx.stand_in != crate::build::StandIn::None || recipe.backend == "mocker" {
            self.notes.push("telemetry: the workers are simulated; whatever watts the exporters report are not theirs, and the report says SIMULATED beside every power figure".into());
        }
        self.steps.extend(exporters);
        self.steps.push(collector);
        self.steps.push(gate);
    }

    /// The measured points that save a result (`srt-graph bench --result-filename`), as
    /// `TYPE:ISL:OSL:CONCURRENCY`; each is told where its measurement window goes.
    fn measured_points(&mut self, dir: &str) -> Vec<String> {
        let mut out = Vec::new();
        for s in self
            .steps
            .iter_mut()
            .filter(|s| s.kind == run_benchmark::KIND)
        {
            let Some(argv) = &s.command else { continue };
            let arg = |flag: &str| {
                argv.iter()
                    .position(|a| a == flag)
                    .and_then(|i| argv.get(i + 1))
                    .cloned()
            };
            if argv.get(1).map(String::as_str) != Some("bench")
                || arg("--result-filename").is_none()
            {
                continue;
            }
            let (Some(isl), Some(osl), Some(c)) =
                (arg("--isl"), arg("--osl"), arg("--concurrency"))
            else {
                continue;
            };
            let kind = s.id.split('/').next().unwrap_or("sa-bench");
            out.push(format!("{kind}:{isl}:{osl}:{c}"));
            s.env
                .insert(WINDOW_DIR_ENV.into(), format!("{dir}/windows"));
        }
        out
    }
}

/// Under pyxis, each exporter runs in the exporter's image (unnamed: nothing else joins it), as srtctl
/// starts it; called after the workers' container is placed, which would otherwise claim it.
pub(super) fn containerize(steps: &mut [Step], recipe: &crate::recipe::Recipe) {
    let Some(t) = &recipe.telemetry else { return };
    for s in steps.iter_mut().filter(|s| s.kind == start_exporter::KIND) {
        s.container = Some(Container {
            image: t.exporter_image.clone(),
            mounts: Vec::new(),
            name: None,
        });
    }
}
