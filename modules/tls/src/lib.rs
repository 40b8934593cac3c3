//! # xbuild-tls
//!
//! HTTPS for the servers of hosts built with xbuild: the module `http.tls.rustls`
//! ([`RustlsTls`]), which the standard HTTP app (`xbuild-http`) loads for a server whose
//! config has a `tls` table, and which secures each connection with rustls before HTTP is
//! spoken over it.
//!
//! ```toml
//! [apps.http.servers.site]
//! listen = [":443"]
//! redirect_from_http = [":80"]
//! tls = { module = "rustls", certificates = [
//!   { certificate = "/etc/site/example.com.pem", key = "/etc/site/example.com.key" },
//!   { certificate = "/etc/site/example.org.pem", key = "/etc/site/example.org.key" },
//! ] }
//! ```
//!
//! - **Certificates** come from PEM files: each `certificate` file holds the chain (the
//!   server's certificate first), each `key` file its private key (PKCS#8, PKCS#1 or SEC1).
//!   They are read and checked (the key must match the certificate) when the config is
//!   provisioned, so `host validate` catches a missing or mismatched file, and read again
//!   whenever the config is loaded anew, and on SIGHUP or `host reload` of an unchanged
//!   config: renewed certificates are served from the next handshake on, without a restart
//!   (if any file is unreadable or mismatched then, the ones in use stay and the reload is
//!   reported as failed).
//! - **SNI**: a client that names a server gets the first certificate valid for that name
//!   (checked as a client checks it); a client that names none, or a name no certificate
//!   covers, gets the first certificate.
//! - **ALPN**: the server's `protocols` (`h1`, `h2`; both by default) are offered, HTTP/2
//!   first.
//! - **Versions**: TLS 1.2 and 1.3 (`min_version = "1.3"` for 1.3 only); anything older is
//!   refused during the handshake.
//! - **Limits**: `handshake_timeout` seconds (default 10) for the handshake; the server's
//!   own limits (connections per client, timeouts) hold for TLS connections as for others.
//!
//! Build it into a host with `xbuild --with xbuild-tls@0.1`.

#![deny(missing_docs)]

mod certificates;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use tokio_rustls::TlsAcceptor;
use xbuild_core::{BoxError, Context, Module, Refresh};
use xbuild_http::tls::{HandshakeFuture, Offer, Secured, TcpConnection, Tls};

use crate::certificates::BySni;

/// `http.tls.rustls`: a server's `tls` table.
#[derive(Deserialize)]
pub struct RustlsTls {
    /// Certificate and key files, in order of preference.
    certificates: Vec<CertificateFiles>,
    /// The oldest TLS version accepted: `"1.2"` (the default) or `"1.3"`.
    #[serde(default = "default_min_version")]
    min_version: String,
    /// Seconds a client has to complete the handshake.
    #[serde(
        default = "default_handshake_timeout",
        deserialize_with = "xbuild_core::duration::seconds"
    )]
    handshake_timeout: f64,

    #[serde(skip)]
    ready: Option<Ready>,
}

/// One certificate: its chain and its key, as PEM files.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CertificateFiles {
    certificate: PathBuf,
    key: PathBuf,
}

/// What provisioning builds: one rustls config per ALPN offer, sharing the certificates.
struct Ready {
    http1: TlsAcceptor,
    http2: TlsAcceptor,
    both: TlsAcceptor,
    handshake_timeout: Duration,
}

fn default_min_version() -> String {
    "1.2".to_owned()
}

fn default_handshake_timeout() -> f64 {
    10.0
}

