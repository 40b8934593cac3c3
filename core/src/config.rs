//! Config files and strict decoding. A host config is TOML or JSON (by extension); both
//! become one JSON-shaped tree so modules decode their section the same way whatever the
//! file was. Decoding is strict: a field a module does not know is an error naming it,
//! because a misspelt option silently ignored is the worst kind of config bug.

use std::path::Path;

use serde::de::DeserializeOwned;

pub use serde_json::Value;

/// A config section that could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", self.describe())]
#[non_exhaustive]
pub struct ConfigError {
    /// What was being decoded: a module ID, or `config file` for the top level.
    pub what: String,
    /// Dotted path inside that section (`routes[0].handle`), empty for the section itself.
    pub path: String,
    /// What is wrong, from serde or the strict check (`unknown field ...`).
    pub message: String,
}

impl ConfigError {
    /// An error in section `what` at `path` (empty for the section itself); see the fields.
    pub(crate) fn new(
        what: impl Into<String>,
        path: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Self {
            what: what.into(),
            path: path.into(),
            message: message.into(),
        }
    }

    fn describe(&self) -> String {
        if self.path.is_empty() || self.path == "." {
            format!("invalid config for `{}`: {}", self.what, self.message)
        } else {
            format!(
                "invalid config for `{}` at `{}`: {}",
                self.what, self.path, self.message
            )
        }
    }

    /// Whether decoding failed only because a required field was absent; the self-test
    /// uses it to tell "this module needs a config" from "this module is broken".
    pub fn is_missing_field(&self) -> bool {
        self.message.starts_with("missing field")
    }
}

impl crate::error::Diagnostic for ConfigError {
    fn help(&self) -> Vec<String> {
        if self.message.starts_with("unknown field") {
            vec![format!(
                "check its spelling against the documentation of `{}`",
                self.what
            )]
        } else if self.is_missing_field() {
            vec![format!(
                "add it to the config of `{}` (see its documentation)",
                self.what
            )]
        } else {
            Vec::new()
        }
    }
}

/// serde's message with the Rust type it expected (`expected usize`, `expected struct
/// Server`) put as a config's writer knows it (`expected a whole number, 0 or more`, `expected
/// a table`).
fn in_plain_words(message: String) -> String {
    let Some(at) = message.rfind("expected ") else {
        return message;
    };
    let expected = &message[at + "expected ".len()..];
    let plain = match expected {
        "u8" => "a whole number from 0 to 255",
        "u16" => "a whole number from 0 to 65535",
        "u32" => "a whole number from 0 to 4294967295",
        "u64" | "usize" | "u128" => "a whole number, 0 or more",
        "i8" | "i16" | "i32" | "i64" | "isize" | "i128" => "a whole number",
        "f32" | "f64" => "a number",
        "a boolean" => "`true` or `false`",
        "a sequence" => "a list (`[...]`)",
        "a map" => "a table (`{...}`)",
        _ if expected.starts_with("struct ") => "a table (`{...}`)",
        _ => return message,
    };
    format!("{}expected {plain}", &message[..at])
}

/// What a duration in a config or a flag may look like, for error messages.
const DURATION_FORMS: &str =
    "seconds (30, 0.5) or a duration such as \"30s\", \"1m30s\" or \"500ms\"";

/// Reads a duration given as text: a number of seconds (`30`, `0.5`) or a number with units
/// (`30s`, `1m30s`, `500ms`, `2h`: humantime's forms, which include Go's and so Caddy's).
/// The result is in seconds; a negative number passes through, for the caller's range
/// check to refuse with the field's limits.
pub fn parse_seconds(text: &str) -> Result<f64, String> {
    let trimmed = text.trim();
    if let Ok(seconds) = trimmed.parse::<f64>() {
        return Ok(seconds);
    }
    humantime::parse_duration(trimmed)
        .map(|duration| duration.as_secs_f64())
        .map_err(|_| {
            format!(
                "invalid duration \"{}\": give {DURATION_FORMS}",
                text.escape_default()
            )
        })
}

