//! `model:`: where the weights are and which container runs them (cluster aliases resolved here, once).

use crate::cluster::ClusterConfig;
use crate::diag::{Keys, Reader};
use crate::yaml::Node;

const MODEL: Keys = Keys {
    known: &["path", "container", "precision"],
    ignored: &["stage_dir"],
};

pub(super) struct Model {
    pub path: Option<String>,
    pub container: Option<String>,
    pub precision: Option<String>,
}

pub(super) fn read(model: &Node, cluster: &ClusterConfig, r: &mut Reader) -> Model {
    r.check_keys(model, "model", &MODEL);
    Model {
        path: r
            .string(model.get("path"), "model.path")
            .map(|p| cluster.resolve_model(&p)),
        container: r
            .string(model.get("container"), "model.container")
            .map(|c| cluster.resolve_container(&c)),
        precision: r.string(model.get("precision"), "model.precision"),
    }
}
