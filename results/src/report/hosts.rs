//! The report's host section: per node of the run, its CPU busy and memory in use over time (the
//! benchmark points shaded) and a table of peaks, from the scrape's host samples. These are the
//! orchestration machines' own figures, measured even when the workers are simulated.

use super::{esc, Run};
use crate::charts;
use std::fmt::Write as _;

pub(super) fn table(html: &mut String, r: &Run) {
    if r.hosts.is_empty() {
        return;
    }
    let _ = write!(
        html,
        "<h3>Hosts: {}</h3><table class=hosts><tr><th>node</th><th>samples</th><th>peak CPU busy</th><th>peak memory in use</th><th>memory</th><th>peak open files</th><th>peak load (1 min)</th></tr>",
        esc(&r.label)
    );
    let pct = |v: Option<f64>| v.map_or("–".into(), |v| format!("{:.0}%", v * 100.0));
    let num = |v: Option<f64>| v.map_or("–".into(), |v| format!("{v:.0}"));
    for h in &r.hosts {
        let _ = write!(
            html,
            "<tr data-host=\"{}\"><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&h.node),
            esc(&h.node),
            h.samples,
            pct(h.cpu_busy_peak()),
            pct(h.mem_used_peak()),
            h.mem_total_bytes
                .map_or("–".into(), |b| format!("{:.1} GiB", b as f64 / f64::from(1u32 << 30))),
            num(h.open_files_peak),
            h.load1_peak.map_or("–".into(), |v| format!("{v:.2}")),
        );
    }
    html.push_str("</table>");
}

/// CPU busy and memory in use per node over the run.
pub(super) fn charts(r: &Run, suffix: &str) -> Result<Vec<(String, String)>, String> {
    if r.hosts.is_empty() {
        return Ok(Vec::new());
    }
    let windows = r.benchmark_windows();
    let mut out = Vec::new();
    type Pick = fn(&crate::hosts::HostSeries) -> &[(f64, f64)];
    let picks: [(&str, &str, &str, Pick); 2] = [
        (
            "host-cpu",
            "CPU busy per node",
            "fraction of CPU time",
            |h| &h.cpu_busy,
        ),
        (
            "host-memory",
            "Memory in use per node",
            "fraction of memory",
            |h| &h.mem_used,
        ),
    ];
    for (stem, title, y, pick) in picks {
        let lines: Vec<charts::TimeLine> = r
            .hosts
            .iter()
            .enumerate()
            .filter(|(_, h)| !pick(h).is_empty())
            .map(|(k, h)| charts::TimeLine {
                label: &h.node,
                samples: pick(h),
                dashed: false,
                colour: k,
            })
            .collect();
        if !lines.is_empty() {
            out.push((
                format!("{stem}{suffix}"),
                charts::over_time(title, y, &lines, &windows)?,
            ));
        }
    }
    Ok(out)
}
