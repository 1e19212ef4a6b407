//! `srt-graph plan` end to end: the shared corpus, the bad-input suite, golden outputs and the JSON contract.

use assert_cmd::Command;
use std::path::{Path, PathBuf};

#[path = "common/loopback.rs"]
#[allow(dead_code)] // `first` is for the binaries that run deployments
mod loopback;

fn bin() -> Command {
    let mut c = Command::cargo_bin("srt-graph").expect("binary");
    c.env_remove("SRTSLURM_CONFIG");
    c
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn yaml_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            yaml_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "yaml")
            && !p.to_string_lossy().contains("srtslurm")
        {
            out.push(p);
        }
    }
    out.sort();
}

#[test]
fn every_corpus_recipe_plans() {
    let corpus = root().join("../shared/corpus");
    if !corpus.is_dir() {
        eprintln!("skipped: {} is absent", corpus.display());
        return;
    }
    let mut checked = 0;
    let mut ignored = std::collections::BTreeSet::new();
    for era in ["seed-era", "current", "backends"] {
        let cluster = corpus.join(era).join("srtslurm.yaml.example");
        let mut files = Vec::new();
        yaml_files(&corpus.join(era), &mut files);
        assert!(!files.is_empty(), "no recipes under {era}");
        for f in files {
            // Text (the default), JSON and DOT.
            for format in [None, Some("--json"), Some("--dot")] {
                let out = bin()
                    .arg("plan")
                    .arg(&f)
                    .arg("--cluster-config")
                    .arg(&cluster)
                    .args(format)
                    .output()
                    .expect("run");
                assert!(
                    out.status.success(),
                    "{} failed:\n{}",
                    f.display(),
                    String::from_utf8_lossy(&out.stderr)
                );
                if format.is_none() {
                    for line in String::from_utf8_lossy(&out.stdout).lines() {
                        if let Some(field) = line.strip_prefix("ignored: ") {
                            let field = field.split(" — ").next().unwrap_or(field);
                            ignored.insert(field.to_string());
                        }
                    }
                }
            }
            checked += 1;
        }
    }
    assert!(checked >= 400, "only {checked} corpus recipes found");
    // What the corpus sets is acted on; the exceptions have reasons that hold on a real cluster too
    // (README: "Fields srt-graph does not act on").
    let allowed: std::collections::BTreeSet<String> =
        ["observability.tachometer"].map(String::from).into();
    let extra: Vec<_> = ignored.difference(&allowed).collect();
    assert!(
        extra.is_empty(),
        "the corpus sets fields nobody acts on: {extra:?}"
    );
}

