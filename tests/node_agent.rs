//! The node agent the Slurm executor starts once per node: driven here through its real binary, as
//! `srun` would start it, with the orchestrator's end (`engine::agent::Agent`).

use srt_graph_engine::agent::Agent;
use srt_graph_engine::secret::Redactor;
use srt_graph_engine::transport::{Exit, SpawnRequest};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

fn start(dir: &std::path::Path) -> Agent {
    let mut launcher = std::process::Command::new(env!("CARGO_BIN_EXE_srt-graph"));
    launcher.arg("node-agent");
    Agent::start(
        "node7",
        launcher,
        &dir.join("agent.log"),
        Duration::from_secs(20),
    )
    .expect("the agent starts")
}

fn request(dir: &std::path::Path, script: &str, secrets: &[&str]) -> SpawnRequest {
    let mut env = BTreeMap::new();
    env.insert("GREETING".to_string(), "hello from the agent".to_string());
    SpawnRequest {
        step: "s".into(),
        node: 0,
        argv: vec!["sh".into(), "-c".into(), script.into()],
        env,
        cwd: Some(dir.display().to_string()),
        log: dir.join("step.log"),
        container: None,
        mpi: None,
        redact: Redactor::new(secrets.iter().map(|s| s.to_string())),
    }
}

#[tokio::test]
async fn an_agent_starts_logs_signals_probes_and_reports_exits() {
    let dir = tempfile::tempdir().expect("tempdir");
    let agent = start(dir.path());

    // A task: its environment and working directory, its output timestamped into its log, secrets
    // replaced there, its exit code reported.
    let mut task = agent
        .spawn(&request(
            dir.path(),
            "echo \"$GREETING in $(pwd)\"; echo token s3cr3t-value; exit 3",
            &["s3cr3t-value"],
        ))
        .await
        .expect("spawned");
    assert!(task.pid() > 1);
    assert_eq!(task.pid(), task.pgid(), "each process leads its own group");
    assert_eq!(task.wait().await.expect("exit"), Exit::Code(3));
    let log = std::fs::read_to_string(dir.path().join("step.log")).expect("log");
    let here = dir.path().canonicalize().expect("canonical");
    assert!(
        log.contains(&format!("hello from the agent in {}", here.display())),
        "{log}"
    );
    assert!(
        log.contains("token <redacted>") && !log.contains("s3cr3t"),
        "{log}"
    );
    assert!(log.starts_with('['), "lines are timestamped: {log}");

    // A service: alive while it runs, gone after SIGTERM to its group, reported as killed.
    let mut service = agent
        .spawn(&request(dir.path(), "sleep 300 & wait", &[]))
        .await
        .expect("spawned");
    let pgid = service.pgid();
    assert!(agent.alive(pgid, Duration::from_secs(10)).expect("probe"));
    agent
        .signal(pgid, 15, Duration::from_secs(10))
        .expect("signal");
    assert_eq!(service.wait().await.expect("exit"), Exit::Signal(15));
    let deadline = Instant::now() + Duration::from_secs(5);
    while agent.alive(pgid, Duration::from_secs(10)).expect("probe") && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        !agent.alive(pgid, Duration::from_secs(10)).expect("probe"),
        "the forked sleep went with its group"
    );

    // A short command's output; a missing program is an error, not a hang.
    assert_eq!(
        agent
            .run(&["echo".into(), "ok".into()], Duration::from_secs(5))
            .expect("run")
            .trim(),
        "ok"
    );
    assert!(agent
        .run(&["/no/such/program".into()], Duration::from_secs(5))
        .is_err());
    let missing = agent
        .spawn(&SpawnRequest {
            argv: vec!["/no/such/program".into()],
            ..request(dir.path(), "", &[])
        })
        .await;
    assert!(missing.is_err(), "a program that cannot start is an error");

    // Closed with nothing running, it exits.
    agent.close();
    assert!(
        agent.join_reader(Duration::from_secs(10)),
        "the agent exits"
    );
}

