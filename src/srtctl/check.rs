//! `srt-graph check RUN_DIR|LOCKFILE [--json]`: srtctl's check. This node's environment (srt-graph,
//! OS, kernel, Python and its packages, GPUs) is captured once and compared with every node's
//! fingerprint the run recorded (`fingerprints/<node>.json`); any difference exits 1.

use crate::error::{CliError, CliResult};
use clap::Args;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

#[derive(Args)]
pub struct CheckArgs {
    /// A run directory, or its `recipe.lock.yaml`.
    pub path: PathBuf,
    /// The differences as JSON (an array of `{worker, field, status, message}`) on stdout.
    #[arg(long)]
    pub json: bool,
}

pub fn check(args: &CheckArgs) -> CliResult {
    super::srtctl_exit(run(args))
}

fn run(args: &CheckArgs) -> CliResult {
    let run_dir = if args.path.is_file() {
        args.path
            .parent()
            .map_or_else(|| PathBuf::from("."), Path::to_path_buf)
    } else {
        args.path.clone()
    };
    let recorded = fingerprints(&run_dir.join("fingerprints")).map_err(|e| {
        CliError::Invalid(format!(
            "could not load fingerprints from {}: {e} (a run writes them once its nodes are up)",
            args.path.display()
        ))
    })?;
    let mut here_by_python: BTreeMap<String, Value> = BTreeMap::new();
    let mut differences = Vec::new();
    for (worker, recorded) in &recorded {
        // The same interpreter the node used, when this node has it; else the one on PATH.
        let python = recorded["python"]["executable"]
            .as_str()
            .filter(|p| Path::new(p).is_file())
            .unwrap_or("python3")
            .to_string();
        let here = here_by_python.entry(python.clone()).or_insert_with(|| {
            srt_graph_node_tools::fingerprint::collect("here", &python, None, None)
        });
        for (field, message) in compare(recorded, here) {
            differences.push(
                json!({"worker": worker, "field": field, "status": "mismatch", "message": message}),
            );
        }
    }
    if args.json {
        crate::cli_plan::emit(&format!(
            "{}\n",
            serde_json::to_string_pretty(&differences).unwrap_or_default()
        ));
    } else if differences.is_empty() {
        eprintln!(
            "✓ this node matches the {} fingerprint(s) of {}",
            recorded.len(),
            run_dir.display()
        );
    } else {
        let mut last = "";
        for d in &differences {
            let worker = d["worker"].as_str().unwrap_or("");
            if worker != last {
                eprintln!("{worker}:");
                last = worker;
            }
            eprintln!(
                "  ✗ {}: {}",
                d["field"].as_str().unwrap_or(""),
                d["message"].as_str().unwrap_or("")
            );
        }
    }
    if differences.is_empty() {
        Ok(())
    } else {
        Err(CliError::Failed(format!(
            "{} difference(s) between this node and the run's fingerprints",
            differences.len()
        )))
    }
}

fn fingerprints(dir: &Path) -> Result<BTreeMap<String, Value>, String> {
    let mut out = BTreeMap::new();
    for entry in std::fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))? {
        let path = entry.map_err(|e| e.to_string())?.path();
        if path.extension().is_some_and(|e| e == "json") {
            let text =
                std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
            let value: Value =
                serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
            let name = path
                .file_stem()
                .map_or_else(String::new, |s| s.to_string_lossy().into_owned());
            out.insert(name, value);
        }
    }
    if out.is_empty() {
        return Err(format!("no fingerprint in {}", dir.display()));
    }
    Ok(out)
}

/// (field, what differs) for each field of `recorded` that `here` does not match.
fn compare(recorded: &Value, here: &Value) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for (field, pointer) in [
        ("srt_graph", "/srt_graph"),
        ("os", "/os"),
        ("kernel", "/kernel"),
        ("python.version", "/python/version"),
        ("gpus", "/gpus"),
    ] {
        let (a, b) = (recorded.pointer(pointer), here.pointer(pointer));
        if a != b {
            out.push((
                field.to_string(),
                format!("run had {}, this node has {}", show(a), show(b)),
            ));
        }
    }
    use srt_graph_results::diff::packages;
    let (a, b) = (packages(recorded), packages(here));
    for (name, version) in &a {
        match b.get(name) {
            Some(v) if v == version => {}
            Some(v) => out.push((
                format!("package {name}"),
                format!("run had {version}, this node has {v}"),
            )),
            None => out.push((
                format!("package {name}"),
                format!("run had {version}, this node has none"),
            )),
        }
    }
    for (name, version) in b.iter().filter(|(n, _)| !a.contains_key(*n)) {
        out.push((
            format!("package {name}"),
            format!("not in the run, this node has {version}"),
        ));
    }
    out
}

fn show(v: Option<&Value>) -> String {
    match v {
        None | Some(Value::Null) => "nothing".into(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    }
}
