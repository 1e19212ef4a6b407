//! The commands behind `wait_healthy` and `mount_source` steps: readiness gates and the source mount.

use serde_json::Value;
use std::path::Path;
use std::time::{Duration, Instant};

/// Worker counts one router or frontend reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Counts {
    pub prefill: u32,
    pub decode: u32,
}

/// sglang-router `GET /workers`: `stats.prefill_count`, and `decode_count + regular_count` (srt-slurm's
/// rule: aggregated workers are regular and count as decode).
pub fn sglang_counts(v: &Value) -> Option<Counts> {
    let stats = v.get("stats")?;
    let n = |k: &str| stats.get(k).and_then(Value::as_u64).unwrap_or(0) as u32;
    Some(Counts {
        prefill: n("prefill_count"),
        decode: n("decode_count") + n("regular_count"),
    })
}

/// Dynamo frontend `GET /health`: `instances[]` with `endpoint == "generate"`, by component; `backend`
/// instances count as decode until decode is satisfied, then as prefill (srt-slurm's rule).
pub fn dynamo_counts(v: &Value, want_decode: u32) -> Option<Counts> {
    let mut c = Counts::default();
    for inst in v.get("instances")?.as_array()? {
        if inst.get("endpoint").and_then(Value::as_str) != Some("generate") {
            continue;
        }
        match inst.get("component").and_then(Value::as_str) {
            Some("prefill") => c.prefill += 1,
            Some("decode") | Some("tensorrt_llm") => c.decode += 1,
            Some("backend") if c.decode < want_decode => c.decode += 1,
            Some("backend") => c.prefill += 1,
            _ => {}
        }
    }
    Some(c)
}

/// An OpenAI-compatible server (`trtllm-serve`, `vllm serve`) `GET /v1/models`: it cannot tell workers
/// apart, so a model listed means everything behind it is up.
pub fn openai_counts(v: &Value, want: Counts) -> Option<Counts> {
    let listed = v.get("data")?.as_array().is_some_and(|d| !d.is_empty());
    Some(if listed { want } else { Counts::default() })
}

/// Whether `GET {url}/v1/models` lists `model` (by `id`).
async fn lists_model(client: &reqwest::Client, url: &str, model: &str) -> bool {
    let got = client
        .get(format!("{}/v1/models", url.trim_end_matches('/')))
        .send()
        .await;
    let Ok(r) = got else { return false };
    let Ok(v) = r.json::<Value>().await else {
        return false;
    };
    v.get("data").and_then(Value::as_array).is_some_and(|d| {
        d.iter()
            .any(|m| m.get("id").and_then(Value::as_str) == Some(model))
    })
}

/// Pause before the next poll of a readiness gate: 4 % of the time already waited (at least 50 ms, at
/// most `max`). What a poll can miss is at most the last pause, so time lost to polling stays under ~4 %
/// of the wait however long it is, and a slow start is not hammered.
pub fn poll_interval(waited: Duration, max: Duration) -> Duration {
    (waited / 25).clamp(
        Duration::from_millis(50),
        max.max(Duration::from_millis(50)),
    )
}

pub struct WaitHealthy {
    pub mode: String,
    pub urls: Vec<String>,
    pub prefill: u32,
    pub decode: u32,
    pub max_interval: Duration,
    pub smoke: Option<String>,
    pub model: String,
}

