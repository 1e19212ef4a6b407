//! A YAML document tree that keeps the line and column of every node.
//!
//! Built from `saphyr-parser` events (serde_yaml is archived and drops positions). Every later stage —
//! override merging, sweep substitution, alias resolution, typed extraction — works on this tree, so an
//! error about a value can always point at the line the user wrote it on. Building is iterative and
//! bounded: nesting depth, alias expansion and input size are capped, so hostile input cannot exhaust the
//! stack or memory.

use saphyr_parser::{Event, Parser, ScalarStyle, Span};
use std::collections::HashMap;
use std::fmt;

/// Deepest nesting accepted; real recipes stay below 8.
pub const MAX_DEPTH: usize = 64;
/// Nodes that alias expansion may create in total (billion-laughs guard).
pub const MAX_NODES: usize = 200_000;
/// Largest recipe accepted, in bytes. Real recipes are a few KiB.
pub const MAX_BYTES: usize = 4 * 1024 * 1024;

/// 1-based line and column of a node in its file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, PartialOrd, Ord)]
pub struct Pos {
    pub line: u32,
    pub col: u32,
}

impl fmt::Display for Pos {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.line, self.col)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Seq(Vec<Node>),
    Map(Vec<Entry>),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub key: String,
    pub key_pos: Pos,
    pub value: Node,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub value: Value,
    pub pos: Pos,
}

/// Why a text is not a usable YAML document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyntaxError {
    pub pos: Pos,
    pub message: String,
}

impl Node {
    pub fn new(value: Value, pos: Pos) -> Node {
        Node { value, pos }
    }

    pub fn as_map(&self) -> Option<&[Entry]> {
        match &self.value {
            Value::Map(m) => Some(m),
            _ => None,
        }
    }

    pub fn get(&self, key: &str) -> Option<&Node> {
        self.as_map()?
            .iter()
            .find(|e| e.key == key)
            .map(|e| &e.value)
    }

    pub fn get_mut(&mut self, key: &str) -> Option<&mut Node> {
        match &mut self.value {
            Value::Map(m) => m.iter_mut().find(|e| e.key == key).map(|e| &mut e.value),
            _ => None,
        }
    }

    /// A short name of the node's type, for messages ("a mapping", "the string \"x\"").
    pub fn describe(&self) -> String {
        match &self.value {
            Value::Null => "nothing (null)".into(),
            Value::Bool(b) => format!("the boolean {b}"),
            Value::Int(i) => format!("the integer {i}"),
            Value::Float(x) => format!("the number {x}"),
            Value::Str(s) if s.chars().count() > 40 => {
                let head: String = s.chars().take(40).collect();
                format!("the string {head:?}…")
            }
            Value::Str(s) => format!("the string {s:?}"),
            Value::Seq(_) => "a list".into(),
            Value::Map(_) => "a mapping".into(),
        }
    }

    /// The scalar as text, as srt-slurm would print it into a command line.
    pub fn scalar_text(&self) -> Option<String> {
        match &self.value {
            Value::Bool(b) => Some(b.to_string()),
            Value::Int(i) => Some(i.to_string()),
            Value::Float(x) => Some(format_float(*x)),
            Value::Str(s) => Some(s.clone()),
            _ => None,
        }
    }

    /// Converts to JSON (for `plan --json` and fingerprints); positions are dropped.
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::Value as J;
        match &self.value {
            Value::Null => J::Null,
            Value::Bool(b) => J::Bool(*b),
            Value::Int(i) => J::from(*i),
            Value::Float(x) => serde_json::Number::from_f64(*x).map_or(J::Null, J::Number),
            Value::Str(s) => J::String(s.clone()),
            Value::Seq(items) => J::Array(items.iter().map(Node::to_json).collect()),
            Value::Map(entries) => J::Object(
                entries
                    .iter()
                    .map(|e| (e.key.clone(), e.value.to_json()))
                    .collect(),
            ),
        }
    }
}

/// Python prints `0.85` as `0.85` and `1e-05` as `1e-05`; Rust's `{}` agrees on the common cases.
pub fn format_float(x: f64) -> String {
    if x.fract() == 0.0 && x.abs() < 1e15 {
        format!("{x:.1}")
    } else {
        format!("{x}")
    }
}

