//! Inference backends (`backend.type`), one module each, registered in `ALL`. A backend owns its keys
//! under `backend:`, how a role's engine configuration is read and checked, the ports its workers listen
//! on, and the command line of a worker process — or of its stand-in under `--mock-workers`.

pub mod sglang;

use crate::build::{Ctx, StandIn, WorkerProcess};
use crate::diag::Reader;
use crate::recipe::RoleSpec;
use crate::yaml::Node;
use srt_graph_engine::Step;

pub trait Backend: Sync {
    /// The `backend.type` value.
    fn name(&self) -> &'static str;
    /// Keys under `backend:` this backend reads, beyond those every backend shares.
    fn keys(&self) -> &'static [&'static str];
    /// srt-slurm keys under `backend:` it accepts without acting on them.
    fn ignored_keys(&self) -> &'static [&'static str] {
        &[]
    }
    /// The key under `backend:` that holds each role's engine configuration.
    fn config_key(&self) -> &'static str;
    /// One role's engine configuration (`path` is its field path), in the order written.
    fn role_config(
        &self,
        section: Option<&Node>,
        path: &str,
        r: &mut Reader,
    ) -> Vec<(String, Node)>;
    /// Checks across roles, once all are read.
    fn check_roles(&self, _roles: &[RoleSpec], _r: &mut Reader) {}
    /// Ports of the first worker of a role on a node (the k-th adds k × `PORT_STRIDE`).
    fn ports(&self, spec: &RoleSpec) -> WorkerPorts;
    /// What stands in for the engine under `--mock-workers`, by whether the deployment runs on Dynamo.
    fn stand_in(&self, dynamo: bool) -> StandIn;
    /// The step of one worker process; `None` when the rank is no process of its own (a stand-in that
    /// simulates a whole multi-node worker on its leader).
    fn worker(&self, ctx: &Ctx<'_>, w: &WorkerProcess<'_>) -> Option<Step>;
}

/// Where a worker listens: its HTTP port, and the disaggregation bootstrap port it names, if any.
pub struct WorkerPorts {
    pub http: u16,
    pub bootstrap: Option<u16>,
}

/// Every backend: one line per module.
pub const ALL: &[&dyn Backend] = &[&sglang::SGLang];

pub fn find(name: &str) -> Option<&'static dyn Backend> {
    ALL.iter().copied().find(|b| b.name() == name)
}

pub fn names() -> Vec<&'static str> {
    ALL.iter().map(|b| b.name()).collect()
}
