//! Stage: `profiling:` — workers under `nsys profile` (real engines), the torch profiler's output
//! directory in their environment, and the capture window around the benchmark (`kinds::profile`).
//! Everything lands under `profiles/<role>/` of the run directory.

use super::Compiler;
use crate::build::StandIn;
use crate::kinds::{profile, run_benchmark, start_worker};
use crate::recipe::{Profiling, ProfilingKind, Role};

impl Compiler<'_> {
    pub(super) fn profiling(&mut self) {
        let recipe = self.ctx.recipe;
        let Some(p) = &recipe.profiling else { return };
        if recipe.roles.is_empty() {
            return;
        }
        let dir = format!("{}/profiles", self.ctx.target.run_dir.trim_end_matches('/'));
        self.profile_workers(p, &dir);
        if p.kind == ProfilingKind::NsysTime {
            return;
        }
        let targets = self.profile_targets(p, &dir);
        let benchmarks: Vec<usize> = (0..self.steps.len())
            .filter(|&k| self.steps[k].kind == run_benchmark::KIND)
            .collect();
        if benchmarks.is_empty() || targets.is_empty() {
            self.notes.push(format!(
                "profiling ({}): no benchmark runs, so no capture window is opened",
                p.kind.name()
            ));
            return;
        }
        let prefix = profile::path_prefix(self.frontend.dynamo());
        let activities = match p.kind {
            ProfilingKind::Torch => "CPU,GPU",
            _ => "CUDA_PROFILER",
        };
        let srt_graph = &self.ctx.target.srt_graph;
        let mut start = profile::start(srt_graph, &targets, prefix, activities);
        let mut stop = profile::stop(srt_graph, &targets, prefix);
        // Opens once the first points' own prerequisites (gate, identity) are met; they wait for it.
        let first: Vec<String> = self.steps[benchmarks[0]].depends_on.clone();
        start.depends_on = first;
        for &k in &benchmarks {
            let s = &mut self.steps[k];
            if s.depends_on.iter().all(|d| start.depends_on.contains(d)) {
                s.depends_on.push(start.id.clone());
            }
        }
        stop.depends_on = benchmarks
            .iter()
            .map(|&k| self.steps[k].id.clone())
            .collect();
        self.steps.push(start);
        self.steps.push(stop);
    }

    /// nsys wraps each real worker process; the torch profiler learns its directory from the env.
    fn profile_workers(&mut self, p: &Profiling, dir: &str) {
        let simulated = self.ctx.stand_in != StandIn::None || self.ctx.recipe.backend == "mocker";
        let nsys = std::env::var("SRTCTL_NSYS_BIN").unwrap_or_else(|_| "nsys".into());
        let dynamo = self.frontend.dynamo();
        let trtllm = self.ctx.recipe.backend == "trtllm";
        for s in self
            .steps
            .iter_mut()
            .filter(|s| s.kind == start_worker::KIND)
        {
            let role = s.role.clone().unwrap_or_else(|| "worker".into());
            match p.kind {
                ProfilingKind::Torch => {
                    s.env
                        .insert("SGLANG_TORCH_PROFILER_DIR".into(), format!("{dir}/{role}"));
                }
                ProfilingKind::Nsys | ProfilingKind::NsysTime if !simulated => {
                    let output = format!("{dir}/{role}/{}", s.id.replace('/', "_"));
                    let mut prefix = nsys_prefix(p, &nsys, trtllm);
                    prefix.extend(p.extra_nsys_args.iter().cloned());
                    if dynamo && !trtllm {
                        prefix.push("--trace-fork-before-exec=true".into());
                    }
                    prefix.extend(["-o".into(), output]);
                    if let Some(argv) = s.command.as_mut() {
                        prefix.append(argv);
                        *argv = prefix;
                    }
                    // Not a Debian package: NVIDIA ships it (CUDA toolkit, NGC images).
                    s.requires.push(srt_graph_engine::Requirement {
                        what: nsys.clone(),
                        or: Vec::new(),
                        hint: "Nsight Systems profiles the workers (`profiling.type: nsys`): install it from NVIDIA's CUDA apt repository (`apt-get install nsight-systems`) or use an image that has it, or point SRTCTL_NSYS_BIN at an nsys".into(),
                    });
                    if trtllm && p.kind == ProfilingKind::Nsys {
                        let w = p.window(role_of(&role));
                        s.env.insert(
                            "TLLM_PROFILE_START_STOP".into(),
                            format!("{}-{}", w.start, w.stop),
                        );
                        s.env.insert("TLLM_LLMAPI_ENABLE_NVTX".into(), "1".into());
                    }
                }
                ProfilingKind::Nsys | ProfilingKind::NsysTime => {}
            }
        }
        if simulated && p.kind != ProfilingKind::Torch {
            self.notes.push(format!(
                "profiling ({}): simulated workers have no GPU to trace, so they do not run under nsys{}",
                p.kind.name(),
                if p.kind == ProfilingKind::Nsys {
                    "; the capture window still reaches them"
                } else {
                    ""
                }
            ));
        }
    }

    /// Every worker leader, with its role's window and output directory.
    fn profile_targets(&self, p: &Profiling, dir: &str) -> Vec<profile::Target> {
        let l = &self.leaders;
        let roles = l
            .prefill
            .iter()
            .map(|(u, _)| (Role::Prefill, u))
            .chain(l.decode.iter().map(|u| (Role::Decode, u)))
            .chain(l.aggregated.iter().map(|u| (Role::Aggregated, u)));
        roles
            .map(|(role, url)| {
                let w = p.window(role);
                profile::Target {
                    url: url.clone(),
                    output_dir: format!("{dir}/{}", role.as_str()),
                    start_step: w.start,
                    stop_step: w.stop,
                }
            })
            .collect()
    }
}

fn role_of(name: &str) -> Role {
    match name {
        "prefill" => Role::Prefill,
        "decode" => Role::Decode,
        _ => Role::Aggregated,
    }
}

/// srtctl's `nsys profile` flags per capture mode (TRT-LLM traces UCX and waits for its MPI children).
fn nsys_prefix(p: &Profiling, nsys: &str, trtllm: bool) -> Vec<String> {
    let mut v: Vec<String> = vec![nsys.into(), "profile".into(), "-t".into()];
    v.push(if trtllm { "cuda,nvtx,ucx" } else { "cuda,nvtx" }.into());
    if trtllm {
        v.push("--sample=none".into());
    }
    v.push("--cuda-graph-trace=node".into());
    match p.kind {
        ProfilingKind::NsysTime => v.extend([
            "--delay".into(),
            p.delay_secs.to_string(),
            "--duration".into(),
            p.duration_secs.to_string(),
        ]),
        _ => v.extend([
            "-c".into(),
            "cudaProfilerApi".into(),
            "--capture-range-end".into(),
            "stop".into(),
        ]),
    }
    if trtllm {
        v.extend([
            "--kill".into(),
            "none".into(),
            "--wait".into(),
            "all".into(),
        ]);
    }
    v.extend(["--force-overwrite".into(), "true".into()]);
    v
}