fn pos_of(span: &Span) -> Pos {
    Pos {
        line: u32::try_from(span.start.line()).unwrap_or(u32::MAX),
        col: u32::try_from(span.start.col() + 1).unwrap_or(u32::MAX),
    }
}

/// Resolves a plain scalar with the YAML core schema (plus the `True`/`FALSE` spellings recipes use).
fn resolve_plain(text: &str) -> Value {
    match text {
        "" | "~" | "null" | "Null" | "NULL" => return Value::Null,
        "true" | "True" | "TRUE" => return Value::Bool(true),
        "false" | "False" | "FALSE" => return Value::Bool(false),
        ".inf" | ".Inf" | "+.inf" => return Value::Float(f64::INFINITY),
        "-.inf" | "-.Inf" => return Value::Float(f64::NEG_INFINITY),
        ".nan" | ".NaN" => return Value::Float(f64::NAN),
        _ => {}
    }
    let digits = text.strip_prefix(['-', '+']).unwrap_or(text);
    if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
        if let Ok(i) = text.parse::<i64>() {
            return Value::Int(i);
        }
        // Too large for i64: keep the digits so that the range check can quote them.
        return Value::Str(text.to_string());
    }
    if let Some(hex) = text.strip_prefix("0x") {
        if let Ok(i) = i64::from_str_radix(hex, 16) {
            return Value::Int(i);
        }
    }
    let looks_numeric = digits
        .bytes()
        .next()
        .is_some_and(|b| b.is_ascii_digit() || b == b'.')
        && digits
            .bytes()
            .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'E' | b'-' | b'+'));
    if looks_numeric {
        if let Ok(x) = text.parse::<f64>() {
            return Value::Float(x);
        }
    }
    Value::Str(text.to_string())
}

enum Frame {
    Seq {
        pos: Pos,
        anchor: usize,
        items: Vec<Node>,
    },
    Map {
        pos: Pos,
        anchor: usize,
        entries: Vec<Entry>,
        pending_key: Option<(String, Pos)>,
        merges: Vec<Node>,
    },
}

/// Parses one YAML document into a positioned tree.
pub fn parse(text: &str) -> Result<Node, SyntaxError> {
    if text.len() > MAX_BYTES {
        return Err(SyntaxError {
            pos: Pos { line: 1, col: 1 },
            message: format!(
                "file is {} bytes; recipes larger than {} bytes are refused",
                text.len(),
                MAX_BYTES
            ),
        });
    }
    if let Some(idx) = text.find('\0') {
        let line = text[..idx].matches('\n').count() + 1;
        return Err(SyntaxError {
            pos: Pos {
                line: u32::try_from(line).unwrap_or(u32::MAX),
                col: 1,
            },
            message: "file contains a NUL byte: this is binary data, not YAML".into(),
        });
    }
    let mut builder = Builder::default();
    let mut parser = Parser::new_from_str(text);
    let mut documents = 0usize;
    let mut root: Option<Node> = None;
    while let Some(event) = parser.next_event() {
        let (event, span) = event.map_err(|e| SyntaxError {
            pos: Pos {
                line: u32::try_from(e.marker().line()).unwrap_or(u32::MAX),
                col: u32::try_from(e.marker().col() + 1).unwrap_or(u32::MAX),
            },
            message: e.info().to_string(),
        })?;
        let pos = pos_of(&span);
        match event {
            Event::DocumentStart(_) => {
                documents += 1;
                if documents > 1 {
                    return Err(SyntaxError {
                        pos,
                        message: "more than one YAML document (`---`) in the file; a recipe is one document".into(),
                    });
                }
            }
            Event::StreamEnd => break,
            Event::StreamStart | Event::DocumentEnd | Event::Nothing => {}
            other => {
                if let Some(node) = builder.event(other, pos)? {
                    root = Some(node);
                }
            }
        }
    }
    Ok(root.unwrap_or(Node::new(Value::Null, Pos { line: 1, col: 1 })))
}

#[derive(Default)]
struct Builder {
    stack: Vec<Frame>,
    anchors: HashMap<usize, Node>,
    nodes: usize,
}

