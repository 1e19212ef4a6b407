//! Expansion of one recipe file into the variants it describes: override files (`base:` +
//! `override_<name>:` / `zip_override_<name>:`), and top-level `sweep:` grids. Works on the positioned
//! tree, so errors inside a variant still point at the line the user wrote.

use crate::diag::{join, Reader};
use crate::yaml::{Entry, Node, Value};

/// Most variants one file may expand to; beyond this it is almost surely a mistake.
pub const MAX_VARIANTS: usize = 4096;

#[derive(Debug, Clone)]
pub struct Variant {
    /// Selector name: `""` for a plain recipe, `<override>`, `<zip>[i]`, or the sweep job name.
    pub id: String,
    pub doc: Node,
}

/// Expands `root` into variants. Errors are recorded in `reader`.
pub fn expand(root: Node, reader: &mut Reader) -> Vec<Variant> {
    let bases = if root.get("base").is_some() {
        expand_overrides(root, reader)
    } else {
        vec![Variant {
            id: String::new(),
            doc: root,
        }]
    };
    let mut out = Vec::new();
    for v in bases {
        for s in expand_sweep(v.doc, reader) {
            let id = match (v.id.is_empty(), s.id.is_empty()) {
                (_, true) => v.id.clone(),
                (true, false) => s.id,
                (false, false) => format!("{}/{}", v.id, s.id),
            };
            out.push(Variant { id, doc: s.doc });
            if out.len() > MAX_VARIANTS {
                reader.error(
                    crate::yaml::Pos { line: 1, col: 1 },
                    "",
                    format!("this file expands to more than {MAX_VARIANTS} variants"),
                    Some("split the sweep into several files or shorten its lists".into()),
                );
                return Vec::new();
            }
        }
    }
    out
}

fn expand_overrides(root: Node, reader: &mut Reader) -> Vec<Variant> {
    let Value::Map(entries) = root.value else {
        return Vec::new();
    };
    let base = entries
        .iter()
        .find(|e| e.key == "base")
        .map(|e| e.value.clone());
    let Some(base) = base else { return Vec::new() };
    if base.as_map().is_none() {
        reader.error(
            base.pos,
            "base",
            format!(
                "expected a mapping (the recipe all variants start from), found {}",
                base.describe()
            ),
            None,
        );
        return Vec::new();
    }
    let mut out = Vec::new();
    for e in &entries {
        if e.key == "base" {
            continue;
        }
        if let Some(name) = e.key.strip_prefix("zip_override_") {
            out.extend(zip_variants(&base, name, e, reader));
        } else if let Some(name) = e.key.strip_prefix("override_") {
            if e.value.as_map().is_none() {
                reader.error(
                    e.value.pos,
                    &e.key,
                    format!("expected a mapping, found {}", e.value.describe()),
                    None,
                );
                continue;
            }
            out.push(Variant {
                id: name.to_string(),
                doc: deep_merge(base.clone(), &e.value),
            });
        } else {
            let help = crate::diag::did_you_mean(&e.key, ["base", "override_NAME", "zip_override_NAME"])
                .map(|k| format!("did you mean `{k}`?"))
                .unwrap_or_else(|| {
                    "an override file has only `base:`, `override_<name>:` and `zip_override_<name>:` sections"
                        .into()
                });
            reader.error(
                e.key_pos,
                &e.key,
                format!("unknown section `{}` in an override file", e.key),
                Some(help),
            );
        }
    }
    if out.is_empty() {
        out.push(Variant {
            id: "base".into(),
            doc: base,
        });
    }
    out
}

/// Lists inside a zip section are sliced: variant i takes element i of every list. A value that must stay
/// a list is written as a list of lists.
fn zip_variants(base: &Node, name: &str, section: &Entry, reader: &mut Reader) -> Vec<Variant> {
    let mut lens: Vec<(usize, String, crate::yaml::Pos)> = Vec::new();
    collect_list_lengths(&section.value, &section.key, &mut lens);
    // A one-element list applies to every variant (srt-slurm broadcasts it); the longest list sets N.
    let Some((n, first_path, _)) = lens.iter().max_by_key(|l| l.0).cloned() else {
        reader.error(
            section.value.pos,
            &section.key,
            "a zip override needs at least one list (variant i takes element i of every list)",
            Some(format!("use `override_{name}:` for a single variant")),
        );
        return Vec::new();
    };
    let mut ok = true;
    for (len, path, pos) in &lens {
        if *len != n && *len != 1 {
            reader.error(
                *pos,
                path,
                format!("list has {len} element(s) but `{first_path}` has {n}; every list in a zip override must have the same length"),
                Some("wrap a value that must stay a list in another list: [[1, 2], [1, 2]]".into()),
            );
            ok = false;
        }
    }
    if !ok || n == 0 {
        if n == 0 {
            reader.error(
                section.value.pos,
                &section.key,
                "zip override expands to zero variants",
                None,
            );
        }
        return Vec::new();
    }
    (0..n)
        .map(|i| Variant {
            id: format!("{name}[{i}]"),
            doc: deep_merge(base.clone(), &slice(&section.value, i)),
        })
        .collect()
}

