//! Errors with what to do as data: the message says what is wrong, each help line what to
//! do, each note some context, and the error carries its exit code. The host prints them in
//! cargo's shape (`error: ...`, then `note: ...` and `help: ...`), and xbuild's CLI uses the
//! same model ([`Diagnostic`]) for its own errors.
//!
//! A module returns a [`Hinted`] (it converts into [`BoxError`](crate::BoxError)); the
//! core's own errors implement [`Diagnostic`]. Help and notes are found anywhere in an
//! error's chain, so a module's help survives the core wrapping its error
//! ("module `x` failed in provision: ...").

/// What an error says besides its message.
pub trait Diagnostic: std::error::Error {
    /// What the user can do about it, one suggestion per entry (`help:` lines).
    fn help(&self) -> Vec<String> {
        Vec::new()
    }

    /// Context that is not a suggestion (`note:` lines).
    fn notes(&self) -> Vec<String> {
        Vec::new()
    }

    /// The exit code of a process that ends with this error: 1 for a failure, 2 for bad
    /// input (a flag, a file, a setting), as cargo and the xbuild CLI use them.
    fn exit_code(&self) -> i32 {
        1
    }
}

/// An error message and what the user can do about it.
///
/// ```
/// use xbuild_core::{BoxError, Hinted};
///
/// fn check(port: u16) -> Result<(), BoxError> {
///     if port == 0 {
///         return Err(Hinted::new("port 0 cannot be listened on")
///             .help("give a port from 1 to 65535")
///             .into());
///     }
///     Ok(())
/// }
/// let err = check(0).unwrap_err();
/// assert_eq!(err.to_string(), "port 0 cannot be listened on");
/// assert_eq!(xbuild_core::error::help_of(err.as_ref()), ["give a port from 1 to 65535"]);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hinted {
    message: String,
    help: Vec<String>,
    notes: Vec<String>,
    code: i32,
}

impl Hinted {
    /// An error saying `message` (exit code 1).
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            help: Vec::new(),
            notes: Vec::new(),
            code: 1,
        }
    }

    /// Adds a suggestion (printed as a `help:` line).
    pub fn help(mut self, text: impl Into<String>) -> Self {
        self.help.push(text.into());
        self
    }

    /// Adds context (printed as a `note:` line).
    pub fn note(mut self, text: impl Into<String>) -> Self {
        self.notes.push(text.into());
        self
    }

    /// The exit code a process ending with this error uses (2 for bad input).
    pub fn code(mut self, code: i32) -> Self {
        self.code = code;
        self
    }

    /// `err` (its message and causes, as [`render`] writes them without the help) with the
    /// help, notes and exit code found in its chain: for adding context to an error without
    /// losing what it says.
    pub fn from_error(err: &(dyn std::error::Error + 'static)) -> Self {
        Self {
            message: with_causes(err, ": "),
            help: help_of(err),
            notes: notes_of(err),
            code: exit_code_of(err),
        }
    }

    /// The same error with `PREFIX: ` before its message.
    pub fn context(mut self, prefix: impl std::fmt::Display) -> Self {
        self.message = format!("{prefix}: {}", self.message);
        self
    }

    /// The suggestions, in order.
    pub fn helps(&self) -> &[String] {
        &self.help
    }
}

impl std::fmt::Display for Hinted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Hinted {}

impl Diagnostic for Hinted {
    fn help(&self) -> Vec<String> {
        self.help.clone()
    }

    fn notes(&self) -> Vec<String> {
        self.notes.clone()
    }

    fn exit_code(&self) -> i32 {
        self.code
    }
}

