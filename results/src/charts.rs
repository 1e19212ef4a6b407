//! The report's charts as standalone SVG documents, drawn with `plotters`: the Pareto chart (output
//! tokens/s per GPU against tokens/s per user, frontier marked), latency percentiles and request
//! throughput against concurrency, and the step timeline (a Gantt by node from `trace.json`). Several runs
//! overlay, one colour each.

use crate::points::Point;
use plotters::prelude::*;
use serde_json::Value;

/// One run's points in a chart.
pub struct Series<'a> {
    pub label: String,
    pub points: &'a [Point],
    /// GPUs serving the run (the per-GPU axis).
    pub gpus: f64,
}

type ChartResult = Result<String, String>;

fn err<E: std::fmt::Debug>(e: E) -> String {
    format!("{e:?}")
}

pub fn colour(i: usize) -> RGBColor {
    const RUNS: [RGBColor; 6] = [
        RGBColor(0x1f, 0x77, 0xb4),
        RGBColor(0xd6, 0x27, 0x28),
        RGBColor(0x2c, 0xa0, 0x2c),
        RGBColor(0xff, 0x7f, 0x0e),
        RGBColor(0x94, 0x67, 0xbd),
        RGBColor(0x8c, 0x56, 0x4b),
    ];
    RUNS[i % RUNS.len()]
}

/// An axis range around `values` with a margin, never empty.
fn range(values: impl Iterator<Item = f64>, from_zero: bool) -> std::ops::Range<f64> {
    let v: Vec<f64> = values.filter(|x| x.is_finite()).collect();
    let lo = if from_zero {
        0.0
    } else {
        v.iter().copied().fold(f64::INFINITY, f64::min)
    };
    let hi = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if !lo.is_finite() || !hi.is_finite() {
        return 0.0..1.0;
    }
    let pad = ((hi - lo).abs() * 0.08).max(hi.abs() * 0.05).max(1e-9);
    (if from_zero { 0.0 } else { lo - pad })..hi + pad
}

/// Points no other point beats on both axes (higher is better on both), sorted by x.
pub fn frontier(xy: &[(f64, f64)]) -> Vec<(f64, f64)> {
    let mut f: Vec<(f64, f64)> = xy
        .iter()
        .copied()
        .filter(|&(x, y)| x.is_finite() && y.is_finite())
        .filter(|&(x, y)| {
            !xy.iter()
                .any(|&(a, b)| a >= x && b >= y && (a > x || b > y))
        })
        .collect();
    f.sort_by(|a, b| a.0.total_cmp(&b.0));
    f.dedup();
    f
}

/// Output tokens/s per GPU against tokens/s per user, one line per run through its concurrencies.
pub fn pareto(series: &[Series]) -> ChartResult {
    let xy: Vec<Vec<(f64, f64, u64)>> = series
        .iter()
        .map(|s| {
            s.points
                .iter()
                .map(|p| {
                    (
                        p.tokens_per_user(),
                        p.get("output_throughput") / s.gpus.max(1.0),
                        p.concurrency,
                    )
                })
                .collect()
        })
        .collect();
    let all: Vec<(f64, f64)> = xy.iter().flatten().map(|&(x, y, _)| (x, y)).collect();
    let front = frontier(&all);
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (860, 520)).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        let mut chart = ChartBuilder::on(&root)
            .caption("Pareto: throughput per GPU vs per user", ("sans-serif", 20))
            .margin(14)
            .x_label_area_size(44)
            .y_label_area_size(70)
            .build_cartesian_2d(
                range(all.iter().map(|p| p.0), true),
                range(all.iter().map(|p| p.1), true),
            )
            .map_err(err)?;
        chart
            .configure_mesh()
            .x_desc("tokens/s per user (1000 / median TPOT ms)")
            .y_desc("output tokens/s per GPU")
            .draw()
            .map_err(err)?;
        for (i, (s, pts)) in series.iter().zip(&xy).enumerate() {
            let c = colour(i);
            chart
                .draw_series(LineSeries::new(
                    pts.iter().map(|&(x, y, _)| (x, y)),
                    c.stroke_width(2),
                ))
                .map_err(err)?
                .label(s.label.clone())
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 20, y)], c.stroke_width(2))
                });
            chart
                .draw_series(pts.iter().map(|&(x, y, conc)| {
                    EmptyElement::at((x, y))
                        + Circle::new((0, 0), 4, c.filled())
                        + Text::new(format!("c={conc}"), (6, -14), ("sans-serif", 12))
                }))
                .map_err(err)?;
        }
        if !front.is_empty() {
            let black = BLACK.mix(0.7);
            chart
                .draw_series(
                    front
                        .iter()
                        .map(|&(x, y)| Circle::new((x, y), 8, black.stroke_width(2))),
                )
                .map_err(err)?
                .label("Pareto frontier")
                .legend(move |(x, y)| Circle::new((x + 10, y), 6, black.stroke_width(2)));
        }
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .draw()
            .map_err(err)?;
        root.present().map_err(err)?;
    }
    Ok(svg)
}

