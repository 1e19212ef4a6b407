//! Starting 64 remote no-op processes: the ssh transport (ControlMaster pool, all at once) and the Slurm
//! transport (one `srun --overlap` step each, all at once; then through one node agent per node) against
//! naive sequential `ssh host true` and `srun` loops,
//! side by side in one run. Needs the test environments (`tests/env/ssh.sh up`, `tests/env/slurm.sh up`,
//! as root) named by SRT_GRAPH_SSH_ENV / SRT_GRAPH_SLURM_ENV. Writes `target/bench-transport.txt`.

use srt_graph_engine::slurm::{SlurmNode, SlurmOptions, SlurmTransport};
use srt_graph_engine::ssh::{SshOptions, SshTransport};
use srt_graph_engine::transport::{SpawnRequest, Transport};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

const PROCESSES: usize = 64;
const HOSTS: usize = 4;

fn request(dir: &Path, i: usize) -> SpawnRequest {
    SpawnRequest {
        step: format!("noop-{i}"),
        node: i % HOSTS,
        argv: vec!["true".into()],
        env: Default::default(),
        cwd: None,
        log: dir.join(format!("noop-{i}.log")),
        container: None,
        mpi: None,
        redact: Default::default(),
    }
}

/// (all started, all finished) for 64 concurrent spawns.
fn all_at_once(
    rt: &tokio::runtime::Runtime,
    t: Arc<dyn Transport>,
    dir: &Path,
) -> (Duration, Duration) {
    rt.block_on(async {
        let start = Instant::now();
        let spawns = (0..PROCESSES).map(|i| {
            let req = request(dir, i);
            let t = t.clone();
            async move { t.spawn(&req).await }
        });
        let procs = futures_join_all(spawns).await;
        let started = start.elapsed();
        let waits = procs.into_iter().map(|p| async move {
            let mut p = p.expect("spawn");
            let exit = p.wait().await.expect("wait");
            assert!(exit.success(), "{exit}");
        });
        futures_join_all(waits).await;
        (started, start.elapsed())
    })
}

async fn futures_join_all<F, T>(futs: impl Iterator<Item = F>) -> Vec<T>
where
    F: std::future::Future<Output = T> + Send + 'static,
    T: Send + 'static,
{
    // Scoped borrows would need a join-all crate; spawn-local via a JoinSet keeps order by index.
    let mut set = tokio::task::JoinSet::new();
    for (i, f) in futs.enumerate() {
        set.spawn(async move { (i, f.await) });
    }
    let mut out: Vec<(usize, T)> = Vec::new();
    while let Some(r) = set.join_next().await {
        out.push(r.expect("join"));
    }
    out.sort_by_key(|(i, _)| *i);
    out.into_iter().map(|(_, t)| t).collect()
}