impl Module for RustlsTls {
    fn provision(&mut self, ctx: &mut Context<'_>) -> Result<(), BoxError> {
        if self.certificates.is_empty() {
            return Err("`certificates` is empty: give at least one `{ certificate = \"site.pem\", key = \"site.key\" }`".into());
        }
        let versions: &[&'static rustls::SupportedProtocolVersion] = match self.min_version.as_str()
        {
            "1.2" => &[&rustls::version::TLS13, &rustls::version::TLS12],
            "1.3" => &[&rustls::version::TLS13],
            other => {
                return Err(format!(
                        "invalid min_version `{other}`: use \"1.2\" (TLS 1.2 and 1.3) or \"1.3\" (TLS 1.3 only); older versions are not offered"
                    )
                    .into());
            }
        };
        if !(self.handshake_timeout.is_finite() && (0.1..=300.0).contains(&self.handshake_timeout))
        {
            return Err(format!(
                "invalid handshake_timeout `{}`: give a number of seconds from 0.1 to 300",
                self.handshake_timeout
            )
            .into());
        }
        // ring, deprecated by rustls since 0.23.48 for having no post-quantum key exchange
        // (X25519MLKEM768 needs aws-lc-rs). Chosen anyway, for now: aws-lc-rs takes minutes
        // to build on a small machine, and every host built with this crate pays for it.
        #[allow(deprecated)]
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let files = Arc::new(Files {
            pairs: self
                .certificates
                .iter()
                .map(|f| (f.certificate.clone(), f.key.clone()))
                .collect(),
            provider: provider.clone(),
        });
        let resolver = Arc::new(BySni::new(files.load()?));
        // SIGHUP (or `reload`) with an unchanged config reads the files again: renewed
        // certificates are served without a restart.
        ctx.on_refresh(Arc::new(Refresher {
            files,
            resolver: resolver.clone(),
        }));
        let acceptor = |offer: Offer| -> Result<TlsAcceptor, BoxError> {
            let mut config = rustls::ServerConfig::builder_with_provider(provider.clone())
                .with_protocol_versions(versions)?
                .with_no_client_auth()
                .with_cert_resolver(resolver.clone());
            config.alpn_protocols = offer.alpn().iter().map(|p| p.to_vec()).collect();
            Ok(TlsAcceptor::from(Arc::new(config)))
        };
        self.ready = Some(Ready {
            http1: acceptor(Offer::Http1)?,
            http2: acceptor(Offer::Http2)?,
            both: acceptor(Offer::Http1AndHttp2)?,
            handshake_timeout: Duration::from_secs_f64(self.handshake_timeout),
        });
        Ok(())
    }
}

/// The certificate and key files of one `tls` table, and how to read them.
struct Files {
    pairs: Vec<(PathBuf, PathBuf)>,
    provider: Arc<rustls::crypto::CryptoProvider>,
}

impl Files {
    /// Every pair, read and checked; the first failure names its place in `certificates`.
    fn load(&self) -> Result<Vec<Arc<rustls::sign::CertifiedKey>>, BoxError> {
        self.pairs
            .iter()
            .enumerate()
            .map(|(i, (certificate, key))| {
                certificates::load(certificate, key, &self.provider)
                    .map(Arc::new)
                    .map_err(|e| e.context(format!("certificates[{i}]")).into())
            })
            .collect()
    }
}

/// Reads the files again on a refresh, and serves them only if all of them are good.
struct Refresher {
    files: Arc<Files>,
    resolver: Arc<BySni>,
}

impl Refresh for Refresher {
    fn refresh(&self) -> Result<(), BoxError> {
        self.resolver.replace(self.files.load()?);
        Ok(())
    }
}

impl Tls for RustlsTls {
    fn handshake<'a>(&'a self, connection: TcpConnection, offer: Offer) -> HandshakeFuture<'a> {
        Box::pin(async move {
            let ready = self.ready.as_ref().ok_or("not provisioned")?;
            let acceptor = match offer {
                Offer::Http1 => &ready.http1,
                Offer::Http2 => &ready.http2,
                _ => &ready.both,
            };
            let remote = connection.remote_addr();
            let stream = tokio::time::timeout(ready.handshake_timeout, acceptor.accept(connection))
                .await
                .map_err(|_| {
                    format!(
                        "TLS handshake with {remote} not done within handshake_timeout ({:?})",
                        ready.handshake_timeout
                    )
                })?
                .map_err(|e| format!("TLS handshake with {remote} failed: {e}"))?;
            let protocol = offer.negotiated(stream.get_ref().1.alpn_protocol());
            Ok(Secured {
                stream: Box::new(stream),
                protocol,
            })
        })
    }
}

xbuild_core::register_module!(
    "http.tls.rustls",
    RustlsTls as dyn xbuild_http::Tls,
    selftest = skip(
        "it loads the certificate and key files its config names, which a selftest does not have"
    )
);