/// One line of a chart against concurrency: legend label, colour, stroke width, marker radius, points.
struct Line {
    label: String,
    colour: RGBColor,
    width: u32,
    marker: i32,
    points: Vec<(f64, f64)>,
}

/// Every concurrency the runs measured (the x axis of the charts against concurrency).
fn concurrencies<'a>(series: &'a [Series]) -> impl Iterator<Item = f64> + 'a {
    series
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.concurrency as f64))
}

/// A chart of `lines` against concurrency, legend upper left.
fn against_concurrency(
    title: &str,
    y_desc: &str,
    height: u32,
    x: impl Iterator<Item = f64>,
    lines: &[Line],
) -> ChartResult {
    let y = lines.iter().flat_map(|l| l.points.iter().map(|p| p.1));
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (860, height)).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 20))
            .margin(14)
            .x_label_area_size(44)
            .y_label_area_size(70)
            .build_cartesian_2d(range(x, true), range(y, true))
            .map_err(err)?;
        chart
            .configure_mesh()
            .x_desc("concurrency")
            .y_desc(y_desc)
            .draw()
            .map_err(err)?;
        for l in lines {
            let (c, width) = (l.colour, l.width);
            chart
                .draw_series(LineSeries::new(l.points.clone(), c.stroke_width(width)))
                .map_err(err)?
                .label(l.label.clone())
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 20, y)], c.stroke_width(width))
                });
            chart
                .draw_series(
                    l.points
                        .iter()
                        .map(|&xy| Circle::new(xy, l.marker, c.filled())),
                )
                .map_err(err)?;
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperLeft)
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .draw()
            .map_err(err)?;
        root.present().map_err(err)?;
    }
    Ok(svg)
}

/// `metric` (ttft, tpot, itl) p50/p90/p99 against concurrency; thicker to thinner by percentile, one colour
/// per run.
pub fn latency(series: &[Series], metric: &str, title: &str) -> ChartResult {
    let keys = [
        ("median", "p50", 3u32),
        ("p90", "p90", 2),
        ("p99", "p99", 1),
    ];
    let mut lines = Vec::new();
    for (i, s) in series.iter().enumerate() {
        for (k, name, width) in keys {
            lines.push(Line {
                label: format!("{} {name}", s.label),
                colour: colour(i),
                width,
                marker: 3,
                points: s
                    .points
                    .iter()
                    .map(|p| (p.concurrency as f64, p.get(&format!("{k}_{metric}_ms"))))
                    .filter(|(_, y)| y.is_finite())
                    .collect(),
            });
        }
    }
    let y_desc = format!("{} (ms)", metric.to_uppercase());
    against_concurrency(title, &y_desc, 420, concurrencies(series), &lines)
}

/// Request throughput against concurrency.
pub fn throughput(series: &[Series]) -> ChartResult {
    let lines: Vec<Line> = series
        .iter()
        .enumerate()
        .map(|(i, s)| Line {
            label: s.label.clone(),
            colour: colour(i),
            width: 2,
            marker: 4,
            points: s
                .points
                .iter()
                .map(|p| (p.concurrency as f64, p.get("request_throughput")))
                .collect(),
        })
        .collect();
    against_concurrency(
        "Request throughput",
        "requests/s",
        380,
        concurrencies(series),
        &lines,
    )
}

