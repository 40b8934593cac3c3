//! The one normalisation a request path gets before anything looks at it: matchers,
//! file_server and reverse_proxy all see the same cleaned path, so a route that denies
//! `/admin/*` cannot be walked around with `//admin`, `/./admin`, `/%2e/admin` or
//! `/x/../admin` (Caddy cleans the path before matching for the same reason).
//!
//! Cleaning: percent-escapes of unreserved characters (RFC 3986: letters, digits, `-`, `.`,
//! `_`, `~`) are decoded once, other escapes are kept with upper-case hex, and a `%` that
//! starts no escape is written `%25`; empty and `.`
//! segments are dropped; `..` removes the segment before it and never climbs above the root;
//! a trailing slash is kept. The result starts with `/`.

use std::borrow::Cow;

/// The request's path before cleaning, kept in the request's extensions for a handler
/// whose config asks for the raw form.
#[derive(Debug, Clone)]
pub struct RawPath(pub String);

/// The cleaned form of `raw` (a URI path, without query); borrowed when already clean.
pub fn clean(raw: &str) -> Cow<'_, str> {
    if is_clean(raw) {
        return Cow::Borrowed(raw);
    }
    let decoded = decode_unreserved(raw);
    let mut segments: Vec<&str> = Vec::new();
    for segment in decoded.split('/') {
        match segment {
            "" | "." => {}
            ".." => {
                segments.pop();
            }
            other => segments.push(other),
        }
    }
    let last = decoded.rsplit('/').next().unwrap_or("");
    let trailing_slash =
        (decoded.ends_with('/') || last == "." || last == "..") && !segments.is_empty();
    let mut cleaned = String::with_capacity(decoded.len());
    for segment in &segments {
        cleaned.push('/');
        cleaned.push_str(segment);
    }
    if cleaned.is_empty() || trailing_slash {
        cleaned.push('/');
    }
    Cow::Owned(cleaned)
}

/// Whether `raw` needs no work: starts with `/`, no escapes, no empty, `.` or `..` segment
/// (a trailing slash is fine). The common case, checked without allocating.
fn is_clean(raw: &str) -> bool {
    if !raw.starts_with('/') || raw.contains('%') {
        return false;
    }
    let inner = raw[1..].strip_suffix('/').unwrap_or(&raw[1..]);
    raw == "/" || inner.split('/').all(|s| !matches!(s, "" | "." | ".."))
}

fn is_unreserved(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~')
}

/// Decodes `%XX` escapes of unreserved characters; keeps others, hex upper-cased. A `%`
/// that starts no escape becomes `%25`: left bare, a decoded character after it could
/// complete a new escape (`%2%65` would turn into `%2e`, a `.` to whoever decodes next).
fn decode_unreserved(raw: &str) -> String {
    let bytes = raw.as_bytes();
    let mut out: Vec<u8> = Vec::with_capacity(raw.len() + 1);
    if !raw.starts_with('/') {
        out.push(b'/');
    }
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let (Some(high), Some(low)) = (hex(bytes[i + 1]), hex(bytes[i + 2]))
        {
            let byte = high * 16 + low;
            if is_unreserved(byte) {
                out.push(byte);
            } else {
                out.extend([
                    b'%',
                    bytes[i + 1].to_ascii_uppercase(),
                    bytes[i + 2].to_ascii_uppercase(),
                ]);
            }
            i += 3;
            continue;
        }
        if bytes[i] == b'%' {
            out.extend(b"%25");
        } else {
            out.push(bytes[i]);
        }
        i += 1;
    }
    // Only ASCII was decoded, everything else copied byte for byte from a `str`.
    String::from_utf8(out).expect("still UTF-8")
}