/// Polls every URL until each reports the expected workers (fast at first: 100 ms, doubling to
/// `max_interval`), then sends one smoke request through the public endpoint. Runs until done; the step's
/// timeout bounds it. Progress lines name what is still missing.
pub async fn wait_healthy(w: &WaitHealthy) -> Result<(), String> {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .map_err(|e| e.to_string())?;
    let start = Instant::now();
    let mut last_report = String::new();
    let (mut polls, mut interval) = (0u32, Duration::ZERO);
    loop {
        polls += 1;
        let mut all_ready = true;
        let mut report = Vec::new();
        for url in &w.urls {
            let path = match w.mode.as_str() {
                "dynamo" => "/health",
                "openai" => "/v1/models",
                _ => "/workers",
            };
            let got = match client
                .get(format!("{}{path}", url.trim_end_matches('/')))
                .send()
                .await
            {
                Ok(r) if r.status().is_success() => r.json::<Value>().await.ok(),
                _ => None,
            };
            let want = Counts {
                prefill: w.prefill,
                decode: w.decode,
            };
            let counts = got.as_ref().and_then(|v| match w.mode.as_str() {
                "dynamo" => dynamo_counts(v, w.decode),
                "openai" => openai_counts(v, want),
                _ => sglang_counts(v),
            });
            // A Dynamo frontend counts a worker before it has loaded the model's card: until then it
            // answers requests for the model with 404 (a race seen on corpus recipes). Ready is also
            // listed in `/v1/models`.
            let counts = match counts {
                Some(c) if w.mode == "dynamo" && c.prefill >= w.prefill && c.decode >= w.decode => {
                    if lists_model(&client, url, &w.model).await {
                        Some(c)
                    } else {
                        report.push(format!(
                            "{url}: workers registered, model `{}` not listed in /v1/models yet",
                            w.model
                        ));
                        all_ready = false;
                        continue;
                    }
                }
                other => other,
            };
            match counts {
                Some(c) if c.prefill >= w.prefill && c.decode >= w.decode => {
                    report.push(format!(
                        "{url}: {}/{} prefill, {}/{} decode",
                        c.prefill, w.prefill, c.decode, w.decode
                    ));
                }
                Some(c) => {
                    all_ready = false;
                    report.push(format!(
                        "{url}: {}/{} prefill, {}/{} decode — missing {} prefill, {} decode",
                        c.prefill,
                        w.prefill,
                        c.decode,
                        w.decode,
                        w.prefill.saturating_sub(c.prefill),
                        w.decode.saturating_sub(c.decode)
                    ));
                }
                None => {
                    all_ready = false;
                    report.push(format!("{url}: not answering yet"));
                }
            }
        }
        let line = report.join("; ");
        if line != last_report {
            println!("[{:>6.1}s] {line}", start.elapsed().as_secs_f64());
            last_report = line;
        }
        if all_ready {
            break;
        }
        interval = poll_interval(start.elapsed(), w.max_interval);
        tokio::time::sleep(interval).await;
    }
    println!(
        "Model is ready. ({:.1}s; {polls} polls, last pause {} ms)",
        start.elapsed().as_secs_f64(),
        interval.as_millis()
    );
    if let Some(public) = &w.smoke {
        smoke(&client, public, &w.model).await?;
    }
    Ok(())
}

