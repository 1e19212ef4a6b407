//! Stage: worker-side steps go into the run's container (Slurm + pyxis). Each node that runs any gets a
//! `container/<node>` step first, which creates the named container once and checks the image; every
//! step in the container on that node (on every node of an MPI step) waits for it. Inside, the node
//! tools are the static binary mounted at `CONTAINER_TOOL_DIR`.

use crate::build::Ctx;
use crate::kinds::start_container;
use srt_graph_engine::{Container, Step};
use std::collections::BTreeMap;

pub(super) fn place(steps: &mut Vec<Step>, container: &Container, ctx: &Ctx) {
    let nginx = ctx.target.nginx_container.as_ref();
    let is_nginx = |s: &Step| s.kind == crate::kinds::start_nginx::KIND;
    // nginx in the workers' image runs in their container: attaching to it takes half a second, a
    // container of its own would unpack the image again on the critical path (16 s for 280 MB here).
    let shares = nginx.is_some_and(|n| n.image == container.image);
    let mut created = creators(steps, container, ctx, start_container::id, |s| {
        s.container.is_some()
            || crate::kinds::find(&s.kind).is_some_and(|k| k.in_worker_container)
            || (shares && is_nginx(s))
    });
    // nginx in another image: a named container of its own, created up front beside the workers'.
    if let Some(n) = nginx.filter(|_| !shares) {
        created.append(&mut creators(
            steps,
            n,
            ctx,
            start_container::nginx_id,
            is_nginx,
        ));
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
}

/// Puts the steps `member` selects into `container`, and returns one `start_container` step per node
/// they run on, which each of them then waits for; it checks the image for the programs they call.
fn creators(
    steps: &mut [Step],
    container: &Container,
    ctx: &Ctx,
    creator_id: fn(&str) -> String,
    member: impl Fn(&Step) -> bool,
) -> Vec<Step> {
    let host_tool = &ctx.target.srt_graph;
    let inside = &ctx.target.container_tool;
    let id = |node: usize| creator_id(&ctx.nodes.names[node]);
    // Programs the steps of each node call by bare name: the image must have them.
    let mut needs: BTreeMap<usize, Vec<String>> = BTreeMap::new();
    for s in steps.iter_mut().filter(|s| member(s)) {
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
            let gate = id(n);
            if !s.depends_on.contains(&gate) {
                s.depends_on.insert(0, gate);
            }
        }
    }
    needs
        .iter()
        .map(|(&node, programs)| {
            let mut step = start_container::step(id(node), node, inside, programs);
            step.container = Some(container.clone());
            step
        })
        .collect()
}
