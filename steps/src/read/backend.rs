//! `backend:`: which backend (a plug-in in `backends`), the keys every backend shares, and the keys the
//! chosen backend reads itself.

use crate::backends::{self, Backend};
use crate::diag::{Keys, Reader};
use crate::recipe::Frontend;
use crate::yaml::{Node, Pos};

/// Keys under `backend:` that every backend shares (the seed era kept frontend switches here too).
const SHARED: &[&str] = &[
    "type",
    "use_sglang_router",
    "enable_multiple_frontends",
    "num_additional_frontends",
    "prefill_environment",
    "decode_environment",
    "aggregated_environment",
    "gpu_type",
];

/// The backend `backend.type` names (SGLang when absent or unknown, after reporting it).
pub(super) fn read(backend: &Node, r: &mut Reader) -> &'static dyn Backend {
    let default = &backends::sglang::SGLang;
    let chosen = match backend.get("type") {
        None => default as &dyn Backend,
        Some(t) => match r.string(Some(t), "backend.type") {
            None => default,
            Some(kind) => backends::find(&kind).unwrap_or_else(|| {
                r.error(
                    t.pos,
                    "backend.type",
                    format!("backend `{kind}` is not supported"),
                    Some(format!("valid: {}", backends::names().join(", "))),
                );
                default
            }),
        },
    };
    let known: Vec<&str> = SHARED.iter().chain(chosen.keys()).copied().collect();
    r.check_keys(
        backend,
        "backend",
        &Keys {
            known: &known,
            ignored: chosen.ignored_keys(),
        },
    );
    chosen.check_options(backend, r);
    chosen
}

/// The chosen backend's own keys as written (not the shared ones, not its role configuration).
pub(super) fn options(backend: &Node, chosen: &dyn Backend) -> Vec<(String, Node)> {
    backend
        .as_map()
        .map(|m| {
            m.iter()
                .filter(|e| chosen.keys().contains(&e.key.as_str()) && e.key != chosen.config_key())
                .map(|e| (e.key.clone(), e.value.clone()))
                .collect()
        })
        .unwrap_or_default()
}

/// `backend.sglang_src_dir`: a local SGLang checkout workers install in editable mode (router mode only).
pub(super) fn sglang_src_dir(
    backend: &Node,
    frontend: &Frontend,
    r: &mut Reader,
) -> Option<(String, Pos)> {
    let n = backend.get("sglang_src_dir")?;
    let dir = r
        .string(Some(n), "backend.sglang_src_dir")
        .filter(|s| !s.trim().is_empty())?;
    if frontend.dynamo {
        r.error(
            n.pos,
            "backend.sglang_src_dir",
            "`sglang_src_dir` only works in SGLang router mode",
            Some("set `backend.use_sglang_router: true` (or `frontend.type: sglang`), or remove `sglang_src_dir`".into()),
        );
    }
    Some((dir, n.pos))
}
