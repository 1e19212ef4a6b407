//! `srt-graph report`: one self-contained HTML page (inline SVG and CSS, no script, no fetch) for one or
//! more run directories — the Pareto chart, latency percentiles and throughput against concurrency, each
//! run's step timeline, its failures with their log tails, and its metadata — and each chart as its own
//! SVG file beside the page.

mod hosts;
mod power;

use crate::charts::{self, Series};
use crate::job::Job;
use crate::points::Point;
use crate::ResultsError;
use serde_json::Value;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// What the report shows of one run directory.
pub struct Run {
    pub dir: PathBuf,
    pub label: String,
    pub job: Option<Job>,
    pub points: Vec<Point>,
    pub summary: Option<Value>,
    pub plan: Value,
    pub bars: Vec<charts::Bar>,
    pub fingerprints: Vec<Value>,
    /// Result files that exist but could not be read.
    pub unreadable: Vec<String>,
    /// The performance model's prediction of the same points (a simulated run's), overlaid.
    pub predicted: Vec<Point>,
    /// The scraped `/metrics` of its workers and frontends over time.
    pub metrics: Vec<crate::metrics::EndpointSeries>,
    /// Files under `profiles/` (torch traces, nsys reports), by role directory.
    pub profiles: Vec<Profile>,
    /// Scrape targets that missed sweeps.
    pub scrape_gaps: Vec<crate::metrics::Gap>,
    /// Where the run's time went (stages and critical path), from its plan and journal.
    pub breakdown: Option<crate::breakdown::Breakdown>,
    /// Each node's host samples (CPU, memory, open files) over the run.
    pub hosts: Vec<crate::hosts::HostSeries>,
    /// DCGM power (`telemetry:`): the collector's manifest and each benchmark window's energy.
    pub power: Option<crate::power::PowerRun>,
}

/// One profile a worker wrote.
pub struct Profile {
    pub role: String,
    pub path: PathBuf,
    pub bytes: u64,
}

/// Every file under `profiles/`, sorted by path.
fn profiles(dir: &Path) -> Vec<Profile> {
    let mut out = Vec::new();
    let mut stack = vec![dir.join("profiles")];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let Ok(meta) = e.metadata() else { continue };
            if meta.is_dir() {
                stack.push(e.path());
            } else {
                out.push(Profile {
                    role: d
                        .file_name()
                        .map_or_else(String::new, |n| n.to_string_lossy().into_owned()),
                    path: e.path(),
                    bytes: meta.len(),
                });
            }
        }
    }
    out.sort_by(|a, b| a.path.cmp(&b.path));
    out
}

impl Run {
    pub fn read(dir: &Path) -> Result<Run, ResultsError> {
        let plan_path = dir.join("plan.json");
        if !plan_path.is_file() {
            return Err(ResultsError::NotARun(dir.to_path_buf()));
        }
        let plan = crate::read_json(&plan_path)?;
        let (points, unreadable) = crate::points::read(dir);
        let job = Job::read(dir).ok();
        let name = dir.file_name().map_or_else(
            || dir.display().to_string(),
            |n| n.to_string_lossy().into_owned(),
        );
        let fingerprints = crate::fingerprints(dir).into_values().collect();
        Ok(Run {
            label: name,
            bars: crate::read_json(&dir.join("trace.json"))
                .map(|t| charts::bars(&t))
                .unwrap_or_default(),
            summary: crate::read_json(&dir.join("summary.json")).ok(),
            metrics: crate::metrics::read(dir, &plan),
            profiles: profiles(dir),
            power: power::read(dir, &plan),
            scrape_gaps: crate::metrics::gaps(dir, &plan),
            hosts: crate::hosts::read(dir),
            breakdown: crate::breakdown::read(dir),
            dir: dir.to_path_buf(),
            job,
            points,
            plan,
            fingerprints,
            unreadable,
            predicted: Vec::new(),
        })
    }

    /// What timed a simulated run (its results say), with its clock's speed-up; `None` = measured.
    pub fn simulated(&self) -> Option<(String, f64)> {
        self.points.iter().find_map(|p| {
            let s = p.json.get("simulated")?;
            Some((
                s.get("timing")?.as_str()?.to_string(),
                s.get("sim_speed").and_then(Value::as_f64).unwrap_or(1.0),
            ))
        })
    }

