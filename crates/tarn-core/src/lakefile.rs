//! The `package` declaration of a `lakefile.lean`, read without running Lean.
//!
//! A Lean-language lakefile is a program, so tarn reads only what is written as a literal:
//! `package name where` followed by `field := value` lines, `package «name» where`, the
//! structure-instance form `package name { field := value, … }` (and the older
//! `package name (config := { … })`), with `--` and nested `/- … -/` comments and attributes
//! anywhere around it. A field tarn needs whose value is not a literal (`:= by …`, an `if`, a
//! definition's name) is never silently defaulted: it yields a [`Warning`] naming `file:line`
//! and the flag or variable that overrides it.
//!
//! ```
//! use tarn_core::parse_lakefile_lean;
//! let text = "import Lake\nopen Lake DSL\n\npackage «my pkg» where\n  platformIndependent := true\n";
//! let (cfg, warnings) = parse_lakefile_lean(text, "lakefile.lean").unwrap();
//! assert_eq!(cfg.name, "my pkg");
//! assert_eq!(cfg.platform_independent, Some(true));
//! assert!(warnings.is_empty());
//! ```

use std::fmt;

use crate::config::PackageConfig;

/// Largest lakefile tarn reads: 1 MiB (Mathlib's is 7 KiB). Tokenising costs about 70 bytes
/// of memory per input byte at worst, so this keeps a hostile file under 100 MB.
pub const MAX_LAKEFILE_BYTES: u64 = 1 << 20;

/// Something tarn could not read exactly as Lake would, with where it is and what overrides
/// it. Printed as `file:line: message`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    /// The file (as the caller named it).
    pub file: String,
    /// 1-based line, when the warning is about one place in the file.
    pub line: Option<usize>,
    /// What tarn assumed and how to override it.
    pub message: String,
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "{}:{}: {}", self.file, line, self.message),
            None => write!(f, "{}: {}", self.file, self.message),
        }
    }
}

/// A `lakefile.lean` with no usable `package` declaration.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}{}: {message}", line.map(|l| format!(":{l}")).unwrap_or_default())]
pub struct LakefileError {
    /// The file (as the caller named it).
    pub file: String,
    /// 1-based line, when known.
    pub line: Option<usize>,
    /// What is wrong.
    pub message: String,
}

/// Reads the `package` declaration of a `lakefile.lean`: its name and the options of
/// [`PackageConfig`]. `file` names the file in messages. Fields tarn does not use are
/// skipped; a used field whose value is not a literal gives a warning and stays unset.
pub fn parse_lakefile_lean(
    text: &str,
    file: &str,
) -> Result<(PackageConfig, Vec<Warning>), LakefileError> {
    let err = |line: Option<usize>, message: String| LakefileError {
        file: file.to_string(),
        line,
        message,
    };
    if text.len() as u64 > MAX_LAKEFILE_BYTES {
        return Err(err(
            None,
            format!(
                "larger than {} MiB; not a lakefile",
                MAX_LAKEFILE_BYTES >> 20
            ),
        ));
    }
    let tokens = tokenize(text);
    let start = tokens
        .iter()
        .enumerate()
        .position(|(i, t)| {
            t.is_ident("package") && (t.line_start || (i > 0 && tokens[i - 1].is_sym("]")))
        })
        .ok_or_else(|| err(None, "no `package` declaration found".into()))?;
    let decl_line = tokens[start].line;
    let mut i = start + 1;
    let name = match tokens.get(i) {
        Some(Token {
            kind: Kind::Ident(name),
            ..
        }) if name != "where" => {
            i += 1;
            name.clone()
        }
        _ => {
            return Err(err(
                Some(decl_line),
                "the `package` declaration has no plain name".into(),
            ))
        }
    };
    if crate::workspace::has_control(&name) {
        return Err(err(
            Some(decl_line),
            format!("the package name {name:?} holds a control character"),
        ));
    }
    let mut warnings = Vec::new();
    if tokens[start + 1..]
        .iter()
        .any(|t| t.is_ident("package") && t.line_start && t.col == 0)
    {
        warnings.push(Warning {
            file: file.to_string(),
            line: Some(decl_line),
            message: "more than one `package` declaration; tarn reads the first".into(),
        });
    }
    let fields = match tokens.get(i) {
        Some(t) if t.is_ident("where") => where_fields(&tokens[i + 1..]),
        Some(t) if t.is_sym("{") => brace_fields(&tokens[i..]),
        Some(t)
            if t.is_sym("(")
                && tokens.get(i + 1).is_some_and(|t| t.is_ident("config"))
                && tokens.get(i + 2).is_some_and(|t| t.is_sym(":=")) =>
        {
            match tokens.get(i + 3) {
                Some(t) if t.is_sym("{") => brace_fields(&tokens[i + 3..]),
                _ => {
                    warnings.push(Warning {
                        file: file.to_string(),
                        line: Some(decl_line),
                        message: "`(config := …)` is not a `{ … }` literal; tarn reads no \
                                  package options from it (all options assumed unset)"
                            .into(),
                    });
                    Vec::new()
                }
            }
        }
        _ => Vec::new(),
    };
    let mut cfg = PackageConfig {
        name,
        ..PackageConfig::default()
    };
    for field in &fields {
        apply_field(&mut cfg, field, text, file, &mut warnings);
    }
    Ok((cfg, warnings))
}