/// One chat request through the public endpoint, as srt-slurm sends after its health gate.
async fn smoke(client: &reqwest::Client, public: &str, model: &str) -> Result<(), String> {
    let base = public.trim_end_matches('/');
    let chat = (
        format!("{base}/v1/chat/completions"),
        serde_json::json!({
            "model": model, "messages": [{"role": "user", "content": "Say hello."}],
            "stream": false, "max_tokens": 8,
        }),
    );
    // A model served without a chat template answers completions only (404 on chat).
    let completion = (
        format!("{base}/v1/completions"),
        serde_json::json!({"model": model, "prompt": "Say hello.", "stream": false, "max_tokens": 8}),
    );
    let mut last = String::new();
    // A frontend can list a worker a moment before it can route to it (Dynamo answers 503 meanwhile):
    // retry for up to a minute, as a user would before calling the deployment broken.
    let until = Instant::now() + Duration::from_secs(60);
    let mut route = &chat;
    while Instant::now() < until {
        match client.post(&route.0).json(&route.1).send().await {
            Ok(r) if r.status().is_success() => {
                println!("smoke request through {public}: {}", r.status());
                return Ok(());
            }
            Ok(r) if r.status() == reqwest::StatusCode::NOT_FOUND && route.0 == chat.0 => {
                last = format!("{}: {}", r.status(), r.text().await.unwrap_or_default());
                route = &completion;
                continue;
            }
            Ok(r) => last = format!("{}: {}", r.status(), r.text().await.unwrap_or_default()),
            Err(e) => last = e.to_string(),
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    Err(format!("smoke request to {} failed: {last}", route.0))
}

/// Whether a service answers its probe right now (HTTP 2xx, or a TCP connection), within 3 s.
pub async fn probe(p: &srt_graph_engine::Probe) -> bool {
    let limit = Duration::from_secs(3);
    match p {
        srt_graph_engine::Probe::Tcp { host, port } => tokio::time::timeout(
            limit,
            tokio::net::TcpStream::connect((host.as_str(), *port)),
        )
        .await
        .is_ok_and(|r| r.is_ok()),
        srt_graph_engine::Probe::Http { url } => {
            match reqwest::Client::builder().timeout(limit).build() {
                Ok(c) => c
                    .get(url)
                    .send()
                    .await
                    .is_ok_and(|r| r.status().is_success()),
                Err(_) => false,
            }
        }
    }
}

/// Whether a service answers at all (any HTTP status, or a TCP connection), within 3 s.
pub async fn answers(p: &srt_graph_engine::Probe) -> bool {
    match p {
        srt_graph_engine::Probe::Tcp { .. } => probe(p).await,
        srt_graph_engine::Probe::Http { url } => {
            match reqwest::Client::builder()
                .timeout(Duration::from_secs(3))
                .build()
            {
                Ok(c) => c.get(url).send().await.is_ok(),
                Err(_) => false,
            }
        }
    }
}

/// `tcp HOST:PORT` (accepts a connection) or `http URL` (answers 2xx): polls until true.
pub async fn wait_ready(kind: &str, target: &str, max_interval: Duration) -> Result<(), String> {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .map_err(|e| e.to_string())?;
    let start = Instant::now();
    let (mut polls, mut interval) = (0u32, Duration::ZERO);
    loop {
        polls += 1;
        let ok = match kind {
            "tcp" => tokio::net::TcpStream::connect(target).await.is_ok(),
            "http" => client
                .get(target)
                .send()
                .await
                .is_ok_and(|r| r.status().is_success()),
            other => return Err(format!("unknown readiness check `{other}` (tcp or http)")),
        };
        if ok {
            println!(
                "{target} is ready ({:.2}s; {polls} polls, last pause {} ms)",
                start.elapsed().as_secs_f64(),
                interval.as_millis()
            );
            return Ok(());
        }
        interval = poll_interval(start.elapsed(), max_interval);
        tokio::time::sleep(interval).await;
    }
}

/// Makes the SGLang checkout `src` visible at `dst`. In a container `dst` is a bind mount and is checked;
/// elsewhere it becomes a symlink to `src`. Fails unless `src` is a Python project.
pub fn mount_source(src: &Path, dst: &Path) -> Result<String, String> {
    let meta =
        std::fs::metadata(src).map_err(|e| format!("sglang_src_dir {}: {e}", src.display()))?;
    if !meta.is_dir() {
        return Err(format!(
            "sglang_src_dir {} is not a directory",
            src.display()
        ));
    }
    let project = [
        "pyproject.toml",
        "setup.py",
        "setup.cfg",
        "python/pyproject.toml",
    ]
    .iter()
    .any(|f| src.join(f).exists());
    if !project {
        return Err(format!(
            "sglang_src_dir {} is not a Python project (no pyproject.toml or setup.py): `pip install -e .` would fail",
            src.display()
        ));
    }
    let src_real = src.canonicalize().map_err(|e| e.to_string())?;
    if let Ok(existing) = dst.canonicalize() {
        if existing == src_real {
            return Ok(format!("{} already shows {}", dst.display(), src.display()));
        }
        if std::fs::symlink_metadata(dst).is_ok_and(|m| m.file_type().is_symlink()) {
            std::fs::remove_file(dst).map_err(|e| format!("{}: {e}", dst.display()))?;
        } else {
            return Err(format!(
                "{} exists and is not {}",
                dst.display(),
                src.display()
            ));
        }
    } else if std::fs::symlink_metadata(dst).is_ok() {
        // A dangling symlink from an earlier run.
        std::fs::remove_file(dst).map_err(|e| format!("{}: {e}", dst.display()))?;
    }
    if let Some(parent) = dst.parent() {
        std::fs::create_dir_all(parent).map_err(|e| format!("{}: {e}", parent.display()))?;
    }
    std::os::unix::fs::symlink(&src_real, dst)
        .map_err(|e| format!("{} → {}: {e}", dst.display(), src.display()))?;
    Ok(format!("{} → {}", dst.display(), src_real.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn counting_rules() {
        let v = json!({"stats": {"prefill_count": 2, "decode_count": 1, "regular_count": 1}});
        assert_eq!(
            sglang_counts(&v),
            Some(Counts {
                prefill: 2,
                decode: 2
            })
        );
        let d = json!({"instances": [
            {"component": "backend", "endpoint": "generate"},
            {"component": "backend", "endpoint": "generate"},
            {"component": "backend", "endpoint": "clear_kv_blocks"},
            {"component": "prefill", "endpoint": "generate"},
        ]});
        assert_eq!(
            dynamo_counts(&d, 1),
            Some(Counts {
                prefill: 2,
                decode: 1
            })
        );
    }

    #[test]
    fn mount_checks_the_source() {
        let d = tempfile::tempdir().unwrap();
        let src = d.path().join("sglang");
        std::fs::create_dir(&src).unwrap();
        let dst = d.path().join("node0/ext-sglang-src");
        assert!(mount_source(&src, &dst)
            .unwrap_err()
            .contains("not a Python project"));
        std::fs::write(src.join("pyproject.toml"), "[project]\nname='x'\n").unwrap();
        mount_source(&src, &dst).unwrap();
        assert!(dst.join("pyproject.toml").exists());
        assert!(mount_source(&src, &dst).unwrap().contains("already"));
        assert!(mount_source(&d.path().join("nope"), &dst).is_err());
    }
}