fn main() {
    let (Some(ssh_env), Some(slurm_env)) = (
        std::env::var_os("SRT_GRAPH_SSH_ENV").map(PathBuf::from),
        std::env::var_os("SRT_GRAPH_SLURM_ENV").map(PathBuf::from),
    ) else {
        eprintln!(
            "bench transport: SKIPPED — bring up tests/env/ssh.sh and tests/env/slurm.sh (as root) and export \
             SRT_GRAPH_SSH_ENV=/tmp/srt-graph-ssh SRT_GRAPH_SLURM_ENV=/tmp/srt-graph-slurm"
        );
        return;
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let dir = tempfile::tempdir().expect("tmp");
    let config = ssh_env.join("ssh_config");
    let hosts: Vec<String> = (1..=HOSTS).map(|k| format!("h{k}")).collect();
    let mut report = String::new();

    // Naive: one fresh ssh connection per command, one after another.
    let start = Instant::now();
    for i in 0..PROCESSES {
        let ok = std::process::Command::new("ssh")
            .arg("-F")
            .arg(&config)
            .args(["-T", "-o", "BatchMode=yes", &hosts[i % HOSTS], "true"])
            .status()
            .expect("ssh")
            .success();
        assert!(ok);
    }
    let naive = start.elapsed();

    // ssh transport: masters opened in parallel (counted), then 64 spawns at once.
    let start = Instant::now();
    let ssh = SshTransport::connect(SshOptions {
        hosts: hosts.clone(),
        config: Some(config.clone()),
        node_tool: "true".into(),
        control_dir: std::env::temp_dir().join(format!("srt-graph-bench-{}", std::process::id())),
        sessions_per_connection: 8,
    })
    .expect("connect");
    let connect = start.elapsed();
    let ssh = Arc::new(ssh);
    let (ssh_started, ssh_done) = all_at_once(&rt, ssh.clone(), dir.path());
    drop(ssh);

    // Slurm transport inside a fresh 4-node allocation.
    let conf = slurm_env.join("slurm.conf");
    let alloc = std::process::Command::new("salloc")
        .env("SLURM_CONF", &conf)
        .args(["--no-shell", "-N", "4"])
        .output()
        .expect("salloc");
    let said = String::from_utf8_lossy(&alloc.stderr);
    let job = said
        .split_whitespace()
        .last()
        .filter(|_| said.contains("Granted job allocation"))
        .expect("allocation")
        .to_string();
    std::env::set_var("SLURM_CONF", &conf);
    let slurm_options = |agent_logs: Option<PathBuf>| SlurmOptions {
        job_id: job.clone(),
        nodes: (1..=HOSTS)
            .map(|k| SlurmNode {
                name: format!("node{k}"),
                het_group: None,
            })
            .collect(),
        node_tool: env!("CARGO_BIN_EXE_srt-graph").into(),
        srun_options: vec![],
        agent_logs,
    };
    let per_step = SlurmTransport::new(slurm_options(None));
    let (srun_started, srun_done) = all_at_once(&rt, Arc::new(per_step), dir.path());
    // One node agent per node (started by the first spawn there), then every spawn through it.
    let agents = SlurmTransport::new(slurm_options(Some(dir.path().join("agents"))));
    let (agent_started, agent_done) = all_at_once(&rt, Arc::new(agents), dir.path());
    // Naive srun: one step after another.
    let start = Instant::now();
    for i in 0..PROCESSES {
        let ok = std::process::Command::new("srun")
            .args([
                &format!("--jobid={job}"),
                "--overlap",
                "--nodes=1",
                "--ntasks=1",
                &format!("--nodelist=node{}", i % HOSTS + 1),
                "true",
            ])
            .status()
            .expect("srun")
            .success();
        assert!(ok);
    }
    let srun_naive = start.elapsed();
    let _ = std::process::Command::new("scancel").arg(&job).status();

    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    report.push_str(&format!(
        "64 remote no-op processes on 4 hosts (2 cores, all hosts on this machine)\n\
         naive sequential `ssh host true` loop:      {:>8.0} ms (all finished)\n\
         ssh transport: masters opened in parallel:  {:>8.0} ms\n\
         ssh transport: 64 spawns at once, started:  {:>8.0} ms   finished {:>6.0} ms   ({:.1}x faster than the loop, connect included)\n\
         naive sequential `srun --overlap` loop:     {:>8.0} ms\n\
         slurm transport: 64 srun at once, started:  {:>8.0} ms   finished {:>6.0} ms   ({:.1}x faster than the srun loop)\n\
         slurm transport: node agents (4 srun), started: {:>5.0} ms   finished {:>6.0} ms   ({:.1}x faster than 64 srun at once)\n",
        ms(naive),
        ms(connect),
        ms(ssh_started),
        ms(ssh_done),
        ms(naive) / ms(connect + ssh_done),
        ms(srun_naive),
        ms(srun_started),
        ms(srun_done),
        ms(srun_naive) / ms(srun_done),
        ms(agent_started),
        ms(agent_done),
        ms(srun_done) / ms(agent_done),
    ));
    print!("{report}");
    let out = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/bench-transport.txt");
    let _ = std::fs::write(out, &report);
}
