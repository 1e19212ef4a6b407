//! The performance model's input, derived from a recipe — the one place that does it. `plan` shows it,
//! `predict` computes from it, and a simulated run hands it to the mock workers (as their latency
//! tables), so none of them reads the recipe for it a second time.
//!
//! What each backend's engine flags mean (tensor parallelism, attention DP, MoE EP, MTP, batch limits)
//! is asked of the backend (`Backend::engine_shape`); the rest — model, GPU, precision, version — is
//! the recipe's.

use crate::backends::engine_shape::EngineShape;
use crate::recipe::{Recipe, Role, RoleSpec};
use srt_graph_perf_model::aiconfigurator as aic;
use srt_graph_perf_model::{DeploymentModel, ModelInput};

/// Expected acceptance of each MTP draft token when the recipe gives none (DeepSeek-R1's MTP head as
/// published; the plan says that it is assumed).
pub const DEFAULT_ACCEPT_RATES: [f64; 4] = [0.8, 0.6, 0.45, 0.35];

/// Link the KV cache crosses from prefill to decode, GB/s per GPU: NVLink within an NVL72 rack, else
/// a 400 Gb/s InfiniBand NIC per GPU at the rate NIXL reaches (an estimate, named as such in the plan).
fn kv_link_gbps(system: &str) -> f64 {
    if system.starts_with("gb") {
        400.0
    } else {
        40.0
    }
}

/// srt-slurm's usual model aliases (`dsr1-fp8`, `dsfp4`) for the models they name.
fn alias(name: &str) -> Option<&'static str> {
    let n = name.to_ascii_lowercase();
    let table: [(&str, &str); 7] = [
        ("dsr1", "deepseek-ai/DeepSeek-R1"),
        ("dsfp", "deepseek-ai/DeepSeek-R1"),
        ("deepseek-r1", "deepseek-ai/DeepSeek-R1"),
        ("dsv3", "deepseek-ai/DeepSeek-V3"),
        ("dsv4-pro", "deepseek-ai/DeepSeek-V4-Pro"),
        ("deepseekv4", "deepseek-ai/DeepSeek-V4-Pro"),
        ("qwen32b", "Qwen/Qwen3-32B"),
    ];
    table
        .iter()
        .find(|(prefix, _)| n.starts_with(prefix))
        .map(|(_, id)| *id)
}

/// The model id aiconfigurator knows, from the served name or the model path (or its alias); or a
/// local model directory with a `config.json`, which aiconfigurator reads itself.
fn model_id(recipe: &Recipe, served: &str) -> Result<String, String> {
    let path = recipe.model_path.clone().unwrap_or_default();
    let path = path.strip_prefix("hf:").unwrap_or(&path).to_string();
    for candidate in [served, path.as_str()] {
        if let Some(id) = aic::match_model(candidate) {
            return Ok(id.to_string());
        }
    }
    let last = path.trim_end_matches('/').rsplit('/').next().unwrap_or("");
    if let Some(id) = alias(last) {
        return Ok(id.to_string());
    }
    if path.starts_with('/') && std::path::Path::new(&path).join("config.json").is_file() {
        return Ok(path);
    }
    Err(format!(
        "model `{}` (served as `{served}`) matches none of aiconfigurator {}'s model configs and is not a local directory with a config.json",
        if path.is_empty() { "(none)" } else { &path },
        aic::VERSION
    ))
}

/// `fp4`, `fp8`, `bf16`…: the engine's quantization flag, else `model.precision`, else the model name.
fn precision(recipe: &Recipe, shape: &EngineShape, model: &str) -> String {
    let from_text = |t: &str| -> Option<&'static str> {
        let t = t.to_ascii_lowercase();
        if t.contains("mxfp4") {
            Some("mxfp4")
        } else if t.contains("fp4") {
            Some("fp4")
        } else if t.contains("fp8") {
            Some("fp8")
        } else if t.contains("int4") || t.contains("awq") {
            Some("int4")
        } else if t.contains("bf16") || t.contains("fp16") {
            Some("bf16")
        } else {
            None
        }
    };
    shape
        .quantization
        .as_deref()
        .and_then(from_text)
        .or_else(|| recipe.precision.as_deref().and_then(from_text))
        .or_else(|| recipe.model_path.as_deref().and_then(from_text))
        .or_else(|| from_text(model))
        .unwrap_or("bf16")
        .to_string()
}

