//! Stage: worker-side steps go into the run's container (Slurm + pyxis). Each node that runs any gets a
//! `container/<node>` step first, which creates the named container once and checks the image; every
//! step in the container on that node (on every node of an MPI step) waits for it. Inside, the node
//! tools are the static binary mounted at `CONTAINER_TOOL_DIR`.

use crate::build::Ctx;
use crate::kinds::start_container;
use srt_graph_engine::{Container, Step};
use std::collections::BTreeMap;

pub(super) fn place(steps: &mut Vec<Step>, container: &Container, ctx: &Ctx) {
    let host_tool = &ctx.target.srt_graph;
    let inside = &ctx.target.container_tool;
    // Programs the steps of each node call by bare name: the image must have them.
    let mut needs: BTreeMap<usize, Vec<String>> = BTreeMap::new();
    for s in steps.iter_mut().filter(|s| {
        s.container.is_some() || crate::kinds::find(&s.kind).is_some_and(|k| k.in_worker_container)
    }) {
        s.container = Some(container.clone());
        if let Some(first) = s.command.as_mut().and_then(|a| a.first_mut()) {
            if first == host_tool {
                first.clone_from(inside);
            }
        }
        // `flock LOCK PROGRAM …` runs PROGRAM: the image needs both.
        let argv = s.command.as_deref().unwrap_or_default();
        let called = match argv {
            [f, _, p, ..] if f == "flock" => vec![f.clone(), p.clone()],
            [p, ..] => vec![p.clone()],
            [] => vec![],
        };
        for n in s.nodes() {
            let list = needs.entry(n).or_default();
            for p in called.iter().filter(|p| !p.contains('/')) {
                if !list.contains(p) {
                    list.push(p.clone());
                }
            }
        }
    }
    let mut created = Vec::new();
    for (&node, programs) in &needs {
        let name = &ctx.nodes.names[node];
        let mut step = start_container::step(node, name, inside, programs);
        step.container = Some(container.clone());
        created.push(step);
    }
    for s in steps.iter_mut().filter(|s| s.container.is_some()) {
        for n in s.nodes() {
            let id = start_container::id(&ctx.nodes.names[n]);
            if !s.depends_on.contains(&id) {
                s.depends_on.insert(0, id);
            }
        }
    }
    // Nothing else starts before the containers are up and their images checked: a wrong image stops
    // the run before any service.
    let gates: Vec<String> = created.iter().map(|s| s.id.clone()).collect();
    for s in steps
        .iter_mut()
        .filter(|s| s.container.is_none() && s.depends_on.is_empty())
    {
        s.depends_on.clone_from(&gates);
    }
    steps.splice(0..0, created);
    if let Some(n) = &ctx.target.nginx_container {
        for s in steps
            .iter_mut()
            .filter(|s| s.kind == crate::kinds::start_nginx::KIND)
        {
            s.container = Some(n.clone());
        }
    }
}
