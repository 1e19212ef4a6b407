//! `srt-graph predict`: the benchmark's figures per concurrency from the performance model, without
//! running anything (the deployment's batch schedulers run in virtual time); `perf-table`: the node
//! tool a simulated run uses to write its roles' latency tables.

use crate::error::{CliError, CliResult};
use crate::options::{cache_dir, RecipeArgs};
use clap::Args;
use serde_json::json;
use srt_graph_perf_model::aiconfigurator as aic;
use srt_graph_perf_model::predict::{self, Deployment, Load, Prediction};
use srt_graph_perf_model::{DeploymentModel, LatencyTable, ModelInput};
use std::path::{Path, PathBuf};
use std::time::Instant;

#[derive(Args)]
pub struct PredictArgs {
    #[command(flatten)]
    pub recipe: RecipeArgs,
    /// One JSON document on stdout (variants, points, Pareto frontier, ranking).
    #[arg(long)]
    pub json: bool,
    /// Requests per concurrency point the virtual client sends, as a multiple of the concurrency
    /// (default: the benchmark's own, as the run sends).
    #[arg(long, value_name = "N")]
    pub waves: Option<u32>,
}

/// The aiconfigurator venv `predict` uses, installed from PyPI the first time.
fn ensure_venv() -> Result<PathBuf, CliError> {
    let venv = aic::venv_dir(&cache_dir());
    let python = venv.join("bin/python");
    if aic::check_install(&python).is_ok() {
        return Ok(python);
    }
    eprintln!(
        "predict: installing {} into {} (once)…",
        aic::REQUIREMENT,
        venv.display()
    );
    let run = |cmd: &mut std::process::Command| -> Result<(), CliError> {
        let out = cmd
            .output()
            .map_err(|e| CliError::Failed(format!("{cmd:?}: {e}")))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(CliError::Failed(format!(
                "installing {} failed: {}",
                aic::REQUIREMENT,
                String::from_utf8_lossy(&out.stderr)
                    .lines()
                    .last()
                    .unwrap_or("")
            )))
        }
    };
    run(std::process::Command::new("python3")
        .args(["-m", "venv"])
        .arg(&venv))?;
    run(std::process::Command::new(&python).args([
        "-m",
        "pip",
        "install",
        "-q",
        aic::REQUIREMENT,
    ]))?;
    aic::check_install(&python).map_err(|e| CliError::Failed(e.to_string()))?;
    Ok(python)
}

struct VariantResult {
    name: String,
    summary: String,
    points: Vec<(u32, u32, Prediction)>,
    error: Option<String>,
    secs: f64,
}

pub fn run(args: &PredictArgs) -> CliResult {
    let variants = crate::cli_plan::load(&args.recipe)?;
    let models: Vec<(
        String,
        DeploymentModel,
        Option<srt_graph_steps::recipe::Benchmark>,
    )> = variants
        .iter()
        .map(|v| {
            let served = srt_graph_steps::backends::find(v.recipe.backend)
                .map(|b| b.served_model_name(&v.recipe))
                .unwrap_or_default();
            (
                v.variant.clone(),
                srt_graph_steps::perf_model::derive(&v.recipe, &served),
                v.recipe.benchmark.clone(),
            )
        })
        .collect();
    let inputs: Vec<ModelInput> = models
        .iter()
        .filter_map(|(_, m, _)| match m {
            DeploymentModel::Modelled { roles, .. } => Some(roles.clone()),
            DeploymentModel::Unsupported { .. } => None,
        })
        .flatten()
        .collect();
    let t0 = Instant::now();
    let tables = if inputs.is_empty() {
        Vec::new()
    } else {
        let python = ensure_venv()?;
        aic::compute_tables(&python, &inputs, Some(&cache_dir().join("perf-tables")))
            .map_err(|e| CliError::Failed(e.to_string()))?
    };
    let table_secs = t0.elapsed().as_secs_f64();
    let mut tables = tables.into_iter();
    let mut results = Vec::new();
    for (name, model, bench) in &models {
        let t = Instant::now();
        let mut r = VariantResult {
            name: name.clone(),
            summary: model.summary(),
            points: Vec::new(),
            error: None,
            secs: 0.0,
        };
        if let DeploymentModel::Modelled { roles, .. } = model {
            let role_tables: Vec<Result<LatencyTable, String>> = roles
                .iter()
                .map(|_| tables.next().unwrap_or_else(|| Err("missing".into())))
                .collect();
            match role_tables.into_iter().collect::<Result<Vec<_>, _>>() {
                Ok(ts) => predict_points(&mut r, &ts, bench.as_ref(), args.waves),
                Err(why) => r.error = Some(format!("aiconfigurator cannot model it: {why}")),
            }
        } else if let DeploymentModel::Unsupported { reason } = model {
            r.error = Some(reason.clone());
        }
        r.secs = t.elapsed().as_secs_f64();
        results.push(r);
    }
    if args.json {
        print_json(&results, table_secs);
    } else {
        print_text(&results, table_secs);
    }
    if results.iter().all(|r| r.points.is_empty()) {
        return Err(CliError::Invalid(
            "no variant could be predicted (see above)".into(),
        ));
    }
    Ok(())
}