/// A duration field of a config, in seconds, for `#[serde(deserialize_with =
/// "xbuild_core::duration::seconds")]` on an `f64`: a number is seconds (`idle_timeout = 30`),
/// a string may carry units as Caddy's configs do (`idle_timeout = "5m"`). Check the range
/// after decoding, as for any number.
pub fn seconds<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<f64, D::Error> {
    deserializer
        .deserialize_any(SecondsVisitor)?
        .ok_or_else(|| serde::de::Error::invalid_type(serde::de::Unexpected::Unit, &SecondsVisitor))
}

/// [`seconds`] for an `Option<f64>` field (with `#[serde(default)]`): absent or `null` is
/// `None`.
pub fn optional_seconds<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<f64>, D::Error> {
    deserializer.deserialize_any(SecondsVisitor)
}

/// A duration, or `None` for `null` (which only [`optional_seconds`] accepts).
struct SecondsVisitor;

impl<'de> serde::de::Visitor<'de> for SecondsVisitor {
    type Value = Option<f64>;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(DURATION_FORMS)
    }

    fn visit_f64<E: serde::de::Error>(self, value: f64) -> Result<Self::Value, E> {
        Ok(Some(value))
    }

    fn visit_i64<E: serde::de::Error>(self, value: i64) -> Result<Self::Value, E> {
        Ok(Some(value as f64))
    }

    fn visit_u64<E: serde::de::Error>(self, value: u64) -> Result<Self::Value, E> {
        Ok(Some(value as f64))
    }

    fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<Self::Value, E> {
        parse_seconds(text).map(Some).map_err(E::custom)
    }

    fn visit_unit<E: serde::de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_none<E: serde::de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
}

/// Decodes `value` into `T`, refusing unknown fields even when `T` does not say
/// `#[serde(deny_unknown_fields)]`. `what` names the section in errors.
pub fn decode_strict<T: DeserializeOwned>(what: &str, value: Value) -> Result<T, ConfigError> {
    // A module with no config at all is written as an absent section or `{}`; let unit-like
    // types accept both.
    let value = if value.is_null() {
        Value::Object(Default::default())
    } else {
        value
    };
    let mut unknown = Vec::new();
    let mut record = |path: serde_ignored::Path<'_>| unknown.push(path.to_string());
    let ignoring = serde_ignored::Deserializer::new(value, &mut record);
    let decoded: T = serde_path_to_error::deserialize(ignoring).map_err(|err| {
        let path = err.path().to_string();
        ConfigError::new(what, path, in_plain_words(err.into_inner().to_string()))
    })?;
    if let Some(first) = unknown.first() {
        let (parent, field) = match first.rsplit_once('.') {
            Some((parent, field)) => (parent.to_owned(), field.to_owned()),
            None => (String::new(), first.clone()),
        };
        return Err(ConfigError::new(
            what,
            parent,
            format!("unknown field `{field}`"),
        ));
    }
    Ok(decoded)
}