/// The options tarn reads, with the flag or variable that overrides each and its default.
struct Known {
    name: &'static str,
    kind: FieldKind,
    default: &'static str,
    override_hint: &'static str,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum FieldKind {
    Bool,
    Path,
}

const KNOWN: &[Known] = &[
    Known {
        name: "platformIndependent",
        kind: FieldKind::Bool,
        default: "false (URLs keep `pt/<platform>`)",
        override_hint: "pass `--platform ''` (none) or `--platform TARGET`",
    },
    Known {
        name: "fixedToolchain",
        kind: FieldKind::Bool,
        default: "false (URLs keep `tc/<toolchain>`)",
        override_hint: "pass `--toolchain ''` (none) or `--toolchain NAME`",
    },
    Known {
        name: "bootstrap",
        kind: FieldKind::Bool,
        default: "false (URLs keep `tc/<toolchain>`)",
        override_hint: "pass `--toolchain ''` (none) or `--toolchain NAME`",
    },
    Known {
        name: "enableArtifactCache",
        kind: FieldKind::Bool,
        default: "unset",
        override_hint: "set LAKE_ARTIFACT_CACHE=true or false",
    },
    Known {
        name: "restoreAllArtifacts",
        kind: FieldKind::Bool,
        default: "unset",
        override_hint: "set LAKE_RESTORE_ARTIFACTS=true or false",
    },
    Known {
        name: "buildDir",
        kind: FieldKind::Path,
        default: "`.lake/build`",
        override_hint: "write it as a string literal",
    },
    Known {
        name: "leanLibDir",
        kind: FieldKind::Path,
        default: "`lib/lean`",
        override_hint: "write it as a string literal",
    },
    Known {
        name: "irDir",
        kind: FieldKind::Path,
        default: "`ir`",
        override_hint: "write it as a string literal",
    },
    Known {
        name: "packagesDir",
        kind: FieldKind::Path,
        default: "the manifest's `packagesDir`",
        override_hint: "write it as a string literal",
    },
];

fn apply_field(
    cfg: &mut PackageConfig,
    field: &Field<'_>,
    text: &str,
    file: &str,
    warnings: &mut Vec<Warning>,
) {
    // Lake names optional fields both `x` and `x?` (e.g. `enableArtifactCache?`).
    let key = field.name.strip_suffix('?').unwrap_or(field.name);
    let Some(known) = KNOWN.iter().find(|k| k.name == key) else {
        return;
    };
    let value = strip_parens(field.value);
    let literal = match known.kind {
        FieldKind::Bool => bool_literal(value).map(Literal::Bool),
        FieldKind::Path => path_literal(value).map(Literal::Path),
    };
    let Some(literal) = literal else {
        let snippet = snippet(text, field.value);
        warnings.push(Warning {
            file: file.to_string(),
            line: Some(field.line),
            message: format!(
                "`{}` is not a literal (`{snippet}`); tarn does not run Lean and assumes {}: {}",
                field.name, known.default, known.override_hint
            ),
        });
        return;
    };
    match (key, literal) {
        ("platformIndependent", Literal::Bool(b)) => cfg.platform_independent = b,
        ("fixedToolchain", Literal::Bool(b)) => cfg.fixed_toolchain = b,
        ("bootstrap", Literal::Bool(b)) => cfg.bootstrap = b,
        ("enableArtifactCache", Literal::Bool(b)) => cfg.enable_artifact_cache = b,
        ("restoreAllArtifacts", Literal::Bool(b)) => cfg.restore_all_artifacts = b,
        ("buildDir", Literal::Path(p)) => cfg.build_dir = p,
        ("leanLibDir", Literal::Path(p)) => cfg.lean_lib_dir = p,
        ("irDir", Literal::Path(p)) => cfg.ir_dir = p,
        ("packagesDir", Literal::Path(p)) => cfg.packages_dir = p,
        _ => {}
    }
}

