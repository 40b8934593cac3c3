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
        format!("invalid header name `{name}`: use letters, digits and `-`, e.g. `X-Frame-Options`")
    })
}

/// Parses a header value from config, naming it in the error.
pub(crate) fn header_value(name: &str, value: &str) -> Result<HeaderValue, String> {
    HeaderValue::from_str(value).map_err(|_| {
        format!("invalid value `{value}` for header `{name}`: header values are visible ASCII without line breaks")
    })
}
