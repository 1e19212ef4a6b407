//! `srt-graph profile start|stop`: srtctl's `start_all_profiling` / `stop_all_profiling` as a step. Each
//! worker leader gets `POST …/start_profile` with SGLang's `ProfileReqInput` (`output_dir`, `start_step`,
//! `num_steps`, `activities`) or `…/stop_profile`. As in srtctl, a worker that refuses is a warning, not a
//! failure of the run: the profiles are a by-product of the benchmark, whose results still stand.

use serde_json::json;
use std::time::Duration;

/// One worker leader: `START:STOP=URL=DIR`.
#[derive(Debug, Clone, PartialEq)]
pub struct Worker {
    pub start_step: u64,
    pub stop_step: u64,
    pub url: String,
    pub output_dir: String,
}

impl Worker {
    pub fn parse(s: &str) -> Result<Worker, String> {
        let bad = || {
            format!("`{s}` is not START:STOP=URL=DIR (e.g. 0:50=http://10.0.0.2:30000=/logs/profiles/decode)")
        };
        let mut parts = s.splitn(3, '=');
        let (Some(window), Some(url), Some(dir)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(bad());
        };
        let (a, b) = window.split_once(':').ok_or_else(bad)?;
        let (start_step, stop_step) = (
            a.parse().map_err(|_| bad())?,
            b.parse::<u64>().map_err(|_| bad())?,
        );
        if stop_step <= start_step || !url.starts_with("http") || dir.is_empty() {
            return Err(bad());
        }
        Ok(Worker {
            start_step,
            stop_step,
            url: url.trim_end_matches('/').into(),
            output_dir: dir.into(),
        })
    }
}

/// Asks every worker; returns how many accepted.
pub async fn start(workers: &[Worker], path: &str, activities: &[String]) -> usize {
    let http = client();
    let mut accepted = 0;
    for w in workers {
        let _ = std::fs::create_dir_all(&w.output_dir);
        let body = json!({"output_dir": w.output_dir, "start_step": w.start_step,
            "num_steps": w.stop_step - w.start_step, "activities": activities});
        println!(
            "starting profiling on {} (steps {}-{}) into {}",
            w.url, w.start_step, w.stop_step, w.output_dir
        );
        if post(&http, &format!("{}{path}", w.url), body).await {
            accepted += 1;
        }
    }
    accepted
}

pub async fn stop(workers: &[Worker], path: &str) -> usize {
    let http = client();
    let mut accepted = 0;
    for w in workers {
        println!("stopping profiling on {}", w.url);
        if post(&http, &format!("{}{path}", w.url), json!({})).await {
            accepted += 1;
        }
    }
    accepted
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap_or_default()
}

async fn post(http: &reqwest::Client, url: &str, body: serde_json::Value) -> bool {
    match http.post(url).json(&body).send().await {
        Ok(r) if r.status().is_success() => {
            let text = r.text().await.unwrap_or_default();
            println!("  {url}: {}", text.trim());
            true
        }
        Ok(r) => {
            let status = r.status();
            let text = r.text().await.unwrap_or_default();
            println!("  warning: {url} answered {status}: {}", text.trim());
            false
        }
        Err(e) => {
            println!("  warning: {url}: {e}");
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Worker;

    #[test]
    fn workers_parse_and_bad_ones_say_the_shape() {
        let w = Worker::parse("10:60=http://127.0.0.1:30000/=/run/profiles/decode").unwrap();
        assert_eq!((w.start_step, w.stop_step), (10, 60));
        assert_eq!(w.url, "http://127.0.0.1:30000");
        assert!(Worker::parse("60:10=http://a=/d").is_err());
        assert!(Worker::parse("http://a")
            .unwrap_err()
            .contains("START:STOP=URL=DIR"));
    }
}