/// Each file under tests/bad starts with `# expect: LINE:COL PATH | MESSAGE` (LINE:COL and PATH may be
/// partial or empty when the parser decides the exact spot).
#[test]
fn bad_inputs_are_refused_with_location_and_message() {
    let mut files = Vec::new();
    yaml_files(&root().join("tests/bad"), &mut files);
    assert!(
        files.len() >= 30,
        "bad-input suite has only {} files",
        files.len()
    );
    let mut failures = Vec::new();
    for f in &files {
        let raw = std::fs::read(f).expect("read");
        let first = String::from_utf8_lossy(&raw)
            .lines()
            .next()
            .unwrap_or_default()
            .to_string();
        let spec = first
            .strip_prefix("# expect: ")
            .unwrap_or_else(|| panic!("{} lacks an expect line", f.display()));
        let spec = format!(" {spec}");
        let (loc_path, message) = spec
            .split_once(" | ")
            .map_or((spec.as_str(), ""), |(a, b)| (a, b));
        let loc_path = loc_path.trim_start();
        let (loc, path) = loc_path.split_once(' ').unwrap_or((loc_path, ""));
        let out = bin().arg("plan").arg(f).output().expect("run");
        let stderr = String::from_utf8_lossy(&out.stderr).to_string();
        let mut problems = Vec::new();
        if out.status.code() != Some(2) {
            problems.push(format!("exit code {:?}, expected 2", out.status.code()));
        }
        if stderr.contains("panicked") || stderr.contains("RUST_BACKTRACE") {
            problems.push("panicked".into());
        }
        let want_loc = format!("{}:{loc}", f.display());
        if !loc.is_empty() && !stderr.contains(&want_loc) {
            problems.push(format!("missing location `{want_loc}`"));
        }
        if !path.trim().is_empty() && !stderr.contains(&format!("`{}`: ", path.trim())) {
            problems.push(format!("missing field path `{}`", path.trim()));
        }
        if !message.trim().is_empty() && !stderr.contains(message.trim()) {
            problems.push(format!("missing message `{}`", message.trim()));
        }
        if !problems.is_empty() {
            failures.push(format!(
                "{}: {}\n--- stderr ---\n{stderr}",
                f.display(),
                problems.join("; ")
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} bad inputs mishandled:\n{}",
        failures.len(),
        files.len(),
        failures.join("\n")
    );
}

#[test]
fn a_fifty_megabyte_recipe_is_refused_quickly() {
    let dir = tempfile::tempdir().expect("tmp");
    let f = dir.path().join("big.yaml");
    let mut text = String::from("name: big\nsteps:\n");
    while text.len() < 50 * 1024 * 1024 {
        text.push_str("  - {name: a, run: \"echo aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"}\n");
    }
    std::fs::write(&f, text).expect("write");
    let out = bin().arg("plan").arg(&f).output().expect("run");
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(":1:1: file is") && stderr.contains("larger than"),
        "{stderr}"
    );
}

const GOLDEN_FORMATS: [(&str, &str); 3] = [("txt", ""), ("dot", "--dot"), ("mmd", "--mermaid")];

/// Regenerates every `graphs/<recipe>.{txt,dot,mmd}` and diffs it; `BLESS=1 cargo test` rewrites them.
#[test]
fn golden_plans_match() {
    let bless = std::env::var_os("BLESS").is_some();
    let mut recipes = Vec::new();
    yaml_files(&root().join("recipes"), &mut recipes);
    assert!(recipes.len() >= 5);
    let mut stale = Vec::new();
    for r in &recipes {
        let stem = r.file_stem().and_then(|s| s.to_str()).expect("stem");
        for (ext, flag) in GOLDEN_FORMATS {
            let mut cmd = bin();
            // Goldens show what `plan` shows by default: stand-ins paced by the performance model.
            cmd.current_dir(root())
                .env("SRT_GRAPH_TIMING", "model")
                .arg("plan")
                .arg(format!("recipes/{stem}.yaml"));
            if !flag.is_empty() {
                cmd.arg(flag);
            }
            let out = cmd.output().expect("run");
            assert!(
                out.status.success(),
                "{stem}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            let golden = root().join("graphs").join(format!("{stem}.{ext}"));
            if bless {
                std::fs::write(&golden, &out.stdout).expect("bless");
            } else if std::fs::read(&golden).ok().as_deref() != Some(&out.stdout[..]) {
                stale.push(golden.display().to_string());
            }
        }
    }
    assert!(stale.is_empty(), "plans differ from goldens (inspect, then `BLESS=1 cargo test --test plan_cli golden`):\n{}", stale.join("\n"));
}

/// The DOT goldens render with graphviz (required in CI, where the test script installs it).
#[test]
fn dot_goldens_render_with_graphviz() {
    let have_dot = std::process::Command::new("dot").arg("-V").output().is_ok();
    if !have_dot {
        assert!(
            std::env::var_os("CI").is_none(),
            "graphviz `dot` is required in CI"
        );
        eprintln!("skipped: graphviz `dot` not installed");
        return;
    }
    let mut files = Vec::new();
    let dir = root().join("graphs");
    for e in std::fs::read_dir(&dir).expect("graphs/").flatten() {
        if e.path().extension().is_some_and(|x| x == "dot") {
            files.push(e.path());
        }
    }
    assert!(!files.is_empty());
    for f in files {
        let out = std::process::Command::new("dot")
            .arg("-Tsvg")
            .arg(&f)
            .output()
            .expect("dot");
        assert!(
            out.status.success(),
            "{}: {}",
            f.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(String::from_utf8_lossy(&out.stdout).contains("<svg"));
    }
}

#[test]
fn json_contract() {
    let out = bin()
        .current_dir(root())
        .args([
            "plan",
            "recipes/gb300-sglang-router.yaml",
            "--json",
            "--executor",
            "slurm",
        ])
        .output()
        .expect("run");
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(v["recipe"], "deepseek-r1-sglang-router");
    assert_eq!(
        v["nodes"],
        serde_json::json!(["node0", "node1", "node2", "node3"])
    );
    let steps = v["steps"].as_array().expect("steps");
    let kinds = [
        "mount_source",
        "pip_install",
        "start_worker",
        "wait_healthy",
        "start_router",
        "start_nginx",
        "run_benchmark",
        "start_nats",
        "start_etcd",
        "start_frontend",
        "setup_script",
        "shell",
        "start_container",
        "fingerprint",
        "scrape_metrics",
        "sample_host",
        "check_identity",
        "perf_table",
        "mock_model",
    ];
    for s in steps {
        for key in [
            "id",
            "kind",
            "node",
            "depends_on",
            "command",
            "env",
            "ports",
        ] {
            assert!(s.get(key).is_some(), "step lacks `{key}`: {s}");
        }
        assert!(kinds.contains(&s["kind"].as_str().expect("kind")));
        if s["kind"] == "start_worker" {
            assert!(
                ["prefill", "decode", "aggregated"].contains(&s["role"].as_str().expect("role"))
            );
        }
    }
    let routers: Vec<&serde_json::Value> = steps
        .iter()
        .filter(|s| s["kind"] == "start_router")
        .collect();
    assert_eq!(routers.len(), 4, "1 + num_additional_frontends 3");
    let router_nodes: Vec<u64> = routers
        .iter()
        .map(|r| r["node"].as_u64().expect("node"))
        .collect();
    assert_eq!(router_nodes, [0, 1, 2, 3]);
    let argv: Vec<&str> = routers[0]["command"]
        .as_array()
        .expect("argv")
        .iter()
        .map(|a| a.as_str().expect("str"))
        .collect();
    assert_eq!(
        argv.join(" "),
        "python3 -m sglang_router.launch_router --pd-disaggregation --prefill http://node0:30000 30001 --prefill http://node1:30000 30001 --decode http://node2:30000 --decode http://node3:30000 --host 0.0.0.0 --port 30080 --prometheus-host 0.0.0.0 --prometheus-port 29000"
    );
    let nginx = steps
        .iter()
        .find(|s| s["kind"] == "start_nginx")
        .expect("nginx");
    assert_eq!(nginx["node"], 0);
    assert_eq!(nginx["ports"], serde_json::json!([8000]));
}

#[test]
fn single_router_has_no_nginx_and_listens_on_8000() {
    let out = bin()
        .current_dir(root())
        .args(["plan", "recipes/single-router.yaml", "--json"])
        .output()
        .expect("run");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let steps = v["steps"].as_array().expect("steps");
    assert!(!steps.iter().any(|s| s["kind"] == "start_nginx"));
    let routers: Vec<_> = steps
        .iter()
        .filter(|s| s["kind"] == "start_router")
        .collect();
    assert_eq!(routers.len(), 1);
    assert_eq!(routers[0]["node"], 0);
    assert_eq!(routers[0]["ports"], serde_json::json!([8000, 29000]));
}

#[test]
fn sglang_src_dir_adds_mount_and_editable_install_before_each_worker() {
    let out = bin()
        .current_dir(root())
        .args([
            "plan",
            "recipes/sglang-src.yaml",
            "--json",
            "--executor",
            "ssh",
        ])
        .output()
        .expect("run");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let steps = v["steps"].as_array().expect("steps");
    for (worker, node) in [("prefill-0", "node0"), ("decode-0", "node1")] {
        let w = steps.iter().find(|s| s["id"] == worker).expect("worker");
        assert_eq!(
            w["depends_on"],
            serde_json::json!([format!("pip-sglang-src/{node}")])
        );
        let pip = steps
            .iter()
            .find(|s| s["id"] == format!("pip-sglang-src/{node}"))
            .expect("pip");
        // Into the run's venv (serialised by its lock), in the source the mount step linked.
        assert_eq!(
            pip["command"],
            serde_json::json!([
                "flock",
                "$SRT_GRAPH_CACHE/venv.lock",
                "$SRT_GRAPH_CACHE/venv/bin/python",
                "-m",
                "pip",
                "install",
                "-e",
                ".",
                "--no-deps"
            ])
        );
        assert_eq!(pip["cwd"], format!("$RUN_DIR/{node}/ext-sglang-src"));
        assert_eq!(
            pip["depends_on"],
            serde_json::json!(["venv/node0", format!("mount-src/{node}")])
        );
        let mount = steps
            .iter()
            .find(|s| s["id"] == format!("mount-src/{node}"))
            .expect("mount");
        assert_eq!(mount["kind"], "mount_source");
    }
    // Without it (or empty), neither step exists.
    let out = bin()
        .current_dir(root())
        .args(["plan", "recipes/single-router.yaml", "--json"])
        .output()
        .expect("run");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert!(!v["steps"].as_array().expect("steps").iter().any(|s| {
        s["kind"] == "mount_source"
            || s["id"]
                .as_str()
                .is_some_and(|id| id.starts_with("pip-sglang-src/"))
    }));
}

#[test]
fn override_variants_are_selectable() {
    let f = root().join("../shared/corpus/current/recipes/b200-fp4/1k1k.yaml");
    if !f.exists() {
        eprintln!("skipped: corpus absent");
        return;
    }
    let all = bin()
        .arg("plan")
        .arg(&f)
        .arg("--json")
        .output()
        .expect("run");
    let v: serde_json::Value = serde_json::from_slice(&all.stdout).expect("json");
    let ids: Vec<&str> = v
        .as_array()
        .expect("array")
        .iter()
        .map(|x| x["variant"].as_str().expect("id"))
        .collect();
    assert_eq!(ids.len(), 8, "{ids:?}");
    let one = bin()
        .arg("plan")
        .arg(format!("{}:stp_lowlat[1]", f.display()))
        .arg("--json")
        .output()
        .expect("run");
    assert!(
        one.status.success(),
        "{}",
        String::from_utf8_lossy(&one.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&one.stdout).expect("json");
    assert_eq!(v["recipe"], "b200-fp4-stp-low-latency-dep4-1p-tep8-6d");
    let decode = v["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .filter(|s| s["role"] == "decode")
        .count();
    assert_eq!(decode, 6);
    let none = bin()
        .arg("plan")
        .arg(format!("{}:nope", f.display()))
        .output()
        .expect("run");
    assert_eq!(none.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&none.stderr).contains("no variant matches `nope`"));
}

#[test]
fn ignored_keys_are_reported() {
    let dir = tempfile::tempdir().expect("tmp");
    let f = dir.path().join("r.yaml");
    std::fs::write(&f, "name: x\nsteps: [{name: a, run: \"true\"}]\nenable_config_dump: true\nreporting: {status: {endpoint: x}}\n").expect("write");
    let out = bin().arg("plan").arg(&f).output().expect("run");
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("ignored: enable_config_dump") && text.contains("ignored: reporting"),
        "{text}"
    );
}

/// The `local-*` recipes declare their simulation: planned (and run) without `--mock-workers`, their
/// workers are the stand-ins.
#[test]
fn local_recipes_declare_simulation() {
    for (recipe, stand_in) in [
        ("recipes/local-demo.yaml", "mock-worker"),
        ("recipes/local-dynamo.yaml", "dynamo.mocker"),
        ("recipes/local-trtllm.yaml", "dynamo.mocker"),
    ] {
        let out = bin()
            .current_dir(root())
            .args(["plan", recipe, "--json"])
            .output()
            .expect("run");
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
        let workers: Vec<String> = v["steps"]
            .as_array()
            .expect("steps")
            .iter()
            .filter(|s| s["kind"] == "start_worker")
            .map(|s| s["command"].to_string())
            .collect();
        assert!(!workers.is_empty(), "{recipe}");
        assert!(
            workers.iter().all(|w| w.contains(stand_in)),
            "{recipe}: {workers:?}"
        );
    }
}

/// A setup script the cluster does not have stops `run` before anything starts, naming where srtctl
/// looks; the simulation skips it with a note.
#[test]
fn a_missing_setup_script_is_found_before_anything_starts() {
    let dir = tempfile::tempdir().expect("tmp");
    let recipe = "name: s\nmodel: {path: m}\nresources: {gpu_type: h100, gpus_per_node: 1, agg_nodes: 1, agg_workers: 1}\nfrontend: {type: sglang, enable_multiple_frontends: false}\nbackend: {type: sglang, sglang_config: {aggregated: {tp-size: 1}}}\nsetup_script: install-nope.sh\n";
    std::fs::write(dir.path().join("r.yaml"), recipe).expect("write");
    let out = bin()
        .current_dir(dir.path())
        .env("SRT_GRAPH_CACHE", dir.path().join("cache"))
        .args(["run", "r.yaml", "--run-dir", "run"])
        .output()
        .expect("run");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("/configs/install-nope.sh")
            && err.contains("/configs/patches/install-nope.sh"),
        "{err}"
    );
    assert!(err.contains("nothing was started"), "{err}");
    assert!(
        !dir.path().join("run/journal.jsonl").exists(),
        "nothing may start"
    );
    let planned = bin()
        .current_dir(dir.path())
        .args(["plan", "r.yaml", "--mock-workers"])
        .output()
        .expect("plan");
    let text = String::from_utf8_lossy(&planned.stdout);
    assert!(
        text.contains("setup_script `install-nope.sh` is skipped"),
        "{text}"
    );
    assert!(!text.contains("setup/node0"), "{text}");
}

/// One cached venv per Dynamo pin; in simulation a git pin falls back to a release (the plan says so),
/// while a real run honours it.
#[test]
fn dynamo_pins_get_their_own_venv_and_git_pins_fall_back_only_in_simulation() {
    let dir = tempfile::tempdir().expect("tmp");
    let recipe = |dynamo: &str| {
        format!("name: d\nmodel: {{path: m}}\nresources: {{gpu_type: h100, gpus_per_node: 1, agg_nodes: 1, agg_workers: 1}}\nfrontend: {{type: dynamo, enable_multiple_frontends: false}}\nbackend: {{type: sglang, sglang_config: {{aggregated: {{tp-size: 1}}}}}}\ndynamo: {dynamo}\n")
    };
    let plan = |text: &str, mock: bool| -> String {
        std::fs::write(dir.path().join("d.yaml"), text).expect("write");
        let mut c = bin();
        c.current_dir(dir.path()).args(["plan", "d.yaml"]);
        if mock {
            c.arg("--mock-workers");
        }
        String::from_utf8_lossy(&c.output().expect("plan").stdout).into_owned()
    };
    let v080 = plan(&recipe("{version: 0.8.0}"), false);
    let v161 = plan(&recipe("{version: 1.6.1}"), true);
    assert!(v080.contains("'ai-dynamo==0.8.0'"), "{v080}");
    assert!(
        v161.contains("$SRT_GRAPH_CACHE/venv-dynamo-1.6.1"),
        "{v161}"
    );
    // Dynamo's declared dependencies come from its own metadata, with what cannot be had here named.
    assert!(
        v161.contains("pip-dynamo-deps/node0") && v161.contains("aisimulate"),
        "{v161}"
    );
    // A 0.x pin cannot serve here: the simulation runs the verified release and says why.
    let simulated_080 = plan(&recipe("{version: 0.8.0}"), true);
    assert!(
        simulated_080.contains("Hugging Face") && simulated_080.contains("venv-dynamo-1.6.1"),
        "{simulated_080}"
    );
    let hash = recipe("{hash: 39d2a68}");
    let simulated = plan(&hash, true);
    assert!(
        simulated.contains("cannot be built here") && simulated.contains("'ai-dynamo==1.6.1'"),
        "{simulated}"
    );
    let real = plan(&hash, false);
    assert!(
        real.contains("git+https://github.com/ai-dynamo/dynamo.git@39d2a68"),
        "{real}"
    );
    assert!(!real.contains("cannot be built here"), "{real}");
}

#[test]
fn container_mounts_follow_srtctl_and_nginx_shares_or_gets_its_own_container() {
    let dir = tempfile::tempdir().expect("tmp");
    let d = dir.path().display().to_string();
    std::fs::write(
        dir.path().join("srtslurm.yaml"),
        format!("containers:\n  worker: /images/w.sqsh\n  web: /images/nginx.sqsh\ndefault_mounts:\n  \"${{SRT_TEST_SHARED}}/datasets\": /datasets\nsrtctl_root: {d}/srtctl\n"),
    )
    .expect("write");
    std::fs::write(
        dir.path().join("r.yaml"),
        "name: boxed\nmodel: {path: /models/m, container: worker, precision: fp8}\nresources: {gpu_type: h100, gpus_per_node: 1, agg_nodes: 1, agg_workers: 1}\nfrontend: {type: sglang, enable_multiple_frontends: true, num_additional_frontends: 1, nginx_container: web}\nbackend:\n  sglang_config:\n    aggregated: {tp-size: 1}\ncontainer_mounts:\n  /scratch: /scratch\nextra_mount: [\"/opt/x:/x\"]\nbenchmark: {type: manual}\n",
    )
    .expect("write");
    let out = bin()
        .current_dir(dir.path())
        .env("SRT_TEST_SHARED", "/lustre/shared")
        .args([
            "plan",
            "r.yaml",
            "--cluster-config",
            "srtslurm.yaml",
            "--executor",
            "slurm",
            "--json",
        ])
        .output()
        .expect("plan");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let step = |id: &str| {
        v["steps"]
            .as_array()
            .expect("steps")
            .iter()
            .find(|s| s["id"] == id)
            .unwrap_or_else(|| panic!("no {id}"))
            .clone()
    };
    let worker = step("agg-0");
    assert_eq!(worker["container"]["image"], "/images/w.sqsh");
    let mounts: Vec<&str> = worker["container"]["mounts"]
        .as_array()
        .expect("mounts")
        .iter()
        .filter_map(|m| m.as_str())
        .collect();
    for m in [
        "/models/m:/model/",
        "$RUN_DIR:/logs/",
        "/lustre/shared/datasets:/datasets",
        "/scratch:/scratch",
        "/opt/x:/x",
    ] {
        assert!(mounts.contains(&m), "{m} not in {mounts:?}");
    }
    assert!(
        mounts.iter().any(|m| m.ends_with("/configs:/configs")),
        "{mounts:?}"
    );
    assert!(worker["depends_on"]
        .as_array()
        .expect("deps")
        .contains(&"container/node0".into()));
    // nginx in an image of its own: a named container, created up front beside the workers' and
    // checked for nginx, not unpacked on the critical path after the routers.
    let nginx = step("nginx");
    assert_eq!(nginx["container"]["image"], "/images/nginx.sqsh");
    let name = worker["container"]["name"].as_str().expect("worker's name");
    assert_eq!(nginx["container"]["name"], format!("{name}-nginx"));
    assert!(nginx["depends_on"]
        .as_array()
        .expect("deps")
        .contains(&"container/node0/nginx".into()));
    let own = step("container/node0/nginx");
    assert_eq!(own["container"], nginx["container"]);
    assert!(own["depends_on"].as_array().is_none_or(|d| d.is_empty()));
    assert_eq!(own["command"][3], "nginx", "{own}");
    // nginx in the workers' image joins their container on its node.
    std::fs::write(
        dir.path().join("same.yaml"),
        std::fs::read_to_string(dir.path().join("r.yaml"))
            .expect("read")
            .replace("nginx_container: web", "nginx_container: worker"),
    )
    .expect("write");
    let out = bin()
        .current_dir(dir.path())
        .args(["plan", "same.yaml", "--cluster-config", "srtslurm.yaml"])
        .args(["--executor", "slurm", "--json"])
        .output()
        .expect("plan");
    let same: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let steps = same["steps"].as_array().expect("steps");
    let find = |id: &str| steps.iter().find(|s| s["id"] == id).expect(id);
    assert_eq!(find("nginx")["container"], find("agg-0")["container"]);
    assert!(find("nginx")["depends_on"]
        .as_array()
        .expect("deps")
        .contains(&"container/node0".into()));
    assert!(
        find("container/node0")["command"]
            .as_array()
            .expect("argv")
            .contains(&"nginx".into()),
        "the image is checked for nginx too"
    );
    assert!(!steps.iter().any(|s| s["id"] == "container/node0/nginx"));
    // A comma would split pyxis's mount list: refused where it is written.
    std::fs::write(
        dir.path().join("bad.yaml"),
        "name: b\nmodel: {path: /m, container: worker}\nresources: {gpu_type: h100, gpus_per_node: 1, agg_nodes: 1, agg_workers: 1}\ncontainer_mounts:\n  /a,b: /c\nsteps:\n  - {name: s, run: \"true\"}\n",
    )
    .expect("write");
    let out = bin()
        .current_dir(dir.path())
        .args(["plan", "bad.yaml", "--cluster-config", "srtslurm.yaml"])
        .output()
        .expect("plan");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("bad.yaml:5:3") && err.contains("cannot hold `,`"),
        "{err}"
    );
}

/// Every loopback address written in a test binary is in the block it owns (tests/common/loopback.rs),
/// so binaries running side by side never race for one address and port.
#[test]
fn test_binaries_keep_to_their_loopback_blocks() {
    let mut stray = Vec::new();
    let mut files: Vec<PathBuf> = std::fs::read_dir(root().join("tests"))
        .expect("tests/")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "rs"))
        .collect();
    files.sort();
    assert!(files.len() > 5, "{files:?}");
    for file in files {
        let binary = file
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or_default();
        let own = loopback::block(binary);
        let text = std::fs::read_to_string(&file).expect("read");
        for (n, line) in text.lines().enumerate() {
            for (at, _) in line.match_indices("127.0.") {
                let digits: String = line[at + 6..]
                    .chars()
                    .take_while(char::is_ascii_digit)
                    .collect();
                let Ok(octet) = digits.parse::<u8>() else {
                    continue;
                };
                if !own.contains(&octet) {
                    stray.push(format!(
                        "{}:{}: 127.0.{octet}. is outside {binary}'s block {own:?}",
                        file.display(),
                        n + 1
                    ));
                }
            }
        }
    }
    assert!(stray.is_empty(), "{}", stray.join("\n"));
}
