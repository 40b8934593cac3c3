//! One error model for the CLI, in cargo's shape: what went wrong (`error: ...`, with the
//! chain of causes), then what to do (`help: ...`) and context (`note: ...`). Hints are
//! data, not text glued into messages: the JSON reporter gives them as fields, and every
//! error type says its own through [`Diagnostic`].

use std::fmt::Write as _;

/// What an error adds after its message (help, notes) and the exit code it carries: the
/// model the host's errors use too, defined once in xbuild-core.
pub use xbuild_core::error::Diagnostic;

/// A bad input: exits with code 2, with nothing run and nothing written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct UsageError {
    pub message: String,
    pub help: Vec<String>,
    pub notes: Vec<String>,
}

impl UsageError {
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            help: Vec::new(),
            notes: Vec::new(),
        }
    }

    /// Adds a suggestion.
    pub fn help(mut self, text: impl Into<String>) -> Self {
        self.help.push(text.into());
        self
    }

    /// Adds context.
    pub fn note(mut self, text: impl Into<String>) -> Self {
        self.notes.push(text.into());
        self
    }

    /// The same error with `PREFIX: ` before its message.
    pub fn context(mut self, prefix: &str) -> Self {
        self.message = format!("{prefix}: {}", self.message);
        self
    }

    /// `PREFIX: <error>`, keeping the error's own help.
    pub fn wrap(prefix: &str, err: &dyn Diagnostic) -> Self {
        Self {
            message: format!("{prefix}: {err}"),
            help: err.help(),
            notes: err.notes(),
        }
    }
}

impl Diagnostic for UsageError {
    fn help(&self) -> Vec<String> {
        self.help.clone()
    }

    fn notes(&self) -> Vec<String> {
        self.notes.clone()
    }

    fn exit_code(&self) -> i32 {
        2
    }
}

/// A failure ready to show: the message with its causes, help, notes and exit code.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Report {
    pub message: String,
    pub help: Vec<String>,
    pub notes: Vec<String>,
    pub exit_code: i32,
}

impl Report {
    pub fn new(err: &dyn Diagnostic) -> Self {
        Self {
            message: message_with_causes(err),
            help: err.help(),
            notes: err.notes(),
            exit_code: err.exit_code(),
        }
    }

    /// The text for a terminal or log: `error:` first, then each `note:` and `help:`, the
    /// labels coloured (bold red, cyan) only when `color`.
    pub fn render(&self, color: bool) -> String {
        let label = |name: &str, code: &str| {
            if color {
                format!("\x1b[1;{code}m{name}\x1b[0m\x1b[1m:\x1b[0m")
            } else {
                format!("{name}:")
            }
        };
        let mut out = format!("{} {}\n", label("error", "31"), self.message);
        for note in &self.notes {
            let _ = writeln!(out, "{} {note}", label("note", "32"));
        }
        for help in &self.help {
            let _ = writeln!(out, "{} {help}", label("help", "36"));
        }
        out
    }
}

/// An error and its causes, each once (our messages often already quote their cause),
/// causes on their own lines as cargo's `Caused by:`.
fn message_with_causes(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    let mut first = true;
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            if first {
                text.push_str("\n\nCaused by:");
                first = false;
            }
            let _ = write!(text, "\n  {cause_text}");
        }
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_in_cargos_shape_without_colour_unless_asked() {
        let err = UsageError::new("unknown profile `fast`")
            .help("use `release` (the default) or `dev`")
            .note("profiles are cargo's");
        let report = Report::new(&err);
        assert_eq!(
            report.render(false),
            "error: unknown profile `fast`\nnote: profiles are cargo's\nhelp: use `release` (the default) or `dev`\n"
        );
        assert!(!report.render(false).contains('\x1b'));
        assert!(report.render(true).contains("\x1b[1;31merror"));
    }

    #[test]
    fn causes_are_listed_once() {
        #[derive(Debug, thiserror::Error)]
        #[error("cannot read `x`: {0}")]
        struct Quoting(#[source] std::io::Error);
        impl Diagnostic for Quoting {}
        let quoting = Quoting(std::io::Error::other("disk on fire"));
        assert_eq!(
            Report::new(&quoting).message,
            "cannot read `x`: disk on fire"
        );
        #[derive(Debug, thiserror::Error)]
        #[error("cannot read `x`")]
        struct Plain(#[source] std::io::Error);
        impl Diagnostic for Plain {}
        let plain = Plain(std::io::Error::other("disk on fire"));
        assert_eq!(
            Report::new(&plain).message,
            "cannot read `x`\n\nCaused by:\n  disk on fire"
        );
    }
}
