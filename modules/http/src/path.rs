//! The one normalisation a request path gets before anything looks at it: matchers,
//! file_server and reverse_proxy all see the same cleaned path, so a route that denies
//! `/admin/*` cannot be walked around with `//admin`, `/./admin`, `/%2e/admin` or
//! `/x/../admin` (Caddy cleans the path before matching for the same reason).
//!
//! Cleaning: percent-escapes of unreserved characters (RFC 3986: letters, digits, `-`, `.`,
//! `_`, `~`) are decoded once, other escapes are kept with upper-case hex; empty and `.`
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

/// Decodes `%XX` escapes of unreserved characters; keeps others, hex upper-cased.
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
        out.push(bytes[i]);
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
            ("/100%", "/100%"),
            ("/%zz", "/%zz"),
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
}
