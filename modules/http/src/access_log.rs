//! The access log: one `http.access` line per request, written at a cost small next to the
//! request itself.
//!
//! Going through `tracing`'s formatter cost about 3.5 µs per line (field visitors, a fresh
//! buffer and a channel message per line, a write per line), and with it on the host kept
//! 57% of plain hyper's requests/s. So `tracing` only decides whether the line is wanted
//! (`XBUILD_LOG` still filters the `http.access` target), and the line is formatted here,
//! straight into the batch of the host's log writer (`xbuild_core::log_writer`, which the
//! host's own log lines go through too, so both keep their order). The format is the
//! host's (text, or JSON lines under `XBUILD_LOG_FORMAT=json`), so the lines read like the
//! host's other log lines.

use std::cell::RefCell;
use std::io::Write;
use std::net::SocketAddr;
use std::sync::OnceLock;
use std::time::{Duration, SystemTime};

/// One request's line.
pub(crate) struct AccessLine<'a> {
    pub server: &'a str,
    pub route: &'a str,
    pub request_id: crate::RequestId,
    pub remote: &'a RemoteText,
    pub method: &'a str,
    /// `-` when the request could not be parsed.
    pub uri: Option<&'a http::Uri>,
    /// [`NO_STATUS`] when the server does not know what the client was answered.
    pub status: u16,
    pub duration: Duration,
    /// Why a streamed response ended short.
    pub error: Option<&'a str>,
}

/// The status of a request whose answer the server does not know (one the HTTP/2 layer
/// refused or reset on its own): written `-` (`null` in JSON).
pub(crate) const NO_STATUS: u16 = 0;

/// Whether the host's log filter lets `http.access` lines through. Asked once: the host
/// sets its filter before any app starts and does not change it, and asking `tracing`
/// each time cost about 200 instructions a request.
pub(crate) fn enabled() -> bool {
    static ENABLED: OnceLock<bool> = OnceLock::new();
    *ENABLED.get_or_init(|| tracing::enabled!(target: "http.access", tracing::Level::INFO))
}

/// A client address as the log writes it, formatted once per connection rather than once
/// per request.
#[derive(Clone, Copy)]
pub(crate) struct RemoteText {
    len: u8,
    // `[ffff:...:ffff%4294967295]:65535` is 58 bytes.
    bytes: [u8; 64],
}

impl RemoteText {
    pub fn new(addr: SocketAddr) -> Self {
        let mut text = Vec::with_capacity(64);
        write_addr(&mut text, addr);
        let mut bytes = [0; 64];
        let len = text.len().min(64);
        bytes[..len].copy_from_slice(&text[..len]);
        Self {
            len: len as u8,
            bytes,
        }
    }

    fn as_bytes(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }
}

/// Formats `line` and queues it for writing.
pub(crate) fn log(line: &AccessLine<'_>) {
    Started::new(
        line.server,
        line.request_id,
        line.remote,
        line.method,
        line.uri,
    )
    .finish(line.route, line.status, line.duration, line.error);
}

/// A request's line, begun when the request arrives: what is known then (all but the
/// time, route, status, duration and error) is formatted at once into a buffer reused
/// across requests. Keeping the request's method, target and address for the end instead
/// cost a box, a clone of the URI and their drops per request. The line is one pointer (the
/// request's future, which hyper moves several times, stays small), to a box taken from a
/// per-thread pool and given back when the line is written.
pub(crate) struct Started(Box<Line>);

struct Line {
    /// `server=S route= request_id=... uri=U` (or the JSON fields), the route left out.
    fields: Vec<u8>,
    /// Where the route goes in `fields`.
    route_at: usize,
    /// JSON lines (`XBUILD_LOG_FORMAT=json`), else text.
    json: bool,
}

impl Started {
    pub(crate) fn new(
        server: &str,
        request_id: crate::RequestId,
        remote: &RemoteText,
        method: &str,
        uri: Option<&http::Uri>,
    ) -> Started {
        Self::formatted(json_format(), server, request_id, remote, method, uri)
    }

