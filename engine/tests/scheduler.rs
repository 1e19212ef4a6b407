//! The scheduler without processes: a fake transport with scripted exits and delays, under tokio's paused
//! clock (these tests take no wall-clock time). Retry and backoff, timeouts, a service's death, an
//! interrupt and the order of teardown.

use srt_graph_engine::journal::{Journal, RunStatus};
use srt_graph_engine::progress::Plain;
use srt_graph_engine::testing::{Attempt, FakeTransport};
use srt_graph_engine::{
    execute, Dag, Lifetime, Plan, Policy, RetryOn, RunOptions, RunReport, Step,
};
use std::sync::Arc;
use std::time::Duration;

fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s)
}

fn step(id: &str, deps: &[&str], lifetime: Lifetime) -> Step {
    let mut s = Step::new(id, "test", 0, lifetime);
    s.depends_on = deps.iter().map(|d| d.to_string()).collect();
    s.command = Some(vec!["run".into(), id.into()]);
    s
}

fn task(id: &str, deps: &[&str]) -> Step {
    step(id, deps, Lifetime::Task)
}

fn service(id: &str, deps: &[&str]) -> Step {
    step(id, deps, Lifetime::Service)
}

struct Outcome {
    report: RunReport,
    fake: Arc<FakeTransport>,
    journal: Vec<srt_graph_engine::journal::Record>,
}

/// Runs `steps` on `fake`; `interrupt_at` sends one interrupt (Ctrl-C) then.
async fn run(steps: Vec<Step>, fake: FakeTransport, interrupt_at: Option<Duration>) -> Outcome {
    let dir = tempfile::tempdir().expect("tmp");
    std::fs::create_dir_all(dir.path().join("logs")).expect("logs");
    let dag = Dag::new(Plan {
        format: srt_graph_engine::PLAN_FORMAT,
        recipe: "t".into(),
        nodes: vec!["node0".into()],
        addresses: vec!["127.0.0.1".into()],
        steps,
        endpoint: None,
        ignored: vec![],
        notes: vec![],
        secret_env: vec![],
    })
    .expect("dag");
    let opts = RunOptions {
        jobs: 8,
        per_node: 8,
        keep_going: false,
        keep_up: false,
        grace: secs(3.0),
        run_dir: dir.path().to_path_buf(),
        already_done: vec![],
        adopted: vec![],
    };
    let mut journal = Journal::open(&dir.path().join("journal.jsonl")).expect("journal");
    let fake = Arc::new(fake);
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    if let Some(at) = interrupt_at {
        tokio::spawn(async move {
            tokio::time::sleep(at).await;
            let _ = tx.send(());
        });
    } else {
        std::mem::forget(tx);
    }
    let mut observer = Plain { quiet: true };
    let report = execute(&dag, fake.clone(), &opts, &mut journal, &mut observer, rx).await;
    let journal =
        srt_graph_engine::journal::read(&dir.path().join("journal.jsonl")).expect("journal");
    Outcome {
        report,
        fake,
        journal,
    }
}

/// What teardown sends: SIGTERM to the running tasks, then per wave of services SIGTERM to each group
/// and a SIGKILL sweep of what is left of each (forked children).
fn teardown(tasks: &[&str], waves: &[&[&str]]) -> Vec<(String, i32)> {
    let mut out: Vec<(String, i32)> = tasks.iter().map(|s| (s.to_string(), 15)).collect();
    for wave in waves {
        out.extend(wave.iter().map(|s| (s.to_string(), 15)));
        out.extend(wave.iter().map(|s| (s.to_string(), 9)));
    }
    out
}

fn retrying(mut s: Step, attempts: u32, backoff_ms: u64) -> Step {
    s.policy = Policy {
        attempts,
        backoff_ms,
        backoff_max_ms: 60_000,
        timeout_secs: None,
        retry_on: vec![RetryOn::Exit],
    };
    s
}

const FAIL_NOW: Attempt = Attempt::Exit {
    after: Duration::ZERO,
    code: 1,
};
const OK_NOW: Attempt = Attempt::Exit {
    after: Duration::ZERO,
    code: 0,
};

