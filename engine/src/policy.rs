//! Retry, backoff and timeout policy of one step.

use serde::{Deserialize, Serialize};
use std::time::Duration;

/// Which failures a retry may cure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RetryOn {
    /// The command could not be started (transport or spawn failure).
    Spawn,
    /// The command exited non-zero (only sensible for idempotent tasks).
    Exit,
    /// The command ran past its timeout.
    Timeout,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Policy {
    /// Total tries, first one included (>= 1).
    pub attempts: u32,
    /// Delay before the second try; doubles each try up to `backoff_max_ms`.
    pub backoff_ms: u64,
    pub backoff_max_ms: u64,
    /// Wall-clock limit of one try of a task; services have none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_secs: Option<f64>,
    pub retry_on: Vec<RetryOn>,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            attempts: 1,
            backoff_ms: 1000,
            backoff_max_ms: 30_000,
            timeout_secs: None,
            retry_on: vec![RetryOn::Spawn],
        }
    }
}

impl Policy {
    /// Delay before try number `next_attempt` (2 = first retry): exponential, capped, with ±25 % jitter
    /// so that many retrying steps do not hammer a shared service in lock-step.
    pub fn backoff(&self, next_attempt: u32) -> Duration {
        let exp = next_attempt.saturating_sub(2).min(30);
        let base = self
            .backoff_ms
            .saturating_mul(1u64 << exp)
            .min(self.backoff_max_ms);
        let jitter = 0.75 + fastrand::f64() * 0.5;
        Duration::from_millis((base as f64 * jitter) as u64)
    }

    pub fn retries(&self, cause: RetryOn) -> bool {
        self.retry_on.contains(&cause)
    }

    pub fn timeout(&self) -> Option<Duration> {
        self.timeout_secs
            .filter(|s| s.is_finite() && *s > 0.0)
            .map(Duration::from_secs_f64)
    }

    /// `3 tries, backoff 2s..30s, timeout 30m, retry on exit+spawn`
    pub fn describe(&self) -> String {
        let mut s = format!(
            "{} {}",
            self.attempts,
            if self.attempts == 1 { "try" } else { "tries" }
        );
        if self.attempts > 1 {
            s.push_str(&format!(
                ", backoff {}..{}",
                fmt_ms(self.backoff_ms),
                fmt_ms(self.backoff_max_ms)
            ));
            let on: Vec<&str> = self
                .retry_on
                .iter()
                .map(|r| match r {
                    RetryOn::Spawn => "spawn",
                    RetryOn::Exit => "exit",
                    RetryOn::Timeout => "timeout",
                })
                .collect();
            s.push_str(&format!(", retry on {}", on.join("+")));
        }
        if let Some(t) = self.timeout_secs {
            s.push_str(&format!(", timeout {}", fmt_secs(t)));
        }
        s
    }
}

fn fmt_ms(ms: u64) -> String {
    if ms.is_multiple_of(1000) {
        format!("{}s", ms / 1000)
    } else {
        format!("{ms}ms")
    }
}

/// `90s`, `30m`, `2h`, `1.5s`
pub fn fmt_secs(s: f64) -> String {
    if s.fract() != 0.0 {
        format!("{s}s")
    } else if s >= 3600.0 && s % 3600.0 == 0.0 {
        format!("{}h", s / 3600.0)
    } else if s >= 60.0 && s % 60.0 == 0.0 {
        format!("{}m", s / 60.0)
    } else {
        format!("{s}s")
    }
}

/// Parses `90`, `90s`, `1.5s`, `500ms`, `30m`, `2h` into seconds.
pub fn parse_duration(text: &str) -> Option<f64> {
    let t = text.trim();
    let (num, mult) = if let Some(n) = t.strip_suffix("ms") {
        (n, 0.001)
    } else if let Some(n) = t.strip_suffix('s') {
        (n, 1.0)
    } else if let Some(n) = t.strip_suffix('m') {
        (n, 60.0)
    } else if let Some(n) = t.strip_suffix('h') {
        (n, 3600.0)
    } else {
        (t, 1.0)
    };
    let v: f64 = num.trim().parse().ok()?;
    (v.is_finite() && v >= 0.0).then_some(v * mult)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_caps() {
        let p = Policy {
            attempts: 10,
            backoff_ms: 100,
            backoff_max_ms: 1000,
            ..Policy::default()
        };
        let b2 = p.backoff(2).as_millis();
        assert!((75..=125).contains(&b2), "{b2}");
        let b4 = p.backoff(4).as_millis();
        assert!((300..=500).contains(&b4), "{b4}");
        let b9 = p.backoff(9).as_millis();
        assert!((750..=1250).contains(&b9), "{b9}");
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("90s"), Some(90.0));
        assert_eq!(parse_duration("500ms"), Some(0.5));
        assert_eq!(parse_duration("2h"), Some(7200.0));
        assert_eq!(parse_duration("-1s"), None);
        assert_eq!(parse_duration("abc"), None);
        assert_eq!(fmt_secs(1800.0), "30m");
    }
}
