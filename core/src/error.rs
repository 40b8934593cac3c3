//! Errors with help as data: the message says what is wrong, each help line what to do, and
//! the host prints them in cargo's shape (`error: ...`, then `help: ...`).
//!
//! A module returns a [`Hinted`] (it converts into [`BoxError`](crate::BoxError)); the
//! core's own errors say their help through [`help_of`]. Help is found anywhere in an
//! error's chain, so a module's help survives the core wrapping its error
//! ("module `x` failed in provision: ...").

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
}

impl Hinted {
    /// An error saying `message`.
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            help: Vec::new(),
        }
    }

    /// Adds a suggestion (printed as a `help:` line).
    pub fn help(mut self, text: impl Into<String>) -> Self {
        self.help.push(text.into());
        self
    }

    /// `err` (its message and causes, as [`render`] writes them without the help) with the
    /// help found in its chain: for adding context to an error without losing its help.
    pub fn from_error(err: &(dyn std::error::Error + 'static)) -> Self {
        Self {
            message: with_causes(err, ": "),
            help: help_of(err),
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

/// An error as the host prints it after `error: `: its message, each cause in its chain not
/// already quoted by it (`  caused by: ...`), then the help found anywhere in the chain as
/// `help: ...` lines, as cargo prints them.
pub fn render(err: &(dyn std::error::Error + 'static)) -> String {
    let mut text = with_causes(err, "\n  caused by: ");
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
    let mut help: Vec<String> = Vec::new();
    let mut current = Some(err);
    while let Some(e) = current {
        for line in own_help(e) {
            if !help.contains(&line) {
                help.push(line);
            }
        }
        current = e.source();
    }
    help
}

/// The help one error carries itself: a [`Hinted`], or one of the core's own errors.
fn own_help(err: &(dyn std::error::Error + 'static)) -> Vec<String> {
    if let Some(hinted) = err.downcast_ref::<Hinted>() {
        return hinted.helps().to_vec();
    }
    if let Some(err) = err.downcast_ref::<crate::config::ConfigFileError>() {
        return err.help();
    }
    if let Some(err) = err.downcast_ref::<crate::lifecycle::LoadError>() {
        return err.help();
    }
    if let Some(err) = err.downcast_ref::<crate::lifecycle::LifecycleError>() {
        return err.help();
    }
    if let Some(err) = err.downcast_ref::<crate::registry::LookupError>() {
        return err.help();
    }
    if let Some(err) = err.downcast_ref::<crate::registry::RegistryError>() {
        return err.help();
    }
    if let Some(err) = err.downcast_ref::<crate::host::AdminError>() {
        return err.help();
    }
    Vec::new()
}
