//! What srt-graph runs on the nodes of a job, beside the plan it compiled: the GPU-less SGLang worker
//! stand-in, the load generator (sa-bench's method), the health gate, the weightless model writer for
//! Dynamo's mocker, and token counting. Kept apart from the compiler so that planning never builds an
//! HTTP stack or a tokenizer.

/// A line to this process's standard error that never fails the process. A service's log stream is a pipe
/// to the orchestrator, which may die and be replaced by a `resume` that adopts the service: `eprintln!`
/// would then panic on the broken pipe and take a healthy service down with it.
macro_rules! log_line {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}

pub mod chat_template;
pub mod fingerprint;
pub mod health;
pub mod identity;
pub mod loadgen;
pub mod mock_model;
pub mod mock_worker;
pub mod perf_table;
pub mod power;
pub mod profile;
pub mod scrape;
pub mod sys;
pub mod tokens;
