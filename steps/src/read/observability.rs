//! `observability:`: srtctl's analytics knobs. The metrics scrape (`raw_prometheus.jsonl`) is on by
//! default here — a run that cannot say why a point is slow loses what its processes showed — and
//! `scrape_metrics: false` turns it off; `scrape_interval_seconds` (0.5 s at least) and `scrape_output`
//! are honoured. OpenTelemetry and srtctl's dashboard are not started (listed as ignored).

use crate::diag::{Keys, Reader};
use crate::recipe::Scrape;
use crate::yaml::Node;

const OBSERVABILITY: Keys = Keys {
    known: &[
        "enabled",
        "scrape_metrics",
        "scrape_interval_seconds",
        "scrape_output",
    ],
    ignored: &[
        "enable_otel",
        "otel_endpoint",
        "build_dashboard",
        "tachometer",
    ],
};

/// The scrape, or `None` when the recipe turns it off.
pub fn read(doc: &Node, r: &mut Reader) -> Option<Scrape> {
    let Some(section) = doc.get("observability") else {
        return Some(Scrape::default());
    };
    if !r.check_keys(section, "observability", &OBSERVABILITY) {
        return Some(Scrape::default());
    }
    // `enabled` is srtctl's master switch for what it can start; the scrape follows it only when
    // the recipe says `enabled: false` and nothing about the scrape itself.
    let enabled = r.boolean(section.get("enabled"), "observability.enabled");
    let scrape = r
        .boolean(
            section.get("scrape_metrics"),
            "observability.scrape_metrics",
        )
        .or(enabled.filter(|e| !e))
        .unwrap_or(true);
    let interval_secs = match section.get("scrape_interval_seconds") {
        None => 1.0,
        Some(n) => match n.scalar_text().and_then(|t| t.parse::<f64>().ok()) {
            Some(v) if v.is_finite() && (0.5..=3600.0).contains(&v) => v,
            _ => {
                r.error(
                    n.pos,
                    "observability.scrape_interval_seconds",
                    format!(
                        "`{}` is not a number of seconds between 0.5 and 3600",
                        n.scalar_text().unwrap_or_default()
                    ),
                    Some("srtctl's floor is 0.5 s; the default is 1".into()),
                );
                1.0
            }
        },
    };
    let output = match r.string(section.get("scrape_output"), "observability.scrape_output") {
        None => Scrape::default().output,
        Some(name) if !name.is_empty() && !name.contains('/') && !name.starts_with('.') => name,
        Some(name) => {
            let pos = section.get("scrape_output").map_or(section.pos, |n| n.pos);
            r.error(
                pos,
                "observability.scrape_output",
                format!("`{name}` is not a file name"),
                Some("name a file in the run directory, e.g. raw_prometheus.jsonl".into()),
            );
            Scrape::default().output
        }
    };
    scrape.then_some(Scrape {
        interval_secs,
        output,
    })
}