/// aiconfigurator's GEMM and MoE quant modes for a precision (DeepSeek's FP8 is block-scaled).
fn quant_modes(precision: &str, model: &str) -> (Option<String>, Option<String>) {
    let deepseek = model.to_ascii_lowercase().contains("deepseek");
    let (gemm, moe) = match precision {
        "fp4" => ("nvfp4", "nvfp4"),
        "fp8" if deepseek => ("fp8_block", "fp8_block"),
        "fp8" => ("fp8", "fp8"),
        "mxfp4" => ("bfloat16", "w4a16_mxfp4"),
        "int4" => ("int4_wo", "int4_wo"),
        _ => ("bfloat16", "bfloat16"),
    };
    (Some(gemm.into()), Some(moe.into()))
}

/// The backend version a container tag names (`lmsysorg/sglang:v0.5.8-cu130` → `0.5.8`), if any.
fn container_version(image: &str) -> Option<String> {
    let tag = image.rsplit(':').next().filter(|t| !t.contains('/'))?;
    let start = tag.find(|c: char| c.is_ascii_digit())?;
    let v: String = tag[start..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '.')
        .collect();
    v.contains('.').then_some(v)
}

/// The measured version to use and, when it is not the recipe's own, why.
fn backend_version(recipe: &Recipe, backend: &str) -> (Option<String>, Option<String>) {
    let measured = aic::measured_versions(backend);
    let default = measured.first().map(|v| v.to_string());
    let pinned = recipe.container.as_deref().and_then(container_version);
    match pinned {
        Some(v) if measured.contains(&v.as_str()) => (Some(v), None),
        Some(v) => (
            default.clone(),
            Some(format!(
                "the container pins {backend} {v}; aiconfigurator {} measured {}, so {} is used",
                aic::VERSION,
                measured.join(", "),
                default.as_deref().unwrap_or("its default")
            )),
        ),
        None => (default, None),
    }
}

/// A role's name in the performance model's files (`agg`, `prefill`, `decode`).
pub fn role_name(role: Role) -> &'static str {
    match role {
        Role::Prefill => "prefill",
        Role::Decode => "decode",
        Role::Aggregated => "agg",
    }
}

/// One role's input, or why aiconfigurator cannot model it.
fn role_input(
    recipe: &Recipe,
    spec: &RoleSpec,
    shape: EngineShape,
    base: &Base,
) -> Result<ModelInput, String> {
    let tp = shape.tp.max(1);
    let adp = shape.attention_dp.max(1);
    let pp = shape.pp.max(1);
    // aiconfigurator's attention width is per attention-DP rank: SGLang's and TRT-LLM's `tp` counts the
    // whole worker.
    if !tp.is_multiple_of(adp) {
        return Err(format!(
            "{}: tensor parallelism {tp} is not a multiple of attention DP {adp}",
            spec.role.as_str()
        ));
    }
    let attn_tp = tp / adp;
    let width = attn_tp * adp;
    let ep = shape.moe_ep.max(1);
    if !width.is_multiple_of(ep) {
        return Err(format!(
            "{}: expert parallelism {ep} does not divide the {width} GPUs of attention",
            spec.role.as_str()
        ));
    }
    let precision = precision(recipe, &shape, &base.model);
    let (gemm, moe) = quant_modes(&precision, &base.model);
    let kv = shape
        .kv_cache_dtype
        .as_deref()
        .filter(|d| d.to_ascii_lowercase().contains("fp8"))
        .map(|_| "fp8".to_string());
    let max_running = shape.max_running.map(|m| {
        if shape.max_running_per_rank {
            m
        } else {
            m.div_ceil(adp)
        }
    });
    let chunked = shape.chunked_prefill.filter(|c| *c > 0).unwrap_or(8192);
    Ok(ModelInput {
        role: role_name(spec.role).into(),
        model: base.model.clone(),
        system: base.system.into(),
        backend: base.backend.into(),
        backend_version: base.version.clone(),
        version_note: base.version_note.clone(),
        precision,
        gemm_quant_mode: gemm,
        moe_quant_mode: moe,
        kvcache_quant_mode: kv,
        fmha_quant_mode: None,
        tp: attn_tp,
        pp,
        attention_dp: adp,
        moe_tp: width / ep,
        moe_ep: ep,
        nextn: shape.nextn,
        nextn_accept_rates: DEFAULT_ACCEPT_RATES
            .iter()
            .copied()
            .take(shape.nextn as usize)
            .collect(),
        max_batch: max_running.unwrap_or(256).clamp(1, 4096),
        chunked_prefill: chunked,
        max_context: base.max_context.max(chunked),
        mem_fraction: shape.mem_fraction.unwrap_or(0.85).clamp(0.05, 1.0),
        workers: spec.workers,
        gpus_per_worker: spec.gpus_per_worker.max(1),
        kv_link_gbps: kv_link_gbps(base.system),
    })
}