/// A config file that could not be read or parsed.
#[derive(Debug, thiserror::Error)]
pub enum ConfigFileError {
    /// The file could not be read (missing, unreadable, not UTF-8).
    #[error("cannot read config file `{path}`: {source}")]
    Read {
        /// The file, as given.
        path: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A `.toml` file that does not parse.
    #[error("config file `{path}` is not valid TOML: {message}")]
    Toml {
        /// The file, as given.
        path: String,
        /// The parser's message, with the line and column.
        message: String,
    },
    /// A `.json` file that does not parse.
    #[error("config file `{path}` is not valid JSON: {source}")]
    Json {
        /// The file, as given.
        path: String,
        /// The parser's error, with the line and column.
        #[source]
        source: serde_json::Error,
    },
    /// The extension is neither `.toml` nor `.json`, so the format is unknown.
    #[error("config file `{path}` has an unknown extension")]
    Extension {
        /// The file, as given.
        path: String,
    },
    /// The path is a directory.
    #[error("config file `{path}` is a directory")]
    Directory {
        /// The path, as given.
        path: String,
    },
}

impl ConfigFileError {
    /// What the user can do about it.
    pub(crate) fn help(&self) -> Vec<String> {
        match self {
            ConfigFileError::Extension { .. } => vec!["name it `*.toml` or `*.json`".into()],
            ConfigFileError::Directory { .. } => {
                vec!["give the path of a `.toml` or `.json` file".into()]
            }
            ConfigFileError::Read { source, .. }
                if source.kind() == std::io::ErrorKind::NotFound =>
            {
                vec![
                    "check the path given to --config (relative paths start at the current directory)"
                        .into(),
                ]
            }
            ConfigFileError::Read { .. } => {
                vec!["make the file readable by this user, as UTF-8 text".into()]
            }
            ConfigFileError::Toml { .. } | ConfigFileError::Json { .. } => {
                vec!["fix the file at the line and column named".into()]
            }
        }
    }
}

/// Reads a TOML or JSON config file into a tree.
pub fn load_file(path: &Path) -> Result<Value, ConfigFileError> {
    let shown = path.display().to_string();
    if path.is_dir() {
        return Err(ConfigFileError::Directory { path: shown });
    }
    let kind = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    if !matches!(kind.as_deref(), Some("toml" | "json")) {
        return Err(ConfigFileError::Extension { path: shown });
    }
    let text = std::fs::read_to_string(path).map_err(|source| ConfigFileError::Read {
        path: shown.clone(),
        source,
    })?;
    parse(&text, kind.as_deref() == Some("json"), &shown)
}

fn parse(text: &str, json: bool, shown: &str) -> Result<Value, ConfigFileError> {
    if json {
        serde_json::from_str(text).map_err(|source| ConfigFileError::Json {
            path: shown.to_owned(),
            source,
        })
    } else {
        toml::from_str::<Value>(text).map_err(|err| ConfigFileError::Toml {
            path: shown.to_owned(),
            message: err.to_string().trim_end().to_owned(),
        })
    }
}

impl crate::error::Diagnostic for ConfigFileError {
    fn help(&self) -> Vec<String> {
        ConfigFileError::help(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;
    use serde_json::json;

    #[derive(Debug, Deserialize, PartialEq)]
    struct Route {
        path: String,
        #[serde(default)]
        methods: Vec<String>,
    }

    #[derive(Debug, Deserialize, PartialEq)]
    struct Server {
        listen: Vec<String>,
        #[serde(default)]
        routes: Vec<Route>,
    }

    #[derive(Debug, Deserialize, PartialEq)]
    struct Timeouts {
        #[serde(deserialize_with = "seconds")]
        idle: f64,
        #[serde(default, deserialize_with = "optional_seconds")]
        response: Option<f64>,
    }

    #[test]
    fn durations_are_seconds_or_strings_with_units() {
        let decoded = |value| decode_strict::<Timeouts>("http", value);
        let timeouts = |idle, response| Timeouts { idle, response };
        assert_eq!(decoded(json!({"idle": 30})), Ok(timeouts(30.0, None)));
        assert_eq!(
            decoded(json!({"idle": 0.5, "response": null})),
            Ok(timeouts(0.5, None))
        );
        assert_eq!(
            decoded(json!({"idle": "1m30s", "response": "500ms"})),
            Ok(timeouts(90.0, Some(0.5)))
        );
        assert_eq!(decoded(json!({"idle": "2 h"})), Ok(timeouts(7200.0, None)));
        assert_eq!(decoded(json!({"idle": " 45 "})), Ok(timeouts(45.0, None)));
        // Out of range is the module's to refuse, with its limits.
        assert_eq!(decoded(json!({"idle": -5})), Ok(timeouts(-5.0, None)));
        assert_eq!(
            decoded(json!({"idle": "soon"})).unwrap_err().to_string(),
            "invalid config for `http` at `idle`: invalid duration \"soon\": give seconds \
             (30, 0.5) or a duration such as \"30s\", \"1m30s\" or \"500ms\""
        );
        assert_eq!(
            decoded(json!({"idle": true})).unwrap_err().to_string(),
            "invalid config for `http` at `idle`: invalid type: boolean `true`, expected \
             seconds (30, 0.5) or a duration such as \"30s\", \"1m30s\" or \"500ms\""
        );
        assert!(decoded(json!({"idle": null})).is_err());
    }

    #[test]
    fn type_errors_name_what_a_config_writer_knows() {
        #[derive(Debug, Deserialize)]
        #[allow(dead_code)]
        struct Limits {
            #[serde(default)]
            max: usize,
            #[serde(default)]
            port: u16,
            #[serde(default)]
            on: bool,
            #[serde(default)]
            names: Vec<String>,
            #[serde(default)]
            ratio: f64,
            #[serde(default)]
            routes: Option<Route>,
        }
        let refused = |value| {
            decode_strict::<Limits>("http", value)
                .unwrap_err()
                .to_string()
        };
        assert_eq!(
            refused(json!({"max": "many"})),
            "invalid config for `http` at `max`: invalid type: string \"many\", expected a whole number, 0 or more"
        );
        assert_eq!(
            refused(json!({"port": 70000})),
            "invalid config for `http` at `port`: invalid value: integer `70000`, expected a whole number from 0 to 65535"
        );
        assert_eq!(
            refused(json!({"on": "yes"})),
            "invalid config for `http` at `on`: invalid type: string \"yes\", expected `true` or `false`"
        );
        assert_eq!(
            refused(json!({"names": "a"})),
            "invalid config for `http` at `names`: invalid type: string \"a\", expected a list (`[...]`)"
        );
        assert_eq!(
            refused(json!({"ratio": "half"})),
            "invalid config for `http` at `ratio`: invalid type: string \"half\", expected a number"
        );
        assert_eq!(
            refused(json!({"routes": 1})),
            "invalid config for `http` at `routes`: invalid type: integer `1`, expected a table (`{...}`)"
        );
        // Anything else is serde's own words.
        assert_eq!(
            refused(json!({"names": [1]})),
            "invalid config for `http` at `names[0]`: invalid type: integer `1`, expected a string"
        );
    }

    #[test]
    fn decodes_known_fields() {
        let server: Server = decode_strict(
            "http",
            json!({"listen": ["127.0.0.1:0"], "routes": [{"path": "/"}]}),
        )
        .unwrap();
        assert_eq!(server.routes[0].path, "/");
    }

    #[test]
    fn unknown_fields_are_named_with_their_path() {
        let err = decode_strict::<Server>("http", json!({"listen": [], "lisen": 1})).unwrap_err();
        assert_eq!(err.path, "");
        assert!(err.message.contains("unknown field `lisen`"), "{err}");
        let nested = decode_strict::<Server>(
            "http",
            json!({"listen": [], "routes": [{"path": "/", "method": "GET"}]}),
        )
        .unwrap_err();
        assert_eq!(nested.path, "routes.0");
        assert!(
            nested.to_string().contains("unknown field `method`"),
            "{nested}"
        );
    }

    #[test]
    fn type_errors_carry_the_path() {
        let err = decode_strict::<Server>("http", json!({"listen": [], "routes": [{"path": 5}]}))
            .unwrap_err();
        assert_eq!(err.path, "routes[0].path");
        assert!(
            err.to_string().contains("`http` at `routes[0].path`"),
            "{err}"
        );
    }

    #[test]
    fn missing_fields_are_recognisable() {
        let err = decode_strict::<Server>("http", Value::Null).unwrap_err();
        assert!(err.is_missing_field(), "{err}");
        #[derive(Deserialize)]
        struct Empty {}
        assert!(decode_strict::<Empty>("x", Value::Null).is_ok());
    }

    #[test]
    fn parses_toml_and_json_alike() {
        let toml = parse("[apps.http]\nlisten = [\"a\"]\n", false, "c.toml").unwrap();
        let json = parse(r#"{"apps": {"http": {"listen": ["a"]}}}"#, true, "c.json").unwrap();
        assert_eq!(toml, json);
        let bad = parse("[apps\n", false, "c.toml").unwrap_err().to_string();
        assert!(bad.contains("`c.toml` is not valid TOML"), "{bad}");
    }

    #[test]
    fn a_directory_given_as_the_config_file_is_named_as_one() {
        let dir = tempfile::tempdir().unwrap();
        // Whatever its name says.
        let named = dir.path().join("looks.toml");
        std::fs::create_dir(&named).unwrap();
        for path in [dir.path(), named.as_path()] {
            let err = load_file(path).unwrap_err();
            assert!(
                matches!(err, ConfigFileError::Directory { .. }),
                "{path:?}: {err}"
            );
            assert_eq!(
                crate::error::render(&err),
                format!(
                    "config file `{}` is a directory\nhelp: give the path of a `.toml` or `.json` file",
                    path.display()
                )
            );
        }
    }
}
