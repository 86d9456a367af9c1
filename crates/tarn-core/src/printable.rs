//! Text from outside (a server's error body, a Reservoir error message) made safe to print:
//! no terminal control sequence, no forged line, a bounded length.

/// The first `max_chars` characters of `text` (then `…`) as one printable line: line breaks
/// and tabs become spaces, every other control character (C0, DEL, C1, so no ANSI escape
/// sequence reaches a terminal) is shown escaped (`\u{1b}`), surrounding space is trimmed,
/// and no CI workflow command survives ([`no_workflow_commands`]).
pub fn printable_line(text: &str, max_chars: usize) -> String {
    no_workflow_commands(&line_of(text, max_chars))
}

/// [`printable_line`] before workflow commands are defused.
fn line_of(text: &str, max_chars: usize) -> String {
    let mut out = String::new();
    for (n, c) in text.trim().chars().enumerate() {
        if n == max_chars {
            out.push('…');
            break;
        }
        match c {
            '\n' | '\r' | '\t' => out.push(' '),
            c if c.is_control() => out.extend(c.escape_default()),
            c => out.push(c),
        }
    }
    out
}

/// `text` with every control character but the line break escaped (`\u{1b}`), and no CI
/// workflow command on any line ([`no_workflow_commands`]): for messages that may span lines
/// but must neither steer a terminal nor a CI runner. The one escaper of everything tarn
/// prints that may hold outside text (a server's, a checkout's, a path).
pub fn printable_lines(text: &str) -> String {
    let escaped: String = if !text.chars().any(|c| c.is_control() && c != '\n') {
        text.to_string()
    } else {
        text.chars()
            .map(|c| {
                if c.is_control() && c != '\n' {
                    c.escape_default().collect()
                } else {
                    c.to_string()
                }
            })
            .collect()
    };
    no_workflow_commands(&escaped)
}

/// `text` with every GitHub Actions workflow command defused: a line whose first non-blank
/// characters are `::` (`::warning::`, `::add-mask::`, `::set-output`) gets its first colon
/// shown escaped (`\u{3a}:warning::`), and every `##[` (the runner's older command form,
/// recognised anywhere in a line) becomes `#\u{23}[`. The runner then reads the line as
/// plain text; a person still reads what was there.
pub fn no_workflow_commands(text: &str) -> String {
    if !text.contains("::") && !text.contains("##[") {
        return text.to_string();
    }
    let lines: Vec<String> = text
        .split('\n')
        .map(|line| {
            let line = line.replace("##[", "#\\u{23}[");
            let blank = line.len() - line.trim_start().len();
            if line[blank..].starts_with("::") {
                format!("{}\\u{{3a}}{}", &line[..blank], &line[blank + 1..])
            } else {
                line
            }
        })
        .collect();
    lines.join("\n")
}

/// Words that mark a line as carrying a secret (compared without case).
const SECRET_WORDS: &[&str] = &[
    "key=",
    "secret",
    "token",
    "password",
    "passwd",
    "credential",
    "private",
    "authorization",
];

/// Whether `text` looks like it carries a secret, so that an error message quoting it must
/// not be printed: it holds one of the words `key=`, `secret`, `token`, `password`,
/// `passwd`, `credential`, `private`, `authorization` (any case), an environment assignment
/// (`NAME=value`, as in `/proc/self/environ`), or any of `known` (values the caller knows to
/// be sensitive, such as the environment's; empty ones are ignored).
pub fn secret_shaped(text: &str, known: &[&str]) -> bool {
    let lower = text.to_ascii_lowercase();
    if SECRET_WORDS.iter().any(|w| lower.contains(w)) {
        return true;
    }
    if known.iter().any(|k| !k.is_empty() && text.contains(k)) {
        return true;
    }
    // `NAME=` where NAME is an environment-variable name (upper case, digits, `_`).
    let b = text.as_bytes();
    b.iter().enumerate().any(|(i, &c)| {
        c == b'='
            && i >= 2
            && b[..i]
                .iter()
                .rev()
                .take_while(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || **c == b'_')
                .count()
                >= 2
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_controls_and_bounds_the_length() {
        let hostile = "\u{1b}]0;pwned\u{7}ok\u{1b}[2J\r\nerror: forged\u{9b}31m\u{7f}";
        let line = printable_line(hostile, 1000);
        assert!(!line.chars().any(|c| c.is_control()), "{line:?}");
        assert!(line.contains("\\u{1b}]0;pwned"), "{line}");
        assert_eq!(printable_line(&"x".repeat(500), 200).chars().count(), 201);
        assert_eq!(printable_line("  plain text ", 200), "plain text");
        let lines = printable_lines("a\u{1b}[31m\nb\r");
        assert_eq!(lines, "a\\u{1b}[31m\nb\\r");
        assert_eq!(printable_lines("fine\nlines"), "fine\nlines");
    }

    #[test]
    fn workflow_commands_are_defused_on_every_line() {
        let forged = "dep\n::warning file=x::forged\n  ::add-mask::secret\nok ##[error]x";
        let shown = printable_lines(forged);
        assert!(
            shown.lines().all(|l| !l.trim_start().starts_with("::")),
            "{shown}"
        );
        assert!(!shown.contains("##["), "{shown}");
        assert_eq!(
            shown,
            "dep\n\\u{3a}:warning file=x::forged\n  \\u{3a}:add-mask::secret\nok #\\u{23}[error]x"
        );
        assert_eq!(
            printable_line("::set-output name=x::y", 100),
            "\\u{3a}:set-output name=x::y"
        );
        assert_eq!(printable_lines("a::b"), "a::b");
    }

    #[test]
    fn secret_shaped_text_is_recognised() {
        for text in [
            "LAKE_CACHE_KEY=abc:def",
            "line 1, column 5: expected `=`, found `HOME=/root`",
            "a Bearer Token here",
            "password",
            "uses hunter2x",
        ] {
            assert!(secret_shaped(text, &["hunter2x", ""]), "{text}");
        }
        for text in [
            "line 2, column 1: invalid table header",
            "expected a boolean, found a string",
            "a = b",
        ] {
            assert!(!secret_shaped(text, &["hunter2x", ""]), "{text}");
        }
    }
}
