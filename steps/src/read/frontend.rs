//! `frontend:`: which frontend type (a plug-in in `frontends`) — from `frontend.type`, or the seed era's
//! `use_sglang_router` under `backend:` or `frontend:` — how many, their arguments and environment.

use crate::diag::{join, Keys, Reader};
use crate::frontends::{self, FrontendType};
use crate::recipe::Frontend;
use crate::yaml::Node;

const FRONTEND: Keys = Keys {
    known: &[
        "type",
        "use_sglang_router",
        "enable_multiple_frontends",
        "num_additional_frontends",
        "args",
        "env",
        "sglang_router_args",
        "dynamo_frontend_args",
        "nginx_keepalive_timeout",
        "nginx_container",
        "nginx_raise_ulimit",
    ],
    ignored: &[
        "nginx_session_affinity",
        "nginx_session_affinity_header",
        "dedicated_node",
        "ctx_router",
        "gen_router",
        "server_config_extra",
        "orchestrator_placement",
    ],
};

pub(super) fn read(front: &Node, backend: &Node, r: &mut Reader) -> Frontend {
    r.check_keys(front, "frontend", &FRONTEND);
    let kind = frontend_type(front, backend, r);
    let pick_bool = |r: &mut Reader, key: &str| {
        r.boolean(front.get(key), &join("frontend", key))
            .or_else(|| r.boolean(backend.get(key), &join("backend", key)))
    };
    let multiple = pick_bool(r, "enable_multiple_frontends").unwrap_or(true);
    let num_additional = r
        .int(
            front.get("num_additional_frontends"),
            "frontend.num_additional_frontends",
            0,
            4096,
        )
        .or_else(|| {
            r.int(
                backend.get("num_additional_frontends"),
                "backend.num_additional_frontends",
                0,
                4096,
            )
        })
        .unwrap_or(9) as u32;
    let mut args = r.flag_map(front.get("args"), "frontend.args");
    let legacy = kind.legacy_args_key();
    args.extend(r.flag_map(front.get(legacy), &join("frontend", legacy)));
    Frontend {
        kind: kind.name(),
        dynamo: kind.dynamo(),
        multiple,
        num_additional,
        args,
        env: r.string_map(front.get("env"), "frontend.env"),
        nginx_keepalive_timeout: r
            .string(
                front.get("nginx_keepalive_timeout"),
                "frontend.nginx_keepalive_timeout",
            )
            .unwrap_or_else(|| "600s".into()),
        nginx_container: r.string(front.get("nginx_container"), "frontend.nginx_container"),
        nginx_raise_ulimit: r
            .boolean(
                front.get("nginx_raise_ulimit"),
                "frontend.nginx_raise_ulimit",
            )
            .unwrap_or(false),
        options: front
            .as_map()
            .map(|m| m.iter().map(|e| (e.key.clone(), e.value.clone())).collect())
            .unwrap_or_default(),
    }
}

/// `frontend.type`, else the seed's `use_sglang_router: true` (router), else Dynamo (srt-slurm's default).
fn frontend_type(front: &Node, backend: &Node, r: &mut Reader) -> &'static dyn FrontendType {
    let seed_router = r
        .boolean(
            backend.get("use_sglang_router"),
            "backend.use_sglang_router",
        )
        .unwrap_or(false)
        | r.boolean(front.get("use_sglang_router"), "frontend.use_sglang_router")
            .unwrap_or(false);
    let router = &frontends::sglang_router::SglangRouter;
    let default: &'static dyn FrontendType = if seed_router {
        router
    } else {
        &frontends::dynamo::Dynamo
    };
    let Some(t) = front.get("type") else {
        return default;
    };
    let Some(name) = r.string(Some(t), "frontend.type") else {
        return default;
    };
    match frontends::find(&name) {
        Some(f) => {
            if seed_router && f.dynamo() {
                r.error(
                    t.pos,
                    "frontend.type",
                    format!("`frontend.type: {name}` contradicts `use_sglang_router: true`"),
                    Some("keep one of them".into()),
                );
            }
            f
        }
        None => {
            let valid: Vec<&str> = frontends::ALL.iter().map(|f| f.name()).collect();
            r.error(
                t.pos,
                "frontend.type",
                format!("frontend `{name}` is not supported"),
                Some(format!("valid: {}", valid.join(", "))),
            );
            default
        }
    }
}
