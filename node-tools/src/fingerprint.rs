//! `srt-graph node-op fingerprint`: what a node ran with, written once per node and run to
//! `fingerprints/<node>.json` so that two runs can be compared (`srt-graph diff`): srt-graph's version,
//! the OS, the Python and every package installed for it (in the worker's venv or container), the
//! container, and the GPUs and driver when `nvidia-smi` is there. A part that cannot be read is recorded
//! as such, never guessed; the command itself only fails when it cannot write its file.

use serde_json::{json, Value};
use std::path::Path;
use std::process::Command;

/// Lists the interpreter's version and its installed distributions, sorted, as `name==version`.
const PYTHON_PROBE: &str = "import sys, json, importlib.metadata as m\n\
ps = sorted({(d.metadata['Name'] or '?') + '==' + d.version for d in m.distributions()}, key=str.lower)\n\
print(json.dumps({'executable': sys.executable, 'version': sys.version.split()[0], 'packages': ps}))";

fn run(program: &str, args: &[&str]) -> Result<String, String> {
    let out = Command::new(program)
        .args(args)
        .output()
        .map_err(|e| format!("{program}: {e}"))?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        return Err(format!(
            "{program} exited with {}: {}",
            out.status,
            err.lines().last().unwrap_or("").trim()
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn python(python: &str) -> Value {
    match run(python, &["-c", PYTHON_PROBE])
        .and_then(|o| serde_json::from_str::<Value>(o.trim()).map_err(|e| format!("{python}: {e}")))
    {
        Ok(v) => v,
        Err(e) => json!({ "executable": python, "error": e }),
    }
}

fn gpus() -> Value {
    match run(
        "nvidia-smi",
        &[
            "--query-gpu=name,driver_version,memory.total",
            "--format=csv,noheader",
        ],
    ) {
        Ok(out) => Value::Array(
            out.lines()
                .filter(|l| !l.trim().is_empty())
                .map(|l| {
                    let f: Vec<&str> = l.split(',').map(str::trim).collect();
                    json!({"name": f.first(), "driver": f.get(1), "memory": f.get(2)})
                })
                .collect(),
        ),
        Err(e) => json!({ "none": e }),
    }
}

/// This system's `PRETTY_NAME` from `/etc/os-release`.
pub fn os_release() -> Option<String> {
    std::fs::read_to_string("/etc/os-release")
        .ok()
        .and_then(|t| {
            t.lines()
                .find_map(|l| l.strip_prefix("PRETTY_NAME="))
                .map(|v| v.trim_matches('"').to_string())
        })
}

/// What a model directory says of its Hugging Face origin (srtctl's places): the commit in
/// `refs/main` or a download's `.metadata`, the repository in `download_metadata.json`.
pub fn model_identity(dir: &Path) -> Value {
    if !dir.is_dir() {
        return json!({"path": dir, "error": "not a directory on this node"});
    }
    let read = |p: &Path| std::fs::read_to_string(p).ok();
    let is_commit = |s: &str| s.len() == 40 && s.bytes().all(|b| b.is_ascii_hexdigit());
    let mut revision = [dir.join(".huggingface/refs/main"), dir.join("refs/main")]
        .iter()
        .find_map(|p| read(p))
        .map(|s| s.trim().to_string());
    if revision.is_none() {
        let downloads = dir.join(".cache/huggingface/download");
        let mut metas: Vec<_> = std::fs::read_dir(&downloads)
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|e| e == "metadata"))
            .collect();
        metas.sort();
        revision = metas.iter().find_map(|p| {
            let first = read(p)?.lines().next()?.trim().to_string();
            is_commit(&first).then_some(first)
        });
    }
    let meta: Option<Value> = read(&dir.join(".huggingface/download_metadata.json"))
        .and_then(|t| serde_json::from_str(&t).ok());
    if let Some(c) = meta.as_ref().and_then(|m| m["commit_hash"].as_str()) {
        revision = Some(c.to_string());
    }
    json!({
        "path": dir,
        "hf_revision": revision,
        "hf_repo": meta.as_ref().and_then(|m| m["repo_id"].as_str()),
    })
}

/// The inference frameworks among `packages` (`name==version`), by srtctl's names.
pub fn frameworks(packages: &Value) -> Value {
    const NAMES: [(&str, &str); 4] = [
        ("vllm", "vllm"),
        ("sglang", "sglang"),
        ("tensorrt_llm", "tensorrt-llm"),
        ("dynamo", "ai-dynamo"),
    ];
    let mut out = serde_json::Map::new();
    for p in packages
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
    {
        if let Some((name, version)) = p.split_once("==") {
            let norm = name.to_lowercase().replace('_', "-");
            if let Some((key, _)) = NAMES.iter().find(|(_, pkg)| *pkg == norm) {
                out.insert((*key).into(), json!(version));
            }
        }
    }
    Value::Object(out)
}

/// Collects the fingerprint; `node` is the plan's node name, `container` the image the step runs in,
/// `model` the model directory as the workers see it.
pub fn collect(
    node: &str,
    python_path: &str,
    container: Option<&str>,
    model: Option<&Path>,
) -> Value {
    let python_info = python(python_path);
    let frameworks = frameworks(&python_info["packages"]);
    let uname = nix::sys::utsname::uname().ok();
    let field = |f: fn(&nix::sys::utsname::UtsName) -> &std::ffi::OsStr| {
        uname.as_ref().map(|u| f(u).to_string_lossy().into_owned())
    };
    json!({
        "node": node,
        "hostname": field(nix::sys::utsname::UtsName::nodename),
        "srt_graph": env!("CARGO_PKG_VERSION"),
        "os": os_release(),
        "kernel": field(nix::sys::utsname::UtsName::release),
        "container": container.map(|image| json!({
            "image": image,
            "inside": Path::new("/.dockerenv").exists() || std::env::var_os("ENROOT_ROOTFS").is_some()
                || std::env::var_os("container").is_some(),
        })),
        "python": python_info,
        "frameworks": frameworks,
        "model": model.map(model_identity),
        "gpus": gpus(),
    })
}

/// Writes the fingerprint to `out` (temp + rename).
pub fn write(out: &Path, fingerprint: &Value) -> Result<(), String> {
    if let Some(dir) = out.parent() {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    let bytes = serde_json::to_vec_pretty(fingerprint).map_err(|e| e.to_string())?;
    srt_graph_engine::rundir::write_atomic(out, &bytes)
        .map_err(|e| format!("{}: {e}", out.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_what_it_cannot_read_instead_of_failing() {
        let v = collect("node0", "/nonexistent/python3", Some("img.sqsh"), None);
        assert_eq!(v["node"], "node0");
        assert!(v["python"]["error"]
            .as_str()
            .is_some_and(|e| e.contains("/nonexistent/python3")));
        assert_eq!(v["container"]["image"], "img.sqsh");
        assert!(v["srt_graph"].as_str().is_some());
    }

    #[test]
    fn lists_the_packages_of_a_real_python() {
        if Command::new("python3").arg("-V").output().is_err() {
            log_line!("skipped: no python3");
            return;
        }
        let v = collect("n", "python3", None, None);
        assert!(
            v["python"]["version"]
                .as_str()
                .is_some_and(|s| s.starts_with('3')),
            "{v}"
        );
        assert!(v["python"]["packages"].is_array(), "{v}");
    }
}