enum Literal {
    /// `Some(b)` for `true`/`false`/`some b`, `None` for `none`.
    Bool(Option<bool>),
    /// `Some(path)` for a string (or `"a" / "b"`), `None` for `none`.
    Path(Option<String>),
}

fn strip_parens(mut v: &[Token]) -> &[Token] {
    // A literal needs no more than a few; the bound keeps hostile input linear.
    for _ in 0..8 {
        if !(v.len() >= 2 && v[0].is_sym("(") && v[v.len() - 1].is_sym(")")) {
            break;
        }
        // Only when the outer parentheses enclose the whole value.
        let mut depth = 0i32;
        let mut whole = true;
        for (i, t) in v.iter().enumerate() {
            depth += t.depth_change();
            if depth == 0 && i + 1 < v.len() {
                whole = false;
                break;
            }
        }
        if !whole {
            break;
        }
        v = &v[1..v.len() - 1];
    }
    v
}

/// An `Option` value: `None` for `none`, else the value with a leading `some` and its
/// parentheses taken off (each in any of Lean's spellings).
fn option_payload(v: &[Token]) -> Option<&[Token]> {
    match v {
        [t] if t.is_ident("none") || t.is_ident("Option.none") || t.is_ident(".none") => None,
        [s, rest @ ..]
            if s.is_ident("some") || s.is_ident("Option.some") || s.is_ident(".some") =>
        {
            Some(strip_parens(rest))
        }
        _ => Some(v),
    }
}

fn bool_literal(v: &[Token]) -> Option<Option<bool>> {
    let Some(v) = option_payload(v) else {
        return Some(None);
    };
    match v {
        [t] if t.is_ident("true") || t.is_ident("Bool.true") => Some(Some(true)),
        [t] if t.is_ident("false") || t.is_ident("Bool.false") => Some(Some(false)),
        _ => None,
    }
}

/// A string literal, or string literals joined with `/` (Lean's `FilePath` division).
fn path_literal(v: &[Token]) -> Option<Option<String>> {
    let Some(v) = option_payload(v) else {
        return Some(None);
    };
    let mut parts = Vec::new();
    for (i, t) in v.iter().enumerate() {
        match (&t.kind, i % 2) {
            (Kind::Str(s), 0) => parts.push(s.as_str()),
            (Kind::Sym(s), 1) if s == "/" => {}
            _ => return None,
        }
    }
    (!parts.is_empty() && v.len() % 2 == 1).then(|| Some(parts.join("/")))
}

/// The value's source text on one line, shortened to 60 characters.
fn snippet(text: &str, value: &[Token]) -> String {
    let (Some(first), Some(last)) = (value.first(), value.last()) else {
        return String::new();
    };
    let raw = &text[first.start..last.end];
    let one_line: String = raw.split_whitespace().collect::<Vec<_>>().join(" ");
    if one_line.chars().count() > 60 {
        let cut: String = one_line.chars().take(57).collect();
        format!("{cut}…")
    } else {
        one_line
    }
}

/// One `field := value` of the declaration.
struct Field<'a> {
    name: &'a str,
    line: usize,
    value: &'a [Token],
}

/// Fields of a `where` block: from the token after `where` to the first token that starts a
/// line at column 0 and does not itself begin a field.
fn where_fields(tokens: &[Token]) -> Vec<Field<'_>> {
    let field_col = match tokens.first() {
        Some(t) if begins_field(tokens, 0) => t.col,
        _ => return Vec::new(),
    };
    let end = tokens
        .iter()
        .enumerate()
        .skip(1)
        .find(|(i, t)| t.line_start && t.col == 0 && !(field_col == 0 && begins_field(tokens, *i)))
        .map(|(i, _)| i)
        .unwrap_or(tokens.len());
    split_fields(&tokens[..end], Some(field_col))
}

