//! What srt-graph runs on the nodes of a job, beside the plan it compiled: the GPU-less SGLang worker
//! stand-in, the load generator (sa-bench's method), the health gate, the weightless model writer for
//! Dynamo's mocker, and token counting. Kept apart from the compiler so that planning never builds an
//! HTTP stack or a tokenizer.

pub mod fingerprint;
pub mod health;
pub mod loadgen;
pub mod mock_model;
pub mod mock_worker;
pub mod sys;
pub mod tokens;