fn predict_points(
    r: &mut VariantResult,
    tables: &[LatencyTable],
    bench: Option<&srt_graph_steps::recipe::Benchmark>,
    waves: Option<u32>,
) {
    let Some(b) = bench.filter(|b| !b.points.is_empty()) else {
        r.error = Some("the recipe's benchmark gives no isl/osl/concurrencies to predict".into());
        return;
    };
    let deployment = Deployment::from_tables(tables);
    let waves = waves.unwrap_or(b.num_prompts_mult).clamp(1, 100);
    for p in &b.points {
        for &c in &p.concurrencies {
            let load = Load {
                isl: p.isl,
                osl: p.osl,
                concurrency: c,
                requests: c.saturating_mul(waves),
                range_ratio: b.random_range_ratio,
            };
            r.points
                .push((p.isl, p.osl, predict::predict(&deployment, load)));
        }
    }
}

fn print_text(results: &[VariantResult], table_secs: f64) {
    for r in results {
        if !r.name.is_empty() {
            println!("variant {}", r.name);
        }
        println!("{}", r.summary);
        if let Some(e) = &r.error {
            println!("  not predicted: {e}");
            continue;
        }
        println!("  PREDICTED (not measured): the performance model's figures, no engine ran");
        println!(
            "  {:>6} {:>6} {:>6} {:>10} {:>9} {:>9} {:>8} {:>11} {:>10} {:>10}  pareto",
            "isl",
            "osl",
            "conc",
            "TTFT ms",
            "TPOT ms",
            "ITL ms",
            "req/s",
            "out tok/s",
            "tok/s/GPU",
            "tok/s/user"
        );
        let preds: Vec<Prediction> = r.points.iter().map(|p| p.2.clone()).collect();
        let frontier = predict::pareto(&preds);
        for (k, (isl, osl, p)) in r.points.iter().enumerate() {
            println!(
                "  {isl:>6} {osl:>6} {:>6} {:>10.1} {:>9.2} {:>9.2} {:>8.2} {:>11.1} {:>10.1} {:>10.1}  {}",
                p.concurrency,
                p.mean_ttft_ms,
                p.mean_tpot_ms,
                p.mean_itl_ms,
                p.request_throughput,
                p.output_throughput,
                p.output_tps_per_gpu,
                p.output_tps_per_user,
                if frontier.contains(&k) { "*" } else { "" }
            );
        }
    }
    let ranked = ranking(results);
    if ranked.len() > 1 {
        println!("ranking by peak output tokens/s per GPU (predicted):");
        for (i, (name, best, user)) in ranked.iter().enumerate() {
            println!(
                "  {}. {name}: {best:.1} tok/s/GPU at {user:.1} tok/s/user",
                i + 1
            );
        }
    }
    eprintln!("latency tables: {table_secs:.2}s (cached ones are read, not computed)");
}

/// Variants by their best tokens/s per GPU, with the tokens/s per user at that point.
fn ranking(results: &[VariantResult]) -> Vec<(String, f64, f64)> {
    let mut ranked: Vec<(String, f64, f64)> = results
        .iter()
        .filter_map(|r| {
            r.points
                .iter()
                .map(|p| &p.2)
                .max_by(|a, b| a.output_tps_per_gpu.total_cmp(&b.output_tps_per_gpu))
                .map(|p| (r.name.clone(), p.output_tps_per_gpu, p.output_tps_per_user))
        })
        .collect();
    ranked.sort_by(|a, b| b.1.total_cmp(&a.1));
    ranked
}

