//! `http.handlers.basic_auth`: HTTP Basic authentication (RFC 7617) against argon2 password
//! hashes from the config.
//!
//! What a refusal costs must not tell an attacker which usernames exist: the username is
//! compared with every account's in constant time (as SHA-256 digests, so length does not
//! show either), and an unknown username is still verified, against a dummy hash with the
//! first account's argon2 parameters, so it costs the same argon2 work as a known one.

use std::collections::HashSet;
use std::sync::{Arc, Mutex, OnceLock};

use argon2::password_hash::phc::{Output, PasswordHash};
use argon2::{Algorithm, Argon2, Params, PasswordVerifier, Version};
use base64ct::Encoding;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use subtle::{Choice, ConditionallySelectable, ConstantTimeEq};
use tokio::sync::Semaphore;
use xbuild_core::metrics::prometheus_client::metrics::counter::Counter;
use xbuild_core::{BoxError, Context, Module, Provisioned};
use xbuild_http::http::{HeaderValue, StatusCode, header};
use xbuild_http::{Handler, HandlerFuture, Next, Request, text_response};

/// The longest realm a config may give.
const MAX_REALM_LEN: usize = 256;
/// The most argon2 memory a hash may ask for, in KiB (1 GiB): each verification allocates
/// it, one per CPU at a time.
const MAX_M_COST: u32 = 1024 * 1024;
/// How many credentials that verified are remembered, so a client sending them with every
/// request pays for argon2 once; the set is emptied when full.
const CACHE_CAPACITY: usize = 1024;

fn default_realm() -> String {
    "restricted".into()
}

/// Module `http.handlers.basic_auth`; its fields are its config (see the crate's README).
///
/// A request with the `Authorization: Basic ...` credentials of one of `accounts` is passed
/// on without that header; any other is answered `401 Unauthorized` with
/// `WWW-Authenticate: Basic realm="<realm>", charset="UTF-8"`.
#[derive(Deserialize)]
pub struct BasicAuth {
    /// The protection space shown by browsers in their login prompt.
    #[serde(default = "default_realm")]
    realm: String,
    /// Who may pass. Required, so that a host's `selftest` counts the handler as needing a
    /// config rather than failing it; an empty list is refused with a hint.
    accounts: Vec<Account>,

    #[serde(skip)]
    state: Provisioned<State>,
}

/// An entry of `accounts`: a username and the argon2 PHC hash of its password.
#[derive(Deserialize)]
struct Account {
    /// The username, compared exactly (case-sensitive).
    username: String,
    /// `$argon2id$v=19$m=...,t=...,p=...$<salt>$<hash>`, as `HOST hash-password` prints.
    password: String,
}

struct State {
    /// The `WWW-Authenticate` value of every 401.
    challenge: HeaderValue,
    accounts: Vec<Verifier>,
    /// Verified when the username is unknown, so that costs what a known one does. Its
    /// output is random: no password matches it.
    dummy: Arc<PasswordHash>,
    /// Argon2 verifications running at once: one per CPU. Each takes the hash's memory
    /// (19 MiB by default) on a blocking thread; unbounded, a flood of wrong passwords
    /// would take as many threads and as much memory as the blocking pool allows.
    verifying: Semaphore,
    /// Digests of credentials that verified (keyed with `cache_key`, so the set does not
    /// hold what a fast dictionary attack could check against).
    verified: Mutex<HashSet<[u8; 32]>>,
    cache_key: [u8; 32],
}

struct Verifier {
    /// SHA-256 of the username: every comparison is over 32 bytes, whatever the lengths.
    username: [u8; 32],
    hash: Arc<PasswordHash>,
}

impl Module for BasicAuth {
    fn provision(&mut self, _ctx: &mut Context<'_>) -> Result<(), BoxError> {
        let challenge = challenge(&self.realm)?;
        if self.accounts.is_empty() {
            return Err("accounts is empty: give at least one account, e.g. `accounts = [ { username = \"alice\", password = \"<the line `HOST hash-password` prints>\" } ]`".into());
        }
        let mut seen = HashSet::new();
        let mut accounts = Vec::with_capacity(self.accounts.len());
        for (i, account) in self.accounts.iter().enumerate() {
            check_username(i, &account.username)?;
            if !seen.insert(account.username.as_str()) {
                return Err(format!(
                    "accounts[{i}]: duplicate username `{}`: each username may appear once in accounts",
                    account.username
                )
                .into());
            }
            let at = format!("accounts[{i}] (username `{}`)", account.username);
            accounts.push(Verifier {
                username: Sha256::digest(account.username.as_bytes()).into(),
                hash: Arc::new(parse_hash(&at, &account.password)?),
            });
        }
        let dummy = Arc::new(dummy_like(&accounts[0].hash)?);
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
        failures(); // registered now, so the series reads 0 before the first refusal
        self.state.set(State {
            challenge,
            accounts,
            dummy,
            verifying: Semaphore::new(cpus),
            verified: Mutex::new(HashSet::new()),
            cache_key: random_bytes()?,
        });
        Ok(())
    }
}