#[tokio::test]
async fn a_killed_agent_is_named_in_what_its_processes_report() {
    let dir = tempfile::tempdir().expect("tempdir");
    let agent = start(dir.path());
    let mut service = agent
        .spawn(&request(dir.path(), "exec sleep 300", &[]))
        .await
        .expect("spawned");
    let pgid = service.pgid();
    agent.kill();
    let err = tokio::time::timeout(Duration::from_secs(10), service.wait())
        .await
        .expect("the loss is reported, not waited out")
        .expect_err("no exit code from a lost agent");
    assert!(
        err.to_string()
            .contains("the node agent on node7 was killed by signal 9"),
        "{err}"
    );
    assert!(agent.lost().is_some());
    assert!(
        agent.alive(pgid, Duration::from_secs(10)).is_err(),
        "a lost agent answers nothing"
    );
    // Outside Slurm nothing ends the agent's processes with it (slurmstepd does on a node): this test
    // started it, this test ends it.
    let _ = nix::sys::signal::killpg(
        nix::unistd::Pid::from_raw(pgid),
        nix::sys::signal::Signal::SIGKILL,
    );
}

#[tokio::test]
async fn a_closed_agent_outlives_its_orchestrator_until_its_processes_end() {
    let dir = tempfile::tempdir().expect("tempdir");
    let agent = start(dir.path());
    let service = agent
        .spawn(&request(dir.path(), "sleep 1; echo still logging", &[]))
        .await
        .expect("spawned");
    agent.close();
    assert!(
        !agent.join_reader(Duration::from_millis(300)),
        "the agent waits for its process"
    );
    assert!(agent.join_reader(Duration::from_secs(10)), "then exits");
    drop(service);
    let log = std::fs::read_to_string(dir.path().join("step.log")).expect("log");
    assert!(
        log.contains("still logging"),
        "it kept writing the log: {log}"
    );
}

/// A launcher as `srun --nodes=2 --label --input=all` is: both agents read every request, each
/// reply comes back behind its task's label, cut into labelled pieces of 1024 bytes, and srun says
/// on its error stream which task ended.
fn start_two(dir: &std::path::Path) -> Vec<Agent> {
    let bin = env!("CARGO_BIN_EXE_srt-graph");
    let script = format!(
        "task() {{ SLURMD_NODENAME=$1 {bin} node-agent | stdbuf -oL fold -b -w 1024 | sed -u \"s/^/ $2: /\"; \
         [ -e {dir}/end-$1 ] && echo \"srun: error: $1: task $2: Killed\" >&2; }}; \
         exec 3>&1; tee -p {dir}/requests >(task nodeA 0 >&3) | task nodeB 1",
        dir = dir.display()
    );
    let mut launcher = std::process::Command::new("bash");
    launcher.args(["-c", &script]);
    let members = ["nodeA", "nodeB"].map(|n| srt_graph_engine::agent::Member {
        label: n.to_string(),
        node: Some(n.to_string()),
    });
    Agent::start_many(
        &members,
        launcher,
        &dir.join("agents.log"),
        Duration::from_secs(20),
    )
    .expect("both agents start")
}

