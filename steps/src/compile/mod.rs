//! Recipe → plan. Pure: no I/O. `compile` is a short driver over named stages; each stage is a method of
//! `Compiler` in its own file, and what depends on the backend, the frontend type or the benchmark type
//! is asked of its plug-in (`backends`, `frontends`, `benchmarks`).

mod checks;
mod containers;
mod fingerprint;
mod infra;
mod observe;
mod perf;
mod power;
mod prep;
mod profile;
mod serving;
mod user;
mod venv;
mod workers;

use crate::backends::{self, Backend};
use crate::build::{Ctx, Leaders, Nodes, StandIn, Target};
use crate::diag::{Diagnostic, RecipeError};
use crate::frontends::{self, FrontendType};
use crate::recipe::Recipe;
use srt_graph_engine::{Container, Dag, Plan, Step, PLAN_FORMAT};
use std::collections::BTreeMap;

/// One recipe's compilation in progress: the shared context, the plug-ins that apply, and what the
/// stages have produced so far.
pub(crate) struct Compiler<'a> {
    ctx: Ctx<'a>,
    backend: &'static dyn Backend,
    frontend: &'static dyn FrontendType,
    steps: Vec<Step>,
    notes: Vec<String>,
    /// Per node, the last preparation step every worker process there waits for.
    prep: BTreeMap<usize, String>,
    /// Ids of every worker process step, in placement order.
    workers: Vec<String>,
    leaders: Leaders,
}

pub fn compile(recipe: &Recipe, target: &Target) -> Result<Plan, RecipeError> {
    let mut c = Compiler::new(recipe, target)?;
    c.venv();
    c.node_prep();
    c.fingerprints();
    c.dynamo_infra();
    c.perf_model();
    c.workers()?;
    let endpoint = c.serving();
    c.scrape();
    c.identity();
    c.profiling();
    c.power();
    c.label_benchmarks();
    c.finish(endpoint)
}

