//! Stage: the run's own Python environment (local simulation): created once on node 0, then what the
//! frontend type needs installed into it.

use super::Compiler;
use crate::kinds::pip_install;

impl Compiler<'_> {
    pub(super) fn venv(&mut self) {
        let Some(venv) = self.ctx.venv else { return };
        let name = &self.ctx.nodes.names[0];
        self.steps.push(pip_install::venv(0, name, venv));
        self.ctx.venv_ready.push(format!("venv/{name}"));
        if self.ctx.recipe.roles.is_empty() {
            return;
        }
        let installs = self.frontend.venv_installs(&self.ctx, venv);
        if let Some(last) = installs.last() {
            self.ctx.packages_ready.push(last.id.clone());
        }
        self.steps.extend(installs);
    }
}
