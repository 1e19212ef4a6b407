//! Every field of srtctl's recipe schema (srt-slurm c88ef731: `src/srtctl/core/schema.py` and
//! `src/srtctl/backends/*.py`) is accepted: acted on, or reported as ignored — never "unknown key".
//! The table below is that schema's fields, section by section.

use srt_graph_steps::{load_str, ClusterConfig};

/// `(section, backend type for backend fields, fields)`.
const SCHEMA: &[(&str, Option<&str>, &[&str])] = &[
    (
        "",
        None,
        &[
            "name",
            "model",
            "resources",
            "slurm",
            "backend",
            "frontend",
            "dynamo",
            "benchmark",
            "profiling",
            "output",
            "health_check",
            "infra",
            "observability",
            "telemetry",
            "environment",
            "container_mounts",
            "extra_mount",
            "srun_options",
            "sbatch_directives",
            "enable_config_dump",
            "setup_script",
            "identity",
            "reporting",
        ],
    ),
    (
        "model",
        None,
        &["path", "container", "precision", "stage_dir"],
    ),
    (
        "resources",
        None,
        &[
            "gpu_type",
            "gpus_per_node",
            "prefill_nodes",
            "decode_nodes",
            "prefill_workers",
            "decode_workers",
            "agg_nodes",
            "agg_workers",
            "spread_workers",
            "het_jobs",
            "gpus_per_prefill",
            "gpus_per_decode",
            "gpus_per_agg",
        ],
    ),
    ("slurm", None, &["account", "partition", "time_limit"]),
    (
        "benchmark",
        None,
        &[
            "type",
            "isl",
            "osl",
            "concurrencies",
            "req_rate",
            "client_placement",
            "client_dedicated_node",
            "colocate_with_frontend",
            "sweep",
            "num_examples",
            "max_tokens",
            "repeat",
            "num_threads",
            "max_context_length",
            "categories",
            "num_shots",
            "temperature",
            "top_p",
            "top_k",
            "num_requests",
            "concurrency",
            "prefix_ratios",
            "mooncake_workload",
            "ttft_threshold_ms",
            "itl_threshold_ms",
            "random_range_ratio",
            "num_prompts_mult",
            "num_warmup_mult",
            "dataset_name",
            "dataset_path",
            "trace_file",
            "custom_tokenizer",
            "use_chat_template",
            "reuse_http_connections",
            "command",
            "container_image",
            "env",
            "aiperf_package",
            "aiperf_args",
            "export_node_metrics",
            "slow_down_sleep_time",
            "slow_down_wait_time",
        ],
    ),
    (
        "frontend",
        None,
        &[
            "type",
            "enable_multiple_frontends",
            "num_additional_frontends",
            "nginx_container",
            "nginx_raise_ulimit",
            "nginx_session_affinity",
            "nginx_session_affinity_header",
            "nginx_keepalive_timeout",
            "args",
            "env",
            "ctx_router",
            "gen_router",
            "server_config_extra",
            "orchestrator_placement",
            "dedicated_node",
        ],
    ),
    (
        "dynamo",
        None,
        &[
            "install",
            "version",
            "hash",
            "top_of_tree",
            "wheel",
            "request_plane",
            "event_plane",
            "cargo_patches",
        ],
    ),
    ("health_check", None, &["max_attempts", "interval_seconds"]),
    (
        "infra",
        None,
        &["etcd_nats_dedicated_node", "nats_max_payload_mb"],
    ),
    (
        "backend",
        Some("sglang"),
        &[
            "type",
            "gpu_type",
            "prefill_environment",
            "decode_environment",
            "aggregated_environment",
            "sglang_config",
            "kv_events_config",
            "mooncake_kv_store",
        ],
    ),
    (
        "backend",
        Some("trtllm"),
        &[
            "type",
            "prefill_environment",
            "decode_environment",
            "aggregated_environment",
            "trtllm_config",
            "publish_events_and_metrics",
            "sequential_node_start",
            "numa_memory_bind",
        ],
    ),
    (
        "backend",
        Some("vllm"),
        &[
            "type",
            "prefill_environment",
            "decode_environment",
            "aggregated_environment",
            "vllm_config",
            "set_cuda_visible_devices",
            "connector",
            "mooncake_kv_store",
            "kv_events_config",
            "allow_prefill_decode_colocation",
            "allow_prefill_decode_colocation_across_nodes",
            "dp_launch_mode",
        ],
    ),
    (
        "backend",
        Some("mocker"),
        &[
            "type",
            "engine_type",
            "speedup_ratio",
            "decode_speedup_ratio",
            "num_gpu_blocks_override",
            "max_num_seqs",
            "max_num_batched_tokens",
            "block_size",
            "data_parallel_size",
            "num_workers",
            "startup_time",
            "kv_transfer_bandwidth",
            "kv_cache_dtype",
            "enable_prefix_caching",
            "enable_chunked_prefill",
            "preemption_mode",
            "prefill_environment",
            "decode_environment",
            "aggregated_environment",
            "mocker_config",
        ],
    ),
];

