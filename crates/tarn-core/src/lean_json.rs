//! JSON text exactly as Lean's printer (`Lean.Data.Json.Printer`) writes it, so that files
//! tarn writes and Lake also writes (`outputs/*.json`, mapping files, manifests) are
//! byte-identical.
//!
//! * `compress_into` (mapping files' lines) is `Json.compress`: no whitespace, object members in **ascending** key
//!   order (the work-stack printer pushes members with a right fold, so the smallest key
//!   comes off the stack first; older Leans, whose printer prepended members to a list,
//!   wrote them descending).
//! * [`pretty`] is `Json.pretty` (width 80): members in **descending** key order (the
//!   `Format` renderer folds the map onto a list by prepending), laid out by Lean's `Format`
//!   engine: each object or array is a group nested by its bracket's width, members are
//!   separated by `,` and a line break, and `"key":` and its value are a group joined by a line
//!   break. A group is printed flat (line breaks as spaces) when it and the text after it up
//!   to the next line break fit in the width.
//! * Strings escape `"`, `\`, newline and carriage return with a backslash and every other
//!   control character as `\u00XX` (lower-case hex); everything else is written as is.
//!
//! ```
//! use serde_json::json;
//! use tarn_core::lean_json::pretty;
//! let v = json!({"b": 1, "a": [true, null], "c": "x\ty"});
//! assert_eq!(pretty(&v), r#"{"c": "x\u0009y", "b": 1, "a": [true, null]}"#);
//! ```

use serde_json::{Number, Value};

/// The line width `Json.pretty` uses by default.
pub(crate) const PRETTY_WIDTH: usize = 80;

/// `Json.compress`: one line, no spaces, members in ascending key order.
#[cfg(test)]
pub(crate) fn compress(v: &Value) -> String {
    let mut out = String::new();
    compress_into(&mut out, v);
    out
}

/// Appends `Json.compress` of `v` to `out`.
pub(crate) fn compress_into(out: &mut String, v: &Value) {
    match v {
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                compress_into(out, item);
            }
            out.push(']');
        }
        Value::Object(map) => {
            out.push('{');
            let mut members: Vec<(&String, &Value)> = map.iter().collect();
            members.sort_by(|a, b| a.0.cmp(b.0));
            for (i, (k, item)) in members.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                string_into(out, k);
                out.push(':');
                compress_into(out, item);
            }
            out.push('}');
        }
        scalar => scalar_into(out, scalar),
    }
}

/// `Json.pretty` with Lean's default width (80).
pub fn pretty(v: &Value) -> String {
    pretty_width(v, PRETTY_WIDTH)
}

/// `Json.pretty v width`.
pub(crate) fn pretty_width(v: &Value, width: usize) -> String {
    let doc = to_doc(v);
    let mut printer = Printer {
        out: String::new(),
        column: 0,
        width,
    };
    printer.run(&doc);
    printer.out
}

/// A string literal as Lean writes it, quotes included.
pub(crate) fn render_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    string_into(&mut out, s);
    out
}

