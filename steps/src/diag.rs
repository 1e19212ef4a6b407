//! Diagnostics about recipe input: every one names the file, line, column and field path, and says what
//! would be valid.

use crate::yaml::{Node, Pos, Value};
use std::fmt;
use thiserror::Error;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub file: String,
    pub pos: Pos,
    /// Dotted field path, e.g. `backend.sglang_config.decode.disaggregation-bootstrap-port`.
    pub path: String,
    pub message: String,
    pub help: Option<String>,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}: ", self.file, self.pos.line, self.pos.col)?;
        if !self.path.is_empty() {
            write!(f, "`{}`: ", self.path)?;
        }
        write!(f, "{}", self.message)?;
        if let Some(h) = &self.help {
            write!(f, "\n  help: {h}")?;
        }
        Ok(())
    }
}

impl Diagnostic {
    /// The diagnostic followed by the offending source line and a caret under the column.
    pub fn render(&self, source: Option<&str>) -> String {
        let mut s = self.to_string();
        if let Some(line) =
            source.and_then(|src| src.lines().nth((self.pos.line as usize).saturating_sub(1)))
        {
            let line = crate::secrets::redact_source_line(line);
            let shown: String = line.chars().take(160).collect();
            let col = (self.pos.col as usize)
                .saturating_sub(1)
                .min(shown.chars().count());
            s.push_str(&format!(
                "\n{:>5} | {shown}\n      | {}^",
                self.pos.line,
                " ".repeat(col)
            ));
        }
        s
    }
}

/// Why a recipe or cluster config cannot be planned.
#[derive(Debug, Error)]
pub enum RecipeError {
    #[error("{file}: cannot read: {source}")]
    Io {
        file: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{}", render_all(.0))]
    Invalid(Vec<Diagnostic>),
}

fn render_all(d: &[Diagnostic]) -> String {
    d.iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("\n")
}

impl RecipeError {
    pub fn diagnostics(&self) -> &[Diagnostic] {
        match self {
            RecipeError::Invalid(d) => d,
            RecipeError::Io { .. } => &[],
        }
    }
}

/// Joins a field path: `a` + `b` → `a.b`; an index → `a[2]`.
pub fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

/// The closest known name to `unknown`, if close enough to be a likely typo.
pub fn did_you_mean<'a>(
    unknown: &str,
    known: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    let norm = |s: &str| s.to_ascii_lowercase().replace('-', "_");
    let u = norm(unknown);
    known
        .into_iter()
        .map(|k| (k, strsim::jaro_winkler(&u, &norm(k))))
        .filter(|(_, score)| *score >= 0.82)
        .max_by(|a, b| a.1.total_cmp(&b.1))
        .map(|(k, _)| k)
}

/// Collects diagnostics while reading a tree; typed getters report and return `None` on mismatch.
pub struct Reader {
    pub file: String,
    pub diagnostics: Vec<Diagnostic>,
    /// Keys kept but not acted on, reported by `plan` as "ignored".
    pub ignored: Vec<String>,
}

/// A section's key table: keys this tool acts on, and srt-slurm keys it accepts but ignores.
pub struct Keys<'a> {
    pub known: &'a [&'a str],
    pub ignored: &'a [&'a str],
}

impl Reader {
    pub fn new(file: impl Into<String>) -> Reader {
        Reader {
            file: file.into(),
            diagnostics: Vec::new(),
            ignored: Vec::new(),
        }
    }

    pub fn error(
        &mut self,
        pos: Pos,
        path: &str,
        message: impl Into<String>,
        help: Option<String>,
    ) {
        self.diagnostics.push(Diagnostic {
            file: self.file.clone(),
            pos,
            path: path.to_string(),
            message: message.into(),
            help,
        });
    }

    pub fn finish(self) -> Result<Vec<String>, RecipeError> {
        if self.diagnostics.is_empty() {
            Ok(self.ignored)
        } else {
            Err(RecipeError::Invalid(self.diagnostics))
        }
    }

    /// Checks that `node` is a mapping (null counts as empty) whose keys are all in `keys`; unknown keys
    /// are errors with a suggestion, ignored keys are recorded. Returns false if it is not a mapping.
    pub fn check_keys(&mut self, node: &Node, path: &str, keys: &Keys<'_>) -> bool {
        let entries = match &node.value {
            Value::Map(m) => m,
            Value::Null => return true,
            _ => {
                self.error(
                    node.pos,
                    path,
                    format!("expected a mapping, found {}", node.describe()),
                    Some(format!("valid keys here: {}", keys.known.join(", "))),
                );
                return false;
            }
        };
        for e in entries {
            let field = join(path, &e.key);
            if keys.known.contains(&e.key.as_str()) {
                continue;
            }
            if keys.ignored.contains(&e.key.as_str()) {
                self.ignored.push(field);
                continue;
            }
            let all = keys.known.iter().chain(keys.ignored.iter()).copied();
            let help = match did_you_mean(&e.key, all) {
                Some(k) => format!("did you mean `{k}`?"),
                None => format!("valid keys here: {}", keys.known.join(", ")),
            };
            self.error(
                e.key_pos,
                &field,
                format!("unknown key `{}`", e.key),
                Some(help),
            );
        }
        true
    }

