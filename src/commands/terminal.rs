//! Where people-facing text goes: whether stdout and stderr are terminals,
//! how wide, and whether to colour (`--color`, `NO_COLOR`, `TERM=dumb`).

use std::io::{self, IsTerminal};

use crate::cli::ColorChoice;
use crate::report::table::TableOptions;

/// The `--color` choice, resolved per stream.
#[derive(Debug, Clone, Copy)]
pub struct Ui {
    choice: ColorChoice,
}

impl Ui {
    pub fn new(choice: ColorChoice) -> Ui {
        Ui { choice }
    }

    /// Layout and colour for standard output.
    pub fn stdout(&self) -> TableOptions {
        let stdout = io::stdout();
        self.options(
            stdout.is_terminal(),
            terminal_size::terminal_size_of(&stdout).map(|(w, _)| usize::from(w.0)),
        )
    }

    /// Layout and colour for standard error (`semleak run`'s summary).
    pub fn stderr(&self) -> TableOptions {
        let stderr = io::stderr();
        self.options(
            stderr.is_terminal(),
            terminal_size::terminal_size_of(&stderr).map(|(w, _)| usize::from(w.0)),
        )
    }

    fn options(&self, is_terminal: bool, width: Option<usize>) -> TableOptions {
        TableOptions {
            terminal_width: if is_terminal { width } else { None },
            color: color_wanted(self.choice, is_terminal, |name| std::env::var_os(name)),
        }
    }
}

/// `always` and `never` are final; `auto` colours a terminal unless
/// `NO_COLOR` is set to anything but the empty string (no-color.org) or the
/// terminal is `dumb`.
fn color_wanted(
    choice: ColorChoice,
    is_terminal: bool,
    env: impl Fn(&str) -> Option<std::ffi::OsString>,
) -> bool {
    match choice {
        ColorChoice::Always => true,
        ColorChoice::Never => false,
        ColorChoice::Auto => {
            is_terminal
                && env("NO_COLOR").is_none_or(|v| v.is_empty())
                && env("TERM").is_none_or(|t| t != "dumb")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::OsString;

    fn env<'a>(vars: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<OsString> + 'a {
        move |name| {
            vars.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| OsString::from(v))
        }
    }

    #[test]
    fn auto_colours_only_terminals_without_no_color() {
        assert!(color_wanted(ColorChoice::Auto, true, env(&[])));
        assert!(!color_wanted(ColorChoice::Auto, false, env(&[])));
        assert!(!color_wanted(
            ColorChoice::Auto,
            true,
            env(&[("NO_COLOR", "1")])
        ));
        assert!(color_wanted(
            ColorChoice::Auto,
            true,
            env(&[("NO_COLOR", "")])
        ));
        assert!(!color_wanted(
            ColorChoice::Auto,
            true,
            env(&[("TERM", "dumb")])
        ));
    }

    #[test]
    fn always_and_never_are_final() {
        assert!(color_wanted(
            ColorChoice::Always,
            false,
            env(&[("NO_COLOR", "1")])
        ));
        assert!(!color_wanted(ColorChoice::Never, true, env(&[])));
    }
}
