//! `telemetry:`: srtctl's DCGM power telemetry — a `dcgm-exporter` per worker node and a collector on
//! the orchestrator's node (`compile::power`). Validated as srtctl validates it: an exporter with an
//! image and a port, a sample period no longer than the 3 s gap the window audit accepts, and a
//! shutdown budget longer than two collector cycles.

use crate::cluster::ClusterConfig;
use crate::diag::{Keys, Reader};
use crate::recipe::Telemetry;
use crate::yaml::Node;

const TOP: Keys = Keys {
    known: &[
        "enabled",
        "dcgm_exporter",
        "default_frequency",
        "storage_subdir",
        "required",
        "startup_timeout_seconds",
        "request_timeout_seconds",
        "collector_join_timeout_seconds",
    ],
    ignored: &[],
};
const EXPORTER: Keys = Keys {
    known: &["container_image", "port", "command"],
    ignored: &[],
};

/// srtctl's window audit: a gap between two samples of a GPU longer than this invalidates a window.
pub const MAX_SAMPLE_GAP_SECS: f64 = 3.0;
/// srtctl's grace on top of a collector cycle's request timeouts.
const CYCLE_GRACE_SECS: f64 = 1.0;

pub fn read(doc: &Node, cluster: &ClusterConfig, r: &mut Reader) -> Option<Telemetry> {
    let section = doc.get("telemetry")?;
    if !r.check_keys(section, "telemetry", &TOP) {
        return None;
    }
    if !r
        .boolean(section.get("enabled"), "telemetry.enabled")
        .unwrap_or(false)
    {
        return None;
    }
    let Some(exporter) = section.get("dcgm_exporter") else {
        r.error(
            section.pos,
            "telemetry.dcgm_exporter",
            "telemetry is enabled but names no exporter",
            Some("add `dcgm_exporter: {container_image: nvcr.io/nvidia/k8s/dcgm-exporter:<tag>, port: 9400}`".into()),
        );
        return None;
    };
    if !r.check_keys(exporter, "telemetry.dcgm_exporter", &EXPORTER) {
        return None;
    }
    let image = r.string(
        exporter.get("container_image"),
        "telemetry.dcgm_exporter.container_image",
    );
    let image = match image.filter(|i| !i.trim().is_empty()) {
        Some(i) => cluster.resolve_container(&i),
        None => {
            let pos = exporter
                .get("container_image")
                .map_or(exporter.pos, |n| n.pos);
            r.error(
                pos,
                "telemetry.dcgm_exporter.container_image",
                "the exporter needs a container image",
                Some("e.g. nvcr.io/nvidia/k8s/dcgm-exporter:4.2.3-4.1.1-ubuntu22.04, or an alias from srtslurm.yaml's `containers`".into()),
            );
            String::new()
        }
    };
    let port = match exporter.get("port") {
        Some(p) => r.int(Some(p), "telemetry.dcgm_exporter.port", 1, 65535),
        None => {
            r.error(
                exporter.pos,
                "telemetry.dcgm_exporter.port",
                "the exporter needs a port",
                Some("dcgm-exporter's default is 9400".into()),
            );
            None
        }
    };
    let command = r.string(exporter.get("command"), "telemetry.dcgm_exporter.command");
    if let (Some(c), Some(node)) = (&command, exporter.get("command")) {
        if shlex::split(c).is_none_or(|argv| argv.is_empty()) {
            r.error(
                node.pos,
                "telemetry.dcgm_exporter.command",
                format!("`{c}` is not a command line (empty, or a quote left open)"),
                Some("e.g. `dcgm-exporter --collect-interval=100 --address :{port}`; `{port}` and `{host}` are filled in".into()),
            );
        }
    }
    let secs = |r: &mut Reader, key: &str, default: f64, max: f64| {
        r.number(section.get(key), &format!("telemetry.{key}"), 0.01, max)
            .unwrap_or(default)
    };
    let interval_secs = secs(r, "default_frequency", 1.0, 86_400.0);
    if interval_secs > MAX_SAMPLE_GAP_SECS {
        let pos = section
            .get("default_frequency")
            .map_or(section.pos, |n| n.pos);
        r.error(
            pos,
            "telemetry.default_frequency",
            format!("{interval_secs} s between samples exceeds the {MAX_SAMPLE_GAP_SECS} s gap a measurement window allows: every window would be invalid"),
            Some("give the collector's period in seconds, e.g. 1.0".into()),
        );
    }
    let startup_timeout_secs = secs(r, "startup_timeout_seconds", 30.0, 86_400.0);
    let request_timeout_secs = secs(r, "request_timeout_seconds", 2.0, 3_600.0);
    let two_cycles = 2.0 * (2.0 * request_timeout_secs + CYCLE_GRACE_SECS);
    let join_timeout_secs = match section.get("collector_join_timeout_seconds") {
        None => two_cycles + 2.0,
        Some(n) => {
            let v = r.number(
                Some(n),
                "telemetry.collector_join_timeout_seconds",
                0.01,
                86_400.0,
            );
            match v {
                Some(v) if v > two_cycles => v,
                Some(v) => {
                    r.error(
                        n.pos,
                        "telemetry.collector_join_timeout_seconds",
                        format!("{v} s is not longer than two collector cycles ({two_cycles} s with request_timeout_seconds {request_timeout_secs})"),
                        Some(format!("give more than 2 × (2 × request_timeout_seconds + 1 s) = {two_cycles} s, or leave it out")),
                    );
                    two_cycles + 2.0
                }
                None => two_cycles + 2.0,
            }
        }
    };
    let storage_subdir = r
        .string(section.get("storage_subdir"), "telemetry.storage_subdir")
        .unwrap_or_else(|| "power".into());
    let safe = !storage_subdir.is_empty()
        && !storage_subdir.starts_with(['/', '~'])
        && storage_subdir
            .split('/')
            .all(|p| !p.is_empty() && p != "." && p != "..");
    if !safe {
        let pos = section.get("storage_subdir").map_or(section.pos, |n| n.pos);
        r.error(
            pos,
            "telemetry.storage_subdir",
            format!("`{storage_subdir}` is not a directory below the run directory"),
            Some("a relative path without `..`, e.g. power".into()),
        );
    }
    Some(Telemetry {
        exporter_image: image,
        exporter_port: port.unwrap_or(9400) as u16,
        exporter_command: command,
        interval_secs,
        storage_subdir,
        required: r
            .boolean(section.get("required"), "telemetry.required")
            .unwrap_or(false),
        startup_timeout_secs,
        request_timeout_secs,
        join_timeout_secs,
        pos: section.pos,
    })
}