/// Fields of a `{ … }` structure instance starting at `tokens[0] == "{"`.
fn brace_fields(tokens: &[Token]) -> Vec<Field<'_>> {
    let mut depth = 0i32;
    let mut close = tokens.len();
    for (i, t) in tokens.iter().enumerate() {
        depth += t.depth_change();
        if depth == 0 {
            close = i;
            break;
        }
    }
    let mut body = &tokens[1..close.max(1)];
    // `{ base with field := … }`: skip the base.
    let mut d = 0i32;
    for (i, t) in body.iter().enumerate() {
        d += t.depth_change();
        if d == 0 && t.is_ident("with") {
            body = &body[i + 1..];
            break;
        }
    }
    split_fields(body, None)
}

/// Whether `tokens[i]` starts `ident :=`.
fn begins_field(tokens: &[Token], i: usize) -> bool {
    matches!(
        tokens.get(i),
        Some(Token {
            kind: Kind::Ident(_),
            ..
        })
    ) && tokens.get(i + 1).is_some_and(|t| t.is_sym(":="))
}

/// Splits a body into fields. A field starts with `ident :=` at nesting depth 0, either first,
/// after `,` or `;`, or at the start of a line (in a `where` block: at or left of the first
/// field's column).
fn split_fields(tokens: &[Token], field_col: Option<usize>) -> Vec<Field<'_>> {
    fn close<'a>(
        tokens: &'a [Token],
        fields: &mut Vec<Field<'a>>,
        cur: Option<(usize, usize)>,
        end: usize,
    ) {
        if let Some((n, s)) = cur {
            if let Kind::Ident(name) = &tokens[n].kind {
                fields.push(Field {
                    name,
                    line: tokens[n].line,
                    value: &tokens[s..end.max(s)],
                });
            }
        }
    }
    let mut fields: Vec<Field<'_>> = Vec::new();
    let mut current: Option<(usize, usize)> = None; // (name index, value start)
    let mut depth = 0i32;
    let mut after_sep = true;
    let mut i = 0;
    while i < tokens.len() {
        let t = &tokens[i];
        if depth == 0 {
            let at_line = t.line_start && field_col.is_none_or(|c| t.col <= c);
            if (after_sep || at_line) && begins_field(tokens, i) {
                close(tokens, &mut fields, current.take(), i);
                current = Some((i, i + 2));
                after_sep = false;
                i += 2;
                continue;
            }
            if t.is_sym(",") || t.is_sym(";") {
                close(tokens, &mut fields, current.take(), i);
                after_sep = true;
                i += 1;
                continue;
            }
        }
        depth = (depth + t.depth_change()).max(0);
        after_sep = false;
        i += 1;
    }
    close(tokens, &mut fields, current.take(), tokens.len());
    fields
}

#[derive(Debug, Clone, PartialEq)]
enum Kind {
    Ident(String),
    Str(String),
    Sym(String),
    Other,
}

#[derive(Debug, Clone)]
struct Token {
    kind: Kind,
    /// 1-based line.
    line: usize,
    /// 0-based column in characters.
    col: usize,
    /// First token on its line.
    line_start: bool,
    /// Byte range in the text.
    start: usize,
    end: usize,
}

impl Token {
    fn is_ident(&self, s: &str) -> bool {
        matches!(&self.kind, Kind::Ident(x) if x == s)
    }
    fn is_sym(&self, s: &str) -> bool {
        matches!(&self.kind, Kind::Sym(x) if x == s)
    }
    fn depth_change(&self) -> i32 {
        match &self.kind {
            Kind::Sym(s) if matches!(s.as_str(), "(" | "[" | "{" | "⟨" | "#[") => 1,
            Kind::Sym(s) if matches!(s.as_str(), ")" | "]" | "}" | "⟩") => -1,
            _ => 0,
        }
    }
}

fn is_ident_start(c: char) -> bool {
    c.is_alphabetic() || c == '_'
}

fn is_ident_rest(c: char) -> bool {
    c.is_alphanumeric() || matches!(c, '_' | '\'' | '!' | '?' | '.')
}

/// A cursor over the characters of the text, keeping line and column.
struct Lexer<'a> {
    text: &'a str,
    chars: Vec<(usize, char)>,
    i: usize,
    line: usize,
    col: usize,
    line_has_token: bool,
}

