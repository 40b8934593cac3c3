//! The handlers shipped with the http app, one module each under `http.handlers.*`.

pub mod file_server;
pub mod headers;
pub mod metrics;
pub mod reverse_proxy;
pub mod static_response;

use http::{HeaderName, HeaderValue};

/// Parses a header name from config, naming it in the error.
pub(crate) fn header_name(name: &str) -> Result<HeaderName, String> {
    HeaderName::from_bytes(name.as_bytes()).map_err(|_| {
        format!(
            "invalid header name `{}`: use letters, digits and `-`, e.g. `X-Frame-Options`",
            crate::access_log::visible(name)
        )
    })
}

/// [`header_name`] for a header a config sets or adds: never one that frames the message
/// (the server writes those from the bytes it sends; a configured `Content-Length: 2` on an
/// 11-byte body would make the client misread the next response on the connection).
pub(crate) fn settable_header_name(name: &str) -> Result<HeaderName, String> {
    let parsed = header_name(name)?;
    const FRAMING: [&str; 7] = [
        "content-length",
        "transfer-encoding",
        "connection",
        "keep-alive",
        "upgrade",
        "te",
        "trailer",
    ];
    if FRAMING.contains(&parsed.as_str()) {
        return Err(format!(
            "header `{name}` cannot be set from a config: it frames the message, and the server writes it from what it actually sends"
        ));
    }
    Ok(parsed)
}

/// Parses a header value from config, naming it in the error.
pub(crate) fn header_value(name: &str, value: &str) -> Result<HeaderValue, String> {
    HeaderValue::from_str(value).map_err(|_| {
        format!(
            "invalid value `{}` for header `{name}`: a header value cannot hold control characters (line breaks included)",
            crate::access_log::visible(value)
        )
    })
}
