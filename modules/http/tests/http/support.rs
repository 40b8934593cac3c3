//! Helpers: start the http app in-process from a TOML snippet, send real HTTP requests over
//! loopback (a hyper-util client, or raw bytes when the exact request line matters), and
//! run small upstream servers.

use std::convert::Infallible;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener as StdListener, TcpStream};
use std::sync::OnceLock;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::service::service_fn;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::runtime::Runtime;
use xbuild_core::Registry;
use xbuild_core::host::Apps;

/// The client side's runtime, shared by all tests (the app under test has its own).
pub fn rt() -> &'static Runtime {
    static RT: OnceLock<Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap()
    })
}

/// A port nothing listens on right now. The OS hands out ephemeral ports in turn, so it is
/// not given to another test before this one binds it.
pub fn free_port() -> u16 {
    StdListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub fn registry() -> Registry<'static> {
    Registry::linked().expect("the registry is consistent")
}

/// Provisions the apps of a TOML config; the error as text.
pub fn provision(config: &str) -> Result<Apps, String> {
    let value: xbuild_core::Value = toml::from_str(config).expect("test config is valid TOML");
    Apps::provision(&registry(), value).map_err(|e| error_chain(&e))
}

/// An error as the host prints it: its sources, then its `help:` lines.
pub fn error_chain(err: &(dyn std::error::Error + 'static)) -> String {
    xbuild_core::error::render(err)
}

/// A started host; shuts down when dropped.
pub struct Host {
    pub apps: Apps,
    pub addr: SocketAddr,
}

impl Host {
    /// Starts a config whose only server listens on `{addr}`, which is replaced with a
    /// free loopback address.
    pub fn start(config: &str) -> Host {
        let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
        let config = config.replace("{addr}", &addr.to_string());
        let mut apps = provision(&config).unwrap_or_else(|e| panic!("{e}"));
        apps.start()
            .unwrap_or_else(|e| panic!("{}", error_chain(&e)));
        Host { apps, addr }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }
}

impl Drop for Host {
    fn drop(&mut self) {
        self.apps.shutdown();
    }
}

/// An answer, read completely.
pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: String,
}

impl Answer {
    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .map(|v| v.to_str().unwrap())
            .unwrap_or_else(|| panic!("no `{name}` header in {:?}", self.headers))
    }
}

fn client() -> &'static Client<HttpConnector, Full<Bytes>> {
    static CLIENT: OnceLock<Client<HttpConnector, Full<Bytes>>> = OnceLock::new();
    CLIENT.get_or_init(|| Client::builder(TokioExecutor::new()).build(HttpConnector::new()))
}

/// Sends `request` and reads the whole answer.
pub async fn send_async(request: Request<Full<Bytes>>) -> Result<Answer, String> {
    let response = client()
        .request(request)
        .await
        .map_err(|e| error_chain(&e))?;
    let (parts, body) = response.into_parts();
    let body = body.collect().await.map_err(|e| e.to_string())?.to_bytes();
    Ok(Answer {
        status: parts.status,
        headers: parts.headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    })
}

pub fn send(request: Request<Full<Bytes>>) -> Answer {
    rt().block_on(async { tokio::time::timeout(PATIENCE, send_async(request)).await })
        .expect("the server answered within the test's patience")
        .unwrap()
}

/// How long a test waits for an answer before failing instead of hanging the suite.
const PATIENCE: Duration = Duration::from_secs(30);

/// A GET over HTTP/2 with prior knowledge (h2c); the version and body of the answer.
/// One connection, driven here rather than through the pooled client: when the server
/// refuses HTTP/2 and closes, the handshake fails at once instead of leaving the pool
/// waiting.
pub fn send_h2(url: &str) -> Result<(http::Version, String), String> {
    let uri: http::Uri = url.parse().map_err(|e| format!("bad url {url}: {e}"))?;
    let authority = uri.authority().ok_or("url without authority")?.to_string();
    rt().block_on(async {
        let exchange = async {
            let stream = tokio::net::TcpStream::connect(&authority)
                .await
                .map_err(|e| e.to_string())?;
            let (mut sender, connection) =
                hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
                    .await
                    .map_err(|e| error_chain(&e))?;
            tokio::spawn(connection);
            let response = sender
                .send_request(Request::get(uri).body(Full::<Bytes>::default()).unwrap())
                .await
                .map_err(|e| error_chain(&e))?;
            let version = response.version();
            let body = response
                .into_body()
                .collect()
                .await
                .map_err(|e| e.to_string())?;
            Ok((
                version,
                String::from_utf8_lossy(&body.to_bytes()).into_owned(),
            ))
        };
        tokio::time::timeout(PATIENCE, exchange)
            .await
            .map_err(|_| format!("no HTTP/2 answer from {authority} within {PATIENCE:?}"))?
    })
}

