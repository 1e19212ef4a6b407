//! Stage: workers. Each role's workers take GPUs on its own nodes (or, with 0 nodes, on GPUs left by the
//! roles before it); a worker spanning nodes is one process per node. The backend turns each placed
//! process into a step.

use super::{diag, Compiler};
use crate::backends::kv_events;
use crate::build::{StandIn, WorkerProcess};
use crate::diag::RecipeError;
use crate::kinds::{self, start_worker};
use crate::recipe::{Role, RoleSpec};
use std::collections::BTreeMap;

/// One worker's GPUs: first node, how many nodes, and the CUDA devices when it shares a node.
struct Gpus {
    first: usize,
    span: u32,
    cuda: Option<String>,
}

impl Compiler<'_> {
    pub(super) fn workers(&mut self) -> Result<(), RecipeError> {
        let recipe = self.ctx.recipe;
        let gpn = recipe.gpus_per_node;
        let mut free: Vec<u32> = vec![gpn; self.ctx.nodes.len()];
        // Workers already placed on a node (their ports are offset by that many strides).
        let mut slots: BTreeMap<usize, u16> = BTreeMap::new();
        let mut base_node = 0usize;
        for spec in &recipe.roles {
            // A role with nodes of its own uses them; a role with 0 nodes packs into GPUs left on earlier nodes.
            let region = if spec.nodes > 0 {
                base_node..base_node + spec.nodes as usize
            } else {
                0..base_node
            };
            for w in 0..spec.workers {
                let Some((first, span, cuda)) =
                    allocate(&mut free, region.clone(), spec.gpus_per_worker, gpn)
                else {
                    return Err(RecipeError::Invalid(vec![diag(
                        recipe,
                        recipe.resources_pos,
                        "resources",
                        format!(
                            "{} worker {w} ({} GPUs) does not fit: {} node(s) of {gpn} GPUs are available to it and the workers before it took the rest",
                            spec.role.as_str(),
                            spec.gpus_per_worker,
                            region.len()
                        ),
                        Some(format!("raise {}_nodes or lower the workers / GPUs per worker", spec.role.id_prefix())),
                    )]));
                };
                let slot = *slots.entry(first).and_modify(|s| *s += 1).or_insert(0);
                self.worker(spec, w, Gpus { first, span, cuda }, slot);
            }
            base_node += spec.nodes as usize;
        }
        Ok(())
    }

    /// Worker `w` of a role: its leader URL for the routers, then one step per node it spans.
    fn worker(&mut self, spec: &RoleSpec, w: u32, gpus: Gpus, slot: u16) {
        let ports = self.backend.ports(spec);
        let offset = slot.saturating_mul(start_worker::PORT_STRIDE);
        let http_port = ports.http.saturating_add(offset);
        let bootstrap = ports.bootstrap.map(|b| b.saturating_add(offset));
        let leader_addr = self.ctx.nodes.addrs[gpus.first].clone();
        let url = format!("http://{leader_addr}:{http_port}");
        match spec.role {
            Role::Prefill => self
                .leaders
                .prefill
                .push((url, bootstrap.unwrap_or(start_worker::BOOTSTRAP_PORT))),
            Role::Decode => self.leaders.decode.push(url),
            Role::Aggregated => self.leaders.aggregated.push(url),
        }
        let recipe = self.ctx.recipe;
        for rank in 0..gpus.span {
            let node = gpus.first + rank as usize;
            let wid = format!("{}-{w}", spec.role.id_prefix());
            let id = if rank == 0 {
                wid
            } else {
                format!("{wid}/rank{rank}")
            };
            let mut env = kinds::env(&recipe.environment);
            env.extend(kinds::env(&spec.env));
            env.extend(self.ctx.infra_env.clone());
            let process = WorkerProcess {
                spec,
                place: start_worker::Placement {
                    id: id.clone(),
                    node,
                    bind: self.ctx.nodes.bind(node),
                    http_port,
                    bootstrap_port: bootstrap,
                    dist: (gpus.span > 1).then(|| {
                        (
                            leader_addr.clone(),
                            start_worker::DIST_INIT_PORT + slot,
                            gpus.span,
                            rank,
                        )
                    }),
                    cuda_devices: gpus.cuda.clone(),
                    probe_addr: &self.ctx.nodes.addrs[node],
                    kv_events_port: kv_events::PORT_BASE + slot,
                },
                env,
            };
            let Some(mut s) = self.backend.worker(&self.ctx, &process) else {
                continue;
            };
            if self.ctx.stand_in == StandIn::DynamoMocker {
                s.depends_on.extend(self.ctx.packages_ready.iter().cloned());
            }
            self.pace_worker(crate::perf_model::role_name(spec.role), &mut s);
            s.depends_on.extend(self.prep.get(&node).cloned());
            s.depends_on.extend(self.ctx.infra_ready.iter().cloned());
            self.workers.push(id);
            self.steps.push(s);
        }
    }
}

/// Takes GPUs for one worker from `free` (per-node free counts) within `region`: whole free nodes for a
/// worker of ≥ 1 node, else the first node with room. Returns (first node, node count, CUDA devices).
fn allocate(
    free: &mut [u32],
    region: std::ops::Range<usize>,
    gpw: u32,
    gpn: u32,
) -> Option<(usize, u32, Option<String>)> {
    if gpw >= gpn {
        let span = (gpw / gpn) as usize;
        let start = region
            .clone()
            .find(|&k| k + span <= region.end && (k..k + span).all(|j| free[j] == gpn))?;
        free[start..start + span].fill(0);
        return Some((start, span as u32, None));
    }
    let k = region.clone().find(|&k| free[k] >= gpw)?;
    let first_dev = gpn - free[k];
    free[k] -= gpw;
    let devs: Vec<String> = (first_dev..first_dev + gpw)
        .map(|d| d.to_string())
        .collect();
    Some((k, 1, Some(devs.join(","))))
}