impl Handler for BasicAuth {
    fn serve<'a>(&'a self, mut request: Request, next: Next<'a>) -> HandlerFuture<'a> {
        Box::pin(async move {
            let state = &*self.state;
            let credentials = request
                .headers()
                .get(header::AUTHORIZATION)
                .and_then(parse_basic);
            let authorized = match credentials {
                Some((username, password)) => state.check(&username, password).await?,
                None => false,
            };
            if !authorized {
                failures().inc();
                let mut response = text_response(
                    StatusCode::UNAUTHORIZED,
                    "unauthorized: this resource needs a valid username and password\n",
                );
                response
                    .headers_mut()
                    .insert(header::WWW_AUTHENTICATE, state.challenge.clone());
                return Ok(response);
            }
            // The credentials are for this host, not for whatever answers behind it.
            request.headers_mut().remove(header::AUTHORIZATION);
            next.run(request).await
        })
    }
}

impl State {
    /// Whether `username` and `password` are one account's.
    async fn check(&self, username: &[u8], password: Vec<u8>) -> Result<bool, BoxError> {
        let remembered = self.remembered(username, &password);
        if lock(&self.verified).contains(&remembered) {
            return Ok(true);
        }
        let digest: [u8; 32] = Sha256::digest(username).into();
        let mut found = Choice::from(0);
        let mut index = 0u64;
        for (i, account) in self.accounts.iter().enumerate() {
            let same = account.username[..].ct_eq(&digest[..]);
            index.conditional_assign(&(i as u64), same);
            found |= same;
        }
        let found = bool::from(found);
        let hash = if found {
            self.accounts[index as usize].hash.clone()
        } else {
            self.dummy.clone()
        };
        let verified = {
            let _permit = self.verifying.acquire().await?;
            tokio::task::spawn_blocking(move || {
                Argon2::default().verify_password(&password, &*hash).is_ok()
            })
            .await?
        };
        let authorized = found && verified;
        if authorized {
            let mut cache = lock(&self.verified);
            if cache.len() >= CACHE_CAPACITY {
                cache.clear();
            }
            cache.insert(remembered);
        }
        Ok(authorized)
    }

    /// The cache's key for a pair of credentials.
    fn remembered(&self, username: &[u8], password: &[u8]) -> [u8; 32] {
        let mut digest = Sha256::new();
        digest.update(self.cache_key);
        digest.update((username.len() as u64).to_le_bytes());
        digest.update(username);
        digest.update(password);
        digest.finalize().into()
    }
}

/// `Basic <base64 of username:password>` (the scheme in any case), else `None`.
fn parse_basic(value: &HeaderValue) -> Option<(Vec<u8>, Vec<u8>)> {
    let value = value.to_str().ok()?.trim();
    let (scheme, token) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64ct::Base64::decode_vec(token.trim()).ok()?;
    let colon = decoded.iter().position(|&b| b == b':')?;
    Some((decoded[..colon].to_vec(), decoded[colon + 1..].to_vec()))
}

/// `Basic realm="<realm>", charset="UTF-8"`, for a realm that fits in a quoted string.
fn challenge(realm: &str) -> Result<HeaderValue, String> {
    let fits = !realm.is_empty()
        && realm.len() <= MAX_REALM_LEN
        && realm
            .bytes()
            .all(|b| (b' '..=b'~').contains(&b) && b != b'"' && b != b'\\');
    if !fits {
        return Err(format!(
            "invalid realm `{}`: give 1 to {MAX_REALM_LEN} printable ASCII characters without `\"` or `\\`, e.g. `restricted`",
            realm.escape_debug()
        ));
    }
    HeaderValue::from_str(&format!("Basic realm=\"{realm}\", charset=\"UTF-8\""))
        .map_err(|e| format!("invalid realm `{realm}`: {e}"))
}

fn check_username(i: usize, username: &str) -> Result<(), String> {
    if username.is_empty() {
        return Err(format!(
            "accounts[{i}]: username is empty: give the name the user types"
        ));
    }
    if username.contains(':') || username.chars().any(char::is_control) {
        return Err(format!(
            "accounts[{i}]: invalid username `{}`: a Basic username cannot contain `:` or control characters",
            username.escape_debug()
        ));
    }
    Ok(())
}