fn string_into(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            c if (c as u32) < 0x20 => {
                const HEX: &[u8; 16] = b"0123456789abcdef";
                let n = c as usize;
                out.push_str("\\u00");
                out.push(HEX[n >> 4] as char);
                out.push(HEX[n & 15] as char);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

fn scalar_into(out: &mut String, v: &Value) {
    match v {
        Value::Null => out.push_str("null"),
        Value::Bool(true) => out.push_str("true"),
        Value::Bool(false) => out.push_str("false"),
        Value::Number(n) => out.push_str(&number(n)),
        Value::String(s) => string_into(out, s),
        Value::Array(_) | Value::Object(_) => unreachable!("not a scalar"),
    }
}

/// Integers print in decimal as Lean's `JsonNumber` does. A fraction keeps serde's
/// shortest form; the inputs tarn re-prints (hashes, artifact names, flags) have none.
fn number(n: &Number) -> String {
    n.to_string()
}

/// The subset of Lean's `Format` that JSON rendering builds.
enum Doc {
    Text(String),
    /// A line break, or a space when its group is flat.
    Line,
    Nest(usize, Box<Doc>),
    Concat(Vec<Doc>),
    /// An `allOrNone` group: all its line breaks flat, or none.
    Group(Box<Doc>),
}

/// `Format.bracket l f r` = `group (nest l.length (l ++ f ++ r))`.
fn bracket(open: &str, items: Vec<Doc>, close: &str) -> Doc {
    let mut parts = Vec::with_capacity(items.len() * 3 + 2);
    parts.push(Doc::Text(open.to_string()));
    for (i, item) in items.into_iter().enumerate() {
        if i > 0 {
            parts.push(Doc::Text(",".into()));
            parts.push(Doc::Line);
        }
        parts.push(item);
    }
    parts.push(Doc::Text(close.to_string()));
    Doc::Group(Box::new(Doc::Nest(
        open.chars().count(),
        Box::new(Doc::Concat(parts)),
    )))
}

/// Lean's `Json.render`.
fn to_doc(v: &Value) -> Doc {
    match v {
        Value::Array(items) => bracket("[", items.iter().map(to_doc).collect(), "]"),
        Value::Object(map) => {
            let mut members: Vec<(&String, &Value)> = map.iter().collect();
            members.sort_by(|a, b| b.0.cmp(a.0));
            let docs = members
                .into_iter()
                .map(|(k, item)| {
                    Doc::Group(Box::new(Doc::Concat(vec![
                        Doc::Text(format!("{}:", render_string(k))),
                        Doc::Line,
                        to_doc(item),
                    ])))
                })
                .collect();
            bracket("{", docs, "}")
        }
        scalar => {
            let mut s = String::new();
            scalar_into(&mut s, scalar);
            Doc::Text(s)
        }
    }
}

/// Width measured up to the first line break (Lean's `SpaceResult`).
#[derive(Clone, Copy, Default)]
struct Space {
    found_line: bool,
    space: usize,
}

/// Lean's `merge`: `first`, then (if it neither broke the line nor overflowed) `rest`.
fn merge(width: usize, first: Space, rest: impl FnOnce(usize) -> Space) -> Space {
    if first.space > width || first.found_line {
        first
    } else {
        let r = rest(width - first.space);
        Space {
            found_line: r.found_line,
            space: first.space + r.space,
        }
    }
}

/// Lean's `spaceUptoLine`.
fn space_upto_line(doc: &Doc, flatten: bool, width: usize) -> Space {
    match doc {
        Doc::Text(s) => Space {
            found_line: false,
            space: s.chars().count(),
        },
        Doc::Line if flatten => Space {
            found_line: false,
            space: 1,
        },
        Doc::Line => Space {
            found_line: true,
            space: 0,
        },
        Doc::Nest(_, d) => space_upto_line(d, flatten, width),
        Doc::Group(d) => space_upto_line(d, true, width),
        Doc::Concat(docs) => space_of_items(docs.iter(), flatten, width),
    }
}

fn space_of_items<'a>(
    mut docs: impl Iterator<Item = &'a Doc>,
    flatten: bool,
    width: usize,
) -> Space {
    match docs.next() {
        None => Space::default(),
        Some(d) => merge(width, space_upto_line(d, flatten, width), |w| {
            space_of_items(docs, flatten, w)
        }),
    }
}

struct Item<'a> {
    doc: &'a Doc,
    indent: usize,
}

/// A group being printed: `flat` is `None` outside any group (Lean's `disallow`).
struct WorkGroup<'a> {
    flat: Option<bool>,
    /// Pending items, the next one last.
    items: Vec<Item<'a>>,
}

struct Printer {
    out: String,
    column: usize,
    width: usize,
}

