//! Text from outside (a server's error body, a Reservoir error message) made safe to print:
//! no terminal control sequence, no forged line, a bounded length.

/// The first `max_chars` characters of `text` (then `…`) as one printable line: line breaks
/// and tabs become spaces, every other control character (C0, DEL, C1, so no ANSI escape
/// sequence reaches a terminal) is shown escaped (`\u{1b}`), surrounding space is trimmed.
pub fn printable_line(text: &str, max_chars: usize) -> String {
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

/// `text` with every control character but the line break escaped (`\u{1b}`): for messages
/// that may span lines but must not steer a terminal.
pub fn printable_lines(text: &str) -> String {
    if !text.chars().any(|c| c.is_control() && c != '\n') {
        return text.to_string();
    }
    text.chars()
        .map(|c| {
            if c.is_control() && c != '\n' {
                c.escape_default().collect()
            } else {
                c.to_string()
            }
        })
        .collect()
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
}
