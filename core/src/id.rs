//! Module IDs: the dotted names (`http.handlers.file_server`) that make namespaces the
//! extension points of a host. Validation lives here so every entry point agrees on it.

/// Why a module ID was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum IdError {
    /// The ID is the empty string.
    #[error("module ID is empty")]
    Empty,
    /// A leading, trailing or doubled dot.
    #[error(
        "module ID `{0}` has an empty segment (IDs look like `namespace.name`, no leading, trailing or doubled dots)"
    )]
    EmptySegment(String),
    /// A character other than lowercase ASCII letters, digits, `_` and dots.
    #[error("module ID `{id}` contains `{ch}`; use lowercase ASCII letters, digits, `_` and dots")]
    BadChar {
        /// The refused ID.
        id: String,
        /// The first character not allowed.
        ch: char,
    },
    /// A segment starting with a digit.
    #[error(
        "module ID `{0}` has a segment starting with a digit; segments start with a letter or `_`"
    )]
    LeadingDigit(String),
    /// More than [`MAX_ID_LEN`] bytes.
    #[error("module ID `{0}` is longer than {MAX_ID_LEN} characters")]
    TooLong(String),
    /// The ID is [`RESERVED_NAMESPACE`] itself or inside it.
    #[error(
        "module ID `{0}` is reserved for the host (the `xbuild` namespace belongs to xbuild-core)"
    )]
    Reserved(String),
}

/// Longest accepted ID; keeps metric labels and log lines bounded.
pub const MAX_ID_LEN: usize = 128;

/// The namespace xbuild-core keeps for itself.
pub const RESERVED_NAMESPACE: &str = "xbuild";

/// Checks the syntax of a module ID without judging reservation.
pub(crate) fn check_syntax(id: &str) -> Result<(), IdError> {
    if id.is_empty() {
        return Err(IdError::Empty);
    }
    if id.len() > MAX_ID_LEN {
        return Err(IdError::TooLong(id.to_owned()));
    }
    for segment in id.split('.') {
        let Some(first) = segment.chars().next() else {
            return Err(IdError::EmptySegment(id.to_owned()));
        };
        if first.is_ascii_digit() {
            return Err(IdError::LeadingDigit(id.to_owned()));
        }
        if let Some(ch) = segment
            .chars()
            .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_'))
        {
            return Err(IdError::BadChar {
                id: id.to_owned(),
                ch,
            });
        }
    }
    Ok(())
}

/// Checks an ID a module wants to register under: valid syntax and not reserved.
pub fn check_registrable(id: &str) -> Result<(), IdError> {
    check_syntax(id)?;
    if id == RESERVED_NAMESPACE
        || namespace_of(id) == RESERVED_NAMESPACE
        || id.starts_with("xbuild.")
    {
        return Err(IdError::Reserved(id.to_owned()));
    }
    Ok(())
}

/// The namespace of an ID: everything before the last dot (`""` for top-level IDs, which
/// are apps).
pub(crate) fn namespace_of(id: &str) -> &str {
    id.rsplit_once('.').map_or("", |(ns, _)| ns)
}

/// The last segment of an ID, the name a config file uses inside a namespace.
pub(crate) fn name_of(id: &str) -> &str {
    id.rsplit_once('.').map_or(id, |(_, name)| name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_dotted_lowercase_ids() {
        for id in ["http", "http.handlers.static_response", "a1.b_2", "_x.y"] {
            assert_eq!(check_registrable(id), Ok(()), "{id}");
        }
    }

    #[test]
    fn rejects_malformed_ids() {
        type Expect = fn(&IdError) -> bool;
        let cases: &[(&str, Expect)] = &[
            ("", |e| matches!(e, IdError::Empty)),
            (".http", |e| matches!(e, IdError::EmptySegment(_))),
            ("http.", |e| matches!(e, IdError::EmptySegment(_))),
            ("http..x", |e| matches!(e, IdError::EmptySegment(_))),
            ("Http.x", |e| matches!(e, IdError::BadChar { ch: 'H', .. })),
            ("http.x-y", |e| {
                matches!(e, IdError::BadChar { ch: '-', .. })
            }),
            ("http.x y", |e| {
                matches!(e, IdError::BadChar { ch: ' ', .. })
            }),
            ("http.é", |e| matches!(e, IdError::BadChar { .. })),
            ("http.1x", |e| matches!(e, IdError::LeadingDigit(_))),
        ];
        for (id, expected) in cases {
            let err = check_syntax(id).expect_err(id);
            assert!(expected(&err), "{id}: {err:?}");
        }
        assert!(matches!(
            check_syntax(&"a".repeat(MAX_ID_LEN + 1)),
            Err(IdError::TooLong(_))
        ));
    }

    #[test]
    fn rejects_reserved_namespace() {
        for id in ["xbuild", "xbuild.anything", "xbuild.a.b"] {
            assert!(
                matches!(check_registrable(id), Err(IdError::Reserved(_))),
                "{id}"
            );
        }
        assert_eq!(check_registrable("xbuildish.a"), Ok(()));
    }

    #[test]
    fn splits_namespace_and_name() {
        assert_eq!(namespace_of("http.handlers.file_server"), "http.handlers");
        assert_eq!(name_of("http.handlers.file_server"), "file_server");
        assert_eq!(namespace_of("http"), "");
        assert_eq!(name_of("http"), "http");
    }
}
