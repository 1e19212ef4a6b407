//! What the user sees while a plan runs: live bars on a terminal, plain timestamped lines elsewhere.

use crate::plan::Step;
use crate::process::clock;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Receives state changes from the executor (called from its event loop only).
pub trait Observer: Send {
    fn started(&mut self, step: &Step, attempt: u32, last_line: Arc<Mutex<String>>);
    fn finished(&mut self, step: &Step, attempt: u32, elapsed: Duration);
    fn failed(&mut self, step: &Step, attempt: u32, reason: &str, will_retry: bool);
    fn message(&mut self, text: &str);
    fn tick(&mut self) {}
    /// Whether it shows each running step's last log line (`started`'s `last_line` is then kept
    /// current by following the step's log; otherwise nothing follows it).
    fn shows_last_lines(&self) -> bool {
        false
    }
}

/// One line per state change, for logs, CI and pipes. `quiet` keeps only failures and messages.
pub struct Plain {
    pub quiet: bool,
}

impl Observer for Plain {
    fn started(&mut self, step: &Step, attempt: u32, _: Arc<Mutex<String>>) {
        if !self.quiet {
            let again = if attempt > 1 {
                format!(", attempt {attempt}")
            } else {
                String::new()
            };
            eprintln!("[{}] start   {} ({}{again})", clock(), step.id, step.kind);
        }
    }
    fn finished(&mut self, step: &Step, _: u32, elapsed: Duration) {
        if !self.quiet {
            let what = if step.is_service() {
                "up     "
            } else {
                "done   "
            };
            eprintln!(
                "[{}] {what} {} {:.2}s",
                clock(),
                step.id,
                elapsed.as_secs_f64()
            );
        }
    }
    fn failed(&mut self, step: &Step, attempt: u32, reason: &str, will_retry: bool) {
        let next = if will_retry { " — will retry" } else { "" };
        eprintln!(
            "[{}] FAILED  {} (attempt {attempt}): {reason}{next}",
            clock(),
            step.id
        );
    }
    fn message(&mut self, text: &str) {
        eprintln!("[{}] {text}", clock());
    }
}

/// indicatif: an overall bar plus one line per running step with its elapsed time and last log line.
pub struct Bars {
    multi: MultiProgress,
    overall: ProgressBar,
    running: HashMap<String, (ProgressBar, Arc<Mutex<String>>, Instant)>,
}

impl Bars {
    pub fn new(total: usize) -> Bars {
        let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stderr_with_hz(10));
        let overall = multi.add(ProgressBar::new(total as u64));
        overall.set_style(
            ProgressStyle::with_template(
                "[{elapsed_precise}] {bar:30.cyan/blue} {pos}/{len} steps {msg}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        Bars {
            multi,
            overall,
            running: HashMap::new(),
        }
    }
}

impl Observer for Bars {
    fn started(&mut self, step: &Step, _: u32, last_line: Arc<Mutex<String>>) {
        let bar = self.multi.add(ProgressBar::new_spinner());
        bar.set_style(
            ProgressStyle::with_template("  {spinner} {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        );
        bar.set_message(step.id.clone());
        self.running
            .insert(step.id.clone(), (bar, last_line, Instant::now()));
    }
    fn finished(&mut self, step: &Step, _: u32, elapsed: Duration) {
        if let Some((bar, _, _)) = self.running.remove(&step.id) {
            bar.finish_and_clear();
            self.multi.remove(&bar);
        }
        let what = if step.is_service() { "up  " } else { "done" };
        let _ = self.multi.println(format!(
            "  {what} {} ({:.2}s)",
            step.id,
            elapsed.as_secs_f64()
        ));
        self.overall.inc(1);
    }
    fn failed(&mut self, step: &Step, attempt: u32, reason: &str, will_retry: bool) {
        if let Some((bar, _, _)) = self.running.remove(&step.id) {
            bar.finish_and_clear();
            self.multi.remove(&bar);
        }
        let next = if will_retry { " — will retry" } else { "" };
        let _ = self.multi.println(format!(
            "  FAILED {} (attempt {attempt}): {reason}{next}",
            step.id
        ));
    }
    fn shows_last_lines(&self) -> bool {
        true
    }
    fn message(&mut self, text: &str) {
        let _ = self.multi.println(text);
    }
    fn tick(&mut self) {
        for (id, (bar, last, since)) in &self.running {
            let line = last
                .lock()
                .map(|l| l.chars().take(100).collect::<String>())
                .unwrap_or_default();
            bar.set_message(format!(
                "{id} {:>5.1}s  {line}",
                since.elapsed().as_secs_f64()
            ));
            bar.tick();
        }
    }
}

impl Drop for Bars {
    fn drop(&mut self) {
        self.overall.finish_and_clear();
        let _ = self.multi.clear();
    }
}
