//! What a role's engine flags say about its shape, in the terms the performance model takes; each
//! backend module reads its own flags into it (`Backend::engine_shape`).

use crate::yaml::Node;

/// What a role's engine flags say about its shape, as the backend reads them.
#[derive(Debug, Clone, Default)]
pub struct EngineShape {
    /// GPUs of tensor parallelism across the worker (SGLang's and TRT-LLM's `tp`, attention DP included).
    pub tp: u32,
    /// Attention data-parallel ranks (1 = none).
    pub attention_dp: u32,
    pub moe_ep: u32,
    pub pp: u32,
    pub nextn: u32,
    /// Running requests of the whole worker (divided over its attention-DP ranks), if set.
    pub max_running: Option<u32>,
    /// Whether `max_running` already counts per attention-DP rank (TRT-LLM's `max_batch_size`).
    pub max_running_per_rank: bool,
    pub chunked_prefill: Option<u32>,
    pub mem_fraction: Option<f64>,
    /// The engine's `quantization` flag, if any (`fp8`, `modelopt_fp4`).
    pub quantization: Option<String>,
    pub kv_cache_dtype: Option<String>,
}

/// A recipe's flag value as a count (`8`, `"8"`); `None` when absent or not a whole number.
pub fn count(node: Option<&Node>) -> Option<u32> {
    node?.scalar_text()?.trim().parse().ok()
}

/// A recipe's flag as a switch: present with no value, or `true`.
pub fn switch(node: Option<&Node>) -> bool {
    node.is_some_and(|n| {
        matches!(&n.value, crate::yaml::Value::Null)
            || n.scalar_text()
                .is_some_and(|t| t.eq_ignore_ascii_case("true"))
    })
}

pub fn fraction(node: Option<&Node>) -> Option<f64> {
    node?.scalar_text()?.trim().parse().ok()
}
