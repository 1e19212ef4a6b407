//! Secrets stay secret on the local executor: a recipe with credentials in every environment section
//! runs the real demo deployment (mock workers, real routers and nginx); no canary value ever shows in
//! any process's command line, in `plan` (every format), `plan.json`, the journal, a log (a step prints
//! its environment), `status`, the progress output or the report, and the run directory is owner-only.
//! The ssh and Slurm executors have the same test in `remote_cli.rs`.

mod common;

use common::{assert_no_survivors, assert_run_dir_keeps_secrets, path_env, ArgvWatch};
use std::process::Command;

const CANARIES: [&str; 4] = [
    "hf_CANARY_prefill_7f3a",
    "CANARY_decode_9b1c",
    "CANARY_listed_4d2e",
    "CANARY_step_8a6f",
];

fn recipe() -> String {
    let demo = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/recipes/local-demo.yaml"
    ))
    .expect("demo recipe");
    let backend = "backend:\n  type: sglang\n";
    assert!(demo.contains(backend));
    let demo = demo.replace(
        backend,
        &format!(
            "{backend}  prefill_environment:\n    HF_TOKEN: {}\n  decode_environment:\n    S3_SECRET_ACCESS_KEY: {}\n",
            CANARIES[0], CANARIES[1]
        ),
    );
    format!(
        "{demo}\nsecret_env: [WANDB_ENTITY]\nenvironment:\n  WANDB_ENTITY: {}\nsteps:\n  - name: print-env\n    run: \"env | sort\"\n    env:\n      DB_PASSWORD: {}\n",
        CANARIES[2], CANARIES[3]
    )
}

fn srt_graph(dir: &std::path::Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_srt-graph"));
    c.current_dir(dir)
        .env("PATH", path_env())
        .env_remove("SLURM_JOB_ID")
        .env_remove("SRTSLURM_CONFIG");
    c
}

fn assert_clean(what: &str, text: &str) {
    for c in CANARIES {
        assert!(!text.contains(c), "{what} shows {c}:\n{text}");
    }
}

#[test]
fn secrets_stay_out_of_argv_plan_journal_logs_and_reports_locally() {
    let dir = tempfile::tempdir().expect("tmp");
    let file = dir.path().join("recipe.yaml");
    std::fs::write(&file, recipe()).expect("write");
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o640)).expect("chmod");
    }
    for format in [&[][..], &["--json"], &["--dot"], &["--mermaid"]] {
        let out = srt_graph(dir.path())
            .args(["plan", "recipe.yaml"])
            .args(format)
            .output()
            .expect("plan");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8_lossy(&out.stdout);
        assert_clean("plan", &text);
        if format.is_empty() {
            assert!(text.contains("HF_TOKEN=<redacted>"), "{text}");
            assert!(
                text.contains("secret: DB_PASSWORD, HF_TOKEN, S3_SECRET_ACCESS_KEY, WANDB_ENTITY"),
                "{text}"
            );
        }
    }

    let watch = ArgvWatch::start(&CANARIES);
    let run_dir = dir.path().join("run");
    let out = srt_graph(dir.path())
        .args([
            "run",
            "recipe.yaml",
            "--smoke",
            "--grace",
            "3s",
            "--first-address",
            "127.0.50.1",
            "--run-dir",
        ])
        .arg(&run_dir)
        .output()
        .expect("run");
    let (samples, hits) = watch.finish();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(hits.is_empty(), "secret values in command lines: {hits:#?}");
    assert!(samples > 1000, "only {samples} command lines sampled");
    assert_clean(
        "progress and report",
        &format!("{}{err}", String::from_utf8_lossy(&out.stdout)),
    );

    // The step that printed its environment: the values were there, and were replaced before writing.
    let log = std::fs::read_to_string(run_dir.join("logs/print-env.log")).expect("log");
    assert!(log.contains("DB_PASSWORD=<redacted>"), "{log}");
    assert!(log.contains("WANDB_ENTITY=<redacted>"), "{log}");
    let status = srt_graph(dir.path())
        .arg("status")
        .arg(&run_dir)
        .output()
        .expect("status");
    assert_clean("status", &String::from_utf8_lossy(&status.stdout));
    assert_run_dir_keeps_secrets(&run_dir, &CANARIES, &["recipe.yaml"]);
    // The input's copy: no more than its source's permissions (0640), no more than the run dir's (0700).
    use std::os::unix::fs::PermissionsExt;
    let copy = std::fs::metadata(run_dir.join("recipe.yaml"))
        .expect("copy")
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(copy, 0o600);
    assert_no_survivors(&run_dir);

    // A changed token re-runs what it feeds (fingerprints hash it); the same one keeps everything.
    let resume = |dir: &std::path::Path| {
        let out = srt_graph(dir)
            .arg("resume")
            .arg(&run_dir)
            .arg("--dry-run")
            .output()
            .expect("resume");
        String::from_utf8_lossy(&out.stderr).to_string()
    };
    let same = resume(dir.path());
    assert!(same.contains("keep    wait-healthy"), "{same}");
    let copy = run_dir.join("recipe.yaml");
    let text = std::fs::read_to_string(&copy).expect("copy");
    std::fs::write(&copy, text.replace(CANARIES[0], "hf_CANARY_rotated_0000")).expect("rotate");
    let rotated = resume(dir.path());
    // The health gate behind the worker that carries the token runs again; the step without it stands.
    assert!(
        rotated.contains(
            "run     wait-healthy: its command, environment, inputs or dependencies changed"
        ),
        "{rotated}"
    );
    assert!(rotated.contains("keep    print-env"), "{rotated}");
    assert_clean("resume", &rotated);
}

#[test]
fn a_recipe_error_on_a_secret_line_does_not_echo_the_value() {
    let dir = tempfile::tempdir().expect("tmp");
    std::fs::write(
        dir.path().join("recipe.yaml"),
        format!("name: x\nenvironment:\n  HF_TOKEN: {}\n  BAD: [1, 2]\nsteps:\n  - name: a\n    run: \"true\"\n", CANARIES[0]),
    )
    .expect("write");
    std::fs::write(
        dir.path().join("bad-secret.yaml"),
        format!("name: x\nenvironment:\n  HF_TOKEN: {{nested: {}}}\nsteps:\n  - name: a\n    run: \"true\"\n", CANARIES[0]),
    )
    .expect("write");
    let out = srt_graph(dir.path())
        .args(["plan", "bad-secret.yaml"])
        .output()
        .expect("plan");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("bad-secret.yaml:3:"), "{err}");
    assert!(err.contains("HF_TOKEN: <redacted>"), "{err}");
    assert_clean("error", &err);
}
