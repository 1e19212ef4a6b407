//! The performance model behind srt-graph's simulation: aiconfigurator-core (NVIDIA, Apache-2.0, PyPI),
//! run in a Python environment of its own, computes each role's latency table once.
//!
//! Why aiconfigurator-core and not aisimulate: aisimulate 0.13.0 on PyPI is a placeholder whose install
//! fetches the real wheel from pypi.nvidia.com, which a cluster's login node (and this CI) often cannot
//! reach; aiconfigurator-core installs from PyPI alone. Everything here is behind `compute_tables`, so
//! another engine with the same two tables could replace it.

use crate::input::{EngineId, ModelInput};
use crate::table::LatencyTable;
use crate::PerfModelError;
use serde_json::Value;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The PyPI requirement, pinned: tables are cached under its version.
pub const REQUIREMENT: &str = "aiconfigurator-core==0.12.0";
pub const NAME: &str = "aiconfigurator-core";
pub const VERSION: &str = "0.12.0";

pub fn engine() -> EngineId {
    EngineId {
        name: NAME.into(),
        version: VERSION.into(),
    }
}

/// The venv (under the cache) that holds it.
pub fn venv_dir(cache: &Path) -> PathBuf {
    cache.join(format!("venv-aiconfigurator-{VERSION}"))
}

const SCRIPT: &str = include_str!("aiconfigurator_table.py");

/// The GPUs it has measured kernels for, by srt-slurm's `gpu_type` spelling (lower-cased, the part
/// before any `-`/`_` suffix).
pub fn system_for(gpu_type: &str) -> Option<&'static str> {
    let g = gpu_type.to_ascii_lowercase();
    let g = g.trim();
    let table: [(&str, &str); 6] = [
        ("gb300", "gb300"),
        ("gb200", "gb200"),
        ("b300", "b300_sxm"),
        ("b200", "b200_sxm"),
        ("h200", "h200_sxm"),
        ("h100", "h100_sxm"),
    ];
    table
        .iter()
        .find(|(prefix, _)| g.starts_with(prefix))
        .map(|(_, s)| *s)
}

/// Backend versions it has measurements for, the default (its `current` slot) first.
pub fn measured_versions(backend: &str) -> &'static [&'static str] {
    match backend {
        "sglang" => &["0.5.14", "0.5.16"],
        "trtllm" => &["1.3.0rc20", "1.3.0rc23"],
        "vllm" => &["0.24.0", "0.27.0"],
        _ => &[],
    }
}