impl<'a> Compiler<'a> {
    fn new(recipe: &'a Recipe, target: &'a Target) -> Result<Compiler<'a>, RecipeError> {
        let (Some(backend), Some(frontend)) = (
            backends::find(recipe.backend),
            frontends::find(recipe.frontend.kind),
        ) else {
            // `read` only produces registered types; a hand-built recipe may not.
            return Err(RecipeError::Invalid(vec![diag(
                recipe,
                recipe.root_pos,
                "backend",
                format!(
                    "backend `{}` or frontend `{}` is not registered",
                    recipe.backend, recipe.frontend.kind
                ),
                None,
            )]));
        };
        // Only what the venv serves: the router or Dynamo, or installs of a mounted SGLang source.
        let needs_venv = !recipe.roles.is_empty() || recipe.sglang_src_dir.is_some();
        let venv = target.venv.as_deref().filter(|_| needs_venv);
        let (worker_python, frontend_python) = match venv {
            Some(v) => (Ctx::python_of(v), Ctx::python_of(v)),
            None => (target.worker_python.clone(), target.frontend_python.clone()),
        };
        let stand_in = if target.mock_workers {
            backend.stand_in(frontend.dynamo())
        } else {
            StandIn::None
        };
        let mut notes = recipe.notes.clone();
        let mut frontend = frontend;
        if let Some(script) = recipe
            .setup_script
            .as_ref()
            .filter(|_| stand_in != StandIn::None)
        {
            notes.push(format!(
                "--mock-workers: setup_script `{script}` is skipped (it prepares a real engine's environment)"
            ));
        }
        if (frontend.dynamo() || stand_in == StandIn::DynamoMocker) && !recipe.roles.is_empty() {
            if let (_, Some(note)) = frontends::dynamo::packages(recipe, target.mock_workers) {
                notes.push(note);
            }
        }
        if stand_in == StandIn::DynamoMocker && !recipe.roles.is_empty() {
            if backend.name() != "mocker" {
                notes.push(format!(
                    "--mock-workers: {} workers run as Dynamo's own GPU-less `dynamo.mocker`, keeping their prefill/decode role (it supports disaggregation); `{}` flags are not passed to it, and a worker spanning nodes runs on its first node only",
                    backend.name(),
                    backend.config_key()
                ));
            }
            if !frontend.dynamo() {
                notes.push(format!(
                    "--mock-workers: the `{}` frontend is simulated by Dynamo's frontend (dynamo.mocker registers only with Dynamo's runtime)",
                    frontend.name()
                ));
                frontend = &frontends::dynamo::Dynamo;
            }
        }
        Ok(Compiler {
            ctx: Ctx {
                recipe,
                target,
                nodes: Nodes::new(target, recipe.total_nodes() as usize),
                venv,
                worker_python,
                frontend_python,
                stand_in,
                venv_ready: Vec::new(),
                packages_ready: Vec::new(),
                infra_ready: Vec::new(),
                infra_env: BTreeMap::new(),
                served_model: backend.served_model_name(recipe),
                perf: crate::perf_model::derive(recipe, &backend.served_model_name(recipe)),
                perf_ready: None,
                mocker_role_flags: crate::kinds::start_worker::MockerRoleFlags::for_release(
                    &frontends::dynamo::packages(recipe, target.mock_workers).0,
                ),
            },
            backend,
            frontend,
            steps: Vec::new(),
            notes,
            prep: BTreeMap::new(),
            workers: Vec::new(),
            leaders: Leaders::default(),
        })
    }

    /// The recipe's own steps and policies, the checks over the whole graph, containers, and the plan.
    fn finish(mut self, endpoint: Option<String>) -> Result<Plan, RecipeError> {
        let recipe = self.ctx.recipe;
        user::add_user_steps(recipe, &self.ctx, &mut self.steps)?;
        checks::apply_policies(recipe, &mut self.steps);
        checks::check_ports(recipe, &self.ctx.nodes, &self.steps)?;
        if let Some(c) = self.ctx.target.container.clone() {
            containers::place(&mut self.steps, &c, &self.ctx);
            power::containerize(&mut self.steps, recipe);
        }
        let plan = Plan {
            format: PLAN_FORMAT,
            recipe: recipe.name.clone(),
            nodes: self.ctx.nodes.names,
            addresses: self.ctx.nodes.addrs,
            steps: self.steps,
            endpoint,
            ignored: recipe.ignored.clone(),
            notes: self.notes,
            secret_env: vec![],
        };
        let mut plan = plan;
        crate::secrets::mark(&mut plan, &recipe.secret_env);
        // Validate the graph (unique ids, deps, cycles) with the engine's own rules.
        Dag::new(plan.clone()).map_err(|e| checks::plan_error(recipe, e))?;
        Ok(plan)
    }
}

pub use crate::build::CONTAINER_TOOL_DIR;

/// Host paths a worker container needs beside the recipe's: the run directory, the cache (the run's
/// venv, created by the container's own Python) and the directory of the static `srt-graph`.
pub struct ContainerPaths<'a> {
    pub run_dir: &'a str,
    pub cache: &'a str,
    pub tool_dir: &'a str,
}

/// The recipe's container for worker-side steps: the image, srt-slurm's mounts (model → `/model/`, run
/// directory → `/logs/`, recipe mounts, the SGLang source → `/ext-sglang-src/`), srt-graph's own (the
/// run directory and the cache at their host paths, so every path in the plan means the same inside;
/// the node tools read-only), and one name per run, so that an install persists into the worker's
/// container and a resumed run finds it.
pub fn worker_container(recipe: &Recipe, paths: &ContainerPaths) -> Option<Container> {
    container_for(recipe.container.clone()?, recipe, paths)
}

/// nginx's container (`frontend.nginx_container`): the same mounts (its config is in the run directory),
/// and a name of its own, so that it is created up front, off the critical path, and a resumed run
/// finds it.
pub fn nginx_container(recipe: &Recipe, paths: &ContainerPaths) -> Option<Container> {
    let image = recipe.frontend.nginx_container.clone()?;
    container_for(image, recipe, paths).map(|c| Container {
        name: c.name.map(|n| format!("{n}-nginx")),
        ..c
    })
}