fn collect_list_lengths(node: &Node, path: &str, out: &mut Vec<(usize, String, crate::yaml::Pos)>) {
    match &node.value {
        Value::Seq(items) => out.push((items.len(), path.to_string(), node.pos)),
        Value::Map(entries) => {
            for e in entries {
                collect_list_lengths(&e.value, &join(path, &e.key), out);
            }
        }
        _ => {}
    }
}

/// A copy of the mapping `node` (whose entries are `entries`) with `f` applied to every value.
fn map_values(entries: &[Entry], node: &Node, f: impl Fn(&Node) -> Node) -> Node {
    let mapped = entries
        .iter()
        .map(|e| Entry {
            key: e.key.clone(),
            key_pos: e.key_pos,
            value: f(&e.value),
        })
        .collect();
    Node::new(Value::Map(mapped), node.pos)
}

fn slice(node: &Node, i: usize) -> Node {
    match &node.value {
        Value::Seq(items) if items.len() == 1 => items[0].clone(),
        Value::Seq(items) => items.get(i).cloned().unwrap_or_else(|| node.clone()),
        Value::Map(entries) => map_values(entries, node, |v| slice(v, i)),
        _ => node.clone(),
    }
}

/// Mappings merge key by key; anything else in `over` replaces what `base` had.
pub fn deep_merge(mut base: Node, over: &Node) -> Node {
    match (&mut base.value, &over.value) {
        (Value::Map(b), Value::Map(o)) => {
            for e in o {
                match b.iter_mut().find(|x| x.key == e.key) {
                    Some(x) => {
                        let old =
                            std::mem::replace(&mut x.value, Node::new(Value::Null, e.value.pos));
                        x.value = deep_merge(old, &e.value);
                    }
                    None => b.push(e.clone()),
                }
            }
            base
        }
        _ => over.clone(),
    }
}

/// Top-level `sweep: {param: [values]}`: the Cartesian product, `{param}` substituted in every string,
/// job name suffixed `_{param}{value}` per parameter (srt-slurm's rule).
fn expand_sweep(mut doc: Node, reader: &mut Reader) -> Vec<Variant> {
    let sweep = match &mut doc.value {
        Value::Map(entries) => match entries.iter().position(|e| e.key == "sweep") {
            Some(i) => entries.remove(i),
            None => {
                return vec![Variant {
                    id: String::new(),
                    doc,
                }]
            }
        },
        _ => {
            return vec![Variant {
                id: String::new(),
                doc,
            }]
        }
    };
    let Value::Map(params) = &sweep.value.value else {
        reader.error(
            sweep.value.pos,
            "sweep",
            format!(
                "expected a mapping of parameter names to lists of values, found {}",
                sweep.value.describe()
            ),
            Some("e.g. sweep: {chunked_prefill_size: [4096, 8192]}".into()),
        );
        return Vec::new();
    };
    let mut axes: Vec<(String, Vec<Node>)> = Vec::new();
    let mut total: usize = 1;
    for p in params {
        let values = match &p.value.value {
            Value::Seq(items) => items.clone(),
            _ => vec![p.value.clone()],
        };
        if values.is_empty() {
            reader.error(
                p.value.pos,
                &join("sweep", &p.key),
                "empty list: the sweep would expand to zero variants",
                Some("give at least one value".into()),
            );
            return Vec::new();
        }
        total = total.saturating_mul(values.len());
        axes.push((p.key.clone(), values));
    }
    if total > MAX_VARIANTS {
        reader.error(
            sweep.value.pos,
            "sweep",
            format!("sweep expands to {total} variants; at most {MAX_VARIANTS} are allowed"),
            Some("split the sweep or shorten its lists".into()),
        );
        return Vec::new();
    }
    if axes.is_empty() {
        return vec![Variant {
            id: String::new(),
            doc,
        }];
    }
    let base_name = doc
        .get("name")
        .and_then(Node::scalar_text)
        .unwrap_or_else(|| "sweep".into());
    let mut out = Vec::with_capacity(total);
    let mut idx = vec![0usize; axes.len()];
    loop {
        let chosen: Vec<(&str, &Node)> = axes
            .iter()
            .zip(&idx)
            .map(|((k, vals), &i)| (k.as_str(), &vals[i]))
            .collect();
        let mut v = substitute(&doc, &chosen);
        let mut name = base_name.clone();
        for (k, val) in &chosen {
            name.push_str(&format!("_{k}{}", val.scalar_text().unwrap_or_default()));
        }
        if let Some(n) = v.get_mut("name") {
            n.value = Value::Str(name.clone());
        }
        out.push(Variant { id: name, doc: v });
        // Odometer increment, last axis fastest (itertools.product order).
        let mut a = axes.len();
        loop {
            if a == 0 {
                return out;
            }
            a -= 1;
            idx[a] += 1;
            if idx[a] < axes[a].1.len() {
                break;
            }
            idx[a] = 0;
        }
    }
}