    /// A flag map (`sglang_config.<role>`, `frontend.args`): keys are flag names, values scalars or lists.
    pub fn flag_map(&mut self, node: Option<&Node>, path: &str) -> Vec<(String, Node)> {
        let Some(node) = node else { return Vec::new() };
        match &node.value {
            Value::Null => Vec::new(),
            Value::Map(entries) => entries
                .iter()
                .map(|e| (e.key.clone(), e.value.clone()))
                .collect(),
            _ => {
                self.error(
                    node.pos,
                    path,
                    format!(
                        "expected a mapping of flag names to values, found {}",
                        node.describe()
                    ),
                    Some("e.g. `tensor-parallel-size: 4`".into()),
                );
                Vec::new()
            }
        }
    }

    /// A scalar read as text (numbers and booleans are accepted as their text).
    pub fn string(&mut self, node: Option<&Node>, path: &str) -> Option<String> {
        let node = node?;
        match &node.value {
            Value::Null => None,
            Value::Seq(_) | Value::Map(_) => {
                self.error(
                    node.pos,
                    path,
                    format!("expected a string, found {}", node.describe()),
                    None,
                );
                None
            }
            _ => node.scalar_text(),
        }
    }

    pub fn boolean(&mut self, node: Option<&Node>, path: &str) -> Option<bool> {
        let node = node?;
        match &node.value {
            Value::Null => None,
            Value::Bool(b) => Some(*b),
            _ => {
                self.error(
                    node.pos,
                    path,
                    format!("expected true or false, found {}", node.describe()),
                    None,
                );
                None
            }
        }
    }

    /// An integer in `min..=max`; integral strings (`"4096"`, as sweeps produce) are accepted.
    pub fn int(&mut self, node: Option<&Node>, path: &str, min: i64, max: i64) -> Option<i64> {
        let node = node?;
        let value = match &node.value {
            Value::Null => return None,
            Value::Int(i) => Some(*i),
            Value::Str(s) => s.trim().parse::<i64>().ok().or_else(|| {
                // Digits too long for i64 are out of range, not a type error.
                let t = s.trim().trim_start_matches(['-', '+']);
                (!t.is_empty() && t.bytes().all(|b| b.is_ascii_digit())).then(|| {
                    if s.trim().starts_with('-') {
                        i64::MIN
                    } else {
                        i64::MAX
                    }
                })
            }),
            _ => None,
        };
        match value {
            Some(v) if (min..=max).contains(&v) => Some(v),
            Some(_) => {
                self.error(
                    node.pos,
                    path,
                    format!("{} is out of range", node.describe()),
                    Some(format!("expected an integer from {min} to {max}")),
                );
                None
            }
            None => {
                self.error(
                    node.pos,
                    path,
                    format!("expected an integer, found {}", node.describe()),
                    Some(format!("expected an integer from {min} to {max}")),
                );
                None
            }
        }
    }

    /// A finite number in `min..=max` (an integer or a decimal, or a string of one, as sweeps produce).
    pub fn number(&mut self, node: Option<&Node>, path: &str, min: f64, max: f64) -> Option<f64> {
        let node = node?;
        if matches!(node.value, Value::Null) {
            return None;
        }
        let value = match &node.value {
            Value::Seq(_) | Value::Map(_) | Value::Bool(_) => None,
            _ => node
                .scalar_text()
                .and_then(|t| t.trim().parse::<f64>().ok())
                .filter(|v| v.is_finite()),
        };
        match value {
            Some(v) if (min..=max).contains(&v) => Some(v),
            _ => {
                self.error(
                    node.pos,
                    path,
                    format!("{} is not a number from {min} to {max}", node.describe()),
                    None,
                );
                None
            }
        }
    }

    /// A mapping of names to scalars (environment variables, flag maps).
    pub fn string_map(&mut self, node: Option<&Node>, path: &str) -> Vec<(String, String)> {
        let Some(node) = node else { return Vec::new() };
        match &node.value {
            Value::Null => Vec::new(),
            Value::Map(entries) => {
                let mut out = Vec::with_capacity(entries.len());
                for e in entries {
                    let field = join(path, &e.key);
                    match &e.value.value {
                        Value::Null => out.push((e.key.clone(), String::new())),
                        Value::Seq(_) | Value::Map(_) => self.error(
                            e.value.pos,
                            &field,
                            format!("expected a string value, found {}", e.value.describe()),
                            None,
                        ),
                        _ => out.push((e.key.clone(), e.value.scalar_text().unwrap_or_default())),
                    }
                }
                out
            }
            _ => {
                self.error(
                    node.pos,
                    path,
                    format!(
                        "expected a mapping of names to values, found {}",
                        node.describe()
                    ),
                    None,
                );
                Vec::new()
            }
        }
    }

    /// A list of strings; a single string is accepted as a one-element list.
    pub fn string_list(&mut self, node: Option<&Node>, path: &str) -> Vec<String> {
        let Some(node) = node else { return Vec::new() };
        match &node.value {
            Value::Null => Vec::new(),
            Value::Seq(items) => items
                .iter()
                .enumerate()
                .filter_map(|(i, n)| self.string(Some(n), &format!("{path}[{i}]")))
                .collect(),
            _ => self.string(Some(node), path).into_iter().collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggestions() {
        assert_eq!(
            did_you_mean("prefil_nodes", ["prefill_nodes", "decode_nodes"]),
            Some("prefill_nodes")
        );
        assert_eq!(did_you_mean("zzz", ["prefill_nodes"]), None);
    }
}
