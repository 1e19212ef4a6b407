//! srt-graph's generic DAG engine: the plan model, its validation and renderers, and the executor
//! (scheduler, policies, transports, journal, run directory). It knows nothing about SGLang or recipes.

pub mod agent;
pub mod error;
pub mod journal;
pub mod local;
pub mod plan;
pub mod policy;
pub mod process;
pub mod progress;
pub mod remote;
pub mod render;
pub mod resume;
pub mod rundir;
pub mod scheduler;
pub mod secret;
pub mod slurm;
pub mod slurm_watch;
pub mod ssh;
pub mod ssh_watch;
pub mod testing;
pub mod trace;
pub mod transport;

pub use error::PlanError;
pub use plan::{
    Container, Dag, Lifetime, Mpi, OnResume, Plan, Probe, Requirement, Step, StepFile, PLAN_FORMAT,
};
pub use policy::{Policy, RetryOn};
pub use scheduler::{execute, RunOptions, RunReport};