#[tokio::test]
async fn one_launcher_serves_several_nodes_each_request_on_its_own() {
    let dir = tempfile::tempdir().expect("tempdir");
    let agents = start_two(dir.path());
    assert_eq!(agents.len(), 2);
    for (agent, node) in agents.iter().zip(["nodeA", "nodeB"]) {
        let mut req = request(dir.path(), "echo \"on $SLURMD_NODENAME\"", &[]);
        req.log = dir.path().join(format!("{node}.log"));
        let mut p = agent.spawn(&req).await.expect("spawned");
        assert_eq!(p.wait().await.expect("exit"), Exit::Code(0));
        // Started once, by the agent of its own node.
        let log = std::fs::read_to_string(&req.log).expect("log");
        assert_eq!(log.lines().count(), 1, "{log}");
        assert!(log.contains(&format!("on {node}")), "{log}");
        let out = agent
            .run(
                &["sh".into(), "-c".into(), "echo $SLURMD_NODENAME".into()],
                Duration::from_secs(5),
            )
            .expect("run");
        assert_eq!(out.trim(), node);
        // A reply longer than srun's pieces (and cut inside a multi-byte character) arrives whole.
        let long = agent
            .run(
                &[
                    "sh".into(),
                    "-c".into(),
                    "for i in $(seq 3000); do printf 'é'; done".into(),
                ],
                Duration::from_secs(5),
            )
            .expect("a long reply");
        assert_eq!(long, "é".repeat(3000));
    }
    // A heartbeat to both is one request both answer; the same agent listed twice is asked twice.
    let pings = |d: &std::path::Path| {
        std::fs::read_to_string(d.join("requests"))
            .unwrap_or_default()
            .lines()
            .filter(|l| l.contains("\"ping\""))
            .count()
    };
    let before = pings(dir.path());
    let answers = Agent::ping_all(&[&agents[0], &agents[1], &agents[0]]);
    assert_eq!(answers.len(), 3);
    for answer in answers {
        let rx = answer.expect("sent");
        let (ok, trouble) = rx
            .recv_timeout(Duration::from_secs(5))
            .expect("answered")
            .expect("no loss");
        assert!(ok && trouble.is_empty(), "{trouble}");
    }
    assert_eq!(
        pings(dir.path()) - before,
        2,
        "one for both, one for the repeat"
    );
    // nodeA's agent ends (its process with it): only nodeA's waiters hear of it, by name.
    std::fs::write(dir.path().join("end-nodeA"), "").expect("mark");
    let held = agents[0]
        .spawn(&request(dir.path(), "exec sleep 30", &[]))
        .await
        .expect("spawned");
    let pid = held.pid();
    let agent_pid = srt_graph_engine::local::proc_stat(pid)
        .map(|s| s.ppid)
        .expect("the agent holding the sleep");
    let _ = std::process::Command::new("kill")
        .args(["-9", &agent_pid.to_string(), &pid.to_string()])
        .status();
    let deadline = Instant::now() + Duration::from_secs(10);
    while agents[0].lost().is_none() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        agents[0].lost().as_deref(),
        Some("the node agent on nodeA ended (srun: task 0: Killed)")
    );
    assert!(agents[1].lost().is_none(), "{:?}", agents[1].lost());
    assert_eq!(
        agents[1]
            .run(
                &["echo".into(), "still here".into()],
                Duration::from_secs(5)
            )
            .expect("nodeB serves on")
            .trim(),
        "still here"
    );
    agents[1].close();
    assert!(
        agents[1].join_reader(Duration::from_secs(10)),
        "the launcher ends when its input does"
    );
}

/// A launcher whose agent on one node never comes up (its container failed there): the other is
/// handed out as soon as it is up and serves on; the start says which node failed, without waiting
/// out the start limit.
#[tokio::test]
async fn a_member_that_never_comes_up_is_named_and_the_others_serve() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bin = env!("CARGO_BIN_EXE_srt-graph");
    let script = format!(
        "exec 3>&1; tee -p >(SLURMD_NODENAME=nodeA {bin} node-agent | sed -u 's/^/ 0: /' >&3) \
         | {{ cat >/dev/null & echo 'srun: error: nodeB: task 1: Exited with exit code 1' >&2; wait; }}"
    );
    let mut launcher = std::process::Command::new("bash");
    launcher.args(["-c", &script]);
    let members = ["nodeA", "nodeB"].map(|n| srt_graph_engine::agent::Member {
        label: n.to_string(),
        node: Some(n.to_string()),
    });
    let mut ready = Vec::new();
    let started = Instant::now();
    let outcome = Agent::start_many_with(
        &members,
        launcher,
        &dir.path().join("agents.log"),
        Duration::from_secs(60),
        &mut |i, agent| ready.push((i, agent.clone())),
    );
    let err = outcome.err().expect("nodeB never came up");
    assert!(err.contains("nodeB"), "{err}");
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "waited out the limit"
    );
    assert_eq!(ready.len(), 1);
    let (i, a) = &ready[0];
    assert_eq!(*i, 0);
    assert_eq!(
        a.run(&["echo".into(), "up".into()], Duration::from_secs(5))
            .expect("nodeA serves")
            .trim(),
        "up"
    );
    a.close();
    assert!(a.join_reader(Duration::from_secs(10)));
}
