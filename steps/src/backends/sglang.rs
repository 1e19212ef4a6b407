//! `backend.type: sglang`: SGLang workers (`python3 -m sglang.launch_server`, or `dynamo.sglang` when
//! Dynamo's frontends coordinate them), configured by `backend.sglang_config.{prefill,decode,aggregated}`
//! flag maps. Under `--mock-workers` the stand-in is `srt-graph mock-worker` (router mode) or Dynamo's
//! mocker (Dynamo mode).

use super::{Backend, WorkerPorts};
use crate::build::{Ctx, StandIn, WorkerProcess};
use crate::diag::{join, Reader};
use crate::kinds::start_worker;
use crate::recipe::{Role, RoleSpec};
use crate::yaml::{Node, Value};
use srt_graph_engine::Step;

pub struct SGLang;

const BOOTSTRAP_FLAG: &str = "disaggregation-bootstrap-port";

impl Backend for SGLang {
    fn name(&self) -> &'static str {
        "sglang"
    }

    fn keys(&self) -> &'static [&'static str] {
        &["sglang_src_dir", "sglang_config", super::kv_events::KEY]
    }

    fn ignored_keys(&self) -> &'static [&'static str] {
        &["mooncake_kv_store"]
    }

    fn check_options(&self, backend: &Node, r: &mut Reader) {
        super::kv_events::check(backend, r);
    }

    fn config_key(&self) -> &'static str {
        "sglang_config"
    }

    fn frontends(&self) -> &'static [&'static str] {
        &["sglang", "dynamo"]
    }

    /// `served-model-name` if a role sets it, else the model path (what SGLang serves under).
    fn served_model_name(&self, recipe: &crate::recipe::Recipe) -> String {
        recipe
            .roles
            .iter()
            .find_map(|r| r.flag(&["served-model-name"]).and_then(|n| n.scalar_text()))
            .or_else(|| recipe.model_path.clone())
            .unwrap_or_else(|| "default".into())
    }

    fn role_config(
        &self,
        section: Option<&Node>,
        path: &str,
        r: &mut Reader,
    ) -> Vec<(String, Node)> {
        let mut config = r.flag_map(section, path);
        // srt-slurm refuses snake_case flags; SGLang's argparse only knows the kebab-case spelling, so
        // normalise (a seed example writes `served_model_name`) unless both spellings are present.
        for i in 0..config.len() {
            let k = config[i].0.clone();
            if k.contains('_') {
                let kebab = k.replace('_', "-");
                if config.iter().any(|(o, _)| o == &kebab) {
                    r.error(
                        config[i].1.pos,
                        &join(path, &k),
                        format!("`{k}` and `{kebab}` are the same SGLang flag"),
                        Some("keep one".into()),
                    );
                } else {
                    config[i].0 = kebab;
                }
            }
        }
        for (k, v) in &config {
            if matches!(k.as_str(), "port" | BOOTSTRAP_FLAG) {
                let valid = match &v.value {
                    Value::Int(p) => (1..=65535).contains(p),
                    _ => false,
                };
                if !valid {
                    r.error(
                        v.pos,
                        &join(path, k),
                        format!("{} is not a TCP port", v.describe()),
                        Some("a port is an integer from 1 to 65535".into()),
                    );
                }
            }
            if matches!(v.value, Value::Map(_)) {
                r.error(
                    v.pos,
                    &join(path, k),
                    "a flag value cannot be a mapping",
                    Some("write it as a JSON string: '{\"key\": 1}'".into()),
                );
            }
        }
        config
    }

    /// Prefill and decode must name the same bootstrap port (the seed's most common router failure).
    fn check_roles(&self, roles: &[RoleSpec], r: &mut Reader) {
        let (Some(p), Some(d)) = (
            roles.iter().find(|s| s.role == Role::Prefill),
            roles.iter().find(|s| s.role == Role::Decode),
        ) else {
            return;
        };
        let pp = p.flag(&[BOOTSTRAP_FLAG]);
        let dp = d.flag(&[BOOTSTRAP_FLAG]);
        let val = |n: Option<&Node>| {
            n.and_then(Node::scalar_text)
                .unwrap_or_else(|| start_worker::BOOTSTRAP_PORT.to_string())
        };
        if (pp.is_some() || dp.is_some()) && val(pp) != val(dp) {
            let (at, path) = match dp {
                Some(n) => (
                    n.pos,
                    "backend.sglang_config.decode.disaggregation-bootstrap-port",
                ),
                None => (
                    pp.map_or(p.config_pos, |n| n.pos),
                    "backend.sglang_config.prefill.disaggregation-bootstrap-port",
                ),
            };
            r.error(
                at,
                path,
                format!(
                    "disaggregation bootstrap port mismatch: prefill uses {}{}, decode uses {}{}",
                    val(pp),
                    if pp.is_none() { " (default)" } else { "" },
                    val(dp),
                    if dp.is_none() { " (default)" } else { "" },
                ),
                Some("prefill and decode must name the same `disaggregation-bootstrap-port` (default 30001); the router hands decode the prefill's bootstrap port".into()),
            );
        }
    }

    fn ports(&self, spec: &RoleSpec) -> WorkerPorts {
        let flag_port = |key: &str| {
            spec.flag(&[key])
                .and_then(|n| n.scalar_text())
                .and_then(|t| t.parse::<u16>().ok())
        };
        // Prefill always gets a bootstrap port; decode only repeats it when the recipe wrote it.
        let names_bootstrap = spec.role == Role::Prefill || spec.flag(&[BOOTSTRAP_FLAG]).is_some();
        WorkerPorts {
            http: flag_port("port").unwrap_or(start_worker::HTTP_PORT),
            bootstrap: names_bootstrap
                .then(|| flag_port(BOOTSTRAP_FLAG).unwrap_or(start_worker::BOOTSTRAP_PORT)),
        }
    }

    fn perf_model_backend(&self) -> Option<&'static str> {
        Some("sglang")
    }

    fn engine_shape(&self, spec: &RoleSpec) -> Result<super::engine_shape::EngineShape, String> {
        use super::engine_shape::{count, fraction, switch, EngineShape};
        let f = |names: &[&str]| {
            let both: Vec<String> = names
                .iter()
                .flat_map(|n| [n.to_string(), n.replace('-', "_")])
                .collect();
            let refs: Vec<&str> = both.iter().map(String::as_str).collect();
            spec.flag(&refs).cloned()
        };
        let tp = count(f(&["tensor-parallel-size", "tp-size", "tp"]).as_ref()).unwrap_or(1);
        let dp = count(f(&["data-parallel-size", "dp-size", "dp"]).as_ref()).unwrap_or(1);
        let dp_attention = switch(f(&["enable-dp-attention"]).as_ref());
        let text = |names: &[&str]| f(names).and_then(|n| n.scalar_text());
        Ok(EngineShape {
            // Without DP attention, `dp` copies of a `tp` worker each schedule their own batch.
            tp: if dp_attention { tp } else { tp * dp },
            attention_dp: dp.max(1),
            moe_ep: count(f(&["expert-parallel-size", "ep-size", "ep"]).as_ref()).unwrap_or(1),
            pp: count(f(&["pipeline-parallel-size", "pp-size"]).as_ref()).unwrap_or(1),
            nextn: text(&["speculative-algorithm"])
                .map(|_| count(f(&["speculative-num-steps"]).as_ref()).unwrap_or(3))
                .unwrap_or(0),
            max_running: count(f(&["max-running-requests"]).as_ref()),
            max_running_per_rank: false,
            chunked_prefill: text(&["chunked-prefill-size"])
                .and_then(|t| t.parse::<i64>().ok())
                .map(|c| if c <= 0 { 1 << 20 } else { c as u32 }),
            mem_fraction: fraction(f(&["mem-fraction-static"]).as_ref()),
            quantization: text(&["quantization"]),
            kv_cache_dtype: text(&["kv-cache-dtype"]),
        })
    }

    fn stand_in(&self, dynamo: bool) -> StandIn {
        if dynamo {
            StandIn::DynamoMocker
        } else {
            StandIn::MockWorker
        }
    }

    fn worker(&self, ctx: &Ctx<'_>, w: &WorkerProcess<'_>) -> Option<Step> {
        let python = &ctx.worker_python;
        let launch = match ctx.stand_in {
            StandIn::DynamoMocker => {
                // The mocker simulates a whole worker in one process: only the leader runs.
                if w.place.dist.as_ref().is_some_and(|d| d.3 > 0) {
                    return None;
                }
                return Some(start_worker::dynamo_mocker(
                    w.spec,
                    python,
                    &w.place,
                    &ctx.mocker_model(w.place.node),
                    &ctx.served_model,
                    w.env.clone(),
                    ctx.mocker_role_flags,
                ));
            }
            StandIn::MockWorker => vec![ctx.target.srt_graph.clone(), "mock-worker".into()],
            StandIn::None if ctx.recipe.frontend.dynamo => {
                vec![python.clone(), "-m".into(), "dynamo.sglang".into()]
            }
            StandIn::None => vec![python.clone(), "-m".into(), "sglang.launch_server".into()],
        };
        let mut s = start_worker::step(w.spec, launch, &w.place, w.env.clone());
        super::kv_events::apply(ctx.recipe, w, &[], &mut s);
        Some(s)
    }
}