/// One bar of the timeline: a step attempt on a node's lane.
#[derive(Debug, Clone)]
pub struct Bar {
    pub node: String,
    pub lane: u64,
    pub step: String,
    pub kind: String,
    pub start_s: f64,
    pub end_s: f64,
    pub attempt: u64,
    pub outcome: String,
}

impl Bar {
    /// A task that did not exit 0, a timeout, a failed start; a service stopped by teardown is not one.
    pub fn failed(&self) -> bool {
        let o = self.outcome.as_str();
        let stopped_service = o.starts_with("killed by signal") && self.kind.starts_with("start_");
        !(o == "exit code 0" || o == "up" || stopped_service)
    }
}

/// The bars of a Chrome trace (`trace.json`, as the engine writes it).
pub fn bars(trace: &Value) -> Vec<Bar> {
    let events = trace
        .get("traceEvents")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let mut names = std::collections::BTreeMap::new();
    for e in &events {
        if e["ph"] == "M" && e["name"] == "process_name" {
            names.insert(
                e["pid"].as_u64().unwrap_or(0),
                e["args"]["name"].as_str().unwrap_or("?").to_string(),
            );
        }
    }
    events
        .iter()
        .filter(|e| e["ph"] == "X")
        .map(|e| {
            let pid = e["pid"].as_u64().unwrap_or(0);
            let ts = e["ts"].as_f64().unwrap_or(0.0) / 1e6;
            Bar {
                node: names
                    .get(&pid)
                    .cloned()
                    .unwrap_or_else(|| format!("node {pid}")),
                lane: e["tid"].as_u64().unwrap_or(0),
                step: e["name"].as_str().unwrap_or("?").to_string(),
                kind: e["cat"].as_str().unwrap_or("").to_string(),
                start_s: ts,
                end_s: ts + e["dur"].as_f64().unwrap_or(0.0) / 1e6,
                attempt: e["args"]["attempt"].as_u64().unwrap_or(1),
                outcome: e["args"]["outcome"].as_str().unwrap_or("").to_string(),
            }
        })
        .collect()
}

fn kind_colour(kind: &str) -> RGBColor {
    match kind.split('/').next().unwrap_or("") {
        "pip_install" | "mount_source" | "setup_script" | "mock_model" | "start_container" => {
            RGBColor(0x9e, 0xb3, 0xc2)
        }
        "start_worker" => RGBColor(0x4c, 0x9a, 0x6a),
        "wait_healthy" => RGBColor(0xe3, 0xb5, 0x05),
        "start_router" | "start_frontend" | "start_nginx" | "start_nats" | "start_etcd" => {
            RGBColor(0x5b, 0x8d, 0xd6)
        }
        "run_benchmark" => RGBColor(0xa0, 0x5c, 0xc8),
        _ => RGBColor(0xb0, 0xb0, 0xb0),
    }
}

/// The step timeline: one row per node lane, one bar per attempt; failed attempts red, retries labelled.
pub fn timeline(bars: &[Bar]) -> ChartResult {
    let mut rows: Vec<(String, u64)> = bars.iter().map(|b| (b.node.clone(), b.lane)).collect();
    rows.sort();
    rows.dedup();
    let row_of = |b: &Bar| {
        rows.iter()
            .position(|r| r.0 == b.node && r.1 == b.lane)
            .unwrap_or(0)
    };
    let end = bars.iter().map(|b| b.end_s).fold(1.0, f64::max);
    let height = (120 + 26 * rows.len()).min(4000) as u32;
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (1100, height)).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        let labels = rows.clone();
        let mut chart = ChartBuilder::on(&root)
            .caption("Step timeline", ("sans-serif", 20))
            .margin(14)
            .x_label_area_size(40)
            .y_label_area_size(110)
            .build_cartesian_2d(0.0..end * 1.02, 0.0..rows.len().max(1) as f64)
            .map_err(err)?;
        chart
            .configure_mesh()
            .x_desc("seconds since the run started")
            .y_labels(rows.len().max(1) * 2 + 1)
            .y_label_formatter(&|y| {
                let f = y.fract();
                if (f - 0.5).abs() > 0.01 {
                    return String::new();
                }
                labels
                    .get(*y as usize)
                    .map(|(n, l)| {
                        if *l == 0 {
                            n.clone()
                        } else {
                            format!("{n} ·{l}")
                        }
                    })
                    .unwrap_or_default()
            })
            .disable_y_mesh()
            .draw()
            .map_err(err)?;
        for b in bars {
            let r = row_of(b) as f64;
            let failed = b.failed();
            let fill = if failed {
                RGBColor(0xd6, 0x27, 0x28)
            } else {
                kind_colour(&b.kind)
            };
            chart
                .draw_series(std::iter::once(Rectangle::new(
                    [
                        (b.start_s, r + 0.12),
                        (b.end_s.max(b.start_s + end * 0.002), r + 0.88),
                    ],
                    fill.filled(),
                )))
                .map_err(err)?;
            let label = if b.attempt > 1 {
                format!("{} (try {})", b.step, b.attempt)
            } else {
                b.step.clone()
            };
            chart
                .draw_series(std::iter::once(Text::new(
                    label,
                    (b.start_s + end * 0.003, r + 0.3),
                    ("sans-serif", 11),
                )))
                .map_err(err)?;
        }
        root.present().map_err(err)?;
    }
    Ok(svg)
}

