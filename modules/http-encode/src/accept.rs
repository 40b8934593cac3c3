//! Content negotiation on `Accept-Encoding` (RFC 9110, section 12.5.3): which of the
//! encodings the server offers the client prefers, if any over identity.

use xbuild_http::http::HeaderMap;
use xbuild_http::http::header::ACCEPT_ENCODING;

/// A content coding the handler can produce.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Encoding {
    Zstd,
    Brotli,
    Gzip,
}

impl Encoding {
    pub(crate) const ALL: [Encoding; 3] = [Encoding::Zstd, Encoding::Brotli, Encoding::Gzip];

    /// The token in `Accept-Encoding`, `Content-Encoding` and the config.
    pub(crate) fn token(self) -> &'static str {
        match self {
            Encoding::Zstd => "zstd",
            Encoding::Brotli => "br",
            Encoding::Gzip => "gzip",
        }
    }

    fn from_token(token: &str) -> Option<Self> {
        Encoding::ALL
            .into_iter()
            .find(|e| token.eq_ignore_ascii_case(e.token()))
            // RFC 9110 8.4.1.3: a recipient should treat `x-gzip` as `gzip`.
            .or_else(|| {
                token
                    .eq_ignore_ascii_case("x-gzip")
                    .then_some(Encoding::Gzip)
            })
    }

    fn index(self) -> usize {
        self as usize
    }

    /// Parses a config entry.
    pub(crate) fn from_config(token: &str) -> Option<Self> {
        Encoding::ALL.into_iter().find(|e| e.token() == token)
    }
}

/// Which of `offered` (in the server's order of preference) to answer with, for a request
/// with `headers`: the one with the highest q-value the client gives it (explicitly or
/// through `*`), the earlier in `offered` on a tie; `None` when the client accepts none of
/// them, weighs identity above the best of them, or sent no `Accept-Encoding` at all.
pub(crate) fn choose(headers: &HeaderMap, offered: &[Encoding]) -> Option<Encoding> {
    // q-values in thousandths, as given: per encoding, for `*`, for `identity`.
    let mut explicit: [Option<u16>; 3] = [None; 3];
    let mut star = None;
    let mut identity = None;
    let mut any = false;
    for value in headers.get_all(ACCEPT_ENCODING) {
        let Ok(value) = value.to_str() else { continue };
        for item in value.split(',') {
            let mut parts = item.split(';');
            let coding = parts.next().unwrap_or_default().trim();
            if coding.is_empty() {
                continue;
            }
            let mut q = Some(1000);
            for param in parts {
                if let Some((name, value)) = param.split_once('=')
                    && name.trim().eq_ignore_ascii_case("q")
                {
                    q = parse_q(value.trim());
                }
            }
            // An entry with a malformed weight is ignored, not guessed at.
            let Some(q) = q else { continue };
            any = true;
            let slot = if coding == "*" {
                &mut star
            } else if coding.eq_ignore_ascii_case("identity") {
                &mut identity
            } else if let Some(encoding) = Encoding::from_token(coding) {
                &mut explicit[encoding.index()]
            } else {
                continue;
            };
            // Listed twice: the higher weight counts.
            *slot = Some(slot.map_or(q, |old: u16| old.max(q)));
        }
    }
    if !any {
        return None;
    }
    let mut best: Option<(Encoding, u16)> = None;
    for &encoding in offered {
        let q = explicit[encoding.index()].or(star).unwrap_or(0);
        if q > 0 && best.is_none_or(|(_, best_q)| q > best_q) {
            best = Some((encoding, q));
        }
    }
    // Identity is always acceptable unless excluded (RFC 9110 12.5.3), but it only
    // competes when the client weighs it, by name or through `*`: `gzip;q=0.5` alone
    // still asks for gzip.
    let identity = identity.or(star).unwrap_or(0);
    best.filter(|&(_, q)| q >= identity).map(|(e, _)| e)
}

/// A q-value (`0`, `0.5`, `1.000`; at most three decimals, at most 1) in thousandths.
fn parse_q(text: &str) -> Option<u16> {
    let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
    if fraction.len() > 3 || !fraction.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let fraction: u16 = format!("{fraction:0<3}").parse().ok()?;
    match whole {
        "0" => Some(fraction),
        "1" if fraction == 0 => Some(1000),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use xbuild_http::http::HeaderValue;

    const ALL: &[Encoding] = &Encoding::ALL;

    fn pick(accept: &[&str], offered: &[Encoding]) -> Option<&'static str> {
        let mut headers = HeaderMap::new();
        for value in accept {
            headers.append(ACCEPT_ENCODING, HeaderValue::from_str(value).unwrap());
        }
        choose(&headers, offered).map(Encoding::token)
    }

    #[test]
    fn the_highest_weight_wins_and_the_server_order_breaks_ties() {
        let cases: &[(&[&str], Option<&str>)] = &[
            (&["gzip, deflate, br, zstd"], Some("zstd")),
            (&["gzip;q=0.5, br;q=1"], Some("br")),
            (&["gzip;q=0.5, br;q=0.4"], Some("gzip")),
            (&["br, gzip"], Some("br")),
            (&["GZIP"], Some("gzip")),
            (&["x-gzip"], Some("gzip")),
            (&["gzip;q=0"], None),
            (&["gzip;q=0, *"], Some("zstd")),
            (&["*;q=0.1, br;q=0"], Some("zstd")),
            (&["*"], Some("zstd")),
            (&["identity"], None),
            (&["identity;q=1, gzip;q=0.5"], None),
            (&["identity;q=0.5, gzip;q=0.5"], Some("gzip")),
            (&["gzip;q=0.5, *;q=0.6"], Some("zstd")),
            (&["gzip;q=0.5, identity;q=0.6"], None),
            (&["deflate, compress"], None),
            (&[""], None),
            (&[], None),
            // Two header lines are one list.
            (&["gzip;q=0.2", "br;q=0.3"], Some("br")),
            // A malformed weight drops its entry only.
            (&["br;q=2, gzip"], Some("gzip")),
            (&["br;q=0.1234, gzip;q=0.001"], Some("gzip")),
            (&["gzip ; Q=0.800 , zstd;q=0.7"], Some("gzip")),
        ];
        for (accept, expected) in cases {
            assert_eq!(pick(accept, ALL), *expected, "{accept:?}");
        }
        // The config's order, not the client's, breaks a tie.
        let gzip_first = [Encoding::Gzip, Encoding::Brotli];
        assert_eq!(pick(&["br, gzip"], &gzip_first), Some("gzip"));
        assert_eq!(pick(&["zstd"], &gzip_first), None);
    }

    #[test]
    fn q_values_parse_as_the_grammar_says() {
        for (text, q) in [
            ("1", Some(1000)),
            ("1.", Some(1000)),
            ("1.000", Some(1000)),
            ("0", Some(0)),
            ("0.5", Some(500)),
            ("0.05", Some(50)),
            ("0.123", Some(123)),
            ("1.001", None),
            ("0.1234", None),
            ("2", None),
            (".5", None),
            ("-0", None),
            ("0.x", None),
            ("", None),
        ] {
            assert_eq!(parse_q(text), q, "{text}");
        }
    }
}