fn print_json(results: &[VariantResult], table_secs: f64) {
    let variants: Vec<serde_json::Value> = results
        .iter()
        .map(|r| {
            let preds: Vec<Prediction> = r.points.iter().map(|p| p.2.clone()).collect();
            let frontier = predict::pareto(&preds);
            json!({
                "variant": r.name,
                "performance_model": r.summary,
                "predicted": true,
                "error": r.error,
                "seconds": r.secs,
                "points": r.points.iter().enumerate().map(|(k, (isl, osl, p))| {
                    let mut v = serde_json::to_value(p).unwrap_or_default();
                    v["isl"] = json!(isl);
                    v["osl"] = json!(osl);
                    v["pareto"] = json!(frontier.contains(&k));
                    v
                }).collect::<Vec<_>>(),
            })
        })
        .collect();
    let ranked: Vec<serde_json::Value> = ranking(results)
        .into_iter()
        .map(|(v, gpu, user)| json!({"variant": v, "output_tps_per_gpu": gpu, "output_tps_per_user": user}))
        .collect();
    println!(
        "{}",
        json!({"format": 1, "predicted": true, "table_seconds": table_secs, "variants": variants, "ranking": ranked})
    );
}

#[derive(Args)]
pub struct PerfTableArgs {
    /// Python of the venv that has aiconfigurator-core.
    #[arg(long)]
    pub python: PathBuf,
    /// Cache of computed tables.
    #[arg(long)]
    pub cache: PathBuf,
    /// Where each role's `ROLE.json` is written.
    #[arg(long)]
    pub out_dir: PathBuf,
    /// The roles' model inputs, as JSON (what `plan --json` shows on this step).
    #[arg(long)]
    pub inputs: String,
    /// Also write Dynamo mocker's `ROLE.npz`.
    #[arg(long)]
    pub npz: bool,
}

pub fn perf_table(a: &PerfTableArgs) -> CliResult {
    let inputs: Vec<ModelInput> = serde_json::from_str(&a.inputs)
        .map_err(|e| CliError::Invalid(format!("perf-table --inputs: {e}")))?;
    let lines = srt_graph_node_tools::perf_table::write_all(
        Path::new(&a.python),
        &inputs,
        Some(&a.cache),
        &a.out_dir,
        a.npz,
    )
    .map_err(|e| CliError::Failed(e.to_string()))?;
    for l in lines {
        println!("{l}");
    }
    Ok(())
}

/// A simulated run's points as the performance model predicts them (from the run's own latency
/// tables, for the lengths, concurrency and request count each point was run with), for the report to
/// overlay. Empty for a run without tables.
pub fn predicted_points(
    run: &srt_graph_results::report::Run,
) -> Vec<srt_graph_results::points::Point> {
    use srt_graph_node_tools::perf_table::{path_for, read, RoleTiming};
    let dir = run.dir.join("perf");
    let tables: Vec<LatencyTable> = ["prefill", "agg", "decode"]
        .iter()
        .filter_map(|role| match read(&path_for(&dir, role)) {
            Ok(RoleTiming::Table(t)) => Some(*t),
            _ => None,
        })
        .collect();
    if tables.is_empty() {
        return Vec::new();
    }
    let deployment = Deployment::from_tables(&tables);
    let lengths = |group: &str| -> Option<(u32, u32)> {
        let mut it = group.split('_');
        let mut isl = None;
        let mut osl = None;
        while let Some(k) = it.next() {
            match k {
                "isl" => isl = it.next().and_then(|v| v.parse().ok()),
                "osl" => osl = it.next().and_then(|v| v.parse().ok()),
                _ => {}
            }
        }
        Some((isl?, osl?))
    };
    run.points
        .iter()
        .filter_map(|p| {
            let (isl, osl) = lengths(&p.group)?;
            let c = u32::try_from(p.concurrency).ok()?;
            let requests = p.json["num_prompts"].as_u64().unwrap_or(u64::from(c) * 5) as u32;
            let pred = predict::predict(
                &deployment,
                Load {
                    isl,
                    osl,
                    concurrency: c,
                    requests,
                    range_ratio: p.json["random_range_ratio"].as_f64().unwrap_or(0.8),
                },
            );
            Some(srt_graph_results::points::Point {
                group: p.group.clone(),
                file: std::path::PathBuf::new(),
                concurrency: p.concurrency,
                json: json!({
                    "predicted": true,
                    "max_concurrency": c,
                    "completed": requests,
                    "failed": 0,
                    "mean_ttft_ms": pred.mean_ttft_ms,
                    "median_ttft_ms": pred.median_ttft_ms,
                    "mean_tpot_ms": pred.mean_tpot_ms,
                    "median_tpot_ms": pred.median_tpot_ms,
                    "median_itl_ms": pred.mean_itl_ms,
                    "request_throughput": pred.request_throughput,
                    "output_throughput": pred.output_throughput,
                }),
            })
        })
        .collect()
}