impl Lexer<'_> {
    fn at(&self, k: usize) -> Option<char> {
        self.chars.get(k).map(|c| c.1)
    }

    fn byte(&self, k: usize) -> usize {
        self.chars.get(k).map(|c| c.0).unwrap_or(self.text.len())
    }

    fn collect(&self, from: usize, to: usize) -> String {
        self.chars[from.min(self.chars.len())..to.min(self.chars.len())]
            .iter()
            .map(|c| c.1)
            .collect()
    }

    /// Moves to `j`, counting lines and columns on the way.
    fn advance_to(&mut self, j: usize) {
        while self.i < j && self.i < self.chars.len() {
            if self.chars[self.i].1 == '\n' {
                self.line += 1;
                self.col = 0;
                self.line_has_token = false;
            } else {
                self.col += 1;
            }
            self.i += 1;
        }
    }

    /// The end of an identifier starting at `j`.
    fn ident_end(&self, mut j: usize) -> usize {
        while self.at(j).is_some_and(is_ident_rest) {
            j += 1;
        }
        j
    }

    /// The end of a comment starting at `i`, if one does.
    fn comment_end(&self) -> Option<usize> {
        let i = self.i;
        match (self.at(i)?, self.at(i + 1)?) {
            ('-', '-') => {
                let mut j = i;
                while j < self.chars.len() && self.chars[j].1 != '\n' {
                    j += 1;
                }
                Some(j)
            }
            ('/', '-') => {
                let mut depth = 0;
                let mut j = i;
                while j < self.chars.len() {
                    if self.chars[j].1 == '/' && self.at(j + 1) == Some('-') {
                        depth += 1;
                        j += 2;
                    } else if self.chars[j].1 == '-' && self.at(j + 1) == Some('/') {
                        depth -= 1;
                        j += 2;
                        if depth == 0 {
                            break;
                        }
                    } else {
                        j += 1;
                    }
                }
                Some(j)
            }
            _ => None,
        }
    }

    /// A string literal starting at `i` (`"`): its decoded value and end.
    fn string(&self) -> (String, usize) {
        let mut s = String::new();
        let mut j = self.i + 1;
        while j < self.chars.len() && self.chars[j].1 != '"' {
            if self.chars[j].1 == '\\' {
                j += 1;
                match self.at(j) {
                    Some('n') => s.push('\n'),
                    Some('t') => s.push('\t'),
                    Some('\\') => s.push('\\'),
                    Some('"') => s.push('"'),
                    Some('\'') => s.push('\''),
                    // `\` + newline continues the string after the next line's indentation.
                    Some('\n') => {
                        while self.at(j + 1).is_some_and(|c| c == ' ' || c == '\t') {
                            j += 1;
                        }
                    }
                    Some(other) => {
                        s.push('\\');
                        s.push(other);
                    }
                    None => {}
                }
            } else {
                s.push(self.chars[j].1);
            }
            j += 1;
        }
        (s, j + 1)
    }

    /// A raw string `r#"…"#` starting at `i`, if one does: its value and end.
    fn raw_string(&self) -> Option<(String, usize)> {
        let mut j = self.i + 1;
        let mut hashes = 0;
        while self.at(j) == Some('#') {
            hashes += 1;
            j += 1;
        }
        if self.at(self.i) != Some('r') || self.at(j) != Some('"') {
            return None;
        }
        let body = j + 1;
        let mut k = body;
        while k < self.chars.len()
            && !(self.chars[k].1 == '"' && (1..=hashes).all(|h| self.at(k + h) == Some('#')))
        {
            k += 1;
        }
        Some((self.collect(body, k), k + 1 + hashes))
    }

    /// The next token's kind and end, at a non-blank, non-comment position.
    fn token(&self) -> (Kind, usize) {
        let i = self.i;
        let c = self.chars[i].1;
        let next = self.at(i + 1);
        if c == '"' {
            let (s, end) = self.string();
            return (Kind::Str(s), end);
        }
        if let Some((s, end)) = self.raw_string() {
            return (Kind::Str(s), end);
        }
        if c == '«' {
            let mut j = i + 1;
            while j < self.chars.len() && self.chars[j].1 != '»' {
                j += 1;
            }
            return (Kind::Ident(self.collect(i + 1, j)), j + 1);
        }
        // Identifiers, including leading-dot ones (`.some`).
        if is_ident_start(c) || (c == '.' && next.is_some_and(is_ident_start)) {
            let end = self.ident_end(i + 1);
            return (Kind::Ident(self.collect(i, end)), end);
        }
        if c.is_ascii_digit() {
            let mut j = i + 1;
            while self
                .at(j)
                .is_some_and(|c| c.is_ascii_alphanumeric() || c == '.' || c == '_')
            {
                j += 1;
            }
            return (Kind::Other, j);
        }
        if c == '\'' {
            // A character literal: `'x'` or `'\n'`.
            let mut j = i + 1;
            if self.at(j) == Some('\\') {
                j += 1;
            }
            j += 1;
            if self.at(j) == Some('\'') {
                j += 1;
            }
            return (Kind::Other, j);
        }
        match (c, next) {
            (':', Some('=')) => (Kind::Sym(":=".into()), i + 2),
            ('#', Some('[')) => (Kind::Sym("#[".into()), i + 2),
            // An attribute `@[…]` nests like a bracket.
            ('@', Some('[')) => (Kind::Sym("[".into()), i + 2),
            _ => (Kind::Sym(c.to_string()), i + 1),
        }
    }
}

