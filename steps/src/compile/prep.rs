//! Stage: per worker node, the preparation chain every worker process there waits for — the recipe's
//! setup script, the frontend type's node installs, the mounted SGLang source and its editable install,
//! and the weightless model directory Dynamo's mocker reads.

use super::Compiler;
use crate::build::StandIn;
use crate::kinds::{self, pip_install};
use srt_graph_engine::Step;

impl Compiler<'_> {
    pub(super) fn node_prep(&mut self) {
        for k in 0..self.ctx.recipe.worker_nodes() {
            let chain = self.prep_chain(k);
            let mut last: Option<String> = None;
            for mut s in chain {
                if let Some(l) = &last {
                    s.depends_on.push(l.clone());
                }
                last = Some(s.id.clone());
                self.steps.push(s);
            }
            if let Some(l) = last {
                self.prep.insert(k, l);
            }
        }
    }

    /// Node `k`'s preparation steps, in the order they run.
    fn prep_chain(&self, k: usize) -> Vec<Step> {
        let (ctx, recipe) = (&self.ctx, self.ctx.recipe);
        let name = &ctx.nodes.names[k];
        let mut chain = Vec::new();
        // A setup script prepares a real engine's environment: the simulation skips it (noted once).
        if let Some(script) = recipe
            .setup_script
            .as_ref()
            .filter(|_| ctx.stand_in == StandIn::None)
        {
            let host_configs = recipe.srtctl_root.as_deref().map_or_else(
                || "/configs".to_string(),
                |r| format!("{}/configs", r.trim_end_matches('/')),
            );
            let configs = if ctx.target.container.is_some() {
                ctx.target.configs_dir.clone()
            } else {
                host_configs.clone()
            };
            chain.push(kinds::setup_script::step(
                k,
                name,
                &configs,
                script,
                &host_configs,
            ));
        }
        chain.extend(self.frontend.node_installs(ctx, k));
        if let Some((src, _)) = &recipe.sglang_src_dir {
            let dst = ctx.target.ext_src_dir.replace("{node}", name);
            // In a container the source is a mount (`/ext-sglang-src/`); on a host it is linked there.
            if ctx.target.container.is_none() {
                chain.push(kinds::mount_source::step(
                    k,
                    name,
                    &ctx.target.srt_graph,
                    src,
                    &dst,
                ));
            }
            let mut pip = pip_install::editable(k, name, &ctx.worker_python, &dst);
            if let Some(venv) = ctx.venv {
                // Every node's install goes into the one shared venv here: serialise them.
                pip.command = pip.command.map(|argv| pip_install::locked(venv, argv));
                pip.depends_on.extend(ctx.venv_ready.iter().cloned());
            }
            chain.push(pip);
        }
        if ctx.stand_in == StandIn::DynamoMocker && ctx.target.local_model_dir.is_none() {
            chain.push(kinds::mock_model::step(
                k,
                name,
                &ctx.target.srt_graph,
                &ctx.mocker_model(k),
                &ctx.served_model,
            ));
        }
        chain
    }
}