/// What every role shares.
struct Base {
    model: String,
    system: &'static str,
    backend: &'static str,
    version: Option<String>,
    version_note: Option<String>,
    max_context: u32,
}

/// The deployment's model: every role's input, or the first reason none applies.
pub fn derive(recipe: &Recipe, served_model: &str) -> DeploymentModel {
    let unsupported = |reason: String| DeploymentModel::Unsupported { reason };
    let Some(backend) = crate::backends::find(recipe.backend) else {
        return unsupported(format!("backend `{}` is not registered", recipe.backend));
    };
    let Some(aic_backend) = backend.perf_model_backend() else {
        return unsupported(format!(
            "backend `{}` is itself a simulation",
            recipe.backend
        ));
    };
    if recipe.roles.is_empty() {
        return unsupported("the recipe has no workers".into());
    }
    let Some(gpu) = recipe.gpu_type.as_deref() else {
        return unsupported("`resources.gpu_type` is not set".into());
    };
    let Some(system) = aic::system_for(gpu) else {
        return unsupported(format!(
            "GPU `{gpu}` has no measurements in aiconfigurator {} (it has gb200, gb300, b200, b300, h100, h200)",
            aic::VERSION
        ));
    };
    let model = match model_id(recipe, served_model) {
        Ok(m) => m,
        Err(why) => return unsupported(why),
    };
    let (version, version_note) = backend_version(recipe, aic_backend);
    let max_context = recipe
        .benchmark
        .as_ref()
        .and_then(|b| b.points.iter().map(|p| p.isl + p.osl).max())
        .unwrap_or(2048)
        .max(1024);
    let base = Base {
        model,
        system,
        backend: aic_backend,
        version,
        version_note,
        max_context,
    };
    let mut roles = Vec::new();
    for spec in &recipe.roles {
        let input = backend
            .engine_shape(spec)
            .and_then(|shape| role_input(recipe, spec, shape, &base));
        match input {
            Ok(i) => roles.push(i),
            Err(why) => return unsupported(why),
        }
    }
    DeploymentModel::Modelled {
        engine: aic::engine(),
        roles,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{load_str, ClusterConfig};

    fn model_of(text: &str) -> DeploymentModel {
        let mut v = load_str(text, "t.yaml", None, &ClusterConfig::default()).expect("valid");
        let r = v.remove(0).recipe;
        let served = crate::backends::find(r.backend)
            .map(|b| b.served_model_name(&r))
            .unwrap_or_default();
        derive(&r, &served)
    }

    #[test]
    fn versions_from_container_tags() {
        assert_eq!(
            container_version("lmsysorg/sglang:v0.5.8-cu130").as_deref(),
            Some("0.5.8")
        );
        assert_eq!(
            container_version("nvcr.io/nvidia/ai-dynamo/tensorrtllm-runtime:1.3.0rc20").as_deref(),
            Some("1.3.0rc20")
        );
        assert_eq!(container_version("/images/sglang.sqsh"), None);
    }

    #[test]
    fn unknown_gpu_says_why_and_what_is_used_instead() {
        let m = model_of(
            "name: t\nmodel: {path: Qwen/Qwen3-8B, container: c, precision: bf16}\nresources: {gpu_type: a10g, gpus_per_node: 1, agg_nodes: 1, agg_workers: 1}\n",
        );
        let line = m.summary();
        assert!(line.contains("GPU `a10g` has no measurements"), "{line}");
        assert!(line.contains("fixed timing"), "{line}");
    }
}