/// A GET with extra headers.
pub fn get_with(url: &str, headers: &[(&str, &str)]) -> Answer {
    let mut builder = Request::get(url);
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    send(builder.body(Full::default()).unwrap())
}

pub fn get(url: &str) -> Answer {
    get_with(url, &[])
}

/// Sends `request_head` byte for byte (`Connection: close` is added) and returns the whole
/// raw answer, for requests a client library might normalise.
pub fn raw(addr: SocketAddr, request_line: &str) -> String {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    write!(
        stream,
        "{request_line}\r\nHost: test\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    answer
}

/// Sends `head` (request line and headers, without the blank line) exactly as given, with
/// nothing added, and returns the whole raw answer.
pub fn raw_head(addr: SocketAddr, head: &str) -> String {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    write!(stream, "{head}\r\n\r\n").unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    answer
}

/// The status code of a raw answer.
pub fn raw_status(answer: &str) -> u16 {
    answer
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP answer: {answer:?}"))
}

/// A plain hyper server (HTTP/1.1) on the client runtime that answers each request with
/// what `answer` makes of it: a stand-in upstream.
fn upstream<F, Fut>(answer: F) -> SocketAddr
where
    F: Fn(Request<hyper::body::Incoming>) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = String> + Send + 'static,
{
    let listener = rt()
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let addr = listener.local_addr().unwrap();
    rt().spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let answer = answer.clone();
            let service = service_fn(move |request| {
                let text = answer(request);
                async move {
                    Ok::<_, Infallible>(hyper::Response::new(Full::new(Bytes::from(text.await))))
                }
            });
            tokio::spawn(
                hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service),
            );
        }
    });
    addr
}

/// An upstream that answers every request with its `name` and the request headers, one
/// `name: value` per line.
pub fn echo_upstream(name: &'static str) -> SocketAddr {
    upstream(move |request| async move {
        let mut text = format!("upstream={name}\npath={}\n", request.uri());
        for (header, value) in request.headers() {
            text.push_str(&format!("{header}: {}\n", value.to_str().unwrap_or("?")));
        }
        text
    })
}

/// An upstream that reads each request's whole body before answering `read N bytes` (or
/// `body broke off: ...` when it did).
pub fn body_upstream() -> SocketAddr {
    upstream(|request| async move {
        match request.into_body().collect().await {
            Ok(body) => format!("read {} bytes\n", body.to_bytes().len()),
            Err(err) => format!("body broke off: {err}\n"),
        }
    })
}

/// Sends `bytes` as they are on a new connection, then reads whatever comes back for up to
/// `wait` (until the server closes), as a client that stalls halfway would.
pub fn raw_bytes(addr: SocketAddr, bytes: &[u8], wait: Duration) -> String {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(wait)).unwrap();
    stream.write_all(bytes).unwrap();
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    String::from_utf8_lossy(&answer).into_owned()
}

/// An upstream that reads each request's head and answers with `answer`, byte for byte:
/// for answers no well-behaved server library would send (an unasked 101, odd framing).
pub fn canned_upstream(answer: &'static [u8]) -> SocketAddr {
    canned_upstream_heads(answer).0
}

/// [`canned_upstream`], and the heads of the requests it receives, as they arrive.
pub fn canned_upstream_heads(
    answer: &'static [u8],
) -> (SocketAddr, std::sync::mpsc::Receiver<String>) {
    let listener = StdListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let (heads, received) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            let heads = heads.clone();
            std::thread::spawn(move || {
                let mut head = Vec::new();
                let mut byte = [0u8; 1];
                while !head.ends_with(b"\r\n\r\n") {
                    if stream.read_exact(&mut byte).is_err() {
                        return;
                    }
                    head.push(byte[0]);
                }
                let _ = heads.send(String::from_utf8_lossy(&head).into_owned());
                let _ = stream.write_all(answer);
                // Held open a moment, so the answer is read before the connection ends.
                std::thread::sleep(Duration::from_millis(500));
            });
        }
    });
    (addr, received)
}