fn substitute(node: &Node, chosen: &[(&str, &Node)]) -> Node {
    match &node.value {
        Value::Str(s) if s.contains('{') => {
            for (k, v) in chosen {
                if s == &format!("{{{k}}}") {
                    return Node::new(v.value.clone(), node.pos);
                }
            }
            let mut text = s.clone();
            for (k, v) in chosen {
                let rendered = match &v.value {
                    Value::Seq(items) => items
                        .iter()
                        .filter_map(Node::scalar_text)
                        .collect::<Vec<_>>()
                        .join(","),
                    _ => v.scalar_text().unwrap_or_default(),
                };
                text = text.replace(&format!("{{{k}}}"), &rendered);
            }
            Node::new(Value::Str(text), node.pos)
        }
        Value::Seq(items) => Node::new(
            Value::Seq(items.iter().map(|n| substitute(n, chosen)).collect()),
            node.pos,
        ),
        Value::Map(entries) => map_values(entries, node, |v| substitute(v, chosen)),
        _ => node.clone(),
    }
}

/// Does variant `id` match the user's selector? Exact, `*` globs, a zip name for all its elements, and the
/// `override_`/`zip_override_` spellings srtctl accepts.
pub fn matches(selector: &str, id: &str) -> bool {
    let sel = selector
        .strip_prefix("zip_override_")
        .or_else(|| selector.strip_prefix("override_"))
        .unwrap_or(selector);
    if sel == id {
        return true;
    }
    if let Some((zip, _)) = id.split_once('[') {
        if sel == zip {
            return true;
        }
    }
    sel.contains('*') && glob(sel, id)
}

fn glob(pattern: &str, text: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    let mut rest = text;
    for (i, part) in parts.iter().enumerate() {
        if i == 0 {
            match rest.strip_prefix(part) {
                Some(r) => rest = r,
                None => return false,
            }
        } else if i == parts.len() - 1 {
            return rest.ends_with(part);
        } else {
            match rest.find(part) {
                Some(at) => rest = &rest[at + part.len()..],
                None => return false,
            }
        }
    }
    rest.is_empty()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::yaml::parse;

    #[test]
    fn zip_and_plain_overrides() {
        let doc = parse(
            "base:\n  name: b\n  resources: {decode_nodes: 1, gpus_per_node: 4}\nzip_override_x:\n  name: [x0, x1]\n  resources:\n    decode_nodes: [5, 6]\noverride_y:\n  name: y\n",
        )
        .unwrap();
        let mut r = Reader::new("f");
        let v = expand(doc, &mut r);
        assert!(r.diagnostics.is_empty(), "{:?}", r.diagnostics);
        let ids: Vec<&str> = v.iter().map(|v| v.id.as_str()).collect();
        assert_eq!(ids, ["x[0]", "x[1]", "y"]);
        let d = v[1].doc.get("resources").unwrap();
        assert_eq!(d.get("decode_nodes").unwrap().value, Value::Int(6));
        assert_eq!(d.get("gpus_per_node").unwrap().value, Value::Int(4));
    }

    #[test]
    fn zip_length_mismatch_is_located() {
        let doc =
            parse("base: {name: b}\nzip_override_x:\n  name: [a, b]\n  k: [1, 2, 3]\n").unwrap();
        let mut r = Reader::new("f");
        expand(doc, &mut r);
        assert_eq!(r.diagnostics.len(), 1);
        // The longest list sets the variant count; the shorter one is blamed.
        assert_eq!(r.diagnostics[0].path, "zip_override_x.name");
        assert_eq!(r.diagnostics[0].pos.line, 3);
    }

    #[test]
    fn sweep_is_cartesian_and_substitutes() {
        let doc = parse("name: s\nsweep:\n  a: [1, 2]\n  b: [x, y]\nv: \"{a}-{b}\"\nw: \"{a}\"\n")
            .unwrap();
        let mut r = Reader::new("f");
        let v = expand(doc, &mut r);
        let ids: Vec<&str> = v.iter().map(|v| v.id.as_str()).collect();
        assert_eq!(ids, ["s_a1_bx", "s_a1_by", "s_a2_bx", "s_a2_by"]);
        assert_eq!(v[3].doc.get("v").unwrap().value, Value::Str("2-y".into()));
        assert_eq!(v[3].doc.get("w").unwrap().value, Value::Int(2));
    }

    #[test]
    fn selectors() {
        assert!(matches("stp_lowlat[0]", "stp_lowlat[0]"));
        assert!(matches("zip_override_stp_lowlat[0]", "stp_lowlat[0]"));
        assert!(matches("stp_lowlat", "stp_lowlat[1]"));
        assert!(matches("*mtp*", "mtp_maxtpt[1]"));
        assert!(!matches("*mtp*", "stp_maxtpt[1]"));
    }
}
