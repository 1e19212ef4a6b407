//! Stage: one `fingerprint/<node>` step per worker node, once that node is prepared (its venv and
//! installs done), beside the workers: what `srt-graph diff` compares between runs.

use super::Compiler;
use crate::kinds::fingerprint;

impl Compiler<'_> {
    pub(super) fn fingerprints(&mut self) {
        let ctx = &self.ctx;
        let image = ctx.target.container.as_ref().map(|c| c.image.as_str());
        // The model directory where the workers see it: mounted at /model in their container.
        let model = ctx
            .recipe
            .model_path
            .as_deref()
            .filter(|p| p.starts_with('/'))
            .map(|p| if image.is_some() { "/model" } else { p });
        for k in 0..ctx.recipe.worker_nodes() {
            let mut s = fingerprint::step(
                k,
                &ctx.nodes.names[k],
                &ctx.target.srt_graph,
                &ctx.worker_python,
                image,
                model,
                &ctx.target.run_dir,
            );
            s.depends_on.extend(ctx.venv_ready.iter().cloned());
            s.depends_on.extend(ctx.packages_ready.iter().cloned());
            if let Some(p) = self.prep.get(&k) {
                s.depends_on.push(p.clone());
            }
            s.depends_on.sort();
            s.depends_on.dedup();
            self.steps.push(s);
        }
    }
}