/// Splits Lean source into the tokens the declaration reader needs; comments vanish, strings
/// are decoded, everything unknown becomes one-character symbols.
fn tokenize(text: &str) -> Vec<Token> {
    let mut lx = Lexer {
        text,
        chars: text.char_indices().collect(),
        i: 0,
        line: 1,
        col: 0,
        line_has_token: false,
    };
    let mut tokens = Vec::new();
    while lx.i < lx.chars.len() {
        if lx.chars[lx.i].1.is_whitespace() {
            lx.advance_to(lx.i + 1);
            continue;
        }
        if let Some(end) = lx.comment_end() {
            lx.advance_to(end);
            continue;
        }
        let (line, col, line_start, start) = (lx.line, lx.col, !lx.line_has_token, lx.byte(lx.i));
        let (kind, end) = lx.token();
        lx.advance_to(end);
        tokens.push(Token {
            kind,
            line,
            col,
            line_start,
            start,
            end: lx.byte(lx.i),
        });
        // A token spanning lines (a string) also occupies the line it ends on.
        lx.line_has_token = true;
    }
    tokens
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> (PackageConfig, Vec<Warning>) {
        parse_lakefile_lean(text, "lakefile.lean").unwrap()
    }

    #[test]
    fn reads_plain_lakefile_lean_names() {
        let lean =
            "import Lake\nopen Lake DSL\n\npackage test where\n  enableArtifactCache := true\n";
        assert_eq!(parse(lean).0.name, "test");
        assert_eq!(parse("package «my pkg» where").0.name, "my pkg");
        assert!(parse_lakefile_lean("def x := 1", "lakefile.lean").is_err());
    }

    /// Mathlib's lakefile (leanprover-community/mathlib4, 2026), abridged only in the
    /// middle: `require`s with `@ git`, doc comments, `abbrev`s with `⟨…⟩` literals, the
    /// `package` block with comment lines, attributes, `lean_lib … where` blocks.
    const MATHLIB: &str = r#"import Lake

open Lake DSL

/-!
## Mathlib dependencies on upstream projects
-/

require "leanprover-community" / "batteries" @ git "main"
require "leanprover-community" / "Qq" @ git "master"
require "leanprover-community" / "proofwidgets" @ git "v0.0.86" -- ProofWidgets should always be pinned
  with NameMap.empty.insert `errorOnBuild
    "ProofWidgets not up-to-date. \
    Please run `lake exe cache get` to fetch the latest ProofWidgets."

/-- These options are used as `leanOptions`. -/
abbrev mathlibOnlyLinters : Array LeanOption := #[
  ⟨`linter.mathlibStandardSet, true⟩,
  ⟨`linter.style.longFile, .ofNat 1500⟩,
]

package mathlib where
  testDriver := "MathlibTest"
  -- These are additional settings which do not affect the lake hash,
  -- so they can be enabled in CI and disabled locally or vice versa.
  -- weakLeanArgs := #[]
  enableArtifactCache := true
  restoreAllArtifacts := true
  platformIndependent := true
  fixedToolchain := true

/-!
## Mathlib libraries
-/

@[default_target]
lean_lib Mathlib where
  leanOptions := mathlibLeanOptions

lean_exe cache where
  root := `Cache.Main
"#;

    #[test]
    fn reads_mathlibs_where_block() {
        let (cfg, w) = parse(MATHLIB);
        assert_eq!(cfg.name, "mathlib");
        assert_eq!(cfg.enable_artifact_cache, Some(true));
        assert_eq!(cfg.restore_all_artifacts, Some(true));
        assert_eq!(cfg.platform_independent, Some(true));
        assert_eq!(cfg.fixed_toolchain, Some(true));
        assert_eq!(cfg.bootstrap, None);
        assert!(w.is_empty(), "{w:?}");
    }

    #[test]
    fn reads_batteries_and_quote4_style_declarations() {
        // leanprover-community/batteries lakefile.lean (before its move to TOML).
        let batteries = "import Lake\n\nopen Lake DSL\n\npackage batteries where\n  testDriver := \"BatteriesTest\"\n  lintDriver := \"runLinter\"\n\n/-!\n## Batteries libraries\n-/\n\n@[default_target]\nlean_lib Batteries where\n  leanOptions := #[⟨`linter.missingDocs,true⟩]\n";
        let (cfg, w) = parse(batteries);
        assert_eq!(cfg.name, "batteries");
        assert_eq!(cfg.platform_independent, None);
        assert!(w.is_empty());
        // leanprover-community/quote4.
        let (cfg, _) =
            parse("import Lake\n\nopen Lake DSL\n\npackage Qq where\n  defaultFacet := PackageFacet.oleans\n");
        assert_eq!(cfg.name, "Qq");
    }

    #[test]
    fn reads_aesops_brace_form() {
        // leanprover-community/aesop lakefile.lean (2023), plus an option.
        let aesop = "import Lake\n\nopen Lake DSL\n\npackage aesop {\n  precompileModules := false -- breaks mathlib cache\n  platformIndependent := true\n}\n\n@[default_target]\nlean_lib Aesop\n\nlean_lib AesopTest {\n  globs := #[.submodules \"AesopTest\"]\n}\n\nrequire std from git \"https://github.com/leanprover/std4\" @ \"main\"\n";
        let (cfg, w) = parse(aesop);
        assert_eq!(cfg.name, "aesop");
        assert_eq!(cfg.platform_independent, Some(true));
        assert!(w.is_empty());
        let (cfg, _) =
            parse("package foo { bootstrap := true, buildDir := \"out\", irDir := \"c\" }");
        assert_eq!(cfg.bootstrap, Some(true));
        assert_eq!(cfg.build_dir.as_deref(), Some("out"));
        assert_eq!(cfg.ir_dir.as_deref(), Some("c"));
        let (cfg, _) =
            parse("package foo (config := { fixedToolchain := some true, leanLibDir := \"l\" / \"lean\" })");
        assert_eq!(cfg.fixed_toolchain, Some(true));
        assert_eq!(cfg.lean_lib_dir.as_deref(), Some("l/lean"));
    }

    #[test]
    fn reads_guillemet_names_and_question_mark_fields() {
        let (cfg, _) = parse(
            "package «my-pkg» where\n  enableArtifactCache? := some false\n  restoreAllArtifacts := (true)\n",
        );
        assert_eq!(cfg.name, "my-pkg");
        assert_eq!(cfg.enable_artifact_cache, Some(false));
        assert_eq!(cfg.restore_all_artifacts, Some(true));
        let (cfg, _) = parse("package proofwidgets where\n  preferReleaseBuild := true\n  buildArchive? := \"ProofWidgets4.tar.gz\"\n  platformIndependent := none\n");
        assert_eq!(cfg.name, "proofwidgets");
        assert_eq!(cfg.platform_independent, None);
    }

    #[test]
    fn non_literal_values_warn_with_line_and_override() {
        let text = "import Lake\nopen Lake DSL\n\npackage foo where\n  platformIndependent := by\n    exact true\n  fixedToolchain :=\n    if System.Platform.isWindows then false else true\n  buildDir := defaultBuildDir\n  bootstrap := false\n";
        let (cfg, w) = parse(text);
        assert_eq!(cfg.platform_independent, None);
        assert_eq!(cfg.fixed_toolchain, None);
        assert_eq!(cfg.build_dir, None);
        assert_eq!(cfg.bootstrap, Some(false));
        assert_eq!(w.len(), 3, "{w:?}");
        assert_eq!(w[0].line, Some(5));
        let first = w[0].to_string();
        assert!(
            first.starts_with(
                "lakefile.lean:5: `platformIndependent` is not a literal (`by exact true`)"
            ),
            "{first}"
        );
        assert!(first.contains("--platform"), "{first}");
        assert_eq!(w[1].line, Some(7));
        assert!(w[1].message.contains("--toolchain"), "{}", w[1]);
        assert!(
            w[1].message.contains("if System.Platform.isWindows"),
            "{}",
            w[1]
        );
        assert_eq!(w[2].line, Some(9));
    }

    #[test]
    fn comments_and_strings_do_not_confuse_the_reader() {
        let text = "/- package wrong where\n  platformIndependent := false\n  /- nested -/ still comment -/\n-- package alsoWrong\ndef s := \"package inString where\"\npackage right where\n  -- platformIndependent := false\n  /- fixedToolchain := false -/\n  platformIndependent := true -- trailing\n  moreLinkArgs := #[\n    \"-L\", \"x\"]\n  fixedToolchain := true\nlean_lib Right\n";
        let (cfg, w) = parse(text);
        assert_eq!(cfg.name, "right");
        assert_eq!(cfg.platform_independent, Some(true));
        assert_eq!(cfg.fixed_toolchain, Some(true));
        assert!(w.is_empty(), "{w:?}");
    }

    #[test]
    fn the_where_block_ends_at_the_next_command() {
        let text = "package a where\n  name' := 1\nplatformIndependent := true\n";
        // `platformIndependent := true` at column 0 after an indented block is not a field.
        let (cfg, _) = parse(text);
        assert_eq!(cfg.platform_independent, None);
        let text = "package a where\nplatformIndependent := true\nlean_lib A\n";
        let (cfg, _) = parse(text);
        assert_eq!(cfg.platform_independent, Some(true));
    }

    #[test]
    fn missing_or_computed_names_are_errors() {
        let e = parse_lakefile_lean("import Lake\ndef x := 1\n", "a/lakefile.lean").unwrap_err();
        assert_eq!(
            e.to_string(),
            "a/lakefile.lean: no `package` declaration found"
        );
        let e = parse_lakefile_lean("\npackage where\n", "lakefile.lean").unwrap_err();
        assert_eq!(
            e.to_string(),
            "lakefile.lean:2: the `package` declaration has no plain name"
        );
    }

    #[test]
    fn arbitrary_input_never_panics_and_stays_linear() {
        // Mutations of real lakefiles: truncations, unterminated strings and comments,
        // stray brackets and guillemets, random bytes.
        let seeds = [
            MATHLIB,
            "package «x where\n  a := \"unterminated",
            "/- open",
            "package",
        ];
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = || {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (state >> 33) as usize
        };
        let alphabet = [
            '(', ')', '{', '}', '"', '\'', '«', '»', '-', '/', ':', '=', '\n', ' ', 'a', '⟨',
        ];
        for seed in seeds {
            let chars: Vec<char> = seed.chars().collect();
            for _ in 0..300 {
                let mut text: Vec<char> = chars[..next() % (chars.len() + 1)].to_vec();
                for _ in 0..next() % 8 {
                    let at = next() % (text.len() + 1);
                    text.insert(at, alphabet[next() % alphabet.len()]);
                }
                let text: String = text.into_iter().collect();
                let _ = parse_lakefile_lean(&text, "fuzz.lean");
            }
        }
        // Deeply parenthesised values: bounded work, a warning, no recursion.
        let deep = format!(
            "package p where\n  platformIndependent := {}true{}\n",
            "(".repeat(100_000),
            ")".repeat(100_000)
        );
        let (cfg, w) = parse(&deep);
        assert_eq!(cfg.platform_independent, None);
        assert_eq!(w.len(), 1);
        let big = "-".repeat((MAX_LAKEFILE_BYTES + 1) as usize);
        let e = parse_lakefile_lean(&big, "big.lean").unwrap_err();
        assert!(
            e.to_string().starts_with("big.lean: larger than 1 MiB"),
            "{e}"
        );
    }

    #[test]
    fn bare_declarations_and_attributes() {
        let (cfg, w) = parse("import Lake\nopen Lake DSL\n@[default_target] package bare\n");
        assert_eq!(cfg.name, "bare");
        assert!(w.is_empty());
    }
}
