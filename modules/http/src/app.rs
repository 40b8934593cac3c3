//! The `http` app: turns `[apps.http]` into servers at provision (so `host validate` catches
//! every config error), runs them on a tokio runtime it owns from start to stop, and stops
//! gracefully: no new connections, in-flight requests get `grace_period`, then the runtime
//! goes away and cleanup reaches every handler.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU16, Ordering};
use std::time::Duration;

use serde::Deserialize;
use tokio::runtime::Runtime;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use xbuild_core::{App, BoxError, Context, Hinted, Module, Value};

use crate::observe::{RouteMetrics, UNMATCHED};
use crate::route::{Route, RouteConfig};
use crate::server::{Protocols, Server, serve_listener};

fn default_grace_period() -> f64 {
    5.0
}

fn default_true() -> bool {
    true
}

/// `[apps.http]`.
#[derive(Deserialize)]
pub struct HttpApp {
    /// Seconds in-flight requests get to finish when the app stops.
    #[serde(
        default = "default_grace_period",
        deserialize_with = "xbuild_core::duration::seconds"
    )]
    grace_period: f64,
    /// Runtime worker threads; tokio's default (one per core) when absent.
    #[serde(default)]
    worker_threads: Option<usize>,
    /// Servers by name. Required: an http app without servers has nothing to do, and
    /// requiring the field makes `selftest` treat the app as needing a config.
    servers: BTreeMap<String, ServerConfig>,

    #[serde(skip)]
    provisioned: Vec<Arc<Server>>,
    #[serde(skip)]
    running: Option<Running>,
}

/// `[apps.http.servers.<name>]`.
#[derive(Deserialize)]
struct ServerConfig {
    /// `IP:PORT` or `:PORT` (all interfaces).
    listen: Vec<String>,
    #[serde(default)]
    routes: Vec<RouteConfig>,
    /// One `http.access` log line per request.
    #[serde(default = "default_true")]
    access_log: bool,
    /// `h1` (HTTP/1.1) and/or `h2c` (HTTP/2 without TLS, opt-in as in Caddy); with `tls`,
    /// `h1` and/or `h2` (both by default).
    #[serde(default)]
    protocols: Option<Vec<String>>,
    /// HTTPS: the module of namespace `http.tls` that secures every connection, named by
    /// the table's `module` key (crate::tls).
    #[serde(default)]
    tls: Option<Value>,
    /// Plain-HTTP addresses whose every request is redirected (308) to this server's
    /// HTTPS address. Only with `tls`.
    #[serde(default)]
    redirect_from_http: Vec<String>,
    /// Seconds a client has to send a request's headers (see crate::limits).
    #[serde(
        default = "crate::limits::default_read_header_timeout",
        deserialize_with = "xbuild_core::duration::seconds"
    )]
    read_header_timeout: f64,
    /// Seconds a connection may stay open with nothing in flight.
    #[serde(
        default = "crate::limits::default_idle_timeout",
        deserialize_with = "xbuild_core::duration::seconds"
    )]
    idle_timeout: f64,
    /// Connections served at once.
    #[serde(default = "crate::limits::default_max_connections")]
    max_connections: usize,
    /// Connections one client address (IPv6: its /64) may hold at once (default 256, or
    /// max_connections when lower).
    #[serde(default)]
    max_connections_per_client: Option<usize>,
    /// Seconds a request body read may wait for the client.
    #[serde(
        default = "crate::limits::default_read_timeout",
        deserialize_with = "xbuild_core::duration::seconds"
    )]
    read_timeout: f64,
    /// Seconds a write to the client may wait without progress.
    #[serde(
        default = "crate::limits::default_write_timeout",
        deserialize_with = "xbuild_core::duration::seconds"
    )]
    write_timeout: f64,
    /// Bytes of a request's line and headers.
    #[serde(default = "crate::limits::default_max_header_bytes")]
    max_header_bytes: usize,
    /// Bytes of a request's body.
    #[serde(default = "crate::limits::default_max_request_body")]
    max_request_body: u64,
    /// HTTP/2 streams open at once on a connection.
    #[serde(default = "crate::limits::default_max_concurrent_streams")]
    max_concurrent_streams: u32,
}

