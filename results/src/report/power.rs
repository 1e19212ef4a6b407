//! The report's power section (`telemetry:`): the collector's verdict, then per benchmark window its
//! mean power, energy and energy per output token, integrated from `samples.csv` over the window the
//! load generator recorded. A simulated run says so beside every figure.

use super::{esc, Run};
use crate::power::PowerRun;
use serde_json::Value;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// Where the plan's collector wrote (`--dir`), or the default `power/` of the run directory.
pub(super) fn power_dir(run_dir: &Path, plan: &Value) -> Option<PathBuf> {
    let step = plan["steps"]
        .as_array()?
        .iter()
        .find(|s| s["kind"] == "collect_power")?;
    let argv = step["command"].as_array()?;
    let i = argv.iter().position(|a| a == "--dir")?;
    let dir = Path::new(argv.get(i + 1)?.as_str()?);
    // A run directory moved since: the same name under it.
    Some(if dir.is_dir() {
        dir.to_path_buf()
    } else {
        run_dir.join(dir.file_name().unwrap_or_default())
    })
}

pub(super) fn read(run_dir: &Path, plan: &Value) -> Option<PowerRun> {
    crate::power::read_run(run_dir, &power_dir(run_dir, plan)?)
}

pub(super) fn section(html: &mut String, r: &Run) {
    let Some(p) = &r.power else { return };
    let m = &p.manifest;
    let _ = write!(html, "<h3>Power: {}</h3>", esc(&r.label));
    let simulated = r.simulated().is_some();
    let tag = if simulated { " (SIMULATED)" } else { "" };
    if simulated {
        html.push_str("<p class=bad data-simulated>SIMULATED workers: no GPU served these requests; the watts are whatever the exporters reported, and every energy figure below is not the workers'.</p>");
    }
    let devices = m["expected_devices"].as_array().map_or(0, Vec::len);
    let status = m["status"].as_str().unwrap_or("unknown");
    let class = if status == "complete" { "ok" } else { "bad" };
    let reasons: Vec<&str> = m["reason_codes"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let _ = write!(
        html,
        "<p>DCGM power: <span class={class} data-power-status>{}</span>, {} sample(s) of {devices} GPU(s) every {} s{}</p>",
        esc(status),
        p.samples,
        m["sample_interval_seconds"].as_f64().unwrap_or(1.0),
        if reasons.is_empty() {
            String::new()
        } else {
            format!("; reasons: {}", esc(&reasons.join(", ")))
        }
    );
    if p.windows.is_empty() {
        html.push_str("<p class=bad>No benchmark point recorded a measurement window, so no energy is shown.</p>");
        return;
    }
    html.push_str("<table class=power><tr><th>concurrency</th><th>ISL/OSL</th><th>window s</th><th>GPUs</th><th>mean power W</th><th>energy kJ</th><th>output tokens</th><th>J / output token</th><th class=l>mean W by role</th><th class=l>covered</th></tr>");
    for w in &p.windows {
        let per_token = w
            .joules_per_output_token()
            .map_or_else(|| "–".into(), |j| format!("{j:.3}{tag}"));
        let roles: Vec<String> = w
            .by_role
            .iter()
            .map(|(role, j)| format!("{role} {:.0}", j / w.seconds.max(1e-9)))
            .collect();
        let _ = write!(
            html,
            "<tr data-power-window><td>{}</td><td>{}/{}</td><td>{:.2}</td><td>{}</td><td>{:.0}{tag}</td><td>{:.2}{tag}</td><td>{}</td><td data-joules-per-token>{per_token}</td><td class=l>{}</td><td class=l>{}</td></tr>",
            w.window.concurrency,
            w.window.isl.map_or_else(|| "?".into(), |v| v.to_string()),
            w.window.osl.map_or_else(|| "?".into(), |v| v.to_string()),
            w.seconds,
            w.gpus,
            w.mean_power_w(),
            w.energy_j / 1000.0,
            w.output_tokens.map_or_else(|| "?".into(), |n| n.to_string()),
            esc(&roles.join(", ")),
            if w.covered {
                "yes".to_string()
            } else {
                "<span class=bad>no: samples do not cover it (see manifest.json)</span>".to_string()
            }
        );
    }
    html.push_str("</table>");
}
