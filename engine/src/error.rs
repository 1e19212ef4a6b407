//! Typed errors of the engine.

use thiserror::Error;

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum PlanError {
    #[error("two steps have the id `{0}`; step ids must be unique")]
    DuplicateStep(String),
    #[error("step `{step}` depends on `{dependency}`, which is not a step of this plan")]
    MissingDependency { step: String, dependency: String },
    #[error("steps depend on each other in a cycle: {}", .0.join(" -> "))]
    Cycle(Vec<String>),
    #[error("step `{step}` is placed on node {node}, but the plan has {nodes} node(s)")]
    NodeOutOfRange {
        step: String,
        node: usize,
        nodes: usize,
    },
}