    /// GPUs serving the run, for the per-GPU axis.
    pub fn gpus(&self) -> f64 {
        self.job.as_ref().map_or(1.0, |j| f64::from(j.total_gpus()))
    }

    pub fn status(&self) -> &str {
        self.summary
            .as_ref()
            .and_then(|s| s["status"].as_str())
            .unwrap_or("running or interrupted")
    }
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A chart's SVG without its XML prologue, to sit inline in the page.
fn inline(svg: &str) -> &str {
    svg.find("<svg").map_or(svg, |i| &svg[i..])
}

const STYLE: &str = "body{font-family:sans-serif;margin:24px;color:#222;max-width:1200px}\
h1{font-size:22px}h2{font-size:18px;margin-top:32px;border-bottom:1px solid #ccc}\
table{border-collapse:collapse;margin:8px 0;font-size:13px}td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}\
th{background:#f3f3f3}td.l,th.l{text-align:left}.ok{color:#2c7a2c;font-weight:bold}.bad{color:#c62828;font-weight:bold}\
pre{background:#f7f7f7;border:1px solid #ddd;padding:8px;font-size:12px;overflow-x:auto;white-space:pre-wrap}\
.chart{margin:12px 0}.swatch{display:inline-block;width:12px;height:12px;margin-right:4px}";

/// Columns of the per-point table: (result key, header).
const COLUMNS: [(&str, &str); 12] = [
    ("completed", "requests"),
    ("failed", "failed"),
    ("request_throughput", "req/s"),
    ("output_throughput", "output tok/s"),
    ("median_ttft_ms", "TTFT p50"),
    ("p90_ttft_ms", "TTFT p90"),
    ("p99_ttft_ms", "TTFT p99"),
    ("median_tpot_ms", "TPOT p50"),
    ("p90_tpot_ms", "TPOT p90"),
    ("p99_tpot_ms", "TPOT p99"),
    ("median_itl_ms", "ITL p50"),
    ("p99_itl_ms", "ITL p99"),
];

fn number(v: f64) -> String {
    if !v.is_finite() {
        "–".into()
    } else if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        format!("{v:.2}")
    }
}

/// The charts of `runs`: (file stem, SVG).
pub fn charts(runs: &[Run]) -> Result<Vec<(String, String)>, String> {
    let mut series: Vec<Series> = runs
        .iter()
        .map(|r| Series {
            label: match r.simulated() {
                Some(_) => format!("{} (SIMULATED)", r.label),
                None => r.label.clone(),
            },
            points: &r.points,
            gpus: r.gpus(),
        })
        .collect();
    // Predictions after the runs, so each keeps its run's colour order and reads as an overlay.
    series.extend(
        runs.iter()
            .filter(|r| !r.predicted.is_empty())
            .map(|r| Series {
                label: format!("{} (PREDICTED)", r.label),
                points: &r.predicted,
                gpus: r.gpus(),
            }),
    );
    let mut out = Vec::new();
    if runs.iter().any(|r| !r.points.is_empty()) {
        out.push(("pareto".to_string(), charts::pareto(&series)?));
        out.push((
            "ttft".into(),
            charts::latency(&series, "ttft", "Time to first token")?,
        ));
        out.push((
            "tpot".into(),
            charts::latency(&series, "tpot", "Time per output token")?,
        ));
        out.push((
            "itl".into(),
            charts::latency(&series, "itl", "Inter-token latency")?,
        ));
        out.push(("throughput".into(), charts::throughput(&series)?));
    }
    for (i, r) in runs.iter().enumerate() {
        if !r.bars.is_empty() {
            let stem = if runs.len() == 1 {
                "timeline".to_string()
            } else {
                format!("timeline-{}", i + 1)
            };
            out.push((stem, charts::timeline(&r.bars)?));
        }
        let suffix = if runs.len() == 1 {
            String::new()
        } else {
            format!("-{}", i + 1)
        };
        out.extend(metric_charts(r, &suffix)?);
        out.extend(frontend_chart(r, &suffix)?);
        out.extend(hosts::charts(r, &suffix)?);
    }
    Ok(out)
}