fn container_for(image: String, recipe: &Recipe, paths: &ContainerPaths) -> Option<Container> {
    let run_dir = paths.run_dir;
    let mut mounts = Vec::new();
    if let Some(model) = recipe.model_path.as_deref().filter(|m| m.starts_with('/')) {
        mounts.push(format!("{model}:/model/"));
    }
    mounts.push(format!("{run_dir}:/logs/"));
    mounts.push(format!("{run_dir}:{run_dir}"));
    mounts.push(format!("{0}:{0}", paths.cache));
    mounts.push(format!("{}:{CONTAINER_TOOL_DIR}:ro", paths.tool_dir));
    for (host, inside) in &recipe.container_mounts {
        mounts.push(format!("{host}:{inside}"));
    }
    if let Some((src, _)) = &recipe.sglang_src_dir {
        mounts.push(format!("{src}:/ext-sglang-src/"));
    }
    // srtctl mounts its configs (setup scripts) at /configs.
    if let Some(root) = &recipe.srtctl_root {
        mounts.push(format!("{}/configs:/configs", root.trim_end_matches('/')));
    }
    Some(Container {
        image,
        mounts,
        name: Some(container_name(run_dir)),
    })
}

/// One container name per run directory (pyxis keeps named containers on each node until removed).
fn container_name(run_dir: &str) -> String {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(run_dir.as_bytes());
    let hex: String = digest.iter().take(6).map(|b| format!("{b:02x}")).collect();
    format!("srt-graph-{hex}")
}