/// The account's hash, checked to be one argon2 can verify. The error never repeats the
/// password: it may be a plain-text one.
fn parse_hash(at: &str, password: &str) -> Result<PasswordHash, String> {
    let hash = PasswordHash::new(password).map_err(|e| {
        if password.starts_with('$') {
            format!(
                "{at}: password is not a valid PHC hash string ({e}): give the whole `$argon2id$...` line that `HOST hash-password` prints"
            )
        } else {
            format!(
                "{at}: password is not a PHC hash string: it looks like a plain-text password, which basic_auth never accepts: hash it with `HOST hash-password` (HOST being this host's binary) and give the `$argon2id$...` line it prints"
            )
        }
    })?;
    Algorithm::new(hash.algorithm.as_str()).map_err(|_| {
        format!(
            "{at}: password is a `{}` hash: basic_auth verifies argon2 hashes (argon2id, argon2i, argon2d): make one with `HOST hash-password`",
            hash.algorithm
        )
    })?;
    if let Some(version) = hash.version {
        Version::try_from(version).map_err(|_| {
            format!(
                "{at}: password hash has argon2 version `{version}`: give version 16 or 19 (`v=19`), as `HOST hash-password` makes"
            )
        })?;
    }
    let params = Params::try_from(&hash).map_err(|e| {
        format!(
            "{at}: password hash has invalid argon2 parameters `{}` ({e}): make a new hash with `HOST hash-password`",
            hash.params
        )
    })?;
    if params.m_cost() > MAX_M_COST {
        return Err(format!(
            "{at}: password hash asks for `m={}` KiB of memory per verification: give a hash with m at most {MAX_M_COST} (1 GiB); `HOST hash-password` uses 19456",
            params.m_cost()
        ));
    }
    if hash.salt.is_none() || hash.hash.is_none() {
        return Err(format!(
            "{at}: password hash has no salt or no hash output: give the whole `$argon2id$...` line that `HOST hash-password` prints"
        ));
    }
    Ok(hash)
}

/// `hash` with a random output: verifying any password against it costs what verifying
/// against `hash` does, and never succeeds.
fn dummy_like(hash: &PasswordHash) -> Result<PasswordHash, BoxError> {
    let len = hash.hash.map_or(Params::DEFAULT_OUTPUT_LEN, |h| h.len());
    let random = random_bytes()?;
    let mut dummy = hash.clone();
    dummy.hash = Some(
        Output::init_with(len, |out| {
            for (byte, r) in out.iter_mut().zip(random.iter().cycle()) {
                *byte = *r;
            }
            Ok(())
        })
        .map_err(|e| format!("could not make the dummy hash: {e}"))?,
    );
    Ok(dummy)
}

fn random_bytes() -> Result<[u8; 32], BoxError> {
    let mut bytes = [0u8; 32];
    for half in bytes.chunks_mut(16) {
        let salt = argon2::password_hash::try_generate_salt()
            .map_err(|e| format!("the system's random number generator failed: {e}"))?;
        half.copy_from_slice(&salt[..half.len()]);
    }
    Ok(bytes)
}

/// `http_basic_auth_failures_total`: requests answered 401, process-wide.
fn failures() -> &'static Counter {
    static FAILURES: OnceLock<Counter> = OnceLock::new();
    FAILURES.get_or_init(|| {
        let counter = Counter::default();
        xbuild_core::metrics::register(
            "http_basic_auth_failures",
            "Requests basic_auth answered 401: no, malformed or wrong credentials",
            counter.clone(),
        );
        counter
    })
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

xbuild_core::register_module!("http.handlers.basic_auth", BasicAuth as dyn Handler);

#[cfg(test)]
mod tests {
    use super::*;

    fn header(value: &str) -> HeaderValue {
        HeaderValue::from_str(value).unwrap()
    }

    #[test]
    fn basic_credentials_parse_and_malformed_ones_do_not() {
        // "alice:pa:ss" — the password may hold colons.
        let parsed = parse_basic(&header("Basic YWxpY2U6cGE6c3M=")).unwrap();
        assert_eq!(parsed, (b"alice".to_vec(), b"pa:ss".to_vec()));
        assert!(parse_basic(&header("basic   YWxpY2U6cGE6c3M=")).is_some());
        assert!(parse_basic(&header("Bearer YWxpY2U6cGE6c3M=")).is_none());
        assert!(parse_basic(&header("Basic")).is_none());
        assert!(parse_basic(&header("Basic !!!")).is_none());
        // "alice" with no colon.
        assert!(parse_basic(&header("Basic YWxpY2U=")).is_none());
    }

    #[test]
    fn realms_that_do_not_fit_a_quoted_string_are_refused() {
        assert_eq!(
            challenge("admin area").unwrap(),
            "Basic realm=\"admin area\", charset=\"UTF-8\""
        );
        for bad in ["", "say \"hi\"", "back\\slash", "line\nbreak", "caf\u{e9}"] {
            let err = challenge(bad).unwrap_err();
            assert!(err.starts_with("invalid realm `"), "{err}");
        }
    }
}