impl Builder {
    fn count(&mut self, n: usize, pos: Pos) -> Result<(), SyntaxError> {
        self.nodes = self.nodes.saturating_add(n);
        if self.nodes > MAX_NODES {
            return Err(SyntaxError {
                pos,
                message: format!(
                    "document expands to more than {MAX_NODES} values (aliases nested too deep?)"
                ),
            });
        }
        Ok(())
    }

    /// Feeds one event; returns the root when the document is complete.
    fn event(&mut self, event: Event<'_>, pos: Pos) -> Result<Option<Node>, SyntaxError> {
        let done = match event {
            Event::Scalar(text, style, anchor, _tag) => {
                self.count(1, pos)?;
                // A plain `<<` key marks a YAML merge.
                let is_merge_key = style == ScalarStyle::Plain && text == "<<";
                let value = if style == ScalarStyle::Plain {
                    resolve_plain(&text)
                } else {
                    Value::Str(text.into_owned())
                };
                let node = Node::new(value, pos);
                if anchor > 0 {
                    self.anchors.insert(anchor, node.clone());
                }
                self.push_value(node, is_merge_key)?
            }
            Event::Alias(id) => {
                let node = self.anchors.get(&id).cloned().ok_or_else(|| SyntaxError {
                    pos,
                    message: "alias refers to an anchor that is not defined before it".into(),
                })?;
                let size = count_nodes(&node);
                self.count(size, pos)?;
                let node = Node { pos, ..node };
                self.push_value(node, false)?
            }
            Event::SequenceStart(anchor, _) => {
                self.open(pos)?;
                self.stack.push(Frame::Seq {
                    pos,
                    anchor,
                    items: Vec::new(),
                });
                None
            }
            Event::MappingStart(anchor, _) => {
                self.open(pos)?;
                self.stack.push(Frame::Map {
                    pos,
                    anchor,
                    entries: Vec::new(),
                    pending_key: None,
                    merges: Vec::new(),
                });
                None
            }
            Event::SequenceEnd | Event::MappingEnd => {
                let node = match self.stack.pop() {
                    Some(Frame::Seq { pos, anchor, items }) => {
                        let node = Node::new(Value::Seq(items), pos);
                        if anchor > 0 {
                            self.anchors.insert(anchor, node.clone());
                        }
                        node
                    }
                    Some(Frame::Map {
                        pos,
                        anchor,
                        mut entries,
                        merges,
                        ..
                    }) => {
                        for merged in merges {
                            merge_into(&mut entries, merged)?;
                        }
                        let node = Node::new(Value::Map(entries), pos);
                        if anchor > 0 {
                            self.anchors.insert(anchor, node.clone());
                        }
                        node
                    }
                    None => return Ok(None),
                };
                self.push_value(node, false)?
            }
            _ => None,
        };
        Ok(done)
    }

    fn open(&mut self, pos: Pos) -> Result<(), SyntaxError> {
        self.count(1, pos)?;
        if self.stack.len() >= MAX_DEPTH {
            return Err(SyntaxError {
                pos,
                message: format!("nesting deeper than {MAX_DEPTH} levels"),
            });
        }
        // A collection used as a mapping key is never valid in a recipe.
        if let Some(Frame::Map {
            pending_key: None, ..
        }) = self.stack.last()
        {
            return Err(SyntaxError {
                pos,
                message: "a list or mapping cannot be used as a mapping key".into(),
            });
        }
        Ok(())
    }

