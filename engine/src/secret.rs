//! Secret values of a run: which environment variables of a plan are secret is the compiler's call
//! (`Plan::secret_env`); this module keeps their values out of everything a run shows or stores.
//! A `Redactor` replaces them in free text (logs, journal reasons, errors); `Plan::redacted` gives the
//! copy of a plan that is printed and written to `plan.json`; the digest keeps resume fingerprints
//! sensitive to a changed value without storing it.

use sha2::{Digest, Sha256};
use std::borrow::Cow;
use std::sync::Arc;

/// What a secret value is shown as.
pub const REDACTED: &str = "<redacted>";

/// Values shorter than this are redacted where they are a variable's value, but not searched for in
/// free text: replacing every "1" or "yes" in a log would make it unreadable and protect nothing.
pub const MIN_SEARCHED_LEN: usize = 4;

/// Replaces known secret values in text. Cheap to clone; `Debug` never shows a value.
#[derive(Clone, Default)]
pub struct Redactor {
    /// Longest first, so a value that contains another is replaced whole.
    values: Arc<[String]>,
}

impl std::fmt::Debug for Redactor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Redactor({} values)", self.values.len())
    }
}

impl Redactor {
    pub fn new<I: IntoIterator<Item = String>>(values: I) -> Redactor {
        let mut values: Vec<String> = values
            .into_iter()
            .filter(|v| v.len() >= MIN_SEARCHED_LEN && v != REDACTED)
            .collect();
        values.sort_by(|a, b| b.len().cmp(&a.len()).then_with(|| a.cmp(b)));
        values.dedup();
        Redactor {
            values: values.into(),
        }
    }

    /// The values themselves (to hand to a node agent, which redacts the logs it writes).
    pub fn values(&self) -> &[String] {
        &self.values
    }

    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// `text` with every secret value replaced by `<redacted>`.
    pub fn clean<'a>(&self, text: &'a str) -> Cow<'a, str> {
        let mut out = Cow::Borrowed(text);
        for v in self.values.iter() {
            if out.contains(v.as_str()) {
                out = Cow::Owned(out.replace(v.as_str(), REDACTED));
            }
        }
        out
    }

    /// Whether `text` holds a secret value.
    pub fn finds_in(&self, text: &str) -> bool {
        self.values.iter().any(|v| text.contains(v.as_str()))
    }
}

/// Digest of `(name, value)` pairs, for fingerprints: it changes when a value does, and a value cannot be
/// read back from it without guessing (it sits in the owner-only run directory besides).
pub fn digest<'a, I: IntoIterator<Item = (&'a str, &'a str)>>(pairs: I) -> String {
    let mut h = Sha256::new();
    h.update(b"srt-graph secret digest v1\0");
    for (name, value) in pairs {
        h.update(name.as_bytes());
        h.update(b"=");
        h.update(value.as_bytes());
        h.update(b"\0");
    }
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_longest_values_first_and_skips_short_ones() {
        let r = Redactor::new(["hf_abc".to_string(), "hf_abcdef".into(), "no".into()]);
        assert_eq!(
            r.clean("a hf_abcdef b hf_abc no"),
            "a <redacted> b <redacted> no"
        );
        assert!(matches!(r.clean("nothing here"), Cow::Borrowed(_)));
        assert_eq!(format!("{r:?}"), "Redactor(2 values)");
    }

    #[test]
    fn digest_changes_with_the_value() {
        assert_ne!(digest([("T", "a")]), digest([("T", "b")]));
        assert_eq!(digest([("T", "a")]), digest([("T", "a")]));
    }
}