/// The workers' scraped gauges over the run, benchmark points shaded: running (solid) and queued
/// (dashed) requests, KV-cache usage, generation throughput. Frontends are left out (their metrics are
/// the router's or Dynamo's own names, in the raw file).
fn metric_charts(r: &Run, suffix: &str) -> Result<Vec<(String, String)>, String> {
    let workers: Vec<&crate::metrics::EndpointSeries> =
        r.metrics.iter().filter(|m| m.role != "frontend").collect();
    if workers.is_empty() {
        return Ok(Vec::new());
    }
    let windows = r.benchmark_windows();
    let tag = simulated_tag(r);
    let mut labels: Vec<String> = Vec::new();
    let mut keys: Vec<(usize, &'static str, bool)> = Vec::new();
    for (k, w) in workers.iter().enumerate() {
        for (gauge, dashed, what) in [
            ("sglang:num_running_reqs", false, "running"),
            ("sglang:num_queue_reqs", true, "queued"),
        ] {
            if w.gauges.contains_key(gauge) {
                labels.push(format!("{} {what}", w.label));
                keys.push((k, gauge, dashed));
            }
        }
    }
    let mut out = vec![(
        format!("requests{suffix}"),
        charts::over_time(
            &format!("Running and queued requests per worker{tag}"),
            "requests",
            &lines(&workers, &keys, &labels),
            &windows,
        )?,
    )];
    for (gauge, stem, title, y) in [
        (
            "sglang:token_usage",
            "kv-usage",
            "KV-cache usage per worker",
            "fraction of the KV cache",
        ),
        (
            "sglang:gen_throughput",
            "gen-throughput",
            "Generation throughput per worker",
            "tokens/s",
        ),
    ] {
        let keys: Vec<(usize, &'static str, bool)> = (0..workers.len())
            .filter(|&k| workers[k].gauges.contains_key(gauge))
            .map(|k| (k, gauge, false))
            .collect();
        let labels: Vec<String> = keys
            .iter()
            .map(|&(k, _, _)| workers[k].label.clone())
            .collect();
        if !keys.is_empty() {
            out.push((
                format!("{stem}{suffix}"),
                charts::over_time(
                    &format!("{title}{tag}"),
                    y,
                    &lines(&workers, &keys, &labels),
                    &windows,
                )?,
            ));
        }
    }
    Ok(out)
}

impl Run {
    /// The benchmark points' bars of the step timeline, shaded behind charts over time.
    fn benchmark_windows(&self) -> Vec<&charts::Bar> {
        self.bars
            .iter()
            .filter(|b| b.kind == "run_benchmark")
            .collect()
    }
}

/// Mock workers' figures say so on the chart itself.
fn simulated_tag(r: &Run) -> &'static str {
    let simulated =
        r.simulated().is_some() || r.job.as_ref().is_some_and(|j| j.srt_graph.mock_workers);
    if simulated {
        " (SIMULATED workers)"
    } else {
        ""
    }
}

/// Requests in flight at each router or Dynamo frontend over the run (Dynamo's queued ones dashed):
/// where the load generator's concurrency lands before any worker sees it.
fn frontend_chart(r: &Run, suffix: &str) -> Result<Vec<(String, String)>, String> {
    use crate::metrics::{DYNAMO_IN_FLIGHT, DYNAMO_QUEUED, ROUTER_IN_FLIGHT};
    let fronts: Vec<&crate::metrics::EndpointSeries> =
        r.metrics.iter().filter(|m| m.role == "frontend").collect();
    let mut labels: Vec<String> = Vec::new();
    let mut keys: Vec<(usize, &'static str, bool)> = Vec::new();
    for (k, f) in fronts.iter().enumerate() {
        for (gauge, dashed, what) in [
            (ROUTER_IN_FLIGHT, false, "in flight"),
            (DYNAMO_IN_FLIGHT, false, "in flight"),
            (DYNAMO_QUEUED, true, "queued"),
        ] {
            if f.gauges.contains_key(gauge) {
                labels.push(format!("{} {what}", f.label.trim_end_matches("/metrics")));
                keys.push((k, gauge, dashed));
            }
        }
    }
    if keys.is_empty() {
        return Ok(Vec::new());
    }
    let windows = r.benchmark_windows();
    Ok(vec![(
        format!("frontend-requests{suffix}"),
        charts::over_time(
            &format!(
                "Requests in flight per router or frontend{}",
                simulated_tag(r)
            ),
            "requests",
            &lines(&fronts, &keys, &labels),
            &windows,
        )?,
    )])
}

/// Chart lines for `keys` (worker index, gauge, dashed), labelled by `labels`.
fn lines<'a>(
    workers: &[&'a crate::metrics::EndpointSeries],
    keys: &[(usize, &'static str, bool)],
    labels: &'a [String],
) -> Vec<charts::TimeLine<'a>> {
    keys.iter()
        .zip(labels)
        .filter_map(|(&(k, gauge, dashed), label)| {
            Some(charts::TimeLine {
                label,
                samples: workers[k].gauges.get(gauge)?,
                dashed,
                colour: k,
            })
        })
        .collect()
}

fn metadata(html: &mut String, i: usize, r: &Run) {
    let c = charts::colour(i);
    let _ = write!(
        html,
        "<h2><span class=swatch style=\"background:rgb({},{},{})\"></span>{}</h2><table>",
        c.0,
        c.1,
        c.2,
        esc(&r.label)
    );
    let status = r.status();
    let class = if status == "succeeded" { "ok" } else { "bad" };
    let mut row = |k: &str, v: String| {
        let _ = write!(html, "<tr><th class=l>{k}</th><td class=l>{v}</td></tr>");
    };
    row("run directory", esc(&r.dir.display().to_string()));
    row(
        "status",
        format!("<span class={class} data-status>{}</span>", esc(status)),
    );
    row("recipe", esc(r.plan["recipe"].as_str().unwrap_or("?")));
    match r.simulated() {
        Some((label, speed)) => row(
            "timing",
            format!(
                "<span class=bad data-simulated>SIMULATED: no inference engine ran.</span> {} (simulated clock ×{}; figures in model time)",
                esc(&label),
                number(speed)
            ),
        ),
        None if !r.points.is_empty() => row("timing", "measured".into()),
        None => {}
    }
    if !r.predicted.is_empty() {
        row(
            "prediction",
            "the performance model's prediction of the same points is overlaid as \"(PREDICTED)\""
                .into(),
        );
    }
    if let Some(j) = &r.job {
        let g = &j.srt_graph;
        row("variant", esc(g.variant.as_deref().unwrap_or("–")));
        row(
            "backend / frontend",
            esc(&format!("{} / {}", j.backend_type, j.frontend_type)),
        );
        row("GPUs", j.total_gpus().to_string());
        row(
            "plan",
            esc(&format!("{} steps, hash {}", g.plan_steps, g.plan_hash)),
        );
        row("srt-graph", esc(&g.version));
        row(
            "executor",
            esc(&format!(
                "{}{}",
                g.executor,
                if g.mock_workers { ", mock workers" } else { "" }
            )),
        );
        if let Some(img) = &g.container_image {
            row(
                "container",
                esc(&format!(
                    "{img} {}",
                    g.container_image_digest.as_deref().unwrap_or("")
                )),
            );
        }
    }
    let nodes: Vec<&str> = r.plan["nodes"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    row("nodes", esc(&nodes.join(", ")));
    for f in &r.fingerprints {
        let py = &f["python"];
        let what = match py["version"].as_str() {
            Some(v) => format!(
                "Python {v}, {} packages; {}; GPUs: {}",
                py["packages"].as_array().map_or(0, Vec::len),
                f["os"].as_str().unwrap_or("?"),
                f["gpus"].as_array().map_or_else(
                    || "none".to_string(),
                    |g| g
                        .iter()
                        .filter_map(|x| x["name"].as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            ),
            None => py["error"].as_str().unwrap_or("?").to_string(),
        };
        row(
            &format!("environment {}", esc(f["node"].as_str().unwrap_or("?"))),
            esc(&what),
        );
    }
    if let Some(s) = &r.summary {
        row(
            "makespan",
            format!("{:.1} s", s["makespan_secs"].as_f64().unwrap_or(0.0)),
        );
    }
    html.push_str("</table>");
}

fn points_table(html: &mut String, runs: &[Run]) {
    html.push_str("<h2>Results per concurrency</h2><table id=points><tr><th class=l>run</th><th class=l>point</th><th>concurrency</th><th>tok/s/user</th><th>out tok/s/GPU</th>");
    for (_, h) in COLUMNS {
        let _ = write!(html, "<th>{h}</th>");
    }
    html.push_str("</tr>");
    for (i, r) in runs.iter().enumerate() {
        let simulated = r.simulated().is_some();
        let rows = r
            .points
            .iter()
            .map(|p| (p, if simulated { " (SIMULATED)" } else { "" }, ""))
            .chain(
                r.predicted
                    .iter()
                    .map(|p| (p, " (PREDICTED)", " data-predicted")),
            );
        for (p, tag, attr) in rows {
            let _ = write!(
                html,
                "<tr data-run={i} data-c={}{attr}><td class=l>{}{tag}</td><td class=l>{}</td><td>{}</td><td data-key=tokens_per_user>{}</td><td data-key=tokens_per_gpu>{}</td>",
                p.concurrency,
                esc(&r.label),
                esc(p.group.trim_start_matches("sa-bench_")),
                p.concurrency,
                number(p.tokens_per_user()),
                number(p.get("output_throughput") / r.gpus()),
            );
            for (k, _) in COLUMNS {
                let _ = write!(html, "<td data-key={k}>{}</td>", number(p.get(k)));
            }
            html.push_str("</tr>");
        }
    }
    html.push_str("</table>");
}

fn failures(html: &mut String, r: &Run) {
    let failed: Vec<&str> = r
        .summary
        .as_ref()
        .and_then(|s| s["failures"].as_array())
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    let retried: Vec<&charts::Bar> = r.bars.iter().filter(|b| b.failed()).collect();
    if failed.is_empty() && retried.is_empty() && r.unreadable.is_empty() {
        return;
    }
    let _ = write!(html, "<h3>Failures in {}</h3>", esc(&r.label));
    if !retried.is_empty() {
        html.push_str("<table><tr><th class=l>step</th><th class=l>node</th><th>try</th><th class=l>outcome</th></tr>");
        for b in retried {
            let _ = write!(
                html,
                "<tr><td class=l>{}</td><td class=l>{}</td><td>{}</td><td class=l>{}</td></tr>",
                esc(&b.step),
                esc(&b.node),
                b.attempt,
                esc(&b.outcome)
            );
        }
        html.push_str("</table>");
    }
    for f in failed {
        let _ = write!(html, "<pre class=failure>{}</pre>", esc(f));
    }
    for u in &r.unreadable {
        let _ = write!(
            html,
            "<pre class=failure>unreadable result: {}</pre>",
            esc(u)
        );
    }
}

/// The scrape's gaps: the charts of a target that missed sweeps have holes, and this says where.
fn scrape_gaps(html: &mut String, r: &Run) {
    if r.scrape_gaps.is_empty() {
        return;
    }
    let _ = write!(
        html,
        "<h3>Scrape gaps: {}</h3><ul class=gaps>",
        esc(&r.label)
    );
    for g in &r.scrape_gaps {
        let what = match g.longest_secs {
            None => "never answered: no metrics from it in this run".to_string(),
            Some(s) => format!("answered {} time(s); silent for up to {s:.1} s", g.lines),
        };
        let _ = write!(
            html,
            "<li data-scrape-gap>{} {}: {}</li>",
            esc(&g.role),
            esc(&g.url),
            what
        );
    }
    html.push_str("</ul><p>The scrape never fails a run: see the scrape-metrics step's log for why each target did not answer.</p>");
}

/// The page for `runs` with its charts (`charts(runs)`, inline).
/// The profiles of a run, linked relative to the page's directory `base` where they lie under it.
fn profiles_table(html: &mut String, r: &Run, base: &Path) {
    let wanted = r.plan["steps"].as_array().is_some_and(|s| {
        s.iter()
            .any(|s| s["kind"] == "profile" || s["env"]["SGLANG_TORCH_PROFILER_DIR"].is_string())
    });
    if r.profiles.is_empty() && !wanted {
        return;
    }
    let _ = write!(html, "<h3>Profiles: {}</h3>", esc(&r.label));
    if r.simulated().is_some() {
        html.push_str("<p class=bad data-simulated>SIMULATED workers: these traces show the mock's scheduled batches, not GPU kernels.</p>");
    }
    if r.profiles.is_empty() {
        html.push_str("<p class=bad>Profiling was on, but no worker wrote a profile (see the profile-start step's log).</p>");
        return;
    }
    html.push_str(
        "<table class=profiles><tr><th class=l>role</th><th class=l>file</th><th>size</th></tr>",
    );
    for p in &r.profiles {
        let href = match p.path.strip_prefix(base) {
            Ok(rel) => rel.display().to_string(),
            Err(_) => format!("file://{}", p.path.display()),
        };
        let name = p
            .path
            .file_name()
            .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
        let _ = write!(
            html,
            "<tr><td class=l>{}</td><td class=l><a href=\"{}\">{}</a></td><td>{:.1} KiB</td></tr>",
            esc(&p.role),
            esc(&href),
            esc(&name),
            p.bytes as f64 / 1024.0
        );
    }
    html.push_str("</table>");
}

pub fn html(runs: &[Run], charts: &[(String, String)], base: &Path) -> String {
    let title = match runs {
        [one] => format!("srt-graph report: {}", one.label),
        _ => format!("srt-graph report: {} runs", runs.len()),
    };
    let mut html = format!(
        "<!DOCTYPE html><html lang=en><head><meta charset=utf-8><title>{}</title><style>{STYLE}</style></head><body><h1>{}</h1>",
        esc(&title),
        esc(&title)
    );
    for (i, r) in runs.iter().enumerate() {
        metadata(&mut html, i, r);
        profiles_table(&mut html, r, base);
        power::section(&mut html, r);
        scrape_gaps(&mut html, r);
    }
    if runs.iter().all(|r| r.points.is_empty()) {
        html.push_str("<p>No sa-bench results in these run directories.</p>");
    } else {
        points_table(&mut html, runs);
    }
    for (stem, svg) in charts {
        let _ = write!(
            html,
            "<div class=chart id=\"chart-{stem}\">{}</div>",
            inline(svg)
        );
    }
    // Detail below the charts: where each run's time went and its hosts.
    for r in runs {
        if let Some(b) = &r.breakdown {
            let _ = write!(
                html,
                "<h3>Where the time went: {}</h3><pre data-breakdown>{}</pre>",
                esc(&r.label),
                esc(&crate::breakdown::render(b))
            );
        }
        hosts::table(&mut html, r);
    }
    html.push_str("<h2>Failures</h2>");
    let before = html.len();
    for r in runs {
        failures(&mut html, r);
    }
    if html.len() == before {
        html.push_str("<p class=ok>None: every step that ran succeeded on its first try.</p>");
    }
    html.push_str("</body></html>\n");
    html
}

/// Writes `out` (the page) and `<stem>-charts/<chart>.svg` beside it; returns the SVG paths.
pub fn write(runs: &[Run], out: &Path) -> Result<Vec<PathBuf>, ResultsError> {
    let charts = charts(runs).map_err(|message| ResultsError::Parse {
        path: out.to_path_buf(),
        message: format!("drawing a chart: {message}"),
    })?;
    let base = out.parent().unwrap_or(Path::new("."));
    crate::write(out, html(runs, &charts, base).as_bytes())?;
    let stem = out
        .file_stem()
        .map_or_else(|| "report".into(), |s| s.to_string_lossy().into_owned());
    let dir = out.with_file_name(format!("{stem}-charts"));
    std::fs::create_dir_all(&dir).map_err(|source| ResultsError::Io {
        path: dir.clone(),
        source,
    })?;
    let mut written = Vec::new();
    for (name, svg) in &charts {
        let p = dir.join(format!("{name}.svg"));
        crate::write(&p, svg.as_bytes())?;
        written.push(p);
    }
    Ok(written)
}