    fn formatted(
        json: bool,
        server: &str,
        request_id: crate::RequestId,
        remote: &RemoteText,
        method: &str,
        uri: Option<&http::Uri>,
    ) -> Started {
        let mut line = take_line();
        line.json = json;
        let fields = &mut line.fields;
        let route_at;
        if json {
            fields.extend_from_slice(br#""server":"#);
            json_string(fields, server);
            fields.extend_from_slice(br#","route":"#);
            route_at = fields.len();
            fields.extend_from_slice(br#","request_id":""#);
            fields.extend_from_slice(&request_id.hex());
            fields.extend_from_slice(br#"","remote":""#);
            fields.extend_from_slice(remote.as_bytes());
            fields.extend_from_slice(br#"","method":"#);
            json_string(fields, method);
            fields.extend_from_slice(br#","uri":""#);
            write_uri(fields, uri, json_inner);
            fields.push(b'"');
        } else {
            fields.extend_from_slice(b"server=");
            escape_text(fields, server);
            fields.extend_from_slice(b" route=");
            route_at = fields.len();
            fields.extend_from_slice(b" request_id=");
            fields.extend_from_slice(&request_id.hex());
            fields.extend_from_slice(b" remote=");
            fields.extend_from_slice(remote.as_bytes());
            fields.extend_from_slice(b" method=");
            escape_text(fields, method);
            fields.extend_from_slice(b" uri=");
            write_uri(fields, uri, escape_text);
        }
        line.route_at = route_at;
        Started(line)
    }

    /// Completes the line with the route that answered and queues it for writing.
    pub(crate) fn finish(self, route: &str, status: u16, duration: Duration, error: Option<&str>) {
        let now = SystemTime::now();
        // Formatted straight into the queue: the writer thread holds its lock only to swap
        // buffers, and a line formatted apart first cost a copy more.
        xbuild_core::log_writer::queue_with(|out| {
            self.complete(out, now, route, status, duration, error);
        });
        give_back(self.0);
    }

    /// The whole line, at time `now`, into `out`.
    fn complete(
        &self,
        out: &mut Vec<u8>,
        now: SystemTime,
        route: &str,
        status: u16,
        duration: Duration,
        error: Option<&str>,
    ) {
        let mut digits = itoa::Buffer::new();
        let duration = digits.format(micros(duration)).as_bytes();
        let line = &self.0;
        if line.json {
            out.extend_from_slice(br#"{"timestamp":""#);
            write_timestamp(out, now);
            out.extend_from_slice(br#"","level":"INFO","fields":{"message":"request","#);
            out.extend_from_slice(&line.fields[..line.route_at]);
            json_string(out, route);
            out.extend_from_slice(&line.fields[line.route_at..]);
            out.extend_from_slice(br#","status":"#);
            write_status(out, status, b"null");
            out.extend_from_slice(br#","duration_us":"#);
            out.extend_from_slice(duration);
            if let Some(error) = error {
                out.extend_from_slice(br#","error":"#);
                json_string(out, error);
            }
            out.extend_from_slice(b"},\"target\":\"http.access\"}\n");
        } else {
            write_timestamp(out, now);
            out.extend_from_slice(b"  INFO http.access: request ");
            out.extend_from_slice(&line.fields[..line.route_at]);
            escape_text(out, route);
            out.extend_from_slice(&line.fields[line.route_at..]);
            out.extend_from_slice(b" status=");
            write_status(out, status, b"-");
            out.extend_from_slice(b" duration_us=");
            out.extend_from_slice(duration);
            if let Some(error) = error {
                out.extend_from_slice(b" error=");
                escape_text(out, error);
            }
            out.push(b'\n');
        }
    }
}

/// Lines kept for reuse, per thread. (A line dropped unwritten, which no path does, is
/// simply freed.)
const POOLED: usize = 256;

thread_local! {
    // The boxes themselves are what is reused: a line is handed out as one.
    #[allow(clippy::vec_box)]
    static POOL: RefCell<Vec<Box<Line>>> = const { RefCell::new(Vec::new()) };
}

fn take_line() -> Box<Line> {
    POOL.try_with(|pool| pool.borrow_mut().pop())
        .ok()
        .flatten()
        .map(|mut line| {
            line.fields.clear();
            line
        })
        .unwrap_or_else(|| {
            Box::new(Line {
                fields: Vec::with_capacity(256),
                route_at: 0,
                json: false,
            })
        })
}

fn give_back(line: Box<Line>) {
    // A buffer a huge URI grew is not kept.
    if line.fields.capacity() > 4096 {
        return;
    }
    let _ = POOL.try_with(|pool| {
        let mut pool = pool.borrow_mut();
        if pool.len() < POOLED {
            pool.push(line);
        }
    });
}

/// Writes out every queued line; the app calls it when it stops, so no line is lost at exit.
pub(crate) fn flush() {
    xbuild_core::log_writer::flush();
}

fn json_format() -> bool {
    // The host's convention (xbuild-core's logging setup reads the same variable).
    static JSON: OnceLock<bool> = OnceLock::new();
    *JSON.get_or_init(|| std::env::var("XBUILD_LOG_FORMAT").as_deref() == Ok("json"))
}

fn write_status(out: &mut Vec<u8>, status: u16, unknown: &[u8]) {
    match status {
        NO_STATUS => out.extend_from_slice(unknown),
        status => out.extend_from_slice(itoa::Buffer::new().format(status).as_bytes()),
    }
}

/// `2026-11-26T13:32:59.123456Z`. The part up to the seconds is formatted once a second
/// per thread (by humantime) and reused: most lines share it.
fn write_timestamp(out: &mut Vec<u8>, now: SystemTime) {
    thread_local! {
        static SECOND: RefCell<(u64, Vec<u8>)> = const { RefCell::new((u64::MAX, Vec::new())) };
    }
    let since_epoch = now
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default();
    let second = since_epoch.as_secs();
    SECOND.with_borrow_mut(|(cached, prefix)| {
        if *cached != second {
            prefix.clear();
            let whole = SystemTime::UNIX_EPOCH + Duration::from_secs(second);
            let _ = write!(prefix, "{}", humantime::format_rfc3339_seconds(whole));
            // `...:59Z` -> `...:59.`
            prefix.pop();
            prefix.push(b'.');
            *cached = second;
        }
        out.extend_from_slice(prefix);
    });
    let micros = since_epoch.subsec_micros();
    let mut digits = itoa::Buffer::new();
    let digits = digits.format(micros);
    out.extend(std::iter::repeat_n(b'0', 6 - digits.len()));
    out.extend_from_slice(digits.as_bytes());
    out.push(b'Z');
}

/// `127.0.0.1:4000` or `[::1]:4000`; IPv4 without going through `fmt`.
fn write_addr(out: &mut Vec<u8>, addr: SocketAddr) {
    match addr {
        SocketAddr::V4(v4) => {
            let mut digits = itoa::Buffer::new();
            for (i, octet) in v4.ip().octets().into_iter().enumerate() {
                if i > 0 {
                    out.push(b'.');
                }
                out.extend_from_slice(digits.format(octet).as_bytes());
            }
            out.push(b':');
            out.extend_from_slice(digits.format(v4.port()).as_bytes());
        }
        SocketAddr::V6(_) => {
            let _ = write!(out, "{addr}");
        }
    }
}

fn micros(duration: Duration) -> u64 {
    u64::try_from(duration.as_micros()).unwrap_or(u64::MAX)
}

/// `text` as a JSON string, escaped for a terminal too (as in text lines).
fn json_string(out: &mut Vec<u8>, text: &str) {
    out.push(b'"');
    json_inner(out, text);
    out.push(b'"');
}

/// `text` escaped for a terminal, then for inside a JSON string.
fn json_inner(out: &mut Vec<u8>, text: &str) {
    if text
        .bytes()
        .all(|b| b.is_ascii_graphic() && b != b'"' && b != b'\\')
    {
        out.extend_from_slice(text.as_bytes());
        return;
    }
    let mut escaped = Vec::new();
    escape_text(&mut escaped, text);
    let escaped = String::from_utf8(escaped).expect("escaping keeps UTF-8");
    let json = serde_json::to_string(&escaped).expect("a string always serializes");
    out.extend_from_slice(&json.as_bytes()[1..json.len() - 1]);
}

/// A request target as the log writes it: without userinfo (`user:pass@` of an
/// absolute-form target is a credential, not a host), each part through `escape`.
fn write_uri(out: &mut Vec<u8>, uri: Option<&http::Uri>, escape: impl Fn(&mut Vec<u8>, &str)) {
    let Some(uri) = uri else {
        out.push(b'-');
        return;
    };
    if let Some(scheme) = uri.scheme_str() {
        escape(out, scheme);
        out.extend_from_slice(b"://");
    }
    if let Some(authority) = uri.authority() {
        let host = authority
            .as_str()
            .rsplit_once('@')
            .map_or(authority.as_str(), |(_, host)| host);
        escape(out, host);
    }
    escape(out, uri.path_and_query().map_or("", |p| p.as_str()));
}

/// `text` with control, bidirectional formatting and invisible characters written as
/// `\u{...}`, so a log viewer shows what was sent rather than obeying, reordering or hiding
/// it (U+2028 and U+2029 end lines in some viewers, zero-width ones hide text), and with
/// spaces escaped too so each `key=value` of a text line stays one word.
fn escape_text(out: &mut Vec<u8>, text: &str) {
    if text.bytes().all(|b| b.is_ascii_graphic()) {
        out.extend_from_slice(text.as_bytes());
        return;
    }
    for c in text.chars() {
        if hidden(c) || c == ' ' {
            let _ = write!(out, "\\u{{{:04x}}}", c as u32);
        } else {
            let mut utf8 = [0; 4];
            out.extend_from_slice(c.encode_utf8(&mut utf8).as_bytes());
        }
    }
}

/// Whether `c` is a control character or one a viewer hides, reorders text with or breaks
/// a line at: Unicode's format characters (category Cf) that matter here, and the line and
/// paragraph separators.
pub(crate) fn hidden(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{00AD}'
                | '\u{061C}'
                | '\u{180E}'
                | '\u{200B}'..='\u{200F}'
                | '\u{2028}'..='\u{202E}'
                | '\u{2060}'..='\u{2064}'
                | '\u{2066}'..='\u{206F}'
                | '\u{FEFF}'
                | '\u{FFF9}'..='\u{FFFB}'
        )
}

/// `text` for an error message: what [`hidden`] would hide written as `\u{...}`, so the
/// reader sees every character of what was given.
pub(crate) fn visible(text: &str) -> std::borrow::Cow<'_, str> {
    if !text.chars().any(hidden) {
        return text.into();
    }
    text.chars()
        .map(|c| {
            if hidden(c) {
                format!("\\u{{{:04x}}}", c as u32)
            } else {
                c.to_string()
            }
        })
        .collect::<String>()
        .into()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(uri: &str) -> String {
        let uri: http::Uri = uri.parse().unwrap();
        let line = AccessLine {
            server: "main",
            route: "api",
            request_id: crate::RequestId(0xfe),
            remote: &RemoteText::new("127.0.0.1:4000".parse().unwrap()),
            method: "GET",
            uri: Some(&uri),
            status: 200,
            duration: Duration::from_micros(1234),
            error: None,
        };
        let at = SystemTime::UNIX_EPOCH + Duration::from_micros(1_790_000_000_123_456);
        let format = |json: bool| {
            let started = Started::formatted(
                json,
                line.server,
                line.request_id,
                line.remote,
                line.method,
                line.uri,
            );
            let mut out = Vec::new();
            started.complete(
                &mut out,
                at,
                line.route,
                line.status,
                line.duration,
                line.error,
            );
            out
        };
        let text = format(false);
        let json = format(true);
        let json: serde_json::Value = serde_json::from_slice(&json).expect("one JSON object");
        let text = String::from_utf8(text).unwrap();
        let start = text.find(" uri=").unwrap() + 5;
        let end = text.find(" status=").unwrap();
        // Both formats escape the target alike (JSON's own escapes aside).
        assert_eq!(json["fields"]["uri"].as_str().unwrap(), &text[start..end]);
        assert_eq!(json["fields"]["status"], 200);
        assert_eq!(json["target"], "http.access");
        text
    }

    #[test]
    fn a_line_has_every_field_in_the_hosts_shape() {
        assert_eq!(
            line("/a/b?q=1"),
            "2026-09-21T14:13:20.123456Z  INFO http.access: request server=main route=api \
             request_id=00000000000000fe remote=127.0.0.1:4000 method=GET uri=/a/b?q=1 \
             status=200 duration_us=1234\n"
        );
    }

    #[test]
    fn timestamps_and_addresses_are_written_as_std_and_humantime_would() {
        for micros in [
            0u64,
            1,
            999_999,
            1_790_000_000_123_456,
            1_790_000_001_000_007,
        ] {
            let at = SystemTime::UNIX_EPOCH + Duration::from_micros(micros);
            let mut out = Vec::new();
            write_timestamp(&mut out, at);
            assert_eq!(
                String::from_utf8(out).unwrap(),
                humantime::format_rfc3339_micros(at).to_string()
            );
        }
        for addr in [
            "127.0.0.1:4000",
            "10.200.3.4:65535",
            "[::1]:8080",
            "[ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff%4294967295]:65535",
        ] {
            let mut out = Vec::new();
            write_addr(&mut out, addr.parse().unwrap());
            assert_eq!(out, addr.as_bytes());
            assert_eq!(
                RemoteText::new(addr.parse().unwrap()).as_bytes(),
                addr.as_bytes()
            );
        }
    }

    #[test]
    fn the_log_drops_userinfo_and_escapes_what_a_terminal_would_obey() {
        assert!(
            line("http://user:secret@site.example:8080/x")
                .contains(" uri=http://site.example:8080/x ")
        );
        let text = "/a\u{202E}txt.exe\x1b[2J";
        let mut out = Vec::new();
        escape_text(&mut out, text);
        assert_eq!(out, b"/a\\u{202e}txt.exe\\u{001b}[2J");
        // Line separators and zero-width characters are shown, not obeyed or hidden.
        let mut out = Vec::new();
        escape_text(&mut out, "/a\u{2028}b\u{200b}c\u{feff}d\u{e9}");
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "/a\\u{2028}b\\u{200b}c\\u{feff}d\u{e9}"
        );
        let mut json = Vec::new();
        json_string(&mut json, "a\"b");
        assert_eq!(json, br#""a\"b""#);
    }
}
