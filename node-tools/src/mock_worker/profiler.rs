//! SGLang's `/start_profile` and `/stop_profile` on the mock: a capture window of forward steps
//! (`start_step` is a step number, as SGLang's `forward_ct`; `num_steps` its length) whose batches are
//! written as a Chrome trace (`chrome://tracing`, Perfetto) into `output_dir` when the window ends or
//! `/stop_profile` comes. Under the performance model a step is one scheduled batch of a rank; under the
//! fixed timing, which schedules no batches, each finished request counts as one step and is traced.

use serde_json::{json, Value};
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};
use tokio::time::Instant;

/// What `/start_profile` asks for (SGLang's `ProfileReqInput`, the fields srtctl sends).
#[derive(Debug, Clone, serde::Deserialize, Default)]
pub struct StartRequest {
    pub output_dir: Option<String>,
    pub start_step: Option<u64>,
    pub num_steps: Option<u64>,
    #[serde(default)]
    pub activities: Vec<String>,
}

struct Session {
    dir: PathBuf,
    /// First step (of the worker's own count) inside the window, and the first one after it.
    from: u64,
    until: Option<u64>,
    activities: Vec<String>,
    events: Vec<Value>,
    /// Wall clock and monotonic time at the start, so trace timestamps are absolute microseconds.
    epoch_us: u128,
    t0: Instant,
}

/// One worker's profiler: at most one capture at a time, as SGLang allows.
pub struct Profiler {
    /// Names the trace files (a role directory holds every worker of the role).
    name: String,
    /// Steps made so far by each rank (grown as ranks report).
    steps: Mutex<Vec<u64>>,
    session: Mutex<Option<Session>>,
}

/// A traced unit of work: a batch of a rank, or a whole request under the fixed timing.
pub struct Span<'a> {
    pub rank: usize,
    pub name: &'a str,
    pub start: Instant,
    pub end: Instant,
    pub args: Value,
}

impl Profiler {
    pub fn new(name: String) -> Profiler {
        Profiler {
            name,
            steps: Mutex::new(vec![0]),
            session: Mutex::new(None),
        }
    }

    pub fn start(&self, req: StartRequest, default_dir: &str) -> Result<String, String> {
        let mut session = self.session.lock().unwrap_or_else(|p| p.into_inner());
        if session.is_some() {
            return Err("a profile is already being captured; stop it first".into());
        }
        let dir = PathBuf::from(req.output_dir.unwrap_or_else(|| default_dir.to_string()));
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let now = self.steps.lock().unwrap_or_else(|p| p.into_inner())[0];
        // SGLang: a start step already passed means the next one.
        let from = req.start_step.map_or(now, |s| s.max(now));
        let until = req.num_steps.map(|n| from + n.max(1));
        let epoch_us = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_micros();
        *session = Some(Session {
            dir: dir.clone(),
            from,
            until,
            activities: req.activities,
            events: Vec::new(),
            epoch_us,
            t0: Instant::now(),
        });
        Ok(match until {
            Some(u) => format!("profiling steps {from}..{u} into {}", dir.display()),
            None => format!(
                "profiling from step {from} until /stop_profile into {}",
                dir.display()
            ),
        })
    }

    /// Ends the capture and writes its trace; `Ok(None)` when none was running.
    pub fn stop(&self) -> Result<Option<PathBuf>, String> {
        let taken = self
            .session
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        taken.map(|s| self.write(s)).transpose()
    }

    /// Counts a step of `span.rank` and traces it when it falls in the window.
    pub fn step(&self, span: Span<'_>) {
        let n = {
            let mut steps = self.steps.lock().unwrap_or_else(|p| p.into_inner());
            if steps.len() <= span.rank {
                steps.resize(span.rank + 1, 0);
            }
            steps[span.rank] += 1;
            steps[span.rank] - 1
        };
        let finished = {
            let mut guard = self.session.lock().unwrap_or_else(|p| p.into_inner());
            let Some(s) = guard.as_mut() else {
                return;
            };
            if n >= s.from && s.until.is_none_or(|u| n < u) {
                let at = |t: Instant| {
                    s.epoch_us as i128 + t.saturating_duration_since(s.t0).as_micros() as i128
                        - s.t0.saturating_duration_since(t).as_micros() as i128
                };
                let mut args = span.args;
                args["step"] = n.into();
                s.events.push(json!({
                    "name": span.name, "ph": "X", "cat": "batch", "pid": 0, "tid": span.rank,
                    "ts": at(span.start), "dur": span.end.saturating_duration_since(span.start).as_micros() as u64,
                    "args": args,
                }));
            }
            // The window of rank 0 decides its end (SGLang's scheduler of TP rank 0 does).
            if span.rank == 0 && s.until.is_some_and(|u| n + 1 >= u) {
                guard.take()
            } else {
                None
            }
        };
        if let Some(s) = finished {
            match self.write(s) {
                Ok(p) => log_line!("mock-worker: profile written to {}", p.display()),
                Err(e) => log_line!("mock-worker: profile not written: {e}"),
            }
        }
    }

    fn write(&self, s: Session) -> Result<PathBuf, String> {
        let path = s
            .dir
            .join(format!("{}-{}.trace.json", self.name, s.epoch_us / 1000));
        let mut events = vec![json!({"name": "process_name", "ph": "M", "pid": 0,
            "args": {"name": format!("{} (SIMULATED worker: srt-graph mock-worker)", self.name)}})];
        events.extend(s.events);
        let trace = json!({
            "traceEvents": events,
            "displayTimeUnit": "ms",
            "otherData": {"simulated": true, "activities": s.activities, "from_step": s.from, "until_step": s.until},
        });
        std::fs::write(&path, trace.to_string()).map_err(|e| format!("{}: {e}", path.display()))?;
        Ok(path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn span(rank: usize, t: Instant) -> Span<'static> {
        Span {
            rank,
            name: "decode",
            start: t,
            end: t + std::time::Duration::from_millis(2),
            args: json!({"batch": 4}),
        }
    }

    #[tokio::test]
    async fn a_window_of_steps_becomes_a_chrome_trace() {
        let d = tempfile::tempdir().unwrap();
        let p = Profiler::new("decode_127.0.0.1_30000".into());
        let t = Instant::now();
        p.step(span(0, t)); // step 0, before the window
        let msg = p
            .start(
                StartRequest {
                    output_dir: Some(d.path().display().to_string()),
                    start_step: Some(2),
                    num_steps: Some(3),
                    activities: vec!["CPU".into(), "GPU".into()],
                },
                "/nonexistent",
            )
            .unwrap();
        assert!(msg.contains("steps 2..5"), "{msg}");
        assert!(p.start(StartRequest::default(), "/x").is_err());
        for _ in 1..8 {
            p.step(span(0, t));
        }
        // The window closed by itself at step 5; nothing is left to stop.
        assert!(p.stop().unwrap().is_none());
        let file = std::fs::read_dir(d.path())
            .unwrap()
            .flatten()
            .next()
            .unwrap();
        let v: Value = serde_json::from_slice(&std::fs::read(file.path()).unwrap()).unwrap();
        let steps: Vec<u64> = v["traceEvents"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|e| e["args"]["step"].as_u64())
            .collect();
        assert_eq!(steps, [2, 3, 4]);
        assert_eq!(v["otherData"]["simulated"], true);
    }
}