    fn push_value(&mut self, node: Node, is_merge_key: bool) -> Result<Option<Node>, SyntaxError> {
        match self.stack.last_mut() {
            None => Ok(Some(node)),
            Some(Frame::Seq { items, .. }) => {
                items.push(node);
                Ok(None)
            }
            Some(Frame::Map {
                entries,
                pending_key,
                merges,
                ..
            }) => {
                match pending_key.take() {
                    None => {
                        let key = match &node.value {
                            _ if is_merge_key => "<<".to_string(),
                            Value::Null => {
                                return Err(SyntaxError {
                                    pos: node.pos,
                                    message: "empty mapping key".into(),
                                })
                            }
                            Value::Seq(_) | Value::Map(_) => {
                                return Err(SyntaxError {
                                    pos: node.pos,
                                    message: "a list or mapping cannot be used as a mapping key"
                                        .into(),
                                })
                            }
                            _ => node.scalar_text().unwrap_or_default(),
                        };
                        if key != "<<" {
                            if let Some(first) = entries.iter().find(|e| e.key == key) {
                                return Err(SyntaxError {
                                    pos: node.pos,
                                    message: format!(
                                        "duplicate key `{key}` (first defined at line {})",
                                        first.key_pos.line
                                    ),
                                });
                            }
                        }
                        *pending_key = Some((key, node.pos));
                    }
                    Some((key, key_pos)) if key == "<<" => {
                        let _ = key_pos;
                        merges.push(node);
                    }
                    Some((key, key_pos)) => entries.push(Entry {
                        key,
                        key_pos,
                        value: node,
                    }),
                }
                Ok(None)
            }
        }
    }
}

/// Applies a `<<:` merge: keys already present win (YAML merge-key semantics).
fn merge_into(entries: &mut Vec<Entry>, merged: Node) -> Result<(), SyntaxError> {
    let pos = merged.pos;
    match merged.value {
        Value::Map(src) => {
            for e in src {
                if !entries.iter().any(|x| x.key == e.key) {
                    entries.push(e);
                }
            }
            Ok(())
        }
        Value::Seq(items) => {
            for item in items {
                merge_into(entries, item)?;
            }
            Ok(())
        }
        _ => Err(SyntaxError {
            pos,
            message: "`<<` merge value must be a mapping (or a list of mappings)".into(),
        }),
    }
}

fn count_nodes(node: &Node) -> usize {
    let mut total = 0usize;
    let mut todo = vec![node];
    while let Some(n) = todo.pop() {
        total += 1;
        match &n.value {
            Value::Seq(items) => todo.extend(items.iter()),
            Value::Map(entries) => todo.extend(entries.iter().map(|e| &e.value)),
            _ => {}
        }
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_and_types() {
        let n = parse("a: 1\nb:\n  c: [x, 2.5, true]\n").unwrap();
        let c = n.get("b").unwrap().get("c").unwrap();
        assert_eq!(c.pos, Pos { line: 3, col: 6 });
        match &c.value {
            Value::Seq(items) => {
                assert_eq!(items[0].value, Value::Str("x".into()));
                assert_eq!(items[1].value, Value::Float(2.5));
                assert_eq!(items[2].value, Value::Bool(true));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn duplicate_keys_are_refused() {
        let e = parse("a: 1\na: 2\n").unwrap_err();
        assert_eq!(e.pos.line, 2);
        assert!(e.message.contains("duplicate key `a`"), "{}", e.message);
    }

    #[test]
    fn anchors_aliases_and_merge() {
        let n = parse("x: &e {A: 1, B: 2}\ny:\n  <<: *e\n  B: 3\n").unwrap();
        let y = n.get("y").unwrap();
        assert_eq!(y.get("A").unwrap().value, Value::Int(1));
        assert_eq!(y.get("B").unwrap().value, Value::Int(3));
    }

    #[test]
    fn billion_laughs_is_bounded() {
        let mut doc = String::from("a: &a [x,x,x,x,x,x,x,x,x,x]\n");
        let mut prev = 'a';
        for name in ['b', 'c', 'd', 'e', 'f', 'g'] {
            doc.push_str(&format!(
                "{name}: &{name} [*{prev},*{prev},*{prev},*{prev},*{prev},*{prev},*{prev},*{prev},*{prev},*{prev}]\n"
            ));
            prev = name;
        }
        let e = parse(&doc).unwrap_err();
        assert!(e.message.contains("expands to more than"));
    }

    #[test]
    fn deep_nesting_is_bounded() {
        let doc = "[".repeat(10_000);
        assert!(parse(&doc).is_err());
    }

    #[test]
    fn big_integers_stay_text() {
        let n = parse("a: 99999999999999999999999\n").unwrap();
        assert!(matches!(n.get("a").unwrap().value, Value::Str(_)));
    }
}
