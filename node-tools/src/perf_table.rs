//! `srt-graph perf-table`: before a simulated run's workers start, each role's latency table is computed
//! (or read from the cache) and written to the run directory, where that role's mock workers read it.
//! A combination the performance model cannot price becomes a fallback file that says why; a broken
//! install fails the step, so no worker starts on a timing nobody asked for.

use srt_graph_perf_model::aiconfigurator as aic;
use srt_graph_perf_model::{LatencyTable, ModelInput, PerfModelError};
use std::path::{Path, PathBuf};

/// What a role's mock workers read: the table, or why there is none.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
#[serde(untagged)]
pub enum RoleTiming {
    Table(Box<LatencyTable>),
    Fallback { fallback: String },
}

pub fn path_for(dir: &Path, role: &str) -> PathBuf {
    dir.join(format!("{role}.json"))
}

/// Reads a role's timing file (what `--mock-perf-table` names).
pub fn read(path: &Path) -> Result<RoleTiming, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let timing: RoleTiming =
        serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    if let RoleTiming::Table(t) = &timing {
        t.validate()
            .map_err(|e| format!("{}: {e}", path.display()))?;
    }
    Ok(timing)
}

/// Computes every role's timing and writes one file per role into `out_dir`; returns the lines to print.
pub fn write_all(
    python: &Path,
    inputs: &[ModelInput],
    cache: Option<&Path>,
    out_dir: &Path,
    npz: bool,
) -> Result<Vec<String>, PerfModelError> {
    aic::check_install(python)?;
    let tables = aic::compute_tables(python, inputs, cache)?;
    std::fs::create_dir_all(out_dir)
        .map_err(|e| PerfModelError::Table(format!("{}: {e}", out_dir.display())))?;
    let mut lines = Vec::new();
    for (input, table) in inputs.iter().zip(tables) {
        let timing = match table {
            Ok(t) => {
                lines.push(format!(
                    "{}: {} {} {} ({} decode batch sizes × {} context lengths{})",
                    input.role,
                    t.engine.name,
                    t.engine.version,
                    t.backend_version.as_deref().unwrap_or("default"),
                    t.decode_batch_grid.len(),
                    t.ctx_grid.len(),
                    t.kv_capacity_tokens
                        .map(|k| format!(", KV cache {k} tokens per rank"))
                        .unwrap_or_default()
                ));
                if npz {
                    let file = out_dir.join(format!("{}.npz", input.role));
                    write_mocker_npz(python, &t, &file)?;
                }
                RoleTiming::Table(Box::new(t))
            }
            Err(why) => {
                lines.push(format!(
                    "{}: aiconfigurator cannot model it ({why}); its workers fall back to the fixed timing",
                    input.role
                ));
                RoleTiming::Fallback { fallback: why }
            }
        };
        let text = serde_json::to_string_pretty(&timing)
            .map_err(|e| PerfModelError::Table(e.to_string()))?;
        let path = path_for(out_dir, &input.role);
        std::fs::write(&path, text)
            .map_err(|e| PerfModelError::Table(format!("{}: {e}", path.display())))?;
    }
    Ok(lines)
}

/// Dynamo's mocker reads latencies from a "mocker-format" NPZ (`--planner-profile-data`): prefill time
/// by ISL, and ITL by (active KV tokens, context length). Written from the table with the venv's numpy.
const NPZ_SCRIPT: &str = r#"import json, sys, numpy as np
t = json.load(sys.stdin)
out = sys.argv[1]
def interp(grid, vals, x):
    return float(np.interp(x, grid, vals))
ctx = t["ctx_grid"]
pre = t["prefill_ms"][0]
isl = np.linspace(ctx[0], ctx[-1], 100)
ttft = [interp(ctx, pre, x) for x in isl]
dec_b = t["decode_batch_grid"]
dec = np.array(t["decode_ms"])
max_bs = dec_b[-1]
kv = np.linspace(0, max_bs * ctx[-1], 100)
clen = np.linspace(1, ctx[-1], 100)
itl = np.zeros((100, 100))
for i, k in enumerate(kv):
    for j, c in enumerate(clen):
        bs = min(max(1.0, k / c), max_bs)
        row = [interp(ctx, dec[r], c) for r in range(len(dec_b))]
        itl[i, j] = interp(dec_b, row, bs)
np.savez(out, prefill_isl=isl, prefill_ttft_ms=np.array(ttft), decode_active_kv_tokens=kv,
         decode_context_length=clen, decode_itl=itl)
"#;

fn write_mocker_npz(python: &Path, t: &LatencyTable, file: &Path) -> Result<(), PerfModelError> {
    use std::io::Write;
    let mut child = std::process::Command::new(python)
        .arg("-c")
        .arg(NPZ_SCRIPT)
        .arg(file)
        .stdin(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .map_err(|e| PerfModelError::Table(format!("{}: {e}", python.display())))?;
    let body = serde_json::to_vec(t).map_err(|e| PerfModelError::Table(e.to_string()))?;
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(&body);
    }
    let out = child
        .wait_with_output()
        .map_err(|e| PerfModelError::Table(e.to_string()))?;
    if !out.status.success() {
        return Err(PerfModelError::Table(format!(
            "writing {}: {}",
            file.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(())
}
