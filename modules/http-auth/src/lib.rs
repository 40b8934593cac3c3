//! # xbuild-http-auth
//!
//! HTTP Basic authentication for hosts built with xbuild. The crate adds two things to a
//! host:
//!
//! - the handler `http.handlers.basic_auth` ([`BasicAuth`]): a request without the right
//!   username and password is answered `401 Unauthorized` with a `WWW-Authenticate`
//!   challenge; a request with them is passed on to the rest of the route, without its
//!   `Authorization` header;
//! - the host command `hash-password`, which turns a password into the argon2id hash the
//!   handler's config holds. The config never holds a plain-text password: the handler
//!   refuses one when the host loads the config.
//!
//! ```toml
//! [[apps.http.servers.main.routes]]
//! match = { path = ["/admin/*"] }
//! handle = [
//!   { handler = "basic_auth", realm = "admin", accounts = [
//!     { username = "alice", password = "$argon2id$v=19$m=19456,t=2,p=1$...$..." },
//!   ] },
//!   { handler = "file_server", root = "/srv/admin" },
//! ]
//! ```
//!
//! Build it into a host with `xbuild --with xbuild-http-auth@0.1`, then make each hash
//! with `HOST hash-password` (it asks for the password, or takes `--plaintext VALUE`).
//!
//! The handler's module ID is in namespace `http.handlers`, which the standard HTTP app
//! (`xbuild-http`) opens for other crates; this crate's own namespace, for anything else
//! it may register later, is `xbuild_http_auth`.

#![deny(missing_docs)]

mod basic_auth;
mod command;

pub use basic_auth::BasicAuth;
pub use command::hash_password;
