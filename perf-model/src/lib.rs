//! srt-graph's timing model: what a role is in the performance model's terms (`input`), the latency
//! tables it computes (`table`, via `aiconfigurator`), the batch scheduler the mock worker and
//! `predict` share (`scheduler`), and predictions of a whole deployment (`predict`).

pub mod aiconfigurator;
pub mod input;
pub mod predict;
pub mod scheduler;
pub mod table;
#[doc(hidden)]
pub mod testing;

pub use input::{DeploymentModel, EngineId, ModelInput};
pub use table::LatencyTable;

#[derive(Debug, thiserror::Error)]
pub enum PerfModelError {
    #[error("aiconfigurator-core cannot be used from {python}: {detail}\n  fix: delete that venv and run again (it is reinstalled from PyPI), or `{python} -m pip install --force-reinstall {req}`", req = aiconfigurator::REQUIREMENT)]
    Install { python: String, detail: String },
    #[error("latency table: {0}")]
    Table(String),
}