#[tokio::test(start_paused = true)]
async fn a_failing_task_is_retried_with_growing_backoff_then_succeeds() {
    let fake = FakeTransport::default().script("flaky", &[FAIL_NOW, FAIL_NOW, OK_NOW]);
    let out = run(vec![retrying(task("flaky", &[]), 3, 1000)], fake, None).await;
    assert_eq!(
        out.report.status,
        RunStatus::Succeeded,
        "{:?}",
        out.report.failures
    );
    let at = out.fake.spawns("flaky");
    assert_eq!(at.len(), 3, "{at:?}");
    // Backoff 1 s then 2 s, each ±25 % jitter.
    let (first, second) = (at[1] - at[0], at[2] - at[1]);
    assert!(first >= secs(0.75) && first <= secs(1.25), "{first:?}");
    assert!(second >= secs(1.5) && second <= secs(2.5), "{second:?}");
}

#[tokio::test(start_paused = true)]
async fn a_task_out_of_tries_fails_the_run_and_is_named() {
    let fake = FakeTransport::default().script("flaky", &[FAIL_NOW]);
    let later = task("later", &["flaky"]);
    let out = run(vec![retrying(task("flaky", &[]), 2, 10), later], fake, None).await;
    assert_eq!(out.report.status, RunStatus::Failed);
    assert_eq!(out.fake.spawns("flaky").len(), 2);
    assert!(
        out.fake.spawns("later").is_empty(),
        "a dependent of a failed step must not start"
    );
    assert!(
        out.report
            .failures
            .iter()
            .any(|f| f.contains("flaky") && f.contains("exit code 1")),
        "{:?}",
        out.report.failures
    );
}

#[tokio::test(start_paused = true)]
async fn a_task_past_its_timeout_gets_sigterm_then_sigkill() {
    let fake = FakeTransport::default().script("slow", &[Attempt::IgnoresTerm]);
    let mut slow = task("slow", &[]);
    slow.policy.timeout_secs = Some(1.0);
    let out = run(vec![slow], fake, None).await;
    assert_eq!(out.report.status, RunStatus::Failed);
    assert!(
        out.report
            .failures
            .iter()
            .any(|f| f.contains("slow") && f.contains("timed out")),
        "{:?}",
        out.report.failures
    );
    let seen: Vec<(String, i32, Duration)> = out
        .fake
        .seen()
        .into_iter()
        .filter_map(|s| match s {
            srt_graph_engine::testing::Seen::Signalled { step, signal, at } => {
                Some((step, signal, at))
            }
            _ => None,
        })
        .collect();
    assert_eq!(seen.len(), 2, "{seen:?}");
    assert_eq!((seen[0].1, seen[1].1), (15, 9), "{seen:?}");
    // SIGTERM at the limit, SIGKILL after the 2 s grace a timed-out task gets.
    assert_eq!(seen[0].2, secs(1.0));
    assert_eq!(seen[1].2, secs(3.0));
}

#[tokio::test(start_paused = true)]
async fn a_service_that_dies_fails_the_run_and_stops_the_rest() {
    let fake = FakeTransport::default()
        .script(
            "worker",
            &[Attempt::Exit {
                after: secs(5.0),
                code: 1,
            }],
        )
        .script(
            "bench",
            &[Attempt::Exit {
                after: secs(60.0),
                code: 0,
            }],
        );
    let out = run(
        vec![service("worker", &[]), task("bench", &["worker"])],
        fake,
        None,
    )
    .await;
    assert_eq!(out.report.status, RunStatus::Failed);
    assert!(
        out.report.failures.iter().any(|f| f.contains("worker")),
        "{:?}",
        out.report.failures
    );
    assert!(
        out.fake.signals().contains(&("bench".into(), 15)),
        "the running benchmark is stopped: {:?}",
        out.fake.signals()
    );
    assert!(
        out.report.makespan_secs < 10.0,
        "{}",
        out.report.makespan_secs
    );
}

#[tokio::test(start_paused = true)]
async fn an_interrupt_stops_tasks_and_services_and_reports_interrupted() {
    let fake = FakeTransport::default()
        .service("worker")
        .service("router")
        .script(
            "bench",
            &[Attempt::Exit {
                after: secs(100.0),
                code: 0,
            }],
        );
    let out = run(
        vec![
            service("worker", &[]),
            service("router", &["worker"]),
            task("bench", &["router"]),
        ],
        fake,
        Some(secs(2.0)),
    )
    .await;
    assert_eq!(out.report.status, RunStatus::Interrupted);
    // The running task first, then the services, dependents before what they depend on; after each
    // wave's SIGTERM, a SIGKILL sweeps what is left of its groups (forked children).
    assert_eq!(
        out.fake.signals(),
        teardown(&["bench"], &[&["router"], &["worker"]])
    );
    assert!(
        out.report.makespan_secs < 10.0,
        "{}",
        out.report.makespan_secs
    );
}