struct Running {
    runtime: Runtime,
    stop: watch::Sender<bool>,
    listeners: Vec<JoinHandle<()>>,
    /// The listening sockets, shared with the next config after a reload
    /// (crate::listeners): each closes when the last config holding it lets go.
    sockets: Vec<Arc<std::net::TcpListener>>,
}

/// Parses a listen address; `:8080` means every interface.
pub(crate) fn parse_listen(text: &str) -> Result<SocketAddr, String> {
    let parsed = match text.strip_prefix(':') {
        Some(port) => port
            .parse::<u16>()
            .map(|port| SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), port))
            .ok(),
        None => text.parse::<SocketAddr>().ok(),
    };
    parsed.ok_or_else(|| {
        format!(
            "invalid listen address `{}`: expected IP:PORT such as `127.0.0.1:8080`, `[::1]:8080` or `:8080`",
            crate::access_log::visible(text)
        )
    })
}

/// The server `name`, and the server that redirects its `redirect_from_http` addresses
/// to it, when it has any.
fn provision_server(
    name: &str,
    config: ServerConfig,
    ctx: &mut Context<'_>,
) -> Result<(Server, Option<Server>), BoxError> {
    crate::observe::check_name("server", name)?;
    if config.listen.is_empty() {
        return Err(
            Hinted::new(format!("server `{name}` has no listen address"))
                .help("add e.g. `listen = [\"127.0.0.1:8080\"]`")
                .into(),
        );
    }
    let listen = config
        .listen
        .iter()
        .map(|text| parse_listen(text).map_err(|e| format!("server `{name}`: {e}")))
        .collect::<Result<Vec<_>, _>>()?;
    let tls = config.tls.is_some();
    let protocols = match &config.protocols {
        Some(names) => Protocols::parse(names, tls),
        None if tls => Ok(Protocols::H1AndH2),
        None => Ok(Protocols::H1),
    }
    .map_err(|e| format!("server `{name}`: {e}"))?;
    if !tls && !config.redirect_from_http.is_empty() {
        return Err(Hinted::new(format!(
            "server `{name}` has `redirect_from_http` but no `tls`: there is no HTTPS to redirect to"
        ))
        .help("add `tls`, or remove `redirect_from_http`")
        .into());
    }
    let redirect_from = config
        .redirect_from_http
        .iter()
        .map(|text| {
            parse_listen(text).map_err(|e| format!("server `{name}`, redirect_from_http: {e}"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let limits = crate::limits::LimitsConfig {
        read_header_timeout: config.read_header_timeout,
        idle_timeout: config.idle_timeout,
        max_connections: config.max_connections,
        max_connections_per_client: config.max_connections_per_client,
        read_timeout: config.read_timeout,
        write_timeout: config.write_timeout,
        max_header_bytes: config.max_header_bytes,
        max_request_body: config.max_request_body,
        max_concurrent_streams: config.max_concurrent_streams,
    }
    .check()
    .map_err(|e| format!("server `{name}`: {e}"))?;
    let tls = match config.tls {
        Some(tls) => Some(
            ctx.load_inline::<dyn crate::tls::Tls>("http.tls", "module", tls)
                .map_err(|err| Hinted::from_error(&err).context(format!("server `{name}`, tls")))?,
        ),
        None => None,
    };
    let server_name: Arc<str> = name.into();
    let mut routes: Vec<Route> = Vec::with_capacity(config.routes.len());
    for (i, route) in config.routes.into_iter().enumerate() {
        let at = format!("server `{name}`, routes[{i}]");
        routes.push(Route::provision(i, route, ctx, &at)?);
    }
    let route_metrics = routes
        .iter()
        .map(|r| RouteMetrics::new(&server_name, &r.name))
        .collect();
    // The redirect goes to the port of the server's first address, as bound at start (it
    // may be port 0 in the config).
    let https_port =
        (!redirect_from.is_empty()).then(|| Arc::new(AtomicU16::new(listen[0].port())));
    let redirect = https_port.clone().map(|port| {
        let name: Arc<str> = format!("{name} (redirect)").into();
        Server {
            unmatched_metrics: RouteMetrics::new(&name, &UNMATCHED.into()),
            rejected_metrics: RouteMetrics::new(&name, &crate::server::REJECTED.into()),
            name,
            listen: redirect_from,
            routes: Vec::new(),
            route_metrics: Vec::new(),
            access_log: config.access_log,
            protocols: Protocols::H1,
            limits,
            tls: None,
            stopped: AtomicBool::new(false),
            https_port: None,
            redirect_to_https: Some(port),
        }
    });
    let server = Server {
        unmatched_metrics: RouteMetrics::new(&server_name, &UNMATCHED.into()),
        rejected_metrics: RouteMetrics::new(&server_name, &crate::server::REJECTED.into()),
        name: server_name,
        listen,
        routes,
        route_metrics,
        access_log: config.access_log,
        protocols,
        limits,
        tls,
        stopped: AtomicBool::new(false),
        https_port,
        redirect_to_https: None,
    };
    Ok((server, redirect))
}

impl Module for HttpApp {
    fn provision(&mut self, ctx: &mut Context<'_>) -> Result<(), BoxError> {
        // If one fails, the handlers of the servers already built are cleaned up by the
        // core, which owns what `ctx` loaded.
        for (name, config) in std::mem::take(&mut self.servers) {
            let (server, redirect) = provision_server(&name, config, ctx)?;
            self.provisioned.push(Arc::new(server));
            self.provisioned.extend(redirect.map(Arc::new));
        }
        Ok(())
    }

    fn validate(&self) -> Result<(), BoxError> {
        // Bounded: a huge grace period would overflow when the app stops, and thousands of
        // threads exhaust memory before the runtime even starts.
        if !(self.grace_period.is_finite() && (0.0..=3600.0).contains(&self.grace_period)) {
            return Err(format!(
                "invalid grace_period `{}`: give a number of seconds from 0 to 3600",
                crate::limits::show_seconds(self.grace_period)
            )
            .into());
        }
        if let Some(n) = self.worker_threads
            && !(1..=1024).contains(&n)
        {
            return Err(format!(
                "invalid worker_threads `{n}`: give a number from 1 to 1024, or leave it out"
            )
            .into());
        }
        if self.provisioned.is_empty() {
            return Err(Hinted::new("the http app has no servers")
                .help("add `[apps.http.servers.main]` with `listen = [\"127.0.0.1:8080\"]`")
                .into());
        }
        crate::limits::check_open_file_limit(self.total_max_connections())?;
        let mut seen: BTreeMap<SocketAddr, &str> = BTreeMap::new();
        for server in &self.provisioned {
            // Port 0 is a new ephemeral port each time: never taken twice.
            for addr in server.listen.iter().filter(|addr| addr.port() != 0) {
                if let Some(other) = seen.insert(*addr, &server.name) {
                    return Err(Hinted::new(format!(
                        "listen address `{addr}` is used twice (servers `{other}` and `{}`)",
                        server.name
                    ))
                    .help("give each server its own address")
                    .into());
                }
            }
        }
        Ok(())
    }

    fn cleanup(&mut self) -> Result<(), BoxError> {
        if let Some(running) = self.running.take() {
            running.runtime.shutdown_background();
        }
        // The handlers go with their servers (the last `Arc`, once no connection task holds
        // one), and the core cleans them up then.
        self.provisioned.clear();
        Ok(())
    }
}

impl HttpApp {
    /// Every server's max_connections, added up.
    fn total_max_connections(&self) -> u64 {
        self.provisioned
            .iter()
            .map(|server| server.limits.max_connections as u64)
            .sum()
    }
}

impl App for HttpApp {
    fn start(&mut self) -> Result<(), BoxError> {
        crate::limits::raise_open_file_limit(self.total_max_connections());
        let mut builder = tokio::runtime::Builder::new_multi_thread();
        builder.enable_all().thread_name("xbuild-http");
        if let Some(n) = self.worker_threads {
            builder.worker_threads(n);
        }
        let runtime = builder
            .build()
            .map_err(|e| format!("cannot start the http runtime: {e}"))?;
        let (stop, stopped) = watch::channel(false);
        // Every address is bound before any is served: a start that fails on a later
        // address (in use, say) has answered nothing, and the host rolls back cleanly.
        let mut bound = Vec::new();
        for server in &self.provisioned {
            for addr in &server.listen {
                // The socket a running config (before a reload) listens on at this
                // address, else a new one; the accept loop gets its own descriptor of it.
                let listener = crate::listeners::listen(*addr).and_then(|socket| {
                    let _entered = runtime.enter();
                    let accepting = tokio::net::TcpListener::from_std(socket.try_clone()?)?;
                    Ok((socket, accepting))
                });
                match listener {
                    Ok((socket, listener)) => bound.push((server.clone(), socket, listener)),
                    Err(err) => {
                        drop(bound);
                        runtime.shutdown_background();
                        return Err(Hinted::new(format!(
                            "server `{}` cannot listen on `{addr}`: {err}",
                            server.name
                        ))
                        .help("is another process using it?")
                        .into());
                    }
                }
            }
        }
        // Which of the bound listeners is its server's first address.
        let first_of_server: Vec<bool> = bound
            .iter()
            .enumerate()
            .map(|(i, (server, _, _))| i == 0 || !Arc::ptr_eq(&bound[i - 1].0, server))
            .collect();
        let mut listeners = Vec::new();
        let mut sockets = Vec::new();
        for (i, (server, socket, listener)) in bound.into_iter().enumerate() {
            sockets.push(socket);
            let address = listener.local_addr().unwrap_or(server.listen[0]);
            if let Some(port) = &server.https_port
                && first_of_server[i]
            {
                port.store(address.port(), Ordering::Relaxed);
            }
            tracing::info!(server = &*server.name, address = %address, "listening");
            #[cfg(feature = "testing")]
            crate::testing::note_bound(&server.name, address);
            listeners.push(runtime.spawn(serve_listener(listener, server, stopped.clone())));
        }
        self.running = Some(Running {
            runtime,
            stop,
            listeners,
            sockets,
        });
        Ok(())
    }

    fn stop(&mut self) -> Result<(), BoxError> {
        let Some(running) = self.running.take() else {
            return Ok(());
        };
        let Running {
            runtime,
            stop,
            listeners,
            sockets,
        } = running;
        let _ = stop.send(true);
        // Each accept loop holds a descriptor of its socket until it has stopped; a socket
        // no other config holds closes then, and new connections are refused rather than
        // left waiting through the grace period.
        drop(sockets);
        let grace = Duration::from_secs_f64(self.grace_period);
        let drained = runtime.block_on(async {
            tokio::time::timeout(grace, async {
                for listener in listeners {
                    let _ = listener.await;
                }
            })
            .await
        });
        if drained.is_err() {
            tracing::warn!(
                grace_period = self.grace_period,
                "requests still in flight after the grace period; closing their connections"
            );
            // Their access log lines say the server ended them, not the client.
            for server in &self.provisioned {
                server.stopped.store(true, Ordering::Relaxed);
            }
        }
        // Whatever is left (connections over the grace period, client pool tasks) is
        // dropped here.
        runtime.shutdown_timeout(Duration::from_secs(1));
        crate::access_log::flush();
        Ok(())
    }
}

// The config `selftest` audits the app with: serving on an ephemeral loopback port.
xbuild_core::register_module!(
    "http",
    HttpApp as dyn xbuild_core::App,
    selftest = config(
        r#"{"servers": {"selftest": {"listen": ["127.0.0.1:0"], "routes": [{"handle": [{"handler": "static_response", "body": "ok"}]}]}}}"#
    )
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_listen_addresses() {
        assert_eq!(
            parse_listen("127.0.0.1:8080").unwrap(),
            "127.0.0.1:8080".parse().unwrap()
        );
        assert_eq!(parse_listen(":80").unwrap(), "0.0.0.0:80".parse().unwrap());
        assert_eq!(parse_listen("[::1]:1").unwrap(), "[::1]:1".parse().unwrap());
        for bad in ["localhost:80", "127.0.0.1", ":http", "1.2.3.4:99999", ""] {
            let err = parse_listen(bad).unwrap_err();
            assert!(err.contains(&format!("`{bad}`")), "{err}");
        }
    }
}