pub(crate) fn diag(
    recipe: &Recipe,
    pos: crate::yaml::Pos,
    path: &str,
    message: String,
    help: Option<String>,
) -> Diagnostic {
    Diagnostic {
        file: recipe.file.clone(),
        pos,
        path: path.into(),
        message,
        help,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frontends::FrontendType;
    use crate::{load_str, ClusterConfig};

    fn recipe(text: &str) -> Recipe {
        let mut v = load_str(text, "t.yaml", None, &ClusterConfig::default()).expect("valid");
        v.remove(0).recipe
    }

    fn disagg(prefill_nodes: u32, decode_nodes: u32, extra: &str) -> String {
        format!(
            "name: t\nresources: {{gpu_type: gb300, gpus_per_node: 4, prefill_nodes: {prefill_nodes}, prefill_workers: {prefill_nodes}, decode_nodes: {decode_nodes}, decode_workers: {decode_nodes}}}\nbackend:\n  use_sglang_router: true\n{extra}\n  sglang_config:\n    prefill: {{tp-size: 4}}\n    decode: {{tp-size: 4}}\n"
        )
    }

    /// The seed's table: 0 → node 0 only; N additional → node 0 + N distributed with
    /// `ceil((total_nodes - 1) / N)` spacing, one router per node at most.
    #[test]
    fn router_distribution_follows_the_seed_formula() {
        let cases: &[(u32, u32, u32, &[usize])] = &[
            (1, 1, 0, &[0]),
            (2, 2, 3, &[0, 1, 2, 3]),
            (4, 6, 4, &[0, 1, 4, 7]), // total 10: ceil(9/4) = 3
            (4, 6, 9, &[0, 1, 2, 3, 4, 5, 6, 7, 8, 9]),
            (8, 12, 9, &[0, 1, 4, 7, 10, 13, 16, 19]), // total 20: ceil(19/9) = 3
            (1, 1, 9, &[0, 1]),                        // fewer nodes than routers: one per node
        ];
        for &(p, d, n, want) in cases {
            let r = recipe(&disagg(p, d, &format!("  num_additional_frontends: {n}")));
            let total = r.total_nodes() as usize;
            assert_eq!(
                crate::frontends::sglang_router::SglangRouter.placement(&r, total),
                want,
                "P={p} D={d} N={n}"
            );
        }
    }

    #[test]
    fn single_router_sits_on_node0_port_8000() {
        let r = recipe(&disagg(2, 2, "  enable_multiple_frontends: false"));
        let plan = compile(&r, &Target::default()).expect("plan");
        let routers: Vec<&Step> = plan
            .steps
            .iter()
            .filter(|s| s.kind == "start_router")
            .collect();
        assert_eq!(routers.len(), 1);
        assert_eq!(
            (routers[0].node, routers[0].ports.as_slice()),
            (0, &[8000u16, 29000][..])
        );
        assert!(!plan.steps.iter().any(|s| s.kind == "start_nginx"));
    }

    #[test]
    fn ports_of_workers_sharing_a_node_do_not_collide() {
        let r = recipe("name: t\nresources: {gpu_type: h100, gpus_per_node: 8, prefill_nodes: 1, prefill_workers: 2, gpus_per_prefill: 2, decode_nodes: 0, decode_workers: 2}\nfrontend: {type: sglang, enable_multiple_frontends: false}\nbackend:\n  sglang_config:\n    prefill: {tp-size: 2}\n    decode: {tp-size: 2}\n");
        let plan = compile(&r, &Target::default()).expect("plan");
        let workers: Vec<(&str, &[u16], &str)> = plan
            .steps
            .iter()
            .filter(|s| s.kind == "start_worker")
            .map(|s| {
                (
                    s.id.as_str(),
                    s.ports.as_slice(),
                    s.env.get("CUDA_VISIBLE_DEVICES").map_or("", String::as_str),
                )
            })
            .collect();
        assert_eq!(
            workers,
            [
                ("prefill-0", &[30000u16, 30001][..], "0,1"),
                ("prefill-1", &[30010, 30011][..], "2,3"),
                ("decode-0", &[30020][..], "4,5"),
                ("decode-1", &[30030][..], "6,7"),
            ]
        );
    }

    #[test]
    fn multi_node_workers_get_dist_init_and_ranks() {
        let r = recipe("name: t\nresources: {gpu_type: gb200, gpus_per_node: 4, prefill_nodes: 1, prefill_workers: 1, decode_nodes: 3, decode_workers: 1}\nbackend:\n  use_sglang_router: true\n  sglang_config:\n    prefill: {tp-size: 4}\n    decode: {tp-size: 12}\n");
        let plan = compile(&r, &Target::default()).expect("plan");
        for (id, node, rank) in [
            ("decode-0", 1, "0"),
            ("decode-0/rank1", 2, "1"),
            ("decode-0/rank2", 3, "2"),
        ] {
            let s = plan.steps.iter().find(|s| s.id == id).expect(id);
            assert_eq!(s.node, node);
            let argv = s.command.as_ref().expect("argv").join(" ");
            assert!(
                argv.contains(&format!(
                    "--dist-init-addr node1:29500 --nnodes 3 --node-rank {rank}"
                )),
                "{argv}"
            );
        }
        // The router is told only about leaders.
        let router = plan
            .steps
            .iter()
            .find(|s| s.kind == "start_router")
            .expect("router");
        let argv = router.command.as_ref().expect("argv").join(" ");
        assert!(
            argv.contains("--decode http://node1:30000 --host"),
            "{argv}"
        );
    }

    #[test]
    fn sweep_values_reach_the_command_line() {
        let mut v = load_str(
            "name: s\nsweep: {cps: [4096, 8192]}\nresources: {gpu_type: h100, gpus_per_node: 8, agg_nodes: 1, agg_workers: 1}\nfrontend: {type: sglang}\nbackend:\n  sglang_config:\n    aggregated: {chunked-prefill-size: \"{cps}\"}\n",
            "t.yaml",
            None,
            &ClusterConfig::default(),
        )
        .expect("valid");
        assert_eq!(v.len(), 2);
        let r = v.remove(1).recipe;
        assert_eq!(r.name, "s_cps8192");
        let plan = compile(&r, &Target::default()).expect("plan");
        let w = plan
            .steps
            .iter()
            .find(|s| s.kind == "start_worker")
            .expect("worker");
        assert!(w
            .command
            .as_ref()
            .expect("argv")
            .join(" ")
            .contains("--chunked-prefill-size 8192"));
    }
}
