//! `resources:`: GPUs per node and, per role, nodes, workers and GPUs per worker, as written (the roles
//! reader decides what they mean together).

use super::{MAX_COUNT, MAX_GPUS_PER_NODE};
use crate::cluster::ClusterConfig;
use crate::diag::{join, Keys, Reader};
use crate::yaml::Node;

const RESOURCES: Keys = Keys {
    known: &[
        "gpu_type",
        "gpus_per_node",
        "prefill_nodes",
        "prefill_workers",
        "decode_nodes",
        "decode_workers",
        "agg_nodes",
        "agg_workers",
        "gpus_per_prefill",
        "gpus_per_decode",
        "gpus_per_agg",
    ],
    ignored: &["spread_workers", "het_jobs"],
};

pub(super) struct Resources<'a> {
    pub node: &'a Node,
    pub gpu_type: Option<String>,
    pub gpus_per_node: u32,
    pub prefill_nodes: Option<u32>,
    pub decode_nodes: Option<u32>,
    pub prefill_workers: Option<u32>,
    pub decode_workers: Option<u32>,
    pub agg_nodes: Option<u32>,
    pub agg_workers: Option<u32>,
    pub gpus_per_prefill: Option<u32>,
    pub gpus_per_decode: Option<u32>,
    pub gpus_per_agg: Option<u32>,
}

pub(super) fn read<'a>(res: &'a Node, cluster: &ClusterConfig, r: &mut Reader) -> Resources<'a> {
    r.check_keys(res, "resources", &RESOURCES);
    let gpu_type = r.string(res.get("gpu_type"), "resources.gpu_type");
    let gpus_per_node = cluster
        .gpus_per_node
        .or_else(|| {
            r.int(
                res.get("gpus_per_node"),
                "resources.gpus_per_node",
                1,
                MAX_GPUS_PER_NODE,
            )
            .map(|v| v as u32)
        })
        .unwrap_or(4);
    let count = |r: &mut Reader, key: &str, min: i64| {
        r.int(res.get(key), &join("resources", key), min, MAX_COUNT)
            .map(|v| v as u32)
    };
    let gpus_per = |r: &mut Reader, key: &str| {
        r.int(
            res.get(key),
            &join("resources", key),
            1,
            MAX_GPUS_PER_NODE * MAX_COUNT,
        )
        .map(|v| v as u32)
    };
    Resources {
        node: res,
        gpu_type,
        gpus_per_node,
        prefill_nodes: count(r, "prefill_nodes", 0),
        decode_nodes: count(r, "decode_nodes", 0),
        prefill_workers: count(r, "prefill_workers", 1),
        decode_workers: count(r, "decode_workers", 1),
        agg_nodes: count(r, "agg_nodes", 1),
        agg_workers: count(r, "agg_workers", 1),
        gpus_per_prefill: gpus_per(r, "gpus_per_prefill"),
        gpus_per_decode: gpus_per(r, "gpus_per_decode"),
        gpus_per_agg: gpus_per(r, "gpus_per_agg"),
    }
}
