//! Why an srt-slurm key that srt-graph accepts is not acted on: shown with the key by `plan` (and in
//! `plan.json`'s `ignored`), so nobody wonders whether a setting took effect.

/// `key — reason` for an ignored field path.
pub(super) fn with_reason(path: &str) -> String {
    format!("{path} — {}", reason(path))
}

fn reason(path: &str) -> &'static str {
    let top = path.split(['.', '[']).next().unwrap_or(path);
    match (top, path.rsplit('.').next().unwrap_or(path)) {
        ("output", _) => "srtctl's log directory; everything is written into the run directory",
        ("observability", _) => "OpenTelemetry export and srtctl's perf dashboard are not started (the metrics scrape is)",
        ("identity", _) => "srtctl's model/container identity record; the run directory keeps the plan and its inputs",
        ("reporting", _) => "srtctl's status, S3 and analysis reporting; nothing is sent anywhere",
        ("enable_config_dump", _) => "srtctl's worker config dump; not passed to workers",
        ("model", "stage_dir") => "srtctl's model staging; workers read the model where it is",
        ("resources", "spread_workers") => "workers are packed onto nodes in order, as srtctl does by default",
        ("resources", "het_jobs") => "placement follows the allocation's nodes; het groups come from SLURM_JOB_NODELIST",
        ("backend", "mooncake_kv_store") => "the Mooncake KV store is not started",
        ("backend", "sequential_node_start") => "workers sharing a node start together, not in batches",
        ("backend", "set_cuda_visible_devices") => "CUDA_VISIBLE_DEVICES is set whenever workers share a node",
        ("backend", "allow_prefill_decode_colocation" | "allow_prefill_decode_colocation_across_nodes") => "prefill and decode keep nodes of their own (srtctl's default)",
        ("frontend", "nginx_session_affinity" | "nginx_session_affinity_header") => "nginx balances by least connections, without affinity",
        ("frontend", "dedicated_node" | "orchestrator_placement") => "frontends are placed by srtctl's default spread",
        ("frontend", "ctx_router" | "gen_router" | "server_config_extra") => "read by the trtllm_serve frontend only",
        ("dynamo", "cargo_patches") => "patches for building Dynamo from source are not applied",
        ("infra", "nats_max_payload_mb") => "NATS runs with its default payload limit",
        ("benchmark", _) => "not used by this benchmark type",
        _ => "accepted as srtctl accepts it; not acted on",
    }
}