/// Model ids of its bundled model configs (0.12.0).
pub const MODELS: &[&str] = &[
    "MiniMaxAI/MiniMax-M2.5",
    "MiniMaxAI/MiniMax-M2.7",
    "MiniMaxAI/MiniMax-M3",
    "Qwen/Qwen3-0.6B",
    "Qwen/Qwen3-1.7B",
    "Qwen/Qwen3-235B-A22B-FP8",
    "Qwen/Qwen3-235B-A22B",
    "Qwen/Qwen3-30B-A3B-FP8",
    "Qwen/Qwen3-30B-A3B",
    "Qwen/Qwen3-32B-FP8-Static-PerTensor",
    "Qwen/Qwen3-32B-FP8",
    "Qwen/Qwen3-32B",
    "Qwen/Qwen3-8B",
    "Qwen/Qwen3-Coder-480B-A35B-Instruct",
    "Qwen/Qwen3-VL-235B-A22B-Instruct",
    "Qwen/Qwen3-VL-2B-Instruct",
    "Qwen/Qwen3-VL-30B-A3B-Instruct",
    "Qwen/Qwen3-VL-32B-Instruct",
    "Qwen/Qwen3-VL-32B-Thinking",
    "Qwen/Qwen3-VL-4B-Instruct",
    "Qwen/Qwen3-VL-8B-Instruct",
    "Qwen/Qwen3.5-122B-A10B",
    "Qwen/Qwen3.5-27B",
    "Qwen/Qwen3.5-35B-A3B",
    "Qwen/Qwen3.5-397B-A17B",
    "XiaomiMiMo/MiMo-7B-Base",
    "XiaomiMiMo/MiMo-V2-Flash",
    "deepseek-ai/DeepSeek-R1",
    "deepseek-ai/DeepSeek-V3.2",
    "deepseek-ai/DeepSeek-V3",
    "deepseek-ai/DeepSeek-V4-Flash",
    "deepseek-ai/DeepSeek-V4-Pro",
    "google/gemma-4-26B-A4B",
    "meta-llama/Llama-4-Maverick-17B-128E-Instruct",
    "meta-llama/Llama-4-Scout-17B-16E-Instruct",
    "meta-llama/Meta-Llama-3.1-405B",
    "meta-llama/Meta-Llama-3.1-70B",
    "meta-llama/Meta-Llama-3.1-8B",
    "mistralai/Mixtral-8x22B-v0.1",
    "mistralai/Mixtral-8x7B-v0.1",
    "moonshotai/Kimi-K2-Instruct",
    "moonshotai/Kimi-K2.5",
    "moonshotai/Kimi-K3",
    "nvidia/DeepSeek-V3.1-NVFP4",
    "nvidia/DeepSeek-V3.2-NVFP4",
    "nvidia/DeepSeek-V4-Flash-NVFP4",
    "nvidia/DeepSeek-V4-Pro-NVFP4",
    "nvidia/GLM-5-NVFP4",
    "nvidia/GLM-5.1-NVFP4",
    "nvidia/GLM-5.2-NVFP4",
    "nvidia/GLM-5.3-NVFP4",
    "nvidia/Gemma-4-26B-A4B-NVFP4",
    "nvidia/Gemma-4-31B-IT-NVFP4",
    "nvidia/Kimi-K2.5-NVFP4",
    "nvidia/Kimi-K2.6-NVFP4",
    "nvidia/Kimi-K2.7-Code-NVFP4",
    "nvidia/Llama-3.1-70B-Instruct-FP8",
    "nvidia/Llama-3_3-Nemotron-Super-49B-v1",
    "nvidia/MiniMax-M2.5-NVFP4",
    "nvidia/MiniMax-M2.7-NVFP4",
    "nvidia/MiniMax-M3-NVFP4",
    "nvidia/NVIDIA-Nemotron-3-Nano-30B-A3B-BF16",
    "nvidia/NVIDIA-Nemotron-3-Nano-30B-A3B-NVFP4",
    "nvidia/NVIDIA-Nemotron-3-Super-120B-A12B-FP8",
    "nvidia/NVIDIA-Nemotron-3-Super-120B-A12B-NVFP4",
    "nvidia/NVIDIA-Nemotron-3-Ultra-550B-A55B-BF16",
    "nvidia/NVIDIA-Nemotron-3-Ultra-550B-A55B-FP8",
    "nvidia/NVIDIA-Nemotron-3-Ultra-550B-A55B-NVFP4",
    "nvidia/NVIDIA-Nemotron-3.5-Lightning-30B-A3B-NVFP4",
    "nvidia/Nemotron-H-56B-Base-8K",
    "nvidia/Qwen3-235B-A22B-NVFP4",
    "nvidia/Qwen3.5-122B-A10B-NVFP4",
    "nvidia/Qwen3.5-397B-A17B-NVFP4",
    "nvidia/Qwen3.6-27B-NVFP4",
    "nvidia/Qwen3.6-35B-A3B-NVFP4",
    "openai/gpt-oss-120b",
    "openai/gpt-oss-20b",
    "sgl-project/DeepSeek-V4-Flash-FP8",
    "sgl-project/DeepSeek-V4-Pro-FP8",
    "stepfun-ai/Step-3.7-Flash-FP8",
    "stepfun-ai/Step-3.7-Flash",
    "zai-org/GLM-5-FP8",
    "zai-org/GLM-5.1-FP8",
    "zai-org/GLM-5.1",
    "zai-org/GLM-5.2-FP8",
    "zai-org/GLM-5.2",
    "zai-org/GLM-5.3-FP8",
    "zai-org/GLM-5.3",
    "zai-org/GLM-5",
];

/// Matches a model path or served name (`/models/DeepSeek-R1-0528`, `nvidia/DeepSeek-R1-FP4`,
/// `qwen3-8b`) to a bundled config: the longest id whose name starts the path's last component, with
/// case and punctuation ignored.
pub fn match_model(path_or_name: &str) -> Option<&'static str> {
    let norm = |s: &str| -> String {
        s.chars()
            .filter(char::is_ascii_alphanumeric)
            .map(|c| c.to_ascii_lowercase())
            .collect()
    };
    let last = path_or_name.trim_end_matches('/').rsplit('/').next()?;
    let wanted = norm(last);
    if wanted.is_empty() {
        return None;
    }
    MODELS
        .iter()
        .filter(|id| {
            let name = norm(id.rsplit('/').next().unwrap_or(id));
            wanted.starts_with(&name) && !name.is_empty()
        })
        // Prefer the original publisher's config over a quantized re-release of the same name.
        .max_by_key(|id| {
            let name = norm(id.rsplit('/').next().unwrap_or(id));
            (name.len(), !id.starts_with("nvidia/"))
        })
        .copied()
}

