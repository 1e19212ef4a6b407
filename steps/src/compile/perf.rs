//! Stage: the performance model. `plan` always says which model times the deployment (or why none
//! does); a simulated run installs it, computes each role's latency table before any worker starts, and
//! paces every stand-in by it at the run's simulation speed.

use super::Compiler;
use crate::build::StandIn;
use crate::kinds::{perf_table, pip_install, run_benchmark};
use srt_graph_engine::Step;
use srt_graph_perf_model::aiconfigurator as aic;
use srt_graph_perf_model::DeploymentModel;

/// Where a simulated run keeps its roles' timing files.
pub fn perf_dir(run_dir: &str) -> String {
    format!("{run_dir}/perf")
}

impl Compiler<'_> {
    /// The simulated clock's speed-up this run applies: the mocker backend is a simulator of its own
    /// and keeps the recipe's `speedup_ratio`.
    fn sim_speed(&self) -> f64 {
        if self.backend.perf_model_backend().is_some() {
            self.ctx.target.sim_speed
        } else {
            1.0
        }
    }

    pub(super) fn perf_model(&mut self) {
        if self.ctx.recipe.roles.is_empty() {
            return;
        }
        if self.backend.perf_model_backend().is_none() && self.ctx.target.sim_speed != 1.0 {
            self.notes.push(format!(
                "--sim-speed: the `{}` backend keeps the recipe's own speed-up (its `speedup_ratio`); --sim-speed is not applied",
                self.backend.name()
            ));
        }
        let model = &self.ctx.perf;
        if self.backend.perf_model_backend().is_none() {
            self.notes.push(format!(
                "performance model: none; the `{}` backend is a simulator with its own timing (its recipe's settings)",
                self.backend.name()
            ));
        } else {
            self.notes.push(model.summary());
        }
        if let DeploymentModel::Modelled { roles, .. } = model {
            if let Some(note) = roles.iter().find_map(|r| r.version_note.clone()) {
                self.notes.push(format!("performance model: {note}"));
            }
            if let Some(r) = roles.iter().find(|r| r.nextn > 0) {
                self.notes.push(format!(
                    "performance model: MTP acceptance assumed {:?} per draft token (about {:.2} tokens per decode step); the recipe gives none",
                    r.nextn_accept_rates,
                    r.tokens_per_step()
                ));
            }
        }
        if self.ctx.stand_in == StandIn::None {
            return;
        }
        let DeploymentModel::Modelled { roles, .. } = model else {
            return;
        };
        let Some(venv) = self.ctx.target.perf_venv.clone() else {
            self.notes.push(
                "performance model: not used by this run (--timing fixed, or --smoke): the mock workers keep the fixed timing".into(),
            );
            return;
        };
        let python = crate::build::Ctx::python_of(&venv);
        let node = self.ctx.nodes.names[0].clone();
        let create = pip_install::venv_with_id(format!("venv-aiconfigurator/{node}"), 0, &venv);
        let mut install = pip_install::packages(
            format!("pip-aiconfigurator/{node}"),
            0,
            &python,
            &[aic::REQUIREMENT.to_string()],
            "install aiconfigurator-core (the silicon-calibrated performance model) into its own venv",
        );
        install.command = install.command.map(|argv| pip_install::locked(&venv, argv));
        install.depends_on.push(create.id.clone());
        let inputs_json = serde_json::to_string(roles).unwrap_or_default();
        let mut tables = perf_table::step(&perf_table::TableArgs {
            srt_graph: &self.ctx.target.srt_graph,
            python: &python,
            cache: &self.ctx.target.perf_cache,
            out_dir: &perf_dir(&self.ctx.target.run_dir),
            inputs_json,
            npz: self.ctx.stand_in == StandIn::DynamoMocker,
        });
        tables.depends_on.push(install.id.clone());
        self.ctx.perf_ready = Some(tables.id.clone());
        self.steps.extend([create, install, tables]);
    }

    /// A stand-in worker's flags for its role's timing and the simulation speed.
    pub(super) fn pace_worker(&self, role: &str, s: &mut Step) {
        if self.backend.perf_model_backend().is_none() {
            return;
        }
        let speed = crate::yaml::format_float(self.sim_speed());
        let dir = perf_dir(&self.ctx.target.run_dir);
        let Some(argv) = s.command.as_mut() else {
            return;
        };
        match self.ctx.stand_in {
            StandIn::None => return,
            StandIn::MockWorker => {
                if self.ctx.perf_ready.is_some() {
                    argv.extend(["--mock-perf-table".into(), format!("{dir}/{role}.json")]);
                }
                argv.extend(["--mock-sim-speed".into(), speed]);
            }
            StandIn::DynamoMocker => {
                if self.ctx.perf_ready.is_some() {
                    argv.extend(["--planner-profile-data".into(), format!("{dir}/{role}.npz")]);
                    if let DeploymentModel::Modelled { roles, .. } = &self.ctx.perf {
                        if let Some(r) = roles.iter().find(|r| r.role == role) {
                            argv.extend([
                                "--max-num-seqs".into(),
                                (r.max_batch * r.attention_dp).to_string(),
                                "--max-num-batched-tokens".into(),
                                r.chunked_prefill.to_string(),
                            ]);
                        }
                    }
                }
                argv.extend(["--speedup-ratio".into(), speed]);
            }
        }
        s.depends_on.extend(self.ctx.perf_ready.clone());
    }

    /// Benchmark clients of a simulated run write model time and say what timed it.
    pub(super) fn label_benchmarks(&mut self) {
        if self.ctx.stand_in == StandIn::None {
            return;
        }
        let label = match (&self.ctx.perf, &self.ctx.perf_ready) {
            (DeploymentModel::Modelled { .. }, Some(_)) => self.ctx.perf.summary(),
            _ if self.backend.perf_model_backend().is_none() => {
                format!("the `{}` backend's own timing", self.backend.name())
            }
            (DeploymentModel::Unsupported { reason }, _) => format!("fixed timing ({reason})"),
            _ => "fixed timing (--timing fixed or --smoke)".into(),
        };
        let speed = crate::yaml::format_float(self.sim_speed());
        let dir = perf_dir(&self.ctx.target.run_dir);
        for s in self
            .steps
            .iter_mut()
            .filter(|s| s.kind == run_benchmark::KIND)
        {
            s.env.insert("SRT_SIMULATED".into(), label.clone());
            s.env.insert("SRT_SIM_SPEED".into(), speed.clone());
            if self.ctx.perf_ready.is_some() {
                s.env.insert("SRT_PERF_DIR".into(), dir.clone());
            }
        }
    }
}