#[tokio::test(start_paused = true)]
async fn teardown_stops_services_in_reverse_dependency_order() {
    let fake = FakeTransport::default()
        .service("worker")
        .service("router")
        .service("nginx");
    let out = run(
        vec![
            service("worker", &[]),
            service("router", &["worker"]),
            service("nginx", &["router"]),
            task("bench", &["nginx"]),
        ],
        fake,
        None,
    )
    .await;
    assert_eq!(
        out.report.status,
        RunStatus::Succeeded,
        "{:?}",
        out.report.failures
    );
    assert_eq!(
        out.fake.signals(),
        teardown(&[], &[&["nginx"], &["router"], &["worker"]])
    );
}

#[tokio::test(start_paused = true)]
async fn a_service_that_ignores_sigterm_is_killed_after_the_grace_period() {
    let fake = FakeTransport::default().script("wedged", &[Attempt::IgnoresTerm]);
    let out = run(
        vec![service("wedged", &[]), task("bench", &["wedged"])],
        fake,
        None,
    )
    .await;
    assert_eq!(
        out.report.status,
        RunStatus::Succeeded,
        "{:?}",
        out.report.failures
    );
    let seen: Vec<(i32, Duration)> = out
        .fake
        .seen()
        .into_iter()
        .filter_map(|s| match s {
            srt_graph_engine::testing::Seen::Signalled { signal, at, .. } => Some((signal, at)),
            _ => None,
        })
        .collect();
    assert_eq!(seen.len(), 2, "{seen:?}");
    assert_eq!((seen[0].0, seen[1].0), (15, 9));
    assert_eq!(
        seen[1].1 - seen[0].1,
        secs(3.0),
        "SIGKILL after the 3 s grace"
    );
}

#[tokio::test(start_paused = true)]
async fn a_transient_spawn_failure_is_retried_and_a_refusal_is_not() {
    let fake = FakeTransport::default()
        .script(
            "flaky-node",
            &[Attempt::SpawnFails { transient: true }, OK_NOW],
        )
        .script("refused", &[Attempt::SpawnFails { transient: false }]);
    let mut flaky = task("flaky-node", &[]);
    flaky.policy.attempts = 3;
    flaky.policy.retry_on = vec![RetryOn::Spawn];
    let mut refused = task("refused", &["flaky-node"]);
    refused.policy.attempts = 3;
    refused.policy.retry_on = vec![RetryOn::Spawn];
    let out = run(vec![flaky, refused], fake, None).await;
    assert_eq!(out.fake.spawns("flaky-node").len(), 2);
    assert_eq!(
        out.fake.spawns("refused").len(),
        1,
        "a refusal is not retried"
    );
    assert_eq!(out.report.status, RunStatus::Failed);
}

/// A node that goes as the run's teardown signals it, after every step finished: the loss is recorded
/// with what could not be seen to stop, the run keeps its success (its results stand), and teardown
/// does not wait out the grace period on the lost node.
#[tokio::test(start_paused = true)]
async fn a_node_lost_in_teardown_after_the_work_is_done_is_recorded_and_the_run_stands() {
    let fake = FakeTransport::default()
        .script("worker", &[Attempt::LosesNodeOnSignal])
        .service("router");
    let steps = vec![
        service("worker", &[]),
        service("router", &["worker"]),
        task("bench", &["router"]),
    ];
    let out = run(steps, fake, None).await;
    assert_eq!(
        out.report.status,
        RunStatus::Succeeded,
        "{:?}",
        out.report.failures
    );
    assert!(out.report.failures.is_empty(), "{:?}", out.report.failures);
    let lost: Vec<_> = out
        .journal
        .iter()
        .filter_map(|r| match &r.event {
            srt_graph_engine::journal::Event::NodeLost { node, steps, .. } => {
                Some((node.clone(), steps.clone()))
            }
            _ => None,
        })
        .collect();
    assert_eq!(
        lost,
        vec![("node0".to_string(), vec!["worker".to_string()])]
    );
    // The worker's SIGTERM, then its SIGKILL sweep within a check's interval (the grace is 3 s).
    let signalled: Vec<Duration> = out
        .fake
        .seen()
        .into_iter()
        .filter_map(|s| match s {
            srt_graph_engine::testing::Seen::Signalled { step, at, .. } if step == "worker" => {
                Some(at)
            }
            _ => None,
        })
        .collect();
    assert_eq!(signalled.len(), 2, "{signalled:?}");
    assert!(signalled[1] - signalled[0] < secs(0.5), "{signalled:?}");
}