/// Checks that `python` can import aiconfigurator-core, with a message that says how to fix it.
pub fn check_install(python: &Path) -> Result<(), PerfModelError> {
    let out = Command::new(python)
        .args(["-c", "import aiconfigurator_core, importlib.metadata as m; print(m.version('aiconfigurator-core'))"])
        .output()
        .map_err(|e| PerfModelError::Install {
            python: python.display().to_string(),
            detail: e.to_string(),
        })?;
    let version = String::from_utf8_lossy(&out.stdout).trim().to_string();
    if !out.status.success() || version != VERSION {
        let detail = if out.status.success() {
            format!("found version {version}, need {VERSION}")
        } else {
            last_line(&out.stderr)
        };
        return Err(PerfModelError::Install {
            python: python.display().to_string(),
            detail,
        });
    }
    Ok(())
}

fn last_line(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes)
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("no output")
        .to_string()
}

/// Per input, its table or why aiconfigurator cannot model it. Tables already in `cache` are read from
/// there; the rest are computed by one `python` process and stored.
pub fn compute_tables(
    python: &Path,
    inputs: &[ModelInput],
    cache: Option<&Path>,
) -> Result<Vec<Result<LatencyTable, String>>, PerfModelError> {
    let cached = |i: &ModelInput| -> Option<LatencyTable> {
        let path = cache?.join(format!("{}.json", i.table_key()));
        let text = std::fs::read_to_string(path).ok()?;
        let mut t: LatencyTable = serde_json::from_str(&text).ok()?;
        t.validate().ok()?;
        // The scheduler's own settings (workers, limits, accept rates) come from the caller's input; the
        // precisions the measurements used, from the table.
        let stored = std::mem::replace(&mut t.input, i.clone());
        t.input.gemm_quant_mode = stored.gemm_quant_mode;
        t.input.moe_quant_mode = stored.moe_quant_mode;
        t.input.kvcache_quant_mode = stored.kvcache_quant_mode;
        t.input.fmha_quant_mode = stored.fmha_quant_mode;
        Some(t)
    };
    let mut out: Vec<Option<Result<LatencyTable, String>>> =
        inputs.iter().map(|i| cached(i).map(Ok)).collect();
    let missing: Vec<usize> = (0..inputs.len()).filter(|&k| out[k].is_none()).collect();
    // One computation per distinct table (a sweep's variants often share them).
    let mut keys: Vec<String> = Vec::new();
    let mut todo: Vec<ModelInput> = Vec::new();
    for &k in &missing {
        let key = inputs[k].table_key();
        if !keys.contains(&key) {
            keys.push(key);
            todo.push(inputs[k].for_table());
        }
    }
    if !todo.is_empty() {
        let answers = run_script(python, &todo)?;
        for (key, answer) in keys.iter().zip(&answers) {
            if let (Some(dir), Ok(t)) = (cache, to_table(&todo[0], answer)) {
                let _ = std::fs::create_dir_all(dir);
                if let Ok(text) = serde_json::to_string(&t) {
                    // Written whole then renamed, so that a concurrent reader never sees half a table.
                    let tmp = dir.join(format!(".{key}.{}.tmp", std::process::id()));
                    if std::fs::write(&tmp, text).is_ok() {
                        let _ = std::fs::rename(&tmp, dir.join(format!("{key}.json")));
                    }
                }
            }
        }
        for &k in &missing {
            let key = inputs[k].table_key();
            let at = keys.iter().position(|x| *x == key).unwrap_or(0);
            out[k] = Some(to_table(&inputs[k], &answers[at]));
        }
    }
    Ok(out
        .into_iter()
        .map(|t| t.unwrap_or_else(|| Err("not computed".into())))
        .collect())
}