impl Printer {
    /// Lean's `spaceUptoLine'` over the pending groups, innermost first.
    fn space_of_groups(groups: &[WorkGroup<'_>], width: usize) -> Space {
        let mut pending = groups.iter().rev().flat_map(|g| {
            g.items
                .iter()
                .rev()
                .map(move |i| (i.doc, g.flat == Some(true)))
        });
        fn go<'a>(it: &mut impl Iterator<Item = (&'a Doc, bool)>, width: usize) -> Space {
            match it.next() {
                None => Space::default(),
                Some((d, flat)) => merge(width, space_upto_line(d, flat, width), |w| go(it, w)),
            }
        }
        go(&mut pending, width)
    }

    /// Lean's `be`: prints the work stack.
    fn run(&mut self, doc: &Doc) {
        let mut groups = vec![WorkGroup {
            flat: None,
            items: vec![Item { doc, indent: 0 }],
        }];
        while let Some(group) = groups.last_mut() {
            let Some(item) = group.items.pop() else {
                groups.pop();
                continue;
            };
            let flat = group.flat == Some(true);
            match item.doc {
                Doc::Text(s) => {
                    self.out.push_str(s);
                    self.column += s.chars().count();
                }
                Doc::Line if flat => {
                    self.out.push(' ');
                    self.column += 1;
                }
                Doc::Line => {
                    self.out.push('\n');
                    self.out.extend(std::iter::repeat_n(' ', item.indent));
                    self.column = item.indent;
                }
                Doc::Nest(n, d) => group.items.push(Item {
                    doc: d,
                    indent: item.indent + n,
                }),
                Doc::Concat(docs) => group.items.extend(docs.iter().rev().map(|d| Item {
                    doc: d,
                    indent: item.indent,
                })),
                Doc::Group(d) if flat => group.items.push(Item {
                    doc: d,
                    indent: item.indent,
                }),
                Doc::Group(d) => {
                    // Lean's `pushGroup`: flat if the group and what follows it up to the
                    // next line break fit in the rest of the line.
                    let available = self.width.saturating_sub(self.column);
                    let own = space_upto_line(d, true, available);
                    let total = merge(available, own, |w| Self::space_of_groups(&groups, w));
                    groups.push(WorkGroup {
                        flat: Some(total.space <= available),
                        items: vec![Item {
                            doc: d,
                            indent: item.indent,
                        }],
                    });
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// mathlib4's `lake-manifest.json` at version 7 (2023), as Lake wrote it: the golden
    /// sample of `Json.pretty` plus the final newline Lake's manifest writer adds.
    const MATHLIB_MANIFEST_V7: &str = r#"{"version": 7,
 "packagesDir": ".lake/packages",
 "packages":
 [{"url": "https://github.com/negiizhao/std4",
   "type": "git",
   "subDir": null,
   "rev": "f536348a268f33dc4b499027dfd20473589b4a29",
   "name": "std",
   "manifestFile": "lake-manifest.json",
   "inputRev": "bitwise",
   "inherited": false,
   "configFile": "lakefile.lean"},
  {"url": "https://github.com/leanprover-community/quote4",
   "type": "git",
   "subDir": null,
   "rev": "ccba5d35d07a448fab14c0e391c8105df6e2564c",
   "name": "Qq",
   "manifestFile": "lake-manifest.json",
   "inputRev": "master",
   "inherited": false,
   "configFile": "lakefile.lean"},
  {"url": "https://github.com/leanprover-community/aesop",
   "type": "git",
   "subDir": null,
   "rev": "3141402ba5a5f0372d2378fd75a481bc79a74ecf",
   "name": "aesop",
   "manifestFile": "lake-manifest.json",
   "inputRev": "master",
   "inherited": false,
   "configFile": "lakefile.lean"},
  {"url": "https://github.com/leanprover-community/ProofWidgets4",
   "type": "git",
   "subDir": null,
   "rev": "909febc72b4f64628f8d35cd0554f8a90b6e0749",
   "name": "proofwidgets",
   "manifestFile": "lake-manifest.json",
   "inputRev": "v0.0.23",
   "inherited": false,
   "configFile": "lakefile.lean"},
  {"url": "https://github.com/leanprover/lean4-cli",
   "type": "git",
   "subDir": null,
   "rev": "a751d21d4b68c999accb6fc5d960538af26ad5ec",
   "name": "Cli",
   "manifestFile": "lake-manifest.json",
   "inputRev": "main",
   "inherited": false,
   "configFile": "lakefile.lean"}],
 "name": "mathlib",
 "lakeDir": ".lake"}
"#;

    #[test]
    fn pretty_reproduces_a_manifest_lake_wrote_byte_for_byte() {
        let v: Value = serde_json::from_str(MATHLIB_MANIFEST_V7).unwrap();
        assert_eq!(format!("{}\n", pretty(&v)), MATHLIB_MANIFEST_V7);
    }

    #[test]
    fn pretty_keeps_short_values_on_one_line_with_descending_keys() {
        let o =
            json!({"data": "0123456789abcdef.o", "schemaVersion": "2026-02-25", "service": null});
        assert_eq!(
            pretty(&o),
            r#"{"service": null, "schemaVersion": "2026-02-25", "data": "0123456789abcdef.o"}"#
        );
        // Three characters more and the object no longer fits in 80 columns.
        let o = json!({"data": "0123456789abcdef.ltar", "schemaVersion": "2026-02-25", "service": null});
        assert_eq!(
            pretty(&o),
            "{\"service\": null,\n \"schemaVersion\": \"2026-02-25\",\n \"data\": \"0123456789abcdef.ltar\"}"
        );
        assert_eq!(pretty(&json!({})), "{}");
        assert_eq!(pretty(&json!([])), "[]");
        assert_eq!(pretty(&json!({"a": {}, "b": []})), r#"{"b": [], "a": {}}"#);
    }

    #[test]
    fn pretty_breaks_at_width_80_exactly() {
        // 80 characters fit; 81 do not.
        let fits = json!({"k": "x".repeat(71)});
        assert_eq!(pretty(&fits).chars().count(), 80);
        assert!(!pretty(&fits).contains('\n'));
        let over = json!({"k": "x".repeat(72)});
        assert_eq!(
            pretty(&over),
            format!("{{\"k\":\n \"{}\"}}", "x".repeat(72))
        );
        // A long array of module outputs: members on their own lines, nested by the brackets.
        let long = json!({
            "service": "cdn",
            "schemaVersion": "2026-02-25",
            "repo": "leanprover-community/mathlib4",
            "data": {"o": ["0123456789abcdef.olean", "0123456789abcdef.olean.server"],
                     "i": "0123456789abcdef.ilean", "c": "0123456789abcdef.c"}
        });
        assert_eq!(
            pretty(&long),
            "{\"service\": \"cdn\",\n \"schemaVersion\": \"2026-02-25\",\n \"repo\": \"leanprover-community/mathlib4\",\n \"data\":\n {\"o\": [\"0123456789abcdef.olean\", \"0123456789abcdef.olean.server\"],\n  \"i\": \"0123456789abcdef.ilean\",\n  \"c\": \"0123456789abcdef.c\"}}"
        );
    }

    #[test]
    fn compress_sorts_ascending_and_escapes_like_lean() {
        let v =
            json!({"o": ["a.olean"], "i": "b.ilean", "c": "c.c", "m": true, "n": 12, "z": null});
        assert_eq!(
            compress(&v),
            r#"{"c":"c.c","i":"b.ilean","m":true,"n":12,"o":["a.olean"],"z":null}"#
        );
        assert_eq!(
            compress(&json!("q\"b\\n\nr\r\t\u{1}\u{1f}/é\u{7f}")),
            "\"q\\\"b\\\\n\\nr\\r\\u0009\\u0001\\u001f/é\u{7f}\""
        );
        assert_eq!(compress(&json!([1, -2, [], {}])), "[1,-2,[],{}]");
        assert_eq!(render_string("tab\t"), "\"tab\\u0009\"");
    }
}