/// One line of a time-series chart: its label and (seconds, value) samples.
pub struct TimeLine<'a> {
    pub label: &'a str,
    pub samples: &'a [(f64, f64)],
    /// Drawn dashed (e.g. queued beside running).
    pub dashed: bool,
    pub colour: usize,
}

/// Values over the run, one line per worker (and per gauge), with the benchmark points shaded and
/// named: the chart that shows a decode worker saturating at a concurrency.
pub fn over_time(title: &str, y_desc: &str, lines: &[TimeLine], windows: &[&Bar]) -> ChartResult {
    let end = lines
        .iter()
        .flat_map(|l| l.samples.iter().map(|s| s.0))
        .chain(windows.iter().map(|w| w.end_s))
        .fold(1.0, f64::max);
    let y = range(
        lines.iter().flat_map(|l| l.samples.iter().map(|s| s.1)),
        true,
    );
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (1100, 420)).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 20))
            .margin(14)
            .x_label_area_size(40)
            .y_label_area_size(70)
            .build_cartesian_2d(0.0..end * 1.02, y.clone())
            .map_err(err)?;
        chart
            .configure_mesh()
            .x_desc("seconds since the run started")
            .y_desc(y_desc)
            .draw()
            .map_err(err)?;
        for (k, w) in windows.iter().enumerate() {
            // Alternate shades, so that back-to-back points read as separate windows.
            let shade = if k % 2 == 0 {
                RGBColor(0xee, 0xe6, 0xf5)
            } else {
                RGBColor(0xdd, 0xd0, 0xec)
            };
            chart
                .draw_series(std::iter::once(Rectangle::new(
                    [(w.start_s, y.start), (w.end_s, y.end)],
                    shade.filled(),
                )))
                .map_err(err)?;
            let name = w.step.rsplit('/').next().unwrap_or(&w.step).to_string();
            chart
                .draw_series(std::iter::once(Text::new(
                    name,
                    (w.start_s, y.end - (y.end - y.start) * 0.04),
                    ("sans-serif", 11),
                )))
                .map_err(err)?;
        }
        for l in lines {
            let c = colour(l.colour);
            let style = ShapeStyle::from(&c).stroke_width(2);
            let points = l.samples.iter().copied();
            let drawn = if l.dashed {
                chart.draw_series(DashedLineSeries::new(points, 6, 4, style))
            } else {
                chart.draw_series(LineSeries::new(points, style))
            }
            .map_err(err)?;
            drawn.label(l.label).legend(move |(x, y)| {
                PathElement::new(
                    vec![(x, y), (x + 18, y)],
                    ShapeStyle::from(&c).stroke_width(2),
                )
            });
        }
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            // The run's start (installs, startup) has no samples: the legend goes there.
            .position(SeriesLabelPosition::UpperLeft)
            .draw()
            .map_err(err)?;
        root.present().map_err(err)?;
    }
    Ok(svg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_frontier_keeps_only_unbeaten_points() {
        let f = frontier(&[(1.0, 10.0), (2.0, 8.0), (1.5, 7.0), (3.0, 2.0), (0.5, 9.0)]);
        assert_eq!(f, vec![(1.0, 10.0), (2.0, 8.0), (3.0, 2.0)]);
    }
}