fn run_script(python: &Path, inputs: &[ModelInput]) -> Result<Vec<Value>, PerfModelError> {
    let install_error = |detail: String| PerfModelError::Install {
        python: python.display().to_string(),
        detail,
    };
    let mut child = Command::new(python)
        .args(["-c", SCRIPT])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| install_error(e.to_string()))?;
    let body = serde_json::to_vec(inputs).map_err(|e| PerfModelError::Table(e.to_string()))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(&body)
            .map_err(|e| install_error(format!("writing to the model: {e}")))?;
    }
    let out = child
        .wait_with_output()
        .map_err(|e| install_error(e.to_string()))?;
    match out.status.code() {
        Some(0) => {}
        Some(4) => return Err(install_error(last_line(&out.stderr))),
        _ => {
            return Err(PerfModelError::Table(format!(
                "the aiconfigurator helper failed ({}): {}",
                out.status,
                last_line(&out.stderr)
            )))
        }
    }
    let answers: Vec<Value> = serde_json::from_slice(&out.stdout)
        .map_err(|e| PerfModelError::Table(format!("the helper's answer is not JSON: {e}")))?;
    if answers.len() != inputs.len() {
        return Err(PerfModelError::Table(format!(
            "the helper answered {} of {} inputs",
            answers.len(),
            inputs.len()
        )));
    }
    Ok(answers)
}

fn to_table(input: &ModelInput, v: &Value) -> Result<LatencyTable, String> {
    if let Some(why) = v.get("unsupported").and_then(Value::as_str) {
        return Err(why.to_string());
    }
    let field = |k: &str| v.get(k).cloned().unwrap_or(Value::Null);
    let parse = |k: &str| -> Result<Value, String> {
        let f = field(k);
        if f.is_null() {
            Err(format!("the helper's table has no `{k}`"))
        } else {
            Ok(f)
        }
    };
    let kv = field("kv_estimate");
    let quant = field("quant");
    let mut input = input.clone();
    // Record the precisions the measurements really used (the helper may fall back, e.g. to bf16
    // attention where fp8 attention kernels were not measured).
    for key in [
        "gemm_quant_mode",
        "moe_quant_mode",
        "kvcache_quant_mode",
        "fmha_quant_mode",
    ] {
        if let Some(q) = quant.get(key).and_then(Value::as_str) {
            let slot = match key {
                "gemm_quant_mode" => &mut input.gemm_quant_mode,
                "moe_quant_mode" => &mut input.moe_quant_mode,
                "kvcache_quant_mode" => &mut input.kvcache_quant_mode,
                _ => &mut input.fmha_quant_mode,
            };
            *slot = Some(q.to_string());
        }
    }
    let grid = |k: &str| -> Result<Vec<u32>, String> {
        serde_json::from_value(parse(k)?).map_err(|e| format!("`{k}`: {e}"))
    };
    let rows = |k: &str| -> Result<Vec<Vec<f64>>, String> {
        serde_json::from_value(parse(k)?).map_err(|e| format!("`{k}`: {e}"))
    };
    let table = LatencyTable {
        engine: engine(),
        backend_version: field("backend_version").as_str().map(str::to_string),
        ctx_grid: grid("ctx_grid")?,
        prefill_batch_grid: grid("prefill_batch_grid")?,
        prefill_ms: rows("prefill_ms")?,
        decode_batch_grid: grid("decode_batch_grid")?,
        decode_ms: rows("decode_ms")?,
        kv_capacity_tokens: kv.get("total_kv_size_tokens").and_then(Value::as_u64),
        kv_bytes_per_token: kv.get("kv_size_per_token_bytes").and_then(Value::as_u64),
        kv_note: kv.get("error").and_then(Value::as_str).map(str::to_string),
        input,
    };
    table.validate()?;
    Ok(table)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recipe_spellings_match_bundled_models() {
        assert_eq!(
            match_model("/models/DeepSeek-R1-0528"),
            Some("deepseek-ai/DeepSeek-R1")
        );
        assert_eq!(
            match_model("nvidia/DeepSeek-R1-FP4"),
            Some("deepseek-ai/DeepSeek-R1")
        );
        assert_eq!(
            match_model("Qwen/Qwen3-32B-FP8"),
            Some("Qwen/Qwen3-32B-FP8")
        );
        assert_eq!(match_model("qwen3-8b"), Some("Qwen/Qwen3-8B"));
        assert_eq!(match_model("/models/dsv3"), None);
        assert_eq!(system_for("GB300"), Some("gb300"));
        assert_eq!(system_for("h100"), Some("h100_sxm"));
        assert_eq!(system_for("a10g"), None);
    }
}
