//! Helpers the people-facing renderers share: severity colours, word
//! wrapping and human-readable sizes. No I/O: callers decide whether colour
//! is on and how wide the output is.

use crate::analyze::Severity;

/// Width plain text is wrapped at when it does not go to a terminal (CI
/// logs, pipes, files), and from which a terminal gets boxed tables.
pub const PLAIN_WIDTH: usize = 100;

/// ANSI styles, applied only when colour is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    Error,
    Warning,
    Info,
    Ok,
    Heading,
}

impl Style {
    pub fn of(severity: Severity) -> Style {
        match severity {
            Severity::Error => Style::Error,
            Severity::Warning => Style::Warning,
            Severity::Info => Style::Info,
        }
    }

    fn code(self) -> &'static str {
        match self {
            Style::Error => "1;31",
            Style::Warning => "1;33",
            Style::Info => "36",
            Style::Ok => "1;32",
            Style::Heading => "1",
        }
    }
}

/// `text` in `style` when `color` is on; as it is otherwise.
pub fn paint(text: &str, style: Style, color: bool) -> String {
    if color {
        format!("\x1b[{}m{text}\x1b[0m", style.code())
    } else {
        text.to_string()
    }
}

/// Wrap `text` at word boundaries to `width` columns: the first line starts
/// with `first`, the following ones with `rest` (a hanging indent). Words
/// longer than a line (paths, command lines) are broken.
pub fn wrap(text: &str, width: usize, first: &str, rest: &str) -> String {
    let opts = textwrap::Options::new(width.max(20))
        .initial_indent(first)
        .subsequent_indent(rest)
        .break_words(true)
        // Never at a hyphen: `sem.app-lock-1` is one name to copy, not words.
        .word_splitter(textwrap::WordSplitter::NoHyphenation);
    let mut out = String::new();
    for line in textwrap::wrap(text, opts) {
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// `1.2 GiB`, `20.0 KiB`, `512 B`: binary units, one decimal.
pub fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 6] = ["KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

/// A percentage of `total` (0 when the total is unknown).
pub fn percent(used: u64, total: u64) -> f64 {
    if total == 0 {
        0.0
    } else {
        used as f64 * 100.0 / total as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(human_bytes(0), "0 B");
        assert_eq!(human_bytes(1023), "1023 B");
        assert_eq!(human_bytes(20480), "20.0 KiB");
        assert_eq!(human_bytes(25_276_502_016), "23.5 GiB");
        assert_eq!(human_bytes(u64::MAX), "16.0 EiB");
    }

    #[test]
    fn wraps_at_word_boundaries_with_a_hanging_indent() {
        let text = "shut pools down cleanly and avoid creating objects you do not need";
        let out = wrap(text, 30, "fix: ", "     ");
        assert_eq!(
            out,
            "fix: shut pools down cleanly\n     and avoid creating\n     objects you do not need\n"
        );
        assert!(out.lines().all(|l| l.chars().count() <= 30));
    }

    #[test]
    fn colour_only_when_asked() {
        assert_eq!(paint("error", Style::Error, false), "error");
        assert_eq!(paint("error", Style::Error, true), "\x1b[1;31merror\x1b[0m");
    }
}