fn hex(digit: u8) -> Option<u8> {
    (digit as char).to_digit(16).map(|d| d as u8)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cleans_the_forms_that_walk_around_a_route() {
        for (raw, cleaned) in [
            ("/", "/"),
            ("/a/b", "/a/b"),
            ("/a/b/", "/a/b/"),
            ("//admin/x", "/admin/x"),
            ("/./admin/x", "/admin/x"),
            ("/%2e/admin/x", "/admin/x"),
            ("/%2E%2E/admin/x", "/admin/x"),
            ("/foo/../admin/x", "/admin/x"),
            ("/foo/%2e%2e/admin/x", "/admin/x"),
            ("/../../etc/passwd", "/etc/passwd"),
            ("/a/b/..", "/a/"),
            ("/a/.", "/a/"),
            ("/..", "/"),
            ("", "/"),
            ("/%61dmin", "/admin"),
            ("/a%2fb", "/a%2Fb"),
            ("/a%2F..%2Fb", "/a%2F..%2Fb"),
            ("/caf%C3%A9", "/caf%C3%A9"),
            ("/100%", "/100%25"),
            ("/%zz", "/%25zz"),
            ("/%2%65", "/%252e"),
            ("/foo/%2%65%2%65/admin", "/foo/%252e%252e/admin"),
            ("/a//b///c", "/a/b/c"),
        ] {
            assert_eq!(clean(raw), cleaned, "{raw:?}");
        }
    }

    #[test]
    fn clean_paths_are_not_copied() {
        assert!(matches!(clean("/api/v1/users/"), Cow::Borrowed(_)));
        assert!(matches!(clean("/"), Cow::Borrowed(_)));
    }

    #[test]
    fn cleaning_is_idempotent_and_stays_under_the_root() {
        let pieces = ["a", ".", "..", "", "%2e", "%2E%2e", "%2f", "b%41", "~", "%"];
        // Every path of up to four of these segments.
        let mut paths = vec![String::new()];
        for _ in 0..4 {
            let mut longer = Vec::new();
            for path in &paths {
                for piece in pieces {
                    longer.push(format!("{path}/{piece}"));
                }
            }
            paths.extend(longer);
        }
        for path in paths {
            let once = clean(&path).into_owned();
            assert_eq!(clean(&once), once, "{path:?} -> {once:?}");
            assert!(once.starts_with('/'), "{path:?} -> {once:?}");
            assert!(
                !once.split('/').any(|s| s == ".." || s == "."),
                "{path:?} -> {once:?}"
            );
        }
    }

    mod properties {
        use super::super::clean;
        use http::uri::PathAndQuery;
        use proptest::prelude::*;

        /// One path segment, biased towards the forms that matter to cleaning: dot segments
        /// and their escapes, escapes that decode (`%41`) or stay (`%2F`), stray `%` and hex
        /// digits that could pair up with one, and arbitrary text. Segments are glued from
        /// up to three such pieces, so `%` + `%32` + `e` can meet.
        fn segment() -> impl Strategy<Value = String> {
            let piece = prop::sample::select(vec![
                "", ".", "..", "%2e", "%2E", "%2e%2e", "%2E%2e", "a", "b", "%41", "%2F", "%2f",
                "%25", "~", "%7e", "%", "%2", "%3", "%32", "%65", "2", "e", "café", "%C3%A9", "☃",
                "?", "#",
            ]);
            prop_oneof![
                4 => prop::collection::vec(piece, 1..4).prop_map(|pieces| pieces.concat()),
                1 => "[a-zA-Z0-9%./~_-]{1,6}",
                1 => "\\PC{1,3}",
            ]
        }

        /// A path of such segments, with or without the leading and trailing slash.
        fn path() -> impl Strategy<Value = String> {
            (
                any::<bool>(),
                prop::collection::vec(segment(), 0..8),
                any::<bool>(),
            )
                .prop_map(|(lead, segments, trail)| {
                    let mut path = segments.join("/");
                    if lead {
                        path.insert(0, '/');
                    }
                    if trail {
                        path.push('/');
                    }
                    path
                })
        }

        /// Checks what every cleaned path must be; `Err` says what is wrong.
        fn check(raw: &str) -> Result<String, TestCaseError> {
            let once = clean(raw).into_owned();
            let twice = clean(&once);
            prop_assert_eq!(twice.as_ref(), once.as_str(), "not idempotent: {:?}", raw);
            prop_assert!(once.starts_with('/'), "{:?} -> {:?}", raw, once);
            // Every segment but a trailing empty one is a real name.
            let segments: Vec<&str> = once[1..].split('/').collect();
            let (last, inner) = segments.split_last().expect("split yields one item");
            for segment in inner {
                prop_assert!(
                    !matches!(*segment, "" | "." | ".."),
                    "segment {:?} survives: {:?} -> {:?}",
                    segment,
                    raw,
                    once
                );
            }
            prop_assert!(
                !matches!(*last, "." | ".."),
                "last segment {:?} survives: {:?} -> {:?}",
                last,
                raw,
                once
            );
            // No escape of an unreserved character is left over, so nothing after us can
            // decode one more `.` (or letter) out of the cleaned path.
            let bytes = once.as_bytes();
            let mut i = 0;
            while i < bytes.len() {
                if bytes[i] == b'%'
                    && i + 2 < bytes.len()
                    && bytes[i + 1..i + 3].iter().all(u8::is_ascii_hexdigit)
                {
                    let escape = &once[i + 1..i + 3];
                    let byte = u8::from_str_radix(escape, 16).expect("two hex digits");
                    prop_assert!(
                        !(byte.is_ascii_alphanumeric() || b"-._~".contains(&byte)),
                        "escape %{} of an unreserved character survives: {:?} -> {:?}",
                        escape,
                        raw,
                        once
                    );
                    i += 3;
                    continue;
                }
                i += 1;
            }
            Ok(once)
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(256))]

            #[test]
            fn cleaned_paths_are_stable_and_stay_under_the_root(raw in path()) {
                check(&raw)?;
            }

            #[test]
            fn arbitrary_text_cleans_safely(raw in "\\PC{0,40}") {
                check(&raw)?;
            }

            #[test]
            fn dot_escapes_clean_like_dots(
                prefix in prop::collection::vec("[a-z]{1,3}", 0..3),
                dots in prop::collection::vec(
                    prop::sample::select(vec![".", "%2e", "%2E"]), 1..4),
                rest in prop::collection::vec("[a-z]{1,3}", 0..3),
            ) {
                let raw = format!("/{}/{}/{}", prefix.join("/"), dots.concat(), rest.join("/"));
                let cleaned = check(&raw)?;
                // However the dots are written, `.` is dropped, `..` removes the segment
                // before it and `...` is an ordinary name.
                let mut kept = prefix.clone();
                match dots.len() {
                    1 => {}
                    2 => {
                        kept.pop();
                    }
                    _ => kept.push("...".to_owned()),
                }
                kept.extend(rest.iter().cloned());
                let mut expected = format!("/{}", kept.join("/"));
                if rest.is_empty() && !kept.is_empty() {
                    expected.push('/');
                }
                prop_assert_eq!(cleaned, expected, "{:?}", raw);
            }

            #[test]
            fn request_paths_stay_valid_request_paths(raw in "[\\x21-\\x7e]{0,40}") {
                if let Ok(parsed) = raw.parse::<PathAndQuery>() {
                    let cleaned = check(parsed.path())?;
                    let reparsed: PathAndQuery = cleaned
                        .parse()
                        .map_err(|e| TestCaseError::fail(format!("{raw:?} -> {cleaned:?}: {e}")))?;
                    prop_assert_eq!(reparsed.path(), cleaned.as_str());
                    prop_assert_eq!(reparsed.query(), None);
                }
            }
        }
    }
}