/// An error as the host prints it after `error: `: its message, each cause in its chain not
/// already quoted by it (`  caused by: ...`), then the help found anywhere in the chain as
/// `help: ...` lines, as cargo prints them.
pub fn render(err: &(dyn std::error::Error + 'static)) -> String {
    let mut text = with_causes(err, "\n  caused by: ");
    for note in notes_of(err) {
        text.push_str(&format!("\nnote: {note}"));
    }
    for help in help_of(err) {
        text.push_str(&format!("\nhelp: {help}"));
    }
    text
}

/// `err`'s message, then each cause in its chain that the text so far does not already
/// quote (our messages, and thiserror's `transparent`, often include their cause's text),
/// each after `separator`.
fn with_causes(err: &(dyn std::error::Error + 'static), separator: &str) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(separator);
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

/// The help of `err` and of every error in its chain, outermost first, each line once.
pub fn help_of(err: &(dyn std::error::Error + 'static)) -> Vec<String> {
    collect(err, |d| d.help())
}

/// The notes of `err` and of every error in its chain, outermost first, each line once.
pub fn notes_of(err: &(dyn std::error::Error + 'static)) -> Vec<String> {
    collect(err, |d| d.notes())
}

/// The exit code `err` carries: that of the outermost error in its chain that says one,
/// else 1.
pub fn exit_code_of(err: &(dyn std::error::Error + 'static)) -> i32 {
    let mut current = Some(err);
    while let Some(e) = current {
        if let Some(diagnostic) = as_diagnostic(e) {
            return diagnostic.exit_code();
        }
        current = e.source();
    }
    1
}

fn collect(
    err: &(dyn std::error::Error + 'static),
    lines: impl Fn(&dyn Diagnostic) -> Vec<String>,
) -> Vec<String> {
    let mut found: Vec<String> = Vec::new();
    let mut current = Some(err);
    while let Some(e) = current {
        for line in as_diagnostic(e).map(&lines).unwrap_or_default() {
            if !found.contains(&line) {
                found.push(line);
            }
        }
        current = e.source();
    }
    found
}

/// `err` as a [`Diagnostic`] when it is a [`Hinted`] or one of the core's own errors (a
/// `dyn Error` cannot be asked for a trait, only for types).
fn as_diagnostic<'a>(err: &'a (dyn std::error::Error + 'static)) -> Option<&'a dyn Diagnostic> {
    if let Some(err) = err.downcast_ref::<Hinted>() {
        return Some(err);
    }
    if let Some(err) = err.downcast_ref::<crate::config::ConfigFileError>() {
        return Some(err);
    }
    if let Some(err) = err.downcast_ref::<crate::config::ConfigError>() {
        return Some(err);
    }
    if let Some(err) = err.downcast_ref::<crate::lifecycle::LoadError>() {
        return Some(err);
    }
    if let Some(err) = err.downcast_ref::<crate::lifecycle::LifecycleError>() {
        return Some(err);
    }
    if let Some(err) = err.downcast_ref::<crate::registry::LookupError>() {
        return Some(err);
    }
    if let Some(err) = err.downcast_ref::<crate::registry::RegistryError>() {
        return Some(err);
    }
    if let Some(err) = err.downcast_ref::<crate::host::AdminError>() {
        return Some(err);
    }
    None
}

/// `n` and the noun that goes with it, for messages: `1 module`, `2 modules`.
pub fn counted(n: usize, singular: &str, plural: &str) -> String {
    format!("{n} {}", if n == 1 { singular } else { plural })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("cannot start")]
    struct Wrapper(#[source] Hinted);

    #[test]
    fn help_notes_and_the_exit_code_are_found_through_the_chain() {
        let bad = Hinted::new("XBUILD_X: `sometimes` is not a setting")
            .note("it was read from the environment")
            .help("unset it")
            .code(2);
        let wrapped = Wrapper(bad);
        assert_eq!(exit_code_of(&wrapped), 2);
        assert_eq!(
            render(&wrapped),
            "cannot start\n  caused by: XBUILD_X: `sometimes` is not a setting\nnote: it was read from the environment\nhelp: unset it"
        );
        // Context added with `from_error` keeps all three.
        let again = Hinted::from_error(&wrapped).context("host");
        assert_eq!(again.exit_code(), 2);
        assert_eq!(again.notes(), ["it was read from the environment"]);
        assert_eq!(exit_code_of(&std::io::Error::other("plain")), 1);
    }
}
