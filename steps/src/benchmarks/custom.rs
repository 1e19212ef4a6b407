//! `benchmark.type: custom`: the recipe's own `benchmark.command`, run with `bash -lc` once the
//! deployment is healthy (srtctl's custom benchmark).

use super::BenchmarkType;
use crate::build::Ctx;
use crate::recipe::Benchmark;
use srt_graph_engine::{Lifetime, Step};

pub struct Custom;

impl BenchmarkType for Custom {
    fn name(&self) -> &'static str {
        "custom"
    }

    fn keys(&self) -> &'static [&'static str] {
        &["command", "env"]
    }

    fn steps(&self, ctx: &Ctx<'_>, b: &Benchmark, endpoint: &str, after: &str) -> Vec<Step> {
        let command = super::opt(b, "command", "");
        let mut s = crate::kinds::run_benchmark::SPEC.step("custom", 0, Lifetime::Task);
        s.command = Some(vec!["bash".into(), "-lc".into(), command]);
        s.env = crate::kinds::env(&ctx.recipe.environment);
        s.env.insert("ENDPOINT".into(), endpoint.into());
        s.env.insert("MODEL".into(), ctx.served_model.clone());
        if let Some(crate::yaml::Value::Map(m)) = b.option("env").map(|n| &n.value) {
            for e in m {
                s.env
                    .insert(e.key.clone(), e.value.scalar_text().unwrap_or_default());
            }
        }
        s.depends_on.push(after.into());
        s.summary = "the recipe's own benchmark command".into();
        vec![s]
    }
}
