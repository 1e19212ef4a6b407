//! What the timing model needs to know of one worker role. `steps` derives it from a recipe (the only
//! place that reads recipes); the plan, `predict` and the mock workers all take this value.

use serde::{Deserialize, Serialize};
use std::fmt;

/// One role (prefill, decode or aggregated) of a deployment, in aiconfigurator's terms.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelInput {
    /// `prefill`, `decode` or `agg`.
    pub role: String,
    /// aiconfigurator's model id (`Qwen/Qwen3-8B`) or a local directory with a `config.json`.
    pub model: String,
    /// aiconfigurator's system name (`gb300`, `h100_sxm`).
    pub system: String,
    /// `sglang`, `trtllm` or `vllm`.
    pub backend: String,
    /// The backend's version when the recipe pins one aiconfigurator measured; `None` = its default.
    pub backend_version: Option<String>,
    /// Where the version came from, or why the default is used (shown in the plan).
    pub version_note: Option<String>,
    /// The precision as the recipe says it (`fp4`, `fp8`, `bf16`).
    pub precision: String,
    pub gemm_quant_mode: Option<String>,
    pub moe_quant_mode: Option<String>,
    pub kvcache_quant_mode: Option<String>,
    pub fmha_quant_mode: Option<String>,
    /// Attention tensor parallelism (per attention-DP rank).
    pub tp: u32,
    pub pp: u32,
    /// Attention data-parallel ranks in one worker; each schedules its own batch.
    pub attention_dp: u32,
    pub moe_tp: u32,
    pub moe_ep: u32,
    /// MTP draft tokens per step (0 = none) and the acceptance rate of each.
    pub nextn: u32,
    pub nextn_accept_rates: Vec<f64>,
    /// Requests one attention-DP rank runs at once.
    pub max_batch: u32,
    /// Prompt tokens one prefill step takes at most.
    pub chunked_prefill: u32,
    /// The longest context the table must cover (ISL + OSL of the benchmark, at least).
    pub max_context: u32,
    /// Fraction of GPU memory the engine gives to weights + KV cache.
    pub mem_fraction: f64,
    /// Worker processes of this role.
    pub workers: u32,
    /// GPUs one worker uses (`tp × attention-DP × pp`, as srt-slurm counts them).
    pub gpus_per_worker: u32,
    /// Link the KV cache crosses from prefill to decode, GB/s per GPU (an estimate by system).
    pub kv_link_gbps: f64,
}

impl ModelInput {
    /// Tokens one decode step yields per request: 1, plus the expected accepted MTP drafts.
    pub fn tokens_per_step(&self) -> f64 {
        let mut expected = 1.0;
        let mut p = 1.0;
        for rate in self.nextn_accept_rates.iter().take(self.nextn as usize) {
            p *= rate.clamp(0.0, 1.0);
            expected += p;
        }
        expected
    }

    /// The input a table is computed for: its grids' ends rounded up to powers of two, so that the
    /// configurations of a sweep (other batch limits, other sequence lengths) share one table.
    pub fn for_table(&self) -> ModelInput {
        let mut t = self.clone();
        t.max_batch = self.max_batch.max(1).next_power_of_two();
        t.max_context = self.max_context.max(1).next_power_of_two();
        t.chunked_prefill = self.chunked_prefill.max(1).next_power_of_two();
        t
    }

    /// The key a latency table is cached under: everything the table depends on.
    pub fn table_key(&self) -> String {
        use sha2::Digest;
        let mut key = self.for_table();
        // Not inputs of the table (the scheduler and `predict` use them).
        key.workers = 0;
        key.gpus_per_worker = 0;
        key.version_note = None;
        key.nextn_accept_rates.clear();
        key.kv_link_gbps = 0.0;
        let text = serde_json::to_string(&key).unwrap_or_default();
        let digest = sha2::Sha256::digest(text.as_bytes());
        digest.iter().take(10).map(|b| format!("{b:02x}")).collect()
    }
}

/// `decode tp1 adp32 ep32 next-n 3` — the role and its parallelism, as `plan` shows it.
impl fmt::Display for ModelInput {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} tp{}", self.role, self.tp)?;
        if self.pp > 1 {
            write!(f, " pp{}", self.pp)?;
        }
        if self.attention_dp > 1 {
            write!(f, " adp{}", self.attention_dp)?;
        }
        if self.moe_ep > 1 {
            write!(f, " ep{}", self.moe_ep)?;
        }
        if self.moe_tp > 1 && self.moe_tp != self.tp {
            write!(f, " moe-tp{}", self.moe_tp)?;
        }
        if self.nextn > 0 {
            write!(f, " next-n {}", self.nextn)?;
        }
        write!(f, " batch {}", self.max_batch)
    }
}

/// The whole deployment's model, or why there is none.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum DeploymentModel {
    /// Every role has a model input.
    Modelled {
        engine: EngineId,
        roles: Vec<ModelInput>,
    },
    /// No model applies: the reason, and the timing used instead.
    Unsupported { reason: String },
}

/// Which performance model computes the tables (behind one interface; see `aiconfigurator`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EngineId {
    pub name: String,
    pub version: String,
}

impl DeploymentModel {
    /// The one `plan` line: `performance model: aiconfigurator 0.12.0, gb300 trtllm 1.3.0rc20, DeepSeek-R1 fp4, prefill … ; decode …`.
    pub fn summary(&self) -> String {
        match self {
            DeploymentModel::Unsupported { reason } => format!(
                "performance model: none ({reason}); mock workers use the fixed timing (20 ms to the first token, 500 tokens/s per request), which says nothing about real hardware"
            ),
            DeploymentModel::Modelled { engine, roles, .. } => {
                let Some(first) = roles.first() else {
                    return "performance model: none (no worker roles)".into();
                };
                let version = first.backend_version.as_deref().unwrap_or("default");
                let model = first.model.rsplit('/').next().unwrap_or(&first.model);
                let per_role: Vec<String> = roles.iter().map(ToString::to_string).collect();
                format!(
                    "performance model: {} {}, {} {} {}, {} {}, {}",
                    engine.name.trim_end_matches("-core"),
                    engine.version,
                    first.system,
                    first.backend,
                    version,
                    model,
                    first.precision,
                    per_role.join("; ")
                )
            }
        }
    }
}