const BASE: &str =
    "name: s\nresources: {gpu_type: h100, gpus_per_node: 8, agg_nodes: 1, agg_workers: 1}\n";

/// A recipe with `field` (null) in `section`; the rest minimal.
fn recipe_with(section: &str, backend: Option<&str>, field: &str) -> String {
    if section.is_empty() {
        return format!("{BASE}{field}: null\n");
    }
    let backend_type = backend.unwrap_or("sglang");
    let frontend = if backend_type == "sglang" {
        "sglang"
    } else {
        "dynamo"
    };
    let mut text = format!("{BASE}frontend: {{type: {frontend}}}\n");
    if section == "backend" {
        if field == "type" {
            text.push_str(&format!("backend:\n  type: {backend_type}\n"));
        } else {
            text.push_str(&format!(
                "backend:\n  type: {backend_type}\n  {field}: null\n"
            ));
        }
    } else if section == "resources" {
        text = format!("name: s\nresources: {{gpu_type: h100, gpus_per_node: 8, agg_nodes: 1, agg_workers: 1, {field}: null}}\n");
        if field.starts_with("prefill")
            || field.starts_with("decode")
            || field.ends_with("prefill")
            || field.ends_with("decode")
        {
            text = format!("name: s\nresources: {{gpu_type: h100, gpus_per_node: 8, prefill_nodes: 1, decode_nodes: 1, {field}: null}}\nbackend: {{type: sglang}}\n");
        }
    } else {
        text.push_str(&format!("{section}:\n  {field}: null\n"));
    }
    text
}

#[test]
fn every_field_of_srtctls_schema_is_accepted() {
    let mut checked = 0;
    let mut unknown = Vec::new();
    for (section, backend, fields) in SCHEMA {
        for field in *fields {
            let text = recipe_with(section, *backend, field);
            let diagnostics = match load_str(&text, "s.yaml", None, &ClusterConfig::default()) {
                Ok(_) => Vec::new(),
                Err(e) => e.diagnostics().to_vec(),
            };
            if let Some(d) = diagnostics
                .iter()
                .find(|d| d.message.contains("unknown key"))
            {
                unknown.push(format!("{section}.{field} ({backend:?}): {d}"));
            }
            checked += 1;
        }
    }
    assert!(checked > 150, "{checked}");
    assert!(
        unknown.is_empty(),
        "srtctl fields refused:\n{}",
        unknown.join("\n")
    );
}

#[test]
fn ignored_fields_are_reported_with_their_reason() {
    let text = format!("{BASE}reporting: {{status: {{endpoint: x}}}}\nenable_config_dump: true\n");
    let loaded = load_str(&text, "s.yaml", None, &ClusterConfig::default()).expect("valid");
    let ignored = &loaded[0].recipe.ignored;
    for key in ["reporting", "enable_config_dump"] {
        let line = ignored
            .iter()
            .find(|i| i.starts_with(key))
            .unwrap_or_else(|| panic!("{key} not reported: {ignored:?}"));
        assert!(line.contains(" — "), "no reason given: {line}");
    }
}

/// `telemetry:` is validated as srtctl validates it; each mistake names its field and what is valid.
#[test]
fn bad_telemetry_names_the_field() {
    let exporter = "dcgm_exporter: {container_image: dcgm, port: 9400}";
    for (telemetry, field, says) in [
        (
            "{enabled: true}",
            "telemetry.dcgm_exporter",
            "names no exporter",
        ),
        (
            "{enabled: true, dcgm_exporter: {container_image: dcgm}}",
            "telemetry.dcgm_exporter.port",
            "needs a port",
        ),
        (
            &format!("{{enabled: true, default_frequency: 5, {exporter}}}") as &str,
            "telemetry.default_frequency",
            "exceeds the 3 s gap",
        ),
        (
            &format!("{{enabled: true, collector_join_timeout_seconds: 4, {exporter}}}"),
            "telemetry.collector_join_timeout_seconds",
            "two collector cycles",
        ),
        (
            &format!("{{enabled: true, storage_subdir: ../x, {exporter}}}"),
            "telemetry.storage_subdir",
            "below the run directory",
        ),
        (
            "{enabled: true, dcgm_exporter: {container_image: d, port: 1, command: \"a 'b\"}}",
            "telemetry.dcgm_exporter.command",
            "not a command line",
        ),
    ] {
        let text = format!("{BASE}backend: {{type: sglang}}\ntelemetry: {telemetry}\n");
        let diags = match load_str(&text, "t.yaml", None, &ClusterConfig::default()) {
            Ok(_) => panic!("accepted: {telemetry}"),
            Err(e) => e.diagnostics().to_vec(),
        };
        assert!(
            diags
                .iter()
                .any(|d| d.path == field && d.message.contains(says) && d.pos.line == 4),
            "{telemetry}: {diags:?}"
        );
    }
    let off = format!("{BASE}backend: {{type: sglang}}\ntelemetry: {{enabled: false}}\n");
    let loaded = load_str(&off, "t.yaml", None, &ClusterConfig::default()).expect("valid");
    assert!(loaded[0].recipe.telemetry.is_none());
}
