//! Tables for tests: the same latency whatever the shape.

use crate::input::{EngineId, ModelInput};
use crate::table::LatencyTable;

pub fn input() -> ModelInput {
    ModelInput {
        role: "agg".into(),
        model: "Qwen/Qwen3-8B".into(),
        system: "h100_sxm".into(),
        backend: "sglang".into(),
        backend_version: None,
        version_note: None,
        precision: "bf16".into(),
        gemm_quant_mode: None,
        moe_quant_mode: None,
        kvcache_quant_mode: None,
        fmha_quant_mode: None,
        tp: 1,
        pp: 1,
        attention_dp: 1,
        moe_tp: 1,
        moe_ep: 1,
        nextn: 0,
        nextn_accept_rates: vec![],
        max_batch: 64,
        chunked_prefill: 8192,
        max_context: 4096,
        mem_fraction: 0.85,
        workers: 1,
        gpus_per_worker: 1,
        kv_link_gbps: 50.0,
    }
}

/// Every prefill pass takes `prefill_ms`, every decode step `decode_ms`.
pub fn flat_table(prefill_ms: f64, decode_ms: f64) -> LatencyTable {
    LatencyTable {
        input: input(),
        engine: EngineId {
            name: "test".into(),
            version: "0".into(),
        },
        backend_version: None,
        ctx_grid: vec![1, 100_000],
        prefill_batch_grid: vec![1, 1024],
        prefill_ms: vec![vec![prefill_ms; 2]; 2],
        decode_batch_grid: vec![1, 1024],
        decode_ms: vec![vec![decode_ms; 2]; 2],
        kv_capacity_tokens: None,
        kv_bytes_per_token: None,
        kv_note: None,
    }
}
